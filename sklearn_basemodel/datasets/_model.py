"""The generative model behind make_events: calendar, catalog, customers, shopping trips."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from .._hashing import seed_from_random_state

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
