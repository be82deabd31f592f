"""Bad inputs and bad settings of the sketch estimators: clear errors, never NaN (issue 12).

Each test reproduces a defect of the first build: a regressor that predicted ``inf`` for large
targets, NaN probabilities after a diverged fit, ``batch_size=1`` failing inside BatchNorm,
``AttributeError`` instead of ``NotFittedError``, and ``k=-1`` returning nonsense.
"""

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.nn import (
    SketchClassifier,
    SketchRecommender,
    SketchRegressor,
    explain,
)

TINY = {"hidden_units": 16, "n_blocks": 1, "batch_size": 16, "lr": 1e-2, "random_state": 0}
ITEMS = [f"i{i}" for i in range(12)]


def _regression(n=96, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    return X, 2.0 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=n)


def _baskets(n, seed):
    """Histories and next baskets of two kinds of customers (even vs odd items)."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    pick = lambda k, size: rng.choice(ITEMS[k::2], size=size, replace=False).tolist()
    return [pick(k, 3) for k in kind], [pick(k, 2) for k in kind]


@pytest.fixture(scope="module")
def basket_data():
    sketcher = EMDESketcher(
        RandomVectorEmbedder(8, random_state=0), n_sketches=4, sketch_dim=8, random_state=0
    ).fit([[i] for i in ITEMS])
    history, future = _baskets(80, seed=0)
    return FrozenEstimator(sketcher), sketcher.transform(history), history, future


# --------------------------------------------------------------------------- target scale
@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e150])
def test_regressor_learns_targets_of_any_scale(scale):
    X, y = _regression()
    reg = SketchRegressor(max_epochs=30, **TINY).fit(X, y * scale)
    predicted = reg.predict(X)
    assert np.isfinite(predicted).all()
    # compared in units of ``scale``: the squares of 1e200 overflow inside r2_score itself
    assert r2_score(y, predicted / scale) > 0.8


def test_regressor_with_one_epoch_on_huge_targets_predicts_finite_values():
    X, y = _regression()
    predicted = SketchRegressor(max_epochs=1, **TINY).fit(X, y * 1e200).predict(X)
    assert np.isfinite(predicted).all()
    assert np.abs(predicted).max() < 1e202  # within the range of the targets, not inf
    extremes = np.where(y > 0, 1.7e308, -1.7e308)  # near the float64 limit, of both signs
    assert np.isfinite(SketchRegressor(max_epochs=1, **TINY).fit(X, extremes).predict(X)).all()


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_unstandardised_targets_beyond_float32_are_refused():
    X, y = _regression()
    with pytest.raises(ValueError, match="does not fit in float32"):
        SketchRegressor(standardize_target=False, max_epochs=1, **TINY).fit(X, y * 1e200)


# --------------------------------------------------------------------------- divergence
def test_a_diverging_fit_stops_with_a_clear_error_and_finite_weights():
    X, y = _regression()
    clf = SketchClassifier(max_epochs=5, **{**TINY, "lr": 1e6})
    with pytest.raises(FloatingPointError, match=r"diverged.*Lower lr \(now 1e\+06\)"):
        clf.fit(X, y > 0)
    # the network was put back to its last finite state: predictions are finite, not NaN
    assert all(torch.isfinite(p).all() for p in clf.module_.state_dict().values())
    assert np.isfinite(clf.predict_proba(X)).all()
    # and a warm start with a sensible learning rate trains on from there
    clf.set_params(lr=1e-2, warm_start=True, max_epochs=3).fit(X, y > 0)
    assert np.isfinite(clf.predict_proba(X)).all()


def test_a_non_finite_loss_is_caught_in_the_batch_it_happens():
    X, y = _regression()
    reg = SketchRegressor(max_epochs=3, **{**TINY, "lr": 1e6})
    message = "loss became (inf|nan) in epoch 1.*before this fit"
    with pytest.raises(FloatingPointError, match=message):
        reg.fit(X, y)
    assert np.isfinite(reg.predict(X)).all()


def test_the_divergence_guard_is_what_stops_training_and_can_be_dropped():
    X, y = _regression()
    params = dict(max_epochs=5, callbacks__finite_loss=None, **{**TINY, "lr": 1e6})
    clf = SketchClassifier(**params).fit(X, y > 0)  # no error without the guard ...
    weights = clf.module_.state_dict().values()
    assert not all(torch.isfinite(p).all() for p in weights)  # ... and a diverged network


# --------------------------------------------------------------------------- non-finite input
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_non_finite_x_is_refused_before_training(bad):
    X, y = _regression()
    X = X.astype(np.float64)
    X[3, 2] = bad  # 1e300 is finite in float64 but infinite as float32
    for estimator, target in ((SketchClassifier(**TINY), y > 0), (SketchRegressor(**TINY), y)):
        with pytest.raises(ValueError, match="NaN|infinity"):
            estimator.fit(X, target)
        with pytest.raises(ValueError, match="NaN|infinity"):
            estimator.fit(sp.csr_matrix(X), target)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_y_is_refused_before_training(bad):
    X, y = _regression()
    y = y.copy()
    y[5] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        SketchRegressor(**TINY).fit(X, y)
    with pytest.raises(ValueError, match="NaN|infinity"):
        SketchClassifier(**TINY).fit(X, np.where(np.isfinite(y), (y > 0).astype(float), bad))


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_non_finite_weights_of_recommender_targets_and_history_are_refused(basket_data):
    sketcher, X, history, future = basket_data
    weighted = [{key: 1.0 for key in row} for row in future]
    rec = SketchRecommender(sketcher, max_epochs=1, **TINY)
    for bad in (np.nan, 1e300):  # 1e300 is finite, but not as a float32 target sketch
        weighted[0] = {future[0][0]: bad}
        with pytest.raises(ValueError, match="not finite|non-finite"):
            rec.fit(X, weighted)
    rec.fit(X, future)
    bad_history = [{key: 1.0 for key in row} for row in history]
    bad_history[1] = {history[1][0]: np.inf}
    with pytest.raises(ValueError, match="non-finite"):
        rec.predict(X, history=bad_history)


# --------------------------------------------------------------------------- batch sizes
def test_batch_size_one_is_refused_with_the_reason():
    X, y = _regression()
    for estimator in (SketchClassifier, SketchRegressor):
        with pytest.raises(ValueError, match="batch_size.*BatchNorm"):
            target = y > 0 if estimator is SketchClassifier else y
            estimator(**{**TINY, "batch_size": 1}).fit(X, target)


def test_a_training_batch_of_one_row_is_refused_however_it_arises():
    X, y = _regression()
    with pytest.raises(ValueError, match="Training batches of 1 row"):
        SketchClassifier(iterator_train__batch_size=1, max_epochs=1, **TINY).fit(X, y > 0)
    clf = SketchClassifier(max_epochs=1, **TINY).fit(X, y > 0)
    with pytest.raises(ValueError, match="Training batches of 1 row"):
        clf.partial_fit(X[:1], (y > 0)[:1])


@pytest.mark.parametrize("batch_size", [2, 3, 4])
def test_no_row_count_leaves_a_last_training_batch_of_one(batch_size):
    X, y = _regression(n=40)
    for n in range(4, 14):  # every remainder of n (and of the 90% training split) modulo the batch
        for fraction in (None, 0.1):
            reg = SketchRegressor(
                max_epochs=1, validation_fraction=fraction, **{**TINY, "batch_size": batch_size}
            ).fit(X[:n], y[:n])
            sizes = reg.history[-1, "batches", :, "train_batch_size"]
            n_train = n if fraction is None else n - math.ceil(fraction * n)
            assert min(sizes) >= 2 and sum(sizes) == n_train


# --------------------------------------------------------------------------- call order, k
_PUBLIC_METHODS = {
    SketchClassifier: ["predict", "predict_proba", "predict_log_proba", "decision_function",
                       "embed", "explain", "score"],
    SketchRegressor: ["predict", "embed", "explain", "score"],
    SketchRecommender: ["predict", "predict_scores", "predict_sketch", "embed", "explain",
                        "score"],
}  # fmt: skip


@pytest.mark.parametrize(
    "estimator, method",
    [(estimator, method) for estimator, methods in _PUBLIC_METHODS.items() for method in methods],
)
def test_every_public_method_of_an_unfitted_estimator_raises_not_fitted(estimator, method):
    X, _ = _regression(n=8)
    args = (X, [["i0"]] * len(X)) if method == "score" else (X,)
    with pytest.raises(NotFittedError):
        getattr(estimator(), method)(*args)


@pytest.mark.parametrize("k", [-1, 0, True, 1.5, "3", None])
def test_predict_refuses_a_k_that_is_not_a_positive_integer(basket_data, k):
    sketcher, X, _, future = basket_data
    rec = SketchRecommender(sketcher, max_epochs=1, **TINY).fit(X, future)
    if k is None:  # the default: the k parameter
        assert rec.predict(X[:3]).shape == (3, min(rec.k, len(ITEMS)))
        assert rec.predict(X[:3], k=np.int64(2)).shape == (3, 2)
        return
    with pytest.raises(ValueError, match="k must be a positive integer"):
        rec.predict(X[:3], k=k)
    # as a parameter: refused in fit (scikit-learn's constraint, or the same check for True)
    with pytest.raises(ValueError, match="k must be a positive integer|'k' parameter"):
        SketchRecommender(sketcher, k=k, max_epochs=1, **TINY).fit(X, future)


def test_explaining_an_unfitted_or_one_step_pipeline():
    X, y = _regression(n=32)
    with pytest.raises(NotFittedError):
        explain(make_pipeline(SketchRegressor(**TINY)), X)
    with pytest.raises(NotFittedError):
        explain(make_pipeline(StandardScaler(), SketchRegressor(**TINY)), X)
    one_step = make_pipeline(SketchRegressor(max_epochs=1, **TINY)).fit(X, y)
    result = explain(one_step, X[:4], method="gradient_x_input")
    expected = one_step[-1].explain(X[:4], method="gradient_x_input").attributions
    np.testing.assert_allclose(result.attributions, expected)
