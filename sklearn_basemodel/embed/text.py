"""Entity vectors from item descriptions: TF-IDF followed by truncated SVD."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    clone,
)
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.utils.validation import check_is_fitted

from .._compat import HasMethods, IntegerInterval, _fit_context
from ._base import check_column, normalize_rows

__all__ = ["TextEmbedder"]


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
        "n_components": [IntegerInterval(1, None, closed="left")],
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
        if terms.shape[1] < 2:  # one term: nothing to reduce (and TruncatedSVD needs two)
            self.n_components_ = terms.shape[1]
            self.svd_ = None
        else:
            self.svd_ = TruncatedSVD(self.n_components_, random_state=self.random_state)
            self.svd_.fit(terms)
        self.vocabulary_ = pd.Index(keys, tupleize_cols=False)
        self.embeddings_ = self._embed(terms)
        self._n_features_out = self.n_components_
        return self

    def _embed(self, terms) -> np.ndarray:
        if self.svd_ is None:
            return normalize_rows(terms.toarray().astype(np.float32))
        return normalize_rows(self.svd_.transform(terms).astype(np.float32))

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
        check_column(column, None, type(self).__name__)
        return np.asarray(self.vocabulary_), self.embeddings_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.dict = True
        return tags
