"""The dbt package on a user's own data: their column names, epoch times, their staging model.

A raw orders table is generated (customer ``shopper``, epoch milliseconds as text in ``ts_ms``,
``sku``/``dept`` items, ``price_cents``; no basket id) and read through the user's own dbt
model ``workflow_orders`` (integration_tests/models/workflow), named by
``basemodel_events_model``: a fresh ``dbt build`` must build that view first. Events group into
sessions by a 30-minute gap, churn is labelled for customers active in the last 20 days, and
``basemodel_as_of: now`` adds a cut-off at the latest event. Every output is checked against an
independent pandas computation, every raw row by its line number. DuckDB always, PostgreSQL
when a server is reachable.
"""

import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_dbt_integrity import _DuckDBWarehouse, _PostgresWarehouse
from test_dbt_package import IntegrationProject, postgres  # noqa: F401  (a fixture)

from sklearn_basemodel.warehouse import DbtRunError

RAW_TABLE = "workflow_raw_orders"
SPLITS = [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-01")]
HORIZON = pd.Timedelta(days=14)
ACTIVE = pd.Timedelta(days=20)
GAP = pd.Timedelta(minutes=30)
VARS = {
    "workflow_orders_enabled": True,
    "basemodel_events_model": "workflow_orders",
    "basemodel_entity_column": "customer_ref",
    "basemodel_timestamp_column": "placed_at_ms",
    "basemodel_time_format": "epoch_ms",
    "basemodel_event_type_column": "action",
    "basemodel_item_columns": ["sku", "dept"],
    "basemodel_group_column": None,
    "basemodel_amount_column": "price",
    "basemodel_loaded_at_column": None,
    "basemodel_passthrough_columns": ["line_no"],
    "basemodel_dedup_order_by": "line_no",
    "basemodel_valid_from": None,
    "basemodel_valid_to": None,
    "basemodel_session_gap_minutes": 30,
    "basemodel_active_days": 20,
    "basemodel_as_of": "now",
    "basemodel_split_times": [str(s.date()) for s in SPLITS],
    "basemodel_horizon_days": 14,
    "basemodel_propensity_event_types": [],
    "basemodel_propensity_items": {},
    "basemodel_propensity_item_event_types": None,
    "basemodel_sketch_item_column": "sku",
    "basemodel_unit_tests": False,
}
# The integration project's comparisons with its own seeds do not apply to this data.
SELECT = ["--select", "workflow_orders+", "--exclude", "path:models/compare",
          "basemodel_history_sketches"]  # fmt: skip


def make_orders(seed=0):
    """Raw orders: a few customers, visits of several lines a few minutes apart (some gaps of
    exactly 30 minutes, which stay in one session, and 30 minutes and a second, which do not),
    and malformed rows, each with the reason it must be rejected for (None: staged)."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    steps = [pd.Timedelta(minutes=m) for m in (1, 7, 30)] + [GAP + pd.Timedelta(seconds=1)]
    rows = []
    for customer in range(10):
        # Some customers stop early: dormant at the later cut-offs.
        end_day = 120 if customer % 3 else 50
        for _ in range(int(rng.integers(2, 7))):
            time = start + pd.Timedelta(milliseconds=int(rng.integers(0, end_day * 86400_000)))
            for _ in range(int(rng.integers(1, 5))):
                time += steps[int(rng.integers(len(steps)))]
                rows.append({
                    "shopper": f"shopper {customer:02d}",
                    "ts_ms": str(time.value // 1_000_000),
                    "sku": f"sku-{int(rng.integers(8))}",
                    "dept": ["food", "toys", None][int(rng.integers(3))],
                    "action": ["view", "buy"][int(rng.integers(2))],
                    "price_cents": None if rng.random() < 0.3 else int(rng.integers(100, 9000)),
                    "reason": None,
                })  # fmt: skip
    good = dict(rows[0])
    rows += [
        {**good, "ts_ms": f"  {good['ts_ms']}\t", "reason": "duplicate"},  # same event re-spelled
        {**good, "ts_ms": "n/a", "reason": "unparseable_timestamp"},
        {**good, "ts_ms": "99999999999999999", "reason": "unparseable_timestamp"},  # year > 9999
        {**good, "ts_ms": "", "reason": "null_timestamp"},
        {**good, "shopper": "  ", "reason": "null_entity"},
        {**good, "action": None, "reason": "null_event_type"},
    ]
    frame = pd.DataFrame(rows)
    frame.insert(0, "line_no", np.arange(1, len(frame) + 1))
    return frame


def expected_events(orders):
    """The events the package must stage, with their sessions."""
    events = orders[orders["reason"].isna()].copy()
    events["entity_id"] = events["shopper"].str.strip()
    events["event_at"] = pd.to_datetime(events["ts_ms"].astype("int64"), unit="ms")
    events["amount"] = events["price_cents"] / 100.0
    events = events.sort_values(["entity_id", "event_at"], ignore_index=True)
    gap = events.groupby("entity_id")["event_at"].diff()
    events["session"] = (gap.isna() | (gap > GAP)).cumsum()
    events["session_start"] = events.groupby("session")["event_at"].transform("min")
    return events


class _Writer:
    """Creates the raw table (all text columns but the line number) in a warehouse."""

    @staticmethod
    def duckdb(warehouse, orders):
        with duckdb.connect(str(warehouse.database)) as connection:
            frame = orders.drop(columns="reason").astype(object).where(orders.notna(), None)
            connection.register("orders_frame", frame)
            connection.execute(
                f"create table {RAW_TABLE} as select cast(line_no as integer) as line_no,"
                " shopper, ts_ms, sku, dept, action, cast(price_cents as integer) as price_cents"
                " from orders_frame"
            )

    @staticmethod
    def postgres(warehouse, orders):
        sql = warehouse.sql
        with warehouse.connection.cursor() as cursor:
            cursor.execute(sql.SQL("create schema {}").format(sql.Identifier(warehouse.schema)))
        warehouse.execute(
            f"create table {RAW_TABLE} (line_no integer, shopper text, ts_ms text, sku text,"
            " dept text, action text, price_cents integer)"
        )
        columns = ["line_no", "shopper", "ts_ms", "sku", "dept", "action", "price_cents"]
        values = [
            tuple(None if pd.isna(v) else (int(v) if isinstance(v, (np.integer, float)) else v)
                  for v in row)
            for row in orders[columns].itertuples(index=False)
        ]  # fmt: skip
        with warehouse.connection.cursor() as cursor:
            cursor.executemany(
                sql.SQL("insert into {}.{} values (%s, %s, %s, %s, %s, %s, %s)").format(
                    sql.Identifier(warehouse.schema), sql.Identifier(RAW_TABLE)
                ),
                values,
            )


def _node_order(result):
    return [r.node.name for r in result.result.results]


def check_workflow(project, warehouse, orders):
    result = project.dbt("build", *SELECT, vars=VARS)
    statuses = {r.node.name: str(r.status) for r in result.result.results}
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    # The user's view did not exist: dbt built it first because the package refs it.
    order = _node_order(result)
    assert order.index("workflow_orders") < order.index("basemodel_stg_events")
    assert "basemodel_events_reconcile" in statuses

    # Every raw row in exactly one place, identified by its line number.
    staged = warehouse.read("basemodel_stg_events")
    rejected = warehouse.read("basemodel_rejected_events")
    placed = pd.concat([staged["line_no"], rejected["line_no"]])
    assert placed.is_unique and set(placed) == set(orders["line_no"])
    reasons = dict(zip(rejected["line_no"], rejected["rejection_reason"]))
    expected_reasons = orders.dropna(subset=["reason"])
    assert reasons == dict(zip(expected_reasons["line_no"], expected_reasons["reason"]))

    # Epoch milliseconds read to the millisecond, the derived amount carried through.
    events = expected_events(orders)
    got = staged.assign(event_at=pd.to_datetime(staged["event_at"])).set_index("line_no")
    want = events.set_index("line_no")
    assert (got.loc[want.index, "event_at"] == want["event_at"]).all()
    np.testing.assert_allclose(got.loc[want.index, "amount"].astype(float), want["amount"])

    # Hyperedges are the sessions: (customer, first event, items in order).
    edges = warehouse.read("basemodel_hyperedges")
    assert (edges["group_id"].str.split("@").str[0] == edges["entity_id"]).all()
    actual_edges = {
        (e, pd.Timestamp(t), tuple(items))
        for e, t, items in edges[["entity_id", "first_event_at", "sku_items"]].itertuples(index=False)
    }
    expected_edges = {
        (e, t, tuple(g["sku"]))
        for (e, t), g in events.sort_values("event_at").groupby(["entity_id", "session_start"])
    }
    assert actual_edges == expected_edges
    # Sessions of several events exist, one with a pause of exactly the gap.
    assert len(expected_edges) < len(events)
    assert (events.groupby("session")["event_at"].diff() == GAP).any()

    # Cut-offs: the configured splits and "now", the latest event.
    splits = warehouse.read("basemodel_splits").sort_values("split_at", ignore_index=True)
    cut_offs = [*SPLITS, events["event_at"].max()]
    assert list(pd.to_datetime(splits["split_at"])) == cut_offs
    assert splits["is_as_of"].tolist() == [False, False, True]
    assert splits["split_id"].tolist() == [1, 2, 3]

    # RFM inputs and churn labels per cut-off and customer.
    history = warehouse.read("basemodel_entity_history")
    targets = warehouse.read("basemodel_entity_targets")
    history = history.merge(targets, on=["split_at", "entity_id"], validate="1:1")
    history["split_at"] = pd.to_datetime(history["split_at"])
    rows = []
    for cut_off in cut_offs:
        before = events[events["event_at"] <= cut_off]
        for entity, group in before.groupby("entity_id"):
            after = events[(events["entity_id"] == entity) & (events["event_at"] > cut_off)
                           & (events["event_at"] <= cut_off + HORIZON)]  # fmt: skip
            active = cut_off - group["event_at"].max() <= ACTIVE
            rows.append({
                "split_at": cut_off, "entity_id": entity, "n_events": len(group),
                "n_groups": group["session"].nunique(), "total_amount": group["amount"].sum(),
                "mean_amount": group["amount"].mean(),
                "first_event_at": group["event_at"].min(),
                "last_event_at": group["event_at"].max(),
                "in_churn_population": int(active),
                "churned": float(after.empty) if active else np.nan,
            })  # fmt: skip
    expected = pd.DataFrame(rows)
    actual = history[expected.columns].sort_values(["split_at", "entity_id"], ignore_index=True)
    for column in ("first_event_at", "last_event_at"):
        actual[column] = pd.to_datetime(actual[column])
    for column in ("total_amount", "mean_amount", "churned"):
        actual[column] = actual[column].astype(float)
    for column in ("n_events", "n_groups", "in_churn_population"):
        actual[column] = actual[column].astype("int64")
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False, rtol=1e-9)
    # The population matters here: some customers are dormant, some churn, some stay.
    assert set(expected["in_churn_population"]) == {0, 1}
    assert set(expected["churned"].dropna()) == {0.0, 1.0}


def test_user_model_epoch_times_and_sessions_duckdb(tmp_path):
    warehouse = _DuckDBWarehouse(tmp_path)
    project = IntegrationProject(tmp_path, "duckdb", warehouse.env)
    orders = make_orders()
    _Writer.duckdb(warehouse, orders)
    check_workflow(project, warehouse, orders)

    # The same table as the user's own source (price in cents, dates as before): same rows.
    source_vars = {**VARS, "basemodel_events_model": None,
                   "basemodel_events_source": ["workflow_shop", "raw_orders"],
                   "basemodel_entity_column": "shopper", "basemodel_timestamp_column": "ts_ms",
                   "basemodel_amount_column": "price_cents", "basemodel_active_days": None}  # fmt: skip
    project.dbt("build", "--select", "basemodel_stg_events", "basemodel_rejected_events",
                "basemodel_splits", "basemodel_entity_history", "basemodel_entity_targets",
                vars=source_vars)  # fmt: skip
    staged = warehouse.read("basemodel_stg_events")
    assert set(staged["line_no"]) == set(expected_events(orders)["line_no"])
    # Without basemodel_active_days every customer is in the churn population.
    targets = warehouse.read("basemodel_entity_targets")
    assert (targets["in_churn_population"] == 1).all() and targets["churned"].notna().all()


@pytest.fixture(scope="module")
def parse_project(tmp_path_factory):
    """One copy of the integration project for the parse-only checks."""
    root = tmp_path_factory.mktemp("parse")
    return IntegrationProject(root, "duckdb", {"BASEMODEL_DUCKDB_PATH": root / "unused.duckdb"})


@pytest.mark.parametrize(
    ("vars", "message"),
    [
        ({"basemodel_time_format": "pattern", "basemodel_time_pattern": "%I:%M %p"}, "%I"),
        ({"basemodel_time_format": "pattern"}, "basemodel_time_pattern"),
        ({"basemodel_time_format": "epoch"}, "basemodel_time_format"),
        ({"basemodel_events_source": ["workflow_shop", "raw_orders"]}, "only one of"),
        ({"basemodel_active_days": 0}, "basemodel_active_days"),
        ({"basemodel_session_gap_minutes": "30"}, "basemodel_session_gap_minutes"),
        ({"basemodel_as_of": "yesterday"}, "basemodel_as_of"),
    ],
)
def test_bad_settings_stop_compilation_with_the_fix(parse_project, vars, message):
    with pytest.raises(DbtRunError, match="basemodel") as caught:
        parse_project.dbt("parse", vars={**VARS, **vars})
    assert message in str(caught.value)


@pytest.mark.postgres
def test_user_model_epoch_times_and_sessions_postgres(tmp_path, postgres):  # noqa: F811
    warehouse = _PostgresWarehouse(postgres)
    warehouse.schema = f"basemodel_workflow_{uuid.uuid4().hex[:10]}"
    warehouse.env["BASEMODEL_PG_SCHEMA"] = warehouse.schema
    try:
        orders = make_orders(seed=1)
        _Writer.postgres(warehouse, orders)
        project = IntegrationProject(tmp_path, "postgres", warehouse.env)
        check_workflow(project, warehouse, orders)
    finally:
        warehouse.drop()
