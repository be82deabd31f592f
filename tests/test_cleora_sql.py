"""Cleora in the warehouse (dbt_package/macros/cleora) equals CleoraEmbedder.

The integration project's Cleora models (enabled with ``basemodel_cleora_enabled``) embed the
items of its hyperedges and of the seed graph ``seeds/cleora/cleora_graph_edges.csv`` (text and
integer keys) in SQL; each result is compared with ``CleoraEmbedder`` fitted in Python on the
same rows with the same seed: DuckDB always, PostgreSQL when a server is reachable, local Spark
when pyspark, dbt-spark and a Java runtime are installed.
"""

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_dbt_package import IntegrationProject, _postgres_settings, postgres  # noqa: F401

from sklearn_basemodel import CleoraEmbedder
from sklearn_basemodel.warehouse import DbtRunError, read_relation

SEED_GRAPH = (
    Path(__file__).resolve().parents[1]
    / "dbt_package" / "integration_tests" / "seeds" / "cleora" / "cleora_graph_edges.csv"
)  # fmt: skip
IT_MODELS = ["it_cleora_text_vectors", "it_cleora_integer_vectors"]
CLEORA_MODELS = ["+basemodel_cleora_vectors", *IT_MODELS]
SEEDS = ["raw_events", "cleora_graph_edges"]
N_COMPONENTS, N_ITER, SEED = 8, 3, 7


def _cleora_vars(**overrides):
    settings = {
        "basemodel_cleora_enabled": True,
        "basemodel_cleora_item_column": "product",
        "basemodel_cleora_n_components": N_COMPONENTS,
        "basemodel_cleora_n_iter": N_ITER,
        "basemodel_cleora_seed": SEED,
    }
    return {**settings, **{f"basemodel_cleora_{k}": v for k, v in overrides.items()}}


def _seed_graph_rows(column):
    """The seed graph as CleoraEmbedder rows: one list of keys per hyperedge."""
    edges = pd.read_csv(
        SEED_GRAPH, keep_default_na=False, dtype={"edge_key": str, "item": str}, encoding="utf-8"
    )
    return [group[column].tolist() for _, group in edges.groupby("edge_key", sort=True)]


def _python_vectors(rows, n_components=N_COMPONENTS, n_iter=N_ITER, **params):
    """CleoraEmbedder's vectors as a frame indexed by entity key."""
    cleora = CleoraEmbedder(n_components, n_iter=n_iter, random_state=SEED, **params).fit(rows)
    return pd.DataFrame(cleora.embeddings_, index=list(cleora.vocabulary_))


def _assert_same_vectors(sql, expected, atol=1e-5):
    """The SQL rows (entity_key, cleora_0 ..) equal the expected frame, key by key."""
    sql = sql.set_index("entity_key")
    assert sorted(sql.index) == sorted(expected.index)
    columns = [f"cleora_{i}" for i in range(expected.shape[1])]
    assert list(sql.columns) == columns
    got = sql.loc[expected.index, columns].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(got, expected.to_numpy(dtype=np.float64), rtol=0, atol=atol)


def _check_all(read, hyperedges):
    """Every Cleora model of the integration project against CleoraEmbedder."""
    expected = _python_vectors(hyperedges[["product_items"]])
    _assert_same_vectors(read("basemodel_cleora_vectors"), expected)
    _assert_same_vectors(read("it_cleora_text_vectors"), _python_vectors(_seed_graph_rows("item")))
    integer_vectors = read("it_cleora_integer_vectors")
    integer_vectors["entity_key"] = integer_vectors["entity_key"].astype("int64")
    _assert_same_vectors(integer_vectors, _python_vectors(_seed_graph_rows("item_number")))


def _given_start_vectors():
    """Start vectors for every product of the integration project's events (a table with
    entity_key, cleora_0 ..): with all of them given, the SQL result depends on the
    propagation alone, not on the hash of the keys."""
    products = [f"p{i}" for i in range(1, 10)]
    values = np.random.default_rng(0).normal(size=(len(products), N_COMPONENTS))
    table = pd.DataFrame(values, columns=[f"cleora_{i}" for i in range(N_COMPONENTS)])
    table.insert(0, "entity_key", products)
    return table


def _check_given(read, hyperedges, given):
    """basemodel_cleora_vectors run with `given` as start vectors equals CleoraEmbedder with
    the same initial_vectors."""
    items = {item for row in hyperedges["product_items"] for item in row}
    initial = {
        key: np.asarray(vector, dtype=np.float32)
        for key, vector in zip(given["entity_key"], given.drop(columns="entity_key").to_numpy())
        if key in items
    }
    assert len(initial) == len(items)
    expected = _python_vectors(hyperedges[["product_items"]], initial_vectors=initial)
    _assert_same_vectors(read("basemodel_cleora_vectors"), expected)


@pytest.fixture(scope="module")
def duckdb_project(tmp_path_factory):
    """The integration project on DuckDB with the seeds the Cleora models read (each test
    rebuilds the models it reads)."""
    root = tmp_path_factory.mktemp("cleora_duckdb")
    database = root / "cleora.duckdb"
    project = IntegrationProject(root, "duckdb", {"BASEMODEL_DUCKDB_PATH": database})
    project.dbt("seed", "--select", *SEEDS, vars=_cleora_vars())
    project.database = database
    return project


def test_duckdb_cleora_equals_cleora_embedder(duckdb_project):
    project, database = duckdb_project, duckdb_project.database
    result = project.dbt(
        "build", "--select", *CLEORA_MODELS, "--indirect-selection", "cautious",
        vars=_cleora_vars(),
    )
    statuses = {r.node.unique_id: str(r.status) for r in result.result.results}
    assert "model.basemodel.basemodel_cleora_vectors" in statuses
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    hyperedges = read_relation(database, "main.basemodel_hyperedges")
    _check_all(lambda name: read_relation(database, f"main.{name}"), hyperedges)


@pytest.mark.slow
def test_duckdb_start_vectors_equal_python_hash(duckdb_project):
    """n_iter=0 returns the normalised start vectors: the SQL hash of text and integer keys
    (int64 extremes, non-ASCII text) reproduces Python's, dimension by dimension."""
    project, database = duckdb_project, duckdb_project.database
    project.dbt(
        "run", "--select", "it_cleora_text_vectors", "it_cleora_integer_vectors",
        vars=_cleora_vars(n_components=64, n_iter=0),
    )  # fmt: skip
    for model, column in [("it_cleora_text_vectors", "item"), ("it_cleora_integer_vectors", "item_number")]:
        sql = read_relation(database, f"main.{model}")
        if column == "item_number":
            sql["entity_key"] = sql["entity_key"].astype("int64")
        expected = _python_vectors(_seed_graph_rows(column), n_components=64, n_iter=0)
        _assert_same_vectors(sql, expected, atol=1e-6)


def test_duckdb_given_start_vectors_replace_hashed_ones(duckdb_project):
    """A start-vector table (basemodel_cleora_start_vectors_identifier) plays the part of
    CleoraEmbedder's initial_vectors."""
    project, database = duckdb_project, duckdb_project.database
    given = _given_start_vectors()
    with duckdb.connect(str(database)) as connection:
        connection.register("given_frame", given)
        connection.execute("create or replace table cleora_given as select * from given_frame")
    project.dbt(
        "run", "--select", "+basemodel_cleora_vectors",
        vars=_cleora_vars(start_vectors_identifier="cleora_given"),
    )  # fmt: skip
    hyperedges = read_relation(database, "main.basemodel_hyperedges")
    _check_given(lambda name: read_relation(database, f"main.{name}"), hyperedges, given)
    # The given vectors matter: from other start vectors the result differs.
    other = given.assign(cleora_0=-given["cleora_0"])
    with pytest.raises(AssertionError):
        _check_given(lambda name: read_relation(database, f"main.{name}"), hyperedges, other)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_iter": -1}, "basemodel_cleora_n_iter"),
        pytest.param({"n_components": 2.5}, "basemodel_cleora_n_components", marks=pytest.mark.slow),
        pytest.param({"item_column": "colour"}, "basemodel_cleora_item_column", marks=pytest.mark.slow),
    ],
)
def test_invalid_cleora_vars_are_refused_at_compile_time(duckdb_project, overrides, message):
    with pytest.raises(DbtRunError, match=message):
        duckdb_project.dbt(
            "compile", "--select", "basemodel_cleora_vectors", vars=_cleora_vars(**overrides)
        )


@pytest.mark.postgres
def test_postgres_cleora_equals_cleora_embedder(tmp_path, postgres):  # noqa: F811
    schema = f"basemodel_cleora_{uuid.uuid4().hex[:10]}"
    # the profile's variables, from the same settings as the psycopg2 connection
    names = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD", "dbname": "DATABASE"}
    env = {f"BASEMODEL_PG_{names[k]}": v for k, v in _postgres_settings().items()}
    env["BASEMODEL_PG_SCHEMA"] = schema

    def read(name, columns="*"):
        with postgres.cursor() as cursor:
            cursor.execute(f"select {columns} from {schema}.{name}")
            return pd.DataFrame(cursor.fetchall(), columns=[d.name for d in cursor.description])

    try:
        project = IntegrationProject(tmp_path, "postgres", env)
        project.dbt("seed", "--select", *SEEDS, vars=_cleora_vars())
        project.dbt(
            "build", "--select", *CLEORA_MODELS, "--indirect-selection", "cautious",
            vars=_cleora_vars(),
        )
        hashed = {name: read(name) for name in ["basemodel_cleora_vectors", *IT_MODELS]}
        hyperedges = read("basemodel_hyperedges", "product_items")

        given = _given_start_vectors()
        columns = list(given.columns)
        with postgres.cursor() as cursor:
            cursor.execute(
                f"create table {schema}.cleora_given (entity_key text, "
                + ", ".join(f"{c} double precision" for c in columns[1:]) + ")"
            )
            cursor.executemany(
                f"insert into {schema}.cleora_given values ({', '.join(['%s'] * len(columns))})",
                given.astype(object).itertuples(index=False, name=None),
            )
        project.dbt(
            "run", "--select", "basemodel_cleora_vectors",
            vars=_cleora_vars(start_vectors_identifier="cleora_given"),
        )  # fmt: skip
        _check_given(read, hyperedges, given)
        _check_all(hashed.__getitem__, hyperedges)
    finally:
        with postgres.cursor() as cursor:
            cursor.execute(f"drop schema if exists {schema} cascade")


_SPARK_SCRIPT = """
import json, sys
import pandas as pd
from pyspark.sql import SparkSession
from sklearn_basemodel.warehouse import run_dbt
project, out, vars, models = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4:]
options = dict(profiles_dir=project, target_path="target", log_path="logs", vars=vars)
run_dbt(["deps"], project, profiles_dir=project, log_path="logs")
run_dbt(["seed", "--select", "raw_events", "cleora_graph_edges"], project, **options)
run_dbt(["build", "--indirect-selection", "cautious", "--select", *models], project, **options)
spark = SparkSession.builder.getOrCreate()  # the session dbt-spark started
for name in ["basemodel_hyperedges", "basemodel_cleora_vectors", *models[1:]]:
    spark.table(f"basemodel_it.{name}").toPandas().to_pickle(f"{out}/{name}.pkl")
given = pd.read_pickle(f"{out}/given.pkl")
spark.createDataFrame(given).write.saveAsTable("basemodel_it.cleora_given")
vars["basemodel_cleora_start_vectors_identifier"] = "cleora_given"
run_dbt(["run", "--select", "basemodel_cleora_vectors"], project, **{**options, "vars": vars})
spark.table("basemodel_it.basemodel_cleora_vectors").toPandas().to_pickle(f"{out}/given_vectors.pkl")
"""


def _spark_missing():
    """Why local Spark cannot run here (None when it can)."""
    if shutil.which("java") is None:
        return "no Java runtime on PATH (make test-spark installs one)"
    for module in ("pyspark", "dbt.adapters.spark"):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed (make test-spark installs it)"
    return None


@pytest.mark.slow
def test_spark_cleora_equals_cleora_embedder(tmp_path):
    """On local Spark (dbt-spark's session method): run in a child process, which owns the
    JVM and the metastore in tmp_path, and writes the tables back as pickles."""
    missing = _spark_missing()
    if missing:
        pytest.skip(missing)
    shutil.copytree(
        Path(__file__).resolve().parents[1] / "dbt_package",
        tmp_path / "dbt_package",
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "package-lock.yml"),
    )
    project = tmp_path / "dbt_package" / "integration_tests"
    given = _given_start_vectors()
    given.to_pickle(tmp_path / "given.pkl")
    env = {**os.environ, "BASEMODEL_DBT_TARGET": "spark", "BASEMODEL_SPARK_SCHEMA": "basemodel_it"}
    completed = subprocess.run(
        [sys.executable, "-c", _SPARK_SCRIPT, str(project), str(tmp_path),
         json.dumps(_cleora_vars()), *CLEORA_MODELS],
        cwd=project, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-4000:]

    def read(name):
        return pd.read_pickle(tmp_path / f"{name}.pkl")

    hyperedges = read("basemodel_hyperedges")
    hyperedges["product_items"] = hyperedges["product_items"].map(list)
    _check_given(lambda name: read("given_vectors"), hyperedges, given)
    _check_all(read, hyperedges)

