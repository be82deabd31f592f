"""The layering of the package (docs/LAYOUT.md), read from every module's imports.

Data flows one way, rows -> embedders -> sketches -> networks, with the warehouse at the edges: a
module imports only from its own layer or the layers below, there are no import cycles, private
names stay inside their subpackage, benchmarks and examples use public names only, and the core
(Cleora, EMDE, the embedders) imports and runs without the optional dependencies.
"""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sklearn_basemodel"
NAME = "sklearn_basemodel"

# Lowest first. A module may import from its own layer and the layers below it.
LAYERS = [
    {"_compat", "_hashing", "_lazy", "exceptions", "rows", "decay"},
    {"embed"},
    {"sketch"},
    {"metrics", "baselines"},
    {"nn"},
    {"recipes", "selection", "blending", "history_recommender", "history_ranker",
     "universal_profile"},
    {"warehouse"},
    {"workflow", "demo", "report", "cli"},
]
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}
APPLICATIONS = LAYERS[-1]  # the only modules that use the data generator
# The data generator stands aside: it may use the foundation only (never a model). _compat is
# allowed too: it is where scikit-learn's parameter validation is imported from.
DATASETS_MAY_IMPORT = {"_compat", "_hashing", "rows", "decay"}
# Private modules that other subpackages may import: the shared helpers and the embedder contract.
SHARED_PRIVATE_MODULES = {f"{NAME}._compat", f"{NAME}._hashing", f"{NAME}._lazy",
                          f"{NAME}.embed._base"}  # fmt: skip
# ...and the modules whose private names (``_fit_context``) other subpackages may import.
SHARED_PRIVATE_NAMES_FROM = {f"{NAME}._compat", f"{NAME}._hashing"}


# --------------------------------------------------------------------------- reading imports
def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path
    for path in sorted(PACKAGE.rglob("*.py"))
    if "dbt_package" not in path.relative_to(PACKAGE).parts
}


def _public_exports() -> dict:
    """``sklearn_basemodel``'s lazily exported names -> the module that defines them."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in node.targets
        ):
            exports = ast.literal_eval(node.value)
            return {name: NAME + target for name, target in exports.items()}
    return {}


EXPORTS = _public_exports()


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, tree: ast.AST):
    """(imported module, imported name or None) for every import in ``tree`` (module level and
    inside functions), resolved to absolute names. ``from pkg import sub`` counts as importing
    the module ``pkg.sub``; a name from ``sklearn_basemodel`` itself, as importing the module
    that defines it."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                if f"{source}.{alias.name}" in MODULES:
                    found.append((f"{source}.{alias.name}", None))
                elif source == NAME and alias.name in EXPORTS:
                    found.append((EXPORTS[alias.name], alias.name))
                else:
                    found.append((source, alias.name))
    return [(m, n) for m, n in found if m == NAME or m.startswith(NAME + ".")]


IMPORTS = {m: imports_of(m, ast.parse(path.read_text())) for m, path in MODULES.items()}


def unit(module: str) -> str:
    """The subpackage or top-level module a module belongs to (``embed``, ``rows``, ...)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layering_violations(module: str) -> list:
    own = unit(module)
    bad = []
    for target, _ in IMPORTS[module]:
        other = unit(target)
        if other in ("", own) or own == "":  # the package root (version, lazy exports) or
            continue  # itself; the root, the facade, may use any layer
        if own == "datasets":
            allowed = other in DATASETS_MAY_IMPORT
        elif other == "datasets":
            allowed = own in APPLICATIONS
        else:
            allowed = LAYER_OF[other] <= LAYER_OF[own]
        if not allowed:
            bad.append(target)
    return bad


def private_violations(module: str) -> list:
    own = unit(module)
    bad = []
    for target, name in IMPORTS[module]:
        if unit(target) in ("", own):
            continue
        private_module = any(p.startswith("_") for p in target.split(".")[1:])
        if private_module and target not in SHARED_PRIVATE_MODULES:
            bad.append(target)
        elif name and name.startswith("_") and target not in SHARED_PRIVATE_NAMES_FROM:
            bad.append(f"{target}.{name}")
    return bad


# --------------------------------------------------------------------------- (a) layers, cycles
def test_every_module_is_in_a_layer():
    units = {unit(m) for m in MODULES} - {""}
    assert units <= set(LAYER_OF) | {"datasets"}, units - set(LAYER_OF)


def test_a_violation_is_detected(monkeypatch):
    """The checks below can fail: an upward import and a private import are reported."""
    monkeypatch.setitem(IMPORTS, f"{NAME}.rows", [
        (f"{NAME}.nn.recommender", "SketchRecommender"), (f"{NAME}.nn._base", "SketchNetBase"),
    ])  # fmt: skip
    assert layering_violations(f"{NAME}.rows") == [f"{NAME}.nn.recommender", f"{NAME}.nn._base"]
    assert private_violations(f"{NAME}.rows") == [f"{NAME}.nn._base"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_lower_layers_never_import_upper_ones(module):
    assert layering_violations(module) == []


def _cycles():
    graph = {m: sorted({t for t, _ in IMPORTS[m] if t in MODULES and t != m}) for m in MODULES}
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in graph:
        if node not in state:
            visit(node)
    return cycles


def test_no_import_cycles():
    assert _cycles() == []


def test_a_cycle_is_detected(monkeypatch):
    monkeypatch.setitem(IMPORTS, f"{NAME}.demo", [(f"{NAME}.cli", "main")])
    monkeypatch.setitem(IMPORTS, f"{NAME}.cli", [(f"{NAME}.demo", "run_demo")])
    cycles = _cycles()
    assert len(cycles) == 1 and set(cycles[0]) == {f"{NAME}.demo", f"{NAME}.cli"}


# --------------------------------------------------------------------------- (b) private names
@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_from_another_subpackage(module):
    assert private_violations(module) == []


# --------------------------------------------------------------------------- (c) scripts
SCRIPTS = sorted(ROOT.glob("benchmarks/*.py")) + sorted(ROOT.glob("examples/**/*.py"))


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_benchmarks_and_examples_use_public_names_only(path):
    tree = ast.parse(path.read_text())
    private = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            pairs = [(node.module or "", alias.name) for alias in node.names]
        else:
            continue
        for source, name in pairs:
            if source.split(".")[0] != NAME:
                continue
            if any(p.startswith("_") for p in source.split(".")[1:]) or (
                name is not None and name.startswith("_")
            ):
                private.append(f"{source}:{name}")
    assert private == []


# --------------------------------------------------------------------------- (d) core alone
BLOCKED = ("torch", "skorch", "duckdb", "dbt", "pyarrow")

CORE_WITHOUT_OPTIONAL_DEPENDENCIES = textwrap.dedent(
    f"""
    import sys

    BLOCKED = {BLOCKED!r}

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{{name}} is blocked: an optional dependency")
            return None

    sys.meta_path.insert(0, Blocker())

    import numpy as np
    from sklearn_basemodel import CleoraEmbedder, EMDESketcher, RandomVectorEmbedder

    rows = [["milk", "bread"], ["milk", "butter"], ["beer", "chips"], ["beer", "nuts"]] * 5
    cleora = CleoraEmbedder(n_components=8, n_iter=2, random_state=0).fit(rows)
    sketches = EMDESketcher(cleora, n_sketches=4, sketch_dim=8, random_state=0).fit(rows)
    S = sketches.transform(rows[:4]).toarray()
    ids = EMDESketcher(RandomVectorEmbedder(n_components=8, random_state=0), n_sketches=2,
                       sketch_dim=4, random_state=0).fit_transform(rows)
    assert cleora.embeddings_.shape == (6, 8)
    assert S.shape == (4, 32) and np.allclose((S.reshape(4, 4, 8) ** 2).sum(axis=2), 1.0)
    assert ids.shape == (20, 8)
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("the blocker let torch through")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("core ok")
    """
)


def test_core_runs_without_optional_dependencies():
    result = subprocess.run(
        [sys.executable, "-c", CORE_WITHOUT_OPTIONAL_DEPENDENCIES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("core ok")
