"""The sketch kernel: weighted counts of entities per bucket, for many rows at once.

Events are mapped to vocabulary positions once; every chunk of rows is summed with one
``bincount``, which also sorts and merges the columns of the CSR output.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .codebook import divide_by_block_norms, normalize_blocks

# Rows are sketched in chunks whose scratch array (rows x n_sketches*sketch_dim cells) stays
# cache-sized.
_SPARSE_CHUNK_CELLS = 1 << 17
_DENSE_CHUNK_CELLS = 1 << 18


def bucket_sums(entity, indptr, weights, codebook, cells_per_chunk):
    """Yield ``(r0, r1, sums)`` for chunks of rows that hold events: ``sums`` is the flat
    (rows r0:r1 x width) array of weighted counts, cell ``r * width + j * sketch_dim + b``."""
    codes, n_sketches, width = codebook.codes, codebook.n_sketches, codebook.width
    offsets = codebook.offsets()
    # the column of every entity in every partitioning; computed per event when that is less work
    columns = codebook.columns() if len(entity) > len(codes) else None
    counts = np.diff(indptr)
    step = max(1, cells_per_chunk // width)
    for r0 in range(0, len(counts), step):
        r1 = min(r0 + step, len(counts))
        a, b = indptr[r0], indptr[r1]
        if a == b:
            continue
        if columns is None:
            cell = np.take(codes, entity[a:b], axis=0)
            cell += offsets
        else:
            cell = np.take(columns, entity[a:b], axis=0)
        cell += np.repeat(np.arange(r1 - r0, dtype=np.int32) * np.int32(width), counts[r0:r1])[
            :, None
        ]
        w = None if weights is None else np.repeat(weights[a:b], n_sketches)
        yield r0, r1, np.bincount(cell.ravel(), weights=w, minlength=(r1 - r0) * width)


def sketch_matrix(entity, indptr, weights, codebook, norm, dense):
    """Sketches of rows of entities: per row, the weighted one-hot codes summed.

    Parameters
    ----------
    entity : ndarray of shape (n_events,), int
        Vocabulary position of every event (all known), grouped by row.
    indptr : ndarray of shape (n_rows + 1,)
        Row i holds ``entity[indptr[i]:indptr[i + 1]]``.
    weights : ndarray of shape (n_events,) or None
        Weight of every event; None means 1.
    codebook : SketchCodebook
        The layout: bucket of every entity in every partitioning.
    norm : {"l2", "l1", None}
        Per-(row, partitioning) normalisation.
    dense : bool
        ndarray output instead of a canonical CSR matrix.
    """
    n_rows = len(indptr) - 1
    n_sketches, sketch_dim, width = codebook.n_sketches, codebook.sketch_dim, codebook.width
    chunks = bucket_sums(
        entity, indptr, weights, codebook,
        _DENSE_CHUNK_CELLS if dense else _SPARSE_CHUNK_CELLS,
    )
    if dense:
        out = np.zeros((n_rows, width), dtype=np.float32)
        for r0, r1, sums in chunks:
            if norm is None:
                out[r0:r1] = sums.reshape(r1 - r0, width)
            else:
                shape = (r1 - r0, n_sketches, sketch_dim)
                normalize_blocks(sums.reshape(shape), norm, out[r0:r1].reshape(shape))
        return out
    # every (event, partitioning) gives at most one entry: fill buffers of that size in place
    # (pages never written are never committed) rather than concatenating per-chunk pieces
    capacity = len(entity) * n_sketches
    data = np.empty(capacity, dtype=np.float32)
    indices = np.empty(capacity, dtype=np.int32)
    nnz_per_row = np.zeros(n_rows, dtype=np.int64)
    block_shift = int(sketch_dim).bit_length() - 1
    nnz = 0
    for r0, r1, sums in chunks:
        # scanning the scratch row-major yields each row's columns sorted and merged
        nz = np.flatnonzero(sums != 0)
        values = np.take(sums, nz).astype(np.float64, copy=False)
        if norm is not None:
            divide_by_block_norms(values, nz >> block_shift, (r1 - r0) * n_sketches, norm)
        row_ends = np.searchsorted(nz, np.arange(1, r1 - r0 + 1) * width)
        row_nnz = np.diff(row_ends, prepend=0)
        nnz_per_row[r0:r1] = row_nnz
        end = nnz + len(nz)
        row_start = np.repeat(np.arange(r1 - r0, dtype=np.int64) * width, row_nnz)
        np.subtract(nz, row_start, out=indices[nnz:end], casting="unsafe")
        data[nnz:end] = values
        nnz = end
    index_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    out_indptr = np.zeros(n_rows + 1, dtype=index_dtype)
    np.cumsum(nnz_per_row, out=out_indptr[1:])
    matrix = sp.csr_matrix(
        (data[:nnz], indices[:nnz].astype(index_dtype, copy=False), out_indptr),
        shape=(n_rows, width),
    )
    matrix.has_canonical_format = True
    return matrix
