"""Threads of the cheap models beside torch's."""

from __future__ import annotations

from sklearn.base import BaseEstimator, clone
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

__all__ = ["OneThread", "one_openmp_thread"]


def one_openmp_thread():
    """Gradient boosting's OpenMP threads busy-wait between fits and fight torch's for the
    cores (a 20x slowdown measured on 2 cores): run it single-threaded (it is the cheap model)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="openmp")


def _given_has(method):
    return lambda self: hasattr(self.estimator, method)


class OneThread(BaseEstimator):
    """An estimator that fits and predicts under one OpenMP thread (:func:`one_openmp_thread`).

    The workflow's gradient boosting runs beside torch's networks in one process; wrapped, it
    stays single-threaded wherever it is fitted or asked (alone or inside a blend).

    Parameters
    ----------
    estimator : estimator
        Cloned and fitted in ``fit``.

    Attributes
    ----------
    estimator_ : the fitted clone
    classes_ : ndarray
        The classes of a fitted classifier.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import HistGradientBoostingClassifier
    >>> X, y = np.arange(40.0).reshape(-1, 1), np.repeat([0, 1], 20)
    >>> model = OneThread(HistGradientBoostingClassifier(max_iter=5)).fit(X, y)
    >>> model.predict_proba(X[:1]).shape
    (1, 2)
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y):
        """Fit a clone of ``estimator`` single-threaded.

        Returns
        -------
        self
        """
        with one_openmp_thread():
            self.estimator_ = clone(self.estimator).fit(X, y)
        if hasattr(self.estimator_, "classes_"):
            self.classes_ = self.estimator_.classes_
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    @available_if(_given_has("predict_proba"))
    def predict_proba(self, X):
        """The fitted estimator's ``predict_proba``, single-threaded."""
        check_is_fitted(self, "estimator_")
        with one_openmp_thread():
            return self.estimator_.predict_proba(X)

    @available_if(_given_has("predict"))
    def predict(self, X):
        """The fitted estimator's ``predict``, single-threaded."""
        check_is_fitted(self, "estimator_")
        with one_openmp_thread():
            return self.estimator_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        given = get_tags(self.estimator)
        tags.estimator_type = given.estimator_type
        tags.input_tags = given.input_tags
        return tags
