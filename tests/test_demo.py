"""`basemodel demo` / run_demo end to end on a small size, and the command line around it.

The demo is the user workflow (init, evaluate, fit, predict, explain) on generated events; one
module-scoped run backs the tests. Its rows are checked against the generator's record of the
rows it broke, read straight from the DuckDB file; its backtest against the baselines it
reports; its written-back scores against the staged events.
"""

import json
import warnings

import duckdb
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")
pytest.importorskip("dbt.version")

from sklearn_basemodel import cli
from sklearn_basemodel.demo import (
    apply_edits,
    generate_events,
    propensity_category,
    run_demo,
)
from sklearn_basemodel.report import format_report
from sklearn_basemodel.workflow import load_project

N_EVENTS = 30_000
SEED = 0
QUICK = {"n_components": 16, "n_sketches": 8, "sketch_dim": 16, "hidden_units": 64,
         "max_epochs": 3}  # fmt: skip
# The kept model is chosen on held-out customers of the training cut-offs and tested on a
# later cut-off of a few hundred customers (a few dozen positives for propensity): the two AUCs
# may differ by sampling noise alone. Tolerance: two standard errors of their difference
# (Hanley & McNeil's error of each AUC, taken as independent: conservative).
AUC_STANDARD_ERRORS = 2
MAE_TOLERANCE = 0.10  # relative: the mean absolute error of spend


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    results = run_demo(N_EVENTS, output, SEED, n_train_splits=2, settings=QUICK, verbose=False)
    return output, results


def _sql(output, query):
    with duckdb.connect(str(output / "warehouse.duckdb"), read_only=True) as con:
        return con.sql(query).df()


def test_rows_reconcile_by_identity(demo):
    output, results = demo
    _, truth = generate_events(N_EVENTS, SEED)
    staged = _sql(output, "select source_row from main.basemodel_stg_events")["source_row"]
    rejected = _sql(output, "select source_row, rejection_reason from main.basemodel_rejected_events")
    # every raw row ends in exactly one place
    ended = np.concatenate([staged.to_numpy(), rejected["source_row"].to_numpy()])
    assert np.array_equal(np.sort(ended), np.arange(N_EVENTS))
    # ...and a rejected row is rejected for the reason the generator broke it
    generated = truth.malformed_reason.astype(object).fillna("valid").to_numpy()
    pairs = set(zip(rejected["rejection_reason"], generated[rejected["source_row"]]))
    assert pairs == {("null_entity", "null_customer_id"), ("null_timestamp", "null_event_time"),
                     ("duplicate", "duplicate"),
                     ("timestamp_before_valid_range", "time_out_of_range"),
                     ("timestamp_after_valid_range", "time_out_of_range")}  # fmt: skip
    checked = ~np.isin(generated, ["valid", "negative_amount"])
    assert set(rejected["source_row"]) == set(np.flatnonzero(checked))
    rows = results["rows"]
    assert rows["raw"] == N_EVENTS and rows["rejected"] == checked.sum()
    assert rows["each_row_once"] is True and rows["reconciled"] is True
    assert rows["negative_amount_staged"] == rows["negative_amount_matched"]
    assert rows["negative_amount_staged"] == (generated == "negative_amount").sum() > 0


def test_project_is_inits_guess_with_the_stated_edits(demo):
    output, results = demo
    events, truth = generate_events(N_EVENTS, SEED)
    project = load_project(output / "project" / "basemodel.yml")
    # init's guesses, untouched by the edits
    assert results["init_guess"]["customer"] == project.columns.customer == "customer_id"
    assert project.columns.group == "basket_id" and project.events.table == "raw_events"
    # the edits
    assert project.columns.row_id == "source_row"
    assert project.time.valid_from.startswith("2024-01-01")
    assert project.time.valid_to.startswith("2025-01-01")
    purchases = events[~truth.malformed & (events["event_type"] == "purchase")]
    third = purchases["category_id"].value_counts().index[2]
    (task,) = project.tasks.propensity
    assert (task.column, task.value) == ("category_id", str(third))
    assert project.model.hidden_units == QUICK["hidden_units"]
    assert project.backtest.splits == 3
    assert results["edits"][0]["key"] == "columns.row_id"


def test_backtest_has_every_task_against_its_baselines(demo):
    _, results = demo
    backtest = results["backtest"]
    items = backtest["next_items"]
    assert set(items) == {"model", "popularity", "own_history_then_popularity", "rows", "kept"}
    assert items["rows"] > 0
    # what ranks the model's items (this quick demo may hold out too few rows for a ranker)
    assert items["kept"] in ("ranker", "boost", "fixed_blend")
    assert items["model"]["recall@10"] > items["popularity"]["recall@10"]
    assert items["model"]["ndcg@10"] > items["popularity"]["ndcg@10"]
    tasks = backtest["tasks"]
    (propensity,) = [e["value"]["propensity"][0] for e in results["edits"] if e["key"] == "tasks"]
    assert set(tasks) == {"churn", f"propensity_category_id_{propensity['value']}", "spend"}
    assert {tasks[t]["metric"].split()[0] for t in tasks} == {"roc_auc", "mean_absolute_error"}
    assert tasks["spend"]["metric"].startswith("mean_absolute_error")
    assert len(backtest["train_cut_offs"]) == 2 and len(backtest["test_cut_offs"]) == 1
    assert max(backtest["train_cut_offs"]) < min(backtest["test_cut_offs"])


def _auc_standard_error(auc, n_positive, n_negative):
    """Hanley & McNeil (1982), Radiology 143(1): the standard error of a ROC AUC."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n_positive - 1) * (q1 - auc**2)
                + (n_negative - 1) * (q2 - auc**2)) / (n_positive * n_negative)  # fmt: skip
    return variance**0.5


def test_kept_models_are_not_below_rfm_gradient_boosting(demo):
    _, results = demo
    backtest = results["backtest"]
    for name, score in backtest["tasks"].items():
        # the kept model is the better one on the validation customers...
        validation = backtest["chosen"][name]["validation"]
        assert score["kept"] == max(validation, key=validation.get), name
        # ...and on the later test cut-off not worse than the baseline beyond the noise
        if score["metric"] == "roc_auc":
            n_positive = round(score["positive_rate"] * score["rows"])
            errors = [_auc_standard_error(score[m], n_positive, score["rows"] - n_positive)
                      for m in ("model", "rfm_gradient_boosting")]  # fmt: skip
            tolerance = AUC_STANDARD_ERRORS * np.hypot(*errors)
            assert 0.5 < score["model"] <= 1, name
            assert score["model"] >= score["rfm_gradient_boosting"] - tolerance, name
        else:
            assert score["model"] <= score["rfm_gradient_boosting"] * (1 + MAE_TOLERANCE), name


def test_scores_are_written_back_for_the_active_customers(demo):
    output, results = demo
    scored = results["predict"]
    scores = _sql(output, "select * from basemodel_output.basemodel_scores")
    assert scores["entity_id"].is_unique and len(scores) == scored["population"] > 0
    assert set(scores["as_of"]) == {pd.Timestamp(scored["as_of"])}
    assert set(scores["model_version"]) == {results["fit"]["model_version"]}
    assert scores["churn"].between(0, 1).all() and scores["spend"].notna().all()
    last = _sql(output, "select entity_id, max(event_at) as last_at "
                        "from main.basemodel_stg_events group by entity_id")  # fmt: skip
    as_of = pd.Timestamp(scored["as_of"])
    assert as_of == last["last_at"].max()  # "now": the last staged event
    active = last.loc[(as_of - last["last_at"]) <= pd.Timedelta(days=90), "entity_id"]
    assert set(scores["entity_id"]) == set(active)
    recommendations = _sql(output, "select * from basemodel_output.basemodel_recommendations")
    assert len(recommendations) == scored["written"]["basemodel_output.basemodel_recommendations"]
    ranks = recommendations.groupby("entity_id")["rank"].apply(sorted)
    assert set(ranks.index) == set(scores["entity_id"])
    assert ranks.map(lambda r: r == list(range(1, 11))).all()


def test_explanation_of_churn(demo):
    _, results = demo
    explanation = results["explanation"]
    top = pd.DataFrame(explanation["top"])
    assert explanation["task"] == "churn"
    chosen = results["fit"]["chosen"]["churn"]
    if explanation["explained"] == "rfm_network":  # kept alone or heaviest: its 7 RFM features
        assert chosen["kept"] == "rfm_network" or chosen["weights"]["rfm_network"] > 0
        assert len(top) == 7 and set(top["value"]) == {
            "n_events", "n_groups", "days_since_last_event", "days_since_first_event",
            "decay_weight_sum", "total_amount", "mean_amount"}  # fmt: skip
    else:
        assert len(top) == 10
    assert explanation["n_rows"] == min(results["predict"]["population"], 2000)  # explain's cap
    assert (top["table"] == "raw_events").all()
    assert top["mean_abs_attribution"].is_monotonic_decreasing
    assert (top["mean_abs_attribution"] >= top["attribution"].abs() - 1e-9).all()


def test_files_report_and_results_json(demo):
    output, results = demo
    for name in ("report.md", "results.json", "warehouse.duckdb", "project/basemodel.yml",
                 "project/dbt/dbt_project.yml", "project/model/model.joblib",
                 "evaluation/report.md"):  # fmt: skip
        assert (output / name).is_file(), name
    if "training_curves.png" in results["files"]:
        for name in ("training_curves.png", "product_map.png"):
            assert (output / name).stat().st_size > 10_000
        share = results["embeddings"]
        assert share["same_category_share"] > 2 * share["chance_share"]
    report = (output / "report.md").read_text()
    assert report == format_report(results)
    assert f"{N_EVENTS:,}" in report and "**yes**" in report
    assert results["fit"]["model_version"] in report and "basemodel_scores" in report
    saved = json.loads((output / "results.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert saved["backtest"]["tasks"] == results["backtest"]["tasks"]
    assert len(results["timings"]) == 8 and all(s >= 0 for s in results["timings"].values())
    assert results["total_seconds"] >= sum(results["timings"].values()) - 1e-6


def test_propensity_category_is_the_third_most_purchased():
    events = pd.DataFrame({
        "event_type": ["purchase"] * 9 + ["view"] * 5,
        "category_id": [1, 1, 1, 1, 2, 2, 2, 3, 4] + [4] * 5,
    })  # fmt: skip
    truth = type("Truth", (), {"malformed": np.zeros(len(events), dtype=bool)})
    assert propensity_category(events, truth) == "3"  # 3 and 4 tie: the smaller id
    truth.malformed = np.r_[np.zeros(7, dtype=bool), True, np.zeros(6, dtype=bool)]
    assert propensity_category(events, truth) == "4"  # malformed rows do not count


def test_apply_edits(tmp_path):
    import yaml

    path = tmp_path / "basemodel.yml"
    path.write_text("columns:\n  customer: c\ntime:\n  format: iso\n")
    apply_edits(path, [("columns.row_id", "n", "why"), ("time.valid_to", "2025-01-01", ""),
                       ("backtest", {"splits": 2}, "")])  # fmt: skip
    assert yaml.safe_load(path.read_text()) == {
        "columns": {"customer": "c", "row_id": "n"},
        "time": {"format": "iso", "valid_to": "2025-01-01"}, "backtest": {"splits": 2},
    }  # fmt: skip


def test_run_demo_validates_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="too small"):
        run_demo(n_events=10, output_dir=tmp_path)
    with pytest.raises(ValueError, match="Unknown settings"):
        run_demo(n_events=5_000, output_dir=tmp_path, settings={"epochs": 1})
    with pytest.raises(ValueError, match="n_train_splits"):
        run_demo(n_events=5_000, output_dir=tmp_path, n_train_splits=0)
    with pytest.warns(FutureWarning, match="grid_search"), pytest.raises(ValueError):
        run_demo(n_events=10, output_dir=tmp_path, grid_search=False)
    assert not any(tmp_path.iterdir())


def test_cli_demo_arguments(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("sklearn_basemodel.demo.run_demo", lambda **kw: calls.append(kw) or {})
    assert cli.main(["demo", "--events", "50_000", "--output", "out", "--seed", "3",
                     "--no-plots"]) == 0  # fmt: skip
    assert calls == [{"n_events": 50_000, "output_dir": "out", "random_state": 3,
                      "plots": False, "verbose": True}]  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.main(["demo", "--no-grid-search"]) == 0
    assert "deprecated" in capsys.readouterr().err
    assert calls[-1]["n_events"] == 200_000 and "grid_search" not in calls[-1]
    assert cli.main(["demo", "--events", "500"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["demo", "--events", "many"])
    assert cli.main(["dbt-path"]) == 0
    assert capsys.readouterr().out.strip().endswith("dbt_package")
