"""Folding new events into stored profiles equals recomputing them with the dbt package.

The package is run on generated events as of a cut-off ``T`` and as of a later ``T2``; the
staged events of ``(T, T2]`` folded into the ``T`` profiles must give the ``T2`` profiles,
customer by customer and column by column (baskets as groups, and sessions by a time gap).
Small hand-made frames pin down ageing, new customers, NULL amounts, sessions and the refusals.
"""

import math
import re

import numpy as np
import pandas as pd
import pytest
from test_dbt_package import postgres  # noqa: F401  (a fixture)

from sklearn_basemodel.workflow.fold import (
    PROFILE_COLUMNS,
    fold_events,
    profile_columns,
)

ITEMS = ["product", "category"]
DECAY_RATE = 0.05
FLOATS = ["days_since_last_event", "days_since_first_event", "decay_weight_sum",
          "total_amount", "mean_amount"]  # fmt: skip
EXACT = ["split_at", "n_events", "first_event_at", "last_event_at", "n_amounts", "n_groups",
         "group_ids", "group_last_event_times"]  # fmt: skip


# --------------------------------------------------------------------------- the dbt package
def raw_events():
    """Generated events; views have no amount (NULL counts in neither total nor mean)."""
    from sklearn_basemodel.datasets import make_events

    raw = make_events(8_000, random_state=7)
    raw.loc[raw["event_type"] == "view", "amount"] = np.nan
    return raw


def package_vars(settings):
    from sklearn_basemodel.warehouse import dbt_vars

    return dbt_vars(
        "raw_events",
        ["2023-01-01"],  # a split besides the as-of cut-off: basemodel_splits needs one
        item_columns={"product": "product_id", "category": "category_id"},
        entity_column="customer_id",
        timestamp_column="event_time",
        event_type_column="event_type",
        amount_column="amount",
        event_id_column="event_id",
        decay_rate=DECAY_RATE,
        **settings,
    )


class Warehouse:
    """The package run on the generated events; subclasses say where and how tables are read."""

    def dbt(self, command, *models, as_of):
        # cautious: only the tests of the selected models, not those reading other models too.
        self.run([command, "--indirect-selection", "cautious", "--select", *models],
                 vars={**self.vars, "basemodel_as_of": str(as_of)})  # fmt: skip

    def profiles(self, as_of):
        """The as-of rows of the history table, read as ``basemodel predict`` stores them."""
        from sklearn_basemodel.warehouse import history_rows

        # build: the models' data tests (n_amounts <= n_events, not NULL lists) run too.
        self.dbt("build", "basemodel_splits", "basemodel_history_events",
                 "basemodel_entity_history", as_of=as_of)  # fmt: skip
        lists = [f"{name}_{part}" for name in ITEMS for part in ("items", "weights")]
        frame = self.read("basemodel_entity_history")[[*PROFILE_COLUMNS, *lists]]
        for column in ("split_at", "first_event_at", "last_event_at"):
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
        frame = history_rows(frame[frame["split_at"] == as_of].reset_index(drop=True), ITEMS)
        return frame

    def events(self):
        events = self.read("basemodel_stg_events")
        return events.assign(event_at=pd.to_datetime(events["event_at"]))


class DuckDBWarehouse(Warehouse):
    """A DuckDB file and a project of ``write_dbt_project`` (the library's own route)."""

    def __init__(self, root, settings):
        pytest.importorskip("dbt")
        from sklearn_basemodel.datasets import write_events
        from sklearn_basemodel.warehouse import run_dbt, write_dbt_project

        self.database = root / "fold.duckdb"
        write_events(raw_events(), self.database)
        self.vars = package_vars(settings)
        project = write_dbt_project(root / "project", self.database, self.vars)
        paths = {"target_path": root / "target", "log_path": root / "logs"}
        run_dbt(["deps"], project, profiles_dir=project, log_path=root / "logs")
        self.run = lambda args, vars: run_dbt(args, project, profiles_dir=project, vars=vars,
                                              **paths)  # fmt: skip
        self.dbt("build", "basemodel_stg_events", as_of="2024-06-01")

    def read(self, relation):
        from sklearn_basemodel.warehouse import read_relation

        return read_relation(self.database, relation)


class PostgresWarehouse(Warehouse):
    """A schema of the test server and a copy of the integration project."""

    def __init__(self, root, connection, settings):
        from psycopg2 import sql
        from psycopg2.extras import execute_values
        from test_dbt_integrity import _PostgresWarehouse
        from test_dbt_package import IntegrationProject

        self.warehouse = _PostgresWarehouse(connection)
        self.vars = {**package_vars(settings), "basemodel_loaded_at_column": None,
                     "basemodel_passthrough_columns": [], "basemodel_dedup_order_by": None,
                     "basemodel_unit_tests": False}  # fmt: skip
        raw = raw_events()
        types = {"event_type": "text", "price": "double precision", "amount": "double precision",
                 "event_time": "timestamp"}  # fmt: skip
        columns = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(types.get(c, "bigint")))
                   for c in raw.columns]  # fmt: skip
        rows = [tuple(None if pd.isna(v) else (v.to_pydatetime() if isinstance(v, pd.Timestamp)
                      else v.item() if isinstance(v, np.generic) else v) for v in row)
                for row in raw.astype(object).itertuples(index=False)]  # fmt: skip
        schema = sql.Identifier(self.warehouse.schema)
        table = sql.Identifier(self.warehouse.schema, "raw_events")
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("create schema {}").format(schema))
            columns = sql.SQL(", ").join(columns)
            cursor.execute(sql.SQL("create table {} ({})").format(table, columns))
            insert = sql.SQL("insert into {} values %s").format(table).as_string(cursor)
            execute_values(cursor, insert, rows)
        try:
            project = IntegrationProject(root, "postgres", self.warehouse.env)
            self.run = lambda args, vars: project.dbt(*args, vars=vars)
            self.dbt("build", "basemodel_stg_events", as_of="2024-06-01")
        except BaseException:
            self.warehouse.drop()
            raise

    def read(self, relation):
        return self.warehouse.read(relation)


def cut_offs(events):
    """``T`` at an event time in the middle of the data (so some baskets and sessions go on
    after it), a midpoint and ``T2`` 40 days after ``T``."""
    times = events["event_at"].sort_values(ignore_index=True)
    first = times[int(len(times) * 0.6)]
    return first, first + pd.Timedelta(days=17, seconds=1), first + pd.Timedelta(days=40)


def between(events, start, end):
    return events[(events["event_at"] > start) & (events["event_at"] <= end)]


def assert_same_profiles(actual, expected):
    """Same customers, every column equal (floating point values to 1e-9 relative)."""
    assert list(actual.columns) == list(expected.columns)
    assert actual["entity_id"].is_unique
    assert set(actual["entity_id"]) == set(expected["entity_id"])
    actual = actual.set_index("entity_id").loc[expected["entity_id"]]
    expected = expected.set_index("entity_id")
    for column in EXACT:
        assert actual[column].tolist() == expected[column].tolist(), column
    for column in FLOATS:
        np.testing.assert_allclose(actual[column].astype(float), expected[column].astype(float),
                                   rtol=1e-9, atol=0, equal_nan=True, err_msg=column)  # fmt: skip
    for name in ITEMS:
        column = f"{name}_history"
        for entity, got, want in zip(expected.index, actual[column], expected[column]):
            assert got.keys() == want.keys(), (column, entity)
            np.testing.assert_allclose([got[k] for k in want], list(want.values()), rtol=1e-9)


def continued_groups(before, after, cut_off):
    """(customer, group) pairs in the state before ``cut_off`` with an event after it."""
    later = {
        (entity, group)
        for entity, groups, times in after[["entity_id", "group_ids", "group_last_event_times"]]
        .itertuples(index=False)
        for group, time in zip(groups, times)
        if pd.Timestamp(time) > cut_off
    }  # fmt: skip
    return {(e, g) for e, groups in zip(before["entity_id"], before["group_ids"]) for g in groups
            if (e, g) in later}  # fmt: skip


def assert_groups_and_amounts(profiles, events, cut_off, gap_minutes):
    """The columns folding relies on, checked against pandas on the staged events: each
    customer's groups (sessions: ``<customer>@<first event time>``) with their last event
    times, and the number of non-NULL amounts."""
    seen = events[events["event_at"] <= cut_off].sort_values(["entity_id", "event_at", "event_id"])
    if gap_minutes is not None:
        pause = seen.groupby("entity_id")["event_at"].diff()
        starts = pause.isna() | (pause > pd.Timedelta(minutes=gap_minutes))
        start = seen["event_at"].where(starts).groupby(seen["entity_id"]).ffill()
        # '2024-05-01 10:00:00', or with the fraction of a second and no trailing zeros
        text = start.map(lambda t: re.sub(r"\.?0*$", "", t.isoformat(sep=" ")) if t.microsecond
                         else t.isoformat(sep=" "))  # fmt: skip
        seen = seen.assign(group_id=seen["entity_id"] + "@" + text)
    grouped = seen.dropna(subset=["group_id"])
    expected = {e: dict(zip(g["group_id"], g["event_at"])) for e, g in grouped.groupby("entity_id")}
    amounts = seen.groupby("entity_id")["amount"].count()
    assert set(profiles["entity_id"]) == set(seen["entity_id"])
    for entity, groups, times, n_groups, n_amounts in profiles[
        ["entity_id", "group_ids", "group_last_event_times", "n_groups", "n_amounts"]
    ].itertuples(index=False):
        assert dict(zip(groups, map(pd.Timestamp, times))) == expected[entity], entity
        assert len(groups) == n_groups and times == sorted(times)
        assert n_amounts == amounts[entity]


SETTINGS = pytest.mark.parametrize(
    "settings",
    [{"group_column": "basket_id"}, {"group_column": None, "session_gap_minutes": 45}],
    ids=["baskets", "sessions"],
)


@SETTINGS
def test_folding_equals_the_dbt_package_on_duckdb(tmp_path, settings):
    check_folding(DuckDBWarehouse(tmp_path, settings), settings)


@pytest.mark.postgres
@SETTINGS
def test_folding_equals_the_dbt_package_on_postgres(tmp_path, postgres, settings):  # noqa: F811
    warehouse = PostgresWarehouse(tmp_path, postgres, settings)
    try:
        check_folding(warehouse, settings)
    finally:
        warehouse.warehouse.drop()


def check_folding(warehouse, settings):
    """Fold the events of (T, T2] into the T profiles: the T2 profiles, in one or two steps."""
    events = warehouse.events()
    first, middle, second = cut_offs(events)
    before = warehouse.profiles(first)
    after = warehouse.profiles(second)
    for profiles, cut_off in ((before, first), (after, second)):
        assert_groups_and_amounts(profiles, events, cut_off, settings.get("session_gap_minutes"))
    new = between(events, first, second)
    options = {"decay_rate": DECAY_RATE, "item_names": ITEMS,
               "session_gap_minutes": settings.get("session_gap_minutes")}  # fmt: skip

    folded = fold_events(before, new, as_of=second, **options)
    assert_same_profiles(folded, after)
    # In two steps (through a cut-off no run was made at): the same profiles.
    halfway = fold_events(before, between(events, first, middle), as_of=middle, **options)
    assert_same_profiles(fold_events(halfway, between(events, middle, second), as_of=second,
                                     **options), after)  # fmt: skip

    # The data exercise every case: new customers, customers without new events (ageing
    # only), and baskets or sessions that were open at T and go on after it.
    entities = set(before["entity_id"])
    assert set(new["entity_id"]) - entities
    assert entities - set(new["entity_id"])
    assert continued_groups(before, after, first)
    assert (after["n_groups"] < after["n_events"]).any()
    assert (after["n_amounts"] < after["n_events"]).any() and after["n_amounts"].gt(0).any()


# --------------------------------------------------------------------------- by hand
T = pd.Timestamp("2024-03-01 10:00:00")


def state(**columns):
    """One stored profile as of T: ann, two events in basket b1, amounts 10 and NULL."""
    row = {
        "split_at": T, "entity_id": "ann", "n_events": 2,
        "first_event_at": T - pd.Timedelta(days=4), "last_event_at": T - pd.Timedelta(days=1),
        "days_since_last_event": 1.0, "days_since_first_event": 4.0,
        "decay_weight_sum": math.exp(-0.4) + math.exp(-0.1), "total_amount": 10.0,
        "mean_amount": 10.0, "n_amounts": 1, "n_groups": 1, "group_ids": ["b1"],
        "group_last_event_times": [(T - pd.Timedelta(days=1)).to_pydatetime()],
        "product_history": {"tea": math.exp(-0.4), "jam": math.exp(-0.1)},
        "category_history": {"food": math.exp(-0.4) + math.exp(-0.1)},
    }  # fmt: skip
    row.update(columns)
    return pd.DataFrame([row])[profile_columns(ITEMS)]


def events(*rows):
    columns = ["entity_id", "event_id", "event_at", "group_id", "amount", "product", "category"]
    return pd.DataFrame(list(rows), columns=columns)


def fold(profiles, new, as_of, **options):
    return fold_events(profiles, new, as_of=as_of, decay_rate=0.1, item_names=ITEMS, **options)


def test_ageing_only_decays_weights_and_moves_recency():
    out = fold(state(), None, T + pd.Timedelta(days=3))
    row = out.iloc[0]
    assert row["split_at"] == T + pd.Timedelta(days=3)
    assert (row["n_events"], row["n_groups"], row["n_amounts"]) == (2, 1, 1)
    assert row["days_since_last_event"] == 4.0 and row["days_since_first_event"] == 7.0
    assert math.isclose(row["decay_weight_sum"], math.exp(-0.7) + math.exp(-0.4), rel_tol=1e-12)
    assert math.isclose(row["product_history"]["tea"], math.exp(-0.7), rel_tol=1e-12)
    assert math.isclose(row["category_history"]["food"], math.exp(-0.7) + math.exp(-0.4),
                        rel_tol=1e-12)  # fmt: skip
    assert row["group_ids"] == ["b1"] and row["total_amount"] == 10.0
    # An empty events frame is the same as None.
    empty = fold(state(), events(), T + pd.Timedelta(days=3))
    pd.testing.assert_frame_equal(empty, out)


def test_a_new_customer_gets_a_row_and_a_known_one_grows():
    as_of = T + pd.Timedelta(days=2)
    new = events(
        ("bob", "e3", T + pd.Timedelta(days=1), "b7", 4.0, "milk", "dairy"),
        ("bob", "e4", as_of, "b7", 6.0, "milk", None),
        ("ann", "e5", as_of, "b1", 2.0, None, "food"),  # the stored basket goes on
    )
    out = fold(state(), new, as_of).set_index("entity_id")
    assert out.index.tolist() == ["ann", "bob"]
    bob = out.loc["bob"]
    assert (bob["n_events"], bob["n_groups"], bob["n_amounts"]) == (2, 1, 2)
    assert bob["first_event_at"] == T + pd.Timedelta(days=1) and bob["last_event_at"] == as_of
    assert (bob["total_amount"], bob["mean_amount"]) == (10.0, 5.0)
    assert bob["days_since_first_event"] == 1.0 and bob["days_since_last_event"] == 0.0
    assert math.isclose(bob["product_history"]["milk"], math.exp(-0.1) + 1.0)
    assert bob["category_history"] == {"dairy": pytest.approx(math.exp(-0.1))}
    assert bob["group_ids"] == ["b7"]
    ann = out.loc["ann"]
    assert (ann["n_events"], ann["n_groups"], ann["total_amount"]) == (3, 1, 12.0)
    assert ann["mean_amount"] == 6.0 and ann["group_ids"] == ["b1"]
    assert ann["group_last_event_times"] == [as_of]
    assert ann["product_history"].keys() == {"tea", "jam"}


def test_null_amounts_count_neither_in_the_total_nor_in_the_mean():
    as_of = T + pd.Timedelta(days=1)
    never = state(total_amount=0.0, mean_amount=np.nan, n_amounts=0)  # amounts all NULL so far
    out = fold(never, events(("ann", "e3", as_of, "b2", None, "tea", "food")), as_of)
    assert (out["total_amount"][0], out["n_amounts"][0]) == (0.0, 0)
    assert math.isnan(out["mean_amount"][0])
    out = fold(never, events(("ann", "e3", as_of, "b2", 3.5, "tea", "food")), as_of)
    assert (out["total_amount"][0], out["mean_amount"][0], out["n_amounts"][0]) == (3.5, 3.5, 1)
    assert out["n_groups"][0] == 2 and out["group_ids"][0] == ["b1", "b2"]
    # Without an amount column the totals stay NULL.
    unset = state(total_amount=np.nan, mean_amount=np.nan, n_amounts=0)
    out = fold(unset, events(("ann", "e3", as_of, "b2", None, "tea", "food")), as_of)
    assert math.isnan(out["total_amount"][0]) and math.isnan(out["mean_amount"][0])


def test_sessions_continue_within_the_gap_and_start_after_it():
    open_session = state(group_ids=["ann@2024-03-01 09:50:00"],
                         group_last_event_times=[pd.Timestamp("2024-03-01 09:55:00")])  # fmt: skip
    new = events(
        ("ann", "e3", pd.Timestamp("2024-03-01 10:25:00"), "ann", None, "tea", "food"),  # 30 min
        ("ann", "e4", pd.Timestamp("2024-03-01 10:55:00.500000"), "ann", None, "tea", "food"),
        ("ann", "e5", pd.Timestamp("2024-03-01 11:00:00"), "ann", None, "tea", "food"),
    )
    out = fold(open_session, new, T + pd.Timedelta(hours=2), session_gap_minutes=30)
    assert out["group_ids"][0] == ["ann@2024-03-01 09:50:00", "ann@2024-03-01 10:55:00.5"]
    assert out["group_last_event_times"][0] == [pd.Timestamp("2024-03-01 10:25:00"),
                                                pd.Timestamp("2024-03-01 11:00:00")]  # fmt: skip
    assert out["n_groups"][0] == 2
    # A longer pause at T: the first new event starts its own session.
    out = fold(open_session, new, T + pd.Timedelta(hours=2), session_gap_minutes=29.5)
    assert out["n_groups"][0] == 3


@pytest.mark.parametrize(
    ("when", "message"),
    [(T, "at or before the profiles' cut-off"),
     (T - pd.Timedelta(days=9), "at or before the profiles' cut-off"),
     (T + pd.Timedelta(days=2, microseconds=1), "after as_of")],
)  # fmt: skip
def test_events_outside_the_fold_window_are_refused(when, message):
    new = events(("ann", "e3", T + pd.Timedelta(days=1), "b2", 1.0, "tea", "food"),
                 ("ann", "e9", when, "b2", 1.0, "tea", "food"))  # fmt: skip
    with pytest.raises(ValueError, match=message) as caught:
        fold(state(), new, T + pd.Timedelta(days=2))
    assert "'e9'" in str(caught.value)


def test_an_event_given_twice_is_refused():
    twice = ("ann", "e3", T + pd.Timedelta(days=1), "b2", 1.0, "tea", "food")
    with pytest.raises(ValueError, match="given twice"):
        fold(state(), events(twice, twice), T + pd.Timedelta(days=2))


def test_a_state_with_a_history_window_is_refused():
    with pytest.raises(ValueError, match="history window"):
        fold(state(), None, T + pd.Timedelta(days=2), history_days=30)
    # Without the window the same call folds.
    assert fold(state(), None, T + pd.Timedelta(days=2))["n_events"][0] == 2


@pytest.mark.parametrize(
    ("profiles", "as_of", "message"),
    [
        (state().assign(split_id=1), T, "cannot update: \\['split_id'\\]"),
        (state().drop(columns="n_amounts"), T, "lack the columns \\['n_amounts'\\]"),
        (pd.concat([state(), state(entity_id="bob", split_at=T + pd.Timedelta(1, "s"))]), T,
         "mix 2 cut-offs"),
        (pd.concat([state(), state()]), T, "twice"),
        (state(), T - pd.Timedelta(days=1), "before the profiles' cut-off"),
        (state(), "now", "the latest staged event time"),
    ],
    ids=["unknown-column", "missing-column", "two-cut-offs", "duplicate", "backwards", "now"],
)
def test_unusable_profiles_are_refused(profiles, as_of, message):
    with pytest.raises(ValueError, match=message):
        fold(profiles, None, as_of)
