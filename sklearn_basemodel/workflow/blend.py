"""A task's blend: the weighted mean of its candidates' predictions.

The candidates of a task err differently: gradient boosting cuts the RFM columns sharply, a
small network reads them smoothly, the fine-tuned network reads the whole behavioural profile
through the pretrained trunk. Their weighted mean often ranks customers better than any one of
them. The weights are chosen on the validation customers, and the blend competes with the
single candidates on those same customers only through a cross-fitted score (each half of the
customers scored with the weights chosen on the other half), so choosing the weights does not
flatter it.
"""

from __future__ import annotations

import itertools
from contextlib import nullcontext

import numpy as np

from .threads import one_openmp_thread

__all__ = ["AmountBlend", "TaskBlend", "blend_weights", "cross_fitted_blend", "task_score",
           "weight_grid"]

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


class _Blend:
    def __init__(self, models, weights, single_threaded=()):
        if set(weights) - set(models):
            raise ValueError(f"weights name candidates without a model: "
                             f"{sorted(set(weights) - set(models))}.")  # fmt: skip
        values = np.array(list(weights.values()), dtype=np.float64)
        if (values < 0).any() or not np.isclose(values.sum(), 1.0):
            raise ValueError(f"weights must be >= 0 and sum to 1, got {weights!r}.")
        self.weights = {name: float(w) for name, w in weights.items() if w > 0}
        self.models = {name: models[name] for name in self.weights}
        self.single_threaded = tuple(single_threaded)

    def _mean(self, method, rows):
        total = 0.0
        for name, model in self.models.items():
            limit = one_openmp_thread() if name in self.single_threaded else nullcontext()
            with limit:
                total = total + self.weights[name] * np.asarray(getattr(model, method)(rows),
                                                                dtype=np.float64)  # fmt: skip
        return total

    def __repr__(self):
        mix = ", ".join(f"{name}: {w:g}" for name, w in self.weights.items())
        return f"{type(self).__name__}({{{mix}}})"


class TaskBlend(_Blend):
    """The weighted mean of a binary task's fitted candidates.

    Parameters
    ----------
    models : dict
        Candidate name -> fitted classifier.
    weights : dict
        Candidate name -> weight; the weights sum to 1. Candidates of weight 0 are dropped.
    single_threaded : tuple of str, default=()
        Candidates that predict under one OpenMP thread (gradient boosting: its idle threads
        would fight torch's for the cores).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X, y = np.zeros((4, 1)), np.array([0, 1, 1, 1])
    >>> prior = DummyClassifier(strategy="prior").fit(X, y)
    >>> zero = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    >>> TaskBlend({"a": prior, "b": zero}, {"a": 0.5, "b": 0.5}).predict_proba(X[:1])
    array([[0.625, 0.375]])
    """

    def predict_proba(self, rows):
        """Probabilities of the two classes: the weighted mean of the candidates'.

        Returns
        -------
        ndarray of shape (n_rows, 2)
        """
        return self._mean("predict_proba", rows)


class AmountBlend(_Blend):
    """The weighted mean of an amount task's fitted regressors (parameters as
    :class:`TaskBlend`)."""

    def predict(self, rows):
        """The weighted mean of the candidates' predicted amounts.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._mean("predict", rows)
