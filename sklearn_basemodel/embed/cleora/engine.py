"""The Cleora propagation engine: the hypergraph operator, start vectors and the CPU loop.

``X <- normalize(M @ X)`` with ``M = D^-1 W`` (left) or ``D^-1/2 W D^-1/2`` (symmetric), where
``W`` is the clique or bipartite expansion of the hyperedges, never materialised: each product is
a gather over the incidence matrix followed by a scatter back, run on a thread pool.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..._compat import csr_matvecs
from ..._hashing import hashed_vectors
from ...exceptions import UnknownEntityWarning
from ...rows import lookup
from .._base import normalize_rows
from .graph import Column

_MAX_THREADS = 8  # the sparse products are memory-bound: more threads stop paying off
_MIN_NNZ_PER_THREAD = 50_000  # below this a thread pool costs more than it saves


def whiten(X: np.ndarray) -> np.ndarray:
    """PCA whitening: centre, rotate to the covariance eigenbasis, scale by 1/sqrt(eigenvalue)."""
    Xc = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
    cov = Xc.T @ Xc / max(len(Xc) - 1, 1)
    eigval, eigvec = np.linalg.eigh(cov)
    scale = 1.0 / np.sqrt(np.maximum(eigval, eigval.max() * 1e-9 + 1e-12))
    return normalize_rows(((Xc @ eigvec) * scale).astype(np.float32))


def _n_threads(work: int) -> int:
    """Threads for the propagation: the usable cores (OMP_NUM_THREADS caps it, as set by joblib
    workers), at most _MAX_THREADS, fewer for small graphs."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    if limit.isdigit() and int(limit) > 0:
        cores = min(cores, int(limit))
    return max(1, min(cores, _MAX_THREADS, work // _MIN_NNZ_PER_THREAD))


def _splits(indptr: np.ndarray, parts: int) -> np.ndarray:
    """Row boundaries (relative to indptr[0]) cutting the rows into ``parts`` runs of about
    equal nonzeros."""
    n = len(indptr) - 1
    if parts <= 1 or n <= 1:
        return np.array([0, n], dtype=np.int64)
    targets = indptr[0] + (indptr[-1] - indptr[0]) * np.arange(1, parts) / parts
    cuts = np.searchsorted(indptr, targets, side="left").clip(0, n)
    return np.unique(np.concatenate([[0], cuts, [n]])).astype(np.int64)


@dataclass
class _Incidence:
    """Rows x entities incidence of one column (CSR, int32 indices), every entry 1/|row|.

    The entities of the column lie in ``[lo, hi)``. ``chunks[c]`` is the transpose of row
    chunk c (CSR entities x rows of the chunk, entity ``lo + i`` in row i) for the scatter.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    lo: int
    hi: int
    chunks: list = field(default_factory=list)
    row_splits: list = field(default_factory=list)
    entity_splits: list = field(default_factory=list)


def _group_rows(columns, relations):
    """Reorder the rows so that the rows of one entity of a one-key-per-row column (e.g. the
    customer of each basket) are adjacent, in the order of that entity's index.

    W does not depend on the order of the rows. Returns the reordered columns and the name of
    that column (None when no bipartite relation has such a column: rows kept as they are).
    """
    pair_members = {m for rel in relations if isinstance(rel, tuple) for m in rel}
    singles = [
        c for c in columns
        if c.name in pair_members and len(c.entity) and np.diff(c.indptr).max() <= 1
    ]  # fmt: skip
    if not singles or columns[0].n_rows < 2:
        return columns, None
    key_column = max(singles, key=lambda c: int(c.entity.max()) - int(c.entity.min()))
    n_rows = key_column.n_rows
    key = np.full(n_rows, np.iinfo(np.int64).max)
    has = np.diff(key_column.indptr) == 1
    key[has] = key_column.entity[key_column.indptr[:-1][has]]
    order = np.argsort(key, kind="stable")
    out = []
    for c in columns:
        sizes = np.diff(c.indptr)[order]
        indptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(sizes, out=indptr[1:])
        # position in the old entity array of each member, in the new row order
        pos_dtype = np.int32 if len(c.entity) < np.iinfo(np.int32).max else np.int64
        pos = np.repeat((c.indptr[:-1][order] - indptr[:-1]).astype(pos_dtype), sizes)
        pos += np.arange(len(pos), dtype=pos_dtype)
        out.append(Column(c.name, indptr, c.entity[pos]))
    return out, key_column.name


@dataclass
class _Gather:
    """``out[lo:hi] += M @ X`` with M in CSR (global column indices); ``splits`` cut its rows
    into runs of about equal nonzeros, one per thread."""

    lo: int
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    splits: np.ndarray

    def __call__(self, i, X, out):
        a, b = self.splits[i], self.splits[i + 1]
        csr_matvecs(
            self.indptr[a : b + 1], self.indices, self.data, len(X), X,
            out[self.lo + a : self.lo + b],
        )  # fmt: skip


class Operator:
    """``W`` as a sum of sparse products over the 1/|row|-scaled incidences, never the clique.

    Terms (g, s) mean ``S_s^T G_g``: a clique on column c is (c, c), ``W = H diag(1/|e|^2)
    H^T``; a bipartite relation (a, b) is (b, a) + (a, b), ``W_ab = sum_e 1/(|A_e| |B_e|)``.
    ``W @ X`` runs over row chunks: ``Y = G[chunk] @ X`` (rows split across threads), then
    ``out += S[chunk]^T @ Y`` (entities split across threads, so every thread writes its own
    rows of ``out``); only a chunk of Y (rows x d) is ever held.

    A bipartite relation between a column P with at most one key per row (the customer of each
    basket) and a column Q needs no Y: with the rows grouped by P's entity, ``W_PQ`` is Q's
    incidence with the rows of each P entity merged (a CSR over P's entities that shares Q's
    arrays), and ``W_QP`` is the transpose of Q's incidence with every row replaced by its P
    entity (built per row chunk, so each chunk reads a narrow range of P's vectors).
    """

    _Y_BYTES = 8 << 20  # per row chunk: the Y chunk, or P's vectors read by a W_QP chunk

    def __init__(self, columns, relations, n_entities: int, dim: int):
        self.n_entities, self.dim = n_entities, dim
        columns, key_name = _group_rows(columns, relations)
        n_rows = columns[0].n_rows
        nnz = sum(len(c.entity) for c in columns)
        self.n_threads = _n_threads(nnz)
        index_dtype = np.int32 if max(nnz, n_entities) < np.iinfo(np.int32).max else np.int64
        self.incidence = {}  # name -> _Incidence
        for c in columns:
            sizes = np.diff(c.indptr)
            inv = np.divide(1.0, sizes, out=np.zeros(len(sizes)), where=sizes > 0)
            self.incidence[c.name] = _Incidence(
                indptr=c.indptr.astype(index_dtype),
                indices=c.entity.astype(index_dtype, copy=False),
                data=np.repeat(inv.astype(np.float32), sizes),
                lo=int(c.entity.min()) if len(c.entity) else 0,
                hi=int(c.entity.max()) + 1 if len(c.entity) else 0,
            )
        self.all_terms = []  # every (gather column, scatter column): degrees, torch path
        self.terms = []  # the (g, s) terms computed through Y
        self.gathers = []  # _Gather blocks (the grouped bipartite relations)
        for rel in relations:
            pair = [(rel[1], rel[0]), (rel[0], rel[1])] if isinstance(rel, tuple) else [(rel, rel)]
            self.all_terms += pair
            if isinstance(rel, tuple) and key_name in rel:
                other = rel[1] if rel[0] == key_name else rel[0]
                self.gathers += self._grouped_pair(key_name, other)
            else:
                self.terms += pair

        scattered = {s for _, s in self.terms}
        if self.terms:  # chunks: the Y chunk (n_rows/k x d) vs the transposes' indptr (k x width)
            width = sum(self.incidence[s].hi - self.incidence[s].lo for s in scattered)
            k = int(round(math.sqrt(n_rows * dim / max(width, 1))))
            self.bounds = _chunk_bounds(0, n_rows, k)
        else:
            self.bounds = []
        self.max_chunk = max((b - a for a, b in self.bounds), default=0)
        for name, inc in self.incidence.items():
            for r0, r1 in self.bounds:
                inc.row_splits.append(_splits(inc.indptr[r0 : r1 + 1], self.n_threads))
                if name in scattered:
                    t = _transpose_rows(inc, r0, r1)
                    inc.chunks.append(t)
                    inc.entity_splits.append(_splits(t[0], self.n_threads))

    def _grouped_pair(self, p_name, q_name):
        """The _Gather blocks of W_PQ and W_QP (rows grouped by P's entity)."""
        P, Q = self.incidence[p_name], self.incidence[q_name]
        has_p = np.diff(P.indptr) == 1
        n_with_p = int(has_p.sum())  # grouping put the rows without a P entity last
        p_of_row = P.indices[P.indptr[:n_with_p]]
        # W_PQ: row p of it = Q's members of all rows of p, i.e. Q's indptr at the group starts
        starts = np.searchsorted(p_of_row, np.arange(P.lo, P.hi + 1), side="left")
        indptr = Q.indptr[starts]
        blocks = [_Gather(P.lo, indptr, Q.indices, Q.data, _splits(indptr, self.n_threads))]
        # W_QP: per row chunk, Q's transpose with each row replaced by its P entity
        k = -(-(P.hi - P.lo) * self.dim * 4 // self._Y_BYTES)
        for r0, r1 in _chunk_bounds(0, n_with_p, k):
            t_indptr, t_rows, t_data = _transpose_rows(Q, r0, r1)
            t_p = p_of_row[r0:][t_rows].astype(t_rows.dtype, copy=False)
            blocks.append(
                _Gather(Q.lo, t_indptr, t_p, t_data, _splits(t_indptr, self.n_threads))
            )
        return blocks

    def degree(self) -> np.ndarray:
        """Row sums of W (float64): sum over terms of S^T (G 1)."""
        degree = np.zeros(self.n_entities, dtype=np.float64)
        for g, s in self.all_terms:
            G, S = self.incidence[g], self.incidence[s]
            # G 1 is 1 on the nonempty rows of G, so S^T (G 1) sums S's entries (1/|S_e|) over
            # the rows where G is not empty
            weights = S.data
            g_empty = np.diff(G.indptr) == 0
            if g != s and g_empty.any():
                weights = np.where(np.repeat(g_empty, np.diff(S.indptr)), 0, weights)
            step = 1 << 18  # in pieces: no float64 copy of all the weights
            for a in range(0, len(weights), step):
                degree += np.bincount(
                    S.indices[a : a + step], weights=weights[a : a + step],
                    minlength=self.n_entities,
                )  # fmt: skip
        return degree

    def matmul(self, X: np.ndarray, out: np.ndarray, pool, Y: np.ndarray) -> np.ndarray:
        """``out = W @ X`` (out is overwritten; Y is a scratch buffer of max_chunk rows)."""
        n = self.n_entities
        cuts = np.linspace(0, n, self.n_threads + 1).round().astype(int)
        run_parallel(pool, lambda i: out[cuts[i] : cuts[i + 1]].fill(0), self.n_threads)
        for block in self.gathers:
            run_parallel(pool, lambda i, block=block: block(i, X, out), len(block.splits) - 1)
        for c, (r0, r1) in enumerate(self.bounds):
            Yc = Y[: r1 - r0]
            for g, s in self.terms:
                G, S = self.incidence[g], self.incidence[s]
                rs, es = G.row_splits[c], S.entity_splits[c]
                t_indptr, t_indices, t_data = S.chunks[c]

                def gather(i, G=G, rs=rs, r0=r0, Yc=Yc):
                    a, b = rs[i], rs[i + 1]
                    Yc[a:b] = 0
                    csr_matvecs(G.indptr[r0 + a : r0 + b + 1], G.indices, G.data, n, X, Yc[a:b])

                def scatter(i, S=S, es=es, t=(t_indptr, t_indices, t_data), Yc=Yc):
                    a, b = es[i], es[i + 1]
                    csr_matvecs(t[0][a : b + 1], t[1], t[2], len(Yc), Yc, out[S.lo + a : S.lo + b])

                run_parallel(pool, gather, len(rs) - 1)
                run_parallel(pool, scatter, len(es) - 1)
        return out

    def scipy_factors(self):
        """(left, right) CSR matrices with ``W = left @ right`` (for the torch path)."""
        shape = (len(next(iter(self.incidence.values())).indptr) - 1, self.n_entities)

        def matrix(inc):
            return sp.csr_matrix((inc.data, inc.indices, inc.indptr), shape=shape)

        right = sp.vstack([matrix(self.incidence[g]) for g, _ in self.all_terms], format="csr")
        left = sp.vstack([matrix(self.incidence[s]) for _, s in self.all_terms], format="csr")
        return left.T.tocsr(), right


def _chunk_bounds(start: int, stop: int, k: int):
    """``k`` (clipped to [1, 64]) consecutive ranges of about equal length covering
    [start, stop)."""
    k = max(1, min(int(k), 64, stop - start))
    bounds = np.linspace(start, stop, k + 1).round().astype(np.int64).tolist()
    return list(zip(bounds[:-1], bounds[1:])) if stop > start else []


def _transpose_rows(inc: _Incidence, r0: int, r1: int):
    """CSR arrays (indptr, row, data) of the transpose of rows [r0, r1) of an incidence:
    entity ``inc.lo + i`` is row i; ``row`` counts from r0."""
    a, b = int(inc.indptr[r0]), int(inc.indptr[r1])
    part = sp.csr_matrix(
        (inc.data[a:b], inc.indices[a:b] - inc.lo, inc.indptr[r0 : r1 + 1] - a),
        shape=(r1 - r0, inc.hi - inc.lo),
    )
    t = part.tocsc()
    return t.indptr, t.indices, t.data




def run_parallel(pool, fn, parts):
    """``fn(i)`` for i in range(parts), on the pool when there is one and more than one part."""
    if pool is None or parts <= 1:
        for i in range(parts):
            fn(i)
    else:
        list(pool.map(fn, range(parts)))


def start_vectors(vocabulary, blocks, n_components, seed, *, initial_vectors=None, pool=None,
                  n_threads=1):
    """Unit start vectors: each key's from a stable hash of (namespace, key, seed), then the
    ``initial_vectors`` given for some keys."""
    X = np.empty((len(vocabulary), n_components), dtype=np.float32)
    tasks = []
    for namespace, keys, first in blocks:  # each key's vector depends on the key alone:
        cuts = np.linspace(0, len(keys), n_threads + 1).round().astype(int)  # split freely
        for a, b in zip(cuts[:-1], cuts[1:]):
            if b > a:
                tasks.append((namespace, keys[a:b], first + a))

    def fill(i):
        namespace, keys, first = tasks[i]
        hashed_vectors(
            keys, n_components, seed, namespace=namespace,
            out=X[first : first + len(keys)],
        )  # fmt: skip

    run_parallel(pool, fill, len(tasks))
    if initial_vectors is not None:
        _apply_initial_vectors(X, vocabulary, initial_vectors)
    return normalize_rows(X)

def _apply_initial_vectors(X, vocabulary, given):
    n_components = X.shape[1]
    if isinstance(given, pd.DataFrame):
        keys, values = list(given.index), given.to_numpy(dtype=np.float32)
    else:
        keys = list(given.keys())
        try:
            values = np.asarray([np.asarray(v, dtype=np.float32) for v in given.values()])
        except ValueError:
            raise ValueError(
                "initial_vectors must map each key to a vector of the same length "
                f"(n_components={n_components})."
            ) from None
    if values.ndim != 2 or (len(keys) and values.shape[1] != n_components):
        raise ValueError(
            f"initial_vectors must have n_components={n_components} values per key, got "
            f"shape {values.shape}."
        )
    if not np.isfinite(values).all():
        raise ValueError("initial_vectors contains NaN or infinite values.")
    index_keys = np.empty(len(keys), dtype=object)
    index_keys[:] = keys
    pos = lookup(index_keys, vocabulary)
    if (pos < 0).any():
        warnings.warn(
            f"{int((pos < 0).sum())} of {len(keys)} keys of initial_vectors are not in the "
            "graph and were ignored.",
            UnknownEntityWarning,
            stacklevel=3,
        )
    X[pos[pos >= 0]] = values[pos >= 0]

def propagate(operator, degree, X0, steps, *, propagation="left", device="cpu", pool=None,
              log=None):
    """Snapshots of X after each step in ``steps``: ``X = normalize(M @ X)``.

    ``M = D^-1 W`` ("left") or ``D^-1/2 W D^-1/2`` ("symmetric"). The left factor
    ``D^-1`` (``D^-1/2``) scales each row by a positive number, which the L2 normalisation
    removes, so only ``W`` (``W D^-1/2``) is applied; rows of isolated entities stay zero.
    """
    right_scale = None
    if propagation == "symmetric":
        right_scale = np.divide(
            1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0
        ).astype(np.float32)[:, None]
    if device != "cpu":
        from .cuda import propagate_cuda

        return propagate_cuda(operator, right_scale, X0, steps, device)
    snapshots = [X0.copy()] if 0 in steps and steps[-1] > 0 else []
    if steps[-1] == 0:
        return [X0]
    X, out = X0, np.empty_like(X0)
    Y = np.empty((operator.max_chunk, X0.shape[1]), dtype=np.float32)
    n_threads = operator.n_threads if pool is not None else 1
    row_blocks = np.linspace(0, len(X), n_threads + 1).round().astype(int)
    for it in range(1, steps[-1] + 1):
        t0 = time.perf_counter()
        if right_scale is not None:
            X *= right_scale  # X is a scratch buffer here: snapshots are copies
        operator.matmul(X, out, pool, Y)
        run_parallel(
            pool, lambda i: normalize_rows(out[row_blocks[i] : row_blocks[i + 1]]), n_threads
        )
        X, out = out, X
        if it in steps:
            snapshots.append(X.copy() if it != steps[-1] else X)
        if log is not None:
            log(f"iteration {it}: {time.perf_counter() - t0:.2f}s")
    return snapshots
