"""Synthetic behavioral events: :func:`make_events` and :func:`write_events`.

:func:`make_events` generates a raw events table (purchases, views, add-to-cart, returns) from a
seeded model of customers, a product catalog and shopping trips over time, with the structure a
behavioral model should learn (latent interests, repeat purchases, seasonality, churn tied to
engagement) and a small share of malformed rows that a warehouse pipeline has to quarantine.
"""

from __future__ import annotations

import datetime
import os
from numbers import Real

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._compat import HasMethods, IntegerInterval, Interval, validate_params
from ._model import (
    _DUPLICATE,
    _MAX_INTERESTS,
    _NEGATIVE_AMOUNT,
    _NULL_CUSTOMER,
    _NULL_TIME,
    _OUT_OF_RANGE,
    EVENT_TYPES,
    MALFORMED_REASONS,
    _as_generator,
    _baskets,
    _Calendar,
    _Catalog,
    _Customers,
    _default_sizes,
    _micros,
    _period,
    _valid_events,
)


def _malformed_counts(n_events, malformed_fraction):
    n_malformed = round(malformed_fraction * n_events)
    kinds = len(MALFORMED_REASONS)
    return n_malformed // kinds + (np.arange(kinds) < n_malformed % kinds)


def _corrupt(rng, events, counts, start, end):
    """Break some valid rows in place and append exact duplicates; return the reason per row.

    Every malformed row has exactly one reason; duplicates copy rows that stay valid, and the
    copy (the second of the two identical rows) is the one marked.
    """
    n = len(events.event_id)
    reason = np.full(n, -1, dtype=np.int8)
    paid = np.flatnonzero(events.amount > 0)
    rows = rng.choice(paid, min(counts[_NEGATIVE_AMOUNT], len(paid)), replace=False)
    reason[rows] = _NEGATIVE_AMOUNT
    for kind in (_NULL_CUSTOMER, _NULL_TIME, _OUT_OF_RANGE, _DUPLICATE):
        valid = np.flatnonzero(reason == -1)
        rows = rng.choice(valid, min(counts[kind], len(valid)), replace=False)
        reason[rows] = kind

    events.amount[reason == _NEGATIVE_AMOUNT] *= -1.0
    events.event_time[reason == _NULL_TIME] = np.iinfo(np.int64).min  # NaT
    out_of_range = np.flatnonzero(reason == _OUT_OF_RANGE)
    # Half at the epoch (a classic default for a broken date), half generations ahead.
    epoch = pd.Timestamp(0) if start.year > 1970 else start - pd.Timedelta(days=365)
    future = _micros(end + pd.DateOffset(years=75))
    later = (rng.uniform(0, 365 * 86_400, len(out_of_range)) * 1e6).astype(np.int64)
    events.event_time[out_of_range] = np.where(
        rng.random(len(out_of_range)) < 0.5, _micros(epoch), future + later
    )

    copies = 1 + (reason == _DUPLICATE)
    null_customer = np.repeat(reason == _NULL_CUSTOMER, copies)
    for name, column in events.items():
        events[name] = np.repeat(column, copies)
    reason[reason == _DUPLICATE] = -1  # the original stays valid ...
    reason = np.repeat(reason, copies)
    reason[(np.cumsum(copies) - 1)[copies == 2]] = _DUPLICATE  # ... its copy is the duplicate
    return null_customer, reason


def _events_frame(events, null_customer):
    time = events.event_time.view("M8[us]")
    return pd.DataFrame(
        {
            "event_id": events.event_id,
            "customer_id": pd.arrays.IntegerArray(events.customer_id, null_customer),
            "basket_id": events.basket_id,
            "product_id": events.product_id,
            "category_id": events.category_id,
            "brand_id": events.brand_id,
            "event_type": pd.Categorical.from_codes(events.event_type, EVENT_TYPES),
            "quantity": events.quantity,
            "price": events.price,
            "amount": events.amount,
            "event_time": time,
        },
        copy=False,
    )


def _truth(customers, catalog, reason, start, end):
    def to_time(seconds):
        return (_micros(start) + np.floor(seconds * 1e6).astype(np.int64)).view("M8[us]")

    n_customers = len(customers.engagement)
    customer_frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, n_customers + 1, dtype=np.int64),
            "engagement": customers.engagement,
            "churn_hazard": 1.0 / customers.mean_lifetime_days,
            "signup_time": to_time(customers.signup),
            "churn_time": to_time(customers.churn),
            "churned": customers.churn < (end - start).total_seconds(),
            "repeat_probability": customers.repeat_probability,
        }
    )
    has = np.arange(_MAX_INTERESTS) < customers.n_interests[:, None]
    owner = np.broadcast_to(np.arange(n_customers)[:, None], has.shape)[has]
    pairs = np.unique(owner * len(catalog.category_weight) + customers.interests[has])
    interests = pd.DataFrame(
        {
            "customer_id": pairs // len(catalog.category_weight) + 1,
            "category_id": pairs % len(catalog.category_weight) + 1,
        }
    )
    products = pd.DataFrame(
        {
            "product_id": np.arange(1, len(catalog.category) + 1, dtype=np.int64),
            "category_id": catalog.category.astype(np.int64) + 1,
            "brand_id": catalog.brand + 1,
            "base_price": catalog.price,
            "popularity": catalog.popularity,
        }
    )
    return Bunch(
        customers=customer_frame,
        interests=interests,
        products=products,
        malformed=reason >= 0,
        malformed_reason=pd.Series(pd.Categorical.from_codes(reason, MALFORMED_REASONS)),
        start=start,
        end=end,
    )


@validate_params(
    {
        "n_events": [IntegerInterval(1, None, closed="left")],
        "n_customers": [IntegerInterval(1, None, closed="left"), None],
        "n_products": [IntegerInterval(1, None, closed="left"), None],
        "n_categories": [IntegerInterval(1, None, closed="left"), None],
        "start": [str, datetime.date, np.datetime64],
        "end": [str, datetime.date, np.datetime64],
        "malformed_fraction": [Interval(Real, 0, 0.5, closed="both")],
        "return_truth": ["boolean"],
        "random_state": ["random_state", np.random.Generator],
    },
    prefer_skip_nested_validation=True,
)
def make_events(
    n_events=100_000,
    *,
    n_customers=None,
    n_products=None,
    n_categories=None,
    start="2024-01-01",
    end="2024-12-31",
    malformed_fraction=0.01,
    return_truth=False,
    random_state=None,
):
    """Generate a raw behavioral events table with learnable structure and some bad rows.

    Each customer has an engagement level, a churn hazard that falls with engagement, a few
    latent interest categories, a set of staple products they keep re-buying, and a preferred
    basket size. Customers arrive (half at ``start``, half during the period), go on shopping
    trips (baskets) at a rate proportional to their engagement and modulated by weekly, daily and
    yearly seasonality, and stop for good at their churn time. A trip holds several events; each
    event is a purchase (most), view, add-to-cart or return of a product that comes from the
    customer's staples (repeat purchases; always for returns) or is explored: a product of one of
    their interest categories or of any category, by power-law popularity. Products belong to a
    category and a brand and have a price (occasionally discounted).

    Everything is vectorised (no Python loop over customers or events): 10 million events take
    seconds.

    Parameters
    ----------
    n_events : int, default=100_000
        Number of rows of the table, malformed rows included.

    n_customers : int, default=None
        Number of customers, at most ``n_events``. By default ``n_events / 48`` (about 8 events
        per trip and 6 trips per customer). Each customer has at least one trip when there are
        enough events.

    n_products : int, default=None
        Number of products. By default ``3 * sqrt(n_events)``, clipped to [20, 50000].

    n_categories : int, default=None
        Number of product categories, at most ``n_products``. By default ``sqrt(n_products)``,
        clipped to [5, 200].

    start, end : str, datetime.date, pandas.Timestamp or numpy.datetime64
        The period of valid event times, ``[start, end)``; an ``end`` without a time of day
        includes that whole day (the default is the year 2024).

    malformed_fraction : float in [0, 0.5], default=0.01
        Share of rows that are malformed, split evenly between the kinds in
        ``MALFORMED_REASONS``: null ``customer_id``, null ``event_time``, ``event_time`` outside
        the period (1970-01-01 or some 75 years after ``end``), an exact duplicate of another row,
        a negative ``amount``. Nothing in the table marks them.

    return_truth : bool, default=False
        Also return the generating ground truth (see Returns).

    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the generator: the same integer gives the same table.

    Returns
    -------
    events : pandas.DataFrame
        One row per event, ordered by shopping trip (trips in time order), with columns

        - ``event_id`` (int64): 1, 2, ... unique per event; a duplicate row repeats it.
        - ``customer_id`` (Int64, nullable): 1 .. ``n_customers``.
        - ``basket_id`` (int64): the shopping trip, one customer's events close in time.
        - ``product_id``, ``category_id``, ``brand_id`` (int64): ids start at 1; a product has
          one category and one brand.
        - ``event_type`` (category): one of ``EVENT_TYPES`` ('purchase', 'view', 'add_to_cart',
          'return'), purchases about 78%.
        - ``quantity`` (int64): units, at least 1.
        - ``price`` (float64): unit price paid, rounded to cents.
        - ``amount`` (float64): ``price * quantity`` for purchases and returns (the refund,
          positive), 0.0 for views and add-to-cart.
        - ``event_time`` (datetime64[us]): naive timestamp.

    truth : sklearn.utils.Bunch
        Only when ``return_truth=True``. Attributes:

        - ``customers``: DataFrame, one row per customer: ``customer_id``, ``engagement``
          (relative shopping rate, median 1), ``churn_hazard`` (per day), ``signup_time``,
          ``churn_time`` (no events after it; may lie beyond the period), ``churned`` (churn
          within the period), ``repeat_probability``.
        - ``interests``: DataFrame of (``customer_id``, ``category_id``) pairs, 1 to 4 latent
          interest categories per customer.
        - ``products``: DataFrame: ``product_id``, ``category_id``, ``brand_id``,
          ``base_price``, ``popularity`` (probability mass, sums to 1).
        - ``malformed``: bool ndarray, one per row of ``events``.
        - ``malformed_reason``: categorical Series, one of ``MALFORMED_REASONS`` or NaN.
        - ``start``, ``end``: the period ``[start, end)`` of valid event times.

    See Also
    --------
    write_events : Write the table to DuckDB for the dbt package.

    Notes
    -----
    Ratios of the model: a customer's staples come from their interests 90% of the time;
    explored products 70%; the probability that an event re-buys a staple varies by customer
    (Beta(2, 2), mean 0.5). The mean lifetime is ``365 * engagement ** 0.8`` days, exponential,
    so customers of low engagement shop less often and churn sooner. Saturdays are 1.75 times
    as busy as Mondays and the year peaks before Christmas.

    Examples
    --------
    >>> from sklearn_basemodel.datasets import make_events
    >>> events = make_events(n_events=10_000, random_state=0)
    >>> events.shape
    (10000, 11)
    >>> events["event_type"].value_counts().index[0]
    'purchase'
    >>> events, truth = make_events(10_000, random_state=0, return_truth=True)
    >>> truth.malformed.sum()
    np.int64(100)
    >>> truth.malformed_reason.value_counts().to_dict()["duplicate"]
    20
    """
    rng = _as_generator(random_state)
    start, end = _period(start, end)
    n_customers, n_products, n_categories = _default_sizes(
        n_events, n_customers, n_products, n_categories
    )
    counts = _malformed_counts(n_events, malformed_fraction)
    calendar = _Calendar(start, end)
    catalog = _Catalog(rng, n_products, n_categories)
    customers = _Customers(rng, n_customers, catalog, calendar, (end - start).total_seconds())
    baskets = _baskets(rng, customers, calendar, n_events - counts[_DUPLICATE])
    events = _valid_events(rng, catalog, customers, baskets, start)
    null_customer, reason = _corrupt(rng, events, counts, start, end)
    frame = _events_frame(events, null_customer)
    if return_truth:
        return frame, _truth(customers, catalog, reason, start, end)
    return frame


def _quote(identifier):
    return '"' + identifier.replace('"', '""') + '"'


@validate_params(
    {
        "events": [pd.DataFrame],
        "database": [str, os.PathLike, HasMethods(["execute", "sql"])],
        "table": [str],
        "schema": [str, None],
    },
    prefer_skip_nested_validation=True,
)
def write_events(events, database, table="raw_events", schema=None):
    """Write an events table to DuckDB, replacing any table of that name.

    The DataFrame is scanned by DuckDB in place (no row-by-row insert); categorical columns
    become VARCHAR so the warehouse table holds plain values, as a raw source would.

    Parameters
    ----------
    events : pandas.DataFrame
        The table, e.g. from :func:`make_events`.

    database : str, path-like or duckdb.DuckDBPyConnection
        A DuckDB database file (created if absent, closed afterwards) or an open connection
        (left open; use one for an in-memory database).

    table : str, default="raw_events"
        Table name.

    schema : str, default=None
        Schema, created if absent. By default the connection's current schema ('main').

    Returns
    -------
    name : str
        The qualified table name, ``"schema.table"``.

    Examples
    --------
    >>> import duckdb
    >>> from sklearn_basemodel.datasets import make_events, write_events
    >>> con = duckdb.connect()
    >>> write_events(make_events(10_000, random_state=0), con)
    'main.raw_events'
    >>> con.sql("SELECT count(*) FROM main.raw_events").fetchall()
    [(10000,)]
    """
    for name, value in (("table", table), ("schema", schema)):
        if value is not None and not value.strip():
            raise ValueError(f"{name} must be a non-empty name, got {value!r}.")
    import duckdb  # the [dbt] extra

    own = not isinstance(database, duckdb.DuckDBPyConnection)
    con = duckdb.connect(os.fspath(database)) if own else database
    view = "__sklearn_basemodel_events"
    try:
        if schema is None:
            schema = con.execute("SELECT current_schema()").fetchall()[0][0]
        else:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}").fetchall()
        columns = ", ".join(
            f"CAST({_quote(c)} AS VARCHAR) AS {_quote(c)}"
            if isinstance(events[c].dtype, pd.CategoricalDtype)
            else _quote(c)
            for c in events.columns
        )
        con.register(view, events)
        try:
            con.execute(
                f"CREATE OR REPLACE TABLE {_quote(schema)}.{_quote(table)} AS "
                f"SELECT {columns} FROM {view}"
            ).fetchall()
        finally:
            con.unregister(view)
    finally:
        if own:
            con.close()
    return f"{schema}.{table}"
