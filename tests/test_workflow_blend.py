"""A task's blend of the fine-tuned network, the RFM network and gradient boosting: its
weights, its honest validation score, and when the workflow keeps it."""

import pickle
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from sklearn_basemodel.blending import (
    BlendedClassifier,
    blend_weights,
    cross_fitted_blend,
    task_score,
    weight_grid,
)
from sklearn_basemodel.workflow import training
from sklearn_basemodel.workflow.threads import OneThread

WEIGHTS = weight_grid(2)[:, 0]  # the first candidate's weight in a mix of two


def blend_weight(kind, y, network, booster):
    """The network's weight in the best mix of two."""
    return blend_weights(kind, y, {"network": network, "booster": booster})["network"]


def _noisy_pair(n, seed):
    """A label and two predictions that each see it through independent noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (signal + rng.normal(size=n) > 0).astype(int)
    return y, signal + 1.5 * rng.normal(size=n), signal + 1.5 * rng.normal(size=n)


def test_blend_weight_is_the_grid_weight_that_scores_best():
    y, a, b = _noisy_pair(4_000, 0)
    w = blend_weight("binary", y, a, b)
    scores = [roc_auc_score(y, v * a + (1 - v) * b) for v in WEIGHTS]
    assert roc_auc_score(y, w * a + (1 - w) * b) == max(scores)
    # two equally good, independent views: the mean of both beats either alone
    assert 0.3 <= w <= 0.7 and max(scores) > max(roc_auc_score(y, a), roc_auc_score(y, b))


def test_blend_weight_leaves_out_a_candidate_that_is_noise():
    y, a, _ = _noisy_pair(4_000, 1)
    rng = np.random.default_rng(99)  # not _noisy_pair's seed: its first draw is the signal
    assert blend_weight("binary", y, network=a, booster=rng.normal(size=len(y))) >= 0.9
    assert blend_weight("binary", y, network=rng.normal(size=len(y)), booster=a) <= 0.1


def test_blend_weight_of_amounts_minimises_the_absolute_error():
    rng = np.random.default_rng(2)
    amount = rng.gamma(2.0, 20.0, size=3_000)
    high, low = amount + 10.0, amount - 10.0  # biased in opposite directions
    assert blend_weight("amount", amount, high, low) == 0.5
    assert task_score("amount", amount, 0.5 * high + 0.5 * low) == pytest.approx(0.0, abs=1e-9)


def test_rows_of_one_class_cannot_be_scored():
    assert np.isnan(task_score("binary", [1, 1, 1], [0.2, 0.5, 0.9]))
    assert blend_weight("binary", [1, 1, 1], [0.2, 0.5, 0.9], [0.1, 0.1, 0.1]) == 0.5


def test_cross_fitted_blend_predicts_each_half_with_the_other_halfs_weight():
    y, a, b = _noisy_pair(2_000, 4)
    b = b + np.where(np.arange(2_000) < 1_000, 0.0, 2.0 * y)  # b better on the later rows
    groups = np.repeat(np.arange(1_000), 2)  # two rows (cut-offs) per customer
    out = cross_fitted_blend("binary", y, {"a": a, "b": b}, groups, random_state=5)
    # the seeded split of the customers (sorted by name), both rows of one on the same side
    names = np.unique(groups.astype(str))
    first_names = names[np.random.default_rng(5).permutation(1_000)[:500]]
    first = np.isin(groups.astype(str), first_names)
    w_on_first = blend_weight("binary", y[first], a[first], b[first])
    w_on_second = blend_weight("binary", y[~first], a[~first], b[~first])
    np.testing.assert_allclose(out[~first], w_on_first * a[~first] + (1 - w_on_first) * b[~first])
    np.testing.assert_allclose(out[first], w_on_second * a[first] + (1 - w_on_second) * b[first])
    again = cross_fitted_blend("binary", y, {"a": a, "b": b}, groups, random_state=5)
    assert np.array_equal(out, again)
    with pytest.raises(ValueError, match="two groups"):
        cross_fitted_blend("binary", y[:4], {"a": a[:4], "b": b[:4]}, [7, 7, 7, 7])


def test_choosing_the_weight_in_sample_flatters_the_blend_and_cross_fitting_does_not():
    """Two candidates of pure noise: the weight chosen on the rows it is scored on always looks
    better than both; the cross-fitted blend does not, on average over seeds."""
    in_sample, cross = [], []
    for seed in range(30):
        rng = np.random.default_rng(100 + seed)
        y = rng.integers(0, 2, 400)
        a, b = rng.normal(size=400), rng.normal(size=400)
        w = blend_weight("binary", y, a, b)
        best_single = max(roc_auc_score(y, a), roc_auc_score(y, b))
        in_sample.append(roc_auc_score(y, w * a + (1 - w) * b) - best_single)
        blended = cross_fitted_blend("binary", y, {"a": a, "b": b}, np.arange(400), seed)
        cross.append(task_score("binary", y, blended) - best_single)
    assert min(in_sample) >= 0 and np.mean(in_sample) > 0  # flattered by its own rows
    assert np.mean(cross) < 0  # honest: on noise the blend does not beat the better single


class _Threads(ClassifierMixin, BaseEstimator):
    """Records the OpenMP thread limit it is fitted and asked under."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.fit_threads_ = _openmp_threads()
        return self

    def predict_proba(self, X):
        self.predict_threads_ = _openmp_threads()
        return np.full((len(X), 2), 0.5)


def _openmp_threads():
    from threadpoolctl import threadpool_info

    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "openmp"}


def test_one_thread_fits_and_predicts_single_threaded_and_clones():
    if not _openmp_threads() or max(_openmp_threads()) < 2:
        pytest.skip("no OpenMP runtime with more than one thread to limit")
    X, y = np.zeros((20, 1)), np.repeat([0, 1], 10)
    model = OneThread(_Threads()).fit(X, y)
    model.predict_proba(X)
    assert model.estimator_.fit_threads_ == {1} and model.estimator_.predict_threads_ == {1}
    assert max(_openmp_threads()) > 1  # the limit ends with the call
    np.testing.assert_array_equal(model.classes_, [0, 1])
    assert not hasattr(OneThread(LinearRegression()), "predict_proba")
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(again.predict_proba(X), 0.5)
    assert not hasattr(clone(model), "estimator_")


def test_three_candidates_are_weighed_together():
    rng = np.random.default_rng(12)
    signal = rng.normal(size=6_000)
    y = (signal + rng.normal(size=6_000) > 0).astype(int)
    views = {name: signal + 1.5 * rng.normal(size=6_000) for name in ("a", "b", "c")}
    views["noise"] = rng.normal(size=6_000)
    weights = blend_weights("binary", y, views)
    assert set(weights) == set(views) and sum(weights.values()) == pytest.approx(1.0)
    assert weights["noise"] <= 0.1 and min(weights["a"], weights["b"], weights["c"]) >= 0.1
    stacked = np.column_stack(list(views.values()))
    best = max(roc_auc_score(y, stacked @ w) for w in weight_grid(4))
    assert roc_auc_score(y, stacked @ np.array(list(weights.values()))) == best


# --------------------------------------------------------------------------- in the workflow
CANDIDATES = ("network", "rfm_network", "rfm_gradient_boosting")


def _task_rows(n_customers, seed, **noises):
    """Two rows per customer; the column each candidate reads is the signal plus its noise
    (``noises``: candidate name -> noise scale; None: the noise alone)."""
    rng = np.random.default_rng(seed)
    ids = np.repeat([f"c{i}" for i in range(n_customers)], 2)
    signal = rng.normal(size=len(ids))
    rows = pd.DataFrame({
        "entity_id": ids,
        "in_churn_population": True,
        "churn": (signal + 0.5 * rng.normal(size=len(ids)) > 0).astype(float),
    })  # fmt: skip
    for name in CANDIDATES:
        noise_draw = rng.normal(size=len(ids))
        scale = noises.get(name, None)
        rows[f"seen_by_{name}"] = noise_draw if scale is None else signal + scale * noise_draw
    return rows


class _Sigmoid(ClassifierMixin, BaseEstimator):
    """Predicts sigmoid(x) of its one column, whatever it is fitted on: a stand-in that, unlike
    a fitted model, does not shrink a column of noise to a constant."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-np.asarray(X, dtype=np.float64)[:, 0]))
        return np.column_stack([1 - p, p])


def _fit_with(monkeypatch, rows, model=LogisticRegression):
    """``_fit_task`` with stand-ins for the three candidates, each reading its own column."""

    def reads(column):
        return Pipeline([("features", ColumnTransformer([("x", "passthrough", [column])])),
                         ("model", model())])  # fmt: skip

    monkeypatch.setattr(training, "_candidates", lambda *a, **k: [
        (name, reads(f"seen_by_{name}")) for name in CANDIDATES])
    project = SimpleNamespace(model=SimpleNamespace(random_state=0))
    recommender = SimpleNamespace(named_steps={"features": None, "model": None})
    lines = []
    out = training._fit_task("churn", "binary", "churn", project, rows, recommender, False,
                             lines.append)  # fmt: skip
    return out, lines


def test_the_workflow_keeps_the_blend_when_its_cross_fitted_score_is_best(monkeypatch):
    rows = _task_rows(3_000, 7, network=1.0, rfm_gradient_boosting=1.0)  # rfm_network: noise
    (kept, network, chosen), lines = _fit_with(monkeypatch, rows)
    scores = chosen["validation"]
    assert chosen["kept"] == "blend"
    assert scores["blend"] > max(scores[name] for name in CANDIDATES)
    assert isinstance(kept, BlendedClassifier) and kept.candidates_["network"] is network
    assert kept.weights_ == chosen["weights"] and kept.chosen_ == "blend"
    assert 0 < kept.weights_["network"] < 1 and 0 < kept.weights_["rfm_gradient_boosting"] < 1
    # on new customers it ranks better than either informative candidate alone
    test = _task_rows(2_000, 70, network=1.0, rfm_gradient_boosting=1.0)
    for name in ("network", "rfm_gradient_boosting"):
        assert _auc(kept, test) > _auc(kept.candidates_[name], test) + 0.01
    assert "kept blend (network 0." in lines[0]
    # the booster inside the blend was refitted on every customer, not only the 80%
    booster = kept.candidates_["rfm_gradient_boosting"].named_steps["model"]
    whole = LogisticRegression().fit(rows[["seen_by_rfm_gradient_boosting"]],
                                     rows["churn"].astype(int))  # fmt: skip
    np.testing.assert_allclose(booster.coef_, whole.coef_, rtol=1e-6)
    # and Models.predict serves it
    models = training.Models({}, None, tasks={"churn": kept}, chosen={"churn": chosen})
    np.testing.assert_allclose(models.predict(rows)["churn"], kept.predict_proba(rows)[:, 1])


def _auc(model, rows):
    return roc_auc_score(rows["churn"], model.predict_proba(rows)[:, 1])


@pytest.mark.parametrize("informative", CANDIDATES)
def test_candidates_of_noise_are_left_out(monkeypatch, informative):
    """Beside candidates of pure noise (not shrunk to a constant), the informative one is kept
    alone, or in a blend that gives the noise almost no weight: new customers are ranked as
    that candidate alone ranks them."""
    test = _task_rows(2_000, 10, **{informative: 0.3})
    (kept, network, chosen), _ = _fit_with(monkeypatch, _task_rows(3_000, 8, **{informative: 0.3}),
                                           _Sigmoid)  # fmt: skip
    assert chosen["kept"] in (informative, "blend")
    alone = kept.candidates_[informative]
    if chosen["kept"] == "blend":
        assert chosen["weights"][informative] >= 0.9
    assert _auc(kept, test) == pytest.approx(_auc(alone, test), abs=5e-3)
    # a plain mean with the noise would have cost ranking quality: the weights matter
    noise = [n for n in CANDIDATES if n != informative]
    fitted = {informative: alone} | {
        n: _fit_with(monkeypatch, _task_rows(3_000, 8, **{n: 0.3}), _Sigmoid)[0][0]
        for n in noise}  # fmt: skip
    plain = np.mean([m.predict_proba(test)[:, 1] for m in fitted.values()], axis=0)
    assert roc_auc_score(test["churn"], plain) < _auc(kept, test) - 0.02


def test_the_report_names_the_blends_weights():
    from sklearn_basemodel.workflow.training import describe_kept as _kept

    blend = {"kept": "blend", "weights": {"network": 0.4, "rfm_network": 0.0,
                                          "rfm_gradient_boosting": 0.6}}  # fmt: skip
    assert _kept(blend) == "blend (network 0.4, rfm_gradient_boosting 0.6)"
    assert _kept({"kept": "rfm_network", "validation": {}}) == "rfm_network"


def test_the_report_says_when_the_explained_network_is_not_what_scores():
    from sklearn_basemodel.report import _explain_section

    top = [{"table": "orders", "column": "price", "value": "", "attribution": 0.1,
            "mean_abs_attribution": 0.2}]  # fmt: skip
    results = {"explanation": {"task": "churn", "n_rows": 10, "top": top},
               "fit": {"chosen": {"churn": {"kept": "blend", "weights": {"network": 0.1,
                                                                         "rfm_network": 0.9}}}}}
    results["explanation"]["explained"] = "rfm_network"
    text = "\n".join(_explain_section(results))
    assert "come from blend (network 0.1, rfm_network 0.9)" in text
    assert "Attributions of the RFM network" in text and "largest weight" in text
    results["fit"]["chosen"]["churn"] = {"kept": "rfm_network"}
    assert "come from" not in "\n".join(_explain_section(results))
    results["fit"]["chosen"]["churn"] = {"kept": "rfm_gradient_boosting"}
    results["explanation"]["explained"] = "network"
    text = "\n".join(_explain_section(results))
    assert "Attributions of the fine-tuned network" in text and "no gradients" in text


def test_the_report_says_which_start_the_fine_tuned_network_kept():
    from sklearn_basemodel.report import _network_start

    compared = {"network_start": {"pretrained_kept": False,
                                  "valid_losses": {"pretrained": 0.52, "scratch": 0.5}}}
    assert _network_start(compared) == ("from scratch (held-out loss: pretrained 0.5200, "
                                        "scratch 0.5000)")
    alone = {"network_start": {"pretrained_kept": True, "valid_losses": None}}
    assert _network_start(alone) == "pretrained trunk"
    assert _network_start({"kept": "network"}) == ""  # a model saved before it was recorded


def test_explain_attributes_the_kept_network_or_the_heaviest_network_of_the_blend(monkeypatch):
    (kept, network, chosen), _ = _fit_with(monkeypatch, _task_rows(1_000, 3, network=1.0))
    models = training.Models({}, None, tasks={"churn": kept}, networks={"churn": network})

    def explained(record):
        models.chosen["churn"] = record
        return training.explained_candidate(models, "churn")

    for name in ("network", "rfm_network"):
        assert explained({"kept": name}) == (name, kept.candidates_[name])
    # gradient boosting alone has no gradients: the fine-tuned network, kept or not
    assert explained({"kept": "rfm_gradient_boosting"}) == ("network", network)
    blend = {"kept": "blend", "weights": {"network": 0.2, "rfm_network": 0.5,
                                          "rfm_gradient_boosting": 0.3}}  # fmt: skip
    assert explained(blend)[0] == "rfm_network"
    blend["weights"] = {"network": 0.3, "rfm_network": 0.3, "rfm_gradient_boosting": 0.4}
    assert explained(blend)[0] == "network"  # a tie goes to the network on the whole profile
    blend["weights"] = {"network": 0.0, "rfm_network": 0.0, "rfm_gradient_boosting": 1.0}
    assert explained(blend) == ("network", network)
