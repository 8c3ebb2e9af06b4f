"""The import layers as data, and a checker over the import graph (``ast``;
nothing is imported). tests/contracts/test_import_layers.py applies it to
the tree and to a copy with a planted upward import.

Every import counts, a function-level (lazy) one too: a lazy import is still
a dependency, and lazy imports were how the old circles hid.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("farm", "workers", "dashboards", "converters")

# (importer prefix, imported prefix, why): an importer module under the first
# prefix must not import a module under the second. Prefixes are dotted names
# ("farm" covers farm and farm.*).
FORBIDDEN = (
    ("farm", "workers", "farm/ never imports workers/ (device code is reached through entry points)"),
    ("farm.reports", "farm.service", "reports never import the service"),
    ("farm.reports", "farm.search.driver", "reports never import the search orchestrator"),
    ("farm.reports", "farm.search.finals", "reports never import the search orchestrator"),
    ("farm.reports", "farm.search.engine", "reports never import the search orchestrator"),
    ("farm.search", "farm.service", "search sits below the service (service imports search)"),
    ("farm.planner", "farm.service", "the planner sits below the service and the search"),
    ("farm.planner", "farm.search", "the planner sits below the service and the search"),
    ("workers", "farm.search.driver", "workers reach a search only through its hook (farm/search/hook.py)"),
    ("workers", "farm.search.engine", "workers reach a search only through its hook (farm/search/hook.py)"),
    ("workers", "farm.search.finals", "workers reach a search only through its hook (farm/search/hook.py)"),
    ("workers", "farm.search.strategies", "workers reach a search only through its hook (farm/search/hook.py)"),
    ("farm.search.hook", "farm.search.engine", "the hook is one lookup; only the driver, when a step is due"),
    ("workers", "farm.cli", "workers never import the CLI"),
    ("dashboards", "farm.cli", "the dashboard uses the library, not the CLI"),
    # Model conversion imports torch, Keras or TensorFlow: only in its subprocess (python -m converters).
    *(("farm", f"converters.{name}", "farm/ reads only converters' light table; conversion runs in a subprocess")
      for name in ("torch_export", "keras_model", "tensorflow_model", "parity", "__main__")),
    ("converters", "farm", "converters stand alone (a subprocess with the frameworks, no farm state)"),
    ("converters", "workers", "converters stand alone (a subprocess with the frameworks, no farm state)"),
)
# Core: everything in farm/ but the CLI (and ``python -m farm``, which starts it).
CORE_EXEMPT = ("farm.cli", "farm.__main__")
CORE_RULE = "core modules never import farm.cli (the CLI is the top layer)"
CORE_DASHBOARDS = "core modules never import the dashboards (only the CLI starts them)"

# Import circles allowed to remain, each as the sorted tuple of its modules, with why.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {
    ("workers.finals", "workers.tasks"): "Celery task registration: the tasks module imports the finals task "
                                         "module so one worker registers both; finals takes the app from it",
    ("workers.backends.torch.backend", "workers.backends.torch.profile"): "lazy: the per-layer profile "
                                                                         "runs the backend's own forward",
    ("workers.backends.torch.model_source", "workers.backends.torch.onnx_import"): "lazy: ONNX import and the "
                                                                                 "model source share a helper",
}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: str
    line: int


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def edges(root: Path, packages=PACKAGES) -> list[Edge]:
    """Every import of a module of ``packages`` by a module of ``packages``."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(root, path)] = path
    known = set(modules)
    out = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                # "from farm.reports import best" imports the module farm.reports.best.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            for target in targets:
                hit = _known_module(target, known)
                if hit and hit != name:
                    out.append(Edge(name, hit, str(path.relative_to(root)), node.lineno))
    return out


def _known_module(target: str, known: set[str]) -> str | None:
    """The module ``target`` names (or the nearest package that is one)."""
    parts = target.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def layer_violations(graph: list[Edge]) -> list[str]:
    out = []
    for e in graph:
        for importer, imported, why in FORBIDDEN:
            if _under(e.importer, importer) and _under(e.imported, imported):
                out.append(f"{e.path}:{e.line}: {e.importer} imports {e.imported} ({why})")
        core = _under(e.importer, "farm") and not any(_under(e.importer, x) for x in CORE_EXEMPT)
        if core and _under(e.imported, "farm.cli"):
            out.append(f"{e.path}:{e.line}: {e.importer} imports {e.imported} ({CORE_RULE})")
        if core and _under(e.imported, "dashboards"):
            out.append(f"{e.path}:{e.line}: {e.importer} imports {e.imported} ({CORE_DASHBOARDS})")
    return sorted(set(out))


def cycles(graph: list[Edge]) -> list[tuple[str, ...]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    adjacency: dict[str, set[str]] = {}
    for e in graph:
        adjacency.setdefault(e.importer, set()).add(e.imported)
        adjacency.setdefault(e.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []
    counter = [0]

    def visit(start: str) -> None:  # iterative: the graph is a few hundred modules deep at most
        work = [(start, iter(sorted(adjacency[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(adjacency[child]))))
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
                    found.append(tuple(sorted(component)))

    for node in sorted(adjacency):
        if node not in index:
            visit(node)
    return sorted(found)


def cycle_violations(graph: list[Edge], allowed=None) -> list[str]:
    allowed = ALLOWED_CYCLES if allowed is None else allowed
    return [f"import circle: {' <-> '.join(c)}" for c in cycles(graph) if c not in allowed]


def check(root: Path) -> list[str]:
    graph = edges(root)
    return layer_violations(graph) + cycle_violations(_without_package_reexports(graph))


def _without_package_reexports(graph: list[Edge]) -> list[Edge]:
    """A package's ``__init__`` importing its own submodules is how a package
    re-exports, not a dependency of the package on something above it: edges
    from a package to its own submodules are left out of the circle search."""
    return [e for e in graph if not _under(e.imported, e.importer)]
