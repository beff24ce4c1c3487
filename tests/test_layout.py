"""The layout docs/ARCHITECTURE.md states holds in the code: packages import only from the
layers below them, no module imports itself back through others (function-level imports
count too), and modules and functions keep to their size budget."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 40
ROOTS = {"tuner": REPO / "tuner", "tuner.tasks": REPO / "tasks"}


def layer_order() -> list[str]:
    """The packages, lowest first, from ARCHITECTURE.md's `Layers:` line."""
    line = next(
        line for line in ARCHITECTURE.read_text().splitlines() if line.startswith("Layers:")
    )
    return re.findall(r"`(\w+)`", line)


def modules() -> dict[str, Path]:
    found = {}
    for prefix, root in ROOTS.items():
        for path in root.rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join((prefix, *parts)).removesuffix(".__init__")
            found[name] = path
    return found


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """Every tuner module `path` imports, at its top or inside a function: `from P import M`
    counts as the module P.M where there is one, else as P."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1],
                                 *filter(None, [node.module])])  # fmt: skip
            named = {f"{base}.{alias.name}" for alias in node.names}
            found |= (named & known.keys()) or {base}
    return {module for module in found if module == "tuner" or module.startswith("tuner.")}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {module for module in imports(path, name, known) if module in known} - {name}
        for name, path in known.items()
    }


def layer_of(module: str) -> str:
    """The package a module belongs to: tuner.<package>..., tuner.tasks..., or a top-level
    module (tuner/api.py is `api`; tuner/__init__.py re-exports the API: `api` too)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    return parts[1]


def test_the_layer_order_names_every_package():
    packages = {layer_of(name) for name in modules()}
    assert packages == set(layer_order())


def test_packages_import_only_from_the_layers_below():
    rank = {layer: k for k, layer in enumerate(layer_order())}
    upward = sorted(
        f"{module} imports {imported}"
        for module, imported_all in graph().items()
        for imported in imported_all
        if rank[layer_of(imported)] > rank[layer_of(module)]
    )
    assert upward == []


def test_no_import_cycle():
    edges = graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(edges[module]):
            if state.get(imported) == 1:
                cycles.append(" -> ".join([*path[path.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_every_api_function_is_exported_and_no_module_hides_one():
    import tuner

    top_level = {name.split(".")[1] for name in modules() if name.count(".") >= 1}
    assert not top_level & set(tuner.__all__)
    assert all(callable(getattr(tuner, name)) for name in tuner.__all__)
    assert {"ensemble", "report", "compare"} <= set(tuner.__all__)


def test_the_checks_see_what_they_check():
    """The graph is read right: the CLI reaches the API, a task its contract."""
    edges = graph()
    assert "tuner.api" in edges["tuner.cli.commands"]
    assert "tuner.contract.task" in edges["tuner.tasks.forecasting.task"]
    assert layer_order()[0] == "redact" and layer_order()[-1] == "cli"


@pytest.mark.parametrize("name, path", sorted(modules().items()))
def test_module_and_function_sizes(name, path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{name}: split it along a verb seam"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == []
