"""Tests of the strong baselines: hand-checked rankings, formulas, planted structure, contracts."""

import itertools
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_basemodel.baselines import (
    BGNBDChurn,
    EASERecommender,
    ItemKNNRecommender,
    PersonalFrequencyRecommender,
    PopularityRecommender,
    RFMTransformer,
    TIFUKNNRecommender,
    rfm_features,
)
from sklearn_basemodel.metrics import recall_at_k

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
ROWS = [["a", "b"], ["b"], ["b", "c"], ["c"]]  # popularity: b 3, c 2, a 1


def binary_matrix(rows, items):
    index = {item: i for i, item in enumerate(items)}
    matrix = np.zeros((len(rows), len(items)))
    for r, row in enumerate(rows):
        for item in row:
            matrix[r, index[item]] += 1
    return matrix


def random_rows(n_rows, n_items, seed, low=2, high=6):
    rng = np.random.default_rng(seed)
    return [rng.choice(n_items, size=rng.integers(low, high), replace=False).tolist()
            for _ in range(n_rows)]  # fmt: skip


# --------------------------------------------------------------------------- popularity
def test_popularity_ranks_by_count_and_pads_with_none():
    model = PopularityRecommender().fit(ROWS)
    assert model.items_.tolist() == ["a", "b", "c"]
    assert model.popularity_.tolist() == [1.0, 3.0, 2.0]
    assert model.predict([["a"], []], k=4).tolist() == [["b", "c", "a", None]] * 2


def test_popularity_honours_weights_window_target_and_exclusion():
    weighted = PopularityRecommender().fit([{"a": 5.0, "b": 1.0}, ["b"]])
    assert weighted.predict([[]], k=2).tolist() == [["a", "b"]]
    windowed = PopularityRecommender(window=2).fit(ROWS)  # only ["b", "c"], ["c"]
    assert windowed.predict([[]], k=2).tolist() == [["c", "b"]]
    target = PopularityRecommender(source="target").fit([["a"], ["a"]], [["d"], ["d", "a"]])
    assert target.predict([[]], k=2).tolist() == [["d", "a"]]
    excluding = PopularityRecommender(exclude_seen=True).fit(ROWS)
    assert excluding.predict([["b"]], k=3).tolist() == [["c", "a", None]]
    assert np.isneginf(excluding.predict_scores([["b"]])[0, 1])


# --------------------------------------------------------------------------- GP-TopFreq
def test_personal_frequency_own_items_first_then_popularity():
    model = PersonalFrequencyRecommender().fit(ROWS + [["d"]])
    # own: a twice, d once; then the rest by popularity (b before c)
    assert model.predict([["d", "a", "a"]], k=4).tolist() == [["a", "d", "b", "c"]]
    # ties in own frequency go to the more popular item: c (2) before a (1)
    assert model.predict([["a", "c"]], k=2).tolist() == [["c", "a"]]


def test_personal_frequency_weights_and_tie_break_never_overtake():
    model = PersonalFrequencyRecommender().fit(ROWS)
    # a weighs slightly more than b: popularity of b must not overtake it
    assert model.predict([{"a": 0.30, "b": 0.29}], k=3).tolist() == [["a", "b", "c"]]
    scores = model.predict_scores([{"a": 0.30, "b": 0.29}])[0]
    assert scores[0] > scores[1] > scores[2] > 0


# --------------------------------------------------------------------------- EASE
def test_ease_matches_the_closed_form_and_has_zero_diagonal():
    rows = random_rows(40, 9, seed=1)
    model = EASERecommender(l2=3.0, dtype="float64").fit(rows)
    X = binary_matrix(rows, model.items_.tolist())
    P = np.linalg.inv(X.T @ X + 3.0 * np.eye(X.shape[1]))
    B = np.eye(X.shape[1]) - P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    np.testing.assert_allclose(model.coef_, B, atol=1e-10)
    assert np.all(np.diag(model.coef_) == 0)
    np.testing.assert_allclose(model.predict_scores(rows[:5]), X[:5] @ B, atol=1e-10)
    single = EASERecommender(l2=3.0).fit(rows)  # float32 by default
    assert single.coef_.dtype == np.float32
    np.testing.assert_allclose(single.coef_, B, atol=1e-5)


def test_ease_chooses_l2_from_grid_reproducibly():
    rows = random_rows(200, 30, seed=2)
    grid = (0.5, 5.0, 50.0)
    first = EASERecommender(l2_grid=grid, validation_k=2, random_state=3).fit(rows)
    again = EASERecommender(l2_grid=grid, validation_k=2, random_state=3).fit(rows)
    candidates = set(grid) | {np.sqrt(a * b) for a, b in itertools.pairwise(grid)}
    assert any(np.isclose(first.l2_, c) for c in candidates) and np.isfinite(first.l2_)
    assert first.l2_scores_[first.l2_] == max(first.l2_scores_.values())
    assert first.l2_scores_ == again.l2_scores_
    np.testing.assert_array_equal(first.coef_, again.coef_)
    assert len(set(first.l2_scores_.values())) > 1  # the choice is not a tie
    unrefined = EASERecommender(l2_grid=grid, refine=False, random_state=3).fit(rows)
    assert set(unrefined.l2_scores_) == set(grid)


def test_ease_search_walks_out_from_the_middle_of_the_grid():
    train, test_rows, test_hidden = planted_split()
    grid = (0.1, 1.0, 10.0, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7)  # the planted best is small
    model = EASERecommender(l2_grid=grid, refine=False, validation_k=1, exclude_seen=True)
    model.fit(train, X_val=test_rows, y_val=test_hidden)
    tried = sorted(model.l2_scores_)
    low, high = grid.index(tried[0]), grid.index(tried[-1])
    # a contiguous run of the grid holding its middle three, walked out towards the best...
    assert tried == list(grid[low : high + 1]) and {1e2, 1e3, 1e4} <= set(tried)
    assert 3 < len(tried) < len(grid) and high == 5
    # ...until the best is inside the run (or at the end of the grid)
    best = grid.index(model.l2_)
    assert model.l2_scores_[model.l2_] == max(model.l2_scores_.values())
    assert (low < best or low == 0) and best < high
    # the kept model is the best one of the search: the same as a refit at l2_
    refit = EASERecommender(l2=model.l2_, exclude_seen=True).fit(train)
    np.testing.assert_allclose(model.coef_, refit.coef_)


def test_ease_validation_rows_decide_l2():
    # a huge l2 turns EASE into raw co-occurrence, where item 2 (15 rows with item 0) beats
    # item 1 (10 rows); a small l2 explains item 2 by item 3 and recommends item 1 after item 0
    rows = [[0, 1]] * 10 + [[0, 2, 3]] * 15 + [[2, 3]] * 50
    model = EASERecommender(l2_grid=(0.1, 1e6), refine=False, validation_k=1, exclude_seen=True)
    model.fit(rows, X_val=[[0]] * 5, y_val=[[1]] * 5)
    assert model.l2_scores_ == {0.1: 1.0, 1e6: 0.0}
    assert model.l2_ == 0.1
    flipped = clone(model).fit(rows, X_val=[[0]] * 5, y_val=[[2, 3]] * 5)
    assert flipped.l2_ == 1e6


# --------------------------------------------------------------------------- item kNN
def test_item_knn_cosine_is_symmetric_and_pruned():
    rows = random_rows(60, 10, seed=4)
    full = ItemKNNRecommender(n_neighbors=50, shrink=0.0).fit(rows)
    S = full.similarity_.toarray()
    np.testing.assert_allclose(S, S.T)
    X = binary_matrix(rows, full.items_.tolist())
    norms = np.linalg.norm(X, axis=0)
    expected = (X.T @ X) / np.outer(norms, norms)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(S, expected)
    pruned = ItemKNNRecommender(n_neighbors=3, shrink=0.0).fit(rows).similarity_.toarray()
    assert ((pruned > 0).sum(axis=0) <= 3).all()
    for j in range(10):  # each column keeps its 3 largest similarities
        kept = np.flatnonzero(pruned[:, j])
        assert np.sort(expected[kept, j]).min() >= np.sort(expected[:, j])[-3] - 1e-12


# --------------------------------------------------------------------------- TIFU-KNN
def hand_personal_vector(baskets, n_groups, within, group):
    """The TIFU-KNN personal vector, written out with explicit loops."""
    chunks = np.array_split(np.arange(len(baskets)), min(n_groups, len(baskets)))
    vector = {}
    for g, chunk in enumerate(chunks):
        for j, b in enumerate(chunk):
            weight = within ** (len(chunk) - 1 - j) / len(chunk)
            weight *= group ** (len(chunks) - 1 - g) / len(chunks)
            for item in set(baskets[b]):
                vector[item] = vector.get(item, 0.0) + weight
    return vector


def test_tifu_knn_without_neighbours_is_the_decayed_personal_frequency():
    history = [[1, 2], [2], [3, 1], [2, 4], [1]]
    model = TIFUKNNRecommender(n_neighbors=0, within_decay=0.8, group_decay=0.5, group_size=2,
                               alpha=1.0).fit([history, [[5]]])  # fmt: skip
    scores = model.predict_scores([history])[0]
    expected = hand_personal_vector(history, 2, 0.8, 0.5)
    np.testing.assert_allclose(scores, [expected.get(i, 0.0) for i in model.items_])
    same = TIFUKNNRecommender(n_neighbors=5, alpha=1.0, within_decay=0.8, group_decay=0.5,
                              group_size=2).fit([history, [[5]]])  # fmt: skip
    np.testing.assert_allclose(same.predict_scores([history])[0], scores)


def test_tifu_knn_blends_the_nearest_customer():
    pool = [[[1, 2]], [[7, 8]], [[1, 9]]]
    model = TIFUKNNRecommender(n_neighbors=1, alpha=0.5).fit(pool)
    scores = dict(zip(model.items_.tolist(), model.predict_scores([[[1, 2], [2]]])[0]))
    # nearest by cosine is [1, 2]; its vector is 1 on items 1 and 2
    assert scores[7] == scores[8] == scores[9] == 0.0
    assert scores[1] > 0 and scores[2] > scores[1]


# --------------------------------------------------------------------------- planted structure
def planted_split(seed=0, n_users=400, n_clusters=8, per_cluster=6):
    """Users buy 4 items of one cluster plus one of 3 globally popular items.

    Returns the training rows (all items) and, for the last 100 users, the rows without one
    cluster item and that hidden item.
    """
    rng = np.random.default_rng(seed)
    rows = []
    n_items = n_clusters * per_cluster
    for _ in range(n_users):
        cluster = rng.integers(n_clusters)
        items = (cluster * per_cluster + rng.choice(per_cluster, 4, replace=False)).tolist()
        rows.append(items + [n_items + int(rng.integers(3))])
    test = rows[300:]
    return rows[:300], [r[:3] + r[4:] for r in test], [[r[3]] for r in test]


@pytest.mark.parametrize("model", [EASERecommender(l2=10.0), ItemKNNRecommender(n_neighbors=20)])
def test_item_models_beat_popularity_on_planted_clusters(model):
    train, test_rows, test_hidden = planted_split()
    popularity = PopularityRecommender(exclude_seen=True).fit(train)
    model = clone(model).set_params(exclude_seen=True).fit(train)
    pop_recall = popularity.score(test_rows, test_hidden, k=5)
    model_recall = model.score(test_rows, test_hidden, k=5)
    assert model_recall > pop_recall + 0.3


def test_score_is_recall_of_predict():
    model = PopularityRecommender().fit(ROWS)
    y = [["c"], ["a", "b"]]
    assert model.score([[], []], y, k=2) == recall_at_k(y, model.predict([[], []], k=2), k=2)
    assert model.score([[], []], y, k=2) == pytest.approx(0.75)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "X, error, match",
    [
        ("abc", TypeError, "string"),
        (["ab", ["c"]], TypeError, "string"),
        (pd.DataFrame({"items": [["a"]]}), TypeError, "select the column"),
        ({"a": 1.0}, TypeError, "wrap it in a list"),
        ([{"a": -1.0}], ValueError, "non-negative"),
        ([5], TypeError, "iterable of item keys"),
        ([[]], ValueError, "no item"),
    ],
)
def test_bad_rows_are_explained(X, error, match):
    with pytest.raises(error, match=match):
        PopularityRecommender().fit(X)


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True])
def test_k_must_be_a_positive_integer(k):
    model = PopularityRecommender().fit(ROWS)
    with pytest.raises(ValueError, match="positive integer"):
        model.predict(ROWS, k=k)


def test_parameters_are_validated():
    with pytest.raises(ValueError, match="n_neighbors"):
        ItemKNNRecommender(n_neighbors=0).fit(ROWS)
    with pytest.raises(ValueError, match="alpha"):
        TIFUKNNRecommender(alpha=1.5).fit([[["a"]]])
    with pytest.raises(ValueError, match="l2"):
        EASERecommender(l2=-1.0).fit(ROWS)
    with pytest.raises(ValueError, match="l2_grid"):
        EASERecommender(l2_grid=(1.0, -2.0)).fit(ROWS)
    with pytest.raises(ValueError, match="max_items"):
        EASERecommender(l2=1.0, max_items=2).fit(ROWS)
    with pytest.raises(ValueError, match="pass y"):
        PopularityRecommender(source="target").fit(ROWS)
    with pytest.raises(TypeError, match="list of baskets"):
        TIFUKNNRecommender().fit([[1, 2, 3]])
    with pytest.raises(ValueError, match="X_val and y_val"):
        EASERecommender().fit(ROWS, X_val=[["a"]])


def test_unfitted_and_unknown_items():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        EASERecommender().predict(ROWS)
    model = PopularityRecommender(exclude_seen=True).fit(ROWS)
    assert model.predict([["zzz"]], k=1).tolist() == [["b"]]  # unknown items are ignored


@pytest.mark.parametrize(
    "model, X",
    [
        (PopularityRecommender(), ROWS),
        (PersonalFrequencyRecommender(), ROWS),
        (EASERecommender(l2=1.0), ROWS),
        (ItemKNNRecommender(), ROWS),
        (TIFUKNNRecommender(n_neighbors=2), [[["a"], ["b"]], [["b", "c"]], [["c"]]]),
    ],
)
def test_clone_and_pickle(model, X):
    fitted = clone(model).fit(X)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_scores(X), fitted.predict_scores(X))
    fresh = clone(fitted)
    assert fresh.get_params() == model.get_params() and not hasattr(fresh, "items_")


# --------------------------------------------------------------------------- RFM
def test_rfm_features_by_hand_with_a_reference_column():
    X = pd.DataFrame({
        "times": [pd.to_datetime(["2024-01-01", "2024-01-11", "2024-01-21"]),
                  pd.to_datetime(["2024-01-05"])],
        "amounts": [[10.0, 20.0, 60.0], [7.0]],
        "reference_time": pd.to_datetime(["2024-01-31", "2024-01-15"]),
    })  # fmt: skip
    rfm = RFMTransformer(half_life=10.0).fit(X)
    out = pd.DataFrame(rfm.transform(X), columns=rfm.get_feature_names_out())
    assert out["recency"].tolist() == [10.0, 10.0]
    assert out["tenure"].tolist() == [30.0, 10.0]
    assert out["frequency"].tolist() == [3.0, 1.0]
    assert out["repeat"].tolist() == [2.0, 0.0]
    assert out["mean_gap"].tolist() == [10.0, 10.0]
    assert out["total_amount"].tolist() == [90.0, 7.0]
    assert out["mean_amount"].tolist() == [30.0, 7.0]
    assert out["decayed_frequency"].tolist() == pytest.approx([0.5 + 0.25 + 0.125, 0.5])
    logged = RFMTransformer(half_life=10.0, log=True).fit_transform(X)
    np.testing.assert_allclose(logged, np.log1p(out.to_numpy()))


def test_rfm_features_from_an_events_table():
    events = pd.DataFrame({
        "customer_id": [1, 1, 2, 2, 3],
        "event_time": [1.0, 4.0, 9.0, 12.0, 15.0],
        "amount": [5.0, 15.0, 2.0, 100.0, 1.0],
    })  # fmt: skip
    table = rfm_features(events, 10.0, amount="amount")
    assert table.index.tolist() == [1, 2]  # customer 3 has no event up to time 10
    assert table.loc[1, "mean_amount"] == 10.0
    assert table.loc[2, "total_amount"] == 2.0  # the event at 12 is after the reference


def test_rfm_input_errors():
    X = pd.DataFrame({"times": [[1.0, 5.0]], "amounts": [[1.0, 2.0]]})
    with pytest.raises(ValueError, match="reference_time"):
        RFMTransformer().fit(X)
    with pytest.raises(TypeError, match="DataFrame"):
        RFMTransformer(reference_time=5.0).fit([[1.0]])
    with pytest.raises(ValueError, match="after their reference"):
        RFMTransformer(reference_time=2.0).fit_transform(X)
    with pytest.raises(ValueError, match="not available"):
        RFMTransformer(reference_time=9.0, features=["decayed_frequency"]).fit(X)
    with pytest.raises(ValueError, match="same length"):
        RFMTransformer(reference_time=9.0).fit_transform(
            pd.DataFrame({"times": [[1.0, 5.0]], "amounts": [[1.0]]}))


def churn_frame(n=400, seed=0):
    """Customers whose churn is driven by recency and frequency (planted)."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for _ in range(n):
        rate = rng.uniform(0.02, 0.5)  # events per day
        times = np.sort(rng.uniform(0, 100, size=max(1, rng.poisson(rate * 100))))
        rows.append((times.tolist(), rng.gamma(2.0, 10.0, size=len(times)).tolist()))
        labels.append(int(rate + rng.normal(0, 0.05) < 0.15))  # rare buyers churn
    X = pd.DataFrame(rows, columns=["times", "amounts"])
    return X, np.asarray(labels)


def test_rfm_transformer_in_pipelines_and_grid_search():
    X, y = churn_frame()
    search = GridSearchCV(
        Pipeline([("rfm", RFMTransformer(reference_time=100.0)), ("scale", StandardScaler()),
                  ("model", LogisticRegression(max_iter=1000))]),
        {"rfm__log": [False, True], "rfm__half_life": [None, 14.0]}, scoring="roc_auc", cv=3,
    )  # fmt: skip
    search.fit(X, y)
    assert search.best_score_ > 0.7
    boosting = make_pipeline(RFMTransformer(reference_time=100.0),
                             HistGradientBoostingClassifier(max_iter=50, random_state=0))
    boosting.fit(X[:300], y[:300])
    assert roc_auc_score(y[300:], boosting.predict_proba(X[300:])[:, 1]) > 0.7
    pandas_out = RFMTransformer(reference_time=100.0).set_output(transform="pandas")
    assert list(pandas_out.fit_transform(X).columns) == list(pandas_out.get_feature_names_out())


# --------------------------------------------------------------------------- BG/NBD
def simulate_bgnbd(r, alpha, a, b, n=4000, seed=0):
    """Customers from the BG/NBD story: Poisson buying, drop-out after each repeat purchase."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        rate, p = rng.gamma(r, 1.0 / alpha), rng.beta(a, b)
        age, times, t = rng.uniform(20, 40), [0.0], 0.0
        while True:
            t += rng.exponential(1.0 / rate)
            if t > age:
                break
            times.append(t)
            if rng.random() < p:
                break
        rows.append((times, age))
    return pd.DataFrame(rows, columns=["times", "reference_time"])


def test_bgnbd_recovers_the_parameters_of_simulated_customers():
    X = simulate_bgnbd(r=0.5, alpha=4.0, a=0.8, b=2.5)
    model = BGNBDChurn(horizon=10.0).fit(X)
    # a and b are weakly identified one by one; their mean, the drop-out probability, is not
    fitted = [model.r_, model.alpha_, model.a_ / (model.a_ + model.b_)]
    np.testing.assert_allclose(fitted, [0.5, 4.0, 0.8 / 3.3], rtol=0.15)
    out = model.transform(X)
    assert out.shape == (len(X), 2) and (out[:, 1] <= 1).all() and (out >= 0).all()
    # no repeat purchase: surely active in this model; many purchases long ago: likely gone
    probe = pd.DataFrame({"times": [[0.0], [0.0, 1.0, 2.0, 3.0, 4.0]],
                          "reference_time": [30.0, 30.0]})  # fmt: skip
    alive = model.predict_alive(probe)
    assert alive[0] == 1.0 and alive[1] < 0.2


@pytest.mark.skipif(not (SHARED_DATASETS / "cdnow").is_dir(),
                    reason=f"CDNOW not found under {SHARED_DATASETS}")  # fmt: skip
def test_bgnbd_reproduces_the_published_cdnow_fit():
    from sklearn_basemodel.datasets import load_cdnow

    purchases = load_cdnow(SHARED_DATASETS)
    calibration = purchases[purchases["date"] <= "1997-09-30"]
    days = calibration.groupby(["customer_id", "date"]).size().reset_index()
    X = days.groupby("customer_id")["date"].agg(list).to_frame("times")
    model = BGNBDChurn(reference_time=pd.Timestamp("1997-09-30"), time_unit="W").fit(X)
    # Fader, Hardie & Lee (2005): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426
    np.testing.assert_allclose([model.r_, model.alpha_, model.a_, model.b_],
                               [0.243, 4.414, 0.793, 2.426], atol=2e-3)  # fmt: skip


def test_ease_on_too_many_items_keeps_the_most_frequent():
    rng = np.random.default_rng(0)
    common = [f"c{i}" for i in range(6)]
    rows = [list(rng.choice(common, size=3, replace=False)) for _ in range(80)]
    rows[0] = rows[0] + ["rare1"]
    rows[1] = rows[1] + ["rare2", "rare1"]
    rows[2] = rows[2] + ["rare3"]
    model = EASERecommender(l2=1.0, max_items=7, too_many_items="most_frequent").fit(rows)
    # rare1 (2 rows) is the 7th most frequent; rare2 and rare3 (1 row each) are left out
    assert sorted(model.items_.tolist()) == sorted(common + ["rare1"])
    assert model.n_items_left_out_ == 2
    full = EASERecommender(l2=1.0).fit(rows)
    assert full.n_items_left_out_ == 0 and len(full.items_) == 9
    # an unknown (left-out) item in an input is ignored, never recommended
    top = model.predict([["c0", "rare2"]], k=7)[0].tolist()
    assert "rare2" not in top and "rare3" not in top
