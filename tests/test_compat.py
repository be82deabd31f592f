"""sklearn_basemodel/_compat.py: each public fallback gives what the private path gives, and each
private helper is used exactly inside the version range the module states."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy
import scipy.sparse as sp
import sklearn
from sklearn import config_context
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import _num_samples

from sklearn_basemodel import _compat

ROOT = Path(__file__).resolve().parents[1]


def _fresh_compat(monkeypatch, *, scipy_version=None):
    """A private copy of the module, imported as if scipy had ``scipy_version``."""
    if scipy_version is not None:
        monkeypatch.setattr(scipy, "__version__", scipy_version)
    spec = importlib.util.spec_from_file_location("_compat_probe", _compat.__file__)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- versions
@pytest.mark.parametrize(
    "version, expected",
    [("1.17.1", (1, 17)), ("1.6.0rc1", (1, 6)), ("2.0.dev0", (2, 0)), ("1.10", (1, 10))],
)
def test_version_reads_major_and_minor(version, expected):
    class Fake:
        __version__ = version

    assert _compat._version(Fake) == expected


def test_installed_versions_are_read():
    assert _compat.SCIPY_VERSION == tuple(int(p) for p in scipy.__version__.split(".")[:2])
    assert _compat.SKLEARN_VERSION == tuple(int(p) for p in sklearn.__version__.split(".")[:2])


def test_scikit_learn_upper_bound_matches_the_gates():
    """pyproject bounds scikit-learn where the private helpers stop being tested (< 1.11)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (spec,) = [d for d in project["dependencies"] if d.startswith("scikit-learn")]
    assert "<1.11" in spec.replace(" ", "")
    assert (1, 6) <= _compat.SKLEARN_VERSION < (1, 11)


# --------------------------------------------------------------------------- scipy
def _random_csr(rng, n_rows=40, n_cols=30, density=0.2):
    A = sp.random(n_rows, n_cols, density=density, format="csr", random_state=rng,
                  dtype=np.float32)  # fmt: skip
    A.indices = A.indices.astype(np.int32)
    A.indptr = A.indptr.astype(np.int32)
    return A


@pytest.mark.parametrize("private", [True, False])
@pytest.mark.parametrize("rows", [slice(0, 40), slice(7, 23), slice(39, 40)])
def test_csr_matvecs_adds_a_slice_of_rows_times_x(private, rows):
    """``out += A[rows] @ X`` where ``indptr`` is the slice of the full matrix's indptr."""
    rng = np.random.default_rng(0)
    A = _random_csr(rng)
    X = rng.standard_normal((A.shape[1], 5)).astype(np.float32)
    start = rng.standard_normal((rows.stop - rows.start, 5)).astype(np.float32)
    out = start.copy()
    indptr = A.indptr[rows.start : rows.stop + 1]
    result = _compat.csr_matvecs(indptr, A.indices, A.data, A.shape[1], X, out, private=private)
    assert result is out
    np.testing.assert_allclose(out, start + A[rows].toarray() @ X, rtol=1e-5, atol=1e-5)


def test_csr_matvecs_private_kernel_equals_the_fallback():
    if not _compat.csr_matvecs_available():
        pytest.skip("the private kernel is not used with this scipy")
    rng = np.random.default_rng(1)
    A = _random_csr(rng, n_rows=200, n_cols=150, density=0.05)
    X = rng.standard_normal((150, 16)).astype(np.float32)
    fast, slow = np.zeros((200, 16), np.float32), np.zeros((200, 16), np.float32)
    _compat.csr_matvecs(A.indptr, A.indices, A.data, 150, X, fast, private=True)
    _compat.csr_matvecs(A.indptr, A.indices, A.data, 150, X, slow, private=False)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-6)


def test_csr_matvecs_private_kernel_refuses_non_contiguous_arrays():
    if not _compat.csr_matvecs_available():
        pytest.skip("the private kernel is not used with this scipy")
    A = _random_csr(np.random.default_rng(2), n_rows=4, n_cols=4)
    X = np.asfortranarray(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _compat.csr_matvecs(A.indptr, A.indices, A.data, 4, X, np.zeros((4, 3), np.float32))


@pytest.mark.parametrize(
    "version, available", [("1.9.3", False), ("1.10.0", True), ("1.18.2", True), ("1.19.0", False)]
)
def test_csr_matvecs_gate_is_scipy_1_10_to_1_18(monkeypatch, version, available):
    probe = _fresh_compat(monkeypatch, scipy_version=version)
    assert probe.csr_matvecs_available() is available
    rng = np.random.default_rng(3)
    A = _random_csr(rng, n_rows=10, n_cols=8)
    X = rng.standard_normal((8, 2)).astype(np.float32)
    out = probe.csr_matvecs(A.indptr, A.indices, A.data, 8, X, np.zeros((10, 2), np.float32))
    np.testing.assert_allclose(out, A.toarray() @ X, rtol=1e-5, atol=1e-6)


def test_csr_matvecs_uses_the_private_kernel_on_this_scipy():
    assert _compat.csr_matvecs_available() == ((1, 10) <= _compat.SCIPY_VERSION < (1, 19))


# --------------------------------------------------------------------------- scikit-learn
def _frame():
    return pd.DataFrame({"products": [["a"], ["b", "c"]], "age": [3.0, 4.0], "n": [1, 2]})


SPECS = ["products", ["products", "age"], 1, [0, 2], slice(0, 2), [True, False, True]]


def _same(a, b):
    if isinstance(a, (pd.DataFrame, pd.Series)):
        assert type(a) is type(b)
        (pd.testing.assert_frame_equal if isinstance(a, pd.DataFrame)
         else pd.testing.assert_series_equal)(a, b)  # fmt: skip
    else:
        assert isinstance(b, np.ndarray) and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_select_columns_fallback_equals_private_on_frames(monkeypatch, spec):
    private = _compat.select_columns(_frame(), spec)
    monkeypatch.setattr(_compat, "SKLEARN_VERSION", (1, 11))  # outside the gate
    _same(private, _compat.select_columns(_frame(), spec))


@pytest.mark.parametrize("spec", [1, [0, 2], slice(1, 3), [True, False, True]], ids=repr)
def test_select_columns_fallback_equals_private_on_arrays(monkeypatch, spec):
    X = np.arange(12.0).reshape(4, 3)
    private = _compat.select_columns(X, spec)
    monkeypatch.setattr(_compat, "SKLEARN_VERSION", (1, 11))
    _same(private, _compat.select_columns(X, spec))


def _fitted(**output):
    est = StandardScaler().fit(np.ones((3, 2)))
    return est.set_output(**output) if output else est


OUTPUT_CASES = {
    "default": ({}, None),
    "pandas on the estimator": ({"transform": "pandas"}, None),
    "default on the estimator": ({"transform": "default"}, None),
    "pandas globally": ({}, "pandas"),
    "estimator overrides global": ({"transform": "default"}, "pandas"),
}


@pytest.mark.parametrize("case", OUTPUT_CASES)
def test_dense_output_requested_fallback_equals_private(monkeypatch, case):
    output, global_output = OUTPUT_CASES[case]
    with config_context(**({"transform_output": global_output} if global_output else {})):
        private = _compat.dense_output_requested(_fitted(**output))
        monkeypatch.setattr(_compat, "SKLEARN_VERSION", (1, 11))
        fallback = _compat.dense_output_requested(_fitted(**output))
    assert private == fallback
    assert private == ((output.get("transform") or global_output or "default") != "default")


def test_align_api_if_sparse_fallback_equals_private_by_default(monkeypatch):
    X = sp.random(5, 4, density=0.5, format="csr", random_state=0)
    private = _compat.align_api_if_sparse(X)
    monkeypatch.setattr(_compat, "SKLEARN_VERSION", (1, 8))
    fallback = _compat.align_api_if_sparse(X)
    assert type(private) is type(fallback)
    np.testing.assert_array_equal(private.toarray(), fallback.toarray())


def test_align_api_if_sparse_honours_the_sparse_interface_from_1_9():
    if _compat.SKLEARN_VERSION < (1, 9):
        pytest.skip("scikit-learn < 1.9 has no sparse_interface setting")
    X = sp.csr_matrix(np.eye(3))
    with config_context(sparse_interface="sparray"):
        assert isinstance(_compat.align_api_if_sparse(X), sp.sparray)
    with config_context(sparse_interface="spmatrix"):
        assert isinstance(_compat.align_api_if_sparse(X), sp.spmatrix)


class _Recorder:
    """Stands in for a private helper and records that it was called."""

    def __init__(self, result):
        self.calls, self.result = 0, result

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.result


# (function, (module, private name), its result, the first version in and out of the gate)
GATES = {
    "select_columns": (lambda: _compat.select_columns(np.eye(2), 0),
                       ("sklearn.utils", "_safe_indexing"), np.zeros(2), (1, 0), (1, 11)),
    "dense_output_requested": (lambda: _compat.dense_output_requested(_fitted()),
                               ("sklearn.utils._set_output", "_get_output_config"),
                               {"dense": "default"}, (1, 2), (1, 11)),
    "align_api_if_sparse": (lambda: _compat.align_api_if_sparse(sp.eye(2, format="csr")),
                            ("sklearn.utils", "_align_api_if_sparse"), sp.eye(2), (1, 9), None),
}  # fmt: skip


@pytest.mark.parametrize("name", GATES)
def test_private_helpers_are_used_exactly_inside_their_gate(monkeypatch, name):
    call, (module, attribute), result, first_in, first_out = GATES[name]
    recorder = _Recorder(result)
    monkeypatch.setattr(sys.modules[module], attribute, recorder)
    below = (first_in[0], first_in[1] - 1) if first_in[1] else (first_in[0] - 1, 99)
    for version, used in [(below, False), (first_in, True), (first_out, False)]:
        if version is None:
            continue
        monkeypatch.setattr(_compat, "SKLEARN_VERSION", version)
        before = recorder.calls
        call()
        assert (recorder.calls > before) is used, (name, version)


@pytest.mark.parametrize(
    "X",
    [[[1], [2, 3]], np.ones((4, 2)), pd.DataFrame({"a": [1, 2, 3]}), pd.Series([1, 2]),
     sp.csr_matrix(np.eye(5)), (("a",), ("b",), ("c",))],
    ids=["list", "ndarray", "frame", "series", "csr", "tuple"],
)  # fmt: skip
def test_num_samples_equals_scikit_learns_private_helper(X):
    assert _compat.num_samples(X) == _num_samples(X)


def test_integer_interval_refuses_booleans_only():
    interval = _compat.IntegerInterval(1, None, closed="left")
    assert interval.is_satisfied_by(3) and interval.is_satisfied_by(np.int64(3))
    assert not interval.is_satisfied_by(True) and not interval.is_satisfied_by(np.True_)
    assert not interval.is_satisfied_by(0) and not interval.is_satisfied_by(2.0)


# --------------------------------------------------------------------------- skorch
def test_skorch_bookkeeping_attribute_exists_and_is_filtered_from_parameters():
    """skorch keeps the attribute in the instance and so lists it as a parameter; the sketch
    estimators drop it, so clone and grid search never see it."""
    skorch = pytest.importorskip("skorch")
    torch = pytest.importorskip("torch")
    from sklearn_basemodel import SketchClassifier

    net = skorch.NeuralNet(torch.nn.Linear, criterion=torch.nn.MSELoss, module__in_features=2,
                           module__out_features=1)  # fmt: skip
    assert _compat.SKORCH_BOOKKEEPING_ATTRIBUTES <= set(vars(net))
    assert _compat.SKORCH_BOOKKEEPING_ATTRIBUTES <= set(net.get_params(deep=False))
    ours = SketchClassifier(hidden_units=8)
    assert _compat.SKORCH_BOOKKEEPING_ATTRIBUTES <= set(vars(ours))
    assert not _compat.SKORCH_BOOKKEEPING_ATTRIBUTES & set(ours.get_params(deep=True))


def test_release_dbt_duckdb_closes_the_cached_database(tmp_path):
    """After a dbt command the database file is free again (the private cache is closed)."""
    import duckdb

    from sklearn_basemodel._compat import release_dbt_duckdb

    dbt_duckdb = pytest.importorskip("dbt.adapters.duckdb.connections")
    manager = dbt_duckdb.DuckDBConnectionManager
    assert hasattr(manager, "_ENV") and hasattr(manager, "_LOCK")  # the version gate's premise

    class _Env:
        closed = False

        def close(self):
            self.closed = True

    env = _Env()
    manager._ENV = env
    assert release_dbt_duckdb() is True and env.closed and manager._ENV is None
    assert release_dbt_duckdb() is False
    duckdb.connect(str(tmp_path / "free.duckdb")).close()
