"""A task's blend: the weighted mean of the fine-tuned network and gradient boosting on RFM.

The two candidates of a task err differently: gradient boosting reads only the RFM columns and
cuts them sharply, the network reads the whole behavioural profile through the pretrained
trunk. Their weighted mean often ranks customers better than either. The weight is chosen on
the validation customers, and the blend competes with the two single models on those same
customers only through a cross-fitted score (each half of the customers scored with the weight
chosen on the other half), so choosing the weight does not flatter it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["AmountBlend", "TaskBlend", "blend_weight", "cross_fitted_blend", "task_score"]

# The network's weight: 0 is gradient boosting alone, 1 the network alone.
WEIGHTS = np.round(np.linspace(0.0, 1.0, 11), 2)


def task_score(kind, y, predictions):
    """ROC AUC of a binary task (NaN when the rows hold one class), or minus the mean absolute
    error of an amount: higher is better for both."""
    from sklearn.metrics import mean_absolute_error, roc_auc_score

    y = np.asarray(y, dtype=np.float64)
    if kind == "binary":
        return float(roc_auc_score(y, predictions)) if len(np.unique(y)) > 1 else float("nan")
    return -float(mean_absolute_error(y, predictions))


def blend_weight(kind, y, network, booster):
    """The network's weight in :data:`WEIGHTS` whose blend scores best on these rows.

    Ties go to the weight nearest 0.5 (the plain mean, the least committed choice); rows that
    cannot be scored (one class) give 0.5.

    Parameters
    ----------
    kind : {"binary", "amount"}
    y : array-like of shape (n_rows,)
    network, booster : array-like of shape (n_rows,)
        Each candidate's prediction (probability of the event, or the amount).

    Returns
    -------
    float

    Examples
    --------
    The network ranks these rows perfectly, and so does every blend giving it 0.8 or more:
    0.8 is the one nearest the plain mean.

    >>> y = [0, 0, 1, 1]
    >>> blend_weight("binary", y, network=[.1, .2, .3, .4], booster=[.9, .1, .8, .2])
    0.8
    """
    network, booster = np.asarray(network, np.float64), np.asarray(booster, np.float64)
    scores = np.array([task_score(kind, y, w * network + (1 - w) * booster) for w in WEIGHTS])
    if np.isnan(scores).all():
        return 0.5
    best = np.flatnonzero(scores == np.nanmax(scores))
    return float(WEIGHTS[best[np.argmin(np.abs(WEIGHTS[best] - 0.5))]])


def cross_fitted_blend(kind, y, network, booster, groups, random_state=None):
    """The blend's predictions on the validation rows, each half of the groups (customers)
    predicted with the weight chosen on the other half.

    Scoring these predictions tells how well the blend, weight choice included, does on rows
    it did not choose its weight on: a score comparable with the single models' on the same
    rows.

    Parameters
    ----------
    kind : {"binary", "amount"}
    y, network, booster : array-like of shape (n_rows,)
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
        With fewer than two groups (no half to choose a weight on).
    """
    y = np.asarray(y, np.float64)
    network, booster = np.asarray(network, np.float64), np.asarray(booster, np.float64)
    names, codes = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if len(names) < 2:
        raise ValueError("cross_fitted_blend needs rows of at least two groups (customers).")
    rng = np.random.default_rng(random_state)
    first = np.zeros(len(names), dtype=bool)
    first[rng.permutation(len(names))[: len(names) // 2]] = True
    side = first[codes]
    out = np.empty(len(y))
    for chosen_on, predicted in ((side, ~side), (~side, side)):
        w = blend_weight(kind, y[chosen_on], network[chosen_on], booster[chosen_on])
        out[predicted] = w * network[predicted] + (1 - w) * booster[predicted]
    return out


class _Blend:
    def __init__(self, network, booster, weight):
        if not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"weight must be in [0, 1], got {weight!r}.")
        self.network = network
        self.booster = booster
        self.weight = float(weight)

    def _mean(self, method, rows):
        from .training import one_openmp_thread

        network = np.asarray(getattr(self.network, method)(rows), dtype=np.float64)
        with one_openmp_thread():  # gradient boosting single-threaded, as when kept alone
            booster = np.asarray(getattr(self.booster, method)(rows), dtype=np.float64)
        return self.weight * network + (1 - self.weight) * booster

    def __repr__(self):
        return f"{type(self).__name__}(weight={self.weight:g})"


class TaskBlend(_Blend):
    """The weighted mean of a binary task's fitted network and gradient boosting.

    Parameters
    ----------
    network : fitted classifier
        The network pipeline.
    booster : fitted classifier
        Gradient boosting on the RFM columns.
    weight : float
        The network's weight in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X, y = np.zeros((4, 1)), np.array([0, 1, 1, 1])
    >>> net = DummyClassifier(strategy="prior").fit(X, y)
    >>> booster = DummyClassifier(strategy="constant", constant=0).fit(X, y)
    >>> TaskBlend(net, booster, weight=0.5).predict_proba(X[:1])
    array([[0.625, 0.375]])
    """

    def predict_proba(self, rows):
        """Probabilities of the two classes: the weighted mean of the two models'.

        Returns
        -------
        ndarray of shape (n_rows, 2)
        """
        return self._mean("predict_proba", rows)


class AmountBlend(_Blend):
    """The weighted mean of an amount task's fitted network and gradient boosting
    (parameters as :class:`TaskBlend`)."""

    def predict(self, rows):
        """The weighted mean of the two models' predicted amounts.

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        return self._mean("predict", rows)
