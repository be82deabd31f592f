from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from sklearn_basemodel.datasets import (
    EVENT_TYPES,
    MALFORMED_REASONS,
    load_cdnow,
    load_tafeng,
    load_yoochoose,
    make_events,
    write_events,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"

COLUMNS = {
    "event_id": "int64",
    "customer_id": "Int64",
    "basket_id": "int64",
    "product_id": "int64",
    "category_id": "int64",
    "brand_id": "int64",
    "event_type": "category",
    "quantity": "int64",
    "price": "float64",
    "amount": "float64",
    "event_time": "datetime64[us]",
}


@pytest.fixture(scope="module")
def generated():
    return make_events(30_000, random_state=1, return_truth=True)


@pytest.fixture(scope="module")
def valid(generated):
    events, truth = generated
    return events[~truth.malformed]


def _purchases(valid):
    return valid[valid["event_type"] == "purchase"]


def test_same_seed_gives_identical_tables():
    first, first_truth = make_events(5_000, random_state=3, return_truth=True)
    second, second_truth = make_events(5_000, random_state=3, return_truth=True)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first_truth.customers, second_truth.customers)
    np.testing.assert_array_equal(first_truth.malformed, second_truth.malformed)


def test_different_seeds_give_different_tables():
    first = make_events(5_000, random_state=3)
    second = make_events(5_000, random_state=4)
    assert not first["event_time"].equals(second["event_time"])
    assert not first["product_id"].equals(second["product_id"])


@pytest.mark.parametrize("n_events", [1, 137, 10_000])
def test_size_and_schema(n_events):
    events = make_events(n_events, random_state=0)
    assert len(events) == n_events
    assert {c: str(t) for c, t in events.dtypes.items()} == COLUMNS
    assert set(events["event_type"].cat.categories) == set(EVENT_TYPES)


def test_default_sizes_scale_with_the_number_of_events():
    _, small = make_events(10_000, random_state=0, return_truth=True)
    _, large = make_events(200_000, random_state=0, return_truth=True)
    assert 100 <= len(small.customers) <= 400
    assert len(large.customers) == pytest.approx(20 * len(small.customers), rel=0.05)
    assert len(small.products) < len(large.products) < 20 * len(small.products)


def test_explicit_sizes_are_honoured():
    events, truth = make_events(
        3_000, n_customers=40, n_products=60, n_categories=7, random_state=0, return_truth=True
    )
    valid = events[~truth.malformed]
    assert len(truth.customers) == 40 and valid["customer_id"].nunique() == 40
    assert valid["product_id"].between(1, 60).all()
    assert set(truth.products["category_id"]) == set(range(1, 8))


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.1])
def test_malformed_share_and_kinds(fraction):
    n_events = 20_000
    events, truth = make_events(
        n_events, malformed_fraction=fraction, random_state=2, return_truth=True
    )
    reason = truth.malformed_reason
    assert truth.malformed.mean() == pytest.approx(fraction, abs=1 / n_events)
    counts = reason.value_counts()
    for kind in MALFORMED_REASONS:
        assert abs(counts[kind] - fraction * n_events / len(MALFORMED_REASONS)) <= 1

    # Each kind shows in the data exactly on its rows, and valid rows have none of them.
    in_period = events["event_time"].between(truth.start, truth.end, inclusive="left")
    time_present = events["event_time"].notna()
    duplicated = events.duplicated(keep="first")
    np.testing.assert_array_equal(events["customer_id"].isna(), reason == "null_customer_id")
    np.testing.assert_array_equal(~time_present, reason == "null_event_time")
    np.testing.assert_array_equal(time_present & ~in_period, reason == "time_out_of_range")
    np.testing.assert_array_equal(duplicated, reason == "duplicate")
    np.testing.assert_array_equal(events["amount"] < 0, reason == "negative_amount")
    assert np.array_equal(truth.malformed, reason.notna())
    assert events.loc[~duplicated, "event_id"].is_unique


def test_valid_rows_are_consistent_with_the_catalog(generated, valid):
    _, truth = generated
    product = truth.products.set_index("product_id").loc[valid["product_id"]]
    np.testing.assert_array_equal(valid["category_id"], product["category_id"])
    np.testing.assert_array_equal(valid["brand_id"], product["brand_id"])
    assert (valid["price"] > 0).all() and (valid["quantity"] >= 1).all()
    assert (valid["price"].to_numpy() <= product["base_price"].to_numpy()).all()
    paid = valid["event_type"].isin(["purchase", "return"])
    expected = np.where(paid, valid["price"] * valid["quantity"], 0.0)
    np.testing.assert_allclose(valid["amount"], expected, atol=0.006)
    # One customer per basket, and a basket is one short trip.
    baskets = valid.groupby("basket_id")
    assert (baskets["customer_id"].nunique() == 1).all()
    duration = baskets["event_time"].max() - baskets["event_time"].min()
    assert (duration < pd.Timedelta(hours=6)).all()


def test_event_types_are_heterogeneous_and_mostly_purchases(valid):
    shares = valid["event_type"].value_counts(normalize=True)
    assert set(shares[shares > 0.01].index) == set(EVENT_TYPES)
    assert 0.65 < shares["purchase"] < 0.9


def _repeat_rate(purchases):
    """Share of purchases of a product the customer already bought in an earlier basket."""
    first = purchases.groupby(["customer_id", "product_id"])["basket_id"].transform("min")
    return (purchases["basket_id"] > first).mean()


def test_repeat_purchases_exceed_a_shuffled_control(valid):
    # The control shuffles products within their category, so it keeps each customer's
    # category mix and the products' popularity: only personal re-buying is removed.
    purchases = _purchases(valid)
    rng = np.random.default_rng(0)
    control = purchases.assign(
        product_id=purchases.groupby("category_id")["product_id"].transform(
            lambda products: rng.permutation(products.to_numpy())
        )
    )
    observed, chance = _repeat_rate(purchases), _repeat_rate(control)
    assert observed > chance + 0.08
    assert observed > 1.2 * chance


def _interest_share(purchases, interests):
    merged = purchases.merge(
        interests, on=["customer_id", "category_id"], how="left", indicator=True
    )
    return (merged["_merge"] == "both").mean()


def test_purchases_concentrate_in_latent_interests(generated, valid):
    _, truth = generated
    purchases = _purchases(valid)
    rng = np.random.default_rng(0)
    control = purchases.assign(customer_id=rng.permutation(purchases["customer_id"].to_numpy()))
    observed = _interest_share(purchases, truth.interests)
    chance = _interest_share(control, truth.interests)
    assert observed > 0.7
    assert observed > 2 * chance


def test_customers_stop_at_churn_and_low_engagement_churns_more(generated, valid):
    _, truth = generated
    customers = truth.customers.set_index("customer_id")
    times = valid.join(customers, on="customer_id")
    assert (times["event_time"] >= times["signup_time"]).all()
    assert (times["event_time"] <= times["churn_time"]).all()

    split = truth.start + (truth.end - truth.start) / 2
    before = valid.loc[valid["event_time"] < split, "customer_id"].unique()
    after = valid.loc[valid["event_time"] >= split, "customer_id"].unique()
    active = customers.loc[before].assign(gone=lambda c: ~c.index.isin(after))
    tercile = pd.qcut(active["engagement"], 3, labels=False)
    gone = active.groupby(tercile)["gone"].mean()
    assert gone[0] > gone[2] + 0.2

    # Both mechanisms behind it: the churn hazard falls with engagement ...
    churned = customers["churned"]
    assert (
        customers.loc[churned, "engagement"].median()
        < 0.8 * customers.loc[~churned, "engagement"].median()
    )
    # ... and engaged customers shop more often while they are active.
    trips = valid.groupby("customer_id")["basket_id"].nunique()
    shopper = customers.loc[trips.index]
    active_days = (np.minimum(shopper["churn_time"], truth.end) - shopper["signup_time"]).dt.days
    trips_per_day = trips / active_days.clip(lower=1)
    assert shopper["engagement"].corr(trips_per_day, method="spearman") > 0.25


def test_weekly_seasonality_is_visible(valid):
    trip_start = valid.groupby("basket_id")["event_time"].min()
    weekday = trip_start.dt.day_of_week.value_counts(normalize=True)
    assert weekday[5] > 1.4 * weekday[0]  # Saturday vs Monday
    assert weekday[[5, 6]].sum() > 2 / 7 + 0.04
    assert (trip_start.dt.hour.between(2, 4)).mean() < 0.02  # nights are quiet


def test_write_events_round_trips_rows_and_types(tmp_path, generated):
    events, _ = generated
    database = tmp_path / "events.duckdb"
    assert write_events(events, database) == "main.raw_events"
    with duckdb.connect(str(database)) as con:
        types = dict(con.sql("DESCRIBE main.raw_events").fetchall()[i][:2] for i in range(11))
        back = con.sql("SELECT * FROM main.raw_events").df()
    assert types == {
        "event_id": "BIGINT", "customer_id": "BIGINT", "basket_id": "BIGINT",
        "product_id": "BIGINT", "category_id": "BIGINT", "brand_id": "BIGINT",
        "event_type": "VARCHAR", "quantity": "BIGINT", "price": "DOUBLE", "amount": "DOUBLE",
        "event_time": "TIMESTAMP",
    }  # fmt: skip
    expected = events.assign(event_type=events["event_type"].astype(str))
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)
    assert str(back["customer_id"].dtype) == "Int64" and back["customer_id"].isna().sum() > 0
    assert str(back["event_time"].dtype) == "datetime64[us]"


def test_write_events_to_an_open_connection_and_schema_replaces_the_table():
    con = duckdb.connect()
    assert write_events(make_events(2_000, random_state=0), con, "events", "raw") == "raw.events"
    assert write_events(make_events(500, random_state=0), con, "events", "raw") == "raw.events"
    assert con.sql("SELECT count(*) FROM raw.events").fetchall() == [(500,)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_events": 0}, "n_events"),
        ({"n_events": 2.5}, "n_events"),
        ({"n_events": 10, "n_customers": 11}, "n_customers=11 must be at most n_events=10"),
        ({"n_customers": 0}, "n_customers"),
        ({"n_products": 3, "n_categories": 4}, "n_categories=4 must be at most n_products=3"),
        ({"malformed_fraction": 0.6}, r"malformed_fraction.*\[0.0, 0.5\]"),
        ({"malformed_fraction": -0.1}, "malformed_fraction"),
        ({"start": "2024-02-01", "end": "2024-01-01"}, "end must be after start"),
        ({"start": "not a date"}, "start='not a date' is not a date"),
        ({"end": pd.Timestamp("2024-12-31", tz="UTC")}, "end=.* must be timezone-naive"),
        ({"random_state": "seed"}, "random_state"),
        ({"return_truth": "yes"}, "return_truth"),
    ],
)
def test_bad_parameters_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_events(**{"n_events": 1_000, **kwargs})


def test_write_events_bad_parameters_raise():
    events = make_events(100, random_state=0)
    with pytest.raises(ValueError, match="'events' parameter"):
        write_events(events.to_dict(), duckdb.connect())
    with pytest.raises(ValueError, match="table must be a non-empty name"):
        write_events(events, duckdb.connect(), table=" ")


@pytest.mark.parametrize("loader", [load_tafeng, load_cdnow, load_yoochoose])
def test_loaders_raise_a_clear_error_when_files_are_absent(tmp_path, loader):
    with pytest.raises(FileNotFoundError, match=r"not found: expected .*\(nothing is downloaded\)"):
        loader(tmp_path / "absent")


needs_datasets = pytest.mark.skipif(
    not SHARED_DATASETS.is_dir(), reason=f"public datasets not found at {SHARED_DATASETS}"
)


@needs_datasets
def test_load_tafeng_on_the_real_files():
    data = load_tafeng(SHARED_DATASETS)
    assert len(data.history) == 77_369
    assert data.history["user_id"].nunique() == len(data.future) == 13_858
    assert data.n_items == 11_997
    items = np.concatenate([np.asarray(b) for b in data.history["items"]])
    assert items.min() == 0 and items.max() == data.n_items - 1  # sentinels dropped
    assert all(len(b) > 0 for b in data.future["items"])
    assert [len(k["test"]) for k in data.keysets] == [2_772] * 3
    first = data.history[data.history["user_id"] == 1]
    assert first["basket_index"].tolist() == list(range(len(first)))
    assert first["items"].iloc[0] == [0, 1, 2]


@needs_datasets
def test_load_cdnow_on_the_real_files():
    purchases = load_cdnow(SHARED_DATASETS / "cdnow")
    assert purchases.shape == (6_919, 4)
    assert purchases["customer_id"].nunique() == 2_357
    assert purchases["date"].min() == pd.Timestamp("1997-01-01")
    assert purchases["date"].max() <= pd.Timestamp("1998-06-30")
    assert purchases.iloc[0].tolist() == [4, pd.Timestamp("1997-01-01"), 2, 29.33]
    master = load_cdnow(SHARED_DATASETS, version="master")
    assert len(master) == 69_659 and master["customer_id"].nunique() == 23_570


@needs_datasets
def test_load_yoochoose_on_the_real_files():
    data = load_yoochoose(SHARED_DATASETS)
    assert len(data.train) == 70_278 and data.train["session_id"].nunique() == 17_794
    assert data.train["item_id"].nunique() == 2_933
    assert len(data.test) == 13_568 and data.test["session_id"].nunique() == 3_416
    assert data.train["time"].min() >= pd.Timestamp("2014-04-01")
    assert data.train["time"].max() < pd.Timestamp("2014-04-08")
    assert data.train["time"].iloc[0] == pd.Timestamp("2014-04-02 11:17:46.940")

