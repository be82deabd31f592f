"""Synthetic behavioral event data, and loaders for public event datasets.

:func:`make_events` generates a raw events table (purchases, views, add-to-cart, returns) from a
seeded model of customers, a product catalog and shopping trips over time, with the structure a
behavioral model should learn (latent interests, repeat purchases, seasonality, churn tied to
engagement) and a small share of malformed rows that a warehouse pipeline has to quarantine.
:func:`write_events` writes such a table to DuckDB. :func:`load_tafeng`, :func:`load_cdnow` and
:func:`load_yoochoose` read public datasets from a local folder; nothing here downloads anything.
"""

from __future__ import annotations

import datetime
import json
import os
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ._compat import HasMethods, IntegerInterval, Interval, StrOptions, validate_params
from ._hashing import seed_from_random_state

__all__ = [
    "EVENT_TYPES",
    "MALFORMED_REASONS",
    "make_events",
    "write_events",
    "load_tafeng",
    "load_cdnow",
    "load_yoochoose",
]

EVENT_TYPES = ("purchase", "view", "add_to_cart", "return")
_EVENT_TYPE_SHARES = (0.78, 0.13, 0.06, 0.03)
_PURCHASE, _VIEW, _ADD_TO_CART, _RETURN = range(4)

MALFORMED_REASONS = (
    "null_customer_id",
    "null_event_time",
    "time_out_of_range",
    "duplicate",
    "negative_amount",
)
_NULL_CUSTOMER, _NULL_TIME, _OUT_OF_RANGE, _DUPLICATE, _NEGATIVE_AMOUNT = range(5)

# Default sizes: ~8 events per shopping trip and ~6 trips per customer (Ta-Feng has ~7 items per
# basket and ~5.6 baskets per customer); the catalog grows like the square root of the data.
_EVENTS_PER_BASKET = 8
_BASKETS_PER_CUSTOMER = 6

# Seasonality: relative shopping intensity by weekday (Monday first), by hour of day, and over the
# year (a peak before Christmas).
_WEEKDAY_ACTIVITY = np.array([0.80, 0.80, 0.85, 0.90, 1.10, 1.40, 1.20])
_HOUR_ACTIVITY = np.array(
    [0.05, 0.03, 0.02, 0.02, 0.03, 0.06, 0.15, 0.30, 0.60, 0.80, 1.00, 1.20,
     1.30, 1.10, 0.90, 0.90, 1.00, 1.30, 1.50, 1.40, 1.10, 0.70, 0.35, 0.15]
)  # fmt: skip
_YEARLY_AMPLITUDE = 0.25
_YEARLY_PEAK_DAY = 355

_MEAN_LIFETIME_DAYS = 365.0  # for median engagement; the churn hazard falls with engagement
_SECONDS_BETWEEN_EVENTS = 45.0  # mean gap between two events of one shopping trip
_MAX_INTERESTS = 4
_STAPLE_INTEREST_SHARE = 0.9  # staples (products a customer re-buys) mostly from their interests
_EXPLORE_INTEREST_SHARE = 0.7  # other products: interests, else anything by popularity
_DISCOUNT_SHARE = 0.15


def _micros(timestamp):
    """Microseconds since the epoch."""
    return int(timestamp.to_datetime64().astype("datetime64[us]").astype(np.int64))


def _as_generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(seed_from_random_state(random_state))


def _timestamp(value, name):
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        message = f"{name}={value!r} is not a date or timestamp, e.g. '2024-01-01'."
        raise ValueError(message) from exc
    if pd.isna(ts):
        raise ValueError(f"{name} must be a date or timestamp, got {value!r}.")
    if ts.tz is not None:
        raise ValueError(f"{name}={value!r} must be timezone-naive (event_time is naive).")
    return ts.as_unit("us")


def _period(start, end):
    """[start, end) of valid event times; an `end` at midnight means through that whole day."""
    first, last = _timestamp(start, "start"), _timestamp(end, "end")
    if last == last.normalize():
        last = last + pd.Timedelta(days=1)
    if last <= first:
        raise ValueError(f"end must be after start; got start={start!r}, end={end!r}.")
    return first, last


def _default_sizes(n_events, n_customers, n_products, n_categories):
    if n_customers is None:
        n_customers = max(1, round(n_events / (_EVENTS_PER_BASKET * _BASKETS_PER_CUSTOMER)))
    elif n_customers > n_events:
        raise ValueError(
            f"n_customers={n_customers} must be at most n_events={n_events}: every customer "
            "needs at least one event."
        )
    if n_products is None:
        n_products = int(np.clip(round(3 * np.sqrt(n_events)), 20, 50_000))
        n_products = max(n_products, n_categories or 0)
    elif n_categories is not None and n_categories > n_products:
        raise ValueError(
            f"n_categories={n_categories} must be at most n_products={n_products}: every "
            "category holds at least one product."
        )
    if n_categories is None:
        n_categories = min(n_products, int(np.clip(round(np.sqrt(n_products)), 5, 200)))
    return n_customers, n_products, n_categories


class _Calendar:
    """Cumulative shopping intensity over the period: seasonality as a time warp.

    Times are seconds since `start`. Drawing uniformly in warped time and mapping back gives
    times whose density follows the weekly, daily and yearly activity curves.
    """

    def __init__(self, start, end):
        edges = pd.date_range(start.floor("h"), end.ceil("h"), freq="h")
        hours = edges[:-1]
        yearly = 1 + _YEARLY_AMPLITUDE * np.cos(
            2 * np.pi * (hours.day_of_year.to_numpy() - _YEARLY_PEAK_DAY) / 365.25
        )
        intensity = _HOUR_ACTIVITY[hours.hour] * _WEEKDAY_ACTIVITY[hours.day_of_week] * yearly
        self._seconds = (edges - start).total_seconds().to_numpy()
        self._cumulative = np.concatenate([[0.0], np.cumsum(intensity)])

    def warp(self, seconds):
        return np.interp(seconds, self._seconds, self._cumulative)

    def unwarp(self, warped):
        return np.interp(warped, self._cumulative, self._seconds)


def _power_law_weights(rng, n, exponent):
    """Zipf-like weights in random order (ids say nothing about popularity), summing to 1."""
    weights = (1.0 + rng.permutation(n)) ** -exponent
    return weights / weights.sum()


class _Catalog:
    """Products in categories and brands, with prices and power-law popularity."""

    def __init__(self, rng, n_products, n_categories):
        self.category_weight = _power_law_weights(rng, n_categories, 0.8)
        self._category_cdf = np.cumsum(self.category_weight)
        self.category = np.concatenate(
            [
                rng.permutation(n_categories),
                self.sample_categories(rng, n_products - n_categories),
            ]
        )
        weight = _power_law_weights(rng, n_products, 1.0)

        # Sampling a product inside category c: products sorted by category, each with key
        # c + (cumulative share of its category's weight); a key c + u, u in [0, 1), falls in c.
        self._by_category = np.argsort(self.category, kind="stable")
        sorted_category = self.category[self._by_category]
        sorted_weight = weight[self._by_category]
        bounds = np.searchsorted(sorted_category, np.arange(n_categories + 1))
        category_total = np.add.reduceat(sorted_weight, bounds[:-1])
        cumulative = np.cumsum(sorted_weight)
        before = np.concatenate([[0.0], cumulative[bounds[1:-1] - 1]])
        within = (cumulative - before[sorted_category]) / category_total[sorted_category]
        within[bounds[1:] - 1] = 1.0
        self._key = sorted_category + within
        self._category_start, self._category_size = bounds[:-1], np.diff(bounds)
        self.popularity = (
            self.category_weight[self.category] * weight / category_total[self.category]
        )

        # Brands nest in categories (about one per 6 products), a few big ones per category.
        n_brands = np.maximum(1, np.round(self._category_size / 6)).astype(np.int64)
        first_brand = np.cumsum(n_brands) - n_brands
        local = (n_brands[self.category] * rng.random(n_products) ** 2).astype(np.int64)
        self.brand = first_brand[self.category] + local

        category_price = np.exp(rng.normal(np.log(4.0), 0.8, n_categories))
        brand_premium = np.exp(rng.normal(0.0, 0.3, n_brands.sum()))
        noise = np.exp(rng.normal(0.0, 0.25, n_products))
        price = category_price[self.category] * brand_premium[self.brand] * noise
        self.price = np.maximum(np.round(price, 2), 0.05)

    def sample_categories(self, rng, n):
        return np.minimum(np.searchsorted(self._category_cdf, rng.random(n), side="right"),
                          len(self._category_cdf) - 1)  # fmt: skip

    def sample_products(self, rng, categories, by_popularity=True):
        """One product of each category, by popularity or uniformly (a personal taste)."""
        u = np.minimum(rng.random(len(categories)), 1 - 1e-9)
        if by_popularity:
            index = np.searchsorted(self._key, categories + u, side="right")
        else:
            offset = (u * self._category_size[categories]).astype(np.int64)
            index = self._category_start[categories] + offset
        return self._by_category[index]


class _Customers:
    """Engagement, lifetime (churn), latent interests and staple products of every customer."""

    def __init__(self, rng, n_customers, catalog, calendar, period_seconds):
        n = n_customers
        self.engagement = rng.lognormal(0.0, 0.75, n)
        self.mean_lifetime_days = _MEAN_LIFETIME_DAYS * self.engagement**0.8
        # Half the customers are there from the start, the others arrive during the period.
        self.signup = np.where(rng.random(n) < 0.5, 0.0, rng.random(n) * period_seconds)
        self.churn = self.signup + rng.exponential(self.mean_lifetime_days) * 86_400.0
        self.stop = np.minimum(self.churn, period_seconds)
        self.warped_window = (calendar.warp(self.signup), calendar.warp(self.stop))

        self.n_interests = 1 + rng.binomial(_MAX_INTERESTS - 1, 0.4, n)
        self.interests = catalog.sample_categories(rng, n * _MAX_INTERESTS).reshape(n, -1)

        self.repeat_probability = rng.beta(2.0, 2.0, n)
        self.n_staples = 1 + rng.poisson(6, n)
        self.first_staple = np.cumsum(self.n_staples) - self.n_staples
        owner = np.repeat(np.arange(n), self.n_staples)
        categories = self.preferred_categories(rng, owner, catalog, _STAPLE_INTEREST_SHARE)
        self.staples = catalog.sample_products(rng, categories, by_popularity=False)
        self.trip_size = rng.gamma(4.0, 0.25, n)  # some customers shop in bigger baskets

    def preferred_categories(self, rng, customer, catalog, interest_share):
        """One category per entry of `customer`: an interest of theirs, else any by popularity."""
        slot = (self.n_interests[customer] * rng.random(len(customer))).astype(np.int64)
        interest = self.interests[customer, slot]
        return np.where(rng.random(len(customer)) < interest_share, interest,
                        catalog.sample_categories(rng, len(customer)))  # fmt: skip

    def sample_staples(self, rng, customer):
        """Each customer re-buys a few of their staples far more often than the others."""
        rank = (self.n_staples[customer] * rng.random(len(customer)) ** 2).astype(np.int64)
        return self.staples[self.first_staple[customer] + rank]


def _baskets(rng, customers, calendar, n_valid):
    """Shopping trips: customer, number of events, start time and duration, in time order."""
    n_customers = len(customers.engagement)
    n_baskets = min(n_valid, max(round(n_valid / _EVENTS_PER_BASKET), n_customers))
    low, high = customers.warped_window
    expected = customers.engagement * (high - low)
    guaranteed = int(n_baskets >= n_customers)  # everyone shops once when there are enough trips
    counts = guaranteed + rng.multinomial(
        n_baskets - guaranteed * n_customers, expected / expected.sum()
    )
    customer = np.repeat(np.arange(n_customers), counts)

    appetite = customers.trip_size[customer] * rng.gamma(2.0, 1.0, n_baskets)
    size = 1 + rng.multinomial(n_valid - n_baskets, appetite / appetite.sum())
    duration = rng.gamma(np.maximum(size - 1, 0), _SECONDS_BETWEEN_EVENTS)
    # Trips stay inside the customer's active window (shortened when the window is tiny).
    window = customers.stop[customer] - customers.signup[customer]
    duration = np.minimum(duration, 0.5 * window)
    last_start = customers.stop[customer] - duration - 1e-3  # ends a millisecond before stop
    begin = low[customer] + rng.random(n_baskets) * (calendar.warp(last_start) - low[customer])
    time = np.clip(calendar.unwarp(begin), customers.signup[customer], last_start)
    order = np.argsort(time, kind="stable")
    return Bunch(customer=customer[order], size=size[order], time=time[order],
                 duration=duration[order])  # fmt: skip


def _event_offsets(rng, size, duration):
    """Seconds since the trip's start of each event (a Poisson process pinned to the duration)."""
    basket = np.repeat(np.arange(len(size)), size)
    first = np.cumsum(size) - size
    gap = rng.exponential(1.0, len(basket))
    gap[first] = 0.0
    elapsed = np.cumsum(gap)
    elapsed -= elapsed[first][basket]
    total = elapsed[first + size - 1]
    stretch = np.divide(duration, total, out=np.zeros_like(duration), where=total > 0)
    return basket, elapsed * stretch[basket]


def _valid_events(rng, catalog, customers, baskets, start):
    basket, offset = _event_offsets(rng, baskets.size, baskets.duration)
    customer = baskets.customer[basket]
    n = len(basket)
    event_type = np.searchsorted(np.cumsum(_EVENT_TYPE_SHARES), rng.random(n), side="right")
    event_type = np.minimum(event_type, len(EVENT_TYPES) - 1).astype(np.int8)

    # Returns and repeat purchases come from the customer's staples; the rest is exploration.
    repeat = (rng.random(n) < customers.repeat_probability[customer]) | (event_type == _RETURN)
    product = np.empty(n, dtype=np.int64)
    product[repeat] = customers.sample_staples(rng, customer[repeat])
    explorer = customer[~repeat]
    categories = customers.preferred_categories(rng, explorer, catalog, _EXPLORE_INTEREST_SHARE)
    product[~repeat] = catalog.sample_products(rng, categories)

    discount = np.where(rng.random(n) < _DISCOUNT_SHARE, rng.uniform(0.1, 0.4, n), 0.0)
    price = np.round(catalog.price[product] * (1.0 - discount), 2)
    several = (event_type == _PURCHASE) | (event_type == _ADD_TO_CART)
    quantity = 1 + np.where(several, rng.poisson(0.35, n), 0).astype(np.int64)
    paid = (event_type == _PURCHASE) | (event_type == _RETURN)
    amount = np.where(paid, np.round(price * quantity, 2), 0.0)
    seconds = baskets.time[basket] + offset
    return Bunch(
        event_id=np.arange(1, n + 1, dtype=np.int64),
        customer_id=customer + 1,
        basket_id=basket + 1,
        product_id=product + 1,
        category_id=catalog.category[product] + 1,
        brand_id=catalog.brand[product] + 1,
        event_type=event_type,
        quantity=quantity,
        price=price,
        amount=amount,
        event_time=_micros(start) + np.floor(seconds * 1e6).astype(np.int64),
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


def _dataset_folder(path, subfolder, files, dataset):
    """The folder holding `files`: `path` itself or its `subfolder` (path = the datasets root)."""
    path = Path(path)
    for folder in (path, path / subfolder):
        if all((folder / name).is_file() for name in files):
            return folder
    raise FileNotFoundError(
        f"{dataset} files not found: expected {', '.join(files)} in '{path}' or in "
        f"'{path / subfolder}'. Pass the folder that holds them (nothing is downloaded)."
    )


@validate_params({"path": [str, os.PathLike]}, prefer_skip_nested_validation=True)
def load_tafeng(path):
    """Load the preprocessed Ta-Feng grocery baskets (next-basket recommendation).

    Reads ``history.json``, ``future.json`` and ``keyset_0.json`` .. ``keyset_2.json`` (the
    files of "A Next Basket Recommendation Reality Check", Li et al. 2023) and drops the ``[-1]``
    sentinel baskets that open and close every user's list.

    Parameters
    ----------
    path : str or path-like
        The folder holding the files, or a folder with a ``tafeng/`` subfolder holding them.

    Returns
    -------
    data : sklearn.utils.Bunch
        - ``history``: DataFrame, one row per history basket, in time order per user:
          ``user_id`` (int64), ``basket_index`` (int64, 0 = oldest), ``items`` (list of int).
        - ``future``: DataFrame, one row per user: ``user_id``, ``items`` (the target basket).
        - ``keysets``: list of 3 dicts ``{"train", "val", "test"}`` -> int64 arrays of user ids.
        - ``n_items``: int, the number of item ids (items are 0 .. n_items - 1).

    Raises
    ------
    FileNotFoundError
        When the files are not there.

    Examples
    --------
    >>> data = load_tafeng("../shared/datasets")  # doctest: +SKIP
    >>> len(data.history), len(data.future), len(data.keysets[0]["test"])  # doctest: +SKIP
    (77369, 13858, 2772)
    """
    keyset_files = [f"keyset_{i}.json" for i in range(3)]
    files = ["history.json", "future.json", *keyset_files]
    folder = _dataset_folder(path, "tafeng", files, "Ta-Feng")

    def baskets(name):
        users = json.loads((folder / name).read_text())
        return [(int(user), [b for b in lists if b != [-1]]) for user, lists in users.items()]

    history = [
        (user, index, basket)
        for user, user_baskets in baskets("history.json")
        for index, basket in enumerate(user_baskets)
    ]
    history = pd.DataFrame(history, columns=["user_id", "basket_index", "items"])
    future = pd.DataFrame(
        [(user, user_baskets[0]) for user, user_baskets in baskets("future.json") if user_baskets],
        columns=["user_id", "items"],
    )
    keysets = [json.loads((folder / name).read_text()) for name in keyset_files]
    return Bunch(
        history=history.sort_values(["user_id", "basket_index"], ignore_index=True),
        future=future.sort_values("user_id", ignore_index=True),
        keysets=[
            {part: np.array(ks[part], dtype=np.int64) for part in ("train", "val", "test")}
            for ks in keysets
        ],
        n_items=int(keysets[0]["item_num"]),
    )


@validate_params(
    {"path": [str, os.PathLike], "version": [StrOptions({"sample", "master"})]},
    prefer_skip_nested_validation=True,
)
def load_cdnow(path, *, version="sample"):
    """Load the CDNOW purchase records (churn / repeat-purchase prediction).

    Parameters
    ----------
    path : str or path-like
        The folder holding the file, or a folder with a ``cdnow/`` subfolder holding it.

    version : {"sample", "master"}, default="sample"
        ``"sample"`` reads ``CDNOW_sample.txt`` (2,357 customers, no header, columns
        ``customer_id customer_index yyyymmdd number_of_cds dollar_value``); ``"master"`` reads
        ``CDNOW_master.txt`` (23,570 customers, a header line, no ``customer_index``).

    Returns
    -------
    purchases : pandas.DataFrame
        One row per transaction, in file order: ``customer_id`` (int64), ``date``
        (datetime64), ``number_of_cds`` (int64), ``dollar_value`` (float64). The sample's
        ``customer_index`` (a renumbering of ``customer_id``) is dropped.

    Raises
    ------
    FileNotFoundError
        When the file is not there.

    Examples
    --------
    >>> purchases = load_cdnow("../shared/datasets")  # doctest: +SKIP
    >>> purchases.shape, purchases["customer_id"].nunique()  # doctest: +SKIP
    ((6919, 4), 2357)
    """
    name = f"CDNOW_{version}.txt"
    folder = _dataset_folder(path, "cdnow", [name], "CDNOW")
    columns = ["customer_id", "date", "number_of_cds", "dollar_value"]
    if version == "sample":
        columns.insert(1, "customer_index")
    purchases = pd.read_csv(
        folder / name,
        sep=r"\s+",
        header=None,
        skiprows=int(version == "master"),
        names=columns,
        dtype={"customer_id": "int64", "date": "str", "number_of_cds": "int64",
               "dollar_value": "float64"},  # fmt: skip
    )
    purchases["date"] = pd.to_datetime(purchases["date"], format="%Y%m%d")
    return purchases[["customer_id", "date", "number_of_cds", "dollar_value"]]


@validate_params({"path": [str, os.PathLike]}, prefer_skip_nested_validation=True)
def load_yoochoose(path):
    """Load the YooChoose 100k-click sample (session-based next-item prediction).

    Parameters
    ----------
    path : str or path-like
        The folder holding ``train.tsv`` and ``test.tsv`` (tab-separated, header
        ``SessionId ItemId Time`` in unix seconds), or a folder with a ``yoochoose100k/``
        subfolder holding them.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``train`` and ``test``: DataFrames of clicks in file order, columns ``session_id``
        (int64), ``item_id`` (int64), ``time`` (datetime64[us]).

    Raises
    ------
    FileNotFoundError
        When the files are not there.

    Examples
    --------
    >>> data = load_yoochoose("../shared/datasets")  # doctest: +SKIP
    >>> len(data.train), data.train["session_id"].nunique()  # doctest: +SKIP
    (70278, 17794)
    """
    folder = _dataset_folder(path, "yoochoose100k", ["train.tsv", "test.tsv"], "YooChoose")

    def clicks(name):
        types = {"SessionId": "int64", "ItemId": "int64", "Time": "float64"}
        raw = pd.read_csv(folder / name, sep="\t", dtype=types)
        micros = np.round(raw["Time"].to_numpy() * 1e6).astype(np.int64)
        return pd.DataFrame(
            {
                "session_id": raw["SessionId"].to_numpy(),
                "item_id": raw["ItemId"].to_numpy(),
                "time": micros.view("M8[us]"),
            }
        )

    return Bunch(train=clicks("train.tsv"), test=clicks("test.tsv"))
