"""Top-k ranking metrics and scikit-learn scorers for recommenders.

Every metric takes ``y_true``, rows of relevant keys (lists, sets, or mappings key -> gain), and
``y_pred``, rows of recommended keys ranked best first (a 2-D array such as
``SketchRecommender.predict`` returns, or lists of any length), and averages a per-row value over
the rows that have at least one relevant key (a row with nothing to find has no recall). A key
recommended twice in a row counts once, at its first position.
"""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn import get_config
from sklearn.utils.metadata_routing import MetadataRequest

from .rows import flatten_rows

__all__ = [
    "RankingScorer",
    "hit_rate_at_k",
    "hit_rate_at_k_scorer",
    "make_ranking_scorer",
    "mrr_at_k",
    "mrr_at_k_scorer",
    "ndcg_at_k",
    "ndcg_at_k_scorer",
    "precision_at_k",
    "precision_at_k_scorer",
    "recall_at_k",
    "recall_at_k_per_row",
    "recall_at_k_scorer",
    "top_k",
]


@dataclass
class _Ranking:
    """Hits of the top-k recommendations of every row (flat arrays, one entry per hit)."""

    n_rows: int
    hit_row: np.ndarray  # row of each hit
    hit_position: np.ndarray  # 0-based rank of each hit
    hit_gain: np.ndarray  # gain (mapping value, else 1) of each hit
    n_relevant: np.ndarray  # (n_rows,) distinct relevant keys per row
    truth_row: np.ndarray  # row of each distinct relevant key
    truth_gain: np.ndarray  # its gain

    @property
    def scored(self) -> np.ndarray:
        return self.n_relevant > 0

    def per_row(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.hit_row, weights=values, minlength=self.n_rows)


def top_k(scores, k):
    """Column indices and values of the ``k`` best scores of every row, best first.

    The one top-k of the library (baselines, networks, the workflow): ties go to the lower
    column, so rankings do not depend on how the partial sort happens to order them.

    Parameters
    ----------
    scores : ndarray of shape (n_rows, n_columns)
    k : int
        At most ``n_columns``.

    Returns
    -------
    indices, values : ndarrays of shape (n_rows, k)

    Examples
    --------
    >>> top_k(np.array([[0.1, 0.9, 0.5, 0.9]]), 3)
    (array([[1, 3, 2]]), array([[0.9, 0.9, 0.5]]))
    """
    n = scores.shape[1]
    if k < n:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.broadcast_to(np.arange(n), scores.shape).copy()
    values = np.take_along_axis(scores, top, axis=1)
    order = np.lexsort((top, -values), axis=-1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(values, order, axis=1)


def check_k(k) -> int:
    """``k`` as an int, or a ValueError unless it is a positive integer (booleans refused)."""
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, Integral) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}.")
    return int(k)


def _ranking(y_true, y_pred, k) -> _Ranking:
    k = check_k(k)
    truth = flatten_rows(y_true, name="y_true", allow_empty=False)
    pred = flatten_rows(y_pred, name="y_pred", allow_weights=False, allow_empty=False)
    if truth.n_rows != pred.n_rows:
        raise ValueError(
            f"y_true has {truth.n_rows} rows and y_pred {pred.n_rows}; pass one ranked list per "
            "row of true keys."
        )
    n_rows = truth.n_rows
    pred_row = pred.row_ids()
    position = np.arange(len(pred.keys)) - pred.indptr[pred_row]
    top = position < k
    pred_row, position, pred_keys = pred_row[top], position[top], pred.keys[top]

    if truth.keys.dtype == object or pred_keys.dtype == object:
        keys = np.concatenate([truth.keys.astype(object), pred_keys.astype(object)])
    else:
        keys = np.concatenate([truth.keys, pred_keys])
    codes, uniques = pd.factorize(keys)
    n_keys = np.int64(max(len(uniques), 1))
    truth_pair = truth.row_ids() * n_keys + codes[: len(truth.keys)]
    pred_pair = pred_row * n_keys + codes[len(truth.keys) :]

    truth_gain = truth.weights_or_ones()
    if (truth_gain < 0).any():
        raise ValueError("y_true gains (mapping values) must be non-negative.")
    # a key listed twice as relevant counts once, with its largest gain
    order = np.lexsort((-truth_gain, truth_pair))
    truth_pair, truth_gain = truth_pair[order], truth_gain[order]
    first = np.r_[True, truth_pair[1:] != truth_pair[:-1]][: len(truth_pair)]
    truth_pair, truth_gain = truth_pair[first], truth_gain[first]
    truth_row = truth_pair // n_keys

    # a key recommended twice counts once, at its first position
    _, first_seen = np.unique(pred_pair, return_index=True)
    once = np.zeros(len(pred_pair), dtype=bool)
    once[first_seen] = True
    if len(truth_pair):
        slot = np.minimum(np.searchsorted(truth_pair, pred_pair), len(truth_pair) - 1)
        hit = once & (truth_pair[slot] == pred_pair)
    else:
        slot, hit = np.zeros(len(pred_pair), dtype=np.int64), np.zeros(len(pred_pair), dtype=bool)
    return _Ranking(
        n_rows=n_rows,
        hit_row=pred_row[hit],
        hit_position=position[hit],
        hit_gain=truth_gain[slot[hit]],
        n_relevant=np.bincount(truth_row, minlength=n_rows),
        truth_row=truth_row,
        truth_gain=truth_gain,
    )


def _mean_over_scored(values: np.ndarray, ranking: _Ranking, name: str) -> float:
    scored = ranking.scored
    if not scored.any():
        raise ValueError(
            f"{name}: no row of y_true has a relevant key, so the metric is undefined."
        )
    return float(values[scored].mean())


def recall_at_k(y_true, y_pred, k=10, *, normalized=False) -> float:
    """Recall@k: share of each row's relevant keys found in its top k, averaged over rows.

    Parameters
    ----------
    y_true : rows of keys (or mappings key -> gain)
        The relevant keys of each row (e.g. the items bought after the split).
    y_pred : 2-D array or rows of keys
        Recommendations, best first; only the first ``k`` of each row count.
    k : int, default=10
    normalized : bool, default=False
        Divide by ``min(k, n_relevant)`` instead of ``n_relevant``, so a perfect top-k scores 1
        even for rows with more than k relevant keys (Liang et al., 2018).

    Returns
    -------
    float

    Examples
    --------
    >>> from sklearn_basemodel.metrics import recall_at_k
    >>> recall_at_k([["a", "b"], ["c"]], [["a", "x"], ["y", "z"]], k=2)
    0.25
    """
    ranking = _ranking(y_true, y_pred, k)
    return _mean_over_scored(_recall_values(ranking, k, normalized), ranking, "recall_at_k")


def _recall_values(ranking: _Ranking, k, normalized) -> np.ndarray:
    """Per-row recall of a ranking; NaN for a row without relevant keys."""
    denominator = ranking.n_relevant
    if normalized:
        denominator = np.minimum(denominator, k)
    found = ranking.per_row(np.ones(len(ranking.hit_row)))
    return np.divide(found, denominator, out=np.full(ranking.n_rows, np.nan),
                     where=denominator > 0)  # fmt: skip


def recall_at_k_per_row(y_true, y_pred, k=10, *, normalized=False) -> np.ndarray:
    """Recall@k of every row (:func:`recall_at_k` before the mean), NaN for unscored rows.

    For paired comparisons of two rankings of the same rows (e.g. a standard error of their
    difference). Parameters as in :func:`recall_at_k`.

    Returns
    -------
    ndarray of shape (n_rows,)
        NaN where a row of ``y_true`` has no relevant key.

    Examples
    --------
    >>> from sklearn_basemodel.metrics import recall_at_k_per_row
    >>> recall_at_k_per_row([["a", "b"], [], ["c"]], [["a", "x"], ["y"], ["c"]], k=2).tolist()
    [0.5, nan, 1.0]
    """
    return _recall_values(_ranking(y_true, y_pred, k), k, normalized)


def precision_at_k(y_true, y_pred, k=10) -> float:
    """Precision@k: relevant keys in the top k divided by k, averaged over rows.

    Examples
    --------
    >>> from sklearn_basemodel.metrics import precision_at_k
    >>> precision_at_k([["a", "b"], ["c"]], [["a", "b"], ["c", "x"]], k=2)
    0.75
    """
    ranking = _ranking(y_true, y_pred, k)
    values = ranking.per_row(np.ones(len(ranking.hit_row))) / k
    return _mean_over_scored(values, ranking, "precision_at_k")


def hit_rate_at_k(y_true, y_pred, k=10) -> float:
    """HitRate@k: share of rows with at least one relevant key in the top k.

    Examples
    --------
    >>> from sklearn_basemodel.metrics import hit_rate_at_k
    >>> hit_rate_at_k([["a"], ["c"]], [["a", "x"], ["y", "z"]], k=2)
    0.5
    """
    ranking = _ranking(y_true, y_pred, k)
    values = (ranking.per_row(np.ones(len(ranking.hit_row))) > 0).astype(float)
    return _mean_over_scored(values, ranking, "hit_rate_at_k")


def mrr_at_k(y_true, y_pred, k=10) -> float:
    """MRR@k: mean of 1 / rank of the first relevant key in the top k (0 when none).

    Examples
    --------
    >>> from sklearn_basemodel.metrics import mrr_at_k
    >>> mrr_at_k([["a"], ["c"]], [["x", "a"], ["c", "y"]], k=2)
    0.75
    """
    ranking = _ranking(y_true, y_pred, k)
    first = np.full(ranking.n_rows, np.inf)
    np.minimum.at(first, ranking.hit_row, ranking.hit_position)
    values = np.where(np.isfinite(first), 1.0 / (first + 1.0), 0.0)
    return _mean_over_scored(values, ranking, "mrr_at_k")


def ndcg_at_k(y_true, y_pred, k=10) -> float:
    """NDCG@k with binary relevance, or graded relevance when ``y_true`` rows are mappings.

    ``DCG = sum_{hits} gain / log2(rank + 1)`` (rank from 1) over the top k; divided by the DCG
    of the ideal ranking (the row's gains sorted, at most k of them).

    Examples
    --------
    >>> from sklearn_basemodel.metrics import ndcg_at_k
    >>> round(ndcg_at_k([["a", "b"]], [["b", "x", "a"]], k=3), 4)
    0.9197
    """
    ranking = _ranking(y_true, y_pred, k)
    dcg = ranking.per_row(ranking.hit_gain / np.log2(ranking.hit_position + 2.0))
    order = np.lexsort((-ranking.truth_gain, ranking.truth_row))
    rows, gains = ranking.truth_row[order], ranking.truth_gain[order]
    starts = np.searchsorted(rows, rows, side="left")
    rank = np.arange(len(rows)) - starts
    ideal = rank < k
    idcg = np.bincount(
        rows[ideal], weights=gains[ideal] / np.log2(rank[ideal] + 2.0), minlength=ranking.n_rows
    )
    values = np.divide(dcg, idcg, out=np.zeros(ranking.n_rows), where=idcg > 0)
    return _mean_over_scored(values, ranking, "ndcg_at_k")


_METRICS = {
    "recall": recall_at_k,
    "precision": precision_at_k,
    "hit_rate": hit_rate_at_k,
    "mrr": mrr_at_k,
    "ndcg": ndcg_at_k,
}


def _final_step(estimator):
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


class RankingScorer:
    """Scorer ``(estimator, X, y_true) -> metric(y_true, estimator.predict(X), k)``.

    Usable wherever scikit-learn takes a scorer (``GridSearchCV(scoring=...)``,
    ``cross_validate``), with a recommender or a pipeline ending in one. Extra keyword arguments
    of the call go to ``predict`` (e.g. ``history=`` for a :class:`SketchRecommender`); with
    metadata routing enabled, request them with ``set_score_request(history=True)`` (and
    ``set_predict_request(history=True)`` on the recommender).

    Parameters
    ----------
    metric : callable or {"recall", "precision", "hit_rate", "mrr", "ndcg"}
        ``metric(y_true, y_pred, k=k, **metric_kwargs)``.
    k : int, default=10
        The estimator's predictions must have at least ``k`` entries per row (set the
        recommender's ``k`` at least as large).
    **metric_kwargs
        Passed to the metric (e.g. ``normalized=True`` for recall).

    Examples
    --------
    >>> from sklearn_basemodel.metrics import RankingScorer
    >>> RankingScorer("ndcg", k=20)
    RankingScorer('ndcg', k=20)
    """

    def __init__(self, metric, *, k=10, **metric_kwargs):
        if isinstance(metric, str):
            if metric not in _METRICS:
                raise ValueError(f"metric must be one of {sorted(_METRICS)} or a callable.")
        elif not callable(metric):
            raise TypeError("metric must be a callable or the name of a ranking metric.")
        self.metric = metric
        self.k = check_k(k)
        self.metric_kwargs = metric_kwargs
        self._metadata_request = MetadataRequest(owner=type(self).__name__)

    def __call__(self, estimator, X, y_true, **predict_params):
        final_k = getattr(_final_step(estimator), "k", None)
        if isinstance(final_k, Integral) and final_k < self.k:
            raise ValueError(
                f"The recommender returns k={final_k} keys per row but this scorer needs "
                f"k={self.k}; set the recommender's k to at least {self.k}."
            )
        y_pred = estimator.predict(X, **predict_params)
        metric = _METRICS.get(self.metric, self.metric) if isinstance(self.metric, str) else self.metric
        return metric(y_true, y_pred, k=self.k, **self.metric_kwargs)

    def set_score_request(self, **kwargs):
        """Request metadata (e.g. ``history=True``) to be passed to ``predict``.

        Only with ``sklearn.set_config(enable_metadata_routing=True)``.
        """
        if not get_config().get("enable_metadata_routing", False):
            raise RuntimeError(
                "set_score_request needs metadata routing: "
                "sklearn.set_config(enable_metadata_routing=True)."
            )
        for param, alias in kwargs.items():
            self._metadata_request.score.add_request(param=param, alias=alias)
        return self

    def get_metadata_routing(self):
        """The metadata this scorer requests (see :meth:`set_score_request`)."""
        return self._metadata_request

    def __repr__(self) -> str:
        name = self.metric if isinstance(self.metric, str) else getattr(
            self.metric, "__name__", repr(self.metric)
        )
        extra = "".join(f", {key}={value!r}" for key, value in self.metric_kwargs.items())
        return f"{type(self).__name__}({name!r}, k={self.k}{extra})"


def make_ranking_scorer(metric, *, k=10, **metric_kwargs) -> RankingScorer:
    """A scorer for ``GridSearchCV(scoring=...)`` from a ranking metric; see RankingScorer."""
    return RankingScorer(metric, k=k, **metric_kwargs)


def recall_at_k_scorer(k=10, **metric_kwargs) -> RankingScorer:
    """Scorer of :func:`recall_at_k` (``normalized=`` is passed through).

    Examples
    --------
    >>> from sklearn_basemodel.metrics import recall_at_k_scorer
    >>> recall_at_k_scorer(k=20, normalized=True)
    RankingScorer('recall', k=20, normalized=True)
    """
    return RankingScorer("recall", k=k, **metric_kwargs)


def precision_at_k_scorer(k=10) -> RankingScorer:
    """Scorer of :func:`precision_at_k`."""
    return RankingScorer("precision", k=k)


def hit_rate_at_k_scorer(k=10) -> RankingScorer:
    """Scorer of :func:`hit_rate_at_k`."""
    return RankingScorer("hit_rate", k=k)


def mrr_at_k_scorer(k=10) -> RankingScorer:
    """Scorer of :func:`mrr_at_k`."""
    return RankingScorer("mrr", k=k)


def ndcg_at_k_scorer(k=10) -> RankingScorer:
    """Scorer of :func:`ndcg_at_k`."""
    return RankingScorer("ndcg", k=k)
