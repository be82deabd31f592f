"""Regression tests for silent wrong results on bad input (issue 12, Python side).

Each test reproduces a case that used to return a wrong answer without a word: it must now
give the right answer or a clear error.
"""

import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from sklearn_basemodel import CleoraEmbedder, EMDESketcher, RandomVectorEmbedder, TextEmbedder

BASKETS = [["milk", "bread"], ["milk", "butter"], ["beer", "chips"], ["bread", "butter"]]


def _sketcher(**params):
    params = {"n_sketches": 4, "sketch_dim": 8, "random_state": 0, **params}
    return EMDESketcher(RandomVectorEmbedder(16, random_state=0), **params)


# --------------------------------------------------------------------------- EMDE scale
@pytest.mark.parametrize("output", ["sparse", "dense"])
@pytest.mark.parametrize("scale", [1e-170, 1e-30, 1e30, 1e160])
def test_normalised_sketch_does_not_depend_on_the_scale_of_the_weights(output, scale):
    sk = _sketcher(output=output).fit(BASKETS)
    reference = sk.transform([{"milk": 1.0, "bread": 3.0}])
    scaled = sk.transform([{"milk": scale, "bread": 3.0 * scale}])
    reference = reference.toarray() if output == "sparse" else reference
    scaled = scaled.toarray() if output == "sparse" else scaled
    assert np.isfinite(scaled).all()
    np.testing.assert_allclose(scaled, reference, rtol=1e-6)


@pytest.mark.parametrize("days", [600, 1200, 20_000])
def test_old_rows_with_a_short_half_life_keep_their_relative_weights(days):
    sk = _sketcher(half_life="1D", reference_time="2024-01-01").fit(
        [(["milk", "bread"], pd.to_datetime(["2023-12-30", "2023-12-31"]))]
    )
    start = pd.Timestamp("2024-01-01") - pd.Timedelta(days=days)
    old = sk.transform([(["milk", "bread"], [start, start + pd.Timedelta(days=1)])])
    recent = sk.transform([(["milk", "bread"], pd.to_datetime(["2023-12-31", "2024-01-01"]))])
    assert old.nnz > 0
    np.testing.assert_allclose(old.toarray(), recent.toarray(), rtol=1e-6)


def test_mixed_precision_iso_timestamps_are_read():
    sk = _sketcher(half_life="1D").fit([(["milk", "bread"], ["2024-01-01", "2024-01-02 00:00"])])
    raw = sk.raw_sketches([(["milk"], ["2024-01-01"])])
    # one day before the reference (the latest event): weight one half in every partitioning
    np.testing.assert_allclose(raw.toarray().reshape(4, 8).sum(axis=1), 0.5)


def test_update_and_normalize_refuse_nan():
    sk = _sketcher(normalize=None, output="dense").fit(BASKETS)
    old = sk.raw_sketches(BASKETS[:1])
    old[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        sk.update(old, BASKETS[:1])
    with pytest.raises(ValueError, match="NaN"):
        sk.normalize_sketches(old, norm="l2")


# --------------------------------------------------------------------------- Cleora
def test_cleora_refuses_weighted_rows_in_fit():
    with pytest.raises(TypeError, match="mapping rows"):
        CleoraEmbedder(n_components=8, random_state=0).fit([{"milk": 2.0, "bread": 1.0}])


def test_cleora_refuses_duplicate_column_names():
    frame = pd.DataFrame([["a", "x"], ["b", "y"]], columns=["c", "c"])
    with pytest.raises(ValueError, match="duplicate column names"):
        CleoraEmbedder(n_components=8, random_state=0).fit(frame)


def test_cleora_refuses_timestamp_and_amount_columns_it_was_not_asked_to_embed():
    table = pd.DataFrame({
        "products": [["milk", "bread"], ["beer"]],
        "last_event_at": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        "amount": [3.5, 1.25],
    })
    with pytest.raises(ValueError, match="last_event_at"):
        CleoraEmbedder(n_components=8, random_state=0).fit(table)
    fitted = CleoraEmbedder(n_components=8, columns=["products"], random_state=0).fit(table)
    assert set(fitted.vocabulary_) == {"milk", "bread", "beer"}


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_most_similar_refuses_a_bad_n(n):
    cleora = CleoraEmbedder(n_components=8, random_state=0).fit(BASKETS)
    with pytest.raises(ValueError, match="positive integer"):
        cleora.most_similar("milk", n=n)


@pytest.mark.parametrize(
    "estimator",
    [
        CleoraEmbedder(n_components=True),
        RandomVectorEmbedder(n_components=True),
        EMDESketcher(RandomVectorEmbedder(8), n_sketches=True),
    ],
    ids=lambda e: type(e).__name__,
)
def test_booleans_are_not_integers(estimator):
    with pytest.raises(InvalidParameterError, match="must be an int"):
        estimator.fit(BASKETS)


def test_text_embedder_with_a_one_term_vocabulary():
    text = TextEmbedder(n_components=4).fit({"a": "milk", "b": "milk milk", "c": "milk"})
    keys, vectors = text.entity_vectors()
    assert vectors.shape == (3, 1)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0)
