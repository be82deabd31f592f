"""SketchRecommender, decoding with the history, ranking scorers in a pipeline, fine-tuning."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
import torch
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import log_loss
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import Pipeline

from sklearn_basemodel import RandomVectorEmbedder
from sklearn_basemodel import EMDESketcher
from sklearn_basemodel.exceptions import UnknownEntityWarning
from sklearn_basemodel.metrics import recall_at_k, recall_at_k_scorer
from sklearn_basemodel.nn import SketchClassifier, SketchRecommender

# Tiny networks on a shared 2-core machine: one intra-op thread is faster than contention.

N_TASTES, PER_TASTE = 4, 10
ITEMS = np.array([f"t{t}_i{i}" for t in range(N_TASTES) for i in range(PER_TASTE)])
NET = dict(hidden_units=32, n_blocks=1, batch_size=32, lr=1e-2, random_state=0)


def _shop(n_customers, seed, repeat=0.0):
    """Customers with one of four tastes; history and next basket drawn from the taste's items.

    With ``repeat`` > 0 each item of the next basket is, with that probability, re-bought from
    the customer's own history (the repeat-purchase signal of grocery data).
    """
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, N_TASTES, n_customers)
    history, future = [], []
    for t in taste:
        own = ITEMS[t * PER_TASTE : (t + 1) * PER_TASTE]
        past = rng.choice(own, size=4, replace=False).tolist()
        nxt = [
            str(rng.choice(past)) if rng.random() < repeat else str(rng.choice(own))
            for _ in range(3)
        ]
        history.append(past)
        future.append(sorted(set(nxt)))
    return history, future, taste


def _sketcher(**kwargs):
    params = dict(n_sketches=4, sketch_dim=16, random_state=0, **kwargs)
    return EMDESketcher(RandomVectorEmbedder(8, random_state=0), **params)


@pytest.fixture(scope="module")
def shop():
    history, future, taste = _shop(400, seed=0)
    sketcher = _sketcher().fit([[str(i)] for i in ITEMS])
    X = sketcher.transform(history)
    rec = SketchRecommender(FrozenEstimator(sketcher), k=5, max_epochs=8, **NET)
    rec.fit(X[:300], future[:300])
    return dict(history=history, future=future, taste=taste, X=X, sketcher=sketcher, rec=rec)


def test_recommender_learns_which_items_go_together(shop):
    rec, X, taste = shop["rec"], shop["X"], shop["taste"]
    predicted = rec.predict(X[300:])
    assert predicted.shape == (100, 5)
    assert all(len(set(row)) == 5 for row in predicted)  # no repeats within a row
    own_taste = np.mean([
        np.mean([int(item[1]) == t for item in row]) for row, t in zip(predicted, taste[300:])
    ])
    assert own_taste > 0.9  # at random it would be 0.25
    recall = rec.score(X[300:], shop["future"][300:])
    assert recall == pytest.approx(recall_at_k(shop["future"][300:], predicted, k=5))
    assert recall > 0.4  # 5 guesses among the 40 items at random: 0.125


def test_target_sketches_are_distributions_per_partitioning(shop):
    rec = shop["rec"]
    with pytest.warns(UnknownEntityWarning):
        T = rec._encode_target([["t0_i0", "t0_i1"], {"t1_i0": 3.0, "t1_i1": 1.0}, [], ["unknown"]])
    blocks = T.toarray().reshape(4, rec.n_sketches_, rec.sketch_dim_)
    np.testing.assert_allclose(blocks[:2].sum(axis=2), 1.0, rtol=1e-6)
    assert blocks[2:].sum() == 0  # empty and all-unknown rows give no target
    codes = shop["sketcher"].codes_[shop["sketcher"].vocabulary_.get_indexer(["t1_i0", "t1_i1"])]
    for j in range(rec.n_sketches_):
        if codes[0, j] != codes[1, j]:
            assert blocks[1, j, codes[0, j]] == pytest.approx(0.75)


def test_predict_scores_are_log_probabilities_consistent_with_predict(shop):
    rec, X = shop["rec"], shop["X"][300:320]
    scores = rec.predict_scores(X)
    assert scores.shape == (20, len(ITEMS)) and scores.dtype == np.float32
    np.testing.assert_allclose(logsumexp(scores, axis=1), 0.0, atol=1e-4)
    best = rec.entities_[np.argsort(-scores, axis=1, kind="stable")[:, :5]]
    np.testing.assert_array_equal(rec.predict(X), best)
    assert rec.predict(X, k=2).shape == (20, 2)
    sketch = rec.predict_sketch(X)
    np.testing.assert_allclose(sketch.reshape(20, rec.n_sketches_, -1).sum(axis=2), 1.0, rtol=1e-5)
    assert not hasattr(rec, "predict_proba")  # a recommender has no class probabilities


@pytest.mark.parametrize("popularity_correction", [False, True])
def test_decoding_uses_the_sketchers_read_out(shop, popularity_correction):
    rec = clone(shop["rec"]).set_params(popularity_correction=popularity_correction,
                                        validation_fraction=0.2)  # fmt: skip
    rec.fit(shop["X"][:300], shop["future"][:300])
    assert rec.item_prior_ is not None  # validated: whatever its strength, it is decoded with
    X = shop["X"][300:310]
    raw = rec.target_sketcher_.score_entities(
        np.log(rec.predict_sketch(X)), popularity_correction=popularity_correction
    )
    expected = raw / rec.n_sketches_ + rec.item_prior_strength_ * rec.item_prior_
    expected -= logsumexp(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(rec.predict_scores(X), expected, atol=1e-4)


def _twins(n_rows, seed):
    """Rows whose next item is one of two twins (identical vectors, so identical codes in
    every partitioning), ``often`` four times as frequent as ``rare``, or another item."""
    rng = np.random.default_rng(seed)
    others = [f"o{i}" for i in range(20)]
    history = [[str(rng.choice(others))] for _ in range(n_rows)]
    draw = rng.random(n_rows)
    future = [
        ["often"] if d < 0.4 else ["rare"] if d < 0.5 else [str(rng.choice(others))]
        for d in draw
    ]
    vectors = RandomVectorEmbedder(8, random_state=0).fit([others + ["often"]])
    keys, V = vectors.entity_vectors()
    table = dict(zip(keys, V))
    # the twin shares every bucket; it comes first, so it wins their ties
    table = {**{key: table[key] for key in others}, "rare": table["often"],
             "often": table["often"]}  # fmt: skip

    class Twins(RandomVectorEmbedder):
        def entity_vectors(self, column=None):
            names = np.asarray(list(table), dtype=object)
            return names, np.stack([table[n] for n in names]).astype(np.float32)

    sketcher = EMDESketcher(Twins(8, random_state=0).fit([others]), n_sketches=4,
                            sketch_dim=16, random_state=0)  # fmt: skip
    sketcher.fit([list(table)])
    return sketcher, sketcher.transform(history), future


def test_calibrated_item_prior_separates_items_that_share_every_bucket():
    sketcher, X, future = _twins(600, seed=0)
    params = dict(k=1, max_epochs=5, validation_fraction=0.2, **NET)
    plain = SketchRecommender(FrozenEstimator(sketcher), item_prior="none", **params)
    plain.fit(X, future)
    assert plain.item_prior_ is None
    column = {key: i for i, key in enumerate(plain.entities_)}
    scores = plain.predict_scores(X[:50])
    # without the prior the sketch cannot tell the twins apart
    np.testing.assert_allclose(scores[:, column["often"]], scores[:, column["rare"]], atol=1e-5)

    rec = SketchRecommender(FrozenEstimator(sketcher), **params).fit(X, future)
    assert rec.item_prior == "calibrated" and rec.item_prior_.shape == (len(rec.entities_),)
    # chosen on the held-out rows: "often" first hits 40% of them, "rare" (the tie) 10%
    assert rec.item_prior_strength_ > 0
    assert rec.item_prior_scores_[rec.item_prior_strength_] > rec.item_prior_scores_[0.0]
    assert (rec.predict(X[:50])[:, 0] == "often").all()
    # the prior restores the twins' ratio: log 4, up to the shrinkage and the held-out rows
    prior_gap = rec.item_prior_[column["often"]] - rec.item_prior_[column["rare"]]
    assert np.log(2.5) < prior_gap < np.log(5)
    scores = rec.predict_scores(X[:50])
    gap = scores[:, column["often"]] - scores[:, column["rare"]]
    np.testing.assert_allclose(gap, rec.item_prior_strength_ * prior_gap, rtol=1e-4)
    # at full strength the decoded distribution, averaged over the rows, is the targets'
    rec.item_prior_strength_ = 1.0
    share = pd.Series([row[0] for row in future]).value_counts(normalize=True)
    share = share.reindex(rec.entities_, fill_value=0.0).to_numpy()
    mean_with = np.exp(rec.predict_scores(X)).mean(axis=0)
    mean_without = np.exp(plain.predict_scores(X)).mean(axis=0)
    assert np.abs(mean_with - share).sum() < 0.5 * np.abs(mean_without - share).sum()


def test_item_prior_needs_held_out_rows_to_be_applied():
    sketcher, X, future = _twins(300, seed=2)
    rec = SketchRecommender(FrozenEstimator(sketcher), max_epochs=2, **NET).fit(X, future)
    assert rec.item_prior_ is None and rec.item_prior_scores_ is None
    assert rec.item_prior_strength_ == 0.0  # nothing to validate it on: the sketch as decoded
    plain = SketchRecommender(FrozenEstimator(sketcher), max_epochs=2, item_prior="none", **NET)
    np.testing.assert_allclose(rec.predict_scores(X[:20]),
                               plain.fit(X, future).predict_scores(X[:20]), atol=1e-6)  # fmt: skip


def test_item_prior_is_not_applied_when_no_held_out_row_has_a_target():
    sketcher, X, future = _twins(200, seed=3)
    rec = SketchRecommender(FrozenEstimator(sketcher), max_epochs=1, validation_fraction=0.2,
                            **NET).fit(X, future)  # fmt: skip
    future = [[] if i % 2 else row for i, row in enumerate(future)]
    rec._held_out_rows_ = np.arange(1, 200, 2)  # the rows left without a target
    rec._fit_item_prior(X, future)
    assert rec.item_prior_ is not None  # learned on the other rows, but not validated
    assert rec.item_prior_strength_ == 0.0 and rec.item_prior_scores_ is None


def test_partial_fit_relearns_the_item_prior_on_its_own_rows():
    sketcher, X, future = _twins(600, seed=1)
    rec = SketchRecommender(FrozenEstimator(sketcher), max_epochs=3, validation_fraction=0.2,
                            **NET).fit(X, future)  # fmt: skip
    column = {key: i for i, key in enumerate(rec.entities_)}
    swapped = [["rare"] if row == ["often"] else ["often"] if row == ["rare"] else row
               for row in future]  # fmt: skip
    before = rec.item_prior_.copy()
    rec.set_params(max_epochs=1).partial_fit(X, swapped)
    gap = rec.item_prior_[column["often"]] - rec.item_prior_[column["rare"]]
    assert before[column["often"]] > before[column["rare"]] and gap < -np.log(2.5)


def test_history_exclude_boost_ignore(shop):
    rec, X, history = shop["rec"], shop["X"][300:340], shop["history"][300:340]
    plain = rec.predict(X)
    ignored = clone(rec).set_params(history_mode="ignore")
    ignored.__dict__.update({k: v for k, v in rec.__dict__.items() if k.endswith("_")})
    np.testing.assert_array_equal(ignored.predict(X, history=history), plain)

    rec.set_params(history_mode="exclude")
    excluded = rec.predict(X, history=history)
    assert not any(set(row) & set(past) for row, past in zip(excluded, history))

    rec.set_params(history_mode="boost", history_weight=1.0)
    weighted = [{past[0]: 3.0, past[1]: 1.0} for past in history]
    boosted = rec.predict(X, history=weighted)
    assert [list(row[:2]) for row in boosted] == [list(w) for w in weighted]

    rec.set_params(history_weight=0.0)
    np.testing.assert_array_equal(rec.predict(X, history=history), plain)
    rec.set_params(history_mode="boost", history_weight=0.5)
    with pytest.raises(ValueError, match="history has 3 rows"):
        rec.predict(X, history=history[:3])


def test_boosting_the_history_recovers_repeat_purchases():
    history, future, _ = _shop(300, seed=1, repeat=0.8)
    sketcher = _sketcher().fit([[str(i)] for i in ITEMS])
    X = sketcher.transform(history)
    rec = SketchRecommender(FrozenEstimator(sketcher), k=3, max_epochs=6, **NET)
    rec.fit(X[:200], future[:200])
    base = rec.set_params(history_mode="ignore").score(X[200:], future[200:], history=history[200:])
    boosted = rec.set_params(history_mode="boost").score(X[200:], future[200:], history=history[200:])
    assert boosted > base + 0.1


def test_target_sketcher_is_cloned_and_fitted_unless_frozen(shop):
    sketcher = _sketcher()
    rec = SketchRecommender(sketcher, max_epochs=1, **NET).fit(shop["X"][:64], shop["future"][:64])
    assert rec.target_sketcher_ is not sketcher and not hasattr(sketcher, "codes_")
    assert set(rec.entities_) == set().union(*shop["future"][:64])
    with pytest.raises(ValueError, match="No target row"), pytest.warns(UnknownEntityWarning):
        SketchRecommender(FrozenEstimator(shop["sketcher"]), **NET).fit(
            shop["X"][:4], [["nope"]] * 4
        )


def test_same_seed_same_recommendations(shop):
    X, future = shop["X"][:200], shop["future"][:200]
    a = SketchRecommender(FrozenEstimator(shop["sketcher"]), max_epochs=2, dropout=0.2, **NET)
    b = clone(a)
    np.testing.assert_array_equal(
        a.fit(X, future).predict_scores(X[:20]), b.fit(X, future).predict_scores(X[:20])
    )


def test_pipeline_grid_search_with_a_ranking_scorer():
    history, future, _ = _shop(240, seed=2)
    frame = pd.DataFrame({"products": history})
    pipe = Pipeline([
        ("sketches", ColumnTransformer([("products", _sketcher(), "products")])),
        ("recommender", SketchRecommender(k=5, max_epochs=6, **NET)),
    ])
    search = GridSearchCV(
        pipe,
        {"recommender__module__hidden_units": [4, 32]},
        scoring=recall_at_k_scorer(k=5),
        cv=KFold(2),
    ).fit(frame, future)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"recommender__module__hidden_units": 32}
    assert scores.max() > 0.3 and scores.max() > scores.min()
    assert search.best_estimator_[-1].module_.hidden_units == 32
    # without metadata routing, Pipeline.predict hands history= to the recommender
    best = search.best_estimator_.set_params(recommender__history_mode="exclude")
    excluded = best.predict(frame.head(20), history=history[:20])
    assert not any(set(row) & set(past) for row, past in zip(excluded, history[:20]))


def test_history_reaches_predict_through_a_pipeline_and_metadata_routing():
    history, future, _ = _shop(160, seed=3, repeat=1.0)
    frame = pd.DataFrame({"products": history})
    with sklearn.config_context(enable_metadata_routing=True):
        every_item = FrozenEstimator(_sketcher().fit([[str(i)] for i in ITEMS]))
        rec = SketchRecommender(
            every_item, k=4, history_mode="boost", history_weight=1.0, max_epochs=1, **NET
        )
        pipe = Pipeline([
            ("sketches", ColumnTransformer([("products", _sketcher(), "products")])),
            ("recommender", rec.set_predict_request(history=True)),
        ])
        search = GridSearchCV(
            pipe,
            {"recommender__k": [4]},
            scoring=recall_at_k_scorer(k=4).set_score_request(history=True),
            cv=KFold(2),
        ).fit(frame, future, history=history)
    # every future item is one of the 4 past items, which the history alone ranks first
    assert search.best_score_ == pytest.approx(1.0)


# --------------------------------------------------------------------------- fine-tuning
def _trunk_parameters(module):
    return {name: p.detach().clone() for name, p in module.trunk.named_parameters()}


def test_classifier_takes_over_the_pretrained_trunk(shop):
    rec, X = shop["rec"], shop["X"]
    churn = (shop["taste"] < 2).astype(int)
    # the takeover itself, without the from-scratch fallback that may replace the network
    common = dict(pretrained=rec, pretrained_fallback=False, **NET)
    frozen = SketchClassifier(freeze_epochs=3, max_epochs=3, **common).fit(X, churn)
    source = _trunk_parameters(rec.module_)
    for name, weight in _trunk_parameters(frozen.module_).items():
        assert torch.equal(weight, source[name]), name
    assert frozen.module_.hidden_units == rec.module_.hidden_units
    assert frozen.module_.heads[0].out_features == 1

    tuned = SketchClassifier(freeze_epochs=1, max_epochs=3, **common).fit(X, churn)
    changed = _trunk_parameters(tuned.module_)
    assert not all(torch.equal(changed[name], source[name]) for name in source)
    assert all(p.requires_grad for p in tuned.module_.parameters())  # unfrozen after epoch 1


def test_pretrained_survives_clone_when_frozen_and_explains_otherwise(shop):
    rec, X = shop["rec"], shop["X"]
    churn = (shop["taste"] < 2).astype(int)
    clf = SketchClassifier(
        pretrained=FrozenEstimator(rec), freeze_epochs=1, max_epochs=1, pretrained_fallback=False,
        **NET,
    )
    clf = clone(clf)
    clf.fit(X, churn)
    source = _trunk_parameters(rec.module_)
    assert all(torch.equal(w, source[n]) for n, w in _trunk_parameters(clf.module_).items())
    with pytest.raises(ValueError, match="FrozenEstimator"):
        clone(SketchClassifier(pretrained=rec, **NET)).fit(X, churn)
    with pytest.raises(ValueError, match="contradicts the pretrained trunk"):
        SketchClassifier(pretrained=rec, module__hidden_units=8, **NET).fit(X, churn)
    with pytest.raises(ValueError, match="takes 64 input features but X has 10"):
        SketchClassifier(pretrained=rec, **NET).fit(np.ones((20, 10)), np.arange(20) % 2)


def test_warm_start_from_the_recommender_is_not_worse_than_random_init():
    # Self-supervised pretraining on many customers, a propensity label for only a few. With 12
    # labelled rows one draw of the hashed vectors is noisy: compare the mean over three.
    history, future, taste = _shop(700, seed=4)
    label = np.isin(taste, [0, 3]).astype(int)  # a propensity that depends on the taste
    labelled, test = slice(500, 512), slice(530, 700)
    common = dict(max_epochs=10, **{**NET, "batch_size": 8, "lr": 3e-3})
    losses, accuracies = [], []
    for seed in range(3):
        sketcher = EMDESketcher(RandomVectorEmbedder(8, random_state=seed), n_sketches=4,
                                sketch_dim=16, random_state=seed).fit([[str(i)] for i in ITEMS])
        X = sketcher.transform(history)
        rec = SketchRecommender(FrozenEstimator(sketcher), max_epochs=6, **NET).fit(
            X[:500], future[:500])
        # the trunk takeover itself (without the from-scratch fallback, which picks by 1 row)
        warm = SketchClassifier(pretrained=rec, freeze_epochs=5, pretrained_fallback=False,
                                **common).fit(X[labelled], label[labelled])
        cold = SketchClassifier(**common).fit(X[labelled], label[labelled])
        losses.append([log_loss(label[test], m.predict_proba(X[test])) for m in (warm, cold)])
        accuracies.append([m.score(X[test], label[test]) for m in (warm, cold)])
    (warm_loss, cold_loss), (warm_acc, cold_acc) = np.mean(losses, 0), np.mean(accuracies, 0)
    assert warm_loss <= cold_loss - 0.05  # here about 0.44 against 0.57
    assert warm_acc >= cold_acc - 0.02


def test_explain_a_recommendation_by_integrated_gradients(shop):
    rec, X = shop["rec"], shop["X"][300:304]
    result = rec.explain(X, target="t0_i0", n_steps=64)
    dense = X.toarray()
    with torch.no_grad():
        module = rec.module_.eval()
        targets = torch.full((4,), int(rec.target_sketcher_.vocabulary_.get_loc("t0_i0")))
        at_x = rec._explained_value(module(torch.tensor(dense)), targets)
        at_zero = rec._explained_value(module(torch.zeros_like(torch.tensor(dense))), targets)
    np.testing.assert_allclose(
        result.attributions.sum(axis=1), (at_x - at_zero).numpy(), rtol=0.02, atol=0.02
    )
    assert (result.attributions[dense == 0] == 0).all()
    top = rec.explain(X).blocks  # default target: each row's top recommendation
    assert list(top.columns) == ["row", "block", "attribution"] and len(top) == 4
    with pytest.raises(ValueError, match="entity key known"):
        rec.explain(X, target="not-an-item")


def test_sparse_input_is_never_densified_whole(shop, monkeypatch):
    rec, X = shop["rec"], sp.csr_matrix(shop["X"][:300])
    calls = []
    original = sp.csr_matrix.toarray

    def spy(self, *args, **kwargs):
        calls.append(self.shape[0])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(sp.csr_matrix, "toarray", spy)
    clone(rec).set_params(max_epochs=1, batch_size=50).fit(X, shop["future"][:300])
    rec.set_params(batch_size=50)
    rec.predict_sketch(X)
    rec.set_params(batch_size=32)
    assert calls and max(calls) <= 50


def test_validation_rows_are_the_rows_the_network_did_not_train_on(shop):
    X, future = shop["X"][:300].toarray(), shop["future"][:300]
    params = dict(max_epochs=2, validation_fraction=0.2, item_prior="none", **NET)
    rec = SketchRecommender(FrozenEstimator(shop["rec"].target_sketcher_), **params)
    held = rec.fit(X, future).validation_rows_
    assert len(held) == 60 and len(np.unique(held)) == 60
    # rows that would poison training (features of 1e30: a loss near 1e29) at exactly those
    # positions leave the training loss as it was: the network never saw them
    poisoned = X.copy()
    poisoned[held] = 1e30
    again = clone(rec).fit(poisoned, future)
    np.testing.assert_array_equal(again.validation_rows_, held)
    np.testing.assert_allclose(again.history[:, "train_loss"], rec.history[:, "train_loss"],
                               rtol=1e-5)  # fmt: skip
    assert (np.asarray(again.history[:, "valid_loss"]) > 1e20).all()
    # without a hold-out there is none
    whole = clone(rec).set_params(validation_fraction=None, early_stopping=False).fit(X, future)
    assert whole.validation_rows_ is None
