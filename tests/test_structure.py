"""scripts/structure.py, the structure report, on small trees made for each test."""

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "structure.py"


@pytest.fixture(scope="module")
def structure():
    spec = importlib.util.spec_from_file_location("structure", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["structure"] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    yield module
    del sys.modules["structure"]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


PYPROJECT = '[tool.importlinter]\nroot_packages = ["alpha", "beta", "absent"]\n'
LONG_BODY = "".join(f"    value_{number} = {number}\n" for number in range(61))


def test_a_clean_tree_is_within_every_limit(structure, tmp_path, capsys):
    write(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "README.md": "short\n",
            "alpha/__init__.py": "",
            "alpha/low.py": "import json\n",
            "alpha/high.py": "from . import low\nfrom alpha.low import json\n",
            "beta/__init__.py": "from alpha import high\n",
        },
    )

    assert structure.main(["--root", str(tmp_path)]) == 0

    output = capsys.readouterr().out
    assert "modules: 4\n" in output
    assert "module cycles: 0 (largest: 0 modules)\n" in output
    assert "package cycles: 0\n" in output
    assert "imports inside functions: 0\n" in output
    assert output.endswith("structure: within every limit\n")


def test_cycles_inner_imports_and_long_code_are_reported_and_fail(structure, tmp_path, capsys):
    write(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "README.md": "x" * 12_001,
            "alpha/__init__.py": "",
            "alpha/first.py": "from alpha import second\n",
            "alpha/second.py": "def later():\n    from .first import something\n",
            "alpha/calls_beta.py": "import beta.models\n",
            "alpha/migrations/0001_initial.py": "import beta\n" + "def operations():\n" + LONG_BODY,
            "beta/__init__.py": "",
            "beta/models.py": "import typing\nif typing.TYPE_CHECKING:\n    from alpha import first\n",
            "beta/huge.py": "VALUE = 1\n" * 401,
            "tests/test_long.py": "def test_long():\n" + LONG_BODY,
            "tools/long.py": "class Tool:\n    def run(self):\n" + textwrap.indent(LONG_BODY, "    "),
        },
    )

    assert structure.main(["--root", str(tmp_path)]) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "modules: 7",
        "module cycles: 1 (largest: 2 modules)",
        "  cycle: alpha.first alpha.second",
        "package cycles: 1",
        "  cycle: alpha beta",
        "imports inside functions: 1",
        "  alpha.second:2 imports alpha.first",
        "modules over 400 lines: 1",
        "  beta.huge: 401 lines",
        "functions over 60 lines: 1",
        "  tools/long.py:2 run: 62 lines",
        "README.md: 12001 characters (limit 12000)",
        "structure: over the limits: module cycles, package cycles, modules over 400 lines, "
        "functions over 60 lines, README over 12000 characters",
    ]


def test_report_only_prints_the_same_report_and_never_fails(structure, tmp_path, capsys):
    write(
        tmp_path,
        {
            "pyproject.toml": PYPROJECT,
            "alpha/__init__.py": "import beta\n",
            "beta/__init__.py": "def later():\n    import alpha\n",
        },
    )

    assert structure.main(["--root", str(tmp_path), "--report-only"]) == 0

    output = capsys.readouterr().out
    assert "  cycle: alpha beta\n" in output
    assert "  beta:2 imports alpha\n" in output
    assert output.endswith("structure: over the limits: module cycles, package cycles\n")


def test_cycles_finds_each_group_of_nodes_that_reach_each_other(structure):
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}

    assert structure.cycles(edges) == [["a", "b", "c"], ["d", "e"]]
