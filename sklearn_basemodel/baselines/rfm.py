"""Recency, frequency and monetary features per customer."""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .._compat import Interval, _fit_context
from ._base import _is_missing

# --------------------------------------------------------------------------- RFM
_RFM_NAMES = ("recency", "tenure", "frequency", "repeat", "mean_gap", "total_amount",
              "mean_amount", "total_quantity", "decayed_frequency")  # fmt: skip


def _flat_column(values, name):
    """A column of per-customer lists -> (flat values, row ids, row lengths)."""
    lengths = np.zeros(len(values), dtype=np.int64)
    pieces = []
    for position, value in enumerate(values):
        if _is_missing(value) or isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise TypeError(f"Column {name!r}, row {position}: expected a list of values per "
                            f"customer, got {value!r}.")  # fmt: skip
        lengths[position] = len(value)
        pieces.append(np.asarray(value))
    flat = np.concatenate(pieces) if pieces else np.zeros(0)
    return flat, np.repeat(np.arange(len(values)), lengths), lengths


def _ages(times, reference, row_of, time_unit):
    """Time from each event to its row's reference time, in ``time_unit`` (float)."""
    numeric = np.issubdtype(np.asarray(times).dtype, np.number)
    if numeric:
        reference = np.asarray(reference, dtype=np.float64)
        return (reference[row_of] if reference.ndim else reference) - times.astype(np.float64)
    times = pd.to_datetime(pd.Series(times)).to_numpy()
    reference = pd.to_datetime(pd.Series(np.atleast_1d(reference))).to_numpy()
    reference = reference[row_of] if len(reference) > 1 else reference[0]
    return (reference - times) / pd.Timedelta(1, unit=time_unit).to_timedelta64()


class RFMTransformer(TransformerMixin, BaseEstimator):
    """Recency / frequency / monetary features of each customer's events, for churn models.

    Input: a DataFrame with one row per customer and list columns — the event times
    (``times``), optionally amounts (``amounts``) and quantities (``quantities``) — plus either a
    fixed ``reference_time`` or a per-row reference column (e.g. several cut-off dates stacked).
    Output, per customer, times in ``time_unit`` before the reference:

    - ``recency``: time since the last event; ``tenure``: since the first;
    - ``frequency``: number of events; ``repeat``: ``frequency - 1`` (the BTYD frequency);
    - ``mean_gap``: mean time between events, ``(tenure - recency) / repeat``; for a single
      event the time since it (a lower bound of the gap to come);
    - ``total_amount``, ``mean_amount`` (with ``amounts``); ``total_quantity`` (with
      ``quantities``);
    - ``decayed_frequency`` (with ``half_life``): ``sum 0.5 ** (age / half_life)``.

    With ``log=True`` every feature is replaced by ``log1p`` of it (``log1p_<name>``): the form
    linear models want (gradient boosting needs neither).

    Parameters
    ----------
    times : str, default="times"
        Column of event-time lists (datetimes, or numbers in ``time_unit``).
    amounts : str or None, default="amounts"
        Column of amount lists (monetary value per event), or None.
    quantities : str or None, default=None
        Column of quantity lists (e.g. units bought per event), or None.
    reference_time : datetime-like or float, default=None
        The time the features describe, for every row; None reads ``reference_column``.
    reference_column : str, default="reference_time"
        Per-row reference time, used when ``reference_time`` is None.
    time_unit : str, default="D"
        Unit of recency, tenure and gaps for datetime input (a pandas Timedelta unit).
    half_life : float > 0, default=None
        Half-life (in ``time_unit``) of ``decayed_frequency``; no such column when None.
    log : bool, default=False
        Replace each feature by its ``log1p``.
    features : list of str, default=None
        Keep only these features (in this order; names without the ``log1p_`` prefix).

    Attributes
    ----------
    feature_names_out_ : ndarray of str
        The output column names.
    n_features_in_ : int
        Number of columns of the DataFrame seen in ``fit``.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_basemodel.baselines import RFMTransformer
    >>> X = pd.DataFrame({"times": [[1.0, 4.0], [9.0]], "amounts": [[10.0, 30.0], [5.0]]})
    >>> rfm = RFMTransformer(reference_time=10.0, features=["recency", "frequency", "mean_amount"])
    >>> rfm.fit_transform(X)
    array([[ 6.,  2., 20.],
           [ 1.,  1.,  5.]])
    """

    _parameter_constraints: dict = {
        "times": [str],
        "amounts": [str, None],
        "quantities": [str, None],
        "reference_time": "no_validation",
        "reference_column": [str],
        "time_unit": [str],
        "half_life": [Interval(Real, 0, None, closed="neither"), None],
        "log": ["boolean"],
        "features": [list, tuple, None],
    }

    def __init__(self, *, times="times", amounts="amounts", quantities=None, reference_time=None,
                 reference_column="reference_time", time_unit="D", half_life=None, log=False,
                 features=None):  # fmt: skip
        self.times = times
        self.amounts = amounts
        self.quantities = quantities
        self.reference_time = reference_time
        self.reference_column = reference_column
        self.time_unit = time_unit
        self.half_life = half_life
        self.log = log
        self.features = features

    def _available(self):
        names = [n for n in _RFM_NAMES if not (
            (n in ("total_amount", "mean_amount") and self.amounts is None)
            or (n == "total_quantity" and self.quantities is None)
            or (n == "decayed_frequency" and self.half_life is None))]  # fmt: skip
        if self.features is None:
            return names
        unknown = [n for n in self.features if n not in names]
        if unknown:
            raise ValueError(f"features {unknown} are not available; with these parameters "
                             f"choose among {names}.")  # fmt: skip
        return list(self.features)

    def _check_frame(self, X):
        if not isinstance(X, pd.DataFrame):
            raise TypeError(
                "X must be a DataFrame with one row per customer and list columns "
                f"(times{', amounts' if self.amounts else ''}); got {type(X).__name__}."
            )
        needed = [self.times, self.amounts, self.quantities]
        if self.reference_time is None:
            needed.append(self.reference_column)
        missing = [c for c in needed if c is not None and c not in X.columns]
        if missing:
            hint = ("; set reference_time= for one reference time for every row"
                    if self.reference_column in missing else "")  # fmt: skip
            raise ValueError(f"X has no column {missing} (columns: {list(X.columns)}){hint}.")

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Check the columns and the feature list (nothing is learned).

        Returns
        -------
        self
        """
        self._check_frame(X)
        names = self._available()
        self.n_features_in_ = X.shape[1]
        self.feature_names_out_ = np.asarray(
            [f"log1p_{n}" if self.log else n for n in names], dtype=object
        )
        return self

    def get_feature_names_out(self, input_features=None):
        """The output column names."""
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_.copy()

    def transform(self, X):
        """The features of each row of ``X``.

        Returns
        -------
        ndarray of shape (n_customers, n_features)
        """
        check_is_fitted(self, "feature_names_out_")
        self._check_frame(X)
        times, row_of, counts = _flat_column(X[self.times].tolist(), self.times)
        if (counts == 0).any():
            raise ValueError(f"Row {int(np.flatnonzero(counts == 0)[0])} has no event; every "
                             "customer needs at least one.")  # fmt: skip
        reference = (self.reference_time if self.reference_time is not None
                     else X[self.reference_column].to_numpy())  # fmt: skip
        ages = np.asarray(_ages(times, reference, row_of, self.time_unit), dtype=np.float64)
        if (ages < 0).any():
            raise ValueError("Some events are after their reference time; the features must "
                             "describe the past only.")  # fmt: skip
        n = len(X)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        frequency = counts.astype(np.float64)
        recency = np.minimum.reduceat(ages, starts)
        tenure = np.maximum.reduceat(ages, starts)
        repeat = frequency - 1
        columns = {
            "recency": recency,
            "tenure": tenure,
            "frequency": frequency,
            "repeat": repeat,
            "mean_gap": np.where(repeat > 0, (tenure - recency) / np.maximum(repeat, 1), tenure),
        }
        for name, column in (("amount", self.amounts), ("quantity", self.quantities)):
            if column is not None:
                values, value_rows, value_counts = _flat_column(X[column].tolist(), column)
                if not np.array_equal(value_counts, counts):
                    raise ValueError(f"Columns {self.times!r} and {column!r} must hold lists of "
                                     "the same length in every row.")  # fmt: skip
                total = np.bincount(value_rows, weights=values.astype(np.float64), minlength=n)
                columns[f"total_{name}"] = total
                columns[f"mean_{name}"] = total / frequency
        if self.half_life is not None:
            columns["decayed_frequency"] = np.bincount(
                row_of, weights=0.5 ** (ages / self.half_life), minlength=n
            )
        names = [n.removeprefix("log1p_") for n in self.feature_names_out_]
        out = np.column_stack([columns[name] for name in names])
        return np.log1p(out) if self.log else out


def rfm_features(events, reference_time, *, customer="customer_id", time="event_time",
                 amount=None, quantity=None, time_unit="D", half_life=None, log=False):  # fmt: skip
    """RFM features of every customer in an events table, as of ``reference_time``.

    Events after ``reference_time`` are left out; customers without an event up to it have no
    row. See :class:`RFMTransformer` for the features.

    Parameters
    ----------
    events : DataFrame
        One row per event: ``customer``, ``time`` and optionally ``amount`` / ``quantity``.
    reference_time : datetime-like or float
    customer, time, amount, quantity : str
        Column names (``amount`` and ``quantity`` optional).
    time_unit, half_life, log
        As in :class:`RFMTransformer`.

    Returns
    -------
    DataFrame indexed by customer, one column per feature.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_basemodel.baselines import rfm_features
    >>> events = pd.DataFrame({"customer_id": [1, 1, 2, 2], "event_time": [1, 4, 9, 12]})
    >>> rfm_features(events, 10)[["recency", "frequency"]]  # doctest: +NORMALIZE_WHITESPACE
                 recency  frequency
    customer_id
    1                6.0        2.0
    2                1.0        1.0
    """
    past = events[_ages(events[time].to_numpy(), reference_time,
                        np.zeros(len(events), dtype=np.int64), time_unit) >= 0]  # fmt: skip
    columns = {"times": time, "amounts": amount, "quantities": quantity}
    grouped = past.groupby(customer, sort=True)
    frame = pd.DataFrame({key: grouped[column].agg(list)
                          for key, column in columns.items() if column is not None})  # fmt: skip
    transformer = RFMTransformer(
        amounts="amounts" if amount else None, quantities="quantities" if quantity else None,
        reference_time=reference_time, time_unit=time_unit, half_life=half_life, log=log,
    ).set_output(transform="pandas")
    features = transformer.fit_transform(frame)
    features.index = frame.index
    return features
