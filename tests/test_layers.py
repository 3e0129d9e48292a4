"""The package's layers (docs/architecture.md, which this test enforces): every import, at module level or inside a function, points up.

Read from the source with ``ast``, so a lazy import inside a function counts as much as one at the top.
"""

import ast
from functools import lru_cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tpslab"

# Lowest first: a module may import its own layer and the layers listed before it.
LAYERS = {
    "base": ["errors", "fileio", "memory", "layout", "challenge", "_partfile", "vocab", "home"],
    "tables": ["annotations", "index", "dataset", "stats"],
    "mini dataset": ["synthetic"],
    "frames": ["video", "sampling", "frames", "validate"],
    "torch side": ["torchdata", "crops"],
    "scores": ["metrics", "submission"],
    "models": ["features", "models"],
    "application": ["pipeline", "interop", "competition", "teaching", "viz", "widgets", "cli", "__main__",
                    "__init__"],
}
RANK = {top: i for i, tops in enumerate(LAYERS.values()) for top in tops}
# Old names of moved modules: each imports the module where it lives now and replaces itself with it.
ALIASES = {"tpslab.models.pipeline": "tpslab.pipeline"}
NAMES = list(LAYERS)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _exists(module: str) -> bool:
    """A module of the package: Python source, a package, or a compiled module (its C source)."""
    rel = PACKAGE.parent / Path(*module.split("."))
    return rel.with_suffix(".py").is_file() or (rel / "__init__.py").is_file() or rel.with_suffix(".c").is_file()


def _imports(path: Path) -> set[str]:
    return _imports_from(path, _module_name(path))


def _imports_from(path: Path, module: str) -> set[str]:
    """tpslab modules and third-party modules imported anywhere in ``path`` (the module ``module``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            submodules = {f"{target}.{a.name}" for a in node.names if _exists(f"{target}.{a.name}")}
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined in the module ``target`` itself
                found.add(target)
    found.discard(module)
    return found


@lru_cache(maxsize=None)
def _graph() -> dict[str, set[str]]:
    """Every module's imports, the aliases left out (they import only where their module moved)."""
    graph = {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}
    for alias, moved in ALIASES.items():
        ours = {m for m in graph.pop(alias) if m.startswith("tpslab")}
        assert ours == {moved}, f"{alias} must import {moved} and nothing else of tpslab"
    return graph


def test_an_old_module_name_is_the_moved_module_with_a_warning():
    import importlib
    import sys

    import tpslab.pipeline

    for alias, moved in ALIASES.items():
        sys.modules.pop(alias, None)
        with pytest.warns(FutureWarning, match=f"{alias} moved to {moved}"):
            assert importlib.import_module(alias) is importlib.import_module(moved)
    from tpslab.models.pipeline import EndToEnd

    assert EndToEnd is tpslab.pipeline.EndToEnd


def _top(module: str) -> str:
    parts = module.split(".")
    return "__init__" if parts == ["tpslab"] else parts[1]


def test_every_module_has_a_layer():
    assert {_top(m) for m in _graph()} <= set(RANK), "a new module needs its layer in this test and the docs"


def _upward(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} ({NAMES[RANK[_top(module)]]}) imports {dep} ({NAMES[RANK[_top(dep)]]})"
                  for module, deps in graph.items() for dep in deps
                  if dep.startswith("tpslab") and RANK[_top(dep)] > RANK[_top(module)])


def test_imports_point_up_the_stack():
    assert not (wrong := _upward(_graph())), "\n".join(wrong)


def test_the_check_sees_an_import_down_the_stack(tmp_path):
    bad = tmp_path / "vocab.py"
    bad.write_text("def f():\n    from tpslab.viz import show\n")
    imports = _imports_from(bad, "tpslab.vocab")
    assert _upward({"tpslab.vocab": imports}) == ["tpslab.vocab (base) imports tpslab.viz (application)"]


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycles_between_modules():
    graph = _graph()
    # A package's __init__ re-exporting its own submodules is how packages work, not a cycle.
    edges = {m: {d for d in deps if d in graph and not d.startswith(m + ".")} for m, deps in graph.items()}
    assert not (cycles := _cycles(edges)), "\n".join(cycles)
    assert _cycles({"a": {"b"}, "b": {"a"}}) == ["a -> b -> a"]


def _third_party(module_prefixes: tuple[str, ...], layers: set[str]) -> list[str]:
    return sorted(f"{m} imports {d}" for m, deps in _graph().items() if NAMES[RANK[_top(m)]] in layers
                  for d in deps if d.split(".")[0] in module_prefixes)


def test_pictures_only_in_the_application_layer():
    below = set(NAMES) - {"application"}
    assert not (wrong := _third_party(("matplotlib", "ipywidgets", "IPython"), below)), "\n".join(wrong)


def test_scores_and_tables_never_import_torch_or_video_decoding():
    assert not (wrong := _third_party(("torch", "av", "decord", "cv2"), {"base", "tables", "scores"})), \
        "\n".join(wrong)
