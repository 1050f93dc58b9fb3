"""The import structure of `src/modfit`: no cycle, and no module imports one in a layer above its own.

The layers are declared once, in ARCHITECTURE.md's "Layers" table (top layer first); this test reads
that table. Every import counts: at the top of a file, inside a function, and under `TYPE_CHECKING`
(a type-only import still couples the lower module to the upper one). What counts is what a module
names: `import modfit.a.b` and `from modfit.a import b` depend on `modfit.a.b` (and `modfit.a`), not
on the parent packages Python runs on the way.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "modfit"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modfit modules that module `name` names in any import statement."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            named.add(base)
            named.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in named if n in known and n != name}


def layers() -> list[list[str]]:
    """The module patterns of each layer, top layer first, from ARCHITECTURE.md."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and "`" in line]
    return [re.findall(r"`([\w.*]+)`", row.split("|")[2]) for row in rows]


def layer_of(module: str, declared: list[list[str]]) -> int:
    """The rank of `module` (0: the top layer) by its most specific pattern: `x` names module
    `modfit.x`, `x.*` the package `modfit.x` and everything in it; `modfit` is the package root."""
    best: tuple[int, int] | None = None
    for rank, patterns in enumerate(declared):
        for pattern in patterns:
            full = "modfit" if pattern == "modfit" else f"modfit.{pattern.removesuffix('.*')}"
            exact = module == full
            inside = pattern.endswith(".*") and (module == full or module.startswith(full + "."))
            if exact or inside:
                specificity = len(full) + (1 if exact and not pattern.endswith(".*") else 0)
                if best is None or specificity > best[0]:
                    best = (specificity, rank)
    assert best is not None, f"{module} is in no layer of ARCHITECTURE.md"
    return best[1]


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def test_every_module_sits_in_a_declared_layer():
    declared = layers()
    assert len(declared) >= 5
    for module in modules():
        layer_of(module, declared)


def test_no_module_imports_a_higher_layer():
    declared = layers()
    upward = [
        f"{module} (layer {layer_of(module, declared)}) imports {dep} (layer {layer_of(dep, declared)})"
        for module, deps in sorted(graph().items())
        for dep in sorted(deps)
        if layer_of(dep, declared) < layer_of(module, declared)
    ]
    assert not upward, "layer 0 is the top:\n" + "\n".join(upward)


def test_no_import_cycle():
    edges = graph()
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for dep in sorted(edges[module]):
            if state.get(dep) == "open":
                return path[path.index(dep) :] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        state[module] = "done"
        path.pop()
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_checker_sees_imports_inside_functions_and_type_checking(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from modfit.cli import main\n"
        "def f():\n    import modfit.experiment\n    from modfit.grid import cells\n"
    )
    known = {"modfit.cli", "modfit.experiment", "modfit.grid", "modfit.grid.cells", "modfit.probe"}
    assert imports("modfit.probe", source, known) == known - {"modfit.probe"}
