"""The BG/NBD buy-till-you-die model as a churn scorer."""

from __future__ import annotations

from numbers import Real

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._compat import Interval, _fit_context
from .rfm import RFMTransformer


# --------------------------------------------------------------------------- BG/NBD
def _bgnbd_log_likelihood(params, repeat, last, age):
    """Per-customer BG/NBD log-likelihood (Fader, Hardie & Lee 2005, eq. 6)."""
    from scipy.special import betaln, gammaln

    r, alpha, a, b = params
    common = (gammaln(r + repeat) - gammaln(r) + r * np.log(alpha)
              + betaln(a, b + repeat) - betaln(a, b))  # fmt: skip
    still_alive = -(r + repeat) * np.log(alpha + age)
    dropped = np.full_like(still_alive, -np.inf)
    has_repeat = repeat > 0
    dropped[has_repeat] = (np.log(a) - np.log(b + repeat[has_repeat] - 1)
                           - (r + repeat[has_repeat]) * np.log(alpha + last[has_repeat]))  # fmt: skip
    return common + np.logaddexp(still_alive, dropped)


class BGNBDChurn(TransformerMixin, BaseEstimator):
    """BG/NBD buy-till-you-die model: expected purchases and probability of being active.

    Each customer buys at a Poisson rate (gamma distributed over customers) and after every
    purchase may become inactive for good (probability beta distributed over customers). Fit by
    maximum likelihood on each customer's repeat purchases ``x``, time of the last purchase
    ``t_x`` and age ``T`` (both from the first purchase), as of the reference time. Input: the
    DataFrame :class:`RFMTransformer` takes (one row per customer, a list of event times);
    pass one event per purchase period (e.g. per day), as BTYD models count periods.

    ``transform`` gives two columns, the expected number of purchases in the next ``horizon``
    and ``P(active)``, so the model sits next to RFM features in a ``FeatureUnion``, or serves
    as a churn score on its own (low expected purchases = likely churn).

    Parameters
    ----------
    horizon : float > 0, default=30.0
        Length (in ``time_unit``) of the window of the expected purchases.
    times, reference_time, reference_column, time_unit
        As in :class:`RFMTransformer`.
    penalizer : float >= 0, default=0.0
        L2 penalty on the four parameters (as in the ``lifetimes`` package); 0 is the plain
        maximum likelihood.

    Attributes
    ----------
    r_, alpha_, a_, b_ : float
        The fitted parameters (gamma shape / scale of the purchase rate, beta parameters of
        the drop-out probability), ``alpha_`` in ``time_unit``.
    log_likelihood_ : float
        Mean log-likelihood per customer at the optimum.

    References
    ----------
    P. S. Fader, B. G. S. Hardie, K. L. Lee. "'Counting Your Customers' the Easy Way: An
    Alternative to the Pareto/NBD Model." Marketing Science 24(2), 2005.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_basemodel.baselines import BGNBDChurn
    >>> X = pd.DataFrame({"times": [[0.0, 5.0, 9.0], [0.0], [2.0, 3.0], [1.0, 8.0]]})
    >>> model = BGNBDChurn(horizon=10.0, reference_time=10.0).fit(X)
    >>> model.transform(X).shape
    (4, 2)
    """

    _parameter_constraints: dict = {
        **{key: RFMTransformer._parameter_constraints[key]
           for key in ("times", "reference_time", "reference_column", "time_unit")},
        "horizon": [Interval(Real, 0, None, closed="neither")],
        "penalizer": [Interval(Real, 0, None, closed="left")],
    }  # fmt: skip

    def __init__(self, horizon=30.0, *, times="times", reference_time=None,
                 reference_column="reference_time", time_unit="D", penalizer=0.0):  # fmt: skip
        self.horizon = horizon
        self.times = times
        self.reference_time = reference_time
        self.reference_column = reference_column
        self.time_unit = time_unit
        self.penalizer = penalizer

    def _summary(self, X):
        """(repeat purchases x, time of the last purchase t_x, age T) per customer."""
        rfm = RFMTransformer(times=self.times, amounts=None, reference_time=self.reference_time,
                             reference_column=self.reference_column, time_unit=self.time_unit,
                             features=["repeat", "recency", "tenure"])  # fmt: skip
        repeat, recency, tenure = rfm.fit_transform(X).T
        return repeat, tenure - recency, tenure

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit r, alpha, a, b by maximum likelihood (``y`` is ignored).

        Returns
        -------
        self
        """
        from scipy.optimize import minimize

        repeat, last, age = self._summary(X)
        if not (age > 0).any():
            raise ValueError("BGNBDChurn needs customers observed for some time (age > 0).")

        def loss(log_params):
            params = np.exp(log_params)
            penalty = self.penalizer * float(np.sum(params**2))
            return -_bgnbd_log_likelihood(params, repeat, last, age).mean() + penalty

        start = np.log([1.0, max(float(age.mean()), 1e-3), 1.0, 1.0])
        result = minimize(loss, start, method="Nelder-Mead",
                          options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-10})  # fmt: skip
        if not np.isfinite(result.fun):
            raise ValueError("BGNBDChurn: the likelihood could not be maximised.")
        self.r_, self.alpha_, self.a_, self.b_ = (float(v) for v in np.exp(result.x))
        self.log_likelihood_ = -float(result.fun)
        return self

    def _activity(self, repeat, last, age):
        """P(active) and its denominator term, per customer (eq. 11 of the paper)."""
        r, alpha, a, b = self.r_, self.alpha_, self.a_, self.b_
        odds = np.zeros_like(age)
        has_repeat = repeat > 0
        odds[has_repeat] = (a / (b + repeat[has_repeat] - 1)
                            * ((alpha + age[has_repeat]) / (alpha + last[has_repeat]))
                            ** (r + repeat[has_repeat]))  # fmt: skip
        return 1.0 / (1.0 + odds)

    def predict_alive(self, X):
        """Probability that each customer is still active at the reference time."""
        check_is_fitted(self, "r_")
        return self._activity(*self._summary(X))

    def predict_purchases(self, X):
        """Expected number of purchases of each customer in the next ``horizon`` (eq. 10)."""
        from scipy.special import hyp2f1

        check_is_fitted(self, "r_")
        repeat, last, age = self._summary(X)
        r, alpha, a, b, t = self.r_, self.alpha_, self.a_, self.b_, float(self.horizon)
        shape = r + repeat
        tail = hyp2f1(shape, b + repeat, a + b + repeat - 1, t / (alpha + age + t))
        expected = ((a + b + repeat - 1) / (a - 1)
                    * (1 - ((alpha + age) / (alpha + age + t)) ** shape * tail))  # fmt: skip
        return expected * self._activity(repeat, last, age)

    def transform(self, X):
        """Columns ``expected_purchases`` (next ``horizon``) and ``p_alive``."""
        return np.column_stack([self.predict_purchases(X), self.predict_alive(X)])

    def get_feature_names_out(self, input_features=None):
        """The output column names."""
        check_is_fitted(self, "r_")
        return np.asarray(["bgnbd_expected_purchases", "bgnbd_p_alive"], dtype=object)
