"""The package reads in data-flow order: each role in one folder, imports only pointing down the flow.

A newcomer should be able to trust the layout: config is read first, capture and vision feed tracking,
tracking feeds events, events feed outputs, and only the runtime wires them together. Lazy imports
(inside functions) count as well: they hide a dependency, they do not remove it; imports for type
annotations only (``if TYPE_CHECKING:``) do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edge_fer"

# Bottom to top. A module may import from its own layer or any layer below, never above.
LAYERS: list[set[str]] = [
    {"edge_fer", "exitcodes", "redact", "logs", "imageio", "readfile", "bundled", "clock", "wire"},
    {"config"},
    {"capture", "vision"},
    {"tracking"},
    {"events", "schema"},  # the payload contract is generated from the event types
    {"outputs"},
    {"runtime"},
    {"offline"},
    {"commands"},
    {"cli", "__main__"},
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every edge_fer module and the edge_fer modules it imports, wherever in the file."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] != "edge_fer":
                    continue
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "edge_fer"}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``: annotations may name any module without a
    dependency at run time."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _role(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_has_a_layer():
    unknown = sorted({_role(m) for m in _imports()} - set(RANK))
    assert not unknown, f"add these to LAYERS in {__file__}: {unknown}"


def test_imports_point_down_the_data_flow():
    upward = [
        f"{src} imports {dst}"
        for src, targets in _imports().items()
        for dst in targets
        if RANK.get(_role(dst), -1) > RANK.get(_role(src), -1)
    ]
    assert not upward, "imports against the data flow:\n" + "\n".join(sorted(upward))


def test_no_import_cycles():
    graph = _imports()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
