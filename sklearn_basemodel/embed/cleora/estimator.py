"""CleoraEmbedder: hypergraph embeddings by iterated Markov smoothing, as a transformer."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..._compat import IntegerInterval, StrOptions, _fit_context
from ..._hashing import seed_from_random_state
from ...exceptions import OversmoothingWarning, UnknownEntityWarning
from ...rows import lookup
from .._base import normalize_rows
from .cuda import check_device
from .engine import Operator, propagate, start_vectors, whiten
from .graph import build_vocabulary, check_relations, iteration_steps, parse_columns

__all__ = ["CleoraEmbedder"]

# Above this mean pairwise cosine the vectors no longer tell entities apart (random unit vectors
# in 64+ dimensions have a mean cosine near 0; fully smoothed ones near 1).
_OVERSMOOTHED_COSINE = 0.9


def _mean_cosine(vectors, rows):
    """Mean cosine over all pairs of the chosen unit rows: (|sum|^2 - n) / (n (n - 1)),
    exact and linear in the number of rows."""
    n = int(np.count_nonzero(rows))
    if n < 2:
        return 0.0
    total = vectors[rows].sum(axis=0, dtype=np.float64)
    return float((total @ total - n) / (n * (n - 1)))


def cleora_device(device) -> str:
    """Cleora's ``device`` for a torch device name: the same CUDA device (``"cuda"``,
    ``"cuda:1"``), else ``"cpu"`` (Cleora runs on CPUs or CUDA GPUs only); for estimators that
    pass their own ``device`` on."""
    return str(device) if str(device).startswith("cuda") else "cpu"


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
    n_iter : int or list of int, default=(1, 2)
        Number of propagation steps. A list such as ``[1, 3]`` returns the concatenated snapshots
        after 1 and 3 steps (multiscale: near and broader context). ``0`` returns the normalised
        start vectors. The default keeps two short scales: on dense graphs (customers x items)
        three or more steps make all vectors nearly equal (``mean_cosine_`` near 1, an
        :class:`OversmoothingWarning`), while one and two steps keep them apart and still carry
        the co-occurrence structure.
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
    device : {"cpu", "cuda"} or "cuda:<index>", default="cpu"
        Where the propagation runs; ``"cuda"`` uses torch sparse matrices on the current GPU,
        ``"cuda:1"`` on that one.
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
    mean_cosine_ : list of float
        Mean pairwise cosine similarity of the non-isolated entities' vectors, per snapshot
        (entry of ``n_iter``), before whitening. Near 0 for random vectors; near 1 when
        propagation has over-smoothed them, which raises an :class:`OversmoothingWarning`.

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
    (6, 16)
    >>> sorted(cleora.most_similar("beer", n=2)["key"])
    ['chips', 'nuts']
    >>> cleora.transform([["milk", "bread"], ["unseen"]]).shape
    (2, 16)
    """

    _parameter_constraints: dict = {
        "n_components": [IntegerInterval(1, None, closed="left")],
        "n_iter": [IntegerInterval(0, None, closed="left"), list, tuple],
        "propagation": [StrOptions({"left", "symmetric"})],
        "whiten": ["boolean"],
        "min_count": [IntegerInterval(1, None, closed="left")],
        "columns": [None, list, tuple],
        "relations": [None, list, tuple],
        "share_keys": ["boolean"],
        "initial_vectors": [None, Mapping, pd.DataFrame],
        "device": [str],  # "cpu", "cuda" or "cuda:<index>", checked in fit
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_components=128,
        *,
        n_iter=(1, 2),
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

    def _warn_if_oversmoothed(self, steps):
        collapsed = [
            (step, cosine) for step, cosine in zip(steps, self.mean_cosine_)
            if step > 0 and cosine > _OVERSMOOTHED_COSINE
        ]  # fmt: skip
        if collapsed:
            described = ", ".join(f"{c:.3f} after {s} step(s)" for s, c in collapsed)
            # only the remedies not already in use
            remedies = ["fewer steps"]
            if len(steps) == 1:
                remedies.append("several scales (n_iter=[1, 2])")
            if self.propagation == "left":
                remedies.append("propagation='symmetric'")
            warnings.warn(
                f"Cleora's vectors have collapsed (mean pairwise cosine {described}): "
                f"propagation over-smoothed this graph. Use {' or '.join(remedies)}.",
                OversmoothingWarning,
                stacklevel=3,
            )

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
        steps = iteration_steps(self.n_iter)
        check_device(self.device)  # before the graph is built: a GPU that is not there
        t0 = time.perf_counter()
        parsed = parse_columns(
            X, columns=self.columns, share_keys=self.share_keys, allow_weights=False
        )
        names = [name for name, _ in parsed]
        relations = check_relations(self.relations, names)
        columns, vocabulary, counts, n_dropped, blocks = build_vocabulary(
            parsed, share_keys=self.share_keys, min_count=self.min_count
        )
        del parsed  # the parsed keys are no longer needed: free them before propagating
        if len(vocabulary) == 0:
            raise ValueError(
                f"No entity occurs in at least min_count={self.min_count} rows; lower min_count "
                "or pass more rows."
            )
        self._log(f"{len(vocabulary)} entities, parsed in {time.perf_counter() - t0:.2f}s")
        operator = Operator(columns, relations, len(vocabulary), self.n_components)
        del columns
        degree = operator.degree()
        seed = seed_from_random_state(self.random_state)
        n_threads = operator.n_threads
        pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
        try:
            X0 = start_vectors(
                vocabulary, blocks, self.n_components, seed,
                initial_vectors=self.initial_vectors, pool=pool, n_threads=n_threads,
            )  # fmt: skip
            self._log(f"graph and start vectors ready at {time.perf_counter() - t0:.2f}s")
            snapshots = propagate(
                operator, degree, X0, steps, propagation=self.propagation,
                device=self.device, pool=pool, log=self._log,
            )  # fmt: skip
        finally:
            if pool is not None:
                pool.shutdown()
        del operator
        self.mean_cosine_ = [_mean_cosine(snapshot, degree > 0) for snapshot in snapshots]
        self._warn_if_oversmoothed(steps)
        if self.whiten:
            snapshots = [whiten(s) for s in snapshots]
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
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, Integral) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}.")
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
        parsed = parse_columns(
            X, columns=self.columns, share_keys=self.share_keys, fitted_columns=self.columns_
        )
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
        return normalize_rows(out)

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