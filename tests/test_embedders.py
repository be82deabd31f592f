"""RandomVectorEmbedder and TextEmbedder: the embedder protocol, determinism, input checks."""

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.feature_extraction.text import CountVectorizer

from sklearn_basemodel import RandomVectorEmbedder, TextEmbedder

ROWS = [["milk", "bread"], ["bread", "beer", 7], [7]]


# --------------------------------------------------------------------------- RandomVectorEmbedder
def test_random_vectors_vocabulary_in_first_seen_order():
    emb = RandomVectorEmbedder(n_components=6, random_state=0).fit(ROWS)
    keys, vectors = emb.entity_vectors()
    assert keys.tolist() == ["milk", "bread", "beer", 7]
    assert vectors.shape == (4, 6) and vectors.dtype == np.float32
    assert list(emb.vocabulary_) == keys.tolist()


def test_random_vector_depends_only_on_key_and_seed():
    a = RandomVectorEmbedder(n_components=16, random_state=3).fit(ROWS)
    b = RandomVectorEmbedder(n_components=16, random_state=3).fit([["zzz", 7], ["bread"]])
    va = dict(zip(*a.entity_vectors()))
    vb = dict(zip(*b.entity_vectors()))
    np.testing.assert_array_equal(va[7], vb[7])
    np.testing.assert_array_equal(va["bread"], vb["bread"])
    other_seed = RandomVectorEmbedder(n_components=16, random_state=4).fit(ROWS)
    assert not np.allclose(dict(zip(*other_seed.entity_vectors()))[7], va[7])


def test_random_vectors_are_standard_normal_and_independent():
    keys = [[i] for i in range(4000)]
    _, vectors = RandomVectorEmbedder(n_components=32, random_state=0).fit(keys).entity_vectors()
    assert abs(vectors.mean()) < 0.02
    assert abs(vectors.std() - 1.0) < 0.02
    corr = np.corrcoef(vectors.T)
    assert np.abs(corr[~np.eye(32, dtype=bool)]).max() < 0.08  # no low-rank structure


def test_random_vectors_none_seed_is_drawn_and_recorded():
    emb = RandomVectorEmbedder(n_components=4).fit(ROWS)
    again = RandomVectorEmbedder(n_components=4, random_state=emb.seed_).fit(ROWS)
    np.testing.assert_array_equal(emb.embeddings_, again.embeddings_)


def test_random_vectors_column_argument():
    emb = RandomVectorEmbedder(n_components=4, random_state=0).fit(pd.Series(ROWS, name="basket"))
    assert emb.columns_ == ["basket"]
    assert len(emb.entity_vectors("basket")[0]) == 4
    with pytest.raises(ValueError, match="column='other'"):
        emb.entity_vectors("other")


@pytest.mark.parametrize(
    "X, match",
    [
        ("milk", "single string"),
        (None, "None"),
        ([["a"], "b"], "Row 1 of X is a string"),
        ([[], []], "no keys"),
        ([[["nested"]]], "unhashable"),
    ],
)
def test_random_vectors_bad_input(X, match):
    # the shared row parser decides between TypeError and ValueError; both are clear errors
    with pytest.raises((TypeError, ValueError), match=match):
        RandomVectorEmbedder(random_state=0).fit(X)


def test_random_vectors_unfitted_and_params():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        RandomVectorEmbedder().entity_vectors()
    with pytest.raises(ValueError, match="n_components"):
        RandomVectorEmbedder(n_components=0).fit(ROWS)


def test_random_vectors_clone_and_pickle():
    emb = RandomVectorEmbedder(n_components=5, random_state=1).fit(ROWS)
    restored = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(restored.embeddings_, emb.embeddings_)
    assert clone(emb).get_params() == emb.get_params()
    assert not hasattr(clone(emb), "embeddings_")


# --------------------------------------------------------------------------- TextEmbedder
WINE = ["red wine from france", "white wine from italy", "sparkling wine rose",
        "dry red wine", "sweet white wine"]
BREAD = ["fresh rye bread", "white bread loaf", "sourdough bread with seeds",
         "whole grain bread", "bread rolls fresh"]
DESCRIPTIONS = {f"w{i}": t for i, t in enumerate(WINE)} | {f"b{i}": t for i, t in enumerate(BREAD)}


def _cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_text_vectors_group_items_by_description():
    text = TextEmbedder(n_components=3, random_state=0).fit(DESCRIPTIONS)
    keys, vectors = text.entity_vectors()
    assert keys.tolist() == list(DESCRIPTIONS)
    assert vectors.shape == (10, 3) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    v = dict(zip(keys, vectors))
    within = np.mean([_cosine(v["w0"], v[f"w{i}"]) for i in range(1, 5)])
    across = np.mean([_cosine(v["w0"], v[f"b{i}"]) for i in range(5)])
    assert within > across + 0.3


def test_text_transform_places_new_description_near_its_topic():
    text = TextEmbedder(n_components=3, random_state=0).fit(DESCRIPTIONS)
    new = text.transform(["a bottle of red wine"])[0]
    keys, vectors = text.entity_vectors()
    nearest = keys[np.argmax(vectors @ new)]
    assert nearest.startswith("w")


def test_text_input_forms_agree_and_clip_components():
    series = pd.Series(DESCRIPTIONS)
    a = TextEmbedder(n_components=50, random_state=0).fit(DESCRIPTIONS)
    b = TextEmbedder(n_components=50, random_state=0).fit(series)
    c = TextEmbedder(n_components=50, random_state=0).fit(series.to_frame("text"))
    assert a.n_components_ == 9  # fewer than the 10 descriptions
    np.testing.assert_allclose(a.embeddings_, b.embeddings_, atol=1e-6)
    np.testing.assert_allclose(a.embeddings_, c.embeddings_, atol=1e-6)
    assert list(a.get_feature_names_out()[:2]) == ["textembedder0", "textembedder1"]


def test_text_custom_vectorizer_is_cloned_and_used():
    vectorizer = CountVectorizer(binary=True)
    text = TextEmbedder(n_components=2, vectorizer=vectorizer, random_state=0).fit(DESCRIPTIONS)
    assert isinstance(text.vectorizer_, CountVectorizer)
    assert text.vectorizer_ is not vectorizer
    assert not hasattr(vectorizer, "vocabulary_")  # the parameter is untouched


def test_text_same_seed_same_vectors():
    a = TextEmbedder(n_components=4, random_state=7).fit(DESCRIPTIONS).embeddings_
    b = TextEmbedder(n_components=4, random_state=7).fit(DESCRIPTIONS).embeddings_
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "X, error, match",
    [
        (pd.Series({"a": "text", "b": np.nan}), TypeError, "fillna"),
        (pd.Series(["x", "y"], index=["a", "a"]), ValueError, "several descriptions"),
        (["just", "texts"], TypeError, "mapping key -> text"),
        ({}, ValueError, "no descriptions"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), ValueError, "2 columns"),
    ],
)
def test_text_bad_input(X, error, match):
    with pytest.raises(error, match=match):
        TextEmbedder(n_components=2).fit(X)


def test_text_entity_vectors_rejects_a_column_name():
    text = TextEmbedder(n_components=2, random_state=0).fit(DESCRIPTIONS)
    with pytest.raises(ValueError, match="column"):
        text.entity_vectors("products")
    with pytest.raises(TypeError, match="single string"):
        text.transform("red wine")
