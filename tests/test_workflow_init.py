"""``basemodel init``: the guessed roles and time formats, the written files, the refusals.

Each table is generated in a temporary DuckDB file with its own column names and time types
(a TIMESTAMP, epoch seconds, epoch milliseconds, a DATE, text in '%d/%m/%Y %H:%M'). The dbt
test runs the package's staging on every one of them with the written project and checks each
raw row's parsed time by its id, so a guessed format is one the package really reads.
"""

import re

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from sklearn_basemodel.warehouse import run_dbt
from sklearn_basemodel.warehouse.connections import quote_identifier, quote_relation
from sklearn_basemodel.workflow import Project, ProjectError, load_project
from sklearn_basemodel.workflow.starter import guess_project, init_project

N_ROWS = 300


def _events(seed):
    """Lines of orders: customers, minute-resolution times (days > 12 so a day-first date cannot
    be read month-first), products with their category, order numbers and amounts."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    minutes = np.sort(rng.integers(0, 150 * 24 * 60, N_ROWS))
    product = rng.integers(0, 12, N_ROWS)
    return pd.DataFrame({
        "line": np.arange(1, N_ROWS + 1),
        "customer": [f"c{int(c):03d}" for c in rng.integers(0, 25, N_ROWS)],
        "time": start + pd.to_timedelta(minutes, unit="min"),
        "product": [f"p{int(p)}" for p in product],
        "category": [f"cat{int(p) % 4}" for p in product],
        "order": rng.integers(0, 80, N_ROWS),
        "amount": np.round(rng.uniform(1, 100, N_ROWS), 2),
        "action": rng.choice(["view", "cart", "buy"], N_ROWS),
    })  # fmt: skip


# Each case: the table's columns as (name, SQL over the generated frame), what init must guess,
# and the time the package must read from each row.
CASES = {
    "timestamp": {
        "columns": [
            ("line_no", "line"),
            ("shopper_ref", "customer"),
            ("purchased_at", "cast(time as timestamp)"),
            ("basket_no", "cast(\"order\" as integer)"),
            ("sku_code", "product"),
            ("aisle_name", "category"),
            ("paid_eur", "cast(amount as decimal(10, 2))"),
            ("loaded_at", "cast(time as timestamp) + interval 1 day"),
            ("note", "'free text'"),
        ],
        "columns_guess": {"customer": "shopper_ref", "time": "purchased_at",
                          "items": ["sku_code", "aisle_name"], "amount": "paid_eur",
                          "event_id": "line_no", "group": "basket_no", "loaded_at": "loaded_at"},
        "time": {"format": "iso"},
        "expected": lambda t: t,
    },
    "epoch_s": {
        "columns": [
            ("line_no", "line"),
            ("visitor", "customer"),
            ("event_ts", "cast(epoch(time) as bigint)"),
            ("session_key", "'s' || cast(\"order\" as varchar)"),
            ("item", "product"),
            ("action", "action"),
        ],
        "columns_guess": {"customer": "visitor", "time": "event_ts", "items": ["item"],
                          "event_type": "action", "event_id": "line_no", "group": "session_key"},
        "time": {"format": "epoch_s"},
        "expected": lambda t: t,
    },
    "epoch_ms": {
        "columns": [
            ("line_no", "line"),
            ("client_id", "customer"),
            ("ts_ms", "cast(epoch(time) * 1000 as bigint) + 123"),
            ("article_id", "product"),
        ],
        "columns_guess": {"customer": "client_id", "time": "ts_ms", "items": ["article_id"],
                          "event_id": "line_no"},
        "time": {"format": "epoch_ms"},
        "expected": lambda t: t + pd.Timedelta(milliseconds=123),
    },
    "date": {
        "columns": [
            ("line_no", "line"),
            ("member_no", "customer"),
            ("order_day", "cast(time as date)"),
            ("brand", "category"),
            ("revenue", "amount"),
        ],
        "columns_guess": {"customer": "member_no", "time": "order_day", "items": ["brand"],
                          "amount": "revenue", "event_id": "line_no"},
        "time": {"format": "date"},
        "expected": lambda t: t.dt.normalize(),
    },
    "pattern": {
        "columns": [
            ("line_no", "line"),
            ("CustomerID", "customer"),
            ("InvoiceDate", "strftime(time, '%d/%m/%Y %H:%M')"),
            ("InvoiceNo", "cast(\"order\" as varchar)"),
            ("StockCode", "product"),
            ("Quantity", "2"),
            ("UnitPrice", "amount"),
        ],
        "columns_guess": {"customer": "CustomerID", "time": "InvoiceDate", "items": ["StockCode"],
                          "amount": "UnitPrice", "event_id": "line_no", "group": "InvoiceNo"},
        "time": {"format": "pattern", "pattern": "%d/%m/%Y %H:%M"},
        "expected": lambda t: t,
    },
    "yyyymmdd": {
        "columns": [
            ("line_no", "line"),
            ("cust_id", "customer"),
            ("purchase_date", "cast(strftime(time, '%Y%m%d') as bigint)"),
            ("genre", "category"),
        ],
        "columns_guess": {"customer": "cust_id", "time": "purchase_date", "items": ["genre"],
                          "event_id": "line_no"},
        "time": {"format": "pattern", "pattern": "%Y%m%d"},
        "expected": lambda t: t.dt.normalize(),
    },
    # A clickstream without customers: the sessions are the entities.
    "sessions": {
        "columns": [
            ("line_no", "line"),
            ("SessionId", "'s' || cast(\"order\" as varchar)"),
            ("ItemId", "product"),
            ("Time", "epoch(time) + 0.25"),
        ],
        "columns_guess": {"customer": "SessionId", "time": "Time", "items": ["ItemId"],
                          "event_id": "line_no", "group": "SessionId"},
        "time": {"format": "epoch_s"},
        "expected": lambda t: t + pd.Timedelta(milliseconds=250),
    },
}


def make_table(database, table, columns, seed=0):
    """``table`` in the DuckDB file ``database``, built from the generated events."""
    frame = _events(seed)
    select = ", ".join(f"{sql} as {quote_identifier(name)}" for name, sql in columns)
    with duckdb.connect(str(database)) as connection:
        connection.register("frame", frame)
        connection.execute(f"create table {quote_relation(table)} as select {select} from frame")
    return frame


def _make_case(name, tmp_path):
    spec = CASES[name]
    database = tmp_path / "warehouse.duckdb"
    frame = make_table(database, "raw_events", spec["columns"])
    return {"name": name, "database": database, "frame": frame, **spec}


@pytest.fixture(params=sorted(CASES))
def case(request, tmp_path):
    return _make_case(request.param, tmp_path)


# --------------------------------------------------------------------------- the guess
def test_roles_and_time_format_are_guessed(case):
    guess = guess_project(case["database"], "raw_events")
    assert guess["columns"] == case["columns_guess"]
    assert guess["time"] == case["time"]
    assert guess["events"] == {"table": "raw_events"}
    grouped = "group" in case["columns_guess"]
    assert guess["grouping"] == ({"by": "group"} if grouped else {"by": "gap", "gap_minutes": 30})
    items = case["columns_guess"]["items"]
    assert guess["tasks"]["next_items"] == {"column": items[0], "k": 10}
    assert guess["tasks"]["churn"] == {"horizon_days": 30, "active_days": 90}
    assert ("spend" in guess["tasks"]) == ("amount" in case["columns_guess"])
    assert [m["column"] for m in guess["modalities"]] == items


def test_written_file_loads_and_is_the_guess(case, tmp_path):
    directory = tmp_path / "project"
    path = init_project(directory, duckdb=case["database"], table="raw_events")
    assert path == directory / "basemodel.yml"
    written = yaml.safe_load(path.read_text())
    guess = guess_project(case["database"], "raw_events", directory=directory)
    assert written == guess
    assert written["connection"] == {"duckdb": "../warehouse.duckdb"}
    project = load_project(path)
    assert project == Project.from_dict(guess, root=directory)
    assert project.path(project.connection.duckdb).resolve() == case["database"].resolve()
    # Every section is explained, and no profile is written: the workflow writes it.
    text = path.read_text()
    for section in guess:
        assert re.search(rf"\n# [^\n]+\n{section}:", text), section
    assert not (directory / "dbt" / "profiles.yml").exists()
    assert ("# CHECK: no customer column" in text) == (case["name"] == "sessions")


def test_unsure_guesses_are_flagged(tmp_path):
    """A quantity next to a unit price, and a date that reads day-first and month-first."""
    database = tmp_path / "w.duckdb"
    make_table(database, "orders", [
        ("user_id", "customer"),
        ("order_date", "strftime(time, '%d/%m/%Y')"),  # every day <= 12 below: ambiguous
        ("product_id", "product"),
        ("unit_price", "amount"),
        ("qty", "1"),
    ])  # fmt: skip
    with duckdb.connect(str(database)) as connection:
        connection.execute("delete from orders where cast(left(order_date, 2) as int) > 12")
    path = init_project(tmp_path / "p", duckdb=database, table="orders")
    text = path.read_text()
    assert load_project(path).time.pattern == "%d/%m/%Y"
    checks = [line for line in text.splitlines() if "# CHECK:" in line]
    assert any("'%d/%m/%Y'" in line and "'%m/%d/%Y'" in line for line in checks), checks
    assert any("quantity" in line for line in checks), checks
    # The CHECK comment stands right above the key it is about.
    lines = text.splitlines()
    assert "quantity" in lines[lines.index("  amount: unit_price  # the money of the event"
                                           " (spend task, monetary features)") - 1]


def test_no_item_column_falls_back_with_a_check(tmp_path):
    database = tmp_path / "w.duckdb"
    make_table(database, "hits", [("user_id", "customer"), ("hit_time", "cast(time as timestamp)"),
                                  ("page", "product")])  # fmt: skip
    path = init_project(tmp_path / "p", duckdb=database, table="hits")
    assert load_project(path).columns.items == ("page",)
    assert "# CHECK: no column is named like a product" in path.read_text()


def test_odd_names_are_quoted_and_flagged(tmp_path):
    database = tmp_path / "w.duckdb"
    make_table(database, "odd", [("user", "customer"), ("order", "\"order\""),
                                 ("event time", "cast(time as timestamp)"),
                                 ("Product Name", "product")])  # fmt: skip
    path = init_project(tmp_path / "p", duckdb=database, table="odd")
    columns = load_project(path).columns
    assert (columns.customer, columns.group, columns.time, columns.items) == (
        '"user"', '"order"', '"event time"', ('"Product Name"',)
    )
    assert "rename 'Product Name' to a plain name" in path.read_text()


# --------------------------------------------------------------------------- errors
def test_missing_table_lists_the_tables(tmp_path):
    database = tmp_path / "w.duckdb"
    make_table(database, "orders", CASES["date"]["columns"])
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema sales")
        connection.execute("create view sales.returns as select 1 as x")
    with pytest.raises(ProjectError, match=r"'order'.*Tables there: main\.orders, sales\.returns"):
        init_project(tmp_path / "p", duckdb=database, table="order")
    assert not (tmp_path / "p").exists()


def test_missing_customer_names_the_key_and_the_columns(tmp_path):
    database = tmp_path / "w.duckdb"
    make_table(database, "t", [("who", "customer"), ("created_at", "cast(time as timestamp)"),
                               ("sku", "product")])  # fmt: skip
    with pytest.raises(ProjectError, match=r"columns\.customer: .*who \(VARCHAR\), created_at"):
        init_project(tmp_path / "p", duckdb=database, table="t")
    assert not (tmp_path / "p").exists()


def test_missing_time_names_the_key(tmp_path):
    database = tmp_path / "w.duckdb"
    make_table(database, "t", [("user_id", "customer"), ("day", "1"), ("sku", "product")])
    with pytest.raises(ProjectError, match=r"columns\.time: no column looks like the event time"):
        guess_project(database, "t")


def test_refuses_to_overwrite_unless_forced(tmp_path):
    database = tmp_path / "w.duckdb"
    make_table(database, "events", CASES["epoch_s"]["columns"])
    directory = tmp_path / "p"
    directory.mkdir()
    (directory / "basemodel.yml").write_text("# mine\n")
    with pytest.raises(FileExistsError, match=r"basemodel\.yml already exist.*force=True"):
        init_project(directory, duckdb=database, table="events")
    assert (directory / "basemodel.yml").read_text() == "# mine\n"
    assert not (directory / "dbt").exists()

    (directory / "basemodel.yml").unlink()
    (directory / "dbt").mkdir()
    (directory / "dbt" / "dbt_project.yml").write_text("name: mine\n")
    with pytest.raises(FileExistsError, match=r"dbt_project\.yml already exist"):
        init_project(directory, duckdb=database, table="events")
    assert not (directory / "basemodel.yml").exists()

    path = init_project(directory, duckdb=database, table="events", force=True)
    assert load_project(path).columns.customer == "visitor"
    assert "name: p\n" in (directory / "dbt" / "dbt_project.yml").read_text()


def test_hostile_and_schema_qualified_table_names(tmp_path):
    database = tmp_path / "w.duckdb"
    hostile = 'orders"; drop table keep; --'
    make_table(database, quote_identifier(hostile), CASES["date"]["columns"])
    make_table(database, "keep", [("x", "line")])
    with duckdb.connect(str(database)) as connection:
        connection.execute("create schema sales")
    make_table(database, "sales.orders", CASES["date"]["columns"])

    for table, written in ((quote_identifier(hostile), quote_identifier(hostile)),
                           ("sales.orders", "sales.orders")):  # fmt: skip
        path = init_project(tmp_path / "p", duckdb=database, table=table, force=True)
        assert yaml.safe_load(path.read_text())["events"] == {"table": written}
        assert load_project(path).columns.time == "order_day"
    assert load_project(path).dbt_vars()["basemodel_events_schema"] == "sales"
    with duckdb.connect(str(database), read_only=True) as connection:
        assert connection.execute("select count(*) from keep").fetchone() == (N_ROWS,)


def test_dbt_project_name_is_an_identifier(tmp_path):
    database = tmp_path / "w.duckdb"
    make_table(database, "e", CASES["date"]["columns"])
    for folder, name in (("2024 Shop-Data", "project_2024_shop_data"), ("basemodel", "basemodel_project")):
        init_project(tmp_path / folder, duckdb=database, table="e")
        project = yaml.safe_load((tmp_path / folder / "dbt" / "dbt_project.yml").read_text())
        assert project["name"] == name and project["profile"] == "basemodel"


# --------------------------------------------------------------------------- with dbt
# About 5 s of dbt each: the text and number parsers always, the typed columns in the slow run.
@pytest.mark.parametrize("name", [
    pytest.param(name, marks=[] if name in ("pattern", "epoch_ms") else pytest.mark.slow)
    for name in sorted(CASES)
])  # fmt: skip
def test_written_dbt_project_stages_every_row(name, tmp_path):
    """``dbt deps`` and the package's staging, in the written project, read every row's time."""
    case = _make_case(name, tmp_path)
    directory = tmp_path / "project"
    path = init_project(directory, duckdb=case["database"], table="raw_events")
    project = load_project(path)
    database = project.path(project.connection.duckdb).resolve()
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    output = {"type": "duckdb", "path": str(database), "threads": 1}
    (profiles / "profiles.yml").write_text(
        yaml.safe_dump({"basemodel": {"target": "dev", "outputs": {"dev": output}}})
    )
    paths = {"profiles_dir": profiles, "log_path": tmp_path / "logs"}
    run_dbt(["deps"], project.dbt_dir, **paths)
    # Their own data tests too, not those that also read later models.
    select = ["--select", "basemodel_stg_events", "basemodel_rejected_events",
              "--indirect-selection", "cautious"]  # fmt: skip
    run_dbt(["build", *select], project.dbt_dir, vars=project.dbt_vars(),
            target_path=tmp_path / "target", **paths)  # fmt: skip

    with duckdb.connect(str(database), read_only=True) as connection:
        staged = connection.execute("select event_id, event_at from basemodel_stg_events").df()
        rejected = connection.execute("select count(*) from basemodel_rejected_events").fetchone()
    assert rejected == (0,)
    frame = case["frame"]
    want = dict(zip(frame["line"].astype(str), case["expected"](frame["time"])))
    got = dict(zip(staged["event_id"], pd.to_datetime(staged["event_at"])))
    assert got == want
