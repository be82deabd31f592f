"""Rows of a (sparse) matrix as a torch dataset, batched and densified one batch at a time
(on a GPU, from one copy of the rows there)."""

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
        # copies of X and y on devices (see ``on_device``), shared with every subset
        self._copies = {}
        self._device = None

    def __len__(self) -> int:
        return self.X.shape[0] if self.rows is None else len(self.rows)

    def __getitem__(self, index):
        single = isinstance(index, Integral)
        positions = np.atleast_1d(np.asarray(index, dtype=np.int64))
        if self.rows is not None:
            positions = self.rows[positions]
        if self._device is not None:
            X, y = self._copies[self._device]
            return X.take(positions, single), y.take(positions, single)
        X = torch.from_numpy(_take_rows(self.X, positions).astype(np.float32, copy=False))
        y = torch.zeros(len(positions)) if self.y is None else torch.from_numpy(
            _take_rows(self.y, positions)
        )
        return (X[0], y[0]) if single else (X, y)

    def subset(self, positions: np.ndarray) -> SketchDataset:
        """The rows at ``positions`` of this dataset, without copying the data."""
        positions = np.asarray(positions, dtype=np.int64)
        rows = positions if self.rows is None else self.rows[positions]
        subset = type(self)(self.X, self.y, rows=rows)
        subset._copies, subset._device = self._copies, self._device
        return subset

    def on_device(self, device) -> SketchDataset:
        """This dataset with X and y copied once to ``device``: its batches are then gathered
        and densified there.

        The estimators use it on a GPU, where it moves the row positions per training step
        instead of a whole dense batch from the CPU. On a GPU it falls back to this dataset
        (batches densified on the CPU) when the copies would take more than half of the
        device's free memory. Subsets share the copies.
        """
        device = torch.device(device)
        if device not in self._copies:
            if device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(device)
                if _nbytes(self.X) + _nbytes(self.y) > free // 2:
                    return self
            # without y, zeros as targets, like the CPU path
            y = _Zeros(device) if self.y is None else _DeviceRows(self.y, device)
            self._copies[device] = (_DeviceRows(self.X, device, dtype=np.float32), y)
        on = self.subset(np.arange(len(self)))
        on._device = device
        return on


def _nbytes(A) -> int:
    if A is None:
        return 0
    if sp.issparse(A):
        return A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
    return np.asarray(A).nbytes


class _Zeros:
    """Targets of a dataset without y: zeros, made on the device."""

    def __init__(self, device):
        self.device = device

    def take(self, positions, single):
        return torch.zeros((), device=self.device) if single else torch.zeros(
            len(positions), device=self.device
        )


class _DeviceRows:
    """A dense array or CSR matrix held on a torch device; ``take`` densifies rows there.

    A CSR batch is scattered into zeros from the rows' nonzeros (duplicates summed, as
    ``toarray`` does), so only the row positions travel per batch. The batch's number of
    nonzeros is counted on the CPU (from a copy of ``indptr``) so that no step waits for the
    device.
    """

    def __init__(self, A, device, dtype=None):
        self.device = torch.device(device)
        self.sparse = sp.issparse(A)
        if self.sparse:
            A = sp.csr_matrix(A)
            self.n_columns = A.shape[1]
            self.indptr_cpu = A.indptr.astype(np.int64)
            self.indptr = torch.from_numpy(self.indptr_cpu).to(device)
            self.indices = torch.from_numpy(A.indices.astype(np.int64)).to(device)
            self.data = torch.from_numpy(np.asarray(A.data, dtype=dtype)).to(device)
        else:
            self.values = torch.from_numpy(np.ascontiguousarray(A, dtype=dtype)).to(device)

    def take(self, positions, single):
        """Dense rows at ``positions`` (ndarray of int64), on the device."""
        index = torch.from_numpy(positions).to(self.device, non_blocking=True)
        if not self.sparse:
            rows = self.values[index]
        else:
            n_values = int((self.indptr_cpu[positions + 1] - self.indptr_cpu[positions]).sum())
            starts = self.indptr[index]
            counts = self.indptr[index + 1] - starts
            row_of = torch.repeat_interleave(torch.arange(len(index), device=self.device), counts,
                                             output_size=n_values)  # fmt: skip
            first = torch.cumsum(counts, 0) - counts  # each row's first place in the batch
            at = starts[row_of] + torch.arange(n_values, device=self.device) - first[row_of]
            rows = torch.zeros((len(index), self.n_columns), dtype=self.data.dtype,
                               device=self.device)  # fmt: skip
            rows.index_put_((row_of, self.indices[at]), self.data[at], accumulate=True)
        return rows[0] if single else rows


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
