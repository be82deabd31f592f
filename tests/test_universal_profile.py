"""UniversalProfile: the compressed trunk embedding beside the profile's plain columns."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.decomposition import PCA
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import sklearn_basemodel.universal_profile as universal_module
from sklearn_basemodel import CleoraEmbedder, EMDESketcher, SketchRecommender
from sklearn_basemodel.recipes import behavioral_profile
from sklearn_basemodel.universal_profile import UniversalProfile

N_ROWS = 400


@pytest.fixture(scope="module")
def fitted():
    """Rows with a history and an activity column, a fitted profile and a pretrained network
    whose target (the next items) does not depend on the activity column."""
    rng = np.random.default_rng(0)
    items = [f"i{j}" for j in range(40)]
    rows = pd.DataFrame({
        "items": [list(rng.choice(items, 6)) for _ in range(N_ROWS)],
        "n_orders": rng.integers(1, 50, N_ROWS),
        "days_since_last": rng.integers(0, 90, N_ROWS),
    })  # fmt: skip
    future = [list(rng.choice(items, 3)) for _ in range(N_ROWS)]
    vectors = CleoraEmbedder(n_components=8, random_state=0).fit(rows["items"])
    profile = behavioral_profile(vectors, n_sketches=4, sketch_dim=16,
                                 rfm=["n_orders", "days_since_last"]).fit(rows)  # fmt: skip
    target = EMDESketcher(vectors, n_sketches=4, sketch_dim=16, random_state=0)
    net = SketchRecommender(target_sketcher=target, hidden_units=64, n_blocks=1, max_epochs=2,
                            random_state=0).fit(profile.transform(rows), future)  # fmt: skip
    return rows, profile, net, future


def test_output_is_the_pca_of_the_embedding_then_the_rfm_columns(fitted):
    rows, profile, net, _ = fitted
    universal = UniversalProfile(net, profile=profile, n_components=5, random_state=0)
    out = universal.fit_transform(rows)
    P = profile.transform(rows)
    embedding = net.embed(P)
    expected = PCA(5).fit(embedding).transform(embedding)
    assert out.shape == (N_ROWS, 7) and out.dtype == np.float32
    # principal components are defined up to sign: compare column by column
    for j in range(5):
        assert np.allclose(np.abs(out[:, j]), np.abs(expected[:, j]), atol=1e-3)
    rfm = profile.output_indices_["rfm"]
    assert np.array_equal(out[:, 5:], np.asarray(P[:, rfm], dtype=np.float32))
    assert universal.passthrough_blocks_ == ["rfm"]
    names = list(universal.get_feature_names_out())
    assert names[:5] == [f"embedding{i}" for i in range(5)]
    assert names[5:] == ["rfm__n_orders", "rfm__days_since_last"]


def test_without_pca_the_whole_embedding_is_kept(fitted):
    rows, profile, net, _ = fitted
    out = UniversalProfile(net, profile=profile, n_components=None).fit_transform(rows)
    embedding = net.embed(profile.transform(rows))
    assert out.shape == (N_ROWS, embedding.shape[1] + 2)
    assert np.array_equal(out[:, : embedding.shape[1]], embedding)


def test_passthrough_none_and_a_profile_without_the_block(fitted):
    rows, profile, net, _ = fitted
    alone = UniversalProfile(net, profile=profile, n_components=3, passthrough=None)
    assert alone.fit_transform(rows).shape == (N_ROWS, 3)
    assert alone.passthrough_blocks_ == []
    # a block the profile does not have is left out, and the attribute says so
    other = UniversalProfile(net, profile=profile, n_components=3,
                             passthrough=["rfm", "last_basket"]).fit(rows)  # fmt: skip
    assert other.passthrough_blocks_ == ["rfm"] and other.n_features_out_ == 5


def test_passthrough_needs_a_column_transformer_profile(fitted):
    rows, profile, net, _ = fitted
    P = profile.transform(rows)
    with pytest.raises(ValueError, match="passthrough=None"):
        UniversalProfile(net, n_components=3).fit(P)
    out = UniversalProfile(net, n_components=3, passthrough=None).fit_transform(P)
    assert out.shape == (N_ROWS, 3)


def test_components_are_capped_by_the_rows(fitted):
    rows, profile, net, _ = fitted
    universal = UniversalProfile(net, profile=profile, n_components=500).fit(rows.iloc[:20])
    assert universal.n_components_ == 20
    assert universal.transform(rows).shape == (N_ROWS, 22)


def test_unfitted_pretrained_network_is_refused(fitted):
    rows, profile, _, _ = fitted
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        UniversalProfile(SketchRecommender(), profile=profile).fit(rows)


def test_chunked_transform_matches_one_pass(fitted, monkeypatch):
    rows, profile, net, _ = fitted
    universal = UniversalProfile(net, profile=profile, n_components=4, random_state=0).fit(rows)
    whole = universal.transform(rows)
    monkeypatch.setattr(universal_module, "_CHUNK_ROWS", 7)
    assert np.allclose(universal.transform(rows), whole, atol=1e-5)


def test_pipeline_clone_and_random_state(fitted):
    rows, profile, net, _ = fitted
    y = (rows["n_orders"].to_numpy() > 25).astype(int)
    model = make_pipeline(
        UniversalProfile(FrozenEstimator(net), profile=FrozenEstimator(profile), n_components=4,
                         random_state=0),
        LogisticRegression(max_iter=1000),
    )  # fmt: skip
    first = clone(model).fit(rows, y).predict_proba(rows)[:, 1]
    second = clone(model).fit(rows, y).predict_proba(rows)[:, 1]
    assert np.array_equal(first, second)


def test_fit_transform_equals_fit_then_transform(fitted, monkeypatch):
    rows, profile, net, _ = fitted
    params = {"profile": profile, "n_components": 4, "random_state": 0}
    expected = UniversalProfile(net, **params).fit(rows).transform(rows)
    monkeypatch.setattr(universal_module, "_CHUNK_ROWS", 7)  # the stored embedding, chunked
    assert np.allclose(UniversalProfile(net, **params).fit_transform(rows), expected, atol=1e-5)
    # above the PCA's sample size the rows are embedded again, and the result is the same
    monkeypatch.setattr(universal_module, "_PCA_ROWS", 100)
    sampled = UniversalProfile(net, **params)
    out = sampled.fit_transform(rows)
    assert np.allclose(out, UniversalProfile(net, **params).fit(rows).transform(rows), atol=1e-5)


class _WideTrunk(BaseEstimator):
    """A fitted stand-in for a pretrained network whose embedding is 600 columns wide: wide
    enough that scikit-learn's default PCA solver would be the randomized one."""

    def fit(self, X, y=None):
        rng = np.random.default_rng(0)
        width = 600
        # a slowly decaying spectrum, so that the leading directions are close together
        self.weights_ = rng.normal(size=(X.shape[1], width)) / np.sqrt(np.arange(1, width + 1))
        return self

    def embed(self, X):
        return np.asarray(X, dtype=np.float64) @ self.weights_


def test_components_are_exact_whatever_the_random_state():
    X = np.random.default_rng(1).normal(size=(N_ROWS, 50))
    trunk = _WideTrunk().fit(X)
    outs = [UniversalProfile(trunk, n_components=8, passthrough=None, random_state=seed)
            .fit_transform(X) for seed in (0, 1)]  # fmt: skip
    assert np.array_equal(outs[0], outs[1])
    E = trunk.embed(X)
    E = E - E.mean(axis=0)
    _, _, vt = np.linalg.svd(E, full_matrices=False)
    exact = E @ vt[:8].T
    # components are defined up to sign
    assert np.allclose(np.abs(outs[0]), np.abs(exact), atol=1e-3 * np.abs(exact).max())
