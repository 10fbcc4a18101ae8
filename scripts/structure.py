"""Structure report: the import graph of the project's packages and the size limits of its code.

import-linter holds the layers; this report counts what it does not: cycles between modules over
every import (inside functions too), imports inside functions, modules over 400 lines, functions
over 60 lines (tests, bench and migrations aside) and the README's length. It exits 1 when a
module cycle, a package cycle, a long module, a long function or a long README is found, unless
--report-only is given.

    python3 scripts/structure.py [--root DIR] [--report-only]
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_README_CHARACTERS = 12_000
# Directories whose functions may be long: tests and benchmarks read top to bottom, and
# migrations are generated.
LONG_FUNCTIONS_ALLOWED_IN = frozenset({"tests", "bench", "migrations"})
NEVER_SCANNED = frozenset({".git", ".venv", "var", "node_modules", "__pycache__", "static"})


@dataclass(frozen=True)
class InnerImport:
    """An import statement inside a function body, run only when the function is called."""

    module: str
    imported: str
    line: int


@dataclass(frozen=True)
class LongFunction:
    path: str
    name: str
    line: int
    length: int


@dataclass
class ImportGraph:
    """Modules of the project's packages, keyed by dotted name, and who imports whom."""

    modules: dict[str, Path]
    edges: dict[str, set[str]]
    inner_imports: list[InnerImport]


def root_packages(root: Path) -> list[str]:
    """The packages import-linter checks (pyproject.toml), so both tools look at the same code."""
    with (root / "pyproject.toml").open("rb") as pyproject:
        configured = tomllib.load(pyproject)["tool"]["importlinter"]["root_packages"]
    return [package for package in configured if (root / package / "__init__.py").exists()]


def python_files(directory: Path) -> Iterator[Path]:
    for path in sorted(directory.rglob("*.py")):
        if not NEVER_SCANNED.intersection(path.relative_to(directory).parts):
            yield path


def find_modules(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of the packages but their migrations, as dotted name -> path."""
    modules = {}
    for package in packages:
        for path in python_files(root / package):
            parts = path.relative_to(root).with_suffix("").parts
            if "migrations" in parts:
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The project module that importing `name` runs last: itself, or the package it lives in."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_modules(
    node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: Mapping[str, Path]
) -> set[str]:
    """The project modules an import statement names: `from a import b` imports the module `a.b`
    when there is one, else `b` from `a`. Counted as import-linter counts them."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        names = [
            f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names
        ]
    resolved = {resolve(name, modules) for name in names}
    return {target for target in resolved if target is not None and target != module}


class _ImportCollector(ast.NodeVisitor):
    """Collects every import statement of a module, noting those inside a function."""

    def __init__(self) -> None:
        self.imports: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
        self._function_depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._function_depth += 1
        self.generic_visit(node)
        self._function_depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.imports.append((node, self._function_depth > 0))

    visit_ImportFrom = visit_Import


def build_graph(root: Path, packages: Iterable[str]) -> ImportGraph:
    """The import graph over every import: top level, inside functions and under TYPE_CHECKING."""
    modules = find_modules(root, packages)
    edges: dict[str, set[str]] = defaultdict(set)
    inner_imports = []
    for module, path in modules.items():
        collector = _ImportCollector()
        collector.visit(ast.parse(path.read_text(), filename=str(path)))
        for node, inside_function in collector.imports:
            targets = imported_modules(node, module, path.name == "__init__.py", modules)
            edges[module].update(targets)
            if inside_function:
                inner_imports.extend(InnerImport(module, target, node.lineno) for target in sorted(targets))
    return ImportGraph(modules=modules, edges=edges, inner_imports=inner_imports)


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Groups of nodes that import each other, directly or through others (Tarjan's strongly
    connected components, iterative so a deep graph cannot exhaust the stack)."""
    index: dict[str, int] = {}
    lowest: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = lowest[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            successor = next(successors, None)
            if successor is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    lowest[parent] = min(lowest[parent], lowest[node])
                if lowest[node] == index[node]:
                    component = _pop_component(stack, on_stack, node)
                    if len(component) > 1:
                        found.append(sorted(component))
            elif successor not in index:
                index[successor] = lowest[successor] = len(index)
                stack.append(successor)
                on_stack.add(successor)
                work.append((successor, iter(sorted(edges.get(successor, ())))))
            elif successor in on_stack:
                lowest[node] = min(lowest[node], index[successor])
    return sorted(found)


def _pop_component(stack: list[str], on_stack: set[str], root_node: str) -> list[str]:
    component = []
    while True:
        node = stack.pop()
        on_stack.discard(node)
        component.append(node)
        if node == root_node:
            return component


def package_edges(edges: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """Imports between top-level packages, from the imports between their modules."""
    packages: dict[str, set[str]] = defaultdict(set)
    for importer, imported in edges.items():
        for target in imported:
            importer_package, imported_package = importer.split(".")[0], target.split(".")[0]
            if importer_package != imported_package:
                packages[importer_package].add(imported_package)
    return packages


def long_modules(modules: Mapping[str, Path], limit: int = MAX_MODULE_LINES) -> list[tuple[str, int]]:
    lengths = ((module, len(path.read_text().splitlines())) for module, path in modules.items())
    return sorted((module, length) for module, length in lengths if length > limit)


def long_functions(root: Path, limit: int = MAX_FUNCTION_LINES) -> list[LongFunction]:
    """Functions (methods and nested functions too) longer than `limit` lines, decorators aside."""
    found = []
    for path in python_files(root):
        relative = path.relative_to(root)
        if LONG_FUNCTIONS_ALLOWED_IN.intersection(relative.parts):
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(LongFunction(str(relative), node.name, node.lineno, length))
    return sorted(found, key=lambda function: (function.path, function.line))


def report(root: Path, packages: Iterable[str]) -> tuple[list[str], list[str]]:
    """The report's lines, and the names of the limits broken."""
    graph = build_graph(root, packages)
    module_cycles = cycles(graph.edges)
    package_cycles = cycles(package_edges(graph.edges))
    oversized_modules = long_modules(graph.modules)
    oversized_functions = long_functions(root)
    readme = root / "README.md"
    readme_characters = len(readme.read_text()) if readme.exists() else 0
    largest = max((len(cycle) for cycle in module_cycles), default=0)
    lines = [f"modules: {len(graph.modules)}"]
    lines.append(f"module cycles: {len(module_cycles)} (largest: {largest} modules)")
    lines += [f"  cycle: {' '.join(cycle)}" for cycle in module_cycles]
    lines.append(f"package cycles: {len(package_cycles)}")
    lines += [f"  cycle: {' '.join(cycle)}" for cycle in package_cycles]
    lines.append(f"imports inside functions: {len(graph.inner_imports)}")
    lines += [f"  {inner.module}:{inner.line} imports {inner.imported}" for inner in graph.inner_imports]
    lines.append(f"modules over {MAX_MODULE_LINES} lines: {len(oversized_modules)}")
    lines += [f"  {module}: {length} lines" for module, length in oversized_modules]
    lines.append(f"functions over {MAX_FUNCTION_LINES} lines: {len(oversized_functions)}")
    lines += [f"  {f.path}:{f.line} {f.name}: {f.length} lines" for f in oversized_functions]
    lines.append(f"README.md: {readme_characters} characters (limit {MAX_README_CHARACTERS})")
    broken = [
        name
        for name, is_broken in (
            ("module cycles", module_cycles),
            ("package cycles", package_cycles),
            (f"modules over {MAX_MODULE_LINES} lines", oversized_modules),
            (f"functions over {MAX_FUNCTION_LINES} lines", oversized_functions),
            (f"README over {MAX_README_CHARACTERS} characters", readme_characters > MAX_README_CHARACTERS),
        )
        if is_broken
    ]
    return lines, broken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--report-only", action="store_true", help="print the report; never fail")
    arguments = parser.parse_args(argv)
    lines, broken = report(arguments.root, root_packages(arguments.root))
    print("\n".join(lines))
    if not broken:
        print("structure: within every limit")
        return 0
    print(f"structure: over the limits: {', '.join(broken)}")
    return 0 if arguments.report_only else 1


if __name__ == "__main__":
    sys.exit(main())
