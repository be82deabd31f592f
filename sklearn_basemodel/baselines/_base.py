"""Shared machinery of the baseline recommenders: rows to sparse matrices, top-k, the base class."""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ..metrics import check_k, recall_at_k, top_k

_BLOCK_FLOATS = 1 << 22

# --------------------------------------------------------------------------- rows
def _check_sequence(X, name):
    """``X`` as a list of rows, with the mistakes users make most named in the error."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of rows, got the string {X!r}.")
    if isinstance(X, Mapping):
        raise TypeError(
            f"{name} must be a sequence of rows (e.g. a list of item lists); a mapping is one "
            "row: wrap it in a list."
        )
    if isinstance(X, pd.DataFrame):
        raise TypeError(
            f"{name} must be one column of rows (a Series of item lists), got a DataFrame with "
            f"columns {list(X.columns)}; select the column, e.g. X['items']."
        )
    if isinstance(X, np.ndarray) and X.ndim == 0:
        raise TypeError(f"{name} must be a sequence of rows, got a scalar array.")
    try:
        rows = X.tolist() if isinstance(X, (pd.Series, np.ndarray)) else list(X)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of rows, got {type(X).__name__}."
        ) from None
    return rows


def _is_missing(row):
    return row is None or (isinstance(row, float) and math.isnan(row))


def _row_entries(row, position, name):
    """Keys and weights (None: all 1) of one row; empty for a missing row."""
    if _is_missing(row):
        return [], None
    if isinstance(row, (str, bytes)):
        raise TypeError(
            f"{name}[{position}] is the string {row!r}; a row is an iterable of item keys (wrap a "
            "single key in a list) or a mapping key -> weight."
        )
    if isinstance(row, Mapping):
        keys = list(row.keys())
        weights = np.asarray(list(row.values()), dtype=np.float64)
        if weights.size and (not np.isfinite(weights).all() or (weights < 0).any()):
            raise ValueError(f"{name}[{position}]: weights must be finite and non-negative.")
        return keys, weights
    try:
        return list(row), None
    except TypeError:
        raise TypeError(
            f"{name}[{position}] is {type(row).__name__}; a row must be an iterable of item keys "
            "or a mapping key -> weight."
        ) from None


def _parse_rows(X, name="X"):
    """Flat keys, weights and row ids of all rows: ``(keys, weights, row_of, n_rows)``."""
    rows = _check_sequence(X, name)
    keys, weights, row_of = [], [], []
    for position, row in enumerate(rows):
        row_keys, row_weights = _row_entries(row, position, name)
        keys.extend(row_keys)
        weights.append(np.ones(len(row_keys)) if row_weights is None else row_weights)
        row_of.append(np.full(len(row_keys), position, dtype=np.int64))
    weights = np.concatenate(weights) if weights else np.zeros(0)
    row_of = np.concatenate(row_of) if row_of else np.zeros(0, dtype=np.int64)
    return keys, weights, row_of, len(rows)


def _key_array(keys):
    """Keys as a numpy array: int64 or str when they are all of that kind, else object."""
    out = np.empty(len(keys), dtype=object)
    out[:] = keys
    if keys and all(isinstance(key, (Integral, np.integer)) and not isinstance(key, bool)
                    for key in keys):  # fmt: skip
        return out.astype(np.int64)
    if keys and all(isinstance(key, str) for key in keys):
        return out.astype(str)
    return out


def _vocabulary(keys):
    """Distinct keys, sorted when they sort (first-seen order otherwise)."""
    distinct = list(dict.fromkeys(keys))
    try:
        distinct = sorted(distinct)
    except TypeError:
        pass
    return _key_array(distinct)


def _sparse_rows(keys, weights, row_of, n_rows, index):
    """CSR (n_rows, len(index)) of summed weights; keys missing from ``index`` are dropped."""
    columns = np.fromiter((index.get(key, -1) for key in keys), dtype=np.int64, count=len(keys))
    known = columns >= 0
    matrix = sp.csr_matrix(
        (weights[known], (row_of[known], columns[known])), shape=(n_rows, len(index))
    )
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    return matrix


# --------------------------------------------------------------------------- base
class _RecommenderBase(BaseEstimator):
    """Shared predict / score machinery: subclasses turn rows into an input matrix and score it.

    Subclasses implement ``_input(X)`` (CSR, one row per customer over ``items_``; its non-zero
    entries are the items the customer has seen) and ``_block_scores(inputs)`` (dense scores of
    a block of input rows).
    """

    _parameter_constraints: dict = {"exclude_seen": ["boolean"]}

    def _set_vocabulary(self, keys):
        self.items_ = _vocabulary(keys)
        self._index = {key: i for i, key in enumerate(self.items_.tolist())}
        if not len(self.items_):
            raise ValueError(
                f"{type(self).__name__}: the training rows hold no item; pass at least one "
                "non-empty row."
            )

    def _input(self, X):
        return _sparse_rows(*_parse_rows(X), self._index)

    def _fit_input(self, X):
        """Learn ``items_`` from the training rows; return their input matrix."""
        history = _parse_rows(X)
        self._set_vocabulary(history[0])
        return _sparse_rows(*history, self._index)

    def _block_size(self):
        return max(1, _BLOCK_FLOATS // max(len(self.items_), 1))

    def _scores_with_exclusion(self, inputs):
        scores = np.asarray(self._block_scores(inputs), dtype=np.float64)
        if self.exclude_seen:
            rows, cols = inputs.nonzero()
            scores[rows, cols] = -np.inf
        return scores

    def predict_scores(self, X):
        """Score of every item for every row.

        Parameters
        ----------
        X : sequence of rows
            Customer histories (see the class docstring for the row form).

        Returns
        -------
        ndarray of shape (n_rows, n_items_)
            Float scores, higher is better, columns in the order of ``items_``. With
            ``exclude_seen=True`` the items in a row score ``-inf``.
        """
        check_is_fitted(self, "items_")
        inputs = self._input(X)
        step = self._block_size()
        blocks = [self._scores_with_exclusion(inputs[start : start + step])
                  for start in range(0, inputs.shape[0], step)]  # fmt: skip
        return np.vstack(blocks) if blocks else np.zeros((0, len(self.items_)))

    def predict(self, X, k=10):
        """The ``k`` best items of every row.

        Parameters
        ----------
        X : sequence of rows
        k : int, default=10
            Number of items per row.

        Returns
        -------
        ndarray of shape (n_rows, k), dtype object
            Item keys, best first; ``None`` where fewer than ``k`` items can be recommended
            (fewer items known, or the rest excluded as seen).
        """
        k = check_k(k)
        check_is_fitted(self, "items_")
        inputs = self._input(X)
        out = np.full((inputs.shape[0], k), None, dtype=object)
        items = np.empty(len(self.items_), dtype=object)
        items[:] = self.items_.tolist()
        step = self._block_size()
        for start in range(0, inputs.shape[0], step):
            scores = self._scores_with_exclusion(inputs[start : start + step])
            top, values = top_k(scores, min(k, scores.shape[1]))
            block = np.where(np.isfinite(values), items[top], None)
            out[start : start + len(block), : block.shape[1]] = block
        return out

    def score(self, X, y, k=10):
        """Recall@k of ``predict(X, k)`` against the relevant items ``y`` (one row each).

        Uses :func:`sklearn_basemodel.metrics.recall_at_k` (denominator: the number of
        relevant items of the row).
        """
        return recall_at_k(y, self.predict(X, k), k)
