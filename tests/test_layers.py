"""The package's layers: no import cycles, and serving never imports training."""

import ast

from conftest import ROOT

PACKAGE = ROOT / "vidclf"


def module_imports() -> dict[str, set[str]]:
    """``vidclf.x.y`` -> the vidclf modules it imports (at any depth of the file, lazy imports included)."""
    names = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in PACKAGE.rglob("*.py")
    }
    graph = {}
    for name, path in names.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidclf"):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("vidclf"))
        graph[name] = {m for m in found if m in names and m != name and m != "vidclf"}
    return graph


def test_no_import_cycles():
    graph = module_imports()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                raise AssertionError(
                    "import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]) if nxt in path else nxt
                )
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_inference_never_imports_training():
    graph = module_imports()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    for serving in ("vidclf.predict", "vidclf.evaluate", "vidclf.catalog", "vidclf.serving", "vidclf.overlay"):
        training = {m for m in reach(serving) if m.startswith("vidclf.training")}
        assert not training, f"{serving} imports {training}"
