"""The workflow end to end on generated data a user could have: their own column names, epoch
timestamps, a staging model of theirs, scores written back into their DuckDB file.

One module-scoped run (fit, predict at an earlier cut-off, update to now, predict now) backs the
tests; each checks one promise of issue 11.
"""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("dbt.version")
duckdb = pytest.importorskip("duckdb")

from test_dbt_package import postgres  # noqa: F401  (a fixture)

from sklearn_basemodel.datasets import make_events
from sklearn_basemodel.workflow.data import fill_amounts
from sklearn_basemodel.workflow import (
    Project,
    fit,
    load_model,
    load_project,
    predict,
    update,
)

SMALL_MODEL = {"n_components": 16, "n_sketches": 8, "sketch_dim": 16, "hidden_units": 64,
               "max_epochs": 3, "random_state": 0}  # fmt: skip


def _user_table(n_events, seed=0):
    """Generated events with a shop's own column names and epoch-second times."""
    events = make_events(n_events, random_state=seed)
    seconds = events["event_time"].astype("datetime64[s]").astype("int64")
    seconds = seconds.where(events["event_time"].notna())
    return pd.DataFrame({
        "row_no": np.arange(len(events)),
        "client": events["customer_id"],
        "ts": seconds.astype("Int64"),
        "order_ref": events["basket_id"],
        "sku": events["product_id"].astype(str),
        "dept": events["category_id"].astype(str),
        "action": events["event_type"].astype(str),
        "value": events["amount"],
    })  # fmt: skip


def write_user_project(root, table, *, model=SMALL_MODEL, connection=None, source_schema="raw"):
    """The table in a DuckDB file (or, with ``connection``, already where that points), a dbt
    project with the user's staging model, and basemodel.yml."""
    root.mkdir(parents=True, exist_ok=True)
    if connection is None:
        with duckdb.connect(str(root / "shop.duckdb")) as con:
            con.execute(f"create schema if not exists {source_schema}")
            con.register("frame", table)
            con.execute(f"create or replace table {source_schema}.shop_events as select * from frame")
    dbt = root / "dbt" / "models"
    dbt.mkdir(parents=True, exist_ok=True)
    (root / "dbt" / "dbt_project.yml").write_text(textwrap.dedent("""\
        name: shop
        version: "1.0.0"
        config-version: 2
        profile: basemodel
        model-paths: [models]
    """))
    from sklearn_basemodel.warehouse import dbt_package_path

    (root / "dbt" / "packages.yml").write_text(f"packages:\n  - local: {dbt_package_path()}\n")
    (dbt / "sources.yml").write_text(textwrap.dedent(f"""\
        version: 2
        sources:
          - name: shop
            schema: {source_schema}
            tables: [{{name: shop_events}}]
    """))
    # The user's own staging model (a view over their source); the project maps the names.
    (dbt / "stg_shop.sql").write_text(
        "{{ config(materialized='view') }}\nselect * from {{ source('shop', 'shop_events') }}\n"
    )
    project = {
        "connection": connection or {"duckdb": "shop.duckdb"},
        "events": {"ref": "stg_shop"},
        "columns": {"customer": "client", "time": "ts", "items": ["sku", "dept"],
                    "event_type": "action", "amount": "value", "group": "order_ref",
                    "row_id": "row_no"},
        "time": {"format": "epoch_s", "valid_from": "2024-01-01", "valid_to": "2025-01-02"},
        "tasks": {"next_items": {"column": "sku", "k": 5},
                  "churn": {"horizon_days": 30, "active_days": 60},
                  "propensity": [{"column": "dept", "value": "3", "horizon_days": 30}],
                  "spend": {"horizon_days": 30}},
        "backtest": {"splits": 3, "every_days": 30},
        "model": dict(model),
        "output": {"schema": "scores" if connection is None else f"{source_schema}_scores",
                   "prefix": "bm_"},
    }  # fmt: skip
    import yaml

    (root / "basemodel.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    return root / "basemodel.yml"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    path = write_user_project(root, _user_table(30_000))
    fitted = fit(path, verbose=False)
    earlier = predict(fitted["model_dir"], "2024-12-01", verbose=False)
    updated = update(fitted["model_dir"], "now", verbose=False)
    with duckdb.connect(str(root / "shop.duckdb"), read_only=True) as con:
        after_update = con.sql("select * from scores.bm_scores").df()
    recomputed = predict(fitted["model_dir"], "now", verbose=False)
    return {"root": root, "path": path, "fit": fitted, "earlier": earlier, "updated": updated,
            "after_update": after_update, "recomputed": recomputed}  # fmt: skip


def _table(run, name):
    with duckdb.connect(str(run["root"] / "shop.duckdb"), read_only=True) as con:
        return con.sql(f"select * from scores.{name}").df()


def test_fit_saves_a_model_directory_that_names_its_versions(run):
    directory = run["root"] / "model"
    info = json.loads((directory / "versions.json").read_text())
    assert info["model_version"] == run["fit"]["model_version"]
    assert info["versions"]["sklearn-basemodel"]
    metrics = json.loads((directory / "metrics.json").read_text())
    assert set(metrics["chosen"]) == {"churn", "propensity_dept_3", "spend"}
    for task in metrics["chosen"].values():
        assert task["kept"] in task["validation"]
        # the fine-tuned network keeps the pretrained trunk only where it validated better
        start = task["network_start"]
        assert start["valid_losses"] is not None  # pretrained_fallback compared the two
        losses = start["valid_losses"]
        assert start["pretrained_kept"] == (losses["pretrained"] <= losses["scratch"])
    assert load_project(directory.parent / "basemodel.yml").columns.customer == "client"


def test_next_items_are_ranked_by_a_ranker_fitted_on_the_rows_pretraining_held_out(run):
    from sklearn_basemodel.workflow.training import _MIN_RANKER_ROWS

    model = load_model(run["root"] / "model")
    models, chosen = model.models, model.metrics["next_items"]
    held_out = models.recommender.named_steps["model"].validation_rows_
    assert chosen["rows"] == len(held_out) >= _MIN_RANKER_ROWS
    assert models.ranker is not None and chosen["kept"] == models.ranker.kept_
    validation = chosen["validation"]
    assert (validation["ranker_recall@5"] > validation["boost_recall@5"]) == (
        chosen["kept"] == "ranker")
    profiles, _ = model.profiles()
    rows = profiles.iloc[:40]
    items, scores = models.recommend(rows)
    history = {"history": rows[models.history_column].tolist()}
    np.testing.assert_array_equal(items, models.ranker.predict(rows, history, k=5))
    assert items.shape == scores.shape == (40, 5) and (np.diff(scores, axis=1) <= 0).all()
    # a model saved before the ranker existed ranks with the recommender's own blend
    models.ranker = None
    old_items, _ = models.recommend(rows)
    recommender = models.recommender.named_steps["model"]
    features = models.recommender.named_steps["features"].transform(rows)
    np.testing.assert_array_equal(old_items, recommender.predict(
        features, history=history["history"], k=5))


def test_scores_are_written_back_per_as_of(run):
    scores = _table(run, "bm_scores")
    assert set(scores.columns) >= {"entity_id", "as_of", "model_version", "churn",
                                   "propensity_dept_3", "spend"}  # fmt: skip
    by_as_of = scores.groupby("as_of")["entity_id"].apply(set)
    assert len(by_as_of) == 2  # the earlier cut-off and now: re-running now replaced its rows
    now = pd.Timestamp(run["recomputed"]["as_of"])
    assert by_as_of[now] == set(run["recomputed"]["scores"]["entity_id"])
    assert scores.groupby("as_of")["entity_id"].apply(lambda s: s.is_unique).all()
    assert scores["churn"].between(0, 1).all() and scores["spend"].notna().all()
    recommendations = _table(run, "bm_recommendations")
    assert (recommendations.groupby(["as_of", "entity_id"])["rank"].apply(sorted)
            .map(lambda r: r == [1, 2, 3, 4, 5]).all())  # fmt: skip


def test_scored_population_is_the_recently_active(run):
    scores = run["recomputed"]["scores"]
    root = run["root"]
    with duckdb.connect(str(root / "shop.duckdb"), read_only=True) as con:
        last = con.sql("select entity_id, max(event_at) as last_at from main.basemodel_stg_events "
                       "group by entity_id").df()  # fmt: skip
    as_of = pd.Timestamp(run["recomputed"]["as_of"])
    active = set(last.loc[(as_of - last["last_at"]).dt.total_seconds() <= 60 * 86400, "entity_id"])
    assert set(scores["entity_id"]) == active


def test_update_equals_recompute(run):
    updated, recomputed = run["updated"], run["recomputed"]
    assert updated["as_of"] == recomputed["as_of"]
    assert updated["new_events"] > 0
    a = updated["scores"].sort_values("entity_id").reset_index(drop=True)
    b = recomputed["scores"].sort_values("entity_id").reset_index(drop=True)
    assert a["entity_id"].tolist() == b["entity_id"].tolist()
    for column in ("churn", "propensity_dept_3", "spend"):
        np.testing.assert_allclose(a[column], b[column], rtol=1e-5, atol=1e-6)
    # and what update wrote is what predict wrote for the same cut-off
    written = run["after_update"]
    written = written[written["as_of"] == pd.Timestamp(updated["as_of"])].sort_values("entity_id")
    np.testing.assert_allclose(written["churn"].to_numpy(), b["churn"].to_numpy(), rtol=1e-5)


def test_universal_profiles_are_written_for_every_customer_with_history(run):
    """One fixed vector per customer and cut-off: the trunk's principal components then the
    RFM columns, for every customer with history (not only the scored population)."""
    from sklearn_basemodel.universal_profile import UniversalProfile

    table = _table(run, "bm_universal_profiles")
    assert table.groupby("as_of")["entity_id"].apply(lambda s: s.is_unique).all()
    now = table[table["as_of"] == pd.Timestamp(run["recomputed"]["as_of"])]
    model = load_model(run["root"] / "model")
    stored, _ = model.profiles()  # what predict read at "now": every customer with history
    assert set(now["entity_id"]) == set(stored["entity_id"])
    assert set(now["entity_id"]) > set(run["recomputed"]["scores"]["entity_id"])
    universal = model.models.universal
    assert isinstance(universal, UniversalProfile) and universal.n_components_ == 32
    names = [str(n) for n in universal.get_feature_names_out()]
    assert names[:2] == ["embedding0", "embedding1"] and "rfm__n_events" in names
    assert list(table.columns) == ["entity_id", "as_of", "model_version", *names]
    # the written values are the model's transform of those customers' profiles
    expected = model.models.universal_profiles(fill_amounts(stored)).set_index(
        stored["entity_id"].to_numpy()
    )
    written = now.set_index("entity_id")[names].loc[expected.index]
    np.testing.assert_allclose(written.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-5)
    assert np.isfinite(written.to_numpy()).all()
    # the RFM columns are the profile's own, unchanged by the trunk
    assert written["rfm__n_events"].nunique() > 1


def test_update_refreshes_the_universal_profiles_as_recompute_does(run):
    a = run["updated"]["universal_profiles"].sort_values("entity_id").reset_index(drop=True)
    b = run["recomputed"]["universal_profiles"].sort_values("entity_id").reset_index(drop=True)
    assert a["entity_id"].tolist() == b["entity_id"].tolist()
    values = [c for c in a.columns if c not in ("entity_id", "as_of", "model_version")]
    np.testing.assert_allclose(a[values].to_numpy(), b[values].to_numpy(), rtol=1e-4, atol=1e-4)


def test_universal_profiles_can_be_switched_off(run):
    import dataclasses

    model = load_model(run["root"] / "model")
    project = dataclasses.replace(
        model.project, output=dataclasses.replace(model.project.output, universal_profiles=False)
    )
    result = predict(run["root"] / "model", "now", project=project, write=False, verbose=False)
    assert result["universal_profiles"] is None and result["population"] > 0


def test_reloading_in_a_new_process_gives_identical_scores(run, tmp_path):
    model = load_model(run["root"] / "model")
    profiles, _ = model.profiles()
    here = model.models.predict(profiles)
    script = textwrap.dedent(f"""
        from sklearn_basemodel.workflow import load_model
        model = load_model({str(run["root"] / "model")!r})
        profiles, _ = model.profiles()
        model.models.predict(profiles).to_pickle({str(tmp_path / "there.pkl")!r})
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    there = pd.read_pickle(tmp_path / "there.pkl")
    pd.testing.assert_frame_equal(here, there)


def test_project_round_trip_is_what_was_fitted(run):
    model = load_model(run["root"] / "model")
    assert isinstance(model.project, Project)
    assert model.project.events.ref == "stg_shop"
    assert model.project.time.format == "epoch_s"


@pytest.mark.postgres
def test_the_same_project_runs_on_postgres(tmp_path, postgres):  # noqa: F811
    """Only the connection section changes: the user's dbt profile instead of a DuckDB file."""
    import uuid

    import yaml
    from test_dbt_package import _postgres_settings

    from sklearn_basemodel.warehouse import Warehouse

    schema = f"shop_{uuid.uuid4().hex[:8]}"
    settings = _postgres_settings()
    profile = {"type": "postgres", "host": settings["host"], "port": settings["port"],
               "user": settings["user"], "password": "{{ env_var('WORKFLOW_TEST_PG_PASSWORD') }}",
               "dbname": settings["dbname"], "schema": schema, "threads": 2}  # fmt: skip
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "profiles.yml").write_text(
        yaml.safe_dump({"basemodel": {"target": "ci", "outputs": {"ci": profile}}})
    )
    os_environ = __import__("os").environ
    os_environ["WORKFLOW_TEST_PG_PASSWORD"] = settings["password"]
    table = _user_table(12_000, seed=1)
    connection = {"profile": "basemodel", "profiles_dir": "profiles"}
    try:
        with Warehouse.from_dbt_profile("basemodel", profiles_dir=tmp_path / "profiles") as warehouse:
            warehouse.write("shop_events", table, schema=f"{schema}_raw")
        path = write_user_project(tmp_path, table, connection=connection,
                                  source_schema=f"{schema}_raw")  # fmt: skip
        fitted = fit(path, verbose=False)
        result = predict(fitted["model_dir"], "now", verbose=False)
        with Warehouse.from_dbt_profile("basemodel", profiles_dir=tmp_path / "profiles") as warehouse:
            scores = warehouse.read(f"{schema}_raw_scores.bm_scores")
            universal = warehouse.read(f"{schema}_raw_scores.bm_universal_profiles")
            staged = warehouse.read("basemodel_stg_events", ["row_no"])
            rejected = warehouse.read("basemodel_rejected_events", ["row_no"])
        # every raw row staged or rejected, once (row identity through the user's row number)
        ends = sorted(staged["row_no"].tolist() + rejected["row_no"].dropna().astype(int).tolist())
        assert ends == sorted(table["row_no"].tolist())
        assert sorted(scores["entity_id"].astype(str)) == sorted(
            result["scores"]["entity_id"].astype(str)
        )
        assert (scores["model_version"] == fitted["model_version"]).all()
        assert scores["churn"].between(0, 1).all()
        # the universal profiles: every customer with history, the values predict returned
        expected = result["universal_profiles"].sort_values("entity_id").reset_index(drop=True)
        universal = universal.sort_values("entity_id").reset_index(drop=True)
        assert list(universal.columns) == list(expected.columns)
        assert universal["entity_id"].astype(str).tolist() == expected["entity_id"].astype(str).tolist()
        values = [c for c in expected.columns if c not in ("entity_id", "as_of", "model_version")]
        np.testing.assert_allclose(universal[values].to_numpy(np.float64),
                                   expected[values].to_numpy(np.float64), rtol=1e-6)  # fmt: skip
    finally:
        os_environ.pop("WORKFLOW_TEST_PG_PASSWORD", None)
        with postgres.cursor() as cursor:
            for name in (schema, f"{schema}_raw", f"{schema}_raw_scores"):
                cursor.execute(f"drop schema if exists {name} cascade")


# --------------------------------------------------------------------------- the command line
def test_cli_explain_aggregates_to_source_columns(run, tmp_path, capsys):
    from sklearn_basemodel.cli import main

    output = tmp_path / "churn.csv"
    status = main(["explain", "--project", str(run["path"]), "--task", "churn",
                   "--level", "column", "--output", str(output)])  # fmt: skip
    assert status == 0
    frame = pd.read_csv(output)
    assert set(frame["table"]) == {"stg_shop"}
    assert frame["mean_abs_attribution"].is_monotonic_decreasing
    from sklearn_basemodel.workflow import load_model
    from sklearn_basemodel.workflow.training import explained_candidate

    models = load_model(run["fit"]["model_dir"]).models
    name, _ = explained_candidate(models, "churn")
    assert f"explained: {name}" in capsys.readouterr().out
    rfm = {"ts", "value", "order_ref", "(events)"}  # time, amount, group, counts
    if name == "rfm_network":  # it reads the RFM columns alone: no item column is attributed
        assert set(frame["column"]) == rfm
    else:
        assert {"sku", "dept"} | rfm <= set(frame["column"])


def test_explain_of_the_fine_tuned_network_reaches_the_item_columns(run, monkeypatch):
    from sklearn_basemodel.workflow import commands, explain

    monkeypatch.setattr(commands, "explained_candidate",
                        lambda models, task: ("network", models.networks[task]))  # fmt: skip
    frame = explain(run["fit"]["model_dir"], "churn", level="column", verbose=False)
    assert frame.attrs["explained"] == "network"
    assert {"sku", "dept", "value", "ts"} <= set(frame["column"])  # items, amount, time (RFM)


def test_cli_predict_without_writing_leaves_the_tables(run, capsys):
    from sklearn_basemodel.cli import main

    before = _table(run, "bm_scores")
    status = main(["predict", "--project", str(run["path"]), "--as-of", "2024-11-15", "--no-write"])
    assert status == 0
    assert "customers scored; nothing written" in capsys.readouterr().out
    after = _table(run, "bm_scores")
    assert set(after["as_of"]) == set(before["as_of"]) and len(after) == len(before)


def test_cli_init_then_errors_name_the_key(tmp_path, capsys):
    from sklearn_basemodel.cli import main

    with duckdb.connect(str(tmp_path / "shop.duckdb")) as con:
        con.register("frame", _user_table(2_000))
        con.execute("create table shop_events as select * from frame")
    args = ["init", "--duckdb", str(tmp_path / "shop.duckdb"), "--table", "shop_events",
            "--dir", str(tmp_path)]  # fmt: skip
    assert main(args) == 0
    assert (tmp_path / "basemodel.yml").is_file() and (tmp_path / "dbt" / "dbt_project.yml").is_file()
    assert main(args) == 2 and "force" in capsys.readouterr().err  # no silent overwrite
    text = (tmp_path / "basemodel.yml").read_text()
    (tmp_path / "basemodel.yml").write_text(text + "\ntypo_section: 1\n")
    assert main(["fit", "--project", str(tmp_path / "basemodel.yml")]) == 2
    assert "typo_section: unknown key" in capsys.readouterr().err


def test_modalities_choose_each_item_column_embedder(tmp_path):
    """Item text and ID hashing as modalities: sku vectors from descriptions, dept from IDs."""
    import yaml

    from sklearn_basemodel import CleoraEmbedder, RandomVectorEmbedder, TextEmbedder

    table = _user_table(8_000, seed=2)
    words = ["red", "blue", "green", "fresh", "large", "small", "organic", "classic"]
    table["title"] = [f"{words[int(s) % 8]} {words[int(s) // 8 % 8]} item"
                      for s in table["sku"]]  # fmt: skip
    path = write_user_project(tmp_path, table)
    project = yaml.safe_load(path.read_text())
    project["columns"]["item_text"] = "title"
    project["modalities"] = [{"column": "sku", "embedder": "text"},
                             {"column": "dept", "embedder": "random"}]  # fmt: skip
    project["tasks"] = {"next_items": {"column": "sku", "k": 5}, "churn": {"horizon_days": 30}}
    path.write_text(yaml.safe_dump(project))
    fitted = fit(path, verbose=False)
    models = load_model(fitted["model_dir"]).models
    assert isinstance(models.embedders["sku"], TextEmbedder)
    assert isinstance(models.embedders["dept"], RandomVectorEmbedder)
    assert not any(isinstance(e, CleoraEmbedder) for e in models.embedders.values())
    # every staged product before the last cut-off has a description vector, and no other key
    with duckdb.connect(str(tmp_path / "shop.duckdb"), read_only=True) as con:
        staged = con.sql("select distinct sku from main.basemodel_stg_events where event_at <= "
                         f"timestamp '{fitted['cut_offs'][-1]}' and sku is not null").df()  # fmt: skip
    assert set(models.embedders["sku"].vocabulary_) == set(staged["sku"])
    result = predict(fitted["model_dir"], "now", write=False, verbose=False)
    assert result["population"] > 0 and result["recommendations"]["item"].notna().all()


@pytest.mark.parametrize("events", [{"table": "raw.shop_events"},
                                    {"source": {"name": "shop", "table": "shop_events"}}])  # fmt: skip
def test_events_from_a_table_or_a_source(tmp_path, events):
    """Besides a model of theirs (ref, above), the events may be a table or a dbt source."""
    import yaml

    from sklearn_basemodel.workflow.build import data_end

    table = _user_table(3_000, seed=3)
    path = write_user_project(tmp_path, table)
    project = yaml.safe_load(path.read_text())
    project["events"] = events
    path.write_text(yaml.safe_dump(project))
    end = data_end(load_project(path))
    with duckdb.connect(str(tmp_path / "shop.duckdb"), read_only=True) as con:
        staged = con.sql("select row_no from main.basemodel_stg_events").df()["row_no"]
        rejected = con.sql("select row_no from main.basemodel_rejected_events").df()["row_no"]
    assert sorted([*staged, *rejected]) == sorted(table["row_no"])  # each raw row, once
    valid = pd.to_datetime(table["ts"].dropna(), unit="s")
    valid = valid[(valid >= "2024-01-01") & (valid < "2025-01-02")]
    assert end == valid.max()
