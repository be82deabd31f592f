"""Popularity and GP-TopFreq (the customer's own most frequent items)."""

from __future__ import annotations

from numbers import Integral

import numpy as np

from .._compat import Interval, StrOptions, _fit_context
from ._base import _parse_rows, _RecommenderBase, _sparse_rows


# --------------------------------------------------------------------------- popularity
class PopularityRecommender(_RecommenderBase):
    """Recommend the globally most frequent items to everyone.

    Parameters
    ----------
    source : {"history", "target"}, default="history"
        Count the items of the rows of ``X`` (``"history"``), or of the target rows ``y``
        passed to ``fit`` (``"target"``, e.g. next baskets).
    window : int, default=None
        Count only the last ``window`` rows (useful when rows are baskets in time order);
        all rows by default.
    exclude_seen : bool, default=False
        Never recommend an item already in the row.

    Attributes
    ----------
    items_ : ndarray
        The known items (of ``X`` and ``y``), sorted when they sort.
    popularity_ : ndarray of shape (n_items_,)
        Summed weights (counts for plain rows) of each item over the counted rows.

    See Also
    --------
    PersonalFrequencyRecommender : the customer's own items first.

    Examples
    --------
    >>> from sklearn_basemodel.baselines import PopularityRecommender
    >>> model = PopularityRecommender().fit([["a", "b"], ["b"], ["b", "c"]])
    >>> model.predict([["a"]], k=2).tolist()
    [['b', 'a']]
    """

    _parameter_constraints: dict = {
        **_RecommenderBase._parameter_constraints,
        "source": [StrOptions({"history", "target"})],
        "window": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, *, source="history", window=None, exclude_seen=False):
        self.source = source
        self.window = window
        self.exclude_seen = exclude_seen

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Count item frequencies.

        Parameters
        ----------
        X : sequence of rows
        y : sequence of rows, default=None
            Target rows; required with ``source="target"``.

        Returns
        -------
        self
        """
        history = _parse_rows(X)
        target = _parse_rows(y, "y") if y is not None else None
        if self.source == "target" and target is None:
            raise ValueError('source="target" counts the target rows: pass y to fit.')
        self._set_vocabulary(history[0] + (target[0] if target is not None else []))
        counts = _sparse_rows(*(target if self.source == "target" else history), self._index)
        if self.window is not None:
            counts = counts[-self.window :]
        self.popularity_ = np.asarray(counts.sum(axis=0)).ravel()
        return self

    def _block_scores(self, inputs):
        return np.tile(self.popularity_, (inputs.shape[0], 1))


# --------------------------------------------------------------------------- GP-TopFreq
def _popularity_tie_break(popularity):
    """Per item, a value in (0, 1) that decreases with popularity rank (ties: item order)."""
    rank = np.empty(len(popularity))
    rank[np.argsort(-popularity, kind="stable")] = np.arange(len(popularity))
    return 1.0 - (rank + 1.0) / (len(popularity) + 1.0)


def _smallest_gaps(inputs):
    """Per row, the smallest gap between distinct values of {0} and the row's weights."""
    gaps = np.ones(inputs.shape[0])
    for row in range(inputs.shape[0]):
        values = np.unique(np.r_[0.0, inputs.data[inputs.indptr[row] : inputs.indptr[row + 1]]])
        if len(values) > 1:
            gaps[row] = np.diff(values).min()
    return gaps


class PersonalFrequencyRecommender(_RecommenderBase):
    """GP-TopFreq: each customer's own most frequent items, then the globally popular ones.

    A row's items rank by their weight in the row (their count for plain rows, e.g. the number
    of the customer's baskets holding them when baskets are flattened); ties, and all items
    not in the row, by global popularity over the training rows. This is the "GP-TopFreq"
    baseline of the next-basket reality check (Li et al., 2023), the one to beat on grocery data.

    Parameters
    ----------
    exclude_seen : bool, default=False
        Never recommend an item already in the row (the ranking is then plain popularity).

    Attributes
    ----------
    items_ : ndarray
        The items of the training rows, sorted when they sort.
    popularity_ : ndarray of shape (n_items_,)
        Summed weights of each item over the training rows.

    See Also
    --------
    PopularityRecommender : popularity alone.
    TIFUKNNRecommender : time-decayed personal frequency blended with neighbours'.

    Notes
    -----
    ``predict_scores`` returns the row's weight plus ``gap * t`` where ``t`` in (0, 1) falls with
    the item's popularity rank and ``gap`` is the row's smallest gap between distinct weights
    (and zero): the popularity term orders ties without ever overtaking a larger own weight.

    References
    ----------
    M. Li, S. Jullien, M. Ariannezhad, M. de Rijke. "A Next Basket Recommendation Reality
    Check." ACM TOIS 41(4), 2023.

    Examples
    --------
    >>> from sklearn_basemodel.baselines import PersonalFrequencyRecommender
    >>> model = PersonalFrequencyRecommender().fit([["a", "b"], ["b"], ["b", "c"], ["c"]])
    >>> model.predict([["a", "a", "c"]], k=3).tolist()
    [['a', 'c', 'b']]
    """

    def __init__(self, *, exclude_seen=False):
        self.exclude_seen = exclude_seen

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the global popularity from the training rows ``X`` (``y`` is ignored).

        Returns
        -------
        self
        """
        self.popularity_ = np.asarray(self._fit_input(X).sum(axis=0)).ravel()
        return self

    def _block_scores(self, inputs):
        tie_break = _popularity_tie_break(self.popularity_)
        gaps = _smallest_gaps(inputs)
        return inputs.toarray() + gaps[:, None] * tie_break[None, :]
