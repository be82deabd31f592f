"""The dbt package `basemodel`, built end to end on its integration project.

`dbt build` on dbt_package/integration_tests runs the package's models, its schema, data and
unit tests, and compares every model and cross-database macro with expected seeds. These tests
run that build through the Python bridge (DuckDB always, PostgreSQL when a server is
reachable) and check the results again from Python with an independent pandas computation.
Everything is written under pytest's tmp_path: the repository is left untouched.
"""

import math
import os
import shutil
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from sklearn_basemodel.warehouse import DbtRunError, read_relation, run_dbt, write_entity_codes

PACKAGE = Path(__file__).resolve().parents[1] / "dbt_package"
SEEDS = PACKAGE / "integration_tests" / "seeds"
SPLITS = [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-04-01")]
HORIZON = pd.Timedelta(days=30)
DECAY_RATE = 0.1  # integration_tests/dbt_project.yml
ACTIVE_DAYS = 90  # the package's default basemodel_active_days
ITEMS = ["product", "category", "brand"]


class IntegrationProject:
    """A copy of dbt_package in a temporary folder, with its integration project ready to run."""

    def __init__(self, root, target, env):
        shutil.copytree(
            PACKAGE,
            root / "dbt_package",
            ignore=shutil.ignore_patterns(
                "target", "logs", "dbt_packages", "package-lock.yml", "*.duckdb*"
            ),
        )
        self.root = root
        self.project = root / "dbt_package" / "integration_tests"
        self.target = target
        self.env = {"BASEMODEL_DBT_TARGET": target, **env}
        self.dbt("deps")

    def dbt(self, *args, vars=None, env=None):
        paths = {} if args[0] == "deps" else {"target_path": self.root / "target"}
        return run_dbt(
            list(args),
            self.project,
            profiles_dir=self.project,
            vars=vars,
            log_path=self.root / "logs",
            env={**self.env, **(env or {})},
            **paths,
        )


def _seed(name, **kwargs):
    return pd.read_csv(SEEDS / f"{name}.csv", keep_default_na=False, na_values=[""], **kwargs)


def _node_statuses(result):
    return {r.node.unique_id: str(r.status) for r in result.result.results}


def _expected_history(events):
    """Histories recomputed with pandas from the staged events (the reference for the SQL)."""
    rows = []
    for split in SPLITS:
        before = events[events["event_at"] <= split].sort_values(["event_at", "event_id"])
        for entity, group in before.groupby("entity_id", sort=True):
            days = (split - group["event_at"]).dt.total_seconds().to_numpy() / 86400.0
            weights = np.exp(-DECAY_RATE * days)
            row = {
                "split_at": split,
                "entity_id": entity,
                "n_events": len(group),
                "event_types": group["event_type"].tolist(),
                "event_times": group["event_at"].tolist(),
                "decay_weights": weights.tolist(),
            }
            for item in ITEMS:
                known = group[item].notna().to_numpy()
                row[f"{item}_items"] = group[item][known].tolist()
                row[f"{item}_weights"] = weights[known].tolist()
            rows.append(row)
    return pd.DataFrame(rows)


def _expected_targets(events, history):
    rows = []
    for split, entity in history[["split_at", "entity_id"]].itertuples(index=False):
        last = events.loc[(events["entity_id"] == entity) & (events["event_at"] <= split), "event_at"].max()
        active = (split - last) <= pd.Timedelta(days=ACTIVE_DAYS)
        inside = events[
            (events["entity_id"] == entity)
            & (events["event_at"] > split)
            & (events["event_at"] <= split + HORIZON)
        ].sort_values(["event_at", "event_id"])
        purchases = inside[inside["event_type"] == "purchase"]
        rows.append(
            {
                "split_at": split,
                "entity_id": entity,
                "n_future_events": len(inside),
                # Churn is labelled for recently active customers only.
                "in_churn_population": int(active),
                "churned": int(len(inside) == 0) if active else None,
                "propensity_purchase": int(len(purchases) > 0),
                "propensity_add_to_cart": int((inside["event_type"] == "add_to_cart").any()),
                "propensity_category_books": int((purchases["category"] == "books").any()),
                "future_spend": float(inside["amount"].fillna(0).sum()),
                "future_product_items": inside["product"].dropna().tolist(),
            }
        )
    return pd.DataFrame(rows)


def _assert_same_lists(actual, expected, float_lists=()):
    assert len(actual) == len(expected)
    for column in expected.columns:
        for got, want in zip(actual[column], expected[column]):
            if column in float_lists:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=column)
            elif not isinstance(want, list) and pd.isna(want):
                assert not isinstance(got, list) and pd.isna(got), (column, got)
            else:
                assert got == want, (column, got, want)


def _sketch_rows(history, item):
    """Each history as the weighted row EMDESketcher takes: item -> summed decay weight."""
    rows = []
    for items, weights in zip(history[f"{item}_items"], history[f"{item}_weights"]):
        row = {}
        for key, weight in zip(items, weights):
            row[key] = row.get(key, 0.0) + weight
        rows.append(row)
    return rows


def _check_in_warehouse_sketches(
    project, codes_connection, codes_table, read_sketches, read_history
):
    """Codes written from a fitted EMDESketcher + the SQL model == EMDESketcher.transform."""
    from sklearn_basemodel import RandomVectorEmbedder
    from sklearn_basemodel import EMDESketcher

    history = read_history().sort_values(["split_id", "entity_id"], ignore_index=True)
    rows = _sketch_rows(history, "product")
    # Fit on the first split only, so later histories hold products without codes (p4, p9):
    # both sides must ignore them.
    first = (history["split_id"] == 1).to_numpy()
    sketcher = EMDESketcher(
        RandomVectorEmbedder(16, random_state=0),
        n_sketches=4,
        sketch_dim=16,
        normalize=None,
        output="dense",
        handle_unknown="ignore",
        random_state=0,
    ).fit([row for row, keep in zip(rows, first) if keep])
    unknown = {k for row in rows for k in row} - set(sketcher.keys_)
    assert unknown, "the check needs products unknown to the sketcher"
    expected = sketcher.transform(rows)

    n_written = write_entity_codes(sketcher, codes_connection, codes_table)
    assert n_written == len(sketcher.keys_) * 4
    # The integration project reads its codes from the table `emde_codes` (a seed): replace
    # them with the sketcher's and rebuild the sketches.
    project.dbt("run", "--select", "basemodel_history_sketches")
    sketches = read_sketches()
    assert not sketches.empty and (sketches["value"] > 0).any()
    index = {key: i for i, key in enumerate(zip(history["split_id"], history["entity_id"]))}
    actual = np.zeros_like(expected, dtype=np.float64)
    for split_id, entity, position, value in sketches[
        ["split_id", "entity_id", "position", "value"]
    ].itertuples(index=False):
        actual[index[(split_id, entity)], position] = value
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-30)


def test_duckdb_build_matches_expected_outputs(tmp_path):
    database = tmp_path / "integration.duckdb"
    project = IntegrationProject(tmp_path, "duckdb", {"BASEMODEL_DUCKDB_PATH": database})
    project.dbt("seed")
    result = project.dbt("build")

    statuses = _node_statuses(result)
    unit_tests = [k for k in statuses if k.startswith("unit_test.basemodel.")]
    data_tests = [k for k in statuses if k.startswith("test.")]
    assert len(unit_tests) >= 8 and len(data_tests) >= 75
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    assert "test.basemodel.basemodel_events_reconcile" in statuses

    # Every source row is staged or rejected, exactly once.
    raw = read_relation(database, "main.raw_events")
    staged = read_relation(database, "main.basemodel_stg_events")
    rejected = read_relation(database, "main.basemodel_rejected_events")
    assert len(raw) == 38 and len(staged) + len(rejected) == len(raw)
    assert set(staged["raw_row_id"]).isdisjoint(rejected["raw_row_id"])
    assert set(staged["raw_row_id"]) | set(rejected["raw_row_id"]) == set(raw["raw_row_id"])

    # The reasons are the expected ones, row by row.
    reasons = dict(zip(rejected["raw_row_id"], rejected["rejection_reason"]))
    expected = _seed("expected_rejected_events")
    assert reasons == dict(zip(expected["raw_row_id"], expected["rejection_reason"]))
    duplicates = rejected[rejected["rejection_reason"] == "duplicate"]
    assert set(duplicates["duplicate_of_event_id"]) <= set(staged["event_id"])

    # Hyperedges, histories and targets agree with a pandas computation from the staged rows.
    events = staged.assign(event_at=pd.to_datetime(staged["event_at"]))
    edges = read_relation(database, "main.basemodel_hyperedges")
    grouped = events[events["group_id"].notna()].sort_values(["event_at", "event_id"])
    expected_edges = {
        key: group["product"].dropna().tolist()
        for key, group in grouped.groupby(["entity_id", "group_id"])
    }
    assert dict(zip(zip(edges["entity_id"], edges["group_id"]), edges["product_items"])) == (
        expected_edges
    )

    history = read_relation(database, "main.basemodel_entity_history")
    history = history.sort_values(["split_at", "entity_id"], ignore_index=True)
    expected_history = _expected_history(events)
    assert history["event_times"].map(type).eq(list).all()
    _assert_same_lists(
        history[expected_history.columns],
        expected_history,
        float_lists=[c for c in expected_history.columns if c.endswith("weights")],
    )
    dormant = history[(history["entity_id"] == "c7") & (history["split_at"] == SPLITS[0])]
    assert math.isclose(dormant["decay_weights"].item()[0], math.exp(-DECAY_RATE * 425))

    targets = read_relation(database, "main.basemodel_entity_targets")
    targets = targets.sort_values(["split_at", "entity_id"], ignore_index=True)
    expected_targets = _expected_targets(events, expected_history)
    _assert_same_lists(targets[expected_targets.columns], expected_targets)
    assert targets["is_horizon_complete"].tolist() == [True] * 6 + [False] * 8

    # In-warehouse sketches equal EMDESketcher.transform on the same histories.
    _check_in_warehouse_sketches(
        project,
        database,
        "emde_codes",
        read_sketches=lambda: read_relation(database, "main.basemodel_history_sketches"),
        read_history=lambda: read_relation(database, "main.basemodel_entity_history"),
    )

    # The reconciliation test fails, and is named, when a staged row goes missing.
    with duckdb.connect(str(database)) as connection:
        connection.execute("delete from basemodel_stg_events where raw_row_id = 1")
    with pytest.raises(DbtRunError, match="basemodel_events_reconcile") as caught:
        project.dbt("test", "--select", "basemodel_events_reconcile")
    assert caught.value.failed_nodes == ["test.basemodel.basemodel_events_reconcile"]


def test_duckdb_incremental_runs_add_only_new_events_and_splits(tmp_path):
    database = tmp_path / "incremental.duckdb"
    project = IntegrationProject(tmp_path, "duckdb", {"BASEMODEL_DUCKDB_PATH": database})
    project.dbt("seed")
    late = (6, 13, 20, 37)  # two recent events, a duplicate of row 2, a two-month-old event
    with duckdb.connect(str(database)) as connection:
        held_back = f"raw_row_id in {late}"
        connection.execute(f"create table held_back as select * from raw_events where {held_back}")
        connection.execute(f"delete from raw_events where {held_back}")
        # A row that only the first run sees: it stays staged only if the second run appends.
        connection.execute(
            "insert into raw_events values (999, 'c9', '2024-02-01 10:00:00', 'view', 'p1',"
            " 'books', 'acme', 'b99', null, timestamp '2024-04-11 02:00:00')"
        )
    incremental = {"basemodel_incremental": True}
    project.dbt("run", vars={**incremental, "basemodel_split_times": ["2024-03-01"]})

    with duckdb.connect(str(database)) as connection:
        connection.execute("delete from raw_events where raw_row_id = 999")
        connection.execute(
            "insert into raw_events"
            " select * replace (timestamp '2024-04-12 00:00:00' as loaded_at) from held_back"
        )
    both_splits = {"basemodel_split_times": ["2024-03-01", "2024-04-01"]}
    result = project.dbt("run", vars={**incremental, **both_splits})
    assert {r.node.name: str(r.status) for r in result.result.results}["basemodel_stg_events"] == (
        "success"
    )

    staged = read_relation(database, "main.basemodel_stg_events")
    expected_ids = set(_seed("expected_stg_events")["raw_row_id"])
    assert staged["raw_row_id"].is_unique
    assert set(staged["raw_row_id"]) == expected_ids | {999}  # 20 stays out: a duplicate
    history = read_relation(database, "main.basemodel_entity_history")
    counts = {(str(s)[:10], e): n for s, e, n in history[["split_at", "entity_id", "n_events"]]
              .itertuples(index=False)}
    assert counts[("2024-03-01", "c9")] == 1  # built by the first run, kept
    assert counts[("2024-03-01", "c2")] == 2  # splits already built are not back-filled
    assert counts[("2024-04-01", "c2")] == 3  # the new split sees the late event
    assert counts[("2024-04-01", "c9")] == 1  # still staged, so in the new split too


def _postgres_settings():
    return {
        "host": os.environ.get("BASEMODEL_PG_HOST", "127.0.0.1"),
        "port": int(os.environ.get("BASEMODEL_PG_PORT", "5432")),
        "user": os.environ.get("BASEMODEL_PG_USER", "basemodel"),
        "password": os.environ.get("BASEMODEL_PG_PASSWORD", ""),
        "dbname": os.environ.get("BASEMODEL_PG_DATABASE", "basemodel"),
    }


@pytest.fixture
def postgres():
    """A psycopg2 connection to the test server; skips (fails in CI) when there is none."""
    psycopg2 = pytest.importorskip("psycopg2")
    settings = _postgres_settings()
    try:
        connection = psycopg2.connect(connect_timeout=5, **settings)
    except psycopg2.OperationalError as error:
        message = (
            f"no PostgreSQL server at {settings['host']}:{settings['port']} for user "
            f"{settings['user']!r} (set BASEMODEL_PG_* or run .ci/run): {error}"
        )
        if os.environ.get("BASEMODEL_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    connection.autocommit = True
    yield connection
    connection.close()


@pytest.mark.postgres
def test_postgres_build_matches_expected_outputs(tmp_path, postgres):
    schema = f"basemodel_it_{uuid.uuid4().hex[:10]}"
    settings = _postgres_settings()
    env = {
        "BASEMODEL_PG_HOST": settings["host"],
        "BASEMODEL_PG_PORT": settings["port"],
        "BASEMODEL_PG_USER": settings["user"],
        "BASEMODEL_PG_PASSWORD": settings["password"],
        "BASEMODEL_PG_DATABASE": settings["dbname"],
        "BASEMODEL_PG_SCHEMA": schema,
    }

    def query(sql):
        with postgres.cursor() as cursor:
            cursor.execute(sql)
            names = [d.name for d in cursor.description]
            return pd.DataFrame(cursor.fetchall(), columns=names)

    try:
        project = IntegrationProject(tmp_path, "postgres", env)
        project.dbt("seed")
        result = project.dbt("build")
        statuses = _node_statuses(result)
        assert len(statuses) > 100 and set(statuses.values()) <= {"success", "pass"}

        counts = query(
            f"select (select count(*) from {schema}.raw_events) as raw,"
            f" (select count(*) from {schema}.basemodel_stg_events) as staged,"
            f" (select count(*) from {schema}.basemodel_rejected_events) as rejected"
        ).iloc[0]
        assert counts["raw"] == 38 and counts["staged"] + counts["rejected"] == counts["raw"]
        rejected = query(
            f"select raw_row_id, rejection_reason from {schema}.basemodel_rejected_events"
        )
        expected = _seed("expected_rejected_events")
        assert dict(zip(rejected["raw_row_id"], rejected["rejection_reason"])) == dict(
            zip(expected["raw_row_id"], expected["rejection_reason"])
        )

        # Codes written with COPY through psycopg2, sketches aggregated by Postgres.
        postgres.autocommit = False
        _check_in_warehouse_sketches(
            project,
            postgres,
            f"{schema}.emde_codes",
            read_sketches=lambda: query(f"select * from {schema}.basemodel_history_sketches"),
            read_history=lambda: query(
                f"select split_id, entity_id, product_items, product_weights"
                f" from {schema}.basemodel_entity_history"
            ),
        )
    finally:
        postgres.rollback()
        postgres.autocommit = True
        with postgres.cursor() as cursor:
            cursor.execute(f"drop schema if exists {schema} cascade")
