"""BlendedClassifier / BlendedRegressor: candidates and their weighted mean, kept on held-out
rows, as scikit-learn estimators."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_basemodel.blending import BlendedClassifier, BlendedRegressor


def _views(n, seed, noises):
    """A label and one column per candidate: the signal plus that candidate's noise."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=n)
    y = (signal + 0.5 * rng.normal(size=n) > 0).astype(int)
    X = pd.DataFrame({name: signal + scale * rng.normal(size=n) for name, scale in noises.items()})
    return X, y


def _reads(column):
    return Pipeline([("x", ColumnTransformer([("x", "passthrough", [column])])),
                     ("model", LogisticRegression())])  # fmt: skip


CANDIDATES = [("a", _reads("a")), ("b", _reads("b"))]


def test_two_independent_views_are_blended_and_the_blend_ranks_new_rows_better():
    X, y = _views(4_000, 0, {"a": 1.0, "b": 1.0})
    test, test_y = _views(4_000, 1, {"a": 1.0, "b": 1.0})
    model = BlendedClassifier(CANDIDATES, random_state=0).fit(X, y)
    assert model.chosen_ == "blend"
    assert set(model.validation_scores_) == {"a", "b", "blend"}
    assert 0 < model.weights_["a"] < 1 and model.weights_["a"] + model.weights_["b"] == 1
    auc = roc_auc_score(test_y, model.predict_proba(test)[:, 1])
    for name in ("a", "b"):
        assert auc > roc_auc_score(test_y, model.candidates_[name].predict_proba(test)[:, 1]) + 0.01
    # the weighted mean of the refitted candidates, and a class above one half
    expected = sum(w * model.candidates_[n].predict_proba(test)[:, 1]
                   for n, w in model.weights_.items())  # fmt: skip
    np.testing.assert_allclose(model.predict_proba(test)[:, 1], expected)
    np.testing.assert_array_equal(model.predict(test), (expected > 0.5).astype(int))


def test_a_useless_candidate_is_left_out():
    X, y = _views(3_000, 2, {"a": 0.3, "b": 30.0})
    model = BlendedClassifier(CANDIDATES, random_state=0).fit(X, y)
    assert model.chosen_ in ("a", "blend") and model.weights_["a"] >= 0.9
    if model.chosen_ == "a":
        assert model.weights_ == {"a": 1.0, "b": 0.0}
        # the prediction is the kept candidate's alone, though both stay inspectable
        np.testing.assert_allclose(model.predict_proba(X)[:, 1],
                                   model.candidates_["a"].predict_proba(X)[:, 1])  # fmt: skip
        assert sorted(model.candidates_) == ["a", "b"]


def test_refit_uses_every_row_and_refit_false_keeps_the_training_part():
    X, y = _views(2_000, 3, {"a": 1.0, "b": 1.0})
    refitted = BlendedClassifier(CANDIDATES, random_state=0).fit(X, y)
    kept = BlendedClassifier(CANDIDATES, refit=False, random_state=0).fit(X, y)
    whole = LogisticRegression().fit(X[["a"]], y)
    np.testing.assert_allclose(refitted.candidates_["a"][-1].coef_, whole.coef_, rtol=1e-6)
    assert not np.allclose(kept.candidates_["a"][-1].coef_, whole.coef_, rtol=1e-6)
    assert kept.validation_scores_ == refitted.validation_scores_  # the same choice


def test_refit_list_refits_only_the_kept_candidates_it_names():
    X, y = _views(2_000, 3, {"a": 1.0, "b": 1.0})
    model = BlendedClassifier(CANDIDATES, refit=["b"], random_state=0).fit(X, y)
    assert model.chosen_ == "blend" and min(model.weights_.values()) > 0
    only_b = LogisticRegression().fit(X[["b"]], y)
    np.testing.assert_allclose(model.candidates_["b"][-1].coef_, only_b.coef_, rtol=1e-6)
    whole_a = LogisticRegression().fit(X[["a"]], y)
    assert not np.allclose(model.candidates_["a"][-1].coef_, whole_a.coef_, rtol=1e-6)
    # a candidate left out of the blend is not refitted, even when named
    X_u, y_u = _views(3_000, 2, {"a": 0.3, "b": 30.0})
    useless = BlendedClassifier(CANDIDATES, refit=["b"], random_state=0).fit(X_u, y_u)
    assert useless.weights_["b"] == 0
    whole_b = LogisticRegression().fit(X_u[["b"]], y_u)
    assert not np.allclose(useless.candidates_["b"][-1].coef_, whole_b.coef_, rtol=1e-6)
    with pytest.raises(ValueError, match="refit names"):
        BlendedClassifier(CANDIDATES, refit=["c"]).fit(X, y)


class _Remember(LogisticRegression):
    """Remembers the index labels of the rows it was fitted on."""

    def fit(self, X, y):
        self.rows_ = set(X.index)
        return super().fit(X, y)


def test_groups_stay_on_one_side_and_random_state_reproduces():
    X, y = _views(2_000, 4, {"a": 1.0})
    groups = np.repeat(np.arange(1_000), 2)  # rows 2g and 2g + 1 are one customer's
    model = BlendedClassifier([("a", _Remember())], refit=False, random_state=5)
    model.fit(X, y, groups=groups)
    trained = model.candidates_["a"].rows_
    assert all((row ^ 1) in trained for row in trained)  # a group's two rows stay together
    assert len(trained) == 2 * (1_000 - 200)  # a fifth of the groups held out
    again = BlendedClassifier([("a", _Remember())], refit=False, random_state=5)
    assert again.fit(X, y, groups=groups).candidates_["a"].rows_ == trained
    other = BlendedClassifier([("a", _Remember())], refit=False, random_state=6)
    assert other.fit(X, y, groups=groups).candidates_["a"].rows_ != trained


def test_pipeline_clone_and_cross_validation():
    X, y = _views(1_500, 6, {"a": 1.0, "b": 1.0})
    model = BlendedClassifier(CANDIDATES, random_state=0)
    assert clone(model).get_params()["random_state"] == 0
    scores = cross_val_score(model, X, y, cv=3, scoring="roc_auc")
    assert scores.min() > 0.75


def test_labels_keep_their_names():
    X, y = _views(1_500, 7, {"a": 1.0, "b": 1.0})
    names = np.where(y == 1, "stays", "churns")
    model = BlendedClassifier(CANDIDATES, random_state=0).fit(X, names)
    assert model.classes_.tolist() == ["churns", "stays"]
    assert set(model.predict(X)) <= {"churns", "stays"}
    auc = roc_auc_score(names == "stays", model.predict_proba(X)[:, 1])
    assert auc > 0.8


@pytest.mark.parametrize("candidates, message", [
    ([], "non-empty list"),
    ([("a", LogisticRegression()), ("a", LogisticRegression())], "unique"),
    ([("blend", LogisticRegression())], "another name"),
    ([LogisticRegression()], "non-empty list of \\(name, estimator\\) pairs"),
    ([(f"c{i}", LogisticRegression()) for i in range(7)], "at most 6 candidates"),
])  # fmt: skip
def test_bad_candidates_are_named(candidates, message):
    X, y = _views(200, 8, {"a": 1.0})
    with pytest.raises(ValueError, match=message):
        BlendedClassifier(candidates).fit(X, y)


def test_bad_targets_and_too_few_rows_are_named():
    X, y = _views(200, 9, {"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="Only binary classification is supported: y has 3 clas"):
        BlendedClassifier(CANDIDATES).fit(X, np.arange(200) % 3)
    with pytest.raises(ValueError, match="X has 200 rows but y has 10"):
        BlendedClassifier(CANDIDATES).fit(X, y[:10])
    with pytest.raises(ValueError, match="cannot be split"):
        BlendedClassifier(CANDIDATES).fit(X.iloc[:4], y[:4])
    with pytest.raises(ValueError, match="groups has 3 entries"):
        BlendedClassifier(CANDIDATES).fit(X, y, groups=[1, 2, 3])


def test_regressor_minimises_the_absolute_error():
    rng = np.random.default_rng(10)
    X = pd.DataFrame({"x": rng.normal(size=2_000)})
    amount = 3 * X["x"].to_numpy() + 10 + rng.normal(size=2_000)
    model = BlendedRegressor([("mean", DummyRegressor()), ("line", LinearRegression())],
                             random_state=0).fit(X, amount)  # fmt: skip
    assert model.weights_["line"] >= 0.9
    assert model.validation_scores_["line"] > model.validation_scores_["mean"] + 1
    np.testing.assert_allclose(model.predict(X), sum(
        model.weights_[n] * m.predict(X) for n, m in model.candidates_.items()))  # fmt: skip
    with pytest.raises(ValueError, match="must be finite"):
        model.fit(X, np.full(2_000, np.nan))


def test_the_rfm_network_and_a_network_on_the_whole_profile_as_candidates():
    """The recipe the workflow uses, in a plain scikit-learn pipeline (small and quick)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from sklearn_basemodel import SketchClassifier
    from sklearn_basemodel.recipes import rfm_network

    rng = np.random.default_rng(11)
    rows = pd.DataFrame({"recency": rng.exponential(30, 1_500), "frequency": rng.poisson(4, 1_500)})
    noise = pd.DataFrame(rng.normal(size=(1_500, 50)), columns=[f"n{i}" for i in range(50)])
    rows = pd.concat([rows, noise], axis=1)
    lapsed = (rng.random(1_500) < np.where(rows["recency"].between(30, 60), 0.8, 0.2)).astype(int)
    wide = make_pipeline(StandardScaler(), SketchClassifier(hidden_units=64, max_epochs=10,
                                                            random_state=0))  # fmt: skip
    model = BlendedClassifier([
        ("network", wide),
        ("rfm_network", rfm_network(["recency", "frequency"], max_epochs=20, random_state=0)),
        ("rfm_gradient_boosting", make_pipeline(
            ColumnTransformer([("rfm", "passthrough", ["recency", "frequency"])]),
            HistGradientBoostingClassifier(max_depth=2, random_state=0))),
    ], random_state=0).fit(rows, lapsed)  # fmt: skip
    scores = model.validation_scores_
    assert set(scores) == {"network", "rfm_network", "rfm_gradient_boosting", "blend"}
    # fifty noise columns hurt the wide network; what is kept reads recency
    assert model.chosen_ != "network"
    assert max(scores.values()) > scores["network"]


class _Constant(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


def test_candidates_that_cannot_rank_leave_the_first_one_kept():
    X, y = _views(600, 12, {"a": 1.0})
    model = BlendedClassifier([("c1", _Constant()), ("c2", _Constant())], random_state=0)
    model.fit(X, y)
    assert model.chosen_ == "c1" and model.validation_scores_["c1"] == 0.5


class _Slow(LogisticRegression):
    """A candidate whose fit takes at least ``pause`` seconds."""

    def __init__(self, pause=0.3, C=1.0):
        super().__init__(C=C)
        self.pause = pause

    def fit(self, X, y):
        import time

        time.sleep(self.pause)
        return super().fit(X, y)


def test_time_budget_skips_the_candidates_left_when_it_is_spent():
    X, y = _views(1_000, 9, {"a": 1.0, "b": 1.0, "c": 1.0})
    candidates = [(name, Pipeline([("x", ColumnTransformer([("x", "passthrough", [name])])),
                                   ("model", _Slow())])) for name in ("a", "b", "c")]  # fmt: skip
    boxed = BlendedClassifier(candidates, time_budget=0.1, random_state=0).fit(X, y)
    assert boxed.skipped_ == ["b", "c"] and list(boxed.candidates_) == ["a"]
    assert boxed.chosen_ == "a" and set(boxed.validation_scores_) == {"a"}
    np.testing.assert_allclose(boxed.predict_proba(X)[:, 1],
                               boxed.candidates_["a"].predict_proba(X)[:, 1])  # fmt: skip
    unbounded = BlendedClassifier(candidates, random_state=0).fit(X, y)
    assert unbounded.skipped_ == [] and set(unbounded.candidates_) == {"a", "b", "c"}
    assert BlendedClassifier(candidates, time_budget=2.0, random_state=0).fit(X, y).skipped_ == []
