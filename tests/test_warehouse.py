import datetime
import gc
import sqlite3
import textwrap

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sklearn.exceptions import NotFittedError

from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
from sklearn_basemodel.exceptions import UnknownEntityWarning
from sklearn_basemodel.warehouse import (
    DbtRunError,
    dbt_package_path,
    dbt_vars,
    history_rows,
    read_histories,
    read_relation,
    run_dbt,
    sketch_matrix,
    split_times,
    write_dbt_project,
    write_entity_codes,
)
from sklearn_basemodel.warehouse.tables import python_lists


@pytest.fixture
def histories():
    connection = duckdb.connect()
    connection.execute('create schema "Shop"')
    connection.execute(
        """
        create table "Shop"."Histories" as
        select * from (values
            (1, 'c1', ['p1', 'p2', 'p1'], [0.5, 0.25, 1.0]::double[],
             [timestamp '2024-01-01 10:00:00', timestamp '2024-01-02 00:00:00.5',
              timestamp '2024-01-03 00:00:00'],
             [3, 1, 2], [true, false, true]),
            (2, 'c2', [], [], [], [], []),
            (3, 'c3', null, null, null, null, null),
            (4, 'c4', ['p3', null], [2.0, null]::double[], [timestamp '2024-02-01 00:00:00', null],
             [null, 7], [null, false])
        ) as t(id, entity_id, items, weights, times, counts, flags)
        """
    )
    yield connection
    connection.close()


def test_read_relation_keeps_list_columns_aspython_lists(histories):
    frame = read_relation(histories, ("Shop", "Histories"))
    assert frame.columns.tolist() == [
        "id", "entity_id", "items", "weights", "times", "counts", "flags"
    ]
    assert frame["id"].tolist() == [1, 2, 3, 4]
    assert frame["items"].tolist() == [["p1", "p2", "p1"], [], None, ["p3", None]]
    assert frame["weights"].tolist() == [[0.5, 0.25, 1.0], [], None, [2.0, None]]
    assert frame["times"].tolist() == [
        [
            datetime.datetime(2024, 1, 1, 10),
            datetime.datetime(2024, 1, 2, 0, 0, 0, 500000),
            datetime.datetime(2024, 1, 3),
        ],
        [],
        None,
        [datetime.datetime(2024, 2, 1), None],
    ]
    assert frame["counts"].tolist() == [[3, 1, 2], [], None, [None, 7]]
    assert frame["flags"].tolist() == [[True, False, True], [], None, [None, False]]
    first = frame.loc[0]
    assert type(first["items"]) is list and type(first["items"][0]) is str
    assert type(first["weights"][0]) is float and type(first["counts"][0]) is int
    assert type(first["times"][0]) is datetime.datetime


def test_read_relation_reads_files_selects_columns_and_rejects_bad_names(tmp_path, histories):
    path = tmp_path / "shop.duckdb"
    histories.execute(f"attach '{path}' as shop_file")
    histories.execute('create table shop_file.main.baskets as select * from "Shop"."Histories"')
    histories.execute("detach shop_file")

    frame = read_relation(path, "baskets", columns=["items", "id"])
    assert frame.columns.tolist() == ["items", "id"]
    assert frame["items"].tolist()[0] == ["p1", "p2", "p1"]
    assert read_relation(str(path), "main.baskets").shape == (4, 7)
    assert read_relation(path, '"main"."baskets"').shape == (4, 7)
    writer = duckdb.connect(str(path))  # the file held open read-write, as dbt-duckdb does
    try:
        assert read_relation(path, "baskets").shape == (4, 7)
    finally:
        writer.close()

    with pytest.raises(FileNotFoundError, match="No DuckDB database"):
        read_relation(tmp_path / "missing.duckdb", "baskets")
    with pytest.raises(ValueError, match="schema.table"):
        read_relation(path, "a.b.c.d")
    with pytest.raises(TypeError, match="relation must be"):
        read_relation(path, 42)
    with pytest.raises(TypeError, match="list of column names"):
        read_relation(path, "baskets", columns="items")
    with pytest.raises(duckdb.CatalogException):
        read_relation(path, "no_such_table")


def test_read_relation_handles_arrays_and_empty_tables():
    connection = duckdb.connect()
    connection.execute(
        "create table embeddings as select 'p1' as key, [1.5, 2.0]::double[2] as vector"
        " union all select 'p2', null"
    )
    frame = read_relation(connection, "embeddings")
    assert frame["vector"].tolist() == [[1.5, 2.0], None]
    empty = read_relation(connection.execute("create table none as select * from embeddings"
                                             " where false"), "none")
    assert empty.shape == (0, 2) and empty.columns.tolist() == ["key", "vector"]
    assert gc.isenabled()


def test_list_conversion_handles_chunks_slices_and_nulls():
    array = pa.array([["a"], None, ["b", None, "a"], [], ["c"]], type=pa.list_(pa.string()))
    column = pa.chunked_array([array.slice(1, 3), array.slice(4)])
    assert python_lists(column) == [None, ["b", None, "a"], [], ["c"]]
    numbers = pa.chunked_array([pa.array([[1.5], [2.5, 3.5]]).slice(1)])
    assert python_lists(numbers) == [[2.5, 3.5]]


def test_read_relation_matches_arrow_on_many_rows():
    connection = duckdb.connect()
    connection.execute(
        "create table h as select i as id,"
        " ['p' || ((i * 7 + x) % 97) for x in range(i % 5)] as items,"
        " [x * 0.5 for x in range(i % 3)] as weights"
        " from range(50000) t(i)"
    )
    frame = read_relation(connection, "h")
    reference = connection.sql("select items, weights from h").to_arrow_table()
    assert frame["items"].tolist() == reference.column("items").to_pylist()
    assert frame["weights"].tolist() == reference.column("weights").to_pylist()


def _tiny_project(root):
    """A dbt project with one good model, one broken model and one failing data test."""
    (root / "models").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0'\nconfig-version: 2\nprofile: tiny\n"
    )
    (root / "profiles.yml").write_text(
        textwrap.dedent(
            """\
            tiny:
              target: dev
              outputs:
                dev:
                  type: duckdb
                  path: "{{ env_var('TINY_DUCKDB_PATH') }}"
                  threads: 1
            """
        )
    )
    (root / "models" / "good.sql").write_text("select 1 as id, ['a', 'b'] as items\n")
    (root / "models" / "broken.sql").write_text("select * from no_such_table\n")
    (root / "tests" / "always_fails.sql").write_text("select * from {{ ref('good') }}\n")
    return root


def test_run_dbt_names_failed_nodes_and_releases_the_database(tmp_path):
    project = _tiny_project(tmp_path / "project")
    database = tmp_path / "tiny.duckdb"
    kwargs = dict(
        profiles_dir=project,
        target_path=tmp_path / "target",
        log_path=tmp_path / "logs",
        env={"TINY_DUCKDB_PATH": database},
    )
    with pytest.raises(DbtRunError) as caught:
        run_dbt(["build"], project, **kwargs)
    error = caught.value
    assert sorted(error.failed_nodes) == ["model.tiny.broken", "test.tiny.always_fails"]
    assert "model.tiny.broken (error)" in str(error) and "no_such_table" in str(error)
    assert "test.tiny.always_fails (fail)" in str(error)
    assert error.command[:3] == ["build", "--project-dir", str(project)]

    result = run_dbt(["run", "--select", "good"], project, vars={"unused": 1}, **kwargs)
    assert [r.node.name for r in result.result.results] == ["good"]
    # The file is free again: readable at once, in this process.
    assert read_relation(database, "main.good")["items"].tolist() == [["a", "b"]]

    (project / "models" / "broken.sql").write_text("select {{ not_closed\n")
    with pytest.raises(DbtRunError, match="failed before running any node") as caught:
        run_dbt(["run"], project, **kwargs)
    assert caught.value.failures == []


def test_run_dbt_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="args is empty"):
        run_dbt([], tmp_path)
    with pytest.raises(TypeError, match="vars must be a mapping"):
        run_dbt(["run"], tmp_path, vars=["a"])


def test_dbt_package_path_points_at_the_basemodel_package():
    path = dbt_package_path()
    assert "name: basemodel" in (path / "dbt_project.yml").read_text()
    assert (path / "macros" / "cross_db" / "array_agg_ordered.sql").is_file()
    assert (path / "models" / "histories" / "basemodel_entity_history.sql").is_file()


def _fitted_sketcher(rows):
    return EMDESketcher(
        RandomVectorEmbedder(8, random_state=0),
        n_sketches=3,
        sketch_dim=8,
        normalize=None,
        random_state=0,
    ).fit(rows)


def _assert_codes_written(frame, sketcher):
    frame = frame.sort_values(["entity_key", "partitioning"], ignore_index=True)
    order = np.argsort(np.asarray([str(k) for k in sketcher.keys_]), kind="stable")
    keys = np.repeat(np.asarray(sketcher.keys_)[order], sketcher.n_sketches)
    codes = np.asarray(sketcher.codes_)[order]
    assert [str(k) for k in frame["entity_key"]] == [str(k) for k in keys]
    assert frame["partitioning"].tolist() == list(range(sketcher.n_sketches)) * len(order)
    assert frame["bucket"].tolist() == codes.ravel().tolist()
    assert (frame["position"] == frame["partitioning"] * 8 + frame["bucket"]).all()


def test_write_entity_codes_to_duckdb_replaces_the_table(tmp_path):
    sketcher = _fitted_sketcher([["milk", "bread"], ["beer", "milk"], ["tea"]])
    path = tmp_path / "codes.duckdb"
    assert write_entity_codes(sketcher, path, "main.codes") == 4 * 3
    assert write_entity_codes(sketcher, path, "main.codes") == 4 * 3  # replaced, not appended
    _assert_codes_written(read_relation(path, "codes"), sketcher)

    numbered = _fitted_sketcher([[10, 20], [30]])
    connection = duckdb.connect()
    write_entity_codes(numbered, connection)
    frame = read_relation(connection, "basemodel_entity_codes")
    key_type = connection.execute("select typeof(entity_key) from basemodel_entity_codes limit 1")
    assert key_type.fetchone() == ("BIGINT",)
    _assert_codes_written(frame, numbered)


def test_write_entity_codes_through_dbapi_and_refuses_unfitted():
    sketcher = _fitted_sketcher([["milk", "bread"], ["beer"]])
    connection = sqlite3.connect(":memory:")
    assert write_entity_codes(sketcher, connection, "codes") == 3 * 3
    write_entity_codes(sketcher, connection, "codes")
    rows = connection.execute(
        "select entity_key, partitioning, bucket, position from codes"
    ).fetchall()
    _assert_codes_written(
        pd.DataFrame(rows, columns=["entity_key", "partitioning", "bucket", "position"]), sketcher
    )
    with pytest.raises(NotFittedError):
        write_entity_codes(EMDESketcher(), connection)
    with pytest.raises(TypeError, match="DB-API 2 connection"):
        write_entity_codes(sketcher, object())


# --------------------------------------------------------------------------- tables
def test_read_histories_turns_parallel_lists_into_mappings():
    connection = duckdb.connect()
    connection.execute(
        """
        create table basemodel_entity_history as select * from (values
            (1, 'c1', 2.0, ['p1', 'p2', 'p1'], [0.5, 0.25, 1.0]::double[], ['k1', 'k1', 'k2'],
             [0.5, 0.25, 1.0]::double[]),
            (1, 'c2', 0.0, null, null, [], []::double[])
        ) as t(split_id, entity_id, n_events, product_items, product_weights,
               category_items, category_weights)
        """
    )
    frame = read_histories(connection, ["product", "category"], columns=["entity_id", "n_events"])
    assert frame.columns.tolist() == ["entity_id", "n_events", "product_history",
                                      "category_history"]  # fmt: skip
    assert frame["product_history"].tolist() == [{"p1": 1.5, "p2": 0.25}, {}]
    assert frame["category_history"].tolist() == [{"k1": 0.75, "k2": 1.0}, {}]
    with pytest.raises(ValueError, match="2 items but 1 weights"):
        history_rows(pd.DataFrame({"x_items": [["a", "b"]], "x_weights": [[1.0]]}), ["x"])


def _sql_sketches(sketcher, rows, weights):
    """What the dbt macro ``emde_sketch`` computes: the codes written to DuckDB, joined with
    the (row, item, weight) table and summed per position."""
    connection = duckdb.connect()
    write_entity_codes(sketcher, connection, "codes")
    events = pd.DataFrame(
        [(f"r{i}", 7, str(item), weight) for i, (row, ws) in enumerate(zip(rows, weights))
         for item, weight in zip(row, ws)],
        columns=["entity_id", "split_id", "item", "weight"],
    )  # fmt: skip
    connection.register("events", events)
    return connection.execute(
        "select e.split_id, e.entity_id, c.position, sum(e.weight) as value "
        "from events e join codes c on e.item = cast(c.entity_key as varchar) "
        "group by all order by random()"
    ).df()


def test_sketch_matrix_reads_sql_sketches_as_transform_returns_them():
    rows = [["milk", "bread", "milk"], ["beer"], [], ["tea", "unknown"]]
    weights = [[0.5, 1.0, 0.25], [2.0], [], [1.0, 3.0]]
    fitted = _fitted_sketcher([["milk", "bread"], ["beer", "tea"]])
    sketches = _sql_sketches(fitted, rows, weights)
    table = pd.DataFrame({"split_id": [7] * 4, "entity_id": ["r0", "r1", "r2", "r3"]})
    X = sketch_matrix(sketches, table, fitted.codebook_)
    mapped = [dict(zip(r, w)) if r else {} for r, w in zip(rows, weights)]
    mapped[0] = {"milk": 0.75, "bread": 1.0}
    with pytest.warns(UnknownEntityWarning):
        expected = fitted.transform(mapped)
    np.testing.assert_allclose(X.toarray(), _dense(expected), rtol=1e-6)
    assert X.shape == (4, fitted.codebook_.width) and X[2].nnz == 0
    l1 = sketch_matrix(sketches, table, fitted.codebook_, norm="l1").toarray()
    blocks = l1[[0, 1, 3]].reshape(3, 3, 8).sum(axis=2)
    np.testing.assert_allclose(blocks, 1.0, rtol=1e-6)  # each partitioning sums to one
    with pytest.raises(ValueError, match="match no row"):
        sketch_matrix(sketches, table.iloc[1:], fitted.codebook_)
    with pytest.raises(ValueError, match="repeat a key"):
        sketch_matrix(sketches, pd.concat([table, table]), fitted.codebook_)


def _dense(X):
    return X.toarray() if hasattr(X, "toarray") else np.asarray(X)


# --------------------------------------------------------------------------- a dbt project
def test_split_times_and_package_vars():
    assert split_times("2024-12-31", 2) == ["2024-09-30", "2024-10-30", "2024-11-30"]
    assert split_times(pd.Timestamp("2024-03-15 13:00"), 1, horizon_days=7) == [
        "2024-02-07", "2024-03-07"
    ]  # fmt: skip
    settings = dbt_vars("raw", ["2024-06-01"], item_columns={"product": "sku", "brand": "b"},
                        entity_column="customer", decay_rate=0.02)  # fmt: skip
    assert settings == {
        "basemodel_events_identifier": "raw",
        "basemodel_item_columns": [{"name": "product", "column": "sku"},
                                   {"name": "brand", "column": "b"}],
        "basemodel_split_times": ["2024-06-01"],
        "basemodel_entity_column": "customer",
        "basemodel_decay_rate": 0.02,
    }  # fmt: skip


def test_write_dbt_project_installs_the_package(tmp_path):
    import yaml

    project = write_dbt_project(tmp_path / "p", tmp_path / "w.duckdb", {"basemodel_x": 1},
                                name="shop")  # fmt: skip
    config = yaml.safe_load((project / "dbt_project.yml").read_text())
    assert config["name"] == config["profile"] == "shop" and config["vars"] == {"basemodel_x": 1}
    profile = yaml.safe_load((project / "profiles.yml").read_text())["shop"]
    assert profile["outputs"][profile["target"]]["path"] == str((tmp_path / "w.duckdb").resolve())
    packages = yaml.safe_load((project / "packages.yml").read_text())["packages"]
    assert packages == [{"local": str(dbt_package_path())}]


@pytest.mark.parametrize(
    "table",
    [
        '"c" as select 1; drop table victim; create table "d"',
        'codes; drop table victim',
        '"codes"; drop table victim; --',
        '"unclosed',
    ],
)
def test_write_entity_codes_never_runs_a_table_name_as_sql(tmp_path, table):
    import duckdb

    from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
    from sklearn_basemodel.warehouse import write_entity_codes

    sketcher = EMDESketcher(RandomVectorEmbedder(8), n_sketches=2, sketch_dim=4,
                            random_state=0).fit([["a", "b"], ["c"]])  # fmt: skip
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("create table victim as select 1 as x")
    try:
        write_entity_codes(sketcher, con, table=table)
    except ValueError:
        pass
    names = {row[0] for row in con.execute("select table_name from information_schema.tables").fetchall()}
    assert "victim" in names and "d" not in names
    # whatever was created carries the whole string as its name, never a second statement
    assert names - {"victim"} <= {table.replace('""', '"')}
    con.close()


def test_quoted_parts_are_parsed_and_quoted_again():
    from sklearn_basemodel.warehouse.connections import quote_relation

    assert quote_relation('"My Schema".events') == '"My Schema"."events"'
    assert quote_relation('"a""b"') == '"a""b"'
    assert quote_relation(("x", 'y"; drop')) == '"x"."y""; drop"'


def test_keys_with_the_same_text_are_refused(tmp_path):
    import duckdb

    from sklearn_basemodel import EMDESketcher
    from sklearn_basemodel.warehouse import write_entity_codes

    vectors = {1: [1.0, 0.0], "1": [0.0, 1.0], "x": [1.0, 1.0]}
    sketcher = EMDESketcher(entity_vectors=vectors, n_sketches=2, sketch_dim=2,
                            random_state=0).fit(None)  # fmt: skip
    with pytest.raises(ValueError, match="same text"):
        write_entity_codes(sketcher, duckdb.connect(), table="codes")


def test_run_dbt_deps_with_target_and_log_paths(tmp_path):
    """``deps`` takes no --target-path flag: the paths must still apply (and not fail)."""
    from sklearn_basemodel.warehouse import run_dbt

    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text(
        "name: p\nversion: '1.0'\nconfig-version: 2\nprofile: p\n"
    )
    (project / "packages.yml").write_text("packages: []\n")
    run_dbt(["deps"], project, target_path=tmp_path / "target", log_path=tmp_path / "logs")
    assert (tmp_path / "logs").is_dir() and not (project / "logs").exists()
