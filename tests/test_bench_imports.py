"""The benchmarks name the project's modules in their own code and in the set-up scripts they hand to
`manage.py shell`; a module that moved must not leave a benchmark that fails only when it is run."""

import importlib
import re
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
PROJECT_PACKAGES = (
    "config",
    "core",
    "tenancy",
    "paths",
    "onboarding",
    "guardrails",
    "nudges",
    "analytics",
    "experiments",
    "tests",
)
# `from onboarding.models import Event, Contact` or `import nudges.jobs`, at any indentation, in code or
# in a string; names in parentheses over several lines are not read (the benchmarks write none).
IMPORT_LINE = re.compile(
    r"^\s*from\s+(?P<module>[\w.]+)\s+import\s+(?P<names>[\w, ]+?)\s*(?:#.*)?$"
    r"|^\s*import\s+(?P<bare>[\w.]+)\s*$",
    re.MULTILINE,
)


def project_imports() -> list[tuple[str, str, str | None]]:
    """(bench file, module, name or None) for every import of a project package in bench/."""
    found = []
    for path in sorted(BENCH.glob("*.py")):
        for match in IMPORT_LINE.finditer(path.read_text()):
            module = match["module"] or match["bare"]
            if module.split(".")[0] not in PROJECT_PACKAGES:
                continue
            listed = (match["names"] or "").split(",")
            names = [name.split(" as ")[0].strip() for name in listed if name.strip()]
            found += [(path.name, module, name) for name in names] or [(path.name, module, None)]
    return found


def test_the_benchmarks_import_the_project():
    assert {bench for bench, _, _ in project_imports()} >= {
        "nudges.py",
        "progress.py",
        "pii.py",
        "analytics.py",
    }


@pytest.mark.parametrize(("bench", "module", "name"), project_imports())
def test_every_project_import_in_a_benchmark_resolves(bench, module, name):
    imported = importlib.import_module(module)
    if name is not None and not hasattr(imported, name):
        importlib.import_module(f"{module}.{name}")  # a sub-module: fails with the reason
