"""The dbt package `basemodel` on local Spark, built end to end on its integration project.

`make test-spark` installs what Spark needs (.ci/spark: a Java runtime, pyspark, dbt-spark) and
runs this module. The integration project is seeded and built on Spark in this process
(dbt-spark's session method, profile target `spark`), so its schema, data and unit tests all
run on Spark; then the results are checked from Python: the text cells of every seed arrive
byte for byte (a NULL cell as NULL, not the string 'None'), every raw row is staged or
rejected exactly once, histories and targets equal the pandas computation of
tests/test_dbt_package.py, and the SQL of every model gives the same rows with ANSI mode on
(Spark 4's and Databricks SQL's default, which dbt-spark turns off). Skips when pyspark,
dbt-spark or Java is missing; slow (a few minutes), so `make test` leaves it out.
"""

import math
import os
import shutil
from collections import Counter
from types import SimpleNamespace

import pandas as pd
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark (bash .ci/spark installs one)", allow_module_level=True)

from pyspark.sql import SparkSession
from test_dbt_package import (
    DECAY_RATE,
    SPLITS,
    IntegrationProject,
    _assert_same_lists,
    _expected_history,
    _expected_targets,
    _node_statuses,
    _seed,
)

from sklearn_basemodel.warehouse import DbtRunError

pytestmark = pytest.mark.slow

SCHEMA = "basemodel_it"
# The text values dbt's CSV reader turns into NULL (after stripping blanks, any case).
CSV_NULLS = {"", "null"}


@pytest.fixture(scope="module")
def spark_build(tmp_path_factory):
    """The integration project seeded and built on local Spark.

    A namespace with ``seeds`` (the seed folder of the copy that was built), ``result`` (dbt's
    build result), ``failure`` (the message of a failed build, None when it passed) and
    ``spark`` (the session dbt-spark opened in this process).
    """
    root = tmp_path_factory.mktemp("spark")
    # Spark's tables, its Hive metastore and derby.log go into the working directory of the
    # JVM, which starts with the first query: keep them out of the repository.
    previous = os.getcwd()
    os.chdir(root)
    try:
        project = IntegrationProject(root, "spark", {"BASEMODEL_SPARK_SCHEMA": SCHEMA})
        project.dbt("seed")
        try:
            result, failure = project.dbt("build"), None
        except DbtRunError as error:
            # Nodes ran but some failed: test_spark_build_passes reports them, the other
            # checks still read what was built.
            if error.result.result is None:
                raise
            result, failure = error.result, str(error)
        spark = SparkSession.builder.getOrCreate()
        yield SimpleNamespace(
            seeds=project.project / "seeds", result=result, failure=failure, spark=spark
        )
        spark.stop()
    finally:
        os.chdir(previous)


def _rows(spark, sql):
    return [row.asDict(recursive=True) for row in spark.sql(sql).collect()]


def test_spark_build_passes(spark_build):
    assert spark_build.failure is None, spark_build.failure
    statuses = _node_statuses(spark_build.result)
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    kinds = Counter(key.split(".")[0] for key in statuses)
    assert kinds["seed"] == len(list(spark_build.seeds.rglob("*.csv")))
    assert kinds["unit_test"] >= 8 and kinds["test"] >= 75 and kinds["model"] >= 15
    assert "test.basemodel.basemodel_events_reconcile" in statuses


def _csv_text(value):
    """A CSV cell as dbt loads it into a text column: NULL for blank and 'null'."""
    return None if value.strip().lower() in CSV_NULLS else value


def test_spark_seeds_keep_text_cells_byte_for_byte(spark_build):
    # dbt-spark's own seed loader turns NULL cells into 'None' and breaks on quotes; the
    # integration project's loader (macros/spark_seeds.sql) must not.
    spark = spark_build.spark
    n_nulls = 0
    for path in sorted(spark_build.seeds.rglob("*.csv")):
        table = spark.table(f"{SCHEMA}.{path.stem}")
        text_columns = [f.name for f in table.schema.fields if f.dataType.typeName() == "string"]
        if not text_columns:
            continue
        csv = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
        expected = Counter(
            tuple(_csv_text(row[c]) for c in text_columns) for _, row in csv.iterrows()
        )
        actual = Counter(tuple(row) for row in table.select(*text_columns).collect())
        assert actual == expected, path.name
        n_nulls += sum(value is None for row in expected for value in row)
    assert n_nulls > 0, "the check needs NULL text cells"


def test_spark_every_raw_row_lands_exactly_once(spark_build):
    spark = spark_build.spark
    raw = [r["raw_row_id"] for r in _rows(spark, f"select raw_row_id from {SCHEMA}.raw_events")]
    staged = [r["raw_row_id"] for r in _rows(
        spark, f"select raw_row_id from {SCHEMA}.basemodel_stg_events")]
    rejected = _rows(
        spark, f"select raw_row_id, rejection_reason from {SCHEMA}.basemodel_rejected_events")
    rejected_ids = [r["raw_row_id"] for r in rejected]
    assert len(set(raw)) == len(raw)
    assert len(set(staged)) == len(staged) and len(set(rejected_ids)) == len(rejected_ids)
    assert set(staged).isdisjoint(rejected_ids)
    assert set(staged) | set(rejected_ids) == set(raw)
    expected = _seed("expected_rejected_events")
    assert {r["raw_row_id"]: r["rejection_reason"] for r in rejected} == dict(
        zip(expected["raw_row_id"], expected["rejection_reason"])
    )


def _timestamps(texts):
    return list(pd.to_datetime(pd.Series(texts, dtype=object), format="ISO8601"))


def test_spark_histories_and_targets_match_pandas(spark_build):
    spark = spark_build.spark
    # Timestamps travel as text in the session time zone (UTC): PySpark would convert them
    # to the Python process's local time.
    events = pd.DataFrame(_rows(
        spark,
        "select event_id, entity_id, cast(event_at as string) as event_at, event_type,"
        f" product, category, brand, group_id, amount from {SCHEMA}.basemodel_stg_events",
    ))
    events["event_at"] = _timestamps(events["event_at"])
    expected_history = _expected_history(events)

    history = pd.DataFrame(_rows(
        spark,
        "select *, cast(split_at as string) as split_text,"
        " transform(event_times, t -> cast(t as string)) as event_time_texts"
        f" from {SCHEMA}.basemodel_entity_history",
    ))
    history["split_at"] = _timestamps(history["split_text"])
    history["event_times"] = history["event_time_texts"].map(_timestamps)
    history = history.sort_values(["split_at", "entity_id"], ignore_index=True)
    _assert_same_lists(
        history[expected_history.columns],
        expected_history,
        float_lists=[c for c in expected_history.columns if c.endswith("weights")],
    )
    dormant = history[(history["entity_id"] == "c7") & (history["split_at"] == SPLITS[0])]
    assert math.isclose(dormant["decay_weights"].item()[0], math.exp(-DECAY_RATE * 425))

    targets = pd.DataFrame(_rows(
        spark,
        f"select *, cast(split_at as string) as split_text from {SCHEMA}.basemodel_entity_targets",
    ))
    targets["split_at"] = _timestamps(targets["split_text"])
    targets = targets.sort_values(["split_at", "entity_id"], ignore_index=True)
    expected_targets = _expected_targets(events, expected_history)
    _assert_same_lists(targets[expected_targets.columns], expected_targets)


def _canonical(value):
    """A value made comparable across two runs of one query: floats to 9 decimals."""
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, (list, tuple)):
        return tuple(_canonical(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _canonical(v)) for k, v in value.items()))
    return value


def _row_counts(spark, sql):
    return Counter(_canonical(tuple(row)) for row in spark.sql(sql).collect())


def test_spark_models_give_the_same_rows_with_ansi_mode(spark_build):
    # ANSI mode turns invalid casts, overflow and division by zero into errors: the package's
    # parsing must still never fail, and give the same rows.
    spark = spark_build.spark
    results = spark_build.result.result.results
    models = [r.node for r in results if r.node.resource_type == "model"]
    assert len(models) >= 15
    for node in models:
        # Views are computed when read: read every relation with ANSI off first.
        spark.conf.set("spark.sql.ansi.enabled", "false")
        built = _row_counts(spark, f"select * from {node.relation_name}")
        spark.conf.set("spark.sql.ansi.enabled", "true")
        try:
            again = _row_counts(spark, node.compiled_code)
        finally:
            spark.conf.set("spark.sql.ansi.enabled", "false")
        assert again == built, node.name
