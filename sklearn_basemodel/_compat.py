"""Every use of a private API of a dependency, in one place, version-gated, with a fallback.

A private name can move or vanish in any release. Each one is imported here only, inside a
check of the dependency's version range in which it was tested; outside that range (or when the
import fails) the public fallback next to it is used, so the library keeps working — only
slower, or with fewer output options. ``tests/test_compat.py`` checks each fallback gives the
same result as the private path.

scikit-learn's parameter validation (``sklearn.utils._param_validation``) and ``_fit_context``
are the documented way for third-party estimators to validate parameters (the developer guide
points to them); they are re-exported from here as well so that one file lists every private
import.
"""

from __future__ import annotations

import contextlib
from numbers import Integral

import numpy as np
import scipy
import scipy.sparse as sp
import sklearn
from sklearn.base import _fit_context  # noqa: F401  (re-exported)
from sklearn.utils._param_validation import (  # noqa: F401  (re-exported)
    HasMethods,
    Interval,
    Options,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)


class IntegerInterval(Interval):
    """``Interval(Integral, left, right, closed=...)`` that refuses booleans.

    ``True`` is an ``Integral`` in Python, so scikit-learn's interval accepts
    ``n_components=True`` and numpy fails later with "an integer is required".
    """

    def __init__(self, left, right, *, closed):
        super().__init__(Integral, left, right, closed=closed)

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


def _version(module) -> tuple:
    parts = []
    for piece in module.__version__.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


SCIPY_VERSION = _version(scipy)
SKLEARN_VERSION = _version(sklearn)

# --------------------------------------------------------------------------- scipy
# csr_matvecs is the C++ kernel behind scipy's CSR @ dense: ``Y += A @ X`` in place and without
# the GIL, which lets Cleora's propagation run on threads without a temporary per product.
_csr_matvecs = None
if (1, 10) <= SCIPY_VERSION < (1, 19):
    try:
        from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
    except ImportError:  # pragma: no cover - moved within the tested range
        _csr_matvecs = None


def csr_matvecs_available() -> bool:
    """Whether the fast private kernel is used (else :func:`csr_matvecs` falls back)."""
    return _csr_matvecs is not None


def csr_matvecs(indptr, indices, data, n_col, X, out, *, private=True):
    """``out += A @ X`` for CSR rows ``A`` whose ``indptr`` holds absolute offsets into
    ``indices`` / ``data`` (a slice of a larger matrix's indptr); X and out C-contiguous.

    ``private=False`` forces the public fallback (used by the tests).
    """
    if private and _csr_matvecs is not None:
        if not (out.flags.c_contiguous and X.flags.c_contiguous):
            raise ValueError("internal error: the sparse kernel needs C-contiguous arrays")
        _csr_matvecs(
            len(indptr) - 1, n_col, X.shape[1], indptr, indices, data, X.reshape(-1),
            out.reshape(-1),
        )  # fmt: skip
        return out
    a, b = int(indptr[0]), int(indptr[-1])
    A = sp.csr_matrix((data[a:b], indices[a:b], indptr - a), shape=(len(indptr) - 1, n_col))
    out += A @ X
    return out


# --------------------------------------------------------------------------- scikit-learn
def align_api_if_sparse(X):
    """A sparse matrix as the sparse container scikit-learn is configured to return.

    scikit-learn >= 1.9 can be set to return sparse arrays instead of matrices
    (``sklearn.set_config(sparse_interface=...)``); older versions always use matrices.
    """
    if SKLEARN_VERSION >= (1, 9):
        try:
            from sklearn.utils import _align_api_if_sparse
        except ImportError:  # pragma: no cover
            return X
        return _align_api_if_sparse(X)
    return X


def dense_output_requested(estimator) -> bool:
    """Whether ``set_output(transform=...)`` asked this estimator for a DataFrame output.

    The public signal is the estimator's ``_sklearn_output_config``, which ``set_output``
    writes; the private helper also honours the global ``set_config(transform_output=...)``.
    """
    if (1, 2) <= SKLEARN_VERSION < (1, 11):
        try:
            from sklearn.utils._set_output import _get_output_config
        except ImportError:  # pragma: no cover
            pass
        else:
            return _get_output_config("transform", estimator)["dense"] != "default"
    config = getattr(estimator, "_sklearn_output_config", {}).get("transform")
    if config is None:
        config = sklearn.get_config().get("transform_output", "default")
    return config != "default"


def num_samples(X) -> int:
    """Number of rows of an array-like, list, DataFrame or sparse matrix."""
    if hasattr(X, "shape") and len(getattr(X, "shape", ())) >= 1:
        return int(X.shape[0])
    if hasattr(X, "__array__") and not hasattr(X, "__len__"):
        return int(np.asarray(X).shape[0])
    return len(X)


def select_columns(X, spec):
    """The columns ``spec`` of X as a ColumnTransformer passes them to a transformer.

    ``spec`` is a column name, a list of names, an int, a list of ints, a slice or a boolean
    mask; a scalar keeps one column as a 1-D Series (or array), like scikit-learn does.
    """
    if (1, 0) <= SKLEARN_VERSION < (1, 11):
        try:
            from sklearn.utils import _safe_indexing
        except ImportError:  # pragma: no cover
            pass
        else:
            return _safe_indexing(X, spec, axis=1)
    if hasattr(X, "iloc"):
        by_name = isinstance(spec, str) or (
            isinstance(spec, list) and spec and all(isinstance(c, str) for c in spec)
        )
        return X[spec] if by_name else X.iloc[:, spec]
    return np.asarray(X)[:, spec]


# --------------------------------------------------------------------------- skorch
# skorch's NeuralNet keeps its set of prefixed arguments to validate in the instance __dict__
# under this name (skorch >= 1.0); it is bookkeeping, not a parameter to clone or tune.
SKORCH_BOOKKEEPING_ATTRIBUTES = frozenset({"_params_to_validate"})


# --------------------------------------------------------------------------- dbt-duckdb
def release_dbt_duckdb() -> bool:
    """Close the database dbt-duckdb keeps open in this process after a command.

    dbt-duckdb (1.8 to 1.11 tested) caches one DuckDB instance per process in the class
    attributes ``_ENV`` (guarded by ``_LOCK``) of its connection manager, which keeps the
    database file locked: opening it again here, even read-only, or from another process fails
    until the interpreter exits. There is no public API for this; when the attributes are gone
    nothing is released (and the caller's later open fails with DuckDB's own lock message).
    Returns whether an open database was closed.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing to release
        return False
    lock = getattr(DuckDBConnectionManager, "_LOCK", None)
    with lock if lock is not None else contextlib.nullcontext():
        environment = getattr(DuckDBConnectionManager, "_ENV", None)
        if environment is None:
            return False
        environment.close()
        DuckDBConnectionManager._ENV = None
        return True
