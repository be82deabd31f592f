"""A learned use of the customer's own history: a second-stage ranker over a recommender's picks.

The history boost of :class:`~sklearn_basemodel.SketchRecommender` mixes the network's scores
with the customer's own (decayed) purchases by one weight for every customer and every item.
Customers differ (some refill the same basket, others explore) and so do items (milk is bought
again, a kettle is not): :class:`HistoryRanker` learns how much each of these counts. For every
customer it takes the network's top candidates and every item of the customer's history,
describes each (customer, item) by the network's score and rank, the item's weight in each
history, the size of the history, and, from rows of (history, next items) such as the
self-supervised pairs, how often the item is bought at all and how often it is bought again; then
gradient boosting on validation customers learns which of them come next.

It keeps the boost instead where the ranker does not validate better: the ranker's Recall@k
and NDCG@k are measured on customers it did not train on (cross-validation over the
customers), the boost's on the customers its grid was chosen on (an advantage to the boost), and
the ranker is kept only when it scores higher. It therefore starts from the tuned boost rather
than falling below it, on data nobody tuned it on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from ._compat import HasMethods, IntegerInterval, _fit_context, num_samples
from ._hashing import seed_from_random_state
from .metrics import check_k, ndcg_at_k, recall_at_k, top_k
from .recipes import BLOCK_CELLS, split_recommender
from .rows import rows_matrix

__all__ = ["HistoryRanker"]

# The boost weights tried when none are given (the Ta-Feng benchmark's grid).
DEFAULT_BOOST_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 0.85, 0.95)

# Pseudo-rows of the mean repeat rate added to every item's own count: an item seen in a few
# histories only gets a repeat rate near the mean, not 0 or 1.
_REPEAT_PRIOR_ROWS = 10.0



def default_learner(random_state=None):
    """Shallow, slowly learning trees: the candidate rows are many, the customers behind them
    few (hundreds to thousands), so deep trees would learn the customers rather than the rule.

    Examples
    --------
    >>> from sklearn_basemodel.history_ranker import default_learner
    >>> default_learner(0).max_depth
    3
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_depth=3, learning_rate=0.05, max_iter=300, random_state=random_state
    )


def _as_histories(history):
    """label -> rows; a plain sequence of rows is one history labelled ``"history"``."""
    if isinstance(history, Mapping):
        if not history:
            raise ValueError("history must hold at least one history (label -> rows).")
        return dict(history)
    return {"history": history}


def _item_statistics(items, item_rows):
    """Per item of ``items`` (an Index): log(1 + rows whose next items hold it) and its
    smoothed repeat rate."""
    histories, targets = item_rows
    H = rows_matrix(histories, items, name="item_rows histories")
    Y = rows_matrix(targets, items, name="item_rows next items")
    H.data[:] = 1.0
    Y.data[:] = 1.0
    bought = np.asarray(Y.sum(axis=0)).ravel()
    held = np.asarray(H.sum(axis=0)).ravel()
    again = np.asarray(H.multiply(Y).sum(axis=0)).ravel()
    mean_rate = again.sum() / held.sum() if held.sum() else 0.0
    rate = (again + _REPEAT_PRIOR_ROWS * mean_rate) / (held + _REPEAT_PRIOR_ROWS)
    return np.column_stack([np.log1p(bought), rate]).astype(np.float32)


class _Candidates:
    """Per row of a block of rows ``start:stop``, the network's top ``n`` and every history
    item, as feature rows.

    ``row`` (counted over all rows, from ``start``) and ``item`` give each candidate's row and
    item column, ``features`` its description, ``label`` whether it is among the row's true
    items (when ``y`` is given).
    """

    def __init__(self, start, scores, histories, n, item_stats, y_matrix=None):
        n_rows, n_items = scores.shape
        self.start, self.stop, self.n_items = start, start + n_rows, n_items
        dense = [H.toarray() for H in histories]
        held = np.zeros((n_rows, n_items), dtype=bool)
        for D in dense:
            held |= D > 0
        member = held.copy()
        top = np.argpartition(-scores, min(n, n_items) - 1, axis=1)[:, :n]
        np.put_along_axis(member, top, True, axis=1)
        order = np.argsort(-scores, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(n_items)[None, :], axis=1)
        r, i = np.nonzero(member)
        self.row, self.item = r + start, i
        s = scores[r, i]
        columns = [s, s - scores.max(axis=1)[r], np.log1p(rank[r, i])]
        distinct = np.log1p(held.sum(axis=1))
        for D in dense:
            total = D.sum(axis=1)
            share = np.divide(D, total[:, None], out=np.zeros_like(D), where=total[:, None] > 0)
            columns += [np.log1p(D[r, i]), share[r, i], np.log1p(total)[r]]
        columns.append(distinct[r])
        if item_stats is not None:
            columns += list(item_stats[i].T)
        self.features = np.column_stack(columns).astype(np.float32)
        # a score of -inf (an excluded item) is missing to the trees, not a number
        self.features[~np.isfinite(self.features)] = np.nan
        self.label = None if y_matrix is None else y_matrix[r, i]


class HistoryRanker(BaseEstimator):
    """Learn how a recommender's scores and the customer's own history make the next items.

    Parameters
    ----------
    recommender : fitted SketchRecommender or Pipeline ending in one
        Used frozen: only its scores (without history) are read. When the boost is kept, it is
        left with ``history_mode="boost"`` and the chosen weight and blend.
    n_candidates : int, default=50
        Per row, the recommender's top ``n_candidates`` items (at least its top k) are ranked
        with every item of the row's history; other items cannot be recommended.
    learner : classifier with predict_proba, default=None
        Learns P(item is next | its description); None: :func:`default_learner`.
    cv : int >= 2, default=5
        Folds of customers (rows) on which the ranker is validated against the boost.
    k : int, default=10
        Recall@k, then NDCG@k, decide between ranker and boost; ``predict``'s default k.
    boost_weights : sequence of float, default=None
        The boost's grid (:func:`sklearn_basemodel.recipes.tune_history_boost`); None:
        ``(0, .05, .1, .2, .4, .7, .85, .95)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and the learner.

    Attributes
    ----------
    kept_ : {"ranker", "boost"}
        What ``predict`` uses.
    cv_score_ : tuple of float
        The ranker's (Recall@k, NDCG@k) on the customers it did not train on (out of fold).
    boost_score_ : tuple of float
        The boost's (Recall@k, NDCG@k) on the fitting customers, at its chosen setting.
    boost_ : dict
        The boost's chosen ``history_weight``, ``history`` label and ``history_blend``.
    boost_grid_ : list of tuple
        ``(history label, blend, weight, Recall@k, NDCG@k)`` of every boost tried
        (:func:`~sklearn_basemodel.recipes.tune_history_boost`).
    learner_ : fitted classifier
        The ranker refitted on every fitting customer (also when the boost is kept, so that
        it can be inspected).
    item_statistics_ : ndarray of shape (n_items, 2) or None
        Per item of the recommender: log(1 + rows bought in) and repeat rate, from
        ``item_rows``.
    histories_ : list
        The history labels, in the order their features are built.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
    >>> from sklearn_basemodel.history_ranker import HistoryRanker
    >>> from sklearn_basemodel.recipes import pretrainer
    >>> rng = np.random.default_rng(0)
    >>> own = [[f"i{j}" for j in rng.choice(30, 4, replace=False)] for _ in range(300)]
    >>> nxt = [row[:2] for row in own]  # customers buy part of their history again
    >>> X = rng.normal(size=(300, 8)).astype("float32")
    >>> target = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=2,
    ...                       sketch_dim=8, random_state=0)
    >>> rec = pretrainer(target, hidden_units=16, max_epochs=2, random_state=0).fit(X, nxt)
    >>> ranker = HistoryRanker(rec, k=2, cv=3, random_state=0).fit(X, nxt, {"all": own})
    >>> ranker.kept_ in ("ranker", "boost"), ranker.predict(X[:2], {"all": own[:2]}).shape
    (True, (2, 2))
    """

    _parameter_constraints: dict = {
        "recommender": [HasMethods(["predict"])],
        "n_candidates": [IntegerInterval(1, None, closed="left")],
        "learner": [None, HasMethods(["fit", "predict_proba"])],
        "cv": [IntegerInterval(2, None, closed="left")],
        "k": [IntegerInterval(1, None, closed="left")],
        "boost_weights": [None, list, tuple, np.ndarray],
        "random_state": ["random_state"],
    }

    def __init__(self, recommender, *, n_candidates=50, learner=None, cv=5, k=10,
                 boost_weights=None, random_state=None):  # fmt: skip
        self.recommender = recommender
        self.n_candidates = n_candidates
        self.learner = learner
        self.cv = cv
        self.k = k
        self.boost_weights = boost_weights
        self.random_state = random_state

    # ------------------------------------------------------------------ building blocks
    def _model(self):
        return split_recommender(self.recommender)[1]

    def _candidates(self, X, histories, k, y=None):
        """The candidates of every row, a block of rows at a time (bounded memory)."""
        labels = list(histories)
        transform, model = split_recommender(self.recommender)
        features = X if transform is None else transform.transform(X)
        n_rows, items = num_samples(features), pd.Index(model.entities_)
        matrices = [rows_matrix(histories[label], items, name=f"history {label!r}")
                    for label in labels]  # fmt: skip
        for label, H in zip(labels, matrices):
            if H.shape[0] != n_rows:
                raise ValueError(f"history {label!r} has {H.shape[0]} rows but X has {n_rows}; "
                                 "pass one per row.")  # fmt: skip
        truth = None if y is None else rows_matrix(y, items, name="y")
        n = max(self.n_candidates, k)  # the model's own top k are always candidates
        parts, step = [], max(1, BLOCK_CELLS // max(len(items), 1))
        for start in range(0, n_rows, step):
            rows = slice(start, min(start + step, n_rows))
            # the recommender's log-probabilities without history
            scores = model.predict_scores(features[rows])
            parts.append(_Candidates(start, scores, [H[rows] for H in matrices], n,
                                     self.item_statistics_,
                                     None if truth is None else truth[rows].toarray() > 0))
        return parts

    @staticmethod
    def _stack(parts, rows=None):
        """Features (and labels) of the candidates of ``rows`` (all rows by default)."""
        keep = [slice(None) if rows is None else np.isin(p.row, rows) for p in parts]
        X = np.vstack([p.features[m] for p, m in zip(parts, keep)])
        if parts[0].label is None:
            return X, None
        return X, np.concatenate([p.label[m] for p, m in zip(parts, keep)])

    @staticmethod
    def _ranked(learner, parts, k, rows=None):
        """Top-k item columns of every row, or of ``rows`` (ascending) only, and the
        learner's probabilities of them (``-inf`` past a row's candidates)."""
        tops, values = [], []
        for p in parts:
            block = np.arange(p.start, p.stop)
            if rows is not None:
                block = block[np.isin(block, rows)]
            if not len(block):
                continue
            keep = np.isin(p.row, block)
            scores = np.full((p.stop - p.start, p.n_items), -np.inf, dtype=np.float32)
            if keep.any():
                scores[p.row[keep] - p.start, p.item[keep]] = learner.predict_proba(
                    p.features[keep])[:, 1]
            top, value = top_k(scores[block - p.start], k)
            tops.append(top)
            values.append(value)
        return np.vstack(tops), np.vstack(values)

    # ------------------------------------------------------------------ fit / predict
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, history, *, item_rows=None):
        """Learn the ranker on validation customers and keep it or the boost.

        Parameters
        ----------
        X : features (or pipeline input) of customers the recommender did not train on
        y : list of lists
            Their true next items.
        history : mapping label -> rows, or rows
            Each customer's own history (lists of keys, or mappings key -> weight, e.g.
            :func:`~sklearn_basemodel.recipes.history_weights` at several half-lives); every
            label is described to the ranker, and the boost chooses one of them.
        item_rows : tuple (histories, next_items), default=None
            Rows from which each item's popularity and repeat rate are counted (e.g. the
            self-supervised pairs the recommender was pretrained on); None leaves these two
            features out. Not the customers of ``X``: their next items would leak into the
            description of the items.

        Returns
        -------
        self : HistoryRanker
        """
        from .recipes import tune_history_boost

        histories = _as_histories(history)
        y = [list(row) for row in y]
        model = self._model()
        check_is_fitted(model)
        if len(y) < self.cv:
            raise ValueError(f"cv={self.cv} folds need at least {self.cv} rows; got {len(y)}.")
        self.histories_ = list(histories)
        self.item_statistics_ = None
        if item_rows is not None:
            if len(item_rows) != 2 or len(item_rows[0]) != len(item_rows[1]):
                raise ValueError("item_rows must be (histories, next_items) of equal length.")
            self.item_statistics_ = _item_statistics(pd.Index(model.entities_), item_rows)
        seed = seed_from_random_state(self.random_state)
        k = min(check_k(self.k), len(model.entities_))  # fewer items than k: rank them all

        weights = DEFAULT_BOOST_WEIGHTS if self.boost_weights is None else self.boost_weights
        weight, label, grid = tune_history_boost(self.recommender, X, y, histories, weights, k=k)
        self.boost_ = {"history_weight": weight, "history": label,
                       "history_blend": model.history_blend}  # fmt: skip
        self.boost_grid_ = grid
        self.boost_score_ = max(tuple(g[3:]) for g in grid)

        parts = self._candidates(X, histories, k, y)
        n_rows = len(y)
        learner = default_learner(seed) if self.learner is None else clone(self.learner)
        top = np.zeros((n_rows, k), dtype=np.int64)
        for train, test in KFold(self.cv, shuffle=True, random_state=seed).split(np.arange(n_rows)):
            fold = clone(learner).fit(*self._stack(parts, train))
            test = np.sort(test)
            top[test] = self._ranked(fold, parts, k, rows=test)[0]
        keys = np.asarray(model.entities_, dtype=object)
        self.cv_score_ = (recall_at_k(y, keys[top], k=k), ndcg_at_k(y, keys[top], k=k))
        self.learner_ = learner.fit(*self._stack(parts))
        self.kept_ = "ranker" if self.cv_score_ > self.boost_score_ else "boost"
        return self

    def rank(self, X, history, k=None):
        """Top-k item keys per row with their scores, best first.

        Parameters
        ----------
        X : features (or pipeline input) of the rows
        history : mapping label -> rows, or rows
            The same histories (labels) as in ``fit``, of these rows.
        k : int, default=None
            Overrides ``k``.

        Returns
        -------
        items : ndarray of shape (n_rows, k)
        scores : ndarray of shape (n_rows, k), float32
            The ranker's probability that the item comes next when the ranker is kept; the
            recommender's log-probability with the chosen boost otherwise.
        """
        check_is_fitted(self, "kept_")
        k = check_k(self.k if k is None else k)
        histories = _as_histories(history)
        if list(histories) != self.histories_:
            raise ValueError(
                f"history must have the labels the ranker was fitted with, {self.histories_}; "
                f"got {list(histories)}."
            )
        transform, model = split_recommender(self.recommender)
        keys = np.asarray(model.entities_, dtype=object)
        k = min(k, len(keys))
        if self.kept_ == "ranker":
            top, values = self._ranked(self.learner_, self._candidates(X, histories, k), k)
            return keys[top], values
        model.set_params(history_mode="boost", history_weight=self.boost_["history_weight"],
                         history_blend=self.boost_["history_blend"])  # fmt: skip
        features = X if transform is None else transform.transform(X)
        history = list(histories[self.boost_["history"]])
        n_rows = num_samples(features)
        if len(history) != n_rows:
            raise ValueError(f"history has {len(history)} rows but X has {n_rows}; pass one "
                             "per row.")  # fmt: skip
        tops, values, step = [], [], max(1, BLOCK_CELLS // max(len(keys), 1))
        for start in range(0, n_rows, step):
            rows = slice(start, min(start + step, n_rows))
            top, value = top_k(model.predict_scores(features[rows], history=history[rows]), k)
            tops.append(top)
            values.append(value)
        return keys[np.vstack(tops)], np.vstack(values)

    def predict(self, X, history, k=None):
        """Top-k item keys per row, best first: :meth:`rank` without the scores (the same
        parameters).

        Returns
        -------
        ndarray of shape (n_rows, k)
        """
        return self.rank(X, history, k)[0]
