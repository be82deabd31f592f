"""EASE (Steck, WWW 2019): the closed-form item-item linear model, L2 chosen on held-out rows."""

from __future__ import annotations

import time
from numbers import Integral, Real

import numpy as np
from scipy.linalg import lapack
from sklearn.utils import check_random_state

from .._compat import Interval, StrOptions, _fit_context
from ..metrics import recall_at_k, top_k
from ._base import _parse_rows, _RecommenderBase, _sparse_rows


# --------------------------------------------------------------------------- EASE
def _ease_coefficients(inputs, l2, dtype=np.float64):
    """EASE weights ``B = I - P diag(1 / diag(P))``, ``P = (XᵀX + l2 I)⁻¹``; zero diagonal.

    Uses a Cholesky factorisation and its inverse (LAPACK potrf/potri): the Gram matrix is
    symmetric positive definite for ``l2 > 0``, and this is about twice as fast as a general
    inverse.
    """
    gram = np.asarray((inputs.T @ inputs).toarray(), dtype=dtype)
    gram[np.diag_indices_from(gram)] += l2
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (gram,))
    factor, info = potrf(gram, lower=False, overwrite_a=True, clean=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: the Gram matrix + l2 I is not positive definite "
                                    f"(LAPACK potrf info {info}); use a larger l2.")  # fmt: skip
    precision, info = potri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inverting the Gram matrix failed (info {info}).")
    # potri fills the upper triangle only (clean=True left zeros below): mirror it, then
    # scale in place, so the fit peaks at two n_items x n_items arrays
    precision += np.triu(precision, 1).T
    precision /= -precision.diagonal().copy()[None, :]
    precision[np.diag_indices_from(precision)] = 0.0
    return precision


def _hide_items(inputs, rows, fraction, random_state):
    """Split the given rows' items: a random ``fraction`` (at least one) hidden, the rest kept.

    Returns the kept part (CSR, same columns) and the hidden column indices of each row.
    """
    kept = inputs[rows].tolil()
    hidden = []
    for i in range(len(rows)):
        columns = np.asarray(kept.rows[i])
        n_hidden = max(1, int(fraction * len(columns)))
        chosen = set(random_state.choice(len(columns), size=n_hidden, replace=False).tolist())
        hidden.append(columns[sorted(chosen)])
        kept.rows[i] = [c for j, c in enumerate(kept.rows[i]) if j not in chosen]
        kept.data[i] = [v for j, v in enumerate(kept.data[i]) if j not in chosen]
    return kept.tocsr(), hidden


def _validation_recall(coef, inputs, targets, k, exclude_seen=True):
    """Recall@k, denominator min(k, n_relevant), of EASE scores ``inputs @ coef``."""
    scores = np.asarray(inputs @ coef, dtype=np.float64)
    if exclude_seen:
        rows, cols = inputs.nonzero()
        scores[rows, cols] = -np.inf
    top, _ = top_k(scores, min(k, scores.shape[1]))
    return recall_at_k([t.tolist() for t in targets], top.tolist(), k=k, normalized=True)


class EASERecommender(_RecommenderBase):
    """EASE: the closed-form item-item linear model with a zero diagonal (Steck, 2019).

    ``B = argmin ||X - XB||² + l2 ||B||²`` subject to ``diag(B) = 0`` is
    ``B = I - P diag(1 / diag(P))`` with ``P = (XᵀX + l2 I)⁻¹``; a row ``x`` scores ``x B``.
    Rows are item lists (a repeated item counts twice) or mappings item -> weight; for the
    usual binary model pass each customer's distinct items.

    When ``l2=None`` the strength is chosen by validation: either on the rows ``X_val`` /
    ``y_val`` passed to ``fit`` (inputs and the items to find), or on a random
    ``validation_fraction`` of the training rows, each with a random ``hide_fraction`` of its
    items hidden and the rest used to rank all other items. The search starts at the middle
    three values of ``l2_grid`` and walks outwards while the best is at the edge of the tried
    range, then (``refine=True``) tries the geometric midpoints next to the best; the value
    with the best Recall@``validation_k`` (denominator ``min(k, hidden)``; ties: the smaller
    λ) is kept in ``l2_``. With held-out training rows the model is then refit on all rows of
    ``X``; with ``X_val`` the best model of the search is kept.

    Parameters
    ----------
    l2 : float > 0, default=None
        L2 strength λ; ``None`` chooses it by validation.
    l2_grid : tuple of float, default=(1, 10, 100, 1000, 10000)
        Values the search may try when ``l2=None`` (positive, any order; sorted).
    refine : bool, default=True
        After the grid, also try the geometric midpoints between the best value and its grid
        neighbours (two more fits): half-decade resolution from a decade grid.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training rows held out for the choice (when ``X_val`` is not given).
    hide_fraction : float in (0, 1), default=0.2
        Share of each held-out row's items hidden (at least one).
    validation_k : int, default=20
        The cut-off of the validation recall.
    max_items : int, default=20000
        The most items the model holds: it is a dense ``n_items²`` matrix (1.6 GB in float32
        at 20,000 items, two such during the fit) and the fit inverts one (``O(n_items³)``).
    too_many_items : {"error", "most_frequent"}, default="error"
        With more than ``max_items`` items in the training rows: ``"error"`` refuses to fit;
        ``"most_frequent"`` models the ``max_items`` items found in the most rows (ties: key
        order) and leaves the others out of ``items_`` (never recommended, ignored in inputs;
        their number is ``n_items_left_out_``).
    random_state : int, RandomState or None, default=None
        Seeds the validation split and the hidden items.
    exclude_seen : bool, default=False
        Never recommend an item already in the row (the users x items protocol).
    dtype : {"float32", "float64"}, default="float32"
        Precision of the fit and of ``coef_``: float32 is about twice as fast, takes half the
        memory, and ranks the same to within rounding.
    verbose : bool, default=False
        Print each tried λ with its validation recall and fit time.

    Attributes
    ----------
    items_ : ndarray
        The items of the training rows.
    coef_ : ndarray of shape (n_items_, n_items_)
        ``B`` (of ``dtype``), zero diagonal.
    l2_ : float
        The L2 strength used.
    l2_scores_ : dict
        When chosen by validation: each tried λ -> validation recall, in the order tried.
    chosen_params_ : dict
        ``{"l2": l2_}`` when λ was chosen by validation, else ``{}``: the settings a refit
        (e.g. ``BlendedRecommender``'s) passes back instead of searching again.
    n_items_left_out_ : int
        Items of the training rows left out by ``too_many_items="most_frequent"`` (0 when
        none were).

    See Also
    --------
    ItemKNNRecommender : sparse item-item neighbours, for more items than EASE can hold.

    Notes
    -----
    Cost: one dense Cholesky inverse (LAPACK potrf + potri) of an ``n_items x n_items``
    matrix per fit, growing as ``n_items³``: on Ta-Feng (12,000 items, 13,000 rows) one fit
    took 40 CPU-seconds in float32 and 63 in float64 on a 2-core machine (166 s / 217 s of
    wall time there, shared with other jobs; about half the CPU time on 2 idle cores); memory
    two such matrices. The search usually needs 5 fits (3, then 2 midpoints). Up to about
    15,000 items this is minutes; above, prefer a fixed ``l2`` once it is known, or
    :class:`ItemKNNRecommender`.

    References
    ----------
    H. Steck. "Embarrassingly Shallow Autoencoders for Sparse Data." WWW 2019.

    Examples
    --------
    >>> from sklearn_basemodel.baselines import EASERecommender
    >>> X = [["a", "b"], ["a", "b"], ["b", "c"], ["a", "b", "c"]]
    >>> model = EASERecommender(l2=1.0, exclude_seen=True).fit(X)
    >>> model.predict([["a"]], k=1).tolist()
    [['b']]
    """

    _parameter_constraints: dict = {
        **_RecommenderBase._parameter_constraints,
        "l2": [Interval(Real, 0, None, closed="neither"), None],
        "l2_grid": ["array-like"],
        "refine": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "hide_fraction": [Interval(Real, 0, 1, closed="neither")],
        "validation_k": [Interval(Integral, 1, None, closed="left")],
        "max_items": [Interval(Integral, 1, None, closed="left")],
        "too_many_items": [StrOptions({"error", "most_frequent"})],
        "random_state": ["random_state"],
        "dtype": [StrOptions({"float32", "float64"})],
        "verbose": ["boolean"],
    }

    def __init__(self, l2=None, *, l2_grid=(1.0, 10.0, 100.0, 1000.0, 10000.0), refine=True,
                 validation_fraction=0.1, hide_fraction=0.2, validation_k=20, max_items=20000,
                 too_many_items="error", random_state=None, exclude_seen=False, dtype="float32",
                 verbose=False):  # fmt: skip
        self.l2 = l2
        self.l2_grid = l2_grid
        self.refine = refine
        self.validation_fraction = validation_fraction
        self.hide_fraction = hide_fraction
        self.validation_k = validation_k
        self.max_items = max_items
        self.too_many_items = too_many_items
        self.random_state = random_state
        self.exclude_seen = exclude_seen
        self.dtype = dtype
        self.verbose = verbose

    def _check_grid(self):
        grid = np.asarray(self.l2_grid, dtype=np.float64).ravel()
        if grid.size == 0 or not np.isfinite(grid).all() or (grid <= 0).any():
            raise ValueError(f"l2_grid must hold finite positive values, got {self.l2_grid!r}.")
        return np.unique(grid)

    def _held_out_rows(self, inputs):
        """Validation split of the training rows: (fit rows, kept inputs, hidden targets)."""
        random_state = check_random_state(self.random_state)
        eligible = np.flatnonzero(np.diff(inputs.indptr) >= 2)
        n_val = min(len(eligible), max(1, round(self.validation_fraction * inputs.shape[0])))
        if n_val == 0 or inputs.shape[0] - n_val < 1:
            raise ValueError(
                "EASERecommender cannot choose l2: it needs at least 2 training rows, one of "
                "them with 2 or more items, to hold out; pass l2= or X_val/y_val."
            )
        held_out = np.sort(random_state.choice(eligible, size=n_val, replace=False))
        fit_rows = np.setdiff1d(np.arange(inputs.shape[0]), held_out)
        kept, hidden = _hide_items(inputs, held_out, self.hide_fraction, random_state)
        return inputs[fit_rows], kept, hidden

    def _given_validation(self, X_val, y_val):
        if X_val is None or y_val is None:
            raise ValueError("Pass both X_val and y_val (inputs and the items to find), or neither.")
        kept = self._input(X_val)
        keys, _, row_of, n_rows = _parse_rows(y_val, "y_val")
        if n_rows != kept.shape[0]:
            raise ValueError(f"X_val has {kept.shape[0]} rows and y_val {n_rows}.")
        targets = _sparse_rows(keys, np.ones(len(keys)), row_of, n_rows, self._index)
        hidden = [targets.indices[targets.indptr[i] : targets.indptr[i + 1]]
                  for i in range(n_rows)]  # fmt: skip
        return kept, hidden

    def _search(self, fit_inputs, kept, hidden, exclude_seen):
        """Try λ values on the validation rows; returns ``({λ: recall}, coef of the best)``.

        The grid is walked from its middle three values outwards while the best value is at
        the edge of the tried range (the validation recall has one peak in log λ in practice),
        then the geometric midpoints next to the best are tried.
        """
        grid = self._check_grid()
        scored = [bool(len(h)) for h in hidden]
        if not any(scored):
            raise ValueError("No validation row has an item to find; cannot choose l2.")
        kept = kept[np.flatnonzero(scored)]
        hidden = [h for h, s in zip(hidden, scored) if s]
        scores, best = {}, {}

        def rank(l2):  # ties go to the smaller (less regularised) λ
            return scores[l2], -l2

        def evaluate(l2):
            l2 = float(l2)
            start = time.perf_counter()
            coef = _ease_coefficients(fit_inputs, l2, dtype=self.dtype)
            scores[l2] = _validation_recall(coef, kept, hidden, self.validation_k, exclude_seen)
            if not best or rank(l2) > rank(best["l2"]):
                best.update(l2=l2, coef=coef)
            if self.verbose:
                print(f"EASE l2={l2:g}: validation recall@{self.validation_k} {scores[l2]:.4f} "
                      f"({time.perf_counter() - start:.1f}s)", flush=True)  # fmt: skip

        low, high = max(len(grid) // 2 - 1, 0), min(len(grid) // 2 + 1, len(grid) - 1)
        for l2 in grid[low : high + 1]:
            evaluate(l2)
        while True:
            top = int(np.flatnonzero(grid == best["l2"])[0])
            if top == low and low > 0:
                low -= 1
                evaluate(grid[low])
            elif top == high and high < len(grid) - 1:
                high += 1
                evaluate(grid[high])
            else:
                break
        if self.refine:
            for other in (top - 1, top + 1):
                if 0 <= other < len(grid):
                    evaluate(np.sqrt(grid[top] * grid[other]))
        return scores, best["coef"]

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, X_val=None, y_val=None):
        """Fit ``B`` on the rows ``X`` (``y`` is ignored), choosing ``l2`` first if needed.

        Parameters
        ----------
        X : sequence of rows
        y : None
            Ignored.
        X_val, y_val : sequences of rows, default=None
            Validation inputs and the items each should find (e.g. 80% and 20% of held-out
            customers' items). Used only when ``l2=None``; every row of ``X`` is then a fit
            row, so the best model of the search is kept as is (no refit). ``exclude_seen``
            applies to their ranking.

        Returns
        -------
        self
        """
        inputs = self._fit_input(X)
        self.n_items_left_out_ = 0
        if len(self.items_) > self.max_items and self.too_many_items == "most_frequent":
            inputs = self._keep_most_frequent(inputs)
        if len(self.items_) > self.max_items:
            gigabytes = 2 * np.dtype(self.dtype).itemsize * len(self.items_) ** 2 / 1e9
            raise ValueError(
                f"EASERecommender: {len(self.items_)} items is more than max_items="
                f"{self.max_items}; the dense fit would need about {gigabytes:.0f} GB and "
                f"O(n_items^3) time. Set too_many_items='most_frequent' (keeps the "
                "max_items most frequent), raise max_items, or use ItemKNNRecommender."
            )
        self.chosen_params_ = {}
        if self.l2 is not None:
            self.l2_ = float(self.l2)
            self.coef_ = _ease_coefficients(inputs, self.l2_, self.dtype)
        elif X_val is None and y_val is None:
            fit_inputs, kept, hidden = self._held_out_rows(inputs)
            self.l2_scores_, _ = self._search(fit_inputs, kept, hidden, exclude_seen=True)
            self.l2_ = max(self.l2_scores_, key=lambda l2: (self.l2_scores_[l2], -l2))
            self.coef_ = _ease_coefficients(inputs, self.l2_, self.dtype)
        else:
            kept, hidden = self._given_validation(X_val, y_val)
            self.l2_scores_, self.coef_ = self._search(inputs, kept, hidden, self.exclude_seen)
            self.l2_ = max(self.l2_scores_, key=lambda l2: (self.l2_scores_[l2], -l2))
        if self.l2 is None:  # what a refit on more rows may reuse instead of searching again
            self.chosen_params_ = {"l2": self.l2_}
        return self

    def _keep_most_frequent(self, inputs):
        """Restrict ``items_`` to the ``max_items`` items in the most rows; the input to them."""
        rows_per_item = np.diff(inputs.tocsc().indptr)
        keep = np.sort(np.argsort(-rows_per_item, kind="stable")[: self.max_items])
        self.n_items_left_out_ = len(self.items_) - len(keep)
        self.items_ = self.items_[keep]
        self._index = {key: i for i, key in enumerate(self.items_.tolist())}
        return inputs[:, keep].tocsr()

    def _block_scores(self, inputs):
        return np.asarray(inputs @ self.coef_)
