import math

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator
from sklearn.model_selection import GridSearchCV, KFold

from sklearn_basemodel.metrics import (
    RankingScorer,
    hit_rate_at_k,
    hit_rate_at_k_scorer,
    make_ranking_scorer,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    recall_at_k_scorer,
)

METRICS = [recall_at_k, precision_at_k, hit_rate_at_k, mrr_at_k, ndcg_at_k]


def _reference(name, truth_rows, pred_rows, k):
    """Loop-by-loop definitions, the oracle for the vectorised metrics."""
    values = []
    for truth, pred in zip(truth_rows, pred_rows):
        gains = dict(truth) if isinstance(truth, dict) else {key: 1.0 for key in truth}
        if not gains:
            continue
        seen, ranked = set(), []
        for key in list(pred)[:k]:
            if key not in seen:
                seen.add(key)
                ranked.append(key)
            else:
                ranked.append(None)  # a repeat keeps its slot but cannot hit again
        hits = [i for i, key in enumerate(ranked) if key in gains]
        if name == "recall":
            values.append(len(hits) / len(gains))
        elif name == "precision":
            values.append(len(hits) / k)
        elif name == "hit_rate":
            values.append(float(bool(hits)))
        elif name == "mrr":
            values.append(1.0 / (hits[0] + 1) if hits else 0.0)
        else:
            dcg = sum(gains[ranked[i]] / math.log2(i + 2) for i in hits)
            ideal = sorted(gains.values(), reverse=True)[:k]
            idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
            values.append(dcg / idcg if idcg > 0 else 0.0)
    return float(np.mean(values))


def _random_rows(rng, n_rows, n_keys, max_len, *, weighted=False):
    rows = []
    for _ in range(n_rows):
        keys = rng.choice(n_keys, size=rng.integers(0, max_len + 1), replace=True).tolist()
        rows.append({k: float(rng.integers(1, 4)) for k in keys} if weighted else keys)
    return rows


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 3, 10])
def test_metrics_match_the_loop_definitions(seed, k):
    rng = np.random.default_rng(seed)
    truth = _random_rows(rng, 40, 15, 6)
    truth[0] = [3]  # at least one scored row
    pred = _random_rows(rng, 40, 15, 12)  # variable lengths, repeats, shorter than k
    for name, metric in zip(["recall", "precision", "hit_rate", "mrr", "ndcg"], METRICS):
        assert metric(truth, pred, k=k) == pytest.approx(_reference(name, truth, pred, k))


def test_graded_ndcg_uses_mapping_gains():
    rng = np.random.default_rng(7)
    truth = _random_rows(rng, 30, 12, 5, weighted=True)
    truth[0] = {1: 3.0, 2: 1.0}
    pred = _random_rows(rng, 30, 12, 8)
    assert ndcg_at_k(truth, pred, k=5) == pytest.approx(_reference("ndcg", truth, pred, 5))
    # the better-gain item first scores higher than the other way round
    assert ndcg_at_k([{"a": 3.0, "b": 1.0}], [["a", "b"]], k=2) == pytest.approx(1.0)
    assert ndcg_at_k([{"a": 3.0, "b": 1.0}], [["b", "a"]], k=2) < 1.0


def test_hand_computed_values():
    truth = [["a", "b", "c"], ["d"], []]
    pred = np.array([["a", "x", "b"], ["y", "d", "z"], ["a", "b", "c"]], dtype=object)
    # the empty third row is not scored
    assert recall_at_k(truth, pred, k=2) == pytest.approx((1 / 3 + 1) / 2)
    assert recall_at_k(truth, pred, k=3) == pytest.approx((2 / 3 + 1) / 2)
    assert recall_at_k(truth, pred, k=2, normalized=True) == pytest.approx((1 / 2 + 1) / 2)
    assert precision_at_k(truth, pred, k=2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert hit_rate_at_k(truth, pred, k=1) == pytest.approx(0.5)
    assert mrr_at_k(truth, pred, k=3) == pytest.approx((1 + 1 / 2) / 2)
    expected_first = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    expected_second = (1 / math.log2(3)) / 1
    assert ndcg_at_k(truth, pred, k=3) == pytest.approx((expected_first + expected_second) / 2)


def test_repeated_recommendation_counts_once():
    assert recall_at_k([["a", "b"]], [["a", "a", "b"]], k=2) == pytest.approx(0.5)
    assert precision_at_k([["a", "b"]], [["a", "a"]], k=2) == pytest.approx(0.5)


def test_integer_and_mixed_keys():
    assert recall_at_k([[1, 2], [3]], np.array([[2, 9], [3, 1]]), k=2) == pytest.approx(0.75)
    assert recall_at_k([[1, "b"]], [["b", 1]], k=2) == pytest.approx(1.0)
    assert recall_at_k([["1"]], [[1]], k=1) == 0.0  # "1" and 1 are different keys


@pytest.mark.parametrize("metric", METRICS)
def test_input_errors(metric):
    with pytest.raises(ValueError, match="rows"):
        metric([["a"], ["b"]], [["a"]], k=1)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        metric([["a"]], [["a"]], k=0)
    with pytest.raises(ValueError, match="undefined"):
        metric([[], []], [["a"], ["b"]], k=1)
    with pytest.raises((TypeError, ValueError), match="string"):
        metric(["ab"], [["a"]], k=1)


class _FixedRecommender(BaseEstimator):
    """Predicts a fixed ranking for every row; ``history`` keys are moved to the front."""

    def __init__(self, ranking=("a", "b", "c", "d"), k=4):
        self.ranking = ranking
        self.k = k

    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def predict(self, X, history=None):
        rows = []
        for i in range(len(X)):
            front = list(history[i]) if history is not None else []
            rows.append((front + [r for r in self.ranking if r not in front])[: self.k])
        return np.array(rows, dtype=object)


def test_scorer_calls_predict_and_the_metric():
    X = np.zeros((4, 1))
    y = [["b"], ["c"], ["a"], ["z"]]
    est = _FixedRecommender().fit(X)
    assert recall_at_k_scorer(k=1)(est, X, y) == pytest.approx(0.25)
    assert recall_at_k_scorer(k=3)(est, X, y) == pytest.approx(0.75)
    assert make_ranking_scorer(mrr_at_k, k=2)(est, X, y) == pytest.approx((0.5 + 1) / 4)
    # keyword arguments reach predict
    history = [["b"], ["c"], ["z"], ["z"]]
    assert hit_rate_at_k_scorer(k=1)(est, X, y, history=history) == pytest.approx(0.75)


def test_scorer_refuses_a_recommender_with_a_smaller_k():
    est = _FixedRecommender(k=2).fit(np.zeros((2, 1)))
    with pytest.raises(ValueError, match="k=2 keys per row but this scorer needs k=3"):
        recall_at_k_scorer(k=3)(est, np.zeros((2, 1)), [["a"], ["b"]])


def test_scorer_in_grid_search():
    X = np.zeros((12, 1))
    y = [["c"]] * 12
    search = GridSearchCV(
        _FixedRecommender(),
        {"ranking": [("a", "b", "c", "d"), ("c", "a", "b", "d")]},
        scoring={"recall": recall_at_k_scorer(k=1), "ndcg": RankingScorer("ndcg", k=3)},
        refit="recall",
        cv=KFold(3),
    ).fit(X, y)
    assert search.best_params_["ranking"][0] == "c"
    assert search.cv_results_["mean_test_recall"].tolist() == [0.0, 1.0]


def test_history_routed_to_predict_with_metadata_routing():
    X = np.zeros((12, 1))
    y = [["d"]] * 12
    history = [["d"]] * 12
    with sklearn.config_context(enable_metadata_routing=True):
        scorer = recall_at_k_scorer(k=1).set_score_request(history=True)
        search = GridSearchCV(
            _FixedRecommender().set_predict_request(history=True),
            {"k": [4]},
            scoring=scorer,
            cv=KFold(3),
        ).fit(X, y, history=history)
    assert search.best_score_ == pytest.approx(1.0)  # without the history it would be 0


def test_set_score_request_needs_routing():
    with pytest.raises(RuntimeError, match="metadata routing"):
        recall_at_k_scorer().set_score_request(history=True)


def test_scorer_repr_and_errors():
    assert repr(recall_at_k_scorer(k=5, normalized=True)) == (
        "RankingScorer('recall', k=5, normalized=True)"
    )
    with pytest.raises(ValueError, match="metric must be one of"):
        RankingScorer("auc")
    with pytest.raises(ValueError, match="k must be"):
        RankingScorer("recall", k=0)


def test_recall_per_row_is_what_recall_at_k_averages():
    from sklearn_basemodel.metrics import recall_at_k_per_row

    rng = np.random.default_rng(0)
    truth = [list(rng.choice(20, size=rng.integers(0, 6), replace=False)) for _ in range(50)]
    truth[0] = [1, 2]  # at least one scored row
    pred = [list(rng.choice(20, size=10, replace=False)) for _ in range(50)]
    for normalized in (False, True):
        values = recall_at_k_per_row(truth, pred, k=5, normalized=normalized)
        empty = np.array([len(t) == 0 for t in truth])
        assert np.isnan(values[empty]).all() and np.isfinite(values[~empty]).all()
        assert np.nanmean(values) == pytest.approx(
            recall_at_k(truth, pred, k=5, normalized=normalized))
        hand = [len(set(t) & set(p[:5])) / (min(len(set(t)), 5) if normalized else len(set(t)))
                for t, p in zip(truth, pred) if t]  # fmt: skip
        np.testing.assert_allclose(values[~empty], hand)
