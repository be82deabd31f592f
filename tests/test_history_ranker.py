"""HistoryRanker: a learned use of the customer's own history, kept only where it validates."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.history_ranker import HistoryRanker, _item_statistics
from sklearn_basemodel.metrics import recall_at_k
from sklearn_basemodel.recipes import pretrainer

N_ITEMS = 40


def _staples_and_one_offs(n_rows, seed):
    """Each customer holds 3 staples (items 0-19, bought again) and 3 one-offs (items 20-39,
    never bought again) in the same history, with equal weights: one boost weight for every
    item cannot tell them apart, a per-item repeat rate can."""
    rng = np.random.default_rng(seed)
    history, future = [], []
    for _ in range(n_rows):
        staples = [f"i{j}" for j in rng.choice(20, 3, replace=False)]
        one_offs = [f"i{j}" for j in 20 + rng.choice(20, 3, replace=False)]
        order = rng.permutation(6)
        history.append([(staples + one_offs)[j] for j in order])
        future.append(staples)
    X = rng.normal(size=(n_rows, 8)).astype(np.float32)
    return X, history, future


@pytest.fixture(scope="module")
def recommender():
    X, history, future = _staples_and_one_offs(300, seed=0)
    target = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=2, sketch_dim=8,
                          random_state=0).fit([[f"i{j}" for j in range(N_ITEMS)]])  # fmt: skip
    return pretrainer(target, hidden_units=16, max_epochs=3, random_state=0).fit(X, future)


def test_the_ranker_learns_which_history_items_come_back(recommender):
    X, history, future = _staples_and_one_offs(200, seed=1)
    X_test, history_test, future_test = _staples_and_one_offs(200, seed=2)
    pairs = _staples_and_one_offs(400, seed=3)[1:]
    ranker = HistoryRanker(recommender, k=3, random_state=0)
    ranker.fit(X, future, {"all": history}, item_rows=pairs)
    assert ranker.kept_ == "ranker"
    assert ranker.cv_score_ > ranker.boost_score_
    ranked = recall_at_k(future_test, ranker.predict(X_test, {"all": history_test}), k=3)
    boosted = recall_at_k(future_test, recommender.predict(X_test, history=history_test, k=3),
                          k=3)  # fmt: skip
    assert recommender.history_mode == "boost"  # the boost as the ranker's fit tuned it
    assert ranked > 0.95
    assert ranked > boosted + 0.2


def test_without_item_rows_the_item_statistics_are_left_out(recommender):
    X, history, future = _staples_and_one_offs(100, seed=1)
    ranker = HistoryRanker(recommender, k=3, cv=3, random_state=0)
    ranker.fit(X, future, {"all": history})
    assert ranker.item_statistics_ is None
    with_stats = HistoryRanker(recommender, k=3, cv=3, random_state=0).fit(
        X, future, {"all": history}, item_rows=_staples_and_one_offs(50, seed=3)[1:])
    assert with_stats.learner_.n_features_in_ == ranker.learner_.n_features_in_ + 2


def test_the_boost_is_kept_where_the_ranker_does_not_validate_better(recommender):
    # a ranker that learns nothing (a constant score) cannot beat the tuned boost
    X, history, future = _staples_and_one_offs(100, seed=1)
    constant = make_pipeline(FunctionTransformer(lambda F: np.zeros((len(F), 1))),
                             LogisticRegression())  # fmt: skip
    ranker = HistoryRanker(recommender, k=3, cv=3, learner=constant, random_state=0)
    ranker.fit(X, future, {"all": history})
    assert ranker.kept_ == "boost"
    assert ranker.cv_score_ <= ranker.boost_score_
    recommender.set_params(history_mode="ignore")  # predict must set the boost itself again
    expected_weight = ranker.boost_["history_weight"]
    top = ranker.predict(X, {"all": history})
    assert recommender.history_mode == "boost"
    assert recommender.history_weight == expected_weight
    np.testing.assert_array_equal(top, recommender.predict(X, history=history, k=3))


def test_item_statistics_count_purchases_and_smoothed_repeat_rates(recommender):
    histories = [["i0", "i1"], ["i0"], ["i2"]]
    next_items = [["i0"], ["i3"], ["i0"]]
    stats = _item_statistics(pd.Index(recommender.entities_), (histories, next_items))
    column = {key: j for j, key in enumerate(recommender.entities_)}
    np.testing.assert_allclose(stats[column["i0"], 0], np.log1p(2))
    np.testing.assert_allclose(stats[column["i3"], 0], np.log1p(1))
    # i0 was held twice and bought again once; the mean rate is 1 of 4 holdings
    prior = 10.0 * 0.25
    np.testing.assert_allclose(stats[column["i0"], 1], (1 + prior) / (2 + 10), rtol=1e-6)
    np.testing.assert_allclose(stats[column["i1"], 1], (0 + prior) / (1 + 10), rtol=1e-6)
    np.testing.assert_allclose(stats[column["i5"], 1], 0.25, rtol=1e-6)


def test_recommendations_come_from_the_candidates_and_are_reproducible(recommender):
    X, history, future = _staples_and_one_offs(100, seed=1)
    params = dict(k=3, cv=3, n_candidates=4, random_state=0)
    first = HistoryRanker(recommender, **params).fit(X, future, {"all": history})
    second = HistoryRanker(recommender, **params).fit(X, future, {"all": history})
    first.kept_ = second.kept_ = "ranker"  # compare the rankers themselves
    top = first.predict(X, {"all": history}, k=10)
    np.testing.assert_array_equal(top, second.predict(X, {"all": history}, k=10))
    # asked for 10, the candidates are the model's top 10 (more than n_candidates) and the
    # history: nothing else is recommended
    model_top = recommender.predict(X, k=10)
    for row, own, best in zip(top, history, model_top):
        assert set(row) <= set(own) | set(best)
    assert any(set(row) - set(own) for row in top)


def test_a_pipeline_recommender_reads_the_pipeline_input(recommender):
    X, history, future = _staples_and_one_offs(60, seed=1)
    pipe = make_pipeline(FunctionTransformer(lambda A: A * 1.0), recommender)
    ranker = HistoryRanker(pipe, k=3, cv=3, random_state=0).fit(X, future, history)
    direct = HistoryRanker(recommender, k=3, cv=3, random_state=0).fit(X, future, history)
    assert ranker.cv_score_ == direct.cv_score_
    np.testing.assert_array_equal(ranker.predict(X, history), direct.predict(X, history))


def test_bad_input_is_refused_with_clear_errors(recommender):
    X, history, future = _staples_and_one_offs(20, seed=1)
    ranker = HistoryRanker(recommender, k=3, cv=3, random_state=0)
    with pytest.raises(ValueError, match="at least 25 rows"):
        HistoryRanker(recommender, cv=25).fit(X, future, history)
    with pytest.raises(ValueError, match="item_rows"):
        ranker.fit(X, future, history, item_rows=(history, future[:3]))
    with pytest.raises(ValueError, match="at least one history"):
        ranker.fit(X, future, {})
    ranker.fit(X, future, {"all": history})
    with pytest.raises(ValueError, match="labels the ranker was fitted with"):
        ranker.kept_ = "ranker"
        ranker.predict(X, {"recent": history})
    with pytest.raises(ValueError, match="cv"):
        HistoryRanker(recommender, cv=1).fit(X, future, history)
    with pytest.raises(ValueError, match="history 'all' has 19 rows but X has 20"):
        ranker.predict(X, {"all": history[:-1]})
    with pytest.raises(ValueError, match="non-negative"):
        ranker.fit(X, future, history, item_rows=([{"i0": -1.0}] * 20, future))


def test_blocks_of_rows_give_the_same_ranking_as_one_block(recommender, monkeypatch):
    from sklearn_basemodel import history_ranker

    X, history, future = _staples_and_one_offs(60, seed=1)
    whole = HistoryRanker(recommender, k=3, cv=3, random_state=0).fit(X, future, history)
    monkeypatch.setattr(history_ranker, "BLOCK_CELLS", 7 * N_ITEMS)  # blocks of 7 rows
    blocks = HistoryRanker(recommender, k=3, cv=3, random_state=0).fit(X, future, history)
    assert blocks.cv_score_ == whole.cv_score_
    whole.kept_ = blocks.kept_ = "ranker"
    np.testing.assert_array_equal(blocks.predict(X, history), whole.predict(X, history))


def test_rank_gives_the_predicted_items_with_their_scores(recommender):
    X, history, future = _staples_and_one_offs(200, seed=1)
    X_test, history_test, _ = _staples_and_one_offs(30, seed=2)
    pairs = _staples_and_one_offs(400, seed=3)[1:]
    ranker = HistoryRanker(recommender, k=3, random_state=0).fit(X, future, {"all": history},
                                                                 item_rows=pairs)  # fmt: skip
    assert ranker.kept_ == "ranker"
    items, scores = ranker.rank(X_test, {"all": history_test})
    np.testing.assert_array_equal(items, ranker.predict(X_test, {"all": history_test}))
    # the ranker's probabilities, best first
    assert ((scores >= 0) & (scores <= 1)).all() and (np.diff(scores, axis=1) <= 0).all()
    column = {key: j for j, key in enumerate(recommender.entities_)}
    probability = {}
    for part in ranker._candidates(X_test, {"all": history_test}, 3):
        values = ranker.learner_.predict_proba(part.features)[:, 1]
        probability.update(zip(zip(part.row, part.item), values))
    expected = [[probability[(r, column[key])] for key in row] for r, row in enumerate(items)]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    # with the boost kept: the recommender's boosted log-probabilities of those items
    ranker.kept_ = "boost"
    items, scores = ranker.rank(X_test, {"all": history_test}, k=4)
    full = recommender.predict_scores(X_test, history=history_test)
    expected = np.take_along_axis(full, np.vectorize(column.get)(items), axis=1)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    np.testing.assert_array_equal(items, recommender.predict(X_test, history=history_test, k=4))


def test_fewer_items_than_k_are_all_ranked(recommender):
    X, history, future = _staples_and_one_offs(60, seed=1)
    ranker = HistoryRanker(recommender, k=N_ITEMS + 5, cv=3, random_state=0)
    ranker.fit(X, future, {"all": history})
    items, scores = ranker.rank(X[:5], {"all": history[:5]})
    assert items.shape == scores.shape == (5, N_ITEMS)
    assert all(len(set(row)) == N_ITEMS for row in items)
