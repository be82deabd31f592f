"""Item-item cosine k-nearest neighbours."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from .._compat import Interval, _fit_context
from ._base import _RecommenderBase


# --------------------------------------------------------------------------- item kNN
def _keep_top_per_row(matrix, k):
    """CSR with only the ``k`` largest entries of each row (ties: lower column first)."""
    matrix = matrix.tocsr()
    keep = np.zeros(matrix.nnz, dtype=bool)
    for row in range(matrix.shape[0]):
        start, stop = matrix.indptr[row], matrix.indptr[row + 1]
        if stop - start <= k:
            keep[start:stop] = True
            continue
        order = np.lexsort((matrix.indices[start:stop], -matrix.data[start:stop]))
        keep[start + order[:k]] = True
    pruned = sp.csr_matrix((np.where(keep, matrix.data, 0.0), matrix.indices, matrix.indptr),
                           shape=matrix.shape)  # fmt: skip
    pruned.eliminate_zeros()
    return pruned


class ItemKNNRecommender(_RecommenderBase):
    """Item-based k-nearest neighbours with shrunk cosine similarity.

    ``s(i, j) = x_iᵀ x_j / (||x_i|| ||x_j|| + shrink)`` over the item columns of the training
    rows (weights honoured); each item keeps its ``n_neighbors`` most similar items, and a row
    ``x`` scores item ``j`` by ``sum_i x_i s(i, j)`` over the items ``i`` that are among ``j``'s
    neighbours (Sarwar et al., 2001; Deshpande & Karypis, 2004).

    Parameters
    ----------
    n_neighbors : int, default=100
        Neighbours kept per item.
    shrink : float >= 0, default=10.0
        Added to the cosine's denominator: damps similarities supported by few rows.
    exclude_seen : bool, default=False
        Never recommend an item already in the row.

    Attributes
    ----------
    items_ : ndarray
        The items of the training rows.
    similarity_ : scipy.sparse.csr_matrix of shape (n_items_, n_items_)
        Entry ``(i, j)``: ``s(i, j)`` when ``i`` is one of ``j``'s neighbours, else 0; zero
        diagonal. Before the pruning ``s`` is symmetric.

    See Also
    --------
    EASERecommender : the learned (dense) item-item model.

    Examples
    --------
    >>> from sklearn_basemodel.baselines import ItemKNNRecommender
    >>> X = [["a", "b"], ["a", "b"], ["b", "c"]]
    >>> model = ItemKNNRecommender(shrink=0.0, exclude_seen=True).fit(X)
    >>> model.predict([["a"]], k=1).tolist()
    [['b']]
    """

    _parameter_constraints: dict = {
        **_RecommenderBase._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "shrink": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(self, n_neighbors=100, shrink=10.0, *, exclude_seen=False):
        self.n_neighbors = n_neighbors
        self.shrink = shrink
        self.exclude_seen = exclude_seen

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Compute the item-item similarities of the training rows (``y`` is ignored).

        Returns
        -------
        self
        """
        inputs = self._fit_input(X)
        cooccurrence = (inputs.T @ inputs).tocoo()
        norms = np.sqrt(np.asarray(inputs.multiply(inputs).sum(axis=0)).ravel())
        off = cooccurrence.row != cooccurrence.col
        rows, cols = cooccurrence.row[off], cooccurrence.col[off]
        values = cooccurrence.data[off] / (norms[rows] * norms[cols] + self.shrink)
        # symmetric, so row j lists j's neighbours; prune rows, then transpose to columns
        similarity = sp.csr_matrix((values, (cols, rows)), shape=cooccurrence.shape)
        self.similarity_ = _keep_top_per_row(similarity, self.n_neighbors).T.tocsr()
        return self

    def _block_scores(self, inputs):
        return (inputs @ self.similarity_).toarray()
