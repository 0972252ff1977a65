"""The architecture's one-way flow, read from the code as text (ast, nothing imported):
kernels/ imports jax and the standard library only; priors/ never imports forecast/; no
import circles among the project's modules; no module imports another's private (_name)
names. (docs: ../shared/design/ARCHITECTURE.md; issue 26.)"""
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("forecast", "kernels", "priors", "benchmarks")


def _modules():
    mods = {}
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(mods):
    """{module: [(imported module, name or None)]} with relative imports resolved."""
    out = {}
    for m, f in mods.items():
        pkg = m if f.name == "__init__.py" else m.rpartition(".")[0]
        found = []
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                found += [(base, a.name) for a in node.names]
            elif isinstance(node, ast.Import):
                found += [(a.name, None) for a in node.names]
        out[m] = found
    return out


MODS = _modules()
IMPORTS = _imports(MODS)


def _edges():
    edges = {m: set() for m in MODS}
    for m, found in IMPORTS.items():
        for base, name in found:
            target = f"{base}.{name}" if name and f"{base}.{name}" in MODS else base
            if target in MODS and target != m:
                edges[m].add(target)
    return edges


def test_kernels_import_jax_and_the_standard_library_only():
    allowed = {"jax", "kernels", "__future__"}
    bad = [(m, base) for m, found in IMPORTS.items() if m.startswith("kernels")
           for base, _ in found if base.split(".")[0] not in allowed
           and base.split(".")[0] not in sys.stdlib_module_names]
    assert not bad, bad


def test_the_flow_is_one_way():
    """kernels <- priors <- forecast: a lower package never imports a higher one."""
    rank = {"kernels": 0, "priors": 1, "forecast": 2, "benchmarks": 3}
    bad = [(m, base) for m, found in IMPORTS.items() for base, _ in found
           if base.split(".")[0] in rank and rank[base.split(".")[0]] > rank[m.split(".")[0]]]
    assert not bad, bad


def test_no_import_circles():
    edges, state, stack, circles = _edges(), {}, [], []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges[u]):
            if state.get(v) == 1:
                circles.append(stack[stack.index(v):] + [v])
            elif not state.get(v):
                visit(v)
        state[u] = 2
        stack.pop()

    for m in sorted(MODS):
        if not state.get(m):
            visit(m)
    assert not circles, [" -> ".join(c) for c in circles]


def test_no_module_imports_another_modules_private_names():
    bad = [f"{m} imports {base}.{name}" for m, found in IMPORTS.items() for base, name in found
           if name and name.startswith("_") and not name.startswith("__") and base != m]
    assert not bad, bad


def test_the_tests_use_public_names_only():
    """Tests go through the packages' public names, as a user would (issue 26)."""
    bad = []
    for f in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
                bad += [f"{f.name} imports {node.module}.{a.name}" for a in node.names
                        if a.name.startswith("_") and not a.name.startswith("__")]
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr.startswith("_")
                  and not node.attr.startswith("__") and node.value.id in ("sc_mod", "forecast", "kernels")):
                bad.append(f"{f.name} uses {node.value.id}.{node.attr}")
    assert not bad, bad


def test_the_walk_sees_the_whole_project():
    """The checks above read every package (a renamed folder would make them vacuous)."""
    assert {m.split(".")[0] for m in MODS} == set(PACKAGES)
    assert len(MODS) > 40 and "kernels.simulate" in MODS and "forecast.engine.run" in MODS
    assert any(base.startswith("kernels") for m, found in IMPORTS.items() if m.startswith("forecast")
               for base, _ in found)


LAYERS = ("scenario", "engine", "analysis", "present", "cli")  # forecast's subpackages, lowest first


def test_forecast_subpackages_are_layered():
    """A forecast subpackage imports only its own or lower ones (the package root, the
    public API, may import any)."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    layer = lambda m: rank.get(m.split(".")[1]) if m.startswith("forecast.") else None
    assert all(layer(m) is not None for m in MODS if m.count(".") >= 1 and m.startswith("forecast.")), \
        [m for m in MODS if m.startswith("forecast.") and layer(m) is None]
    bad = [(m, base) for m, found in IMPORTS.items() for base, _ in found
           if layer(m) is not None and layer(base) is not None and layer(base) > layer(m)]
    assert not bad, bad


MAX_MODULE, MAX_FUNCTION, WHY = 400, 60, "Long:"


def test_modules_and_functions_are_short():
    """No module over 400 lines; no function over 60 unless a line of its docstring starts
    with "Long:" and says why."""
    bad = []
    for m, f in MODS.items():
        src = f.read_text(encoding="utf-8")
        if src.count("\n") > MAX_MODULE:
            bad.append(f"{m}: {src.count(chr(10))} lines")
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if length > MAX_FUNCTION and not any(line.strip().startswith(WHY) for line in doc.splitlines()):
                    bad.append(f"{m}.{node.name}: {length} lines")
    assert not bad, bad
