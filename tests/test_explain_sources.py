"""Explanations per source table, column and value, on the workflow's profile and fine-tuner."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.frozen import FrozenEstimator

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.nn.explain import WHOLE_EVENTS, explain, explain_sources
from sklearn_basemodel.recipes import behavioral_profile, fine_tuner

RFM = [
    "n_events",
    "n_groups",
    "days_since_last_event",
    "days_since_first_event",
    "decay_weight_sum",
    "total_amount",
    "mean_amount",
]
# How the workflow names the source of each block: items by their column, RFM by feature.
SOURCES = {
    "product": "product_id",
    "category": "category_code",
    "rfm": {
        "n_events": None,
        "n_groups": None,
        "days_since_last_event": "event_time",
        "days_since_first_event": "event_time",
        "decay_weight_sum": "event_time",
        "total_amount": "amount",
        "mean_amount": "amount",
    },
}
SIGNAL = "c3"
NET = {"hidden_units": 32, "n_blocks": 1, "batch_size": 32, "lr": 1e-2, "random_state": 0}


def _histories(n=300, seed=0):
    """One row per customer, as the history table holds them, and a label planted in one
    category: whether the customer has an event of category ``SIGNAL``.

    Products and categories are drawn independently, so only the category column carries
    the label.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        n_events = int(rng.integers(2, 7))
        products = rng.choice([f"p{i}" for i in range(40)], size=n_events)
        categories = rng.choice([f"c{i}" for i in range(8)], size=n_events)
        ages = rng.uniform(0, 90, size=n_events)
        amounts = rng.gamma(2.0, 10.0, size=n_events)
        weights = 0.5 ** (ages / 30)
        product_history, category_history = {}, {}
        for product, category, weight in zip(products, categories, weights):
            product_history[product] = product_history.get(product, 0.0) + weight
            category_history[category] = category_history.get(category, 0.0) + weight
        rows.append({
            "product_history": product_history,
            "category_history": category_history,
            "n_events": n_events,
            "n_groups": int(rng.integers(1, n_events + 1)),
            "days_since_last_event": ages.min(),
            "days_since_first_event": ages.max(),
            "decay_weight_sum": weights.sum(),
            "total_amount": amounts.sum(),
            "mean_amount": amounts.mean(),
        })
    frame = pd.DataFrame(rows)
    label = frame.category_history.map(lambda h: SIGNAL in h).astype(int).to_numpy()
    return frame, label


def _profile(frame):
    """The workflow's profile: a frozen, prefit product sketcher, a category sketcher on
    frozen item vectors, and the RFM block."""
    shape = {"n_sketches": 4, "sketch_dim": 16}
    products = EMDESketcher(RandomVectorEmbedder(8, random_state=0), **shape, random_state=0)
    products.fit(frame.product_history)
    category_vectors = RandomVectorEmbedder(8, random_state=1).fit(
        frame.category_history.map(list)
    )
    categories = EMDESketcher(FrozenEstimator(category_vectors), **shape, random_state=1)
    return behavioral_profile(
        products,
        items="product_history",
        name="product",
        rfm=RFM,
        blocks=[("category", categories, "category_history")],
    ).fit(frame)


@pytest.fixture(scope="module")
def fitted():
    frame, label = _histories()
    pipe = fine_tuner(_profile(frame), max_epochs=15, **NET).fit(frame, label)
    assert isinstance(pipe.named_steps["features"], FrozenEstimator)  # the documented shape
    assert pipe.score(frame, label) > 0.9
    return frame, label, pipe


def test_the_blocks_of_a_frozen_profile_are_found(fitted):
    frame, _, pipe = fitted
    result = explain(pipe, frame.head(40), method="gradient_x_input")
    assert list(result.block_columns) == ["product", "category", "rfm"]
    assert set(result.entities.block) == {"product", "category"}
    assert result.feature_names == {"rfm": RFM}
    rfm = result.feature_attributions("rfm")
    columns = result.block_columns["rfm"]
    for i, feature in enumerate(RFM):
        got = rfm.loc[rfm.feature == feature].sort_values("row").attribution.to_numpy()
        np.testing.assert_allclose(got, result.attributions[:, columns[i]], rtol=1e-6)


def test_values_are_exactly_the_items_and_features_of_the_rows(fitted):
    frame, _, pipe = fitted
    rows = frame.iloc[40:90]
    table = explain_sources(pipe, rows, sources=SOURCES, n_steps=8)
    assert list(table.columns) == [
        "table", "column", "value", "attribution", "mean_abs_attribution", "n_rows",
    ]  # fmt: skip
    assert set(table.table) == {"events"}
    for column, history in [("product_id", "product_history"), ("category_code", "category_history")]:
        got = table[table.column == column].set_index("value").n_rows
        holding = pd.Series([k for h in rows[history] for k in h]).value_counts()
        assert set(got.index) == set(holding.index)
        assert got.sort_index().equals(holding.sort_index().rename("n_rows").rename_axis("value"))
    features = table[table.column.isin(["event_time", "amount", WHOLE_EVENTS])]
    assert sorted(features.value) == sorted(RFM)
    located = dict(zip(features.value, features.column))
    assert located == {f: s or WHOLE_EVENTS for f, s in SOURCES["rfm"].items()}
    assert (features.n_rows == len(rows)).all()
    assert len(table) == len(features) + table.column.isin(["product_id", "category_code"]).sum()
    assert table.mean_abs_attribution.is_monotonic_decreasing


def test_source_attributions_add_up_to_the_mean_output_gap(fitted):
    frame, _, pipe = fitted
    rows = frame.iloc[100:160]
    table = explain_sources(pipe, rows, sources=SOURCES, n_steps=128)
    module = pipe.named_steps["model"].module_.eval()
    features = pipe[:-1].transform(rows)
    features = features.toarray() if sp.issparse(features) else np.asarray(features)
    features = torch.as_tensor(features, dtype=torch.float32)
    with torch.no_grad():
        gap = module(features)[:, 0] - module(torch.zeros_like(features))[:, 0]
    assert abs(gap.mean().item()) > 0.1  # the check below says something
    assert table.attribution.sum() == pytest.approx(gap.mean().item(), rel=0.02, abs=2e-3)
    columns = explain_sources(pipe, rows, sources=SOURCES, n_steps=128, level="column")
    assert "value" not in columns
    per_column = table.groupby(["table", "column"]).attribution.sum()
    got = columns.set_index(["table", "column"]).attribution
    np.testing.assert_allclose(got.loc[per_column.index], per_column, rtol=1e-6, atol=1e-9)
    assert columns.set_index("column").n_rows["product_id"] == len(rows)


def test_the_planted_category_ranks_first(fitted):
    frame, _, pipe = fitted
    table = explain_sources(pipe, frame.head(80), sources=SOURCES, n_steps=16)
    top = table.iloc[0]
    assert (top.table, top.column, top.value) == ("events", "category_code", SIGNAL)
    assert top.n_rows == sum(SIGNAL in h for h in frame.category_history.head(80))
    assert top.mean_abs_attribution > 1.3 * table.mean_abs_attribution.iloc[1]
    columns = explain_sources(pipe, frame.head(80), sources=SOURCES, n_steps=16, level="column")
    assert columns.column.iloc[0] == "category_code"


def test_sources_must_match_the_blocks(fitted):
    frame, _, pipe = fitted
    rows = frame.head(5)
    with pytest.raises(ValueError, match=r"unknown blocks \['brand'\].*without a source \[\]"):
        explain_sources(pipe, rows, sources={**SOURCES, "brand": "brand_id"}, n_steps=2)
    missing = {k: v for k, v in SOURCES.items() if k != "category"}
    with pytest.raises(ValueError, match=r"unknown blocks \[\].*without a source \['category'\]"):
        explain_sources(pipe, rows, sources=missing, n_steps=2)
    rfm = {k: v for k, v in SOURCES["rfm"].items() if k != "mean_amount"}
    with pytest.raises(ValueError, match=r"features without a source \['mean_amount'\]"):
        explain_sources(pipe, rows, sources={**SOURCES, "rfm": rfm}, n_steps=2)
    with pytest.raises(ValueError, match="sketch block 'product' must be its item column"):
        explain_sources(pipe, rows, sources={**SOURCES, "product": None}, n_steps=2)
    with pytest.raises(ValueError, match="level must be one of"):
        explain_sources(pipe, rows, sources=SOURCES, n_steps=2, level="table")


def test_sources_in_other_tables_and_shared_columns_merge(fitted):
    frame, _, pipe = fitted
    rows = frame.head(30)
    result = explain(pipe, rows, method="gradient_x_input")
    # both item blocks read from one column: an item's lines add up over the blocks
    shared = {**SOURCES, "category": "product_id", "rfm": ("customers", "profile")}
    table = result.by_source(shared)
    assert set(zip(table.table, table.column)) == {("events", "product_id"), ("customers", "profile")}
    separate = result.by_source(SOURCES)
    items = separate[separate.column.isin(["product_id", "category_code"])]
    expected = items.groupby("value").attribution.sum()
    got = table[table.column == "product_id"].set_index("value").attribution
    np.testing.assert_allclose(got.loc[expected.index], expected, rtol=1e-6, atol=1e-9)
    assert table.attribution.sum() == pytest.approx(separate.attribution.sum(), rel=1e-6)
