"""A workflow task's blend, served: the weighted mean of its fitted candidates.

The weights are chosen by :mod:`sklearn_basemodel.blending` (on the validation customers,
cross-fitted); :class:`TaskBlend` and :class:`AmountBlend` predict with them, gradient boosting
single-threaded beside torch's threads.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np

from .threads import one_openmp_thread

__all__ = ["AmountBlend", "TaskBlend", "describe_kept"]


def describe_kept(chosen):
    """The kept candidate of a task, with the blend's weights (those above 0) when it is the
    blend: ``"blend (network 0.4, rfm_gradient_boosting 0.6)"``."""
    weights = chosen.get("weights")
    if chosen["kept"] != "blend" or not weights:
        return chosen["kept"]
    return "blend (" + ", ".join(f"{k} {w:g}" for k, w in weights.items() if w) + ")"


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
