"""The folder tree is the architecture: every import goes down the layers, and no module cycle exists.

Layers, lowest first (a subpackage may import its own layer and the ones below, never one above):

    errors, interrupts, paths, nn, data  →  spec  →  encode  →  solvers  →  bounds  →  search, heuristics
    →  methods  →  experiments  →  reporting  →  cli, api

`bounds` sits above `solvers` (improved bounds are MILPs, ball bounds LPs); `encode` takes any
object with per-layer ``lower``/``upper`` arrays, so it does not depend on how bounds were computed.
"""

from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "advmilp"
LAYERS = [("errors", "interrupts", "paths", "nn", "data"), ("spec",), ("encode",), ("solvers",), ("bounds",), ("search", "heuristics"),
          ("methods",), ("experiments",), ("reporting",), ("cli", "api")]
RANK = {name: i for i, group in enumerate(LAYERS) for name in group}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every advmilp module this file imports, at module level or inside functions."""
    out = set()
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("advmilp")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("advmilp"):
                continue
            out.add(mod)
            for a in node.names:  # `from advmilp.x import y` where y is a module
                if (PACKAGE.parent / (mod + "." + a.name).replace(".", "/")).with_suffix(".py").exists() or \
                        (PACKAGE.parent / (mod + "." + a.name).replace(".", "/") / "__init__.py").exists():
                    out.add(mod + "." + a.name)
    return out - {here}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return RANK.get(parts[1]) if len(parts) > 1 else None   # advmilp / advmilp.__main__: the top


def test_every_subpackage_has_a_layer():
    top = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    top |= {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert top - set(RANK) == set(), "give every subpackage a place in LAYERS"


def test_imports_only_go_down_the_layers():
    bad = []
    for mod, deps in graph().items():
        lo = layer_of(mod)
        if lo is None:
            continue
        for dep in deps:
            ld = layer_of(dep)
            if ld is not None and ld > lo:
                bad.append(f"{mod} imports {dep} ({LAYERS[lo]} is below {LAYERS[ld]})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle():
    g = graph()
    seen, stack, cycles = set(), [], []

    def visit(m):
        if m in stack:
            cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(g.get(m, ())):
            if d in g and d != "advmilp" and not m.startswith(d + "."):  # a module importing its own package's __init__
                visit(d)
        stack.pop()

    for m in sorted(g):
        visit(m)
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_a_violation(tmp_path):
    """The test above can fail: an upward import in a scratch file is found."""
    f = PACKAGE / "spec" / "_scratch_layer_check.py"
    f.write_text("from advmilp.methods import registry\n")
    try:
        assert "advmilp.methods" in imports_of(f)
        assert layer_of("advmilp.methods") > layer_of(module_name(f))
    finally:
        f.unlink()
