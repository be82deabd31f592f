"""Library options added for the real-data benchmarks: SketchRecommender(history_blend="log")."""

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, logsumexp
from sklearn.frozen import FrozenEstimator

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder, SketchRecommender

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def fitted():
    history = [["milk", "bread"], ["beer", "chips"]] * 20
    future = [["butter"], ["nuts"]] * 20
    sketcher = EMDESketcher(
        RandomVectorEmbedder(8, random_state=0), n_sketches=4, sketch_dim=16, random_state=0
    ).fit(history + future)
    X = sketcher.transform(history)
    rec = SketchRecommender(
        target_sketcher=FrozenEstimator(sketcher), k=3, hidden_units=32, n_blocks=1,
        max_epochs=10, batch_size=8, lr=1e-2, random_state=0,
    ).fit(X, future)  # fmt: skip
    return rec, X


def test_log_blend_is_the_log_linear_formula(fitted):
    rec, X = fitted
    history = [{"milk": 3.0, "bread": 0.5}, {}]
    model = rec.set_params(history_mode="ignore").predict_scores(X[:2]).astype(np.float64)
    H = np.zeros_like(model)
    position = {key: i for i, key in enumerate(rec.entities_)}
    for key, weight in history[0].items():
        H[0, position[key]] = weight
    rec.set_params(history_mode="boost", history_blend="log", history_weight=0.3)
    got = rec.predict_scores(X[:2], history=history)
    expected = log_softmax(0.7 * model + 0.3 * np.log1p(H), axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logsumexp(got, axis=1), 0.0, atol=1e-5)  # log-probabilities
    # an empty history keeps the model's ranking (its distribution tempered by 1 - weight)
    assert (np.argsort(got[1]) == np.argsort(model[1])).all()


def test_log_blend_uses_raw_weights_and_ranks_by_product(fitted):
    rec, X = fitted
    rec.set_params(history_mode="boost", history_blend="log", history_weight=0.5)
    # weight 0.5: the ranking is that of p_model * (1 + h); raw weights matter (not normalised)
    light = rec.predict_scores(X[:1], history=[{"milk": 0.1}])
    heavy = rec.predict_scores(X[:1], history=[{"milk": 100.0}])
    milk = list(rec.entities_).index("milk")
    assert heavy[0, milk] > light[0, milk]
    model = rec.set_params(history_mode="ignore").predict_scores(X[:1])[0].astype(np.float64)
    p = np.exp(model)
    p[milk] *= 101.0
    rec.set_params(history_mode="boost")
    assert rec.predict(X[:1], history=[{"milk": 100.0}], k=1)[0, 0] == rec.entities_[p.argmax()]
    # the linear blend normalises each row's weights, so their scale does not matter
    rec.set_params(history_blend="linear")
    np.testing.assert_allclose(
        rec.predict_scores(X[:1], history=[{"milk": 0.1}]),
        rec.predict_scores(X[:1], history=[{"milk": 100.0}]),
        rtol=1e-6,
    )


def test_log_blend_keeps_model_ranking_among_new_items(fitted):
    rec, X = fitted
    rec.set_params(history_mode="ignore")
    model = rec.predict_scores(X[:1])[0]
    rec.set_params(history_mode="boost", history_blend="log", history_weight=0.6)
    boosted = rec.predict_scores(X[:1], history=[["milk"]])[0]
    others = [i for i, key in enumerate(rec.entities_) if key != "milk"]
    assert (np.argsort(model[others]) == np.argsort(boosted[others])).all()


def test_history_blend_default_and_validation(fitted):
    rec, X = fitted
    assert SketchRecommender().get_params()["history_blend"] == "linear"
    bad = SketchRecommender(history_blend="product", max_epochs=1, hidden_units=4)
    with pytest.raises(ValueError, match="history_blend"):
        bad.fit(X, [["butter"], ["nuts"]] * 20)
