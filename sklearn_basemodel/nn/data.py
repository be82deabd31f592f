"""Rows of a (sparse) matrix as a torch dataset, batched and densified one batch at a time."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["SketchDataset"]


def _take_rows(A, rows: np.ndarray) -> np.ndarray:
    """Dense float rows of ``A`` (ndarray or CSR); a contiguous run is sliced, not gathered."""
    contiguous = len(rows) > 0 and bool(np.all(np.diff(rows) == 1))
    part = A[rows[0] : rows[-1] + 1] if contiguous else A[rows]
    if sp.issparse(part):
        part = part.toarray()
    return np.ascontiguousarray(part)


class SketchDataset(torch.utils.data.Dataset):
    """Rows of a dense array or a CSR matrix (and optional targets), densified per batch.

    Indexing with an array of row positions returns a whole batch ``(X_batch, y_batch)`` as
    tensors, so a sparse input is never densified beyond one batch. The estimators feed it
    index arrays through a batch sampler (``DataLoader(dataset, batch_size=None,
    sampler=...)``); integer indexing (one row) works too, for plain ``DataLoader`` use.

    Parameters
    ----------
    X : ndarray or scipy.sparse.csr_matrix of shape (n_rows, n_features), float32
    y : ndarray or CSR matrix of shape (n_rows, ...), default=None
        Encoded targets (float32, or int64 class indices).
    rows : ndarray of int, default=None
        Row positions this dataset exposes (a subset); all rows by default.
    """

    def __init__(self, X, y=None, rows=None):
        self.X = X
        self.y = y
        self.rows = rows

    def __len__(self) -> int:
        return self.X.shape[0] if self.rows is None else len(self.rows)

    def __getitem__(self, index):
        single = isinstance(index, Integral)
        positions = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if self.rows is not None:
            positions = self.rows[positions]
        X = torch.from_numpy(_take_rows(self.X, positions).astype(np.float32, copy=False))
        y = torch.zeros(len(positions)) if self.y is None else torch.from_numpy(
            _take_rows(self.y, positions)
        )
        return (X[0], y[0]) if single else (X, y)

    def subset(self, positions: np.ndarray) -> SketchDataset:
        """The rows at ``positions`` of this dataset, without copying the data."""
        positions = np.asarray(positions, dtype=np.int64)
        rows = positions if self.rows is None else self.rows[positions]
        return type(self)(self.X, self.y, rows=rows)


class _RowBatches:
    """Batch sampler: arrays of row positions, shuffled per epoch when training.

    A last batch of a single row is merged into the previous one when training: BatchNorm cannot
    normalise a batch of one.
    """

    def __init__(self, n_rows, batch_size, *, shuffle, seed, drop_last=False, training=False):
        self.n_rows = n_rows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.drop_last = drop_last
        self.training = training

    def _bounds(self) -> list:
        bounds = list(range(0, self.n_rows, self.batch_size)) + [self.n_rows]
        short_last = len(bounds) > 2 and bounds[-1] - bounds[-2] < self.batch_size
        if short_last and self.drop_last:
            bounds.pop()
        elif short_last and self.training and bounds[-1] - bounds[-2] == 1:
            bounds.pop(-2)
        return bounds

    def __iter__(self):
        order = self.rng.permutation(self.n_rows) if self.shuffle else np.arange(self.n_rows)
        bounds = self._bounds()
        for start, stop in zip(bounds[:-1], bounds[1:]):
            yield order[start:stop]

    def __len__(self) -> int:
        return len(self._bounds()) - 1
