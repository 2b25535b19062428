"""The shape of the code, checked: no import cycle, modules of a readable size, the core's declared surface.

docs/ARCHITECTURE.md draws the packages; these tests keep the drawing true. Imports are read from the
source (function-level and TYPE_CHECKING imports count: a cycle through them is still a cycle to a reader).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Where each tree's packages live, and which of its top-level packages are ours.
TREES = ((ROOT / "functions", None), (ROOT / "local", None), (ROOT, ("infra", "bench")))
MAX_LINES = 400
SIZE_REASON = re.compile(r"over ~?400 lines", re.IGNORECASE)  # a module that stays longer says why, in its docstring


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for base, only in TREES:
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            if only is not None and parts[0] not in only:
                continue
            if only is None and any(part.startswith(".") or part == "__pycache__" for part in parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(name: str, path: Path) -> set[tuple[str, str]]:
    """(module, imported name or "") pairs for every import statement of the module, wherever it stands."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    pairs: set[tuple[str, str]] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            pairs.update((alias.name, "") for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            pairs.update((base, alias.name) for alias in node.names)
    return pairs


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = set()
        for module, attribute in _imports(name, path):
            target = _resolve(f"{module}.{attribute}" if attribute and f"{module}.{attribute}" in MODULES else module)
            if target and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere():
    assert _cycles(_graph()) == []


def test_modules_are_a_readable_size_or_say_why():
    long = []
    for name, path in MODULES.items():
        if path.is_relative_to(ROOT / "functions") or path.is_relative_to(ROOT / "local"):
            lines = path.read_text(encoding="utf-8").count("\n")
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            if lines > MAX_LINES and not SIZE_REASON.search(docstring):
                long.append(f"{name} ({lines} lines)")
    assert long == [], f"split these, or say in the docstring why they stay over {MAX_LINES} lines: {long}"


# The entry points: each translates a transport's event for the one service. Nothing below them imports them.
EDGES = {
    "rdsgate.api", "rdsgate.invoke", "rdsgate.runtime", "rdsgate.edge", "rdsgate.statements_api", "rdsgate.runbooks_api",
    "rdsgate.reviews_api", "rdsgate.worker", "rdsgate.sessions.routes", "rdsgate.sessions.invoke", "rdsgate.sessions.runner",
}  # fmt: skip


def test_the_core_never_imports_an_entry_point():
    graph = _graph()
    upward = sorted(
        f"{name} imports {target}"
        for name, targets in graph.items()
        if name.startswith("rdsgate.") and name not in EDGES
        for target in targets & EDGES
    )
    assert upward == []


def test_what_local_bench_and_infra_take_from_the_core_is_declared_in_its_all():
    undeclared = []
    for name, path in MODULES.items():
        if name.split(".")[0] == "rdsgate":
            continue
        for module, attribute in _imports(name, path):
            if not attribute or not (module == "rdsgate" or module.startswith("rdsgate.")) or f"{module}.{attribute}" in MODULES:
                continue
            declared = _declared(MODULES[module])
            if declared is None or attribute not in declared:
                undeclared.append(f"{name}: {module}.{attribute}")
    assert sorted(set(undeclared)) == []


def _declared(path: Path) -> set[str] | None:
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return None
