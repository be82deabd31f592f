"""Time decay: half-life and rate, ages to weights, decayed histories.

One definition for the Python side and the dbt package. The package's var
``basemodel_decay_rate`` is a rate per day, ``weight = exp(-rate * days)``; Python estimators
take a ``half_life``, ``weight = 0.5 ** (age / half_life)``. The two describe the same curve
when ``rate = ln 2 / half_life`` (:func:`rate_from_half_life`).

Examples
--------
>>> from sklearn_basemodel.decay import decayed_rows, rate_from_half_life, weighted_rows
>>> round(rate_from_half_life(35.0), 4)  # the dbt var for a 35-day half-life
0.0198
>>> weighted_rows([["milk", "bread", "milk"]], [[0.5, 1.0, 0.25]])
[{'milk': 0.75, 'bread': 1.0}]
>>> decayed_rows([["milk", "bread"]], [[7.0, 0.0]], half_life=7.0)
[{'milk': 0.5, 'bread': 1.0}]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import timedelta
from numbers import Real

import numpy as np
import pandas as pd

__all__ = [
    "decay_weights",
    "decayed_rows",
    "half_life_from_rate",
    "rate_from_half_life",
    "sequence_ages",
    "weighted_rows",
]


def _positive(value, name):
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}.")
    return float(value)


def rate_from_half_life(half_life):
    """The decay rate ``ln 2 / half_life`` (per unit of ``half_life``).

    Parameters
    ----------
    half_life : float
        Positive; the age at which a weight falls to one half.

    Returns
    -------
    rate : float
        ``exp(-rate * age) == 0.5 ** (age / half_life)`` for every age.

    Examples
    --------
    >>> round(rate_from_half_life(1.0), 6)
    0.693147
    """
    return math.log(2.0) / _positive(half_life, "half_life")


def half_life_from_rate(rate):
    """The half-life ``ln 2 / rate``, the inverse of :func:`rate_from_half_life`.

    Parameters
    ----------
    rate : float
        Positive decay rate (e.g. the dbt var ``basemodel_decay_rate``, per day).

    Returns
    -------
    half_life : float

    Examples
    --------
    >>> round(half_life_from_rate(0.02), 2)  # the demo's rate, in days
    34.66
    """
    return math.log(2.0) / _positive(rate, "rate")


def decay_weights(ages, half_life):
    """``0.5 ** (ages / half_life)``, element-wise, as float64.

    Parameters
    ----------
    ages : array-like of float
        Non-negative ages (same unit as ``half_life``). Negative ages (events after the
        reference time) are refused: they would weigh more than a fresh event.
    half_life : float

    Returns
    -------
    weights : ndarray of float64, the shape of ``ages``

    Examples
    --------
    >>> decay_weights([0, 1, 2], half_life=1).tolist()
    [1.0, 0.5, 0.25]
    """
    half_life = _positive(half_life, "half_life")
    ages = np.asarray(ages, dtype=np.float64)
    if np.isnan(ages).any():
        raise ValueError("ages contain NaN; drop those events first.")
    if (ages < 0).any():
        raise ValueError("ages must be >= 0 (an event after the reference time has no age).")
    return np.exp2(-ages / half_life)


def sequence_ages(n):
    """The age of each of ``n`` ordered positions counted from the last: ``n-1, …, 1, 0``.

    Decay "in baskets" or "in clicks" gives the newest basket age 0.

    Examples
    --------
    >>> sequence_ages(3).tolist()
    [2.0, 1.0, 0.0]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}.")
    return np.arange(n - 1, -1, -1, dtype=np.float64)


def _row_list(row, i, what):
    if row is None:
        return []
    if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, Iterable):
        raise TypeError(f"Row {i} of the {what} is {type(row).__name__}; pass one list per row.")
    return list(row)


def weighted_rows(items_rows, weights_rows):
    """Parallel item and weight lists → one mapping ``item -> summed weight`` per row.

    This is the form the dbt package's history tables take (``<col>_items`` and
    ``<col>_weights``, decayed in the warehouse) turned into the rows
    :class:`~sklearn_basemodel.EMDESketcher` reads. A NULL list (None) gives an empty row;
    repeated items add up.

    Parameters
    ----------
    items_rows : sequence of lists of hashable
    weights_rows : sequence of lists of float, parallel to ``items_rows``

    Returns
    -------
    rows : list of dict

    Raises
    ------
    ValueError
        When a row's lists differ in length, or a weight is NaN or infinite.

    Examples
    --------
    >>> weighted_rows([["a", "b"], None], [[1.0, 2.0], None])
    [{'a': 1.0, 'b': 2.0}, {}]
    """
    items_rows, weights_rows = list(items_rows), list(weights_rows)
    if len(items_rows) != len(weights_rows):
        raise ValueError(
            f"{len(items_rows)} item rows but {len(weights_rows)} weight rows; pass one "
            "weight list per item list."
        )
    out = []
    for i, (items, weights) in enumerate(zip(items_rows, weights_rows)):
        items, weights = _row_list(items, i, "items"), _row_list(weights, i, "weights")
        if len(items) != len(weights):
            raise ValueError(f"Row {i} has {len(items)} items but {len(weights)} weights.")
        row = {}
        for key, weight in zip(items, weights):
            weight = float(weight)
            if not math.isfinite(weight):
                raise ValueError(f"Row {i} has a weight that is NaN or infinite ({weight}).")
            row[key] = row.get(key, 0.0) + weight
        out.append(row)
    return out


def decayed_rows(items_rows, ages_rows, half_life):
    """Parallel item and age lists → one mapping ``item -> sum of 0.5 ** (age / half_life)``.

    Parameters
    ----------
    items_rows : sequence of lists of hashable
    ages_rows : sequence of lists of float, parallel to ``items_rows``
        Non-negative ages in the unit of ``half_life``.
    half_life : float

    Returns
    -------
    rows : list of dict

    Examples
    --------
    >>> decayed_rows([["a", "a", "b"]], [[2.0, 1.0, 0.0]], half_life=1.0)
    [{'a': 0.75, 'b': 1.0}]
    """
    ages_rows = list(ages_rows)
    weights_rows = [
        None if ages is None else decay_weights(_row_list(ages, i, "ages"), half_life)
        for i, ages in enumerate(ages_rows)
    ]
    return weighted_rows(items_rows, weights_rows)


# --------------------------------------------------------------------------- time values
# Used by the sketcher to read timestamps, ages and half-lives given as numbers or datetimes.
def utc_nanoseconds(values, what):
    """Datetimes (datetime, numpy.datetime64, pandas.Timestamp or ISO strings) → int64 UTC ns."""
    try:
        stamps = pd.to_datetime(values, utc=True, format="mixed")
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(
            f"Could not read the {what} as datetimes ({exc}). Pass numbers, or datetimes "
            "(datetime, numpy.datetime64, pandas.Timestamp or ISO strings)."
        ) from None
    stamps = pd.DatetimeIndex(np.atleast_1d(stamps)) if not isinstance(stamps, pd.Index) else stamps
    if stamps.isna().any():
        raise ValueError(f"The {what} contain a missing value (NaT); drop those events first.")
    return stamps.as_unit("ns").asi8


def time_values(values, what):
    """("number", float64), ("datetime", UTC nanoseconds) or ("duration", nanoseconds)."""
    arr = np.asarray(values) if len(values) else np.empty(0, dtype=np.float64)
    if arr.dtype.kind in "iuf":
        arr = arr.astype(np.float64, copy=False)
        if not np.isfinite(arr).all():
            raise ValueError(f"The {what} contain NaN or infinite values; drop those events.")
        return "number", arr
    if arr.dtype.kind == "m" or (
        arr.dtype == object and isinstance(arr[0], (timedelta, np.timedelta64))
    ):
        durations = pd.to_timedelta(arr)
        if durations.isna().any():
            raise ValueError(f"The {what} contain a missing value (NaT); drop those events first.")
        return "duration", durations.as_unit("ns").asi8
    if arr.dtype.kind in "MOUS":
        return "datetime", utc_nanoseconds(arr, what)
    raise TypeError(f"The {what} have dtype {arr.dtype}; pass numbers or datetimes.")


def parse_half_life(half_life):
    """("number", value) or ("duration", nanoseconds as float)."""
    if isinstance(half_life, Real):
        return "number", float(half_life)
    try:
        ns = pd.Timedelta(half_life).as_unit("ns").value
    except (TypeError, ValueError):
        raise ValueError(
            f"half_life={half_life!r} is neither a positive number nor a duration such as "
            "'14D', datetime.timedelta(days=14) or pandas.Timedelta(days=14)."
        ) from None
    if ns <= 0:
        raise ValueError(f"half_life must be positive, got {half_life!r}.")
    return "duration", float(ns)


def parse_reference_time(value):
    """("number", float) or ("datetime", UTC nanoseconds as int)."""
    if isinstance(value, Real):
        return "number", float(value)
    return "datetime", int(utc_nanoseconds([value], "reference_time")[0])
