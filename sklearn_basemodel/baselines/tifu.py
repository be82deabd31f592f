"""TIFU-KNN (Hu et al., SIGIR 2020): decayed personal frequencies blended with neighbours'."""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from .._compat import Interval, _fit_context
from ._base import _check_sequence, _is_missing, _RecommenderBase, _sparse_rows


# --------------------------------------------------------------------------- TIFU-KNN
def _basket_rows(X, name="X"):
    """Rows of baskets -> flat (keys, weights, row ids) of the TIFU-KNN personal vectors.

    ``weights`` are filled later from the basket positions: here each entry carries its
    basket's position in the row and the row's number of baskets.
    """
    rows = _check_sequence(X, name)
    keys, row_of, basket_of, n_baskets = [], [], [], []
    for position, row in enumerate(rows):
        if _is_missing(row):
            continue
        if isinstance(row, (str, bytes, Mapping)):
            raise TypeError(
                f"{name}[{position}]: a TIFU-KNN row is a time-ordered list of baskets, each a "
                f"list of item keys; got {type(row).__name__}."
            )
        baskets = list(row)
        for b, basket in enumerate(baskets):
            if isinstance(basket, (str, bytes)) or not hasattr(basket, "__iter__"):
                raise TypeError(
                    f"{name}[{position}][{b}] is {basket!r}; a TIFU-KNN row is a list of "
                    "baskets, each a list of item keys (e.g. [[1, 2], [2, 3]]), not a flat "
                    "list of items."
                )
            distinct = list(dict.fromkeys(basket))
            keys.extend(distinct)
            row_of.extend([position] * len(distinct))
            basket_of.extend([b] * len(distinct))
            n_baskets.extend([len(baskets)] * len(distinct))
    return (keys, np.asarray(row_of, dtype=np.int64), np.asarray(basket_of, dtype=np.int64),
            np.asarray(n_baskets, dtype=np.int64), len(rows))  # fmt: skip


def _tifu_weights(basket_of, n_baskets, n_groups, within_decay, group_decay):
    """Weight of each (row, basket) entry in the TIFU-KNN personal vector.

    A row's ``n`` baskets are cut into ``G = min(n_groups, n)`` groups of consecutive baskets,
    as equal as possible (the older groups take the extra baskets). Inside a group of size
    ``s`` the basket at position ``j`` (0 = oldest) weighs ``within_decay ** (s - 1 - j) / s``;
    group ``g`` (0 = oldest) weighs ``group_decay ** (G - 1 - g) / G``.
    """
    groups = np.minimum(n_groups, n_baskets)
    base, extra = n_baskets // groups, n_baskets % groups
    # the first `extra` groups hold base + 1 baskets, the others base
    big_span = extra * (base + 1)
    in_big = basket_of < big_span
    group = np.where(in_big, basket_of // (base + 1),
                     extra + (basket_of - big_span) // np.maximum(base, 1))  # fmt: skip
    size = np.where(in_big, base + 1, base)
    start = np.where(in_big, group * (base + 1), big_span + (group - extra) * base)
    position = basket_of - start
    within = within_decay ** (size - 1 - position) / size
    return within * group_decay ** (groups - 1 - group) / groups


def _l2_normalized(matrix):
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    return sp.diags(scale) @ matrix


class TIFUKNNRecommender(_RecommenderBase):
    """TIFU-KNN: time-decayed personal item frequency blended with the nearest customers'.

    **Rows are baskets**: unlike the other recommenders here, each row of ``X`` is one
    customer's time-ordered list of baskets (oldest first), each basket an iterable of item
    keys, e.g. ``[[1, 2], [2, 3, 4]]``.

    A customer's *personal vector* (Hu et al., 2020): the baskets are cut into
    ``G = min(group_size, n_baskets)`` groups of consecutive baskets; inside a group the
    baskets' item indicators are averaged with weights ``within_decay ** (baskets after it in
    the group)``; the group vectors are averaged with weights ``group_decay ** (groups after
    it)``. The score of a row is ``alpha * own + (1 - alpha) * mean of the n_neighbors
    training customers' vectors most cosine-similar to own``.

    Parameters
    ----------
    n_neighbors : int, default=300
        Neighbours among the training rows; 0 scores by the personal vector alone.
    within_decay : float in (0, 1], default=0.9
        Decay per basket inside a group (``r_b``).
    group_decay : float in (0, 1], default=0.7
        Decay per group (``r_g``).
    group_size : int, default=7
        The number of groups the history is cut into (``m``; as in the authors' code, where
        this parameter is called the group size).
    alpha : float in [0, 1], default=0.7
        Weight of the customer's own vector against the neighbours'.
    exclude_seen : bool, default=False
        Never recommend an item already bought.

    Attributes
    ----------
    items_ : ndarray
        The items of the training baskets.
    user_vectors_ : scipy.sparse.csr_matrix of shape (n_train_rows, n_items_)
        Personal vectors of the training rows (the neighbour pool).

    See Also
    --------
    PersonalFrequencyRecommender : undecayed personal frequency, no neighbours.

    Notes
    -----
    A training row predicted again is its own nearest neighbour (similarity 1), as in the
    authors' evaluation, where every customer's history is in the pool. Neighbours are the
    ``n_neighbors`` most similar rows even when some similarities are 0.

    References
    ----------
    H. Hu, X. He, J. Gao, Z.-L. Zhang. "Modeling Personalized Item Frequency Information for
    Next-basket Recommendation." SIGIR 2020.

    Examples
    --------
    >>> from sklearn_basemodel.baselines import TIFUKNNRecommender
    >>> histories = [[["milk"], ["milk", "bread"]], [["bread", "jam"]], [["milk", "eggs"]]]
    >>> model = TIFUKNNRecommender(n_neighbors=1).fit(histories)
    >>> model.predict([[["milk"]]], k=2).tolist()
    [['milk', 'bread']]
    """

    _parameter_constraints: dict = {
        **_RecommenderBase._parameter_constraints,
        "n_neighbors": [Interval(Integral, 0, None, closed="left")],
        "within_decay": [Interval(Real, 0, 1, closed="right")],
        "group_decay": [Interval(Real, 0, 1, closed="right")],
        "group_size": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, n_neighbors=300, within_decay=0.9, group_decay=0.7, group_size=7,
                 alpha=0.7, *, exclude_seen=False):  # fmt: skip
        self.n_neighbors = n_neighbors
        self.within_decay = within_decay
        self.group_decay = group_decay
        self.group_size = group_size
        self.alpha = alpha
        self.exclude_seen = exclude_seen

    def _personal_vectors(self, parsed):
        keys, row_of, basket_of, n_baskets, n_rows = parsed
        weights = _tifu_weights(basket_of, n_baskets, self.group_size, self.within_decay,
                                self.group_decay)  # fmt: skip
        return _sparse_rows(keys, weights, row_of, n_rows, self._index)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Build the personal vectors of the training rows (``y`` is ignored).

        Parameters
        ----------
        X : sequence of rows, each a time-ordered list of baskets

        Returns
        -------
        self
        """
        parsed = _basket_rows(X)
        self._set_vocabulary(parsed[0])
        self.user_vectors_ = self._personal_vectors(parsed)
        return self

    def _input(self, X):
        return self._personal_vectors(_basket_rows(X))

    def _block_scores(self, inputs):
        own = inputs.toarray()
        n_pool = self.user_vectors_.shape[0]
        k = min(self.n_neighbors, n_pool)
        if k == 0 or self.alpha == 1:
            return self.alpha * own
        similarity = (_l2_normalized(inputs) @ _l2_normalized(self.user_vectors_).T).toarray()
        if k < n_pool:
            neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        else:
            neighbours = np.broadcast_to(np.arange(n_pool), (inputs.shape[0], n_pool))
        rows = np.repeat(np.arange(inputs.shape[0]), k)
        averaging = sp.csr_matrix((np.full(rows.size, 1.0 / k), (rows, neighbours.ravel())),
                                  shape=(inputs.shape[0], n_pool))  # fmt: skip
        return self.alpha * own + (1.0 - self.alpha) * (averaging @ self.user_vectors_).toarray()
