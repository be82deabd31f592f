"""Rows of entity keys -> flat arrays, vocabularies and sparse incidence matrices; rows split
into kept and hidden items.

This is the one place where user rows are parsed. Every estimator of the library calls
:func:`flatten_rows` and works on the :class:`FlatRows` it returns, so the accepted inputs and the
error messages are the same everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = [
    "FlatRows",
    "flatten_rows",
    "flatten_scalars",
    "lookup",
    "rows_matrix",
    "is_list_like_column",
    "unique_per_row",
    "split_timed_rows",
    "flatten_parallel",
    "hide_items",
]

_ROW_HELP = (
    "Pass one row per sample, each row an iterable of entity keys (e.g. [['milk', 'bread'], "
    "['beer']]) or a mapping key -> weight (e.g. [{'milk': 2.0}])."
)


@dataclass
class FlatRows:
    """Rows flattened into CSR-like arrays.

    Attributes
    ----------
    indptr : ndarray of shape (n_rows + 1,), int64
        Row ``i`` holds ``keys[indptr[i]:indptr[i + 1]]``.
    keys : ndarray of shape (nnz,)
        int64 when every key is an integer, otherwise object.
    weights : ndarray of shape (nnz,), float64, or None
        Per-key weights when at least one row was a mapping; ``None`` means all weights are 1.
    """

    indptr: np.ndarray
    keys: np.ndarray
    weights: np.ndarray | None = None

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    def row_ids(self) -> np.ndarray:
        """Row index of every key, shape (nnz,)."""
        return np.repeat(np.arange(self.n_rows, dtype=np.int64), np.diff(self.indptr))

    def weights_or_ones(self) -> np.ndarray:
        if self.weights is None:
            return np.ones(len(self.keys), dtype=np.float64)
        return self.weights


def _describe(obj) -> str:
    text = repr(obj)
    return text if len(text) <= 60 else text[:57] + "..."


def _rows_of(X, name: str):
    """Return X as a sequence of rows, rejecting containers that are not row collections."""
    if X is None:
        raise TypeError(f"{name} is None. {_ROW_HELP}")
    if isinstance(X, (str, bytes)):
        raise ValueError(
            f"{name} is a single string ({_describe(X)}), not a collection of rows. {_ROW_HELP}"
        )
    if sp.issparse(X):
        raise TypeError(
            f"Sparse input is not supported: {name} is a scipy sparse matrix, but this estimator "
            f"takes rows of entity keys. {_ROW_HELP}"
        )
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise ValueError(
                f"{name} is a DataFrame with {X.shape[1]} columns; this estimator takes one column "
                "of rows. Select the column (df['products']) or use a ColumnTransformer to apply "
                "one estimator per column."
            )
        return X.iloc[:, 0].tolist()
    if isinstance(X, pd.Series):
        return X.tolist()
    if isinstance(X, np.ndarray):
        if X.ndim == 0:
            raise TypeError(f"{name} is a scalar array ({_describe(X)}). {_ROW_HELP}")
        if X.ndim == 2 and X.dtype != object:
            return list(X)
        return list(X)
    if isinstance(X, Mapping):
        raise TypeError(
            f"{name} is a single mapping, not a collection of rows. Wrap it in a list "
            f"([{{...}}]) to make one weighted row. {_ROW_HELP}"
        )
    if not isinstance(X, Iterable) and hasattr(X, "__array__"):
        return _rows_of(np.asarray(X), name)
    if not isinstance(X, Iterable):
        raise TypeError(f"{name} must be a collection of rows, got {type(X).__name__}. {_ROW_HELP}")
    return X if isinstance(X, (list, tuple)) else list(X)


def _check_row(row, i: int, name: str):
    if row is None:
        raise ValueError(f"Row {i} of {name} is None. Pass an empty list for a row with no entities.")
    if isinstance(row, (str, bytes)):
        raise ValueError(
            f"Row {i} of {name} is a string ({_describe(row)}), which would be split into "
            f"characters. Wrap it in a list ([{row!r}]) if it is a single entity. {_ROW_HELP}"
        )
    if isinstance(row, float) and np.isnan(row):
        raise ValueError(
            f"Row {i} of {name} is NaN (a missing value). Replace missing rows with empty lists, "
            "e.g. series.apply(lambda r: r if isinstance(r, list) else [])."
        )
    if not isinstance(row, (Iterable, Mapping)):
        raise ValueError(
            f"Row {i} of {name} is a scalar ({_describe(row)}), not a collection of entity keys. "
            f"Wrap single keys in a list. {_ROW_HELP}"
        )


def _as_key_array(flat: list) -> np.ndarray:
    """Keys as int64 when they are all integers (fast path), else object."""
    if not flat:
        return np.empty(0, dtype=np.int64)
    first = flat[0]
    if isinstance(first, Integral) and not isinstance(first, bool):
        try:
            arr = np.array(flat)
        except (ValueError, TypeError, OverflowError):
            arr = None
        if arr is not None and arr.dtype.kind in "iu" and arr.ndim == 1:
            return arr.astype(np.int64, copy=False)
    arr = np.empty(len(flat), dtype=object)
    arr[:] = flat
    return arr


def _check_keys(keys: np.ndarray, indptr: np.ndarray, name: str) -> None:
    if keys.dtype != object:
        return
    missing = pd.isna(keys)
    if missing.any():
        pos = int(np.flatnonzero(missing)[0])
        row = int(np.searchsorted(indptr, pos, side="right") - 1)
        raise ValueError(
            f"Row {row} of {name} contains a missing key ({keys[pos]!r}). Drop missing values "
            "before passing rows (in the warehouse: the dbt package's staged events do this)."
        )
    unhashable = {t for t in set(map(type, keys)) if t.__hash__ is None}
    if unhashable:
        pos = next(i for i, key in enumerate(keys) if type(key) in unhashable)
        row = int(np.searchsorted(indptr, pos, side="right") - 1)
        raise TypeError(
            f"Row {row} of {name} contains an unhashable key {_describe(keys[pos])} of type "
            f"{type(keys[pos]).__name__}. Entity keys must be hashable (int, str, tuple); "
            "flatten nested lists first."
        )


_PLAIN_ROW_TYPES = {list, tuple, set, frozenset}


def flatten_rows(X, *, name: str = "X", allow_weights: bool = True, allow_empty: bool = False):
    """Parse rows of entity keys (or mappings key -> weight) into a :class:`FlatRows`.

    Parameters
    ----------
    X : sequence of rows, pandas Series or one-column DataFrame
        Each row is an iterable of hashable keys or a mapping key -> weight.
    name : str
        How to call ``X`` in error messages.
    allow_weights : bool
        Whether mapping rows (weights) are accepted.
    allow_empty : bool
        Whether zero rows are accepted.

    Returns
    -------
    FlatRows
    """
    rows = _rows_of(X, name)
    n_rows = len(rows)
    if n_rows == 0 and not allow_empty:
        raise ValueError(f"{name} has no rows. {_ROW_HELP}")
    row_types = set(map(type, rows))
    if row_types <= _PLAIN_ROW_TYPES:
        # fast path: every row is a list/tuple/set, so len() is valid and there is no mapping
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=n_rows)
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        keys = _as_key_array(list(chain.from_iterable(rows)))
        _check_keys(keys, indptr, name)
        return FlatRows(indptr=indptr, keys=keys, weights=None)
    lengths = np.empty(n_rows, dtype=np.int64)
    any_mapping = False
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            any_mapping = True
        elif not isinstance(row, (list, tuple, set, frozenset, np.ndarray)):
            _check_row(row, i, name)
        try:
            lengths[i] = len(row)
        except TypeError:
            _check_row(row, i, name)
            rows = list(rows) if isinstance(rows, tuple) else rows
            rows[i] = row = list(row)
            lengths[i] = len(row)
    if any_mapping and not allow_weights:
        raise TypeError(
            f"{name} contains mapping rows (key -> weight), which this estimator does not use. "
            "Pass plain lists of keys."
        )
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    weights = None
    if any_mapping:
        flat, wlist = [], []
        for i, row in enumerate(rows):
            if isinstance(row, Mapping):
                flat.extend(row.keys())
                wlist.extend(row.values())
            else:
                flat.extend(row)
                wlist.extend([1.0] * len(row))
        try:
            weights = np.asarray(wlist, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} contains a mapping whose values are not numbers; mapping rows must map "
                "key -> numeric weight."
            ) from None
        if not np.isfinite(weights).all():
            raise ValueError(f"{name} contains a non-finite weight (NaN or inf) in a mapping row.")
    else:
        flat = list(chain.from_iterable(rows))
    keys = _as_key_array(flat)
    _check_keys(keys, indptr, name)
    return FlatRows(indptr=indptr, keys=keys, weights=weights)


def flatten_scalars(values, *, name: str = "X") -> FlatRows:
    """One key per row (a scalar column such as ``customer_id``) as a :class:`FlatRows`.

    Same result as ``flatten_rows([[v] for v in values], name=name)``, without building a list
    per row when the values are integers.
    """
    arr = values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else np.asarray(values)
    if arr.ndim == 1 and len(arr) and (
        arr.dtype.kind == "i" or (arr.dtype.kind == "u" and arr.dtype.itemsize < 8)
    ):
        return FlatRows(
            indptr=np.arange(len(arr) + 1, dtype=np.int64), keys=arr.astype(np.int64), weights=None
        )
    listed = values.tolist() if hasattr(values, "tolist") else list(values)
    return flatten_rows([[v] for v in listed], name=name)


def unique_per_row(indptr: np.ndarray, codes: np.ndarray, n_cols: int):
    """Sort the codes of every row of a CSR layout and drop repeats within a row.

    Parameters
    ----------
    indptr : ndarray of shape (n_rows + 1,)
        Row ``i`` holds ``codes[indptr[i]:indptr[i + 1]]``.
    codes : ndarray of shape (nnz,)
        Non-negative integer codes below ``n_cols``.
    n_cols : int

    Returns
    -------
    indptr : ndarray of shape (n_rows + 1,), int64
    codes : ndarray of shape (nnz_unique,), int32 (int64 when ``n_cols`` needs it)
        A new array; the inputs are not modified.
    """
    index_dtype = np.int32 if max(n_cols, len(codes)) < np.iinfo(np.int32).max else np.int64
    codes = np.array(codes, dtype=index_dtype)  # a copy, sorted in place below
    indptr = np.asarray(indptr, dtype=np.int64)
    n_rows = len(indptr) - 1
    if len(codes) == 0 or len(codes) == n_rows and np.array_equal(indptr, np.arange(n_rows + 1)):
        return indptr.copy(), codes  # no row has two keys (e.g. a scalar column)
    # scipy sorts each row's indices in place (per-row std::sort): O(nnz log(row length))
    m = sp.csr_matrix(
        (np.zeros(len(codes), dtype=np.int8), codes, indptr.astype(index_dtype)),
        shape=(n_rows, n_cols),
        copy=False,
    )
    m.has_sorted_indices = False
    m.sort_indices()
    codes = m.indices
    repeat = np.empty(len(codes), dtype=bool)
    repeat[0] = False
    np.equal(codes[1:], codes[:-1], out=repeat[1:])
    starts = indptr[:-1]
    repeat[starts[starts < len(codes)]] = False  # the first key of a row repeats nothing
    if not repeat.any():
        return indptr.copy(), codes
    keep = ~repeat
    kept_before = np.zeros(len(codes) + 1, dtype=np.int64)
    np.cumsum(keep, out=kept_before[1:])
    return kept_before[indptr], codes[keep]


def lookup(keys: np.ndarray, index: pd.Index) -> np.ndarray:
    """Positions of ``keys`` in ``index`` (vectorised); -1 for keys not in the index."""
    if len(keys) == 0:
        return np.empty(0, dtype=np.int64)
    if keys.dtype != object and index.dtype == object:
        keys = keys.astype(object)
    return index.get_indexer(keys).astype(np.int64, copy=False)


def rows_matrix(rows, index: pd.Index, *, name: str = "rows") -> sp.csr_matrix:
    """Rows of keys (or mappings key -> weight) as a CSR matrix over the keys of ``index``.

    Entry ``(i, j)`` sums the weights of key ``index[j]`` in row ``i`` (1 per occurrence of a
    plain key); keys missing from ``index`` are left out. Negative weights are refused.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_basemodel.rows import rows_matrix
    >>> rows_matrix([["a", "b", "a"], {"b": 0.5, "z": 2.0}], pd.Index(["a", "b"])).toarray()
    array([[2. , 1. ],
           [0. , 0.5]])
    """
    flat = flatten_rows(rows, name=name, allow_empty=True)
    position = lookup(flat.keys, index)
    weight = flat.weights_or_ones()
    keep = position >= 0
    if (weight[keep] < 0).any():
        raise ValueError(f"{name} weights must be non-negative.")
    matrix = sp.csr_matrix(
        (weight[keep], (flat.row_ids()[keep], position[keep])), shape=(flat.n_rows, len(index))
    )
    matrix.sum_duplicates()
    return matrix


def is_list_like_column(values) -> bool:
    """True when a column holds rows (lists, sets, arrays, mappings) rather than scalars."""
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            continue
        return isinstance(v, (list, tuple, set, frozenset, np.ndarray, Mapping))
    return False


# --------------------------------------------------------------------------- timed rows
_TIMED_ROW_HELP = (
    "With half_life set, each row is a pair (keys, timestamps) of parallel lists, optionally "
    "a triple (keys, timestamps, weights), e.g. [(['milk', 'bread'], [t1, t2])]; or pass a "
    "DataFrame whose first column holds the key lists and second column the timestamp lists "
    "(and an optional third column the weight lists)."
)



def split_timed_rows(X):
    """Time form of X -> (keys part for parsing and the embedder, timestamp rows, weight rows)."""
    if isinstance(X, pd.DataFrame):
        if X.shape[1] not in (2, 3):
            raise ValueError(f"X is a DataFrame with {X.shape[1]} column(s). {_TIMED_ROW_HELP}")
        weights = X.iloc[:, 2].tolist() if X.shape[1] == 3 else None
        return X.iloc[:, 0], X.iloc[:, 1].tolist(), weights
    if X is None or isinstance(X, (str, bytes, Mapping)) or not isinstance(X, Iterable):
        raise TypeError(f"X is {_describe(X)}, not a collection of rows. {_TIMED_ROW_HELP}")
    rows = X.tolist() if isinstance(X, pd.Series) else list(X)
    if not rows:
        raise ValueError(f"X has no rows. {_TIMED_ROW_HELP}")
    size = None
    for i, row in enumerate(rows):
        ok = isinstance(row, (tuple, list)) and len(row) in (2, 3)
        ok = ok and not isinstance(row[0], (str, bytes)) and isinstance(row[0], Iterable)
        if not ok or (size is not None and len(row) != size):
            raise TypeError(f"Row {i} of X is {_describe(row)}. {_TIMED_ROW_HELP}")
        size = len(row)
    weights = [row[2] for row in rows] if size == 3 else None
    return [row[0] for row in rows], [row[1] for row in rows], weights


def flatten_parallel(rows, indptr, what):
    """Concatenate per-row lists that run parallel to the keys, checking every row's length."""
    lengths = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, Iterable):
            raise TypeError(
                f"Row {i} of the {what} is {_describe(row)}; pass one list of {what} per row, "
                "parallel to the keys."
            )
        lengths[i] = len(row)
    mismatch = np.flatnonzero(lengths != np.diff(indptr))
    if len(mismatch):
        i = int(mismatch[0])
        raise ValueError(
            f"Row {i} has {int(indptr[i + 1] - indptr[i])} keys but {int(lengths[i])} {what}; "
            f"pass exactly one of the {what} per key."
        )
    return list(chain.from_iterable(rows))


def hide_items(rows, fraction, rng):
    """Every row's distinct items split into kept inputs and hidden targets.

    A row of two or more items hides ``round(fraction * n)`` of them, at least one and never
    all; a shorter row is kept whole with no target.

    Returns
    -------
    inputs, targets : lists of lists, one per row
    """
    inputs, targets = [], []
    for row in rows:
        items = list(dict.fromkeys(row))
        n_hidden = 0
        if len(items) > 1:
            n_hidden = min(len(items) - 1, max(1, int(round(fraction * len(items)))))
        hidden = set(rng.choice(len(items), size=n_hidden, replace=False).tolist())
        inputs.append([item for i, item in enumerate(items) if i not in hidden])
        targets.append([item for i, item in enumerate(items) if i in hidden])
    return inputs, targets
