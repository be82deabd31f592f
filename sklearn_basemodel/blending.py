"""Classifiers and regressors blended by weights chosen on held-out rows.

Models of one task often err differently: gradient boosting cuts the recency / frequency
columns sharply, a small network reads them smoothly, a network fine-tuned from a pretrained
trunk reads the whole behavioural profile. :class:`BlendedClassifier` and
:class:`BlendedRegressor` fit several candidates on part of the rows, choose on the held-out
rest the weights of their weighted mean, and keep that blend or the best single candidate. The
blend competes with the single candidates only through a cross-fitted score (each half of the
held-out rows scored with the weights chosen on the other half), so choosing its weights does
not flatter it. The workflow chooses every task's model with them.
"""

from __future__ import annotations

import itertools
import time
from numbers import Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ._compat import Interval, _fit_context, num_samples

__all__ = ["BlendedClassifier", "BlendedRegressor", "blend_weights", "choose",
           "cross_fitted_blend", "task_output", "task_score", "weight_grid"]

# Weights are multiples of this step that sum to 1 (11 mixes of two candidates, 66 of three).
STEP = 0.1


def task_score(kind, y, predictions):
    """ROC AUC of a binary task (NaN when the rows hold one class), or minus the mean absolute
    error of an amount: higher is better for both."""
    from sklearn.metrics import mean_absolute_error, roc_auc_score

    y = np.asarray(y, dtype=np.float64)
    if kind == "binary":
        return float(roc_auc_score(y, predictions)) if len(np.unique(y)) > 1 else float("nan")
    return -float(mean_absolute_error(y, predictions))


def weight_grid(n_candidates):
    """Every mix of ``n_candidates`` weights in steps of 0.1 that sum to 1, one per row.

    Examples
    --------
    >>> weight_grid(2)[:3]
    array([[0. , 1. ],
           [0.1, 0.9],
           [0.2, 0.8]])
    >>> len(weight_grid(3))
    66
    """
    steps = round(1 / STEP)
    rows = [c for c in itertools.product(range(steps + 1), repeat=n_candidates) if sum(c) == steps]
    return np.array(rows, dtype=np.float64) / steps


def _stack(predictions):
    return np.column_stack([np.asarray(p, dtype=np.float64) for p in predictions.values()])


def _best_weights(kind, y, stacked):
    grid = weight_grid(stacked.shape[1])
    scores = np.array([task_score(kind, y, stacked @ w) for w in grid])
    uniform = np.full(stacked.shape[1], 1 / stacked.shape[1])
    if np.isnan(scores).all():
        return uniform
    top = np.nanmax(scores)
    # ties (within 1e-4, relative for amounts) go to the mix nearest the plain mean: the least
    # committed choice, not the one a rounding difference happened to favour
    best = np.flatnonzero(scores >= top - 1e-4 * max(1.0, abs(top)))
    return grid[best[np.argmin(((grid[best] - uniform) ** 2).sum(axis=1))]]


def blend_weights(kind, y, predictions):
    """The candidates' weights (a mix of :func:`weight_grid`) whose blend scores best here.

    Ties (scores within 1e-4 of the best, relative for amounts) go to the mix nearest the
    plain mean (the least committed choice); rows that cannot be scored (one class) give the
    plain mean.

    Parameters
    ----------
    kind : {"binary", "amount"}
    y : array-like of shape (n_rows,)
    predictions : dict
        Candidate name -> its predictions (probability of the event, or the amount).

    Returns
    -------
    dict
        Candidate name -> weight; the weights sum to 1.

    Examples
    --------
    The first candidate ranks these rows perfectly, and so does every blend giving it 0.8 or
    more: 0.8 is the one nearest the plain mean.

    >>> y = [0, 0, 1, 1]
    >>> blend_weights("binary", y, {"network": [.1, .2, .3, .4], "booster": [.9, .1, .8, .2]})
    {'network': 0.8, 'booster': 0.2}
    """
    weights = _best_weights(kind, np.asarray(y, np.float64), _stack(predictions))
    return {name: round(float(w), 2) for name, w in zip(predictions, weights)}


def cross_fitted_blend(kind, y, predictions, groups, random_state=None):
    """The blend's predictions on the validation rows, each half of the groups (customers)
    predicted with the weights chosen on the other half.

    Scoring these predictions tells how well the blend, weight choice included, does on rows
    it did not choose its weights on: a score comparable with the single candidates' on the
    same rows.

    Parameters
    ----------
    kind : {"binary", "amount"}
    y : array-like of shape (n_rows,)
    predictions : dict
        Candidate name -> its predictions, each of shape (n_rows,).
    groups : array-like of shape (n_rows,)
        Rows of one group (a customer's cut-offs) stay on one side.
    random_state : int or None
        Seeds the split of the groups into halves.

    Returns
    -------
    ndarray of shape (n_rows,)
        The cross-fitted blend.

    Raises
    ------
    ValueError
        With fewer than two groups (no half to choose weights on).
    """
    y, stacked = np.asarray(y, np.float64), _stack(predictions)
    names, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if len(names) < 2:
        raise ValueError("cross_fitted_blend needs rows of at least two groups (customers).")
    first = np.zeros(len(names), dtype=bool)
    first[np.random.default_rng(random_state).permutation(len(names))[: len(names) // 2]] = True
    side = first[codes]
    out = np.empty(len(y))
    for chosen_on, predicted in ((side, ~side), (~side, side)):
        out[predicted] = stacked[predicted] @ _best_weights(kind, y[chosen_on], stacked[chosen_on])
    return out


def task_output(kind, estimator, X):
    """A candidate's prediction as the blend mixes it: the probability of the positive class
    (``kind="binary"``) or the amount."""
    if kind == "binary":
        return np.asarray(estimator.predict_proba(X), dtype=np.float64)[:, 1]
    return np.asarray(estimator.predict(X), dtype=np.float64)


def choose(kind, y, predictions, groups, random_state=None):
    """Score each candidate and the cross-fitted blend on held-out rows; keep the best.

    The blend is scored only for two candidates or more, on rows of two groups or more
    (halves to cross-fit); ties and unscorable (NaN) scores go to the first candidate given.

    Parameters
    ----------
    kind : {"binary", "amount"}
    y : array-like of shape (n_rows,)
    predictions : dict
        Candidate name -> its predictions on the held-out rows.
    groups : array-like of shape (n_rows,)
        Rows of one group stay on one side of the cross-fitting halves.
    random_state : int or None
        Seeds the halves.

    Returns
    -------
    scores : dict
        Candidate name (and ``"blend"``) -> held-out score (higher is better).
    chosen : str
        The best: ``"blend"`` or a candidate's name.
    weights : dict
        Candidate name -> weight in what is kept (1 and 0s for a single candidate).
    """
    y = np.asarray(y, np.float64)
    scores = {name: task_score(kind, y, p) for name, p in predictions.items()}
    if len(predictions) > 1 and len(np.unique(np.asarray(groups).astype(str))) > 1:
        blended = cross_fitted_blend(kind, y, predictions, groups, random_state)
        scores["blend"] = task_score(kind, y, blended)
    chosen = max(scores, key=lambda name: -np.inf if np.isnan(scores[name]) else scores[name])
    if chosen == "blend":
        return scores, chosen, blend_weights(kind, y, predictions)
    return scores, chosen, {name: float(name == chosen) for name in predictions}


# Candidates a blend weighs at most: 3,003 mixes of 6 are scored per choice (seconds).
_MAX_CANDIDATES = 6


def _rows(X, positions):
    """The rows of X at ``positions``: of a DataFrame, an array, a sparse matrix or a list
    (anything else array-like is read as an array)."""
    if hasattr(X, "iloc"):
        return X.iloc[positions]
    if sp.issparse(X):
        return X.tocsr()[positions]
    if isinstance(X, (list, tuple)):
        return [X[i] for i in positions]
    if not hasattr(X, "__getitem__") or not hasattr(X, "shape"):
        X = np.asarray(X)
    return X[positions]


class _BlendedPredictor(BaseEstimator):
    """What :class:`BlendedClassifier` and :class:`BlendedRegressor` share; ``_kind`` says how
    a prediction is scored ("binary": ROC AUC, "amount": minus the mean absolute error)."""

    _kind = "binary"
    _parameter_constraints: dict = {
        "candidates": [list],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "refit": ["boolean", list],
        "time_budget": [Interval(Real, 0, None, closed="neither"), None],
        "random_state": ["random_state"],
    }

    def __init__(self, candidates, *, validation_fraction=0.2, refit=True, time_budget=None,
                 random_state=None):  # fmt: skip
        self.candidates = candidates
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.time_budget = time_budget
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # the candidates read X and check it: it may be what every one of them accepts
        candidates = [get_tags(estimator).input_tags for _, estimator in self._pairs()]
        tags.input_tags.sparse = bool(candidates) and all(t.sparse for t in candidates)
        tags.input_tags.allow_nan = bool(candidates) and all(t.allow_nan for t in candidates)
        tags.target_tags.required = True
        return tags

    def _pairs(self):
        """The (name, estimator) pairs given, skipping malformed entries (fit names them)."""
        return [pair for pair in (self.candidates or [])
                if isinstance(pair, tuple) and len(pair) == 2]  # fmt: skip

    def _check_candidates(self):
        names = [pair[0] if isinstance(pair, tuple) and len(pair) == 2 else None
                 for pair in self.candidates]  # fmt: skip
        if not self.candidates or None in names:
            raise ValueError("candidates must be a non-empty list of (name, estimator) pairs.")
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names must be unique, got {names}.")
        if "blend" in names:
            raise ValueError('"blend" names the weighted mean; give the candidate another name.')
        if isinstance(self.refit, list) and set(self.refit) - set(names):
            raise ValueError(f"refit names {sorted(set(self.refit) - set(names))}, which are "
                             f"not candidates; the candidates are {names}.")  # fmt: skip
        if len(names) > _MAX_CANDIDATES:
            raise ValueError(f"at most {_MAX_CANDIDATES} candidates: the weight grid grows "
                             f"combinatorially ({len(weight_grid(_MAX_CANDIDATES)):,} mixes "
                             f"of {_MAX_CANDIDATES}); got {len(names)}.")  # fmt: skip

    def _split(self, n_rows, groups, seed):
        """Training and held-out row positions; a group's rows stay on one side."""
        rng = np.random.default_rng(seed)
        codes = (np.arange(n_rows) if groups is None else
                 np.unique(np.asarray(groups).astype(str), return_inverse=True)[1])  # fmt: skip
        n_groups = int(codes.max()) + 1 if n_rows else 0
        n_held = int(round(self.validation_fraction * n_groups))
        if n_held < 2 or n_groups - n_held < 1:
            raise ValueError(
                f"{n_groups} {'rows' if groups is None else 'groups'} (n_samples={n_rows}) "
                "cannot be split into training rows and at least 2 held-out ones with "
                f"validation_fraction={self.validation_fraction}; pass more rows."
            )
        held = np.zeros(n_groups, dtype=bool)
        held[rng.permutation(n_groups)[:n_held]] = True
        return np.flatnonzero(~held[codes]), np.flatnonzero(held[codes])

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, groups=None):
        """Fit the candidates on the training rows, choose on the held-out rows, refit.

        Parameters
        ----------
        X : rows any candidate takes (an array, a DataFrame ...)
        y : array-like of shape (n_rows,)
        groups : array-like of shape (n_rows,), default=None
            Rows of one group (e.g. one customer's cut-offs) stay on one side of the split
            and of the cross-fitting halves. None: every row is its own group.

        Returns
        -------
        self
        """
        self._check_candidates()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")  # fmt: skip
        n_rows = num_samples(X)
        y = self._check_target(y)
        if len(y) != n_rows:
            raise ValueError(f"X has {n_rows} rows but y has {len(y)}; pass one per row.")
        if groups is not None and len(groups) != n_rows:
            raise ValueError(f"groups has {len(groups)} entries for {n_rows} rows.")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        train, held = self._split(n_rows, groups, seed)
        X_train, y_train = _rows(X, train), y[train]
        X_held, y_held = _rows(X, held), y[held]
        fitted, predictions, self.skipped_ = {}, {}, []
        start = time.perf_counter()
        for name, estimator in self.candidates:
            spent = time.perf_counter() - start
            if fitted and self.time_budget is not None and spent > self.time_budget:
                self.skipped_.append(name)  # the budget is spent: the first always runs
                continue
            fitted[name] = clone(estimator).fit(X_train, self._fit_target(y_train))
            predictions[name] = task_output(self._kind, fitted[name], X_held)
        held_groups = held if groups is None else np.asarray(groups)[held]
        self.validation_scores_, self.chosen_, self.weights_ = choose(
            self._kind, y_held, predictions, held_groups, seed)  # fmt: skip
        given = dict(self.candidates)
        refitted = self.refit if isinstance(self.refit, list) else list(given) if self.refit else []
        for name in self._kept():
            if name in refitted:
                fitted[name] = clone(given[name]).fit(X, self._fit_target(y))
        self.candidates_ = fitted
        first = fitted[self._kept()[0]]
        if hasattr(first, "n_features_in_"):
            self.n_features_in_ = first.n_features_in_
        return self

    def _kept(self):
        """The names of the candidates the prediction mixes (weight above 0)."""
        return [name for name, weight in self.weights_.items() if weight > 0]

    def _fit_target(self, y):
        return y

    def _blend(self, X):
        check_is_fitted(self, "candidates_")
        # the kept candidates may accept NaN where another candidate did not: answer as the
        # tags say, whichever were kept
        if (isinstance(X, np.ndarray) and X.dtype.kind in "fc" and not np.isfinite(X).all()
                and not get_tags(self).input_tags.allow_nan):
            raise ValueError("Input X contains NaN or infinity, which not every candidate "
                             "accepts.")  # fmt: skip
        return sum(self.weights_[name] * task_output(self._kind, self.candidates_[name], X)
                   for name in self._kept())  # fmt: skip


class BlendedClassifier(ClassifierMixin, _BlendedPredictor):
    """Binary classifiers and their weighted mean, the best kept on held-out rows.

    ``fit`` holds out ``validation_fraction`` of the rows (of the groups, when ``groups`` is
    given), fits every candidate on the rest, and scores on the held-out rows (ROC AUC) each
    candidate and the blend: the weighted mean of their probabilities, weights on a grid of
    steps of 0.1 (:func:`weight_grid`), scored cross-fitted (:func:`cross_fitted_blend`). The
    best of them is kept (ties: the first candidate given), and refitted on every row.

    Parameters
    ----------
    candidates : list of (name, estimator)
        At most 6 binary classifiers with ``predict_proba``, e.g. a network fine-tuned
        from a pretrained trunk (:func:`~sklearn_basemodel.recipes.fine_tuner`), a small
        network on the RFM columns (:func:`~sklearn_basemodel.recipes.rfm_network`), gradient
        boosting on them.
    validation_fraction : float, default=0.2
        Share of the rows (groups) held out to choose.
    refit : bool or list of str, default=True
        Refit the kept candidates on every row; False keeps their fit on the training part
        (half the cost when the candidates are networks); a list refits only the kept
        candidates it names (e.g. the cheap ones).
    time_budget : float, default=None
        Seconds for fitting the candidates on the training part, in the order given: those
        whose fit would start after the budget is spent are skipped (``skipped_``; the first
        always runs). The refit is not counted. None: no limit.
    random_state : int, RandomState instance or None, default=None
        Seeds the held-out split and the cross-fitting halves (the candidates keep their own).

    Attributes
    ----------
    chosen_ : str
        ``"blend"`` or the name of the single candidate kept.
    weights_ : dict
        Candidate name -> weight in the prediction (1 for a single kept candidate).
    validation_scores_ : dict
        ROC AUC on the held-out rows of every candidate and of the blend (cross-fitted).
    candidates_ : dict
        Name -> fitted estimator, every candidate fitted: those of weight 0 (not used by the
        prediction) and those not refitted keep their fit on the training part.
    skipped_ : list of str
        The candidates ``time_budget`` left unfitted.
    classes_ : ndarray of shape (2,)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn_basemodel.blending import BlendedClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(600, 2))
    >>> y = (X[:, 0] + np.abs(X[:, 1]) + rng.normal(size=600) > 1).astype(int)
    >>> model = BlendedClassifier([("line", LogisticRegression()),
    ...                            ("trees", HistGradientBoostingClassifier(max_depth=2))],
    ...                           random_state=0).fit(X, y)
    >>> sorted(model.validation_scores_)
    ['blend', 'line', 'trees']
    >>> model.predict_proba(X[:2]).shape
    (2, 2)
    """

    _kind = "binary"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _check_target(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            found = f"{len(self.classes_)} classes ({self.classes_[:5].tolist()})"
            raise ValueError(f"Only binary classification is supported: y has {found}.")
        return (y == self.classes_[1]).astype(np.float64)

    def _fit_target(self, y):
        return self.classes_[y.astype(np.int64)]

    def predict_proba(self, X):
        """The weighted mean of the kept candidates' probabilities.

        Returns
        -------
        ndarray of shape (n_rows, 2)
        """
        positive = self._blend(X)
        return np.column_stack([1 - positive, positive])

    def predict(self, X):
        """The class of probability above one half.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        positive = self._blend(X)
        return self.classes_[(positive > 0.5).astype(np.int64)]


class BlendedRegressor(RegressorMixin, _BlendedPredictor):
    """Regressors and their weighted mean, the best kept on held-out rows.

    As :class:`BlendedClassifier`, with the mean absolute error as the held-out score (amounts:
    spend, counts) and the weighted mean of the predictions.

    Parameters
    ----------
    candidates : list of (name, estimator)
        Regressors.
    validation_fraction : float, default=0.2
    refit : bool or list of str, default=True
    time_budget : float, default=None
    random_state : int, RandomState instance or None, default=None

    Attributes
    ----------
    chosen_ : str
    weights_ : dict
    validation_scores_ : dict
        Minus the mean absolute error on the held-out rows (higher is better).
    candidates_ : dict
    skipped_ : list of str

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyRegressor
    >>> from sklearn.linear_model import LinearRegression
    >>> from sklearn_basemodel.blending import BlendedRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 1))
    >>> y = 3 * X[:, 0] + rng.normal(size=300)
    >>> model = BlendedRegressor([("mean", DummyRegressor()), ("line", LinearRegression())],
    ...                          random_state=0).fit(X, y)
    >>> model.chosen_
    'line'
    """

    _kind = "amount"

    def _check_target(self, y):
        y = column_or_1d(y, warn=True).astype(np.float64)
        if not np.isfinite(y).all():
            raise ValueError("y must be finite (one amount per row): it holds NaN or inf.")
        return y

    def predict(self, X):
        """The weighted mean of the kept candidates' predictions.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._blend(X)
