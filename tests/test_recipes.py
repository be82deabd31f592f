"""The BaseModel recipe (sklearn_basemodel.recipes) on small generated data.

What the real-data benchmarks (Ta-Feng, YooChoose, CDNOW) build from the recipe is checked
here on synthetic stand-ins with a planted answer; one check reads the CDNOW sample when
../shared/datasets is present.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.frozen import FrozenEstimator

from sklearn_basemodel import CleoraEmbedder, EMDESketcher
from sklearn_basemodel.metrics import hit_rate_at_k, recall_at_k
from sklearn_basemodel.recipes import (
    behavioral_profile,
    fine_tune_recommender,
    fine_tuner,
    half_life_of_factor,
    histories_at,
    history_weights,
    pretrainer,
    rfm_network,
    rfm_scaler,
    sequence_examples,
    signed_log1p,
    sketch_dim_for,
    tune_history_boost,
)

torch.set_num_threads(1)
_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn_basemodel.exceptions.UnknownEntityWarning"
)


# --------------------------------------------------------------------------- rows
def test_sequence_examples_prefixes_ages_targets():
    ex = sequence_examples([[[10, 11], [12], [10]], [[5]]], keys=["u1", "u2"])
    assert ex["key"].tolist() == ["u1", "u1", "u1", "u2"]
    assert ex["t"].tolist() == [1, 2, 3, 1]
    assert ex["items"].tolist() == [[10, 11], [10, 11, 12], [10, 11, 12, 10], [5]]
    assert ex["ages"].tolist() == [[0, 0], [1, 1, 0], [2, 2, 1, 0], [0]]
    assert ex["last"].tolist() == [[10, 11], [12], [10], [5]]
    assert ex["target"].tolist() == [[12], [10], None, None]
    assert ex["is_full"].tolist() == [False, False, True, True]
    with pytest.raises(ValueError, match="one key each"):
        sequence_examples([[["a"]]], keys=[1, 2])


def test_history_weights_decay_per_step():
    ex = sequence_examples([[[10, 11], [12], [10]]])
    full = ex[ex["is_full"]]
    # 0.5 per basket of age: item 10 is in the newest basket (1) and the oldest (0.25)
    half = history_weights(full["items"], full["ages"], half_life_of_factor(0.5))[0]
    assert half == pytest.approx({10: 1.25, 11: 0.25, 12: 0.5})
    assert history_weights(full["items"], full["ages"], None) == [{10: 2.0, 11: 1.0, 12: 1.0}]
    factor = history_weights([["a", "a"]], [[3, 1]], half_life_of_factor(0.9))[0]["a"]
    assert factor == pytest.approx(0.9**3 + 0.9)
    assert half_life_of_factor(1.0) is None
    with pytest.raises(ValueError, match="decay factor"):
        half_life_of_factor(1.5)


def test_histories_at_splits_past_and_horizon():
    events = pd.DataFrame({
        "customer_id": [1, 2, 1, 1, 2, 3, 1],
        "product_id": ["b", "x", "a", "c", "y", "z", "d"],
        "category_id": ["B", "X", "A", "C", "Y", "Z", "D"],
        "event_time": pd.to_datetime(["2024-01-20", "2024-01-05", "2024-01-01", "2024-02-10",
                                      "2024-03-20", "2024-02-01", "2024-01-31 12:00"],
                                     format="ISO8601"),
    })  # fmt: skip
    rows = histories_at(events, "2024-01-31 12:00", horizon_days=30,
                        items={"products": "product_id", "categories": "category_id"})
    assert rows.index.tolist() == [1, 2]  # customer 3 has no event up to the split
    assert rows.loc[1, "products"] == ["a", "b", "d"]  # time order, the split itself included
    assert rows.loc[1, "categories"] == ["A", "B", "D"]
    assert rows.loc[1, "products_ages"] == [30.5, 11.5, 0.0]
    assert rows.loc[1, "future"] == ["c"]  # 2024-02-10 is inside (split, split + 30 days]
    assert rows.loc[2, "future"] == []  # 2024-03-20 is beyond the horizon
    assert (rows["split"] == pd.Timestamp("2024-01-31 12:00")).all()
    plain = histories_at(events, "2024-01-31 12:00", target="product_id")
    assert plain.loc[1, "items"] == ["a", "b", "d"] and plain.loc[1, "future"] == ["c"]


# --------------------------------------------------------------------------- the profile
def _chain_sessions(n_sessions=300, n_items=24, seed=0):
    """Sessions that walk a fixed successor chain: item i is always followed by item i + 1."""
    rng = np.random.default_rng(seed)
    sessions = []
    for _ in range(n_sessions):
        start, length = int(rng.integers(n_items)), int(rng.integers(2, 7))
        sessions.append([f"i{(start + j) % n_items}" for j in range(length)])
    return sessions


def _click_examples(sessions):
    return sequence_examples([[[click] for click in session] for session in sessions])


@pytest.fixture(scope="module")
def vectors():
    return CleoraEmbedder(n_components=16, random_state=0).fit(_chain_sessions())


def test_profile_blocks_seeds_and_widths(vectors):
    ex = _click_examples(_chain_sessions(40))
    ex["recency"] = np.arange(len(ex), dtype=float) - 3.0
    profile = behavioral_profile(
        vectors, n_sketches=4, sketch_dim=8, ages="ages", half_life=2.0, last="last",
        id_dim=8, id_random_state=7, rfm=["recency"], random_state=3,
    )  # fmt: skip
    names = [name for name, _, _ in profile.transformers]
    assert names == ["history", "last_basket", "history_ids", "rfm"]
    blocks = {name: est for name, est, _ in profile.transformers}
    assert blocks["history"].half_life == 2.0 and blocks["history"].time_input == "age"
    assert blocks["last_basket"].half_life is None
    seeds = [blocks[n].random_state for n in ("history", "last_basket", "history_ids")]
    assert seeds == [3, 4, 5]
    assert blocks["history_ids"].embedder.random_state == 7
    assert blocks["history_ids"].handle_unknown == "ignore"
    X = profile.fit_transform(ex)
    assert X.shape == (len(ex), 3 * 4 * 8 + 1)
    # the rfm block is the standardised signed log of the column
    expected = signed_log1p(ex[["recency"]])
    expected = (expected - expected.mean()) / expected.std()
    np.testing.assert_allclose(_dense(X)[:, -1], expected.ravel(), rtol=1e-6)


@pytest.mark.parametrize(
    "n_entities, width",
    [(0, 64), (500, 64), (3_200, 64), (3_201, 128), (6_400, 128), (6_401, 256), (10**7, 256)],
)
def test_sketch_width_grows_with_the_number_of_entities(n_entities, width):
    assert sketch_dim_for(n_entities) == width


def test_profile_sizes_auto_sketches_from_the_item_vectors():
    from sklearn_basemodel import RandomVectorEmbedder

    for n_items, width in ((100, 64), (5_000, 128), (7_000, 256)):
        ids = RandomVectorEmbedder(4, random_state=0).fit([[f"i{i}"] for i in range(n_items)])
        profile = behavioral_profile(ids, n_sketches=2, last="last")
        widths = {name: est.sketch_dim for name, est, _ in profile.transformers}
        assert widths == {"history": width, "last_basket": width}
    assert {est.sketch_dim for _, est, _ in behavioral_profile(ids, sketch_dim=32).transformers} == {32}
    with pytest.raises(ValueError, match='sketch_dim="auto"'):
        behavioral_profile(RandomVectorEmbedder(4))  # unfitted: nothing to size from
    with pytest.raises(TypeError):
        sketch_dim_for(12.5)
    with pytest.raises(ValueError):
        sketch_dim_for(-1)


def test_profile_reuses_a_fitted_sketcher_frozen(vectors):
    sessions = _chain_sessions(40)
    sketcher = EMDESketcher(FrozenEstimator(vectors), n_sketches=4, sketch_dim=8,
                            random_state=0).fit(sessions)  # fmt: skip
    codes = np.asarray(sketcher.codes_).copy()
    profile = behavioral_profile(sketcher, items="history", name="products",
                                 rfm=["n"]).fit(pd.DataFrame({"history": sessions,
                                                              "n": np.arange(40)}))  # fmt: skip
    assert [n for n, _, _ in profile.transformers] == ["products", "rfm"]
    fitted = profile.named_transformers_["products"]
    assert isinstance(fitted, FrozenEstimator) and fitted.estimator is sketcher
    np.testing.assert_array_equal(np.asarray(sketcher.codes_), codes)
    out = profile.transform(pd.DataFrame({"history": sessions, "n": np.arange(40)}))
    np.testing.assert_allclose(_dense(out)[:, :32], _dense(sketcher.transform(sessions)))


def _dense(X):
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


def test_rfm_scaler_keeps_signs():
    X = np.array([[-3.0], [0.0], [3.0]])
    out = rfm_scaler().fit_transform(X)
    assert out[0, 0] < out[1, 0] < out[2, 0]
    assert out[1, 0] == pytest.approx(0.0)  # symmetric: the middle is the mean


def _recency_rows(n, seed):
    """Churn that is not monotone in recency: the lapsed middle churns, the newest and the
    long-quiet (who come back seasonally) do not; frequency and a noise column do nothing."""
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({"recency": rng.uniform(0, 90, n), "frequency": rng.poisson(4, n),
                         "noise": rng.normal(size=n)})  # fmt: skip
    lapsed = rows["recency"].between(30, 60)
    churned = (rng.random(n) < np.where(lapsed, 0.8, 0.2)).astype(int)
    return rows, churned


def test_rfm_network_reads_only_its_columns_and_learns_what_a_line_cannot():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from sklearn_basemodel import SketchClassifier, SketchRegressor

    rows, churned = _recency_rows(3_000, 0)
    test, test_churned = _recency_rows(2_000, 1)
    model = rfm_network(["recency", "frequency"], max_epochs=30, random_state=0)
    network = model.named_steps["model"]
    assert isinstance(network, SketchClassifier)
    assert (network.hidden_units, network.n_blocks) == (64, 0)
    model.fit(rows, churned)
    auc = roc_auc_score(test_churned, model.predict_proba(test)[:, 1])
    columns = ["recency", "frequency"]
    scaler = rfm_scaler().fit(rows[columns])
    line = LogisticRegression().fit(scaler.transform(rows[columns]), churned)
    line_auc = roc_auc_score(test_churned, line.predict_proba(scaler.transform(test[columns]))[:, 1])
    assert auc > 0.75 and auc > line_auc + 0.15
    # columns it was not given do not move its scores
    moved = test.assign(noise=test["noise"] * 100 + 7)
    np.testing.assert_array_equal(model.predict_proba(moved), model.predict_proba(test))
    # parameters given replace the recipe's; regression gives a regressor
    wide = rfm_network(["recency"], regression=True, hidden_units=8, n_blocks=1)
    assert isinstance(wide.named_steps["model"], SketchRegressor)
    assert (wide.named_steps["model"].hidden_units, wide.named_steps["model"].n_blocks) == (8, 1)


# --------------------------------------------------------------------------- pretraining
def _session_model(vectors, sessions, **params):
    ex = _click_examples(sessions)
    whole, pairs = ex[ex["is_full"]], ex[~ex["is_full"]]
    profile = behavioral_profile(
        vectors, n_sketches=8, sketch_dim=16, ages="ages", half_life=1.0, last="last",
        id_dim=16, handle_unknown="ignore", random_state=0,
    ).fit(whole.assign(last=whole["items"]))  # fmt: skip
    recommender = pretrainer(
        profile.named_transformers_["last_basket"], k=5, hidden_units=64, n_blocks=1,
        dropout=0.0, lr=5e-3, max_epochs=3, batch_size=64, random_state=0, **params,
    ).fit(profile.transform(pairs), pairs["target"].tolist())  # fmt: skip
    return profile, recommender


def test_pretrainer_learns_the_successor_and_boosts_the_history(vectors):
    profile, recommender = _session_model(vectors, _chain_sessions())
    assert isinstance(recommender.target_sketcher, FrozenEstimator)  # fitted: shared codes
    test = _click_examples(_chain_sessions(60, seed=1))
    test = test[~test["is_full"]]
    X, truth = profile.transform(test), test["target"].tolist()
    # top 1: the successor of the last click (an off-by-one target would rank the click itself)
    recommender.set_params(history_mode="ignore")
    assert hit_rate_at_k(truth, recommender.predict(X, k=1), k=1) > 0.9
    # the history boost lifts the row's own clicks: with full weight the last click leads
    recommender.set_params(history_mode="boost", history_weight=1.0)
    row = _click_examples([["i3", "i7", "i8"]]).iloc[[1]]
    history = history_weights(row["items"], row["ages"], 0.5)
    assert recommender.predict(profile.transform(row), history=history, k=1)[0, 0] == "i7"


def test_pretrainer_fits_an_unfitted_target_sketcher(vectors):
    target = EMDESketcher(FrozenEstimator(vectors), n_sketches=4, sketch_dim=8, random_state=0)
    recommender = pretrainer(target, history_blend="log", history_weight=0.3)
    assert recommender.target_sketcher is target
    assert recommender.get_params()["history_mode"] == "boost"
    assert (recommender.history_blend, recommender.history_weight) == ("log", 0.3)


def _staples(n_users=90, n_items=30, seed=0):
    """Every user re-buys a few staples plus random items (a Ta-Feng-shaped stand-in)."""
    rng = np.random.default_rng(seed)
    histories, futures = [], []
    for _ in range(n_users):
        staples = rng.choice(n_items, size=3, replace=False)
        baskets = []
        for _ in range(int(rng.integers(3, 7))):
            basket = {int(i) for i in staples if rng.random() < 0.6}
            baskets.append(sorted(basket | {int(i) for i in rng.choice(n_items, size=2)}))
        histories.append(baskets[:-1])
        futures.append(baskets[-1])
    return histories, futures


def test_fine_tune_and_history_boost_tuning_on_repeat_buyers():
    histories, futures = _staples()
    ex = sequence_examples(histories)
    full, pairs = ex[ex["is_full"]].reset_index(drop=True), ex[~ex["is_full"]]
    vectors = CleoraEmbedder(n_components=16, random_state=0).fit(
        [b for h in histories for b in h]
    )
    profile = behavioral_profile(vectors, n_sketches=4, sketch_dim=16, ages="ages",
                                 half_life=2.0, last="last", id_dim=8).fit(full)  # fmt: skip
    target = EMDESketcher(FrozenEstimator(vectors), n_sketches=4, sketch_dim=16,
                          normalize="l1", random_state=4)  # fmt: skip
    base = pretrainer(target, k=10, history_blend="log", hidden_units=16, max_epochs=2,
                      batch_size=32, random_state=0)  # fmt: skip
    base.fit(profile.transform(pairs), pairs["target"].tolist())
    before = {k: v.clone() for k, v in base.module_.state_dict().items()}
    train, val = full.iloc[:60], full.iloc[60:]
    tuned = fine_tune_recommender(base, profile.transform(train), futures[:60],
                                  max_epochs=2, lr=1e-3)  # fmt: skip
    assert len(tuned.history_) == len(base.history_) + 2
    for key, value in base.module_.state_dict().items():  # the pretrained model is untouched
        assert torch.equal(value, before[key]), key
    histories_by_decay = {
        decay: history_weights(val["items"], val["ages"], half_life_of_factor(decay))
        for decay in (0.5, 1.0)
    }
    weight, decay, grid = tune_history_boost(
        tuned, profile.transform(val), futures[60:], histories_by_decay, (0.0, 0.6), k=10
    )
    assert [g[:3] for g in grid] == [(d, b, w) for d in (0.5, 1.0) for b in ("linear", "log")
                                     for w in (0.0, 0.6)]  # fmt: skip
    best = max(grid, key=lambda g: tuple(g[3:]))
    assert (decay, tuned.history_blend, weight) == best[:3] and tuned.history_weight == weight
    # the staples are re-bought: the history boost beats the model alone
    assert weight == 0.6
    top = tuned.predict(profile.transform(val), history=histories_by_decay[decay])
    assert recall_at_k(futures[60:], top, k=10) > 0.3


def test_tune_history_boost_scores_every_setting_as_predict_would_in_one_network_pass(
        monkeypatch):  # fmt: skip
    from sklearn_basemodel import RandomVectorEmbedder, SketchRecommender
    from sklearn_basemodel import recipes
    from sklearn_basemodel.metrics import ndcg_at_k

    rng = np.random.default_rng(5)
    items = [f"i{j}" for j in range(30)]
    own = [list(rng.choice(items, 5, replace=False)) for _ in range(120)]
    nxt = [row[:2] + [items[int(rng.integers(30))]] for row in own]
    weighted = [{key: float(w) for key, w in zip(row, rng.random(5) + 0.1)} for row in own]
    X = rng.normal(size=(120, 6)).astype(np.float32)
    target = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=3, sketch_dim=8,
                          random_state=0).fit([items])  # fmt: skip
    rec = pretrainer(target, k=5, hidden_units=16, max_epochs=2, random_state=0).fit(X, nxt)
    histories, weights = {"plain": own, "weighted": weighted}, (0.0, 0.3, 0.9)
    expected = []  # one predict per setting, as a user would compare them
    for label, rows in histories.items():
        for blend in ("linear", "log"):
            for weight in weights:
                rec.set_params(history_mode="boost", history_weight=weight, history_blend=blend)
                top = rec.predict(X, history=rows, k=5)
                expected.append((label, blend, weight, recall_at_k(nxt, top, k=5),
                                 ndcg_at_k(nxt, top, k=5)))  # fmt: skip
    calls = []
    network = SketchRecommender._iter_network_output
    monkeypatch.setattr(SketchRecommender, "_iter_network_output",
                        lambda self, X: calls.append(X.shape[0]) or network(self, X))  # fmt: skip
    monkeypatch.setattr(recipes, "BLOCK_CELLS", 50 * len(items))  # blocks of 50 rows
    weight, label, grid = tune_history_boost(rec, X, nxt, histories, weights, k=5)
    assert calls == [50, 50, 20]  # the network runs once per block, not once per setting
    assert [g[:3] for g in grid] == [e[:3] for e in expected]
    np.testing.assert_allclose([g[3:] for g in grid], [e[3:] for e in expected], atol=1e-12)
    best = max(expected, key=lambda e: e[3:])
    assert (label, rec.history_blend, weight) == best[:3] and rec.history_weight == weight


def test_apply_history_equals_predicting_with_the_history():
    from sklearn_basemodel import RandomVectorEmbedder, SketchRecommender

    rng = np.random.default_rng(6)
    items = [f"i{j}" for j in range(20)]
    own = [list(rng.choice(items, 4, replace=False)) for _ in range(40)]
    X = rng.normal(size=(40, 5)).astype(np.float32)
    target = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=2, sketch_dim=8,
                          random_state=0).fit([items])  # fmt: skip
    rec = SketchRecommender(target, hidden_units=8, max_epochs=1, random_state=0).fit(X, own)
    plain = rec.predict_scores(X)
    for mode, blend in [("boost", "linear"), ("boost", "log"), ("exclude", "linear")]:
        rec.set_params(history_mode=mode, history_blend=blend, history_weight=0.4)
        np.testing.assert_allclose(rec.apply_history(plain, own),
                                   rec.predict_scores(X, history=own), rtol=1e-5, atol=1e-5)
    assert np.isneginf(rec.apply_history(plain, own)[0, rec.entities_.tolist().index(own[0][0])])
    with pytest.raises(ValueError, match="one column per entity"):
        rec.apply_history(plain[:, :3], own)


# --------------------------------------------------------------------------- fine-tuning
def _shifted_recommender(early_stopping, max_epochs=3, lr=1e-3):
    """A recommender pretrained on rows whose next items follow one rule, and rows where the
    rule changed (each input points to the next group's items)."""
    from sklearn_basemodel import RandomVectorEmbedder, SketchRecommender

    rng = np.random.default_rng(0)
    items = [f"i{j}" for j in range(40)]
    target = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=4, sketch_dim=8,
                          random_state=0).fit([items])  # fmt: skip

    def rows(n, shift):
        groups = rng.integers(0, 4, n)
        X = np.eye(4, dtype=np.float32)[groups] + 0.1 * rng.random((n, 4), dtype=np.float32)
        y = [list(rng.choice(items[10 * ((g + shift) % 4):10 * ((g + shift) % 4) + 10], 3))
             for g in groups]  # fmt: skip
        return X, y

    base = SketchRecommender(target_sketcher=target, hidden_units=16, n_blocks=1,
                             max_epochs=max_epochs, lr=lr, early_stopping=early_stopping,
                             random_state=0)  # fmt: skip
    return base.fit(*rows(400, 0)), rows(300, 1), rows


def test_fine_tuning_learning_rate_walks_down_while_the_held_out_loss_falls():
    base, (X, y), _ = _shifted_recommender(early_stopping=True)
    tuned = fine_tune_recommender(base, X, y, max_epochs=3)
    losses = tuned.fine_tuning_losses_
    rates = [rate for rate in losses if rate]  # 0.0: the pretrained network unchanged
    # the walk: the recommender's own rate, then 0.3, 0.1, 0.03 times it, in that order
    assert rates == [base.lr * f for f in (1.0, 0.3, 0.1, 0.03)][: len(rates)]
    values = [losses[r] for r in rates]
    # each step down was taken because the one before it helped; it stops at the first that
    # does not (or after the last rate)
    assert all(b < a for a, b in zip(values[:-2], values[1:-1]))
    if len(rates) < 4:
        assert values[-1] >= min(values[:-1])
    # the copy kept is the one with the lowest held-out loss, and says which rate it used
    assert tuned.lr == tuned.fine_tuning_lr_ == min(losses, key=losses.get)
    assert losses[0.0] > losses[tuned.lr]  # the rule changed: fine-tuning helps
    # the figure is that of the network the copy holds, on the held-out rows
    assert losses[tuned.lr] == tuned.held_out_loss(X, y)
    assert base.lr == 1e-3 and len(base.history_) == 3  # the pretrained model is untouched
    # the same call, the same choice
    again = fine_tune_recommender(base, X, y, max_epochs=3)
    assert again.fine_tuning_losses_ == losses


class _LastRowsValidate:
    """A skorch ``train_split`` holding out the rows at ``valid``."""

    def __init__(self, valid):
        self.valid = np.asarray(valid)

    def __call__(self, dataset, y=None, **fit_params):
        train = np.setdiff1d(np.arange(len(dataset)), self.valid)
        return dataset.subset(train), dataset.subset(self.valid)


def test_fine_tuning_that_does_not_help_returns_the_pretrained_network():
    """Rows whose training part is noise and whose held-out part follows the pretrained rule:
    every fine-tuned copy validates worse than the network as it was, which is returned."""
    base, _, rows = _shifted_recommender(early_stopping=True, max_epochs=40, lr=1e-2)  # trained
    X_rule, y_rule = rows(60, 0)
    X_noise, _ = rows(240, 0)
    rng = np.random.default_rng(1)
    y_noise = [[f"i{j}" for j in rng.choice(40, 3, replace=False)] for _ in range(240)]
    X, y = np.vstack([X_noise, X_rule]), y_noise + y_rule
    base.set_params(train_split=_LastRowsValidate(np.arange(240, 300)))
    before = {k: v.clone() for k, v in base.module_.state_dict().items()}
    tuned = fine_tune_recommender(base, X, y, max_epochs=3)
    losses = tuned.fine_tuning_losses_
    assert tuned.fine_tuning_lr_ == 0.0 and losses[0.0] < min(v for r, v in losses.items() if r)
    # the held-out loss of the pretrained network, on the same rows
    assert losses[0.0] == base.held_out_loss(X, y)
    # an unchanged copy: same weights, no added epoch, and the pretrained model untouched
    assert tuned is not base and len(tuned.history_) == len(base.history_)
    for name, value in tuned.module_.state_dict().items():
        assert torch.equal(value, before[name]) and torch.equal(base.module_.state_dict()[name],
                                                                 before[name])  # fmt: skip


def test_fine_tuning_without_held_out_rows_keeps_the_recommender_rate():
    base, (X, y), _ = _shifted_recommender(early_stopping=False)
    tuned = fine_tune_recommender(base, X, y, max_epochs=2)
    assert tuned.lr == tuned.fine_tuning_lr_ == base.lr
    assert not hasattr(tuned, "fine_tuning_losses_")
    assert len(tuned.history_) == len(base.history_) + 2
    fixed = fine_tune_recommender(base, X, y, max_epochs=1, lr=0.01)
    assert fixed.lr == 0.01 and len(fixed.history_) == len(base.history_) + 1


def test_fine_tuner_starts_from_the_pretrained_trunk(vectors):
    sessions = _chain_sessions()
    profile, recommender = _session_model(vectors, sessions)
    ex = _click_examples(sessions)
    pairs = ex[~ex["is_full"]].reset_index(drop=True)
    # a label the pretrained trunk knows: the next click lies in the first half of the chain
    label = np.array([int(t[0][1:]) < 12 for t in pairs["target"]], dtype=int)
    before = {k: v.detach().clone() for k, v in recommender.module_.named_parameters()}
    pipeline = fine_tuner(profile, recommender, freeze_epochs=1, max_epochs=3, lr=1e-2,
                          batch_size=64, random_state=0).fit(pairs, label)  # fmt: skip
    assert [name for name, _ in pipeline.steps] == ["features", "model"]
    assert isinstance(pipeline.named_steps["features"], FrozenEstimator)
    model = pipeline.named_steps["model"]
    assert isinstance(model.pretrained, FrozenEstimator)
    assert model.pretrained.estimator is recommender
    # fine-tuning trains a copy of the trunk: the pretrained recommender is unchanged
    after = dict(recommender.module_.named_parameters())
    assert all(torch.equal(after[key].detach(), value) for key, value in before.items())
    assert (pipeline.predict(pairs) == label).mean() > 0.8
    scratch = fine_tuner(profile, max_epochs=1, batch_size=64, random_state=0)
    assert scratch.named_steps["model"].pretrained is None


# --------------------------------------------------------------------------- real data
@pytest.mark.skipif(not (_DATA / "cdnow").is_dir(), reason="../shared/datasets absent")
def test_decayed_purchase_days_rank_cdnow_customers():
    from sklearn.metrics import roc_auc_score

    from sklearn_basemodel.datasets import load_cdnow

    purchases = load_cdnow(_DATA)
    cutoff, end = pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30")
    days = purchases[purchases["date"] <= cutoff].drop_duplicates(["customer_id", "date"])
    days = days.assign(age=(cutoff - days["date"]).dt.days)
    by = days.groupby("customer_id")
    items = [["buy"] * len(g) for _, g in by]
    mass = [sum(row.values()) for row in history_weights(items, by["age"].agg(list), 60.0)]
    later = purchases[(purchases["date"] > cutoff) & (purchases["date"] <= end)]
    label = pd.Index(list(by.groups)).isin(later["customer_id"])
    assert len(label) == 2357 and label.mean() == pytest.approx(0.290, abs=0.001)
    # one unfitted feature, the decayed count of purchase days, already rivals Pareto/NBD
    assert roc_auc_score(label, mass) > 0.77


def test_history_block_sketches_another_item_column_on_its_own_vectors():
    from sklearn.frozen import FrozenEstimator

    from sklearn_basemodel import CleoraEmbedder, EMDESketcher
    from sklearn_basemodel.recipes import behavioral_profile, history_block, sketch_dim_for

    rng = np.random.default_rng(3)
    rows = pd.DataFrame({
        "products": [[f"p{j}" for j in rng.choice(50, 4)] for _ in range(120)],
        "categories": [[f"c{j}" for j in rng.choice(6, 4)] for _ in range(120)],
        "ages": [list(rng.uniform(0, 60, 4)) for _ in range(120)],
    })  # fmt: skip
    products = CleoraEmbedder(n_components=8, random_state=0).fit(rows["products"])
    categories = CleoraEmbedder(n_components=8, random_state=0).fit(rows["categories"])
    name, sketcher, columns = history_block("categories", categories, "categories",
                                            ages="ages", half_life=30.0, random_state=5)  # fmt: skip
    assert (name, columns) == ("categories", ["categories", "ages"])
    assert sketcher.sketch_dim == sketch_dim_for(6) and sketcher.half_life == 30.0
    expected = EMDESketcher(FrozenEstimator(categories), n_sketches=16,
                            sketch_dim=sketch_dim_for(6), half_life=30.0, time_input="age",
                            handle_unknown="ignore", random_state=5)  # fmt: skip
    profile = behavioral_profile(products, items="products", n_sketches=4,
                                 blocks=[(name, sketcher, columns)])  # fmt: skip
    out = profile.fit_transform(rows)
    block = profile.output_indices_["categories"]
    want = expected.fit_transform(rows[["categories", "ages"]])
    np.testing.assert_allclose(_dense(out[:, block]), _dense(want), rtol=1e-6)
    # the decay reaches the block: the same items, their ages in the other order, give other
    # (normalised) sketches; the same shift of every age would not
    swapped = rows.assign(ages=[ages[::-1] for ages in rows["ages"]])
    assert not np.allclose(_dense(profile.transform(swapped)[:, block]), _dense(want))
    plain = history_block("categories", categories, "categories", sketch_dim=8)
    assert plain[2] == "categories" and plain[1].sketch_dim == 8 and plain[1].half_life is None


def _dense(X):
    import scipy.sparse as sp

    return X.toarray() if sp.issparse(X) else np.asarray(X)
