"""Benchmark: Cleora in the warehouse (the dbt package's SQL) against CleoraEmbedder in Python.

Generates events with ``sklearn_basemodel.datasets.make_events`` (default 2,000,000) into a
DuckDB database, builds the package's hyperedges with dbt (not timed: both paths start from
them), then times

* SQL: the models ``basemodel_cleora_incidence`` and ``basemodel_cleora_vectors`` (their
  execution times as dbt reports them, without dbt's start-up and parsing),
* Python: ``CleoraEmbedder.fit`` on the hyperedges' item lists (reading them out of DuckDB
  with ``read_relation`` is timed apart),

with the same n_components, n_iter and seed, and checks that both give the same vectors. With
``--spark`` (needs pyspark, dbt-spark and Java: ``make test-spark`` installs them) the same
Cleora macros also run on local Spark (``local[2]``) over the hyperedges copied into Spark.

    .venv/bin/python benchmarks/cleora_sql.py                      # 2M events, d=64, 3 steps
    .venv/bin/python benchmarks/cleora_sql.py --events 200000      # quick
    .venv/bin/python benchmarks/cleora_sql.py --spark

The last line is ``cleora_sql duckdb_s=<x> python_s=<y> ratio=<x/y>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from sklearn_basemodel import CleoraEmbedder
from sklearn_basemodel.datasets import make_events, write_events
from sklearn_basemodel.warehouse import (
    dbt_package_path,
    dbt_vars,
    read_relation,
    run_dbt,
    split_times,
    write_dbt_project,
)

ITEM = "product"


def _paths(project):
    """Where dbt finds the profile and writes its artifacts and logs: inside the project."""
    return {"profiles_dir": project, "target_path": project / "target", "log_path": project / "logs"}


def _model_seconds(result):
    """Execution time of each model a dbt command ran, by model name."""
    return {r.node.name: r.execution_time for r in result.result.results}


def _cleora_vars(args):
    return {
        "basemodel_cleora_enabled": True,
        "basemodel_cleora_item_column": ITEM,
        "basemodel_cleora_n_components": args.components,
        "basemodel_cleora_n_iter": args.iterations,
        "basemodel_cleora_seed": args.seed,
    }


def build_hyperedges(workdir, args):
    """Events -> DuckDB -> the package's hyperedges; returns (project, database)."""
    database = workdir / "events.duckdb"
    events = make_events(args.events, random_state=args.seed)
    write_events(events, database)
    settings = dbt_vars(
        "raw_events",
        split_times(events["event_time"].max(), 1),
        item_columns={ITEM: "product_id", "category": "category_id"},
        entity_column="customer_id",
        timestamp_column="event_time",
        event_type_column="event_type",
        group_column="basket_id",
        amount_column="amount",
        event_id_column="event_id",
    )
    project = write_dbt_project(workdir / "project", database, settings)
    run_dbt(["deps"], project, profiles_dir=project, log_path=project / "logs")
    run_dbt(["run", "--select", "+basemodel_hyperedges"], project, **_paths(project))
    return project, database


def duckdb_cleora(project, database, args):
    """Seconds of the two Cleora models, and their vectors."""
    result = run_dbt(
        ["run", "--select", "basemodel_cleora_incidence", "basemodel_cleora_vectors"],
        project, vars=_cleora_vars(args), **_paths(project),
    )  # fmt: skip
    seconds = _model_seconds(result)
    vectors = read_relation(database, "main.basemodel_cleora_vectors")
    return seconds, vectors.set_index("entity_key")


def python_cleora(database, args):
    """(read seconds, fit seconds, vectors) of CleoraEmbedder on the same hyperedges."""
    t0 = time.perf_counter()
    hyperedges = read_relation(database, "main.basemodel_hyperedges", columns=[f"{ITEM}_items"])
    t1 = time.perf_counter()
    cleora = CleoraEmbedder(args.components, n_iter=args.iterations, random_state=args.seed)
    cleora.fit(hyperedges)
    t2 = time.perf_counter()
    vectors = pd.DataFrame(cleora.embeddings_, index=list(cleora.vocabulary_))
    return t1 - t0, t2 - t1, vectors, len(hyperedges)


def spark_cleora(workdir, database, args):
    """Seconds of the same Cleora macros on local Spark, and their vectors."""
    from pyspark.sql import SparkSession

    spark_dir = workdir / "spark"
    spark_dir.mkdir()
    os.chdir(spark_dir)  # dbt-spark's session method keeps its metastore and tables here
    parquet = spark_dir / "hyperedges.parquet"
    import duckdb

    with duckdb.connect(str(database), read_only=True) as connection:
        connection.execute(
            f"copy (select entity_id, group_id, {ITEM}_items from basemodel_hyperedges)"
            f" to '{parquet}' (format parquet)"
        )
    settings = {
        "spark.master": "local[2]",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
    }
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sql("create database if not exists bench")
    spark.read.parquet(str(parquet)).write.mode("overwrite").saveAsTable("bench.hyperedges")

    project = spark_dir / "project"
    (project / "models").mkdir(parents=True)
    files = {
        "dbt_project.yml": {"name": "cleora_bench", "version": "0.1.0", "config-version": 2,
                            "profile": "cleora_bench",
                            "models": {"cleora_bench": {"+materialized": "table"}}},
        "packages.yml": {"packages": [{"local": os.fspath(dbt_package_path())}]},
        "profiles.yml": {"cleora_bench": {"target": "spark", "outputs": {"spark": {
            "type": "spark", "method": "session", "host": "NA", "schema": "bench",
            "threads": 1, "server_side_parameters": settings}}}},
        "models/sources.yml": {"version": 2, "sources": [
            {"name": "bench", "schema": "bench", "tables": [{"name": "hyperedges"}]}]},
    }  # fmt: skip
    for name, content in files.items():
        (project / name).write_text(yaml.safe_dump(content, sort_keys=False))
    (project / "models" / "cleora_incidence.sql").write_text(
        "{{ basemodel.cleora_incidence(source('bench', 'hyperedges'), "
        f"['entity_id', 'group_id'], '{ITEM}_items') }}}}\n"
    )
    (project / "models" / "cleora_vectors.sql").write_text(
        "{{ basemodel.cleora_vectors(ref('cleora_incidence'), "
        f"{args.components}, {args.iterations}, {args.seed}) }}}}\n"
    )
    run_dbt(["deps"], project, profiles_dir=project, log_path=project / "logs")
    models = ["cleora_incidence", "cleora_vectors"]  # not the package's own models
    seconds = _model_seconds(run_dbt(["run", "--select", *models], project, **_paths(project)))
    vectors = spark.table("bench.cleora_vectors").toPandas()
    return seconds, vectors.set_index("entity_key")


def max_difference(sql, python):
    """Largest absolute difference between two vector tables (inf when the keys differ)."""
    if sorted(sql.index) != sorted(python.index):
        return float("inf")
    columns = [f"cleora_{i}" for i in range(python.shape[1])]
    return float(np.abs(sql.loc[python.index, columns].to_numpy() - python.to_numpy()).max())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--components", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spark", action="store_true", help="also run on local Spark")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        project, database = build_hyperedges(workdir, args)
        print(f"events and hyperedges built in {time.perf_counter() - t0:.1f}s")

        sql_seconds, sql_vectors = duckdb_cleora(project, database, args)
        read_s, fit_s, py_vectors, n_edges = python_cleora(database, args)
        duckdb_s = sum(sql_seconds.values())
        rows = [
            ("DuckDB SQL: incidence", sql_seconds["basemodel_cleora_incidence"]),
            ("DuckDB SQL: start vectors + propagation", sql_seconds["basemodel_cleora_vectors"]),
            ("Python: read hyperedges (read_relation)", read_s),
            ("Python: CleoraEmbedder.fit", fit_s),
        ]
        spark_s = None
        if args.spark:
            spark_seconds, spark_vectors = spark_cleora(workdir, database, args)
            spark_s = sum(spark_seconds.values())
            rows += [(f"Spark SQL (local[2]): {name}", s) for name, s in spark_seconds.items()]

        print(
            f"\n{args.events:,} events, {n_edges:,} hyperedges, {len(py_vectors):,} items, "
            f"n_components={args.components}, n_iter={args.iterations}\n"
        )
        print("| step | seconds |\n|---|---:|")
        for name, seconds in rows:
            print(f"| {name} | {seconds:.2f} |")
        print(f"\nmax |SQL - Python| (DuckDB): {max_difference(sql_vectors, py_vectors):.2e}")
        if spark_s is not None:
            print(f"max |SQL - Python| (Spark): {max_difference(spark_vectors, py_vectors):.2e}")
            print(f"cleora_sql spark_s={spark_s:.2f} python_s={fit_s:.2f} ratio={spark_s / fit_s:.2f}")
        print(f"cleora_sql duckdb_s={duckdb_s:.2f} python_s={fit_s:.2f} ratio={duckdb_s / fit_s:.2f}")


if __name__ == "__main__":
    main()
