"""The layering of docs/ARCHITECTURE.md holds in the code: every import between fptlib's modules
(at module top or inside a function) points to the same layer or a lower one, and no modules
import each other in a circle. Read with ``ast``; nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fptlib"

# lowest first; a module may import its own layer and the layers below, never above
LAYERS = (
    ("env, paper, file and network helpers", ("env", "paper", "files", "net")),
    ("model, backbones, tasks", ("model", "freeze", "attention", "backbones", "tasks")),
    ("train (the engine)", ("train",)),
    ("results (store and record queries)", ("results", "stats")),
    ("experiments and sweeps", ("experiments", "sweeps")),
    ("report and plots", ("report", "viz", "jupyter_static")),
    ("notebook, explorer, command line", ("notebook", "explorer", "explorer_seeds", "cli", "commands", "__main__", "__init__")),
)
COMMAND_LINE = len(LAYERS) - 1      # every package's cli.py is a command-line module


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(module: str) -> int:
    parts = module.split(".")[1:] or ["__init__"]
    if parts[-1] in ("cli", "__main__") or module == "fptlib":
        return COMMAND_LINE
    for i, (_, names) in enumerate(LAYERS):
        if parts[0] in names:
            return i
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layering.py "
                         f"and to the layering in docs/ARCHITECTURE.md")


def imports(module: str) -> set[str]:
    """The fptlib modules ``module`` imports, anywhere in its file."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:      # "from fptlib import env" imports the module fptlib.env
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base)
    return {m for m in out if m in MODULES and m != module}


GRAPH = {m: imports(m) for m in MODULES}


def test_every_module_has_a_layer():
    for m in MODULES:
        layer(m)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module):
    up = [f"{dep} ({LAYERS[layer(dep)][0]})" for dep in sorted(GRAPH[module]) if layer(dep) > layer(module)]
    assert not up, f"{module} ({LAYERS[layer(module)][0]}) imports upward: {', '.join(up)}"


def test_no_import_cycle():
    state: dict[str, int] = {}          # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for dep in sorted(GRAPH[m]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [m])


def test_the_checker_sees_lazy_and_relative_imports():
    assert "fptlib.attention" in GRAPH["fptlib.explorer"]           # from .attention import ...
    assert "fptlib.experiments" in GRAPH["fptlib.explorer"]         # inside a function
    assert "fptlib.files" in GRAPH["fptlib.train.checkpoint"]
    assert layer("fptlib.tasks.cli") == COMMAND_LINE > layer("fptlib.tasks.registry")
