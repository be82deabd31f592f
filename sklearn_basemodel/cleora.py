"""Cleora: hypergraph embeddings by iterated Markov smoothing, as a scikit-learn transformer."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import combinations
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._hashing import hashed_vectors, seed_from_random_state
from ._hypergraph import FlatRows, flatten_rows, incidence_matrix, is_list_like_column, lookup
from .exceptions import UnknownEntityWarning

__all__ = ["CleoraEmbedder"]


@dataclass
class _Column:
    """One input column: its parsed rows and the global entity index of every key."""

    name: object
    rows: FlatRows
    entity: np.ndarray  # global entity index per key, -1 when dropped/unknown


def _normalize_rows(X: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", X, X, dtype=np.float64)).astype(X.dtype)
    np.divide(X, norms[:, None], out=X, where=norms[:, None] > 0)
    return X


def _whiten(X: np.ndarray) -> np.ndarray:
    """PCA whitening: centre, rotate to the covariance eigenbasis, scale by 1/sqrt(eigenvalue)."""
    Xc = X.astype(np.float64) - X.mean(axis=0, dtype=np.float64)
    cov = Xc.T @ Xc / max(len(Xc) - 1, 1)
    eigval, eigvec = np.linalg.eigh(cov)
    scale = 1.0 / np.sqrt(np.maximum(eigval, eigval.max() * 1e-9 + 1e-12))
    return _normalize_rows(((Xc @ eigvec) * scale).astype(np.float32))


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
                if not is_list_like_column(values):
                    values = [[v] for v in values.tolist()]
                parsed.append((col, flatten_rows(values, name=f"column {col!r}")))
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
        """Factorise keys into entities, apply min_count; returns columns and vocabulary."""
        names = [name for name, _ in parsed]
        pooled = len(parsed) == 1 or self.share_keys
        if pooled:
            all_keys = np.concatenate([rows.keys for _, rows in parsed]) if len(parsed) > 1 else parsed[0][1].keys
            codes, uniques = pd.factorize(all_keys)
            offsets = np.cumsum([0] + [len(rows.keys) for _, rows in parsed])
            per_column = [codes[offsets[i] : offsets[i + 1]] for i in range(len(parsed))]
            n_total = len(uniques)
            namespaces = [""] * len(parsed)
        else:
            per_column, uniques_list, start = [], [], 0
            for _, rows in parsed:
                codes, uniques = pd.factorize(rows.keys)
                per_column.append(codes + start)
                uniques_list.append(uniques)
                start += len(uniques)
            n_total = start
            namespaces = [str(name) for name in names]

        counts = np.zeros(n_total, dtype=np.int64)
        for (_, rows), codes in zip(parsed, per_column):
            pair = np.unique(rows.row_ids() * np.int64(n_total) + codes)
            counts += np.bincount(pair % n_total, minlength=n_total)
        keep = counts >= self.min_count
        new_index = np.cumsum(keep) - 1
        new_index[~keep] = -1
        columns = [
            _Column(name, rows, new_index[codes]) for (name, rows), codes in zip(parsed, per_column)
        ]
        if pooled:
            keys = np.asarray(uniques)[keep] if len(uniques) else np.asarray(uniques)
            vocabulary = pd.Index(keys, tupleize_cols=False)
            entity_namespace = np.zeros(len(vocabulary), dtype=np.int64)
        else:
            col_of = np.concatenate(
                [np.full(len(u), i, dtype=np.int64) for i, u in enumerate(uniques_list)]
            )[keep]
            key_values = np.concatenate([np.asarray(u, dtype=object) for u in uniques_list])[keep]
            vocabulary = pd.MultiIndex.from_arrays(
                [np.asarray(names, dtype=object)[col_of], key_values], names=["column", "key"]
            )
            entity_namespace = col_of
        return columns, vocabulary, counts[keep], int((~keep).sum()), namespaces, entity_namespace

    def _propagation_operator(self, columns, relations, n_entities):
        """Sparse factors (left, right) with D^-a W D^-b = left @ right, and the degrees."""
        by_name = {c.name: c for c in columns}
        incidence, sizes = {}, {}
        for c in columns:
            known = c.entity >= 0
            H = incidence_matrix(c.entity[known], c.rows.row_ids()[known], n_entities, c.rows.n_rows)
            incidence[c.name] = H
            sizes[c.name] = np.asarray(H.sum(axis=0)).ravel()
        lefts, rights = [], []
        degree = np.zeros(n_entities, dtype=np.float64)
        for rel in relations:
            if isinstance(rel, tuple):
                a, b = rel
                sa, sb = sizes[a], sizes[b]
                valid = (sa > 0) & (sb > 0)
                w = np.zeros_like(sa)
                w[valid] = 1.0 / (sa[valid] * sb[valid])
                Ha, Hb = incidence[a], incidence[b]
                lefts += [Ha, Hb]
                rights += [sp.diags(w) @ Hb.T, sp.diags(w) @ Ha.T]
                degree += Ha @ np.where(valid, 1.0 / np.maximum(sa, 1), 0.0)
                degree += Hb @ np.where(valid, 1.0 / np.maximum(sb, 1), 0.0)
            else:
                s = sizes[rel]
                H = incidence[rel]
                inv = np.where(s > 0, 1.0 / np.maximum(s, 1), 0.0)
                lefts.append(H)
                rights.append(sp.diags(inv * inv) @ H.T)
                degree += H @ inv
        left = sp.hstack(lefts, format="csr", dtype=np.float64)
        right = sp.vstack(rights, format="csr", dtype=np.float64)
        inv_deg = np.where(degree > 0, 1.0 / np.where(degree > 0, degree, 1.0), 0.0)
        if self.propagation == "symmetric":
            half = np.sqrt(inv_deg)
            left = sp.diags(half) @ left
            right = right @ sp.diags(half)
        else:
            left = sp.diags(inv_deg) @ left
        return left.astype(np.float32).tocsr(), right.astype(np.float32).tocsr(), degree

    def _start_vectors(self, vocabulary, namespaces, entity_namespace, seed):
        n = len(vocabulary)
        X = np.empty((n, self.n_components), dtype=np.float32)
        keys = vocabulary.get_level_values(1) if isinstance(vocabulary, pd.MultiIndex) else vocabulary
        keys = np.asarray(keys)
        for i, ns in enumerate(dict.fromkeys(namespaces)):
            mask = entity_namespace == namespaces.index(ns) if len(set(namespaces)) > 1 else slice(None)
            X[mask] = hashed_vectors(keys[mask], self.n_components, seed, namespace=ns)
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

    def _propagate(self, left, right, X0, steps):
        snapshots = []
        if self.device == "cuda":
            return self._propagate_torch(left, right, X0, steps)
        X = X0
        if 0 in steps:
            snapshots.append(X.copy())
        for it in range(1, steps[-1] + 1):
            t0 = time.perf_counter()
            X = _normalize_rows(left @ (right @ X))
            if it in steps:
                snapshots.append(X.copy() if it != steps[-1] else X)
            self._log(f"iteration {it}: {time.perf_counter() - t0:.2f}s")
        return snapshots

    def _propagate_torch(self, left, right, X0, steps):
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

        L, R = to_torch(left), to_torch(right)
        X = torch.from_numpy(X0).to(dev)
        snapshots = [X0.copy()] if 0 in steps else []
        for it in range(1, steps[-1] + 1):
            X = L @ (R @ X)
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
        columns, vocabulary, counts, n_dropped, namespaces, entity_ns = self._build_vocabulary(
            parsed
        )
        if len(vocabulary) == 0:
            raise ValueError(
                f"No entity occurs in at least min_count={self.min_count} rows; lower min_count "
                "or pass more rows."
            )
        self._log(f"{len(vocabulary)} entities, parsed in {time.perf_counter() - t0:.2f}s")
        left, right, degree = self._propagation_operator(columns, relations, len(vocabulary))
        seed = seed_from_random_state(self.random_state)
        X0 = self._start_vectors(vocabulary, namespaces, entity_ns, seed)
        snapshots = self._propagate(left, right, X0, steps)
        if self.whiten:
            snapshots = [_whiten(s) for s in snapshots]
        self.embeddings_ = np.ascontiguousarray(np.hstack(snapshots), dtype=np.float32)
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
