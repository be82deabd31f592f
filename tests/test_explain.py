"""Attributions: integrated gradients, blocks of a fitted pipeline, entities of sketch blocks."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.nn import (
    SketchClassifier,
    SketchRegressor,
    entity_attributions,
    explain,
)

# Tiny networks on a shared 2-core machine: one intra-op thread is faster than contention.

NET = {"hidden_units": 32, "n_blocks": 1, "batch_size": 16, "lr": 1e-2, "random_state": 0}


def _sketcher(**kwargs):
    return EMDESketcher(
        RandomVectorEmbedder(8, random_state=0), n_sketches=4, sketch_dim=16, random_state=0,
        **kwargs,
    )


def _customers(n=240, seed=0):
    """Only the products column carries the label: whether "signal" was bought."""
    rng = np.random.default_rng(seed)
    label = rng.random(n) < 0.5
    products = []
    for positive in label:
        basket = rng.choice([f"p{i}" for i in range(30)], size=3, replace=False).tolist()
        products.append(basket + ["signal"] if positive else basket)
    frame = pd.DataFrame({
        "products": products,
        "categories": [rng.choice([f"c{i}" for i in range(8)], size=2).tolist() for _ in range(n)],
        "recency": rng.normal(size=n),
    })
    return frame, label.astype(int)


@pytest.fixture(scope="module")
def fitted():
    frame, label = _customers()
    pipe = Pipeline([
        ("sketches", ColumnTransformer([
            ("products", _sketcher(), "products"),
            ("categories", _sketcher(), "categories"),
            ("recency", "passthrough", ["recency"]),
        ])),
        ("model", SketchClassifier(max_epochs=12, **NET)),
    ]).fit(frame, label)
    assert pipe.score(frame, label) > 0.95
    return frame, label, pipe


def test_the_column_with_the_signal_dominates(fitted):
    frame, _, pipe = fitted
    result = explain(pipe, frame.head(60))
    importance = result.block_importance()
    assert list(importance.index) == ["products", "categories", "recency"]
    assert importance["products"] > 0.6 * importance.sum()


def test_the_signal_entity_gets_the_products_attribution(fitted):
    frame, label, pipe = fitted
    rows = frame.head(60)
    result = explain(pipe, rows)
    entities = result.entities[result.entities.block == "products"]
    positive_rows = np.flatnonzero(label[:60] == 1)
    winners = entities.loc[entities.groupby("row")["attribution"].apply(lambda a: a.abs().idxmax())]
    winners = winners.set_index("row").loc[positive_rows, "entity"]
    assert (winners == "signal").mean() > 0.8
    summary = result.entity_importance("products")
    assert summary.index[0] == ("products", "signal")
    assert summary.loc[("products", "signal"), "n_rows"] == len(positive_rows)


def test_entity_and_block_attributions_add_up(fitted):
    frame, _, pipe = fitted
    result = explain(pipe, frame.head(30), method="gradient_x_input")
    blocks = result.blocks.pivot(index="row", columns="block", values="attribution")
    np.testing.assert_allclose(blocks.sum(axis=1), result.attributions.sum(axis=1), rtol=1e-5)
    for name in ("products", "categories"):
        per_row = result.entities[result.entities.block == name].groupby("row")["attribution"].sum()
        np.testing.assert_allclose(per_row, blocks.loc[per_row.index, name], rtol=1e-4, atol=1e-6)
    assert set(result.entities.block) == {"products", "categories"}  # recency is not a sketch
    first_row = set(result.entities.query("row == 0 and block == 'products'").entity)
    assert first_row == set(frame.products[0])


def test_frozen_steps_are_looked_through(fitted):
    """The documented fine-tuner freezes the profile; the blocks must still be found."""
    frame, _, pipe = fitted
    rows = frame.head(20)
    plain = explain(pipe, rows, method="gradient_x_input")
    profile, model = pipe[0], pipe[-1]
    for wrapped in [
        Pipeline([("features", FrozenEstimator(profile)), ("model", model)]),
        Pipeline([("features", FrozenEstimator(profile)), ("model", FrozenEstimator(model))]),
        FrozenEstimator(Pipeline([("features", FrozenEstimator(profile)), ("model", model)])),
    ]:
        result = explain(wrapped, rows, method="gradient_x_input")
        assert list(result.block_columns) == ["products", "categories", "recency"]
        pd.testing.assert_frame_equal(result.blocks, plain.blocks)
        pd.testing.assert_frame_equal(result.entities, plain.entities)
        assert result.feature_names == {"recency": ["recency"]}
    recency = plain.feature_attributions("recency")
    assert list(recency.feature.unique()) == ["recency"]
    np.testing.assert_allclose(recency.attribution, plain.attributions[:, -1], rtol=1e-6)


def test_integrated_gradients_are_complete():
    rng = np.random.default_rng(1)
    X = rng.random((80, 6)).astype(np.float32)
    reg = SketchRegressor(max_epochs=5, **NET).fit(X, X[:, 0] * 2 - X[:, 3])
    result = reg.explain(X[:10], n_steps=100, blocks={"first": slice(0, 3), "last": [3, 4, 5]})
    module = reg.module_.eval()
    with torch.no_grad():
        gap = module(torch.tensor(X[:10]))[:, 0] - module(torch.zeros(10, 6))[:, 0]
    np.testing.assert_allclose(result.attributions.sum(axis=1), gap.numpy(), rtol=1e-2, atol=5e-3)
    assert list(result.blocks.block.unique()) == ["first", "last"]
    assert result.entities.empty


def test_gradient_x_input_is_the_input_times_the_gradient():
    rng = np.random.default_rng(2)
    X = rng.random((60, 5)).astype(np.float32)
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
    clf = SketchClassifier(max_epochs=3, **NET).fit(X, y)
    result = clf.explain(X[:4], target="b", method="gradient_x_input")
    x = torch.tensor(X[:4], requires_grad=True)
    value = torch.log_softmax(clf.module_.eval()(x), dim=1)[:, 1].sum()
    (grad,) = torch.autograd.grad(value, x)
    np.testing.assert_allclose(result.attributions, (x * grad).detach().numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="method must be one of"):
        clf.explain(X[:4], method="shap")
    with pytest.raises(ValueError, match="not one of classes_"):
        clf.explain(X[:4], target="z")


def test_entities_of_a_decayed_history_use_the_sketchers_weights():
    keys = [["a", "b"], ["a", "c", "d"]]
    times = [[0.0, 10.0], [10.0, 10.0, 0.0]]
    sketcher = _sketcher(half_life=10.0, normalize=None).fit(pd.DataFrame({"k": keys, "t": times}))
    rows = pd.DataFrame({"k": keys, "t": times})
    width = sketcher.n_features_out_
    attributions = np.ones((2, width)) * sketcher.transform(rows).toarray()  # = sketch weights
    table = entity_attributions(attributions, rows, sketcher, block="history")
    got = table.set_index(["row", "entity"]).attribution
    # without collisions an entity gets its decayed weight in each of the 4 partitionings
    codes = sketcher.codes_[sketcher.vocabulary_.get_indexer(["a", "b"])]
    if (codes[0] != codes[1]).all():
        assert got[(0, "a")] == pytest.approx(4 * 0.5)
        assert got[(0, "b")] == pytest.approx(4 * 1.0)
    np.testing.assert_allclose(got.groupby(level=0).sum(), attributions.sum(axis=1), rtol=1e-5)
