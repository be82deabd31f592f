"""Entity embedders besides Cleora: hashed random vectors (ID hashing) and text vectors.

Both implement the embedder protocol that :class:`~sklearn_basemodel.EMDESketcher` uses:
``entity_vectors(column=None) -> (keys, float32 vectors)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
    clone,
)
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from ._hashing import hashed_vectors, seed_from_random_state
from ._hypergraph import flatten_rows
from .cleora import _normalize_rows

__all__ = ["RandomVectorEmbedder", "TextEmbedder"]


def _input_column_name(X):
    """The name of a Series, or of the first column of a DataFrame, else None."""
    if isinstance(X, pd.DataFrame) and X.shape[1]:
        return X.columns[0]
    if isinstance(X, pd.Series):
        return X.name
    return None


def _check_column(column, fitted_column, owner: str) -> None:
    if column is not None and column != fitted_column:
        raise ValueError(
            f"{owner} was fitted on one column ({fitted_column!r}); column={column!r} does not "
            "name it. Pass column=None."
        )


class RandomVectorEmbedder(BaseEstimator):
    """Stable pseudo-random vectors for the entities seen in fit (ID hashing for EMDE).

    Every entity key gets a standard-normal vector derived from a hash of ``(key,
    random_state)``: the same key always gets the same vector, whatever the rows, their order or
    the process. Sketching with these vectors behaves like feature hashing of entity IDs — each
    entity falls into pseudo-random buckets — which is the "memorisation" sketch EMDE
    concatenates with the sketches built on learned (Cleora, text) vectors.

    Parameters
    ----------
    n_components : int, default=128
        Length of each vector.
    random_state : int, RandomState instance or None, default=None
        Seed of the hash. Different seeds give unrelated vectors; ``None`` draws a seed from
        numpy's global random state at fit time.

    Attributes
    ----------
    vocabulary_ : pandas.Index
        The distinct keys of the fit rows, in order of first occurrence.
    embeddings_ : ndarray of shape (n_entities, n_components), float32
        Row i is the vector of ``vocabulary_[i]``.
    columns_ : list
        ``[name]`` of the fitted column (a Series name or one-column DataFrame column), or
        ``[None]`` for plain rows.
    seed_ : int
        The hash seed used.

    See Also
    --------
    CleoraEmbedder : Vectors that reflect co-occurrence in the rows.
    TextEmbedder : Vectors from item descriptions.
    EMDESketcher : Turns entity vectors into sketches of sets of entities.

    Examples
    --------
    >>> from sklearn_basemodel import RandomVectorEmbedder
    >>> emb = RandomVectorEmbedder(n_components=8, random_state=0).fit([["a", "b"], ["b", "c"]])
    >>> keys, vectors = emb.entity_vectors()
    >>> keys.tolist(), vectors.shape, vectors.dtype
    (['a', 'b', 'c'], (3, 8), dtype('float32'))
    >>> again = RandomVectorEmbedder(n_components=8, random_state=0).fit([["c"], ["b"]])
    >>> bool((again.entity_vectors()[1][0] == vectors[2]).all())  # "c": same key, same vector
    True
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=128, *, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the vocabulary of the rows and hash a vector for each entity.

        Parameters
        ----------
        X : sequence of rows, pandas Series of rows or one-column DataFrame
            A row is an iterable of hashable keys or a mapping key -> weight (weights are
            ignored).
        y : None
            Ignored.

        Returns
        -------
        self : RandomVectorEmbedder
        """
        rows = flatten_rows(X, name="X")
        if len(rows.keys) == 0:
            raise ValueError("X holds no keys (every row is empty); pass rows with entity keys.")
        self.vocabulary_ = pd.Index(pd.unique(rows.keys), tupleize_cols=False)
        self.seed_ = seed_from_random_state(self.random_state)
        self.embeddings_ = hashed_vectors(
            np.asarray(self.vocabulary_), self.n_components, self.seed_, namespace="random-vectors"
        )
        self.columns_ = [_input_column_name(X)]
        return self

    def entity_vectors(self, column=None):
        """Keys and vectors of the entities.

        Parameters
        ----------
        column : str, default=None
            Accepted for the embedder protocol; must be None or the fitted column's name.

        Returns
        -------
        keys : ndarray of shape (n_entities,)
        vectors : ndarray of shape (n_entities, n_components), float32
        """
        check_is_fitted(self)
        _check_column(column, self.columns_[0], type(self).__name__)
        return np.asarray(self.vocabulary_), self.embeddings_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags


def _descriptions(X, name: str = "X") -> tuple[np.ndarray, list[str]]:
    """(keys, texts) from a mapping, a Series indexed by key, or a one-column DataFrame."""
    help_ = (
        "Pass item descriptions as a mapping key -> text, a pandas Series of texts indexed by "
        "key, or a one-column DataFrame indexed by key."
    )
    if isinstance(X, pd.DataFrame):
        if X.shape[1] != 1:
            raise ValueError(f"{name} is a DataFrame with {X.shape[1]} columns. {help_}")
        X = X.iloc[:, 0]
    if isinstance(X, pd.Series):
        keys, texts = X.index.to_numpy(), X.tolist()
    elif isinstance(X, Mapping):
        keys = np.empty(len(X), dtype=object)
        keys[:] = list(X.keys())
        texts = list(X.values())
    else:
        raise TypeError(f"{name} is a {type(X).__name__}. {help_}")
    if len(texts) == 0:
        raise ValueError(f"{name} holds no descriptions. {help_}")
    for key, text in zip(keys, texts):
        if not isinstance(text, str):
            raise TypeError(
                f"The description of key {key!r} is {text!r} ({type(text).__name__}), not a "
                "string. Replace missing descriptions with empty strings, e.g. "
                "descriptions.fillna('')."
            )
    if pd.Index(keys).has_duplicates:
        dup = pd.Index(keys)[pd.Index(keys).duplicated()][0]
        raise ValueError(f"Key {dup!r} has several descriptions; give one text per key.")
    return keys, texts


class TextEmbedder(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Entity vectors from item descriptions: TF-IDF followed by truncated SVD (LSA).

    Makes EMDE multimodal: a sketch of a customer's products built on these vectors groups
    products by what their descriptions say, not by who bought them. Fit it on the item
    catalogue, freeze it, and give it to an :class:`EMDESketcher`::

        text = TextEmbedder(n_components=32).fit(descriptions)
        EMDESketcher(embedder=FrozenEstimator(text))

    Parameters
    ----------
    n_components : int, default=64
        Dimension of the vectors. Clipped to what the data allows (fewer than the number of
        terms and of descriptions); the value used is ``n_components_``.
    vectorizer : scikit-learn text vectorizer, default=None
        Turns texts into a sparse term matrix; cloned before fitting. Default:
        ``TfidfVectorizer(sublinear_tf=True)``.
    random_state : int, RandomState instance or None, default=None
        Seed of the randomised SVD.

    Attributes
    ----------
    vocabulary_ : pandas.Index
        The item keys, in input order.
    embeddings_ : ndarray of shape (n_items, n_components_), float32
        L2-normalised LSA vector of each item (zeros for an empty description).
    vectorizer_ : estimator
        The fitted vectorizer.
    svd_ : TruncatedSVD
        The fitted SVD.
    n_components_ : int
        The dimension actually used.

    See Also
    --------
    RandomVectorEmbedder : Hashed random vectors (ID hashing).
    CleoraEmbedder : Vectors from co-occurrence in behaviour.

    Examples
    --------
    >>> from sklearn_basemodel import TextEmbedder
    >>> items = {"p1": "red wine from france", "p2": "white wine from italy",
    ...          "p3": "fresh bread", "p4": "rye bread with seeds"}
    >>> text = TextEmbedder(n_components=2, random_state=0).fit(items)
    >>> keys, vectors = text.entity_vectors()
    >>> keys.tolist(), vectors.shape
    (['p1', 'p2', 'p3', 'p4'], (4, 2))
    >>> text.transform(["sparkling wine"]).shape  # vectors for new descriptions
    (1, 2)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "vectorizer": [HasMethods(["fit_transform", "transform"]), None],
        "random_state": ["random_state"],
    }

    def __init__(self, n_components=64, *, vectorizer=None, random_state=None):
        self.n_components = n_components
        self.vectorizer = vectorizer
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None):
        """Fit the vectorizer and the SVD on the descriptions and embed every item.

        Parameters
        ----------
        X : mapping key -> str, pandas Series of str indexed by key, or one-column DataFrame
            One description per item.
        y : None
            Ignored.

        Returns
        -------
        self : TextEmbedder
        """
        keys, texts = _descriptions(X)
        if self.vectorizer is None:
            self.vectorizer_ = TfidfVectorizer(sublinear_tf=True)
        else:
            self.vectorizer_ = clone(self.vectorizer)
        terms = self.vectorizer_.fit_transform(texts)
        # randomized SVD needs n_components <= n_features; fewer than the items keeps it full rank
        self.n_components_ = int(max(1, min(self.n_components, terms.shape[1], terms.shape[0] - 1)))
        self.svd_ = TruncatedSVD(self.n_components_, random_state=self.random_state).fit(terms)
        self.vocabulary_ = pd.Index(keys, tupleize_cols=False)
        self.embeddings_ = self._embed(terms)
        self._n_features_out = self.n_components_
        return self

    def _embed(self, terms) -> np.ndarray:
        return _normalize_rows(self.svd_.transform(terms).astype(np.float32))

    def transform(self, X):
        """Vectors for (new) descriptions, in the fitted space.

        Parameters
        ----------
        X : iterable of str, or mapping / Series of str
            Descriptions; for a mapping or Series, its values.

        Returns
        -------
        ndarray of shape (n_texts, n_components_), float32
        """
        check_is_fitted(self)
        if isinstance(X, (Mapping, pd.Series, pd.DataFrame)):
            _, texts = _descriptions(X)
        elif isinstance(X, (str, bytes)):
            raise TypeError("X is a single string; pass a list of descriptions, e.g. [text].")
        else:
            texts = list(X)
        return self._embed(self.vectorizer_.transform(texts))

    def entity_vectors(self, column=None):
        """Keys and vectors of the items the embedder was fitted on.

        Parameters
        ----------
        column : None
            Accepted for the embedder protocol; must be None.

        Returns
        -------
        keys : ndarray of shape (n_items,)
        vectors : ndarray of shape (n_items, n_components_), float32
        """
        check_is_fitted(self)
        _check_column(column, None, type(self).__name__)
        return np.asarray(self.vocabulary_), self.embeddings_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.dict = True
        return tags
