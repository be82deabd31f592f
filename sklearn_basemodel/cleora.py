"""Cleora: hypergraph embeddings by iterated Markov smoothing, as a scikit-learn transformer."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._hashing import hashed_vectors, seed_from_random_state
from ._hypergraph import (
    flatten_rows,
    flatten_scalars,
    is_list_like_column,
    lookup,
    unique_per_row,
)
from .exceptions import UnknownEntityWarning

try:  # the kernel behind scipy's CSR @ dense: Y += A @ X in place, without the GIL
    from scipy.sparse._sparsetools import csr_matvecs as _csr_matvecs
except ImportError:  # pragma: no cover - private scipy API moved: public API fallback below
    _csr_matvecs = None

__all__ = ["CleoraEmbedder"]

_MAX_THREADS = 8  # the sparse products are memory-bound: more threads stop paying off
_MIN_NNZ_PER_THREAD = 50_000  # below this a thread pool costs more than it saves


@dataclass
class _Column:
    """One input column as sets of global entity indices per row (CSR layout, no repeats)."""

    name: object
    indptr: np.ndarray  # (n_rows + 1,) int64
    entity: np.ndarray  # (nnz,) global entity index of each member, sorted within a row

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1


def _normalize_rows(X: np.ndarray, block: int = 8192) -> np.ndarray:
    """Divide every row by its L2 norm, in place (zero rows stay zero); returns X."""
    for start in range(0, len(X), block):
        part = X[start : start + block]
        sq = np.einsum("ij,ij->i", part, part)
        inv = np.divide(1.0, np.sqrt(sq, dtype=np.float64), out=np.zeros(len(sq)), where=sq > 0)
        part *= inv.astype(X.dtype)[:, None]
    return X


def _whiten(X: np.ndarray) -> np.ndarray:
    """PCA whitening: centre, rotate to the covariance eigenbasis, scale by 1/sqrt(eigenvalue)."""
    Xc = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
    cov = Xc.T @ Xc / max(len(Xc) - 1, 1)
    eigval, eigvec = np.linalg.eigh(cov)
    scale = 1.0 / np.sqrt(np.maximum(eigval, eigval.max() * 1e-9 + 1e-12))
    return _normalize_rows(((Xc @ eigvec) * scale).astype(np.float32))


def _factorize(keys: np.ndarray):
    """pd.factorize with a modest initial hash table: entity keys repeat a lot, and a table sized
    for every key (pandas' default) costs more to allocate than growing a small one."""
    return pd.factorize(keys, size_hint=min(len(keys), 1 << 16))


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


def _spmm_add(indptr, indices, data, n_col, X, out):
    """``out += A @ X`` for the CSR rows ``A`` whose ``indptr`` holds absolute offsets into
    ``indices``/``data`` (a slice of a larger matrix's indptr); X and out C-contiguous."""
    if _csr_matvecs is not None:
        if not (out.flags.c_contiguous and X.flags.c_contiguous):  # pragma: no cover
            raise ValueError("internal error: the sparse kernel needs C-contiguous arrays")
        _csr_matvecs(
            len(indptr) - 1, n_col, X.shape[1], indptr, indices, data, X.reshape(-1),
            out.reshape(-1),
        )  # fmt: skip
    else:  # pragma: no cover
        a, b = int(indptr[0]), int(indptr[-1])
        A = sp.csr_matrix((data[a:b], indices[a:b], indptr - a), shape=(len(indptr) - 1, n_col))
        out += A @ X


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
        out.append(_Column(c.name, indptr, c.entity[pos]))
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
        _spmm_add(
            self.indptr[a : b + 1], self.indices, self.data, len(X), X,
            out[self.lo + a : self.lo + b],
        )  # fmt: skip


class _Operator:
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
        self._run(pool, lambda i: out[cuts[i] : cuts[i + 1]].fill(0), self.n_threads)
        for block in self.gathers:
            self._run(pool, lambda i, block=block: block(i, X, out), len(block.splits) - 1)
        for c, (r0, r1) in enumerate(self.bounds):
            Yc = Y[: r1 - r0]
            for g, s in self.terms:
                G, S = self.incidence[g], self.incidence[s]
                rs, es = G.row_splits[c], S.entity_splits[c]
                t_indptr, t_indices, t_data = S.chunks[c]

                def gather(i, G=G, rs=rs, r0=r0, Yc=Yc):
                    a, b = rs[i], rs[i + 1]
                    Yc[a:b] = 0
                    _spmm_add(G.indptr[r0 + a : r0 + b + 1], G.indices, G.data, n, X, Yc[a:b])

                def scatter(i, S=S, es=es, t=(t_indptr, t_indices, t_data), Yc=Yc):
                    a, b = es[i], es[i + 1]
                    _spmm_add(t[0][a : b + 1], t[1], t[2], len(Yc), Yc, out[S.lo + a : S.lo + b])

                self._run(pool, gather, len(rs) - 1)
                self._run(pool, scatter, len(es) - 1)
        return out

    @staticmethod
    def _run(pool, fn, parts):
        if pool is None or parts <= 1:
            for i in range(parts):
                fn(i)
        else:
            list(pool.map(fn, range(parts)))

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


class CleoraEmbedder(TransformerMixin, BaseEstimator):
    """Entity embeddings from hyperedges by iterated Markov smoothing (Cleora).

    Each input row is a hyperedge: the products of one basket, the pages of one session, or a row
    joining several columns (a customer and the products they bought). Every entity starts from a
    stable random vector; each iteration replaces every vector by the weighted average of its
    neighbours' vectors (a step of a random walk on the hypergraph) and L2-normalises it. After a
    few iterations, entities that occur in similar contexts have similar vectors.

    Parameters
    ----------
    n_components : int, default=128
        Dimension of the vectors (per entry of ``n_iter`` when it is a list).
    n_iter : int or list of int, default=3
        Number of propagation steps. A list such as ``[1, 3]`` returns the concatenated snapshots
        after 1 and 3 steps (multiscale: near and broader context). ``0`` returns the normalised
        start vectors.
    propagation : {"left", "symmetric"}, default="left"
        ``"left"`` multiplies by the random-walk matrix ``D^-1 W``; ``"symmetric"`` by
        ``D^-1/2 W D^-1/2``.
    whiten : bool, default=False
        PCA-whiten each snapshot after the last step (then L2-normalise rows again).
    min_count : int, default=1
        Entities found in fewer rows are dropped before building the graph (per column, or
        pooled over columns when ``share_keys=True``); their count is in
        ``n_entities_dropped_``.
    columns : list of str, default=None
        For DataFrame input: the columns to use (all by default). Each column holds one key per
        row (e.g. ``customer_id``) or a list of keys per row (e.g. ``products``).
    relations : list, default=None
        How columns form edges. An entry ``"products"`` links all members of that column in a
        row to each other (clique expansion, self-loops included, weights ``1/|e|^2``); a pair
        ``("customer", "products")`` links each member of one column to each member of the other
        (bipartite, weights ``1/(|A_e| |B_e|)``). Default: the clique of the single column, or all
        pairs of columns when there are several.
    share_keys : bool, default=False
        When False, equal keys in different columns are different entities (customer 42 is not
        product 42) and ``vocabulary_`` holds ``(column, key)`` pairs.
    initial_vectors : mapping or DataFrame, default=None
        Start vectors for chosen entities (key -> vector of length ``n_components``; for
        several columns the key is ``(column, key)``): feature or label propagation. Other
        entities start from hashed random vectors.
    device : {"cpu", "cuda"}, default="cpu"
        Where the propagation runs; ``"cuda"`` uses torch sparse matrices on the GPU.
    random_state : int, RandomState instance or None, default=None
        Seed of the start vectors. An entity's start vector depends only on its key and the seed,
        never on the order of the vocabulary.
    verbose : bool, default=False
        Print the time of each stage.

    Attributes
    ----------
    embeddings_ : ndarray of shape (n_entities, n_components * len(n_iter)), float32
        One L2-normalised vector per entity (per snapshot).
    vocabulary_ : pandas.Index
        The entity keys; position i is row i of ``embeddings_``. A MultiIndex of
        ``(column, key)`` when several columns are kept apart.
    entity_counts_ : ndarray of shape (n_entities,)
        Number of rows each entity occurs in.
    columns_ : list
        The input columns used (``[None]`` for plain rows).
    relations_ : list
        The relations used to build the graph.
    n_entities_dropped_ : int
        Entities removed by ``min_count``.
    n_isolated_entities_ : int
        Entities with no edge (e.g. a customer with an empty product list); their vectors are 0.

    See Also
    --------
    EMDESketcher : Turns entity vectors into fixed-size sketches of sets of entities.

    Notes
    -----
    The clique is never materialised: with H the entity x row incidence matrix,
    ``W X = H diag(w) H^T X``, two sparse products over the events instead of over all pairs, so
    large rows need no trimming and every row of the transition matrix sums to one exactly.

    References
    ----------
    .. [1] Rychalska, B., Babel, P., Goluchowski, K., Michalowski, A., Dabrowski, J. (2021).
       "Cleora: A Simple, Strong and Scalable Graph Embedding Scheme". arXiv:2102.02302.

    Examples
    --------
    >>> from sklearn_basemodel import CleoraEmbedder
    >>> baskets = [["milk", "bread"], ["milk", "butter"], ["beer", "chips"], ["beer", "nuts"]]
    >>> cleora = CleoraEmbedder(n_components=16, n_iter=2, random_state=0).fit(baskets)
    >>> cleora.embeddings_.shape
    (7, 16)
    >>> sorted(cleora.most_similar("beer", n=2)["key"])
    ['chips', 'nuts']
    >>> cleora.transform([["milk", "bread"], ["unseen"]]).shape
    (2, 16)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_iter": [Interval(Integral, 0, None, closed="left"), list, tuple],
        "propagation": [StrOptions({"left", "symmetric"})],
        "whiten": ["boolean"],
        "min_count": [Interval(Integral, 1, None, closed="left")],
        "columns": [None, list, tuple],
        "relations": [None, list, tuple],
        "share_keys": ["boolean"],
        "initial_vectors": [None, Mapping, pd.DataFrame],
        "device": [StrOptions({"cpu", "cuda"})],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=128,
        *,
        n_iter=3,
        propagation="left",
        whiten=False,
        min_count=1,
        columns=None,
        relations=None,
        share_keys=False,
        initial_vectors=None,
        device="cpu",
        random_state=None,
        verbose=False,
    ):
        self.n_components = n_components
        self.n_iter = n_iter
        self.propagation = propagation
        self.whiten = whiten
        self.min_count = min_count
        self.columns = columns
        self.relations = relations
        self.share_keys = share_keys
        self.initial_vectors = initial_vectors
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ input parsing
    def _iterations(self) -> list[int]:
        steps = [self.n_iter] if isinstance(self.n_iter, Integral) else list(self.n_iter)
        if not steps or any(
            not isinstance(s, Integral) or isinstance(s, bool) or s < 0 for s in steps
        ):
            raise ValueError(
                f"n_iter must be a non-negative int or a non-empty list of them, got "
                f"{self.n_iter!r}. Example: n_iter=3 or n_iter=[1, 3]."
            )
        if len(set(steps)) != len(steps):
            raise ValueError(f"n_iter lists an iteration count twice: {self.n_iter!r}.")
        return sorted(int(s) for s in steps)

    def _parse_columns(self, X, *, fitted_columns=None):
        """Input -> list of (column name, FlatRows)."""
        if isinstance(X, pd.DataFrame):
            wanted = fitted_columns if fitted_columns is not None else self.columns
            if wanted is None:
                wanted = list(X.columns)
            if fitted_columns is not None:
                wanted = [c for c in fitted_columns if c in X.columns]
                unknown = [c for c in X.columns if c not in fitted_columns]
                if not wanted or unknown:
                    raise ValueError(
                        f"X has columns {list(X.columns)!r} but the embedder was fitted on "
                        f"{list(fitted_columns)!r}. Pass a DataFrame with (some of) the fitted "
                        "columns."
                    )
            missing = [c for c in wanted if c not in X.columns]
            if missing:
                raise ValueError(
                    f"columns {missing!r} are not in X, whose columns are {list(X.columns)!r}."
                )
            if len(X) == 0:
                raise ValueError("X has no rows. Pass at least one row (hyperedge).")
            parsed = []
            for col in wanted:
                values = X[col]
                if is_list_like_column(values):
                    parsed.append((col, flatten_rows(values, name=f"column {col!r}")))
                else:
                    parsed.append((col, flatten_scalars(values, name=f"column {col!r}")))
            return parsed
        if fitted_columns is not None and len(fitted_columns) > 1 and not self.share_keys:
            raise ValueError(
                f"This embedder was fitted on columns {list(fitted_columns)!r} kept apart "
                "(share_keys=False); pass a DataFrame with those columns so each key's column is "
                "known."
            )
        name = fitted_columns[0] if fitted_columns is not None else None
        return [(name, flatten_rows(X, name="X"))]

    def _relations(self, names: list) -> list:
        if self.relations is None:
            if len(names) == 1:
                return [names[0]]
            return [tuple(pair) for pair in combinations(names, 2)]
        out = []
        for rel in self.relations:
            members = list(rel) if isinstance(rel, (tuple, list)) else [rel]
            if len(members) not in (1, 2) or (len(members) == 2 and members[0] == members[1]):
                raise ValueError(
                    f"Invalid relation {rel!r}: use a column name for a clique within the column "
                    "or a pair of two different columns ('customer', 'products') for a bipartite "
                    "relation."
                )
            for m in members:
                if m not in names:
                    raise ValueError(
                        f"relation {rel!r} names column {m!r}, which is not among the input "
                        f"columns {names!r}."
                    )
            out.append(members[0] if len(members) == 1 else tuple(members))
        unused = [n for n in names if not any(n == r or (isinstance(r, tuple) and n in r) for r in out)]
        if unused:
            raise ValueError(
                f"columns {unused!r} are not used by any relation {out!r}; drop them from "
                "`columns` or add a relation."
            )
        return out

    # ------------------------------------------------------------------ fitting
    def _build_vocabulary(self, parsed):
        """Factorise keys into entities, make rows sets, apply min_count.

        Returns the columns (rows as sets of entity indices), the vocabulary, the entity counts,
        the number of dropped entities and the start-vector blocks: (namespace, keys, first
        entity) for each run of entities hashed with one namespace.
        """
        names = [name for name, _ in parsed]
        pooled = len(parsed) == 1 or self.share_keys
        if pooled:
            all_keys = (
                np.concatenate([rows.keys for _, rows in parsed])
                if len(parsed) > 1
                else parsed[0][1].keys
            )
            codes, uniques = _factorize(all_keys)
            offsets = np.cumsum([0] + [len(rows.keys) for _, rows in parsed])
            per_column = [codes[offsets[i] : offsets[i + 1]] for i in range(len(parsed))]
            uniques_list = [np.asarray(uniques)]
            n_total = len(uniques)
        else:
            per_column, uniques_list, start = [], [], 0
            for _, rows in parsed:
                codes, uniques = _factorize(rows.keys)
                per_column.append(codes + start if start else codes)
                uniques_list.append(np.asarray(uniques))
                start += len(uniques)
            n_total = start

        # a row is a set: sort each row's entities and drop repeats, once
        sets = [
            unique_per_row(rows.indptr, codes, n_total)
            for (_, rows), codes in zip(parsed, per_column)
        ]
        del per_column
        counts = np.zeros(n_total, dtype=np.int64)
        for _, entity in sets:
            counts += np.bincount(entity, minlength=n_total)
        keep = counts >= self.min_count
        if not keep.all():
            new_index = np.cumsum(keep) - 1
            new_index[~keep] = -1
            filtered = []
            for indptr, entity in sets:
                e = new_index[entity]
                known = e >= 0
                kept_before = np.zeros(len(e) + 1, dtype=np.int64)
                np.cumsum(known, out=kept_before[1:])
                filtered.append((kept_before[indptr], e[known].astype(entity.dtype)))
            sets = filtered
        columns = [_Column(name, indptr, entity) for name, (indptr, entity) in zip(names, sets)]

        sizes = [len(u) for u in uniques_list]
        bounds = np.cumsum([0] + sizes)
        kept_keys = [u[keep[bounds[i] : bounds[i + 1]]] for i, u in enumerate(uniques_list)]
        firsts = np.cumsum([0] + [len(k) for k in kept_keys])[:-1]
        if pooled:
            vocabulary = pd.Index(kept_keys[0], tupleize_cols=False)
            blocks = [("", kept_keys[0], 0)]
        else:
            col_of = np.repeat(np.arange(len(names)), [len(k) for k in kept_keys])
            if all(k.dtype.kind in "iu" for k in kept_keys):  # same index, built far faster
                key_values = np.concatenate(kept_keys)
            else:
                key_values = np.concatenate([np.asarray(k, dtype=object) for k in kept_keys])
            column_names = np.asarray(names, dtype=object)
            if all(isinstance(name, str) for name in names):  # same index, built faster
                column_names = pd.Index(column_names)
                column_of = column_names.take(col_of)
            else:
                column_of = column_names[col_of]
            vocabulary = pd.MultiIndex.from_arrays(
                [column_of, key_values], names=["column", "key"]
            )
            blocks = [
                (str(name), k, int(first)) for name, k, first in zip(names, kept_keys, firsts)
            ]
        return columns, vocabulary, counts[keep], int((~keep).sum()), blocks

    def _propagation_operator(self, columns, relations, n_entities):
        """The operator W (see _Operator) built from the columns' incidences."""
        return _Operator(columns, relations, n_entities, self.n_components)

    def _start_vectors(self, vocabulary, blocks, seed, pool=None, n_threads=1):
        X = np.empty((len(vocabulary), self.n_components), dtype=np.float32)
        tasks = []
        for namespace, keys, first in blocks:  # each key's vector depends on the key alone:
            cuts = np.linspace(0, len(keys), n_threads + 1).round().astype(int)  # split freely
            for a, b in zip(cuts[:-1], cuts[1:]):
                if b > a:
                    tasks.append((namespace, keys[a:b], first + a))

        def fill(i):
            namespace, keys, first = tasks[i]
            hashed_vectors(
                keys, self.n_components, seed, namespace=namespace,
                out=X[first : first + len(keys)],
            )  # fmt: skip

        _Operator._run(pool, fill, len(tasks))
        if self.initial_vectors is not None:
            self._apply_initial_vectors(X, vocabulary)
        return _normalize_rows(X)

    def _apply_initial_vectors(self, X, vocabulary):
        given = self.initial_vectors
        if isinstance(given, pd.DataFrame):
            keys, values = list(given.index), given.to_numpy(dtype=np.float32)
        else:
            keys = list(given.keys())
            try:
                values = np.asarray([np.asarray(v, dtype=np.float32) for v in given.values()])
            except ValueError:
                raise ValueError(
                    "initial_vectors must map each key to a vector of the same length "
                    f"(n_components={self.n_components})."
                ) from None
        if values.ndim != 2 or (len(keys) and values.shape[1] != self.n_components):
            raise ValueError(
                f"initial_vectors must have n_components={self.n_components} values per key, got "
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

    def _propagate(self, operator, degree, X0, steps, pool=None):
        """Snapshots of X after each step in ``steps``: ``X = normalize(M @ X)``.

        ``M = D^-1 W`` ("left") or ``D^-1/2 W D^-1/2`` ("symmetric"). The left factor
        ``D^-1`` (``D^-1/2``) scales each row by a positive number, which the L2 normalisation
        removes, so only ``W`` (``W D^-1/2``) is applied; rows of isolated entities stay zero.
        """
        right_scale = None
        if self.propagation == "symmetric":
            right_scale = np.divide(
                1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0
            ).astype(np.float32)[:, None]
        if self.device == "cuda":
            return self._propagate_torch(operator, right_scale, X0, steps)
        snapshots = [X0.copy()] if 0 in steps and steps[-1] > 0 else []
        if steps[-1] == 0:
            return [X0]
        X, out = X0, np.empty_like(X0)
        Y = np.empty((operator.max_chunk, self.n_components), dtype=np.float32)
        n_threads = operator.n_threads if pool is not None else 1
        row_blocks = np.linspace(0, len(X), n_threads + 1).round().astype(int)
        for it in range(1, steps[-1] + 1):
            t0 = time.perf_counter()
            if right_scale is not None:
                X *= right_scale  # X is a scratch buffer here: snapshots are copies
            operator.matmul(X, out, pool, Y)
            operator._run(
                pool, lambda i: _normalize_rows(out[row_blocks[i] : row_blocks[i + 1]]), n_threads
            )
            X, out = out, X
            if it in steps:
                snapshots.append(X.copy() if it != steps[-1] else X)
            self._log(f"iteration {it}: {time.perf_counter() - t0:.2f}s")
        return snapshots

    def _propagate_torch(self, operator, right_scale, X0, steps):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(
                "device='cuda' was requested but torch.cuda.is_available() is False. "
                "Use device='cpu' or install a CUDA build of torch on a machine with a GPU."
            )
        dev = torch.device("cuda")

        def to_torch(m):
            return torch.sparse_csr_tensor(
                torch.from_numpy(m.indptr.astype(np.int64)),
                torch.from_numpy(m.indices.astype(np.int64)),
                torch.from_numpy(m.data),
                size=m.shape,
                device=dev,
            )

        left, right = operator.scipy_factors()
        L, R = to_torch(left), to_torch(right)
        scale = torch.from_numpy(right_scale).to(dev) if right_scale is not None else None
        X = torch.from_numpy(X0).to(dev)
        snapshots = [X0.copy()] if 0 in steps else []
        for it in range(1, steps[-1] + 1):
            X = L @ (R @ (X * scale if scale is not None else X))
            X = torch.nn.functional.normalize(X, dim=1)
            if it in steps:
                snapshots.append(X.cpu().numpy())
        return snapshots

    def _log(self, message):
        if self.verbose:
            print(f"[CleoraEmbedder] {message}", flush=True)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the hypergraph from rows and compute entity embeddings.

        Parameters
        ----------
        X : sequence of rows, pandas Series of lists, or DataFrame
            Hyperedges. A row is an iterable of hashable keys (duplicates within a row collapse:
            a row is a set). A DataFrame may mix scalar columns (one key per row) and list
            columns.
        y : None
            Ignored.

        Returns
        -------
        self : CleoraEmbedder
        """
        steps = self._iterations()
        t0 = time.perf_counter()
        parsed = self._parse_columns(X)
        names = [name for name, _ in parsed]
        relations = self._relations(names)
        columns, vocabulary, counts, n_dropped, blocks = self._build_vocabulary(parsed)
        del parsed  # the parsed keys are no longer needed: free them before propagating
        if len(vocabulary) == 0:
            raise ValueError(
                f"No entity occurs in at least min_count={self.min_count} rows; lower min_count "
                "or pass more rows."
            )
        self._log(f"{len(vocabulary)} entities, parsed in {time.perf_counter() - t0:.2f}s")
        operator = self._propagation_operator(columns, relations, len(vocabulary))
        del columns
        degree = operator.degree()
        seed = seed_from_random_state(self.random_state)
        n_threads = operator.n_threads
        pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
        try:
            X0 = self._start_vectors(vocabulary, blocks, seed, pool, n_threads)
            self._log(f"graph and start vectors ready at {time.perf_counter() - t0:.2f}s")
            snapshots = self._propagate(operator, degree, X0, steps, pool)
        finally:
            if pool is not None:
                pool.shutdown()
        del operator
        if self.whiten:
            snapshots = [_whiten(s) for s in snapshots]
        embeddings = snapshots[0] if len(snapshots) == 1 else np.hstack(snapshots)
        self.embeddings_ = np.ascontiguousarray(embeddings, dtype=np.float32)
        self.vocabulary_ = vocabulary
        self.entity_counts_ = counts
        self.columns_ = names
        self.relations_ = relations
        self.n_entities_dropped_ = n_dropped
        self.n_isolated_entities_ = int((degree == 0).sum())
        self.n_iter_ = steps
        self._n_features_out = self.embeddings_.shape[1]
        self._log(f"fit done in {time.perf_counter() - t0:.2f}s")
        return self

    # ------------------------------------------------------------------ using the vectors
    def _column_positions(self, column):
        """(keys, positions) of the entities of one column (all entities when not split)."""
        if not isinstance(self.vocabulary_, pd.MultiIndex):
            if column is not None and column not in self.columns_:
                raise ValueError(f"Unknown column {column!r}; fitted columns: {self.columns_!r}.")
            return self.vocabulary_, np.arange(len(self.vocabulary_))
        if column is None:
            raise ValueError(
                f"This embedder keeps columns {self.columns_!r} apart; name the column, e.g. "
                f"column={self.columns_[-1]!r}."
            )
        if column not in self.columns_:
            raise ValueError(f"Unknown column {column!r}; fitted columns: {self.columns_!r}.")
        positions = np.flatnonzero(self.vocabulary_.get_level_values(0) == column)
        return pd.Index(self.vocabulary_.get_level_values(1)[positions]), positions

    def entity_vectors(self, column=None):
        """Keys and vectors of the entities (of one column when columns are kept apart).

        Parameters
        ----------
        column : str, default=None
            Required when the embedder was fitted on several columns with ``share_keys=False``.

        Returns
        -------
        keys : ndarray of shape (n_keys,)
        vectors : ndarray of shape (n_keys, n_features), float32
        """
        check_is_fitted(self)
        keys, positions = self._column_positions(column)
        return np.asarray(keys), self.embeddings_[positions]

    def get_vectors(self, keys, column=None):
        """Vectors of the given entity keys.

        Raises
        ------
        KeyError
            When a key is not in the vocabulary (use ``transform`` for lenient look-ups).
        """
        check_is_fitted(self)
        index, positions = self._column_positions(column)
        arr = np.empty(len(keys), dtype=object)
        arr[:] = list(keys)
        pos = lookup(arr, index)
        if (pos < 0).any():
            missing = [k for k, p in zip(keys, pos) if p < 0][:10]
            raise KeyError(f"Keys not in the vocabulary: {missing!r}.")
        return self.embeddings_[positions[pos]]

    def most_similar(self, key, n=10, column=None, target_column=None):
        """The ``n`` entities most similar to ``key`` by cosine similarity.

        Parameters
        ----------
        key : hashable
            An entity key.
        n : int, default=10
        column : str, default=None
            Column of ``key`` (when columns are kept apart).
        target_column : str, default=None
            Restrict the answers to entities of this column (default: ``key``'s column).

        Returns
        -------
        DataFrame with columns ``key`` and ``similarity``, most similar first.
        """
        query = self.get_vectors([key], column=column)[0]
        target = target_column if target_column is not None else column
        keys, vectors = self.entity_vectors(target)
        norms = np.linalg.norm(vectors, axis=1) * max(np.linalg.norm(query), 1e-12)
        sims = np.divide(vectors @ query, norms, out=np.zeros(len(keys)), where=norms > 0)
        order = np.argsort(-sims, kind="stable")
        order = [i for i in order if not (keys[i] == key and target == column)][:n]
        return pd.DataFrame({"key": keys[order], "similarity": sims[order]})

    def transform(self, X):
        """One vector per row: the L2-normalised mean of the vectors of its known entities.

        Rows of unknown keys only (or empty rows) give zeros; unknown keys are counted and
        reported with an :class:`UnknownEntityWarning`. Mapping rows
        (key -> weight) give a weighted mean.

        Parameters
        ----------
        X : sequence of rows or DataFrame (same columns as in fit)

        Returns
        -------
        ndarray of shape (n_rows, n_features), float32
        """
        check_is_fitted(self)
        parsed = self._parse_columns(X, fitted_columns=self.columns_)
        n_rows = parsed[0][1].n_rows
        total = sp.csr_matrix((n_rows, len(self.vocabulary_)), dtype=np.float32)
        n_unknown = n_keys = 0
        for name, rows in parsed:
            index, positions = self._column_positions(
                name if isinstance(self.vocabulary_, pd.MultiIndex) else None
            )
            pos = lookup(rows.keys, index)
            known = pos >= 0
            n_unknown += int((~known).sum())
            n_keys += len(pos)
            total = total + sp.csr_matrix(
                (rows.weights_or_ones()[known].astype(np.float32), (rows.row_ids()[known], positions[pos[known]])),
                shape=total.shape,
            )
        if n_unknown:
            warnings.warn(
                f"{n_unknown} of {n_keys} keys ({n_unknown / max(n_keys, 1):.1%}) were not seen "
                "in fit and were ignored.",
                UnknownEntityWarning,
                stacklevel=2,
            )
        out = np.asarray(total @ self.embeddings_, dtype=np.float32)
        return _normalize_rows(out)

    def inductive_vectors(self, neighbours):
        """Vectors for new entities from their known neighbours (normalised mean).

        Parameters
        ----------
        neighbours : mapping
            New entity key -> iterable of known neighbour keys (e.g. a new product -> the
            products bought with it).

        Returns
        -------
        DataFrame indexed by the new keys, one column per feature.
        """
        if not isinstance(neighbours, Mapping):
            raise TypeError(
                "neighbours must be a mapping new_key -> list of known neighbour keys, got "
                f"{type(neighbours).__name__}."
            )
        vectors = self.transform(list(neighbours.values()))
        return pd.DataFrame(
            vectors, index=list(neighbours.keys()), columns=self.get_feature_names_out()
        )

    def get_feature_names_out(self, input_features=None):
        """Names of the output features: ``cleora_<i>`` (``cleora_it<k>_<i>`` when multiscale)."""
        check_is_fitted(self)
        if len(self.n_iter_) == 1:
            return np.asarray([f"cleora_{i}" for i in range(self.embeddings_.shape[1])], dtype=object)
        return np.asarray(
            [f"cleora_it{k}_{i}" for k in self.n_iter_ for i in range(self.n_components)],
            dtype=object,
        )

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags
