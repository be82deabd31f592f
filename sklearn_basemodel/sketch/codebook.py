"""The sketch layout, owned in one place: positions, blocks, normalisation, decoding, tables.

A sketch has ``n_sketches`` blocks (partitionings) of ``sketch_dim`` buckets each; bucket ``b``
of partitioning ``j`` is column ``j * sketch_dim + b``. Entity ``i`` falls in bucket
``codes[i, j]`` of partitioning ``j``. Everything that reads or writes sketches — the sketcher,
the networks, the explanations, the warehouse tables and the dbt ``emde_sketch`` macro (which
writes ``position = partitioning * sketch_dim + bucket``) — goes through this layout.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["SketchCodebook", "codebook_of"]

# decode() gathers at most this many scores per temporary block
_SCORE_CHUNK_CELLS = 1 << 24


# Sums of squares below this (or infinite) lose precision: the block is rescaled first.
_SAFE_SQUARE_SUM = 1e-280
# Values outside [1 / this, this] may give such sums (blocks hold far fewer than 1e8 values).
_SAFE_MAGNITUDE = 1e130


def divide_by_block_norms(values, block, n_blocks, norm):
    """Divide each value by the norm of its block (one block = one partitioning of one row).

    ``values`` is float64 and is divided in place (and returned); ``block`` (in
    ``[0, n_blocks)``) is non-decreasing, as in a canonical CSR matrix. When a block's sum of
    squares would underflow (weights near 1e-170) or overflow (near 1e160), the blocks are first
    scaled by their largest magnitude: the normalised block does not depend on that scale.
    """
    reduce = np.square if norm == "l2" else np.abs
    magnitude = np.abs(values)
    if len(values) and (magnitude.max() > _SAFE_MAGNITUDE or magnitude.min() < 1 / _SAFE_MAGNITUDE):
        # squares of such values can underflow or overflow: rescale every block first
        starts = np.flatnonzero(np.diff(block, prepend=block[0] - 1))
        lengths = np.diff(np.append(starts, len(values)))
        peak = np.maximum.reduceat(magnitude, starts)
        peak[peak == 0] = 1.0  # blocks of explicit zeros stay zero
        values /= np.repeat(peak, lengths)
    sums = np.bincount(block, weights=reduce(values), minlength=n_blocks)
    norms = np.sqrt(sums) if norm == "l2" else sums
    norms[norms == 0] = 1.0
    values /= np.take(norms, block)
    return values


def normalize_blocks(blocks, norm, out):
    """``out[...] = blocks / norms``; arrays of shape (n_rows, n_sketches, sketch_dim).

    Rescaled by each block's largest magnitude first when a sum of squares would underflow or
    overflow (see :func:`divide_by_block_norms`); all-zero blocks stay zero.
    """
    if norm == "l2":
        sums = np.einsum("rjw,rjw->rj", blocks, blocks).astype(np.float64)
    else:
        sums = np.abs(blocks).sum(axis=2, dtype=np.float64)
    zero = sums == 0
    nonzero = sums[~zero]
    unsafe = not np.isfinite(sums).all() or (nonzero.size and nonzero.min() <= _SAFE_SQUARE_SUM)
    if unsafe or (zero.any() and blocks[zero].any()):  # underflowed to zero, not empty
        peak = np.abs(blocks).max(axis=2).astype(np.float64)
        peak[peak == 0] = 1.0
        blocks = blocks / peak[:, :, None]
        return normalize_blocks(blocks, norm, out)
    norms = np.sqrt(sums) if norm == "l2" else sums
    norms[norms == 0] = 1.0  # all-zero blocks stay zero
    np.multiply(blocks, (1.0 / norms)[:, :, None], out=out, casting="unsafe")


class SketchCodebook:
    """Where every entity lands in a sketch, and how sketches are read back.

    Parameters
    ----------
    codes : array-like of shape (n_entities, n_sketches), int
        Bucket of every entity in every partitioning, in ``[0, sketch_dim)``.
    sketch_dim : int
        Buckets per partitioning.

    Attributes
    ----------
    codes : ndarray of shape (n_entities, n_sketches), int32
    n_entities, n_sketches, sketch_dim, width : int
        ``width = n_sketches * sketch_dim``, the number of sketch columns.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_basemodel.sketch import SketchCodebook
    >>> book = SketchCodebook([[0, 3], [1, 3]], sketch_dim=4)
    >>> book.columns().tolist()  # entity 1 fills column 1 of block 0 and column 7 of block 1
    [[0, 7], [1, 7]]
    >>> S = book.from_positions([0, 0], [1, 7], [2.0, 2.0], n_rows=1)
    >>> book.normalize(S, "l1").toarray().tolist()
    [[0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]]
    >>> int(book.decode(np.log(book.normalize(S, "l1").toarray() + 1e-9)).argmax())
    1
    """

    def __init__(self, codes, sketch_dim):
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must have shape (n_entities, n_sketches), got {codes.shape}.")
        sketch_dim = int(sketch_dim)
        if codes.size and (codes.min() < 0 or codes.max() >= sketch_dim):
            raise ValueError(f"codes hold buckets outside [0, sketch_dim={sketch_dim}).")
        self.codes = codes.astype(np.int32, copy=False)
        self.sketch_dim = sketch_dim
        self.n_entities, self.n_sketches = codes.shape
        self.width = self.n_sketches * sketch_dim

    def __repr__(self):
        return (
            f"SketchCodebook(n_entities={self.n_entities}, n_sketches={self.n_sketches}, "
            f"sketch_dim={self.sketch_dim})"
        )

    # ------------------------------------------------------------------ positions
    def offsets(self):
        """First column of every block: ``j * sketch_dim``, int32."""
        return np.arange(self.n_sketches, dtype=np.int32) * np.int32(self.sketch_dim)

    def columns(self, entities=None):
        """Column of each entity in each partitioning, shape (n, n_sketches), int32.

        Parameters
        ----------
        entities : array-like of int, default=None
            Vocabulary positions; None means all entities.
        """
        codes = self.codes if entities is None else np.take(self.codes, entities, axis=0)
        return codes + self.offsets()

    def block_of(self, columns):
        """The partitioning (block) of each column index."""
        return np.asarray(columns) // self.sketch_dim

    def block_mass(self, X):
        """Sum of every block of every row, shape (n_rows, n_sketches), float64."""
        if sp.issparse(X):
            X = X.tocsr()
            rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
            group = rows * self.n_sketches + self.block_of(X.indices)
            mass = np.bincount(group, weights=X.data, minlength=X.shape[0] * self.n_sketches)
            return mass.reshape(X.shape[0], self.n_sketches)
        X = np.asarray(X, dtype=np.float64)
        return X.reshape(len(X), self.n_sketches, self.sketch_dim).sum(axis=2)

    def check_width(self, sketches):
        """Refuse sketches whose width is not this layout's."""
        if len(np.shape(sketches)) != 2 or np.shape(sketches)[1] != self.width:
            raise ValueError(
                f"Expected sketches of shape (n_rows, {self.width}), got {np.shape(sketches)}."
            )

    # ------------------------------------------------------------------ normalisation
    def normalize(self, sketches, norm):
        """Normalise every block of every row (L2 or L1); all-zero blocks stay zero.

        Parameters
        ----------
        sketches : CSR matrix or ndarray of shape (n_rows, width)
        norm : {"l2", "l1"} or None
            None returns a float32 copy.

        Returns
        -------
        CSR matrix or ndarray of the same shape, float32 (a new object)
        """
        if norm not in ("l2", "l1", None):
            raise ValueError(f"norm must be 'l2', 'l1' or None, got {norm!r}.")
        self.check_width(sketches)
        values = sketches.data if sp.issparse(sketches) else np.asarray(sketches)
        if not np.isfinite(values).all():
            raise ValueError("The sketches contain NaN or infinite values.")
        if sp.issparse(sketches):
            out = sketches.tocsr().astype(np.float32)  # astype copies
            out.sum_duplicates()
            if norm is not None and out.nnz:
                row = np.repeat(np.arange(out.shape[0]), np.diff(out.indptr))
                block = row * self.n_sketches + self.block_of(out.indices)
                values = out.data.astype(np.float64)
                divide_by_block_norms(values, block, out.shape[0] * self.n_sketches, norm)
                out.data = values.astype(np.float32)
            return out
        out = np.array(sketches, dtype=np.float32)
        if norm is not None:
            blocks = out.reshape(len(out), self.n_sketches, self.sketch_dim)
            normalize_blocks(blocks.astype(np.float64), norm, blocks)
        return out

    # ------------------------------------------------------------------ decoding
    def decode(self, log_probs, offset=None):
        """Score every entity: ``sum_j log_probs[:, j * sketch_dim + codes[i, j]] + offset[i]``.

        Parameters
        ----------
        log_probs : ndarray of shape (n_rows, width)
            Per-block log-probabilities (or logits: the ranking within a row is the same).
        offset : ndarray of shape (n_entities,), default=None
            Added to every row's scores (e.g. :meth:`popularity_offset`).

        Returns
        -------
        scores : ndarray of shape (n_rows, n_entities), float32
        """
        log_probs = np.asarray(log_probs, dtype=np.float32)
        self.check_width(log_probs)
        columns = self.columns()
        n_rows, n_entities = len(log_probs), self.n_entities
        scores = np.empty((n_rows, n_entities), dtype=np.float32)
        buffer = np.empty((0, n_entities), dtype=np.float32)
        step = max(1, _SCORE_CHUNK_CELLS // max(n_entities, 1))
        for r0 in range(0, n_rows, step):
            r1 = min(r0 + step, n_rows)
            block, out = log_probs[r0:r1], scores[r0:r1]
            if len(buffer) != r1 - r0:
                buffer = np.empty((r1 - r0, n_entities), dtype=np.float32)
            np.take(block, columns[:, 0], axis=1, out=out, mode="clip")  # unbuffered
            for j in range(1, self.n_sketches):
                np.take(block, columns[:, j], axis=1, out=buffer, mode="clip")
                out += buffer
        if offset is not None:
            scores += np.asarray(offset, dtype=np.float32)[None, :]
        return scores

    def popularity_offset(self, popularity):
        """``log pop(i) - sum_j log pi_j[b_j(i)]`` per entity, where ``pi_j[b]`` is the
        popularity mass of bucket ``b`` of partitioning ``j``: added to decoded scores it
        gives every entity its popularity share of its buckets' probability."""
        popularity = np.asarray(popularity, dtype=np.float64)
        popularity = popularity / popularity.sum()
        offset = np.log(popularity)
        for j in range(self.n_sketches):
            mass = np.bincount(self.codes[:, j], weights=popularity, minlength=self.sketch_dim)
            offset -= np.log(mass[self.codes[:, j]])
        return offset.astype(np.float32)

    # ------------------------------------------------------------------ names and tables
    def feature_names(self, prefix):
        """``<prefix>_s<partitioning>_b<bucket>`` for every column, as an object array."""
        return np.asarray(
            [f"{prefix}_s{j}_b{b}" for j in range(self.n_sketches) for b in range(self.sketch_dim)],
            dtype=object,
        )

    def to_frame(self, keys):
        """One row per (entity, partitioning): ``entity_key, partitioning, bucket, position``.

        The table the dbt ``emde_sketch`` macro joins events with
        (``position = partitioning * sketch_dim + bucket``).

        Parameters
        ----------
        keys : array-like of shape (n_entities,)
            The entity keys, in vocabulary order.
        """
        keys = np.asarray(keys)
        if len(keys) != self.n_entities:
            raise ValueError(
                f"{len(keys)} keys for a codebook of {self.n_entities} entities; pass one key "
                "per entity."
            )
        bucket = self.codes.reshape(-1).astype(np.int64)
        partitioning = np.tile(np.arange(self.n_sketches, dtype=np.int64), self.n_entities)
        return pd.DataFrame(
            {
                "entity_key": np.repeat(keys, self.n_sketches),
                "partitioning": partitioning,
                "bucket": bucket,
                "position": partitioning * self.sketch_dim + bucket,
            }
        )

    def from_positions(self, rows, positions, values, n_rows):
        """A CSR matrix (n_rows, width) from (row, position, value) triples (summed).

        The reader of sketches computed in the warehouse (the ``basemodel_history_sketches``
        model gives one row per non-zero cell).
        """
        rows = np.asarray(rows, dtype=np.int64)
        positions = np.asarray(positions, dtype=np.int64)
        values = np.asarray(values, dtype=np.float32)
        if not (len(rows) == len(positions) == len(values)):
            raise ValueError("rows, positions and values must have the same length.")
        if len(positions) and (positions.min() < 0 or positions.max() >= self.width):
            raise ValueError(f"positions must lie in [0, {self.width}).")
        if len(rows) and (rows.min() < 0 or rows.max() >= n_rows):
            raise ValueError(f"rows must lie in [0, n_rows={n_rows}).")
        if not np.isfinite(values).all():
            raise ValueError("values contain NaN or infinite numbers.")
        matrix = sp.csr_matrix((values, (rows, positions)), shape=(int(n_rows), self.width))
        matrix.sum_duplicates()
        return matrix


def codebook_of(sketcher):
    """The :class:`SketchCodebook` of a fitted sketcher (``codebook_``, else built from its
    ``codes_`` and ``n_features_out_``), e.g. one wrapped in ``FrozenEstimator``."""
    book = getattr(sketcher, "codebook_", None)
    if isinstance(book, SketchCodebook):
        return book
    codes = np.asarray(sketcher.codes_)
    return SketchCodebook(codes, int(sketcher.n_features_out_) // codes.shape[1])
