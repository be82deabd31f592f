"""Hashed random entity vectors (ID hashing): an embedder that needs no co-occurrence."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from .._compat import IntegerInterval, _fit_context
from .._hashing import hashed_vectors, seed_from_random_state
from ..rows import flatten_rows
from ._base import check_column, input_column_name

__all__ = ["RandomVectorEmbedder"]


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
        "n_components": [IntegerInterval(1, None, closed="left")],
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
        self.columns_ = [input_column_name(X)]
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
        check_column(column, self.columns_[0], type(self).__name__)
        return np.asarray(self.vocabulary_), self.embeddings_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags
