"""The Warehouse of the workflow: read, count, list columns and write back, on DuckDB and
PostgreSQL, with every name quoted and every value bound.

Each behaviour runs on a DuckDB file and (``@pytest.mark.postgres``) on the test server, in a
schema of its own that is dropped afterwards. Rows are compared by identity (their key and
values), never by counts alone.
"""

import uuid

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from test_dbt_package import _postgres_settings, postgres  # noqa: F401  (a fixture)

from sklearn_basemodel.warehouse import Warehouse, read_dbt_profile

HOSTILE_TABLE = 'x"; drop table t; --'
HOSTILE_VALUE = "c1' or '1'='1"
# The type each backend reports for the frame dtypes of `typed_frame`, in its order.
TYPES = {
    "duckdb": ["BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP", "VARCHAR", "VARCHAR[]", "BIGINT[]",
               "DOUBLE[]", "BOOLEAN"],
    "postgres": ["bigint", "double precision", "boolean", "timestamp without time zone", "text",
                 "text[]", "bigint[]", "double precision[]", "boolean"],
}  # fmt: skip


def _postgres_profile(tmp_path, schema, monkeypatch):
    """A profiles.yml whose password and port come from environment variables."""
    settings = _postgres_settings()
    monkeypatch.setenv("STORE_TEST_PG_PASSWORD", settings["password"])
    monkeypatch.setenv("STORE_TEST_PG_PORT", str(settings["port"]))
    monkeypatch.delenv("STORE_TEST_UNSET", raising=False)
    output = {
        "type": "postgres",
        "host": settings["host"],
        "port": "{{ env_var('STORE_TEST_PG_PORT') | as_number }}",
        "user": "{{ env_var('STORE_TEST_UNSET', '" + settings["user"] + "') }}",
        "pass": "{{ env_var('STORE_TEST_PG_PASSWORD') }}",
        "dbname": settings["dbname"],
        "schema": schema,
        "threads": 1,
    }
    profiles = {"shop": {"target": "dev", "outputs": {"dev": output}}}
    (tmp_path / "profiles.yml").write_text(yaml.safe_dump(profiles))
    return tmp_path


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path, monkeypatch):
    """An empty schema on each backend, with a table ``t`` that hostile SQL would drop."""
    schema = f"store_{uuid.uuid4().hex[:10]}"
    if request.param == "duckdb":
        path = tmp_path / "w.duckdb"
        with duckdb.connect(str(path)) as connection:
            connection.execute(f"create schema {schema}; create table {schema}.t (id integer)")
        with Warehouse.duckdb(path, schema=schema) as opened:
            yield opened
        return
    server = request.getfixturevalue("postgres")
    with server.cursor() as cursor:
        cursor.execute(f"create schema {schema}; create table {schema}.t (id integer)")
    try:
        with Warehouse.from_dbt_profile(
            "shop", profiles_dir=_postgres_profile(tmp_path, schema, monkeypatch)
        ) as opened:
            yield opened
    finally:
        with server.cursor() as cursor:
            cursor.execute(f"drop schema if exists {schema} cascade")


@pytest.fixture
def run_sql(warehouse, request, tmp_path):
    """Run SQL of the test's own on the warehouse's database, outside the Warehouse."""
    if warehouse.kind == "duckdb":

        def run(statement):
            with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
                connection.execute(statement)

        return run
    server = request.getfixturevalue("postgres")

    def run(statement):
        with server.cursor() as cursor:
            cursor.execute(statement)

    return run


def typed_frame():
    """One column of every written type, with missing values where the type allows them."""
    return pd.DataFrame(
        {
            "customer_id": np.array([1, 2, 3], dtype=np.int64),
            "score": [0.5, np.nan, -1e-12],
            "churned": [True, False, True],
            "as_of": pd.to_datetime(["2024-03-01 12:00", "2024-03-01 23:30", None]).tz_localize(
                "Europe/Warsaw"
            ),
            "name": ["Ann", None, 'tab\tquote"back\\slash\nline'],
            "items": [["milk", 'a "b"', "c,d", "{e}", "back\\slash\ttab", None, "NULL"], [], None],
            "counts": [[1, 2], [3], None],
            "weights": [[0.25, 1.5], [], [2.0]],
            "flag": [True, None, False],
        }
    )


# --------------------------------------------------------------------------- round trip
def test_write_then_read_round_trips_every_type(warehouse):
    frame = typed_frame()
    assert warehouse.write("scores", frame) == 3

    assert warehouse.columns("scores") == list(zip(frame.columns, TYPES[warehouse.kind]))
    back = warehouse.read("scores").sort_values("customer_id", ignore_index=True)
    assert list(back.columns) == list(frame.columns)
    assert back["customer_id"].tolist() == [1, 2, 3]
    np.testing.assert_array_equal(back["score"].to_numpy(float), [0.5, np.nan, -1e-12])
    assert back["churned"].tolist() == [True, False, True]
    # Stored as naive UTC: Warsaw is UTC+1 in March.
    assert pd.api.types.is_datetime64_dtype(back["as_of"])
    assert back["as_of"].iloc[:2].tolist() == [pd.Timestamp("2024-03-01 11:00"),
                                               pd.Timestamp("2024-03-01 22:30")]  # fmt: skip
    assert pd.isna(back["as_of"].iloc[2])
    names = [None if pd.isna(v) else v for v in back["name"]]
    assert names == ["Ann", None, 'tab\tquote"back\\slash\nline']
    assert back["items"].tolist() == frame["items"].tolist()
    assert back["counts"].tolist() == frame["counts"].tolist()
    assert back["weights"].tolist() == frame["weights"].tolist()
    assert back["flag"].tolist() == [True, None, False]


def test_rows_written_in_several_copy_batches(warehouse, monkeypatch):
    from sklearn_basemodel.warehouse import store

    monkeypatch.setattr(store, "_COPY_ROWS", 2)  # PostgreSQL: 3 COPY calls, 2 of them slices
    frame = typed_frame()
    frame = pd.concat([frame, frame.assign(customer_id=frame["customer_id"] + 3)],
                      ignore_index=True)  # fmt: skip
    assert warehouse.write("scores", frame) == 6
    back = warehouse.read("scores").sort_values("customer_id", ignore_index=True)
    assert back["customer_id"].tolist() == [1, 2, 3, 4, 5, 6]
    for column in ("items", "counts", "weights"):
        assert back[column].tolist() == frame[column].tolist()


def test_read_gives_naive_utc_timestamps(warehouse, run_sql):
    # The test's own SQL, on a schema name the test made itself (not user input).
    run_sql(
        f"create table {warehouse.schema}.events as select 7 as id,"
        " cast('2024-03-01 12:00:00+01:00' as timestamptz) as at_tz,"
        " cast('2024-03-01 12:00:00' as timestamp) as at_naive"
    )
    back = warehouse.read("events")
    assert [str(t) for t in back.dtypes[1:]] == [str(back["at_naive"].dtype)] * 2
    assert pd.api.types.is_datetime64_dtype(back["at_tz"])
    assert back[["at_tz", "at_naive"]].iloc[0].tolist() == [pd.Timestamp("2024-03-01 11:00"),
                                                          pd.Timestamp("2024-03-01 12:00")]
    assert warehouse.count("events", where={"at_tz": pd.Timestamp("2024-03-01 11:00", tz="UTC")})\
        == 1  # fmt: skip
    assert warehouse.count("events", where={"at_naive": pd.Timestamp("2024-03-01 12:00")}) == 1


def test_read_columns_in_the_order_asked(warehouse):
    warehouse.write("scores", typed_frame())
    back = warehouse.read("scores", ["name", "customer_id"], where={"customer_id": 1})
    assert back.to_dict("records") == [{"name": "Ann", "customer_id": 1}]
    with pytest.raises(LookupError, match="no column 'nope'.*customer_id"):
        warehouse.read("scores", ["nope"])
    with pytest.raises(TypeError, match="list of column names"):
        warehouse.read("scores", "name")


# --------------------------------------------------------------------------- filters
def test_where_binds_values_and_matches_null(warehouse):
    frame = pd.DataFrame({"customer_id": ["c1", HOSTILE_VALUE, "c3", None],
                          "segment": ["a", "b", "a", "a"]})  # fmt: skip
    warehouse.write("customers", frame)

    hostile = warehouse.read("customers", where={"customer_id": HOSTILE_VALUE})
    assert hostile["segment"].tolist() == ["b"]  # the quote is a value, not SQL
    missing = warehouse.read("customers", where={"customer_id": None, "segment": "a"})
    assert missing["customer_id"].isna().tolist() == [True]
    both = warehouse.read("customers", ["customer_id"], where={"segment": np.str_("a")})
    assert sorted(both["customer_id"].dropna()) == ["c1", "c3"]
    assert warehouse.count("customers", where={"segment": "a"}) == 3
    assert warehouse.count("customers", where={"customer_id": HOSTILE_VALUE}) == 1
    assert warehouse.count("customers", where={}) == 4
    with pytest.raises(LookupError, match="no column 'nope'"):
        warehouse.count("customers", where={"nope": 1})
    with pytest.raises(TypeError, match="scalar"):
        warehouse.read("customers", where={"segment": ["a", "b"]})


def test_between_reads_a_half_open_time_window(warehouse):
    times = pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"])
    warehouse.write("events", pd.DataFrame({"event_id": [1, 2, 3, 4], "event_at": times}))
    window = ("event_at", times[0].to_pydatetime(), times[2].to_pydatetime())
    rows = warehouse.read("events", ["event_id"], between=window)
    assert sorted(rows["event_id"]) == [2, 3]  # after the first, up to and including the third
    both = warehouse.read("events", ["event_id"], where={"event_id": 3}, between=window)
    assert both["event_id"].tolist() == [3]
    with pytest.raises(LookupError, match="no column 'nope'"):
        warehouse.read("events", between=("nope", 1, 2))
    with pytest.raises(TypeError, match="between"):
        warehouse.read("events", between=("event_at", 1))


def test_hostile_names_are_quoted_not_run(warehouse):
    frame = pd.DataFrame({'a"; drop table t; --': [1, 2], "50% off": ["x", "y"]})
    # A tuple of name parts is taken as the names themselves, whatever they contain.
    assert warehouse.write((HOSTILE_TABLE,), frame) == 2

    relation = (warehouse.schema, HOSTILE_TABLE)
    assert [name for name, _ in warehouse.columns(relation)] == list(frame.columns)
    back = warehouse.read(relation, where={"50% off": "y"})
    assert back.to_dict("records") == [{'a"; drop table t; --': 2, "50% off": "y"}]
    assert warehouse.count((HOSTILE_TABLE,), where={'a"; drop table t; --': 1}) == 1
    warehouse.write(relation, frame.iloc[:1], replace_where={"50% off": "x"})
    assert warehouse.read(relation).sort_values("50% off")["50% off"].tolist() == ["x", "y"]
    assert warehouse.columns("t") == [("id", "INTEGER" if warehouse.kind == "duckdb" else
                                       "integer")]  # fmt: skip  (t survived)
    # A string is parsed as a (quoted) name: SQL in it is refused, never run.
    for hostile in (HOSTILE_TABLE, 't" where 1=1; --', '"t"; drop table t'):
        with pytest.raises(ValueError, match="not a name|not 'table'|unclosed quote"):
            warehouse.read(hostile)
        with pytest.raises(ValueError, match="not a name|not 'table'|unclosed quote"):
            warehouse.write(hostile, frame)
    assert warehouse.count("t") == 0


# --------------------------------------------------------------------------- writing back
def _scores(as_of, customers, seed):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": customers,
            "as_of": pd.Timestamp(as_of),
            "score": rng.random(len(customers)),
            "top_items": [[f"p{i}" for i in rng.integers(0, 50, 3)] for _ in customers],
        }
    )


def _rows(frame):
    """Rows by identity: every value of every row, lists as tuples, order-free."""
    records = frame.assign(top_items=frame["top_items"].map(tuple)).itertuples(index=False)
    return sorted((str(c), pd.Timestamp(a), round(float(s), 12), t) for c, a, s, t in records)


def test_replace_where_makes_reruns_idempotent_and_keeps_other_as_ofs(warehouse):
    first = _scores("2024-03-01", ["c1", "c2", "c3"], seed=0)
    rerun = _scores("2024-03-01", ["c1", "c2", "c4"], seed=1)  # the same as-of, recomputed
    second = _scores("2024-04-01", ["c1", "c5"], seed=2)
    march = {"as_of": pd.Timestamp("2024-03-01")}

    assert warehouse.write("scores", first, schema="out_" + warehouse.schema,
                           replace_where=march) == 3  # fmt: skip
    table = f"out_{warehouse.schema}.scores"
    assert _rows(warehouse.read(table)) == _rows(first)
    warehouse.write("scores", rerun, schema="out_" + warehouse.schema, replace_where=march)
    assert _rows(warehouse.read(table)) == _rows(rerun)  # replaced, not appended
    warehouse.write("scores", rerun, schema="out_" + warehouse.schema, replace_where=march)
    assert _rows(warehouse.read(table)) == _rows(rerun)  # a re-run changes nothing

    warehouse.write(table, second, replace_where={"as_of": "2024-04-01"})
    assert _rows(warehouse.read(table, where=march)) == _rows(rerun)
    assert _rows(warehouse.read(table)) == _rows(pd.concat([rerun, second]))


def test_failed_write_leaves_the_table_as_it_was(warehouse):
    first = _scores("2024-03-01", ["c1", "c2"], seed=0)
    warehouse.write("scores", first)
    # Same columns, but a score that is not a number: the insert fails after the delete.
    broken = first.assign(score=["high", "low"])
    if warehouse.kind == "duckdb":
        error = duckdb.ConversionException
    else:
        error = pytest.importorskip("psycopg2").DataError
    with pytest.raises(error):
        warehouse.write("scores", broken, replace_where={"as_of": "2024-03-01"})
    assert _rows(warehouse.read("scores")) == _rows(first)


def test_write_refuses_other_columns(warehouse):
    warehouse.write("scores", _scores("2024-03-01", ["c1"], seed=0))
    other = _scores("2024-04-01", ["c1"], seed=0).rename(columns={"score": "churn"})
    with pytest.raises(ValueError, match=r"columns \['customer_id', 'as_of', 'score'.*churn"):
        warehouse.write("scores", other)
    # Columns in another order are the same columns.
    reordered = _scores("2024-04-01", ["c2"], seed=3)[["top_items", "score", "as_of",
                                                        "customer_id"]]  # fmt: skip
    assert warehouse.write("scores", reordered) == 1
    assert warehouse.read("scores", where={"customer_id": "c2"})["top_items"].tolist() == \
        reordered["top_items"].tolist()  # fmt: skip


def test_write_argument_errors(warehouse):
    frame = _scores("2024-03-01", ["c1"], seed=0)
    with pytest.raises(ValueError, match="names a schema"):
        warehouse.write("other.scores", frame, schema="mine")
    with pytest.raises(TypeError, match="DataFrame"):
        warehouse.write("scores", frame.to_dict())
    with pytest.raises(TypeError, match="timedelta"):
        warehouse.write("scores", pd.DataFrame({"gap": pd.to_timedelta([1], unit="D")}))
    with pytest.raises(LookupError):
        warehouse.columns("scores")  # nothing was created by the failed calls


def test_write_empty_frame_creates_the_table(warehouse):
    empty = _scores("2024-03-01", [], seed=0).astype({"customer_id": str})
    assert warehouse.write("scores", empty) == 0
    assert warehouse.count("scores") == 0
    assert [name for name, _ in warehouse.columns("scores")] == list(empty.columns)


# --------------------------------------------------------------------------- missing things
def test_missing_relation_lists_the_relations_of_its_schema(warehouse):
    warehouse.write("scores", _scores("2024-03-01", ["c1"], seed=0))
    for call in (warehouse.columns, warehouse.read, warehouse.count):
        with pytest.raises(LookupError, match=r"scores_typo' does not exist.*\['scores', 't'\]"):
            call("scores_typo")
    with pytest.raises(LookupError, match="no tables or views"):
        warehouse.columns("no_such_schema.t")


# --------------------------------------------------------------------------- profiles
def _profiles(tmp_path, outputs, target="dev"):
    profiles = {"shop": {"target": target, "outputs": outputs}, "config": {"x": 1}}
    (tmp_path / "profiles.yml").write_text(yaml.safe_dump(profiles))
    return tmp_path


def test_duckdb_profile_renders_env_vars(tmp_path, monkeypatch):
    path = tmp_path / "shop.duckdb"
    monkeypatch.setenv("STORE_TEST_DUCKDB", str(path))
    monkeypatch.setenv("STORE_TEST_TARGET", "local")
    monkeypatch.delenv("STORE_TEST_UNSET", raising=False)
    outputs = {
        "local": {"type": "duckdb", "path": "{{ env_var('STORE_TEST_DUCKDB') }}",
                  "schema": "{{ env_var('STORE_TEST_UNSET', 'analytics') }}"},
        "other": {"type": "duckdb", "path": str(tmp_path / "other.duckdb")},
    }  # fmt: skip
    folder = _profiles(tmp_path, outputs, target="{{ env_var('STORE_TEST_TARGET') }}")

    with Warehouse.from_dbt_profile("shop", profiles_dir=folder) as warehouse:
        assert (warehouse.kind, warehouse.schema) == ("duckdb", "analytics")
        warehouse.write("scores", pd.DataFrame({"id": [7]}))
    with duckdb.connect(str(path), read_only=True) as connection:
        assert connection.sql("select id from analytics.scores").fetchall() == [(7,)]

    monkeypatch.setenv("DBT_PROFILES_DIR", str(folder))  # found without profiles_dir
    with Warehouse.from_dbt_profile("shop", target="other") as warehouse:
        assert warehouse.schema == "main"
        warehouse.write("scores", pd.DataFrame({"id": [8]}))
    with duckdb.connect(str(tmp_path / "other.duckdb"), read_only=True) as connection:
        assert connection.sql("select id from main.scores").fetchall() == [(8,)]


def test_profile_errors_name_what_exists(tmp_path, monkeypatch):
    monkeypatch.delenv("STORE_TEST_UNSET", raising=False)
    outputs = {
        "dev": {"type": "duckdb", "path": str(tmp_path / "w.duckdb")},
        "cloud": {"type": "snowflake", "account": "x"},
        "secret": {"type": "duckdb", "path": "{{ env_var('STORE_TEST_UNSET') }}"},
        "nouser": {"type": "postgres", "host": "127.0.0.1", "dbname": "d", "schema": "s"},
    }
    folder = _profiles(tmp_path, outputs)
    with pytest.raises(LookupError, match=r"profile 'shopp' .*profiles: \['shop'\]"):
        Warehouse.from_dbt_profile("shopp", profiles_dir=folder)
    with pytest.raises(LookupError, match=r"target 'prod' .*\['cloud', 'dev', 'nouser', "):
        Warehouse.from_dbt_profile("shop", target="prod", profiles_dir=folder)
    with pytest.raises(ValueError, match=r"type 'snowflake'.*\['duckdb', 'postgres'\]"):
        Warehouse.from_dbt_profile("shop", target="cloud", profiles_dir=folder)
    with pytest.raises(ValueError, match="STORE_TEST_UNSET"):
        Warehouse.from_dbt_profile("shop", target="secret", profiles_dir=folder)
    with pytest.raises(ValueError, match="sets no user"):
        Warehouse.from_dbt_profile("shop", target="nouser", profiles_dir=folder)
    with pytest.raises(FileNotFoundError, match="No profiles.yml"):
        Warehouse.from_dbt_profile("shop", profiles_dir=tmp_path / "nowhere")
    assert read_dbt_profile("shop", profiles_dir=folder)["type"] == "duckdb"


@pytest.mark.postgres
def test_postgres_profile_renders_password_from_env(tmp_path, monkeypatch, postgres):  # noqa: F811
    psycopg2 = pytest.importorskip("psycopg2")
    schema = f"store_{uuid.uuid4().hex[:10]}"
    folder = _postgres_profile(tmp_path, schema, monkeypatch)
    expected = _postgres_settings()
    settings = read_dbt_profile("shop", profiles_dir=folder)
    assert (settings["pass"], settings["user"]) == (expected["password"], expected["user"])

    # What reaches the driver: the rendered values, the port as a number.
    seen, connect = {}, psycopg2.connect
    monkeypatch.setattr(psycopg2, "connect", lambda **kw: seen.update(kw) or connect(**kw))
    with Warehouse.from_dbt_profile("shop", profiles_dir=folder) as warehouse:
        assert (warehouse.kind, warehouse.schema) == ("postgres", schema)
        assert warehouse.columns(("pg_catalog", "pg_namespace"))[0] == ("oid", "oid")
    assert seen["password"] == expected["password"] and seen["port"] == expected["port"]
    assert (seen["host"], seen["user"], seen["dbname"]) == (
        expected["host"], expected["user"], expected["dbname"])  # fmt: skip


# --------------------------------------------------------------------------- dbt in-process
def test_reads_and_writes_while_dbt_duckdb_holds_the_file(tmp_path, monkeypatch):
    """The workflow runs dbt in this process, then reads and writes the same DuckDB file."""
    from dbt.cli.main import dbtRunner

    path = tmp_path / "w.duckdb"
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "baskets.sql").write_text(
        "select 1 as basket_id, ['milk', 'bread'] as items union all select 2, ['tea']"
    )
    (project / "dbt_project.yml").write_text(yaml.safe_dump(
        {"name": "tiny", "version": "0.1.0", "config-version": 2, "profile": "tiny"}
    ))  # fmt: skip
    # config_options make dbt-duckdb open the file with a configuration of its own, so that
    # no other connection can open it until dbt's instance is released.
    output = {"type": "duckdb", "path": str(path), "threads": 1,
              "config_options": {"allow_unsigned_extensions": True}}  # fmt: skip
    (project / "profiles.yml").write_text(
        yaml.safe_dump({"tiny": {"target": "dev", "outputs": {"dev": output}}})
    )
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    result = dbtRunner().invoke(["run", "--project-dir", str(project), "--profiles-dir",
                                 str(project), "--quiet"])  # fmt: skip
    assert result.success

    warehouse = Warehouse.from_dbt_profile("tiny", profiles_dir=project)
    baskets = warehouse.read("baskets", where={"basket_id": 2})
    assert baskets["items"].tolist() == [["tea"]]
    warehouse.write("basket_scores", pd.DataFrame({"basket_id": [1, 2], "score": [0.1, 0.9]}),
                    schema="out")  # fmt: skip
    with duckdb.connect(str(path), read_only=True) as connection:
        stored = connection.sql("select basket_id, score from out.basket_scores").fetchall()
    assert sorted(stored) == [(1, 0.1), (2, 0.9)]


def test_in_memory_and_given_connections_stay_open():
    with Warehouse.duckdb(":memory:") as warehouse:
        warehouse.write("t", pd.DataFrame({"id": [1]}))
        assert warehouse.read("t")["id"].tolist() == [1]  # the same database on every call
    connection = duckdb.connect()
    with Warehouse.duckdb(connection) as warehouse:
        warehouse.write("t", pd.DataFrame({"id": [2]}))
    assert connection.sql("select id from main.t").fetchall() == [(2,)]  # still open, yours
    with pytest.raises(TypeError, match="DuckDB"):
        Warehouse.duckdb(42)
