"""`basemodel demo` / run_demo end to end on a small size, and the command line around it.

The demo runs the real dbt package (dbt deps + dbt build through dbtRunner) on generated
events; its reported row counts are checked against the generator's record of the rows it
broke, and its model numbers against the baselines it reports.
"""

import importlib.util
import json
import math

import pytest

from sklearn_basemodel import cli
from sklearn_basemodel.datasets import make_events
from sklearn_basemodel.demo import run_demo
from sklearn_basemodel.report import format_report
from sklearn_basemodel.warehouse import split_times

N_EVENTS = 20_000
QUICK = {
    "recommender_epochs": 5,
    "classifier_epochs": 3,
    "grid": {"model__freeze_epochs": [0, 1]},
    "cv": 2,
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo")
    results = run_demo(
        n_events=N_EVENTS, output_dir=output, random_state=0, settings=QUICK, verbose=False
    )
    return output, results


def test_rows_reconcile_with_the_generated_malformed_rows(demo):
    _, results = demo
    _, truth = make_events(N_EVENTS, return_truth=True, random_state=0)
    generated = truth.malformed_reason.value_counts()
    rows = results["rows"]
    assert rows["raw"] == N_EVENTS
    assert rows["raw"] == rows["staged"] + rows["rejected"]
    by_reason = rows["rejected_by_reason"]
    assert by_reason["null_entity"] == generated["null_customer_id"] > 0
    assert by_reason["null_timestamp"] == generated["null_event_time"] > 0
    assert by_reason["duplicate"] == generated["duplicate"] > 0
    out_of_range = by_reason.get("timestamp_before_valid_range", 0) + by_reason.get(
        "timestamp_after_valid_range", 0
    )
    assert out_of_range == generated["time_out_of_range"] > 0
    # row by row: each dbt reason holds only rows generated with the matching kind
    assert rows["crosstab"]["null_entity"] == {"null_customer_id": generated["null_customer_id"]}
    assert rows["crosstab"]["duplicate"] == {"duplicate": generated["duplicate"]}
    # negative amounts are not a rejection rule of the package: staged, and flagged
    assert rows["negative_amount_staged"] == rows["negative_amount_matched"]
    assert rows["negative_amount_staged"] == generated["negative_amount"]
    assert rows["reconciled"] is True
    assert rows["rejected"] == int(truth.malformed.sum()) - generated["negative_amount"]


def test_model_quality_against_baselines(demo):
    _, results = demo
    recall = results["recall_at_10"]
    assert all(0 <= value <= 1 for value in recall.values())
    assert recall["sketch_recommender"] >= recall["popularity"]
    assert recall["sketch_recommender_with_history"] >= recall["sketch_recommender"]
    assert recall["personal_frequency"] > recall["popularity"]
    churn = results["churn_auc"]
    assert 0.7 < churn["rfm_gradient_boosting"] < 1
    assert 0.7 < churn["sketch_classifier"] < 1
    assert 0 < churn["test_churn_rate"] < 1
    search = results["grid_search"]
    assert len(search["results"]) == 2 and search["cv"] == 2
    assert search["best_params"]["freeze_epochs"] in (0, 1)
    assert churn["classifier_params"]["freeze_epochs"] == search["best_params"]["freeze_epochs"]
    embeddings = results["embeddings"]
    assert embeddings["same_category_share"] > 3 * embeddings["chance_share"]


def test_sizes_and_timings(demo):
    _, results = demo
    data = results["data"]
    assert data["test_split"] == "2024-12-01"
    assert data["train_splits"] == ["2024-08-01", "2024-09-01", "2024-10-01", "2024-11-01"]
    assert 0 < data["train_rows_with_future"] <= data["train_rows"] < data["histories"]
    assert 0 < data["test_rows_with_future"] <= data["test_rows"]
    assert data["train_rows"] + data["test_rows"] <= data["histories"]
    assert data["n_features"] == 16 * 64 + 8 * 16 + 5
    assert results["dbt_nodes"].get("model success", 0) >= 7
    assert not any("error" in key or "fail" in key for key in results["dbt_nodes"])
    assert len(results["timings"]) == 10 and set(results["cpu_timings"]) == set(results["timings"])
    assert all(seconds >= 0 for seconds in results["timings"].values())
    assert results["total_seconds"] >= sum(results["timings"].values()) - 1e-6


def test_files_and_report(demo):
    output, results = demo
    for name in ("report.md", "results.json", "warehouse.duckdb", "dbt_project/dbt_project.yml",
                 "dbt_project/packages.yml", "dbt_project/profiles.yml"):  # fmt: skip
        assert (output / name).is_file(), name
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("training_curves.png", "product_map.png"):
            assert (output / name).stat().st_size > 10_000
            assert name in results["files"]
    report = (output / "report.md").read_text()
    assert report == format_report(results)
    assert f"{N_EVENTS:,}" in report and "Recall@10" in report and "ROC AUC" in report
    assert "null_entity" in report and "**yes**" in report
    assert "GridSearchCV over the churn pipeline" in report
    without_search = format_report({**results, "grid_search": None, "notes": ["a note"]})
    assert "GridSearchCV over" not in without_search and "chosen by" not in without_search
    assert "- a note" in without_search
    saved = json.loads((output / "results.json").read_text())
    assert saved["rows"] == results["rows"]
    assert math.isclose(
        saved["recall_at_10"]["sketch_recommender"], results["recall_at_10"]["sketch_recommender"]
    )


def test_split_times():
    _, truth = make_events(1_000, return_truth=True, random_state=0)
    assert split_times(truth.end, 2) == ["2024-10-01", "2024-11-01", "2024-12-01"]


def test_run_demo_validates_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="too small"):
        run_demo(n_events=10, output_dir=tmp_path)
    with pytest.raises(ValueError, match="Unknown settings"):
        run_demo(n_events=5_000, output_dir=tmp_path, settings={"epochs": 1})
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_cli_demo_arguments(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("sklearn_basemodel.demo.run_demo", lambda **kw: calls.append(kw) or {})
    assert cli.main(["demo", "--events", "50_000", "--output", "out", "--seed", "3",
                     "--no-grid-search", "--no-plots"]) == 0  # fmt: skip
    assert calls == [{"n_events": 50_000, "output_dir": "out", "random_state": 3,
                      "grid_search": False, "plots": False, "verbose": True}]  # fmt: skip
    assert cli.main(["demo", "--events", "500"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["demo", "--events", "many"])
    # dbt-path still works next to the new subcommand
    assert cli.main(["dbt-path"]) == 0
    assert capsys.readouterr().out.strip().endswith("dbt_package")
