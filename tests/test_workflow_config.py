"""The project file: validation with errors that name the key and the fix."""

import pytest

from sklearn_basemodel.workflow import Project, ProjectError, load_project

BASE = {
    "connection": {"duckdb": "shop.duckdb"},
    "events": {"table": "raw.orders"},
    "columns": {"customer": "user_id", "time": "ts", "items": ["product_id", "category"],
                "amount": "price", "group": "order_id"},
    "time": {"format": "epoch_s"},
    "tasks": {"next_items": {"column": "product_id", "k": 20},
              "churn": {"horizon_days": 30, "active_days": 60},
              "propensity": [{"column": "category", "value": "books"}]},
}  # fmt: skip


def _with(section, value):
    data = {**BASE, section: value}
    return data


def test_sketch_width_is_auto_unless_given():
    assert Project.from_dict(BASE).model.sketch_dim == "auto"
    assert Project.from_dict({**BASE, "model": {"sketch_dim": 128}}).model.sketch_dim == 128
    assert Project.from_dict({**BASE, "model": {"sketch_dim": "auto"}}).model.sketch_dim == "auto"


def test_max_epochs_is_the_networks_auto_unless_given():
    from sklearn_basemodel.workflow.training import _network_params

    project = Project.from_dict(BASE)
    assert project.model.max_epochs == "auto"
    assert _network_params(project, progress_bar=False)["max_epochs"] == "auto"
    given = Project.from_dict({**BASE, "model": {"max_epochs": 12}})
    assert given.model.max_epochs == 12
    assert _network_params(given, progress_bar=False)["max_epochs"] == 12


def test_a_valid_project_maps_to_the_dbt_vars():
    project = Project.from_dict(BASE)
    dbt = project.dbt_vars()
    assert dbt["basemodel_entity_column"] == "user_id"
    assert dbt["basemodel_item_columns"] == ["product_id", "category"]
    assert dbt["basemodel_events_schema"] == "raw" and dbt["basemodel_events_identifier"] == "orders"
    assert dbt["basemodel_time_format"] == "epoch_s"
    assert dbt["basemodel_active_days"] == 60
    assert dbt["basemodel_amount_column"] == "price"
    assert project.tasks.k == 20 and project.tasks.propensity[0].value == "books"
    # without a group column, events group into trips by a 30-minute gap
    no_group = {**BASE, "columns": {k: v for k, v in BASE["columns"].items() if k != "group"}}
    assert Project.from_dict(no_group).grouping.gap_minutes == 30.0


@pytest.mark.parametrize(
    "section, value, key",
    [
        ("columns", {"customer": "u", "time": "t"}, "columns.items"),
        ("columns", {"customer": "u", "time": "t", "items": ["p"], "amout": "x"}, "columns.amout"),
        ("time", {"format": "unix"}, "time.format"),
        ("time", {"format": "sql"}, "time.sql"),
        ("events", {"table": "a", "ref": "b"}, "events"),
        ("tasks", {"churn": {"horizon_days": 0}}, "tasks.churn.horizon_days"),
        ("tasks", {"churn": {"horizon_days": True}}, "tasks.churn.horizon_days"),
        ("tasks", {"propensity": [{"column": "brand", "value": "x"}]}, "tasks.propensity[0].column"),
        ("tasks", {}, "tasks"),
        ("model", {"sketch_dim": 100}, "model.sketch_dim"),
        ("model", {"sketch_dim": "automatic"}, "model.sketch_dim"),
        ("model", {"max_epochs": "many"}, "model.max_epochs"),
        ("model", {"max_epochs": 0}, "model.max_epochs"),
        ("model", {"device": "gpu"}, "model.device"),
        ("model", {"device": "cuda:first"}, "model.device"),
        ("model", {"device": 0}, "model.device"),
        ("output", {"schema": "out; drop table x"}, "output.schema"),
        ("output", {"universal_profiles": "yes"}, "output.universal_profiles"),
        ("columns", {"customer": "u; drop table t", "time": "t", "items": ["p"]}, "columns.customer"),
        ("columns", {"customer": "u", "time": "t", "items": ['"a" || "b"']}, "columns.items[0]"),
        ("columns", {"customer": "u", "time": "t", "items": ["p"], "amount": "x * 2"}, "columns.amount"),
        ("connection", {"duckdb": "a.duckdb", "profile": "pg"}, "connection"),
        ("events", {"table": "db.raw.orders"}, "events.table"),
        ("events", {"table": "orders; drop table x"}, "events.table"),
    ],
)
def test_errors_name_the_key(section, value, key):
    with pytest.raises(ProjectError) as error:
        Project.from_dict(_with(section, value))
    assert str(error.value).startswith(f"{key}:")


def test_model_device_reaches_cleora_and_every_network():
    from sklearn_basemodel.workflow.training import _embedder, _network_params

    assert Project.from_dict(BASE).model.device == "cpu"
    project = Project.from_dict(_with("model", {"device": "cuda:1"}))
    assert project.model.device == "cuda:1"
    # the networks (pretrainer and task heads) and Cleora get the device as given
    assert _network_params(project, False)["device"] == "cuda:1"
    assert _embedder("cleora", project).device == "cuda:1"
    assert _embedder("cleora", Project.from_dict(BASE)).device == "cpu"


def test_universal_profiles_are_written_unless_switched_off():
    assert Project.from_dict(BASE).output.universal_profiles is True
    off = Project.from_dict(_with("output", {"universal_profiles": False}))
    assert off.output.universal_profiles is False and off.output.prefix == "basemodel_"


def test_unknown_top_level_key_and_file_errors(tmp_path):
    with pytest.raises(ProjectError, match="^colums: unknown key"):
        Project.from_dict({**BASE, "colums": {}})
    with pytest.raises(ProjectError, match="basemodel init"):
        load_project(tmp_path / "missing.yml")
    path = tmp_path / "basemodel.yml"
    path.write_text("events: [unclosed\n")
    with pytest.raises(ProjectError, match="not valid YAML"):
        load_project(path)
    import yaml

    path.write_text(yaml.safe_dump(BASE))
    assert load_project(path).columns.customer == "user_id"


def test_quoted_column_names_are_accepted():
    columns = {"customer": '"user"', "time": '"Order ""Date"""', "items": ["product_id", "category", '"Item Name"']}
    project = Project.from_dict(_with("columns", columns))
    assert project.columns.customer == '"user"' and project.columns.items[2] == '"Item Name"'


@pytest.mark.parametrize(
    "table, schema, identifier",
    [("orders", None, "orders"), ("raw.orders", "raw", "orders"),
     ('sales."orders.2024"', "sales", "orders.2024"),
     ('"My Schema"."say ""hi"""', "My Schema", 'say "hi"')],
)  # fmt: skip
def test_the_events_table_reaches_dbt_as_schema_and_name(table, schema, identifier):
    dbt = Project.from_dict(_with("events", {"table": table})).dbt_vars()
    assert dbt["basemodel_events_identifier"] == identifier
    assert dbt.get("basemodel_events_schema") == schema


def test_a_model_directory_of_code_that_is_gone_says_to_refit(tmp_path, monkeypatch):
    import json
    import sys
    import types

    import joblib

    from sklearn_basemodel.workflow import load_model

    directory = tmp_path / "model"
    with pytest.raises(FileNotFoundError, match="no model.joblib"):
        load_model(directory)
    module = types.ModuleType("gone_since")
    exec("class TaskBlend:\n    pass", module.__dict__)
    monkeypatch.setitem(sys.modules, "gone_since", module)
    module.TaskBlend.__module__ = "gone_since"
    directory.mkdir()
    joblib.dump({"project": None, "models": module.TaskBlend()}, directory / "model.joblib")
    (directory / "versions.json").write_text(json.dumps(
        {"versions": {"sklearn-basemodel": "0.0.1"}, "model_version": "x"}))
    monkeypatch.delitem(sys.modules, "gone_since")
    with pytest.warns(UserWarning, match="saved by sklearn-basemodel 0.0.1"), \
            pytest.raises(ValueError, match=r"cannot read .*version 0.0.1: refit it"):
        load_model(directory)
