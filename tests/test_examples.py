"""Every script in examples/ runs on a small size and produces the results it claims.

Each example exposes ``main(argv) -> dict`` (what ``python examples/<name>.py`` calls), so the
tests run them in-process with ``--small`` and check the returned numbers against baselines
computed by the examples and against the generator's ground truth.
"""

import runpy
import sys
from pathlib import Path

from sklearn_basemodel.datasets import make_events

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _main(name):
    return runpy.run_path(str(EXAMPLES / name))["main"]


def test_quickstart_runs_as_a_script_and_beats_popularity(monkeypatch, capsys):
    # run_name="__main__" executes the file exactly as `python examples/quickstart.py --small`
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / "quickstart.py"), "--small"])
    runpy.run_path(str(EXAMPLES / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "20,000 events" in out
    recall = dict(
        line.strip().rsplit(maxsplit=1)
        for line in out.splitlines()
        if line.strip().startswith(("SketchRecommender", "most popular products"))
    )
    model = float(recall["SketchRecommender"])
    popularity = float(recall["most popular products (last 30 days)"])
    assert model > popularity + 0.05, out
    # nearest products of the most frequent product: mostly its own category
    categories = [int(line.split()[3]) for line in out.splitlines() if "cosine" in line]
    probe_category = int(out.split("(category ")[1].split(")")[0])
    assert len(categories) == 5
    assert sum(c == probe_category for c in categories) >= 3


def test_recommend_beats_baselines():
    results = _main("recommend.py")(["--small"])
    assert results["model"] > results["popularity"] + 0.1
    # own history blended in beats the model alone and is on par with personal frequency
    assert results["model_with_history"] > results["model"]
    assert results["model_with_history"] >= results["personal_frequency"] - 0.02
    # the learned ranker (or the boost, where the ranker does not validate better) keeps that
    assert results["model_with_ranker"] >= results["model_with_history"] - 0.02
    assert results["personal_frequency"] > results["popularity"]
    # discovery: the model finds new products better than popularity among unseen products
    assert results["new_products_model"] > results["new_products_popularity"]
    assert results["history_weight"] in (0.25, 0.5, 0.75, 0.9)
    assert len(results["explained_products"]) > 0


def test_churn_fine_tuning_is_competitive():
    results = _main("churn.py")(["--small"])
    auc = results["auc"]
    assert set(auc) == {"fine_tuned", "from_scratch", "rfm_gradient_boosting", "recency_only"}
    assert all(0.5 < value < 1.0 for value in auc.values()), auc
    assert auc["fine_tuned"] > 0.8
    assert auc["fine_tuned"] >= auc["rfm_gradient_boosting"] - 0.03, auc
    importance = results["block_importance"]
    assert set(importance) == {"products", "categories", "rfm"}
    assert all(value > 0 for value in importance.values())


def test_universal_profile_serves_three_tasks():
    results = _main("universal_profile.py")(["--small"])
    auc = results["auc"]
    assert set(auc) == {"churn", "category", "product"}
    assert all(0.5 < v < 1.0 for scores in auc.values() for v in scores.values()), auc
    # 32 principal components of the trunk's embedding + the 5 RFM columns
    assert (results["n_components"], results["n_features"]) == (32, 37)
    # what customers buy is in the profile, not in RFM: category propensity gains clearly
    assert auc["category"]["universal"] > auc["category"]["rfm"] + 0.01, auc
    # and nothing is lost where RFM carries the signal
    assert auc["churn"]["universal"] > auc["churn"]["rfm"] - 0.02, auc


def test_grid_search_tunes_the_pipeline():
    results = _main("grid_search.py")(["--small"])
    assert results["n_candidates"] == 4
    assert set(results["best_params"]) == {"sketch__embedder__n_iter", "sketch__sketch_dim"}
    assert 0 < results["best_cv_recall"] < 1
    assert results["test_recall"] > results["test_recall_popularity"]


def test_dbt_project_example(tmp_path):
    project = EXAMPLES / "dbt_project"
    # packages.yml defaults to the package of this checkout
    assert "../../dbt_package" in (project / "packages.yml").read_text()
    assert (project / "../../dbt_package/dbt_project.yml").resolve().is_file()

    results = _main("dbt_project/run.py")(["--small", "--workdir", str(tmp_path)])
    assert set(results["node_statuses"]) <= {"pass", "success"}
    # the user's own model was built (and its tests, among the passing nodes)
    compiled = tmp_path / "my_shop" / "target" / "run" / "my_shop" / "models"
    assert (compiled / "churn_training_set.sql").is_file()
    _, truth = make_events(20_000, return_truth=True, random_state=0)
    generated = truth.malformed_reason.value_counts()
    by_reason = results["rejected_by_reason"]
    assert by_reason["duplicate"] == generated["duplicate"]
    assert by_reason["null_entity"] == generated["null_customer_id"]
    assert by_reason["null_timestamp"] == generated["null_event_time"]
    assert (
        by_reason.get("timestamp_before_valid_range", 0)
        + by_reason.get("timestamp_after_valid_range", 0)
        == generated["time_out_of_range"]
    )
    assert results["n_rejected"] == sum(by_reason.values())
    assert {"customer_id", "churned", "product_items", "recency_days"} <= set(results["columns"])
    assert results["splits"] and results["n_rows"] > 100
    # churn among customers active in the last 90 days (the package's default population): a
    # harder task than over everyone ever seen, where recency alone separates the long gone
    assert 0.6 < results["auc"] < 1.0


SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _shared(name):
    import pytest

    if not (SHARED / name).is_dir():
        pytest.skip(f"{SHARED / name} is not there (the shared datasets are optional)")
    return SHARED


def test_warehouse_cdnow_example_writes_scores_of_the_active_customers(tmp_path):
    import duckdb
    import pandas as pd

    data = _shared("cdnow")
    results = _main("warehouse_cdnow.py")(["--data", str(data), "--small",
                                           "--output", str(tmp_path / "cdnow")])  # fmt: skip
    guessed = results["guessed"]
    assert guessed["time"] == {"format": "pattern", "pattern": "%Y%m%d"}
    assert guessed["columns"]["amount"] == "dollar_value"
    # the backtest: the kept churn model is not below RFM gradient boosting (beyond noise)
    churn = results["backtest"]["tasks"]["churn"]
    assert churn["model"] > 0.6 and churn["model"] >= churn["rfm_gradient_boosting"] - 0.02
    # written back: exactly the customers with a purchase in the 180 days before the data end
    raw = pd.read_csv(data / "cdnow" / "CDNOW_sample.txt", sep=r"\s+", header=None,
                      names=["customer", "index", "date", "cds", "dollars"])  # fmt: skip
    last = pd.to_datetime(raw["date"].astype(str)).groupby(raw["customer"]).max()
    active = set(last.index[(last.max() - last).dt.days <= 180].astype(str))
    with duckdb.connect(str(tmp_path / "cdnow" / "shop.duckdb"), read_only=True) as con:
        scores = con.sql("select * from basemodel_output.basemodel_scores").df()
    assert set(scores["entity_id"].astype(str)) == active
    assert scores["churn"].between(0, 1).all()
    columns = set(results["explanation"]["column"])
    if results["explanation"].attrs["explained"] == "rfm_network":  # the RFM columns' sources
        assert "dollar_value" in columns and not columns & {"basket_size", "spend_band"}
    else:
        assert columns >= {"basket_size", "spend_band", "dollar_value"}


def test_warehouse_yoochoose_example_recommends_within_sessions(tmp_path):
    import duckdb

    data = _shared("yoochoose100k")
    results = _main("warehouse_yoochoose.py")(["--data", str(data), "--small",
                                               "--output", str(tmp_path / "yoo")])  # fmt: skip
    guessed = results["guessed"]
    assert guessed["columns"]["customer"] == "SessionId" and guessed["time"]["format"] == "epoch_s"
    scores = results["backtest"]["next_items"]
    assert scores["rows"] > 200
    assert scores["model"]["recall@20"] > scores["popularity"]["recall@20"]
    assert scores["model"]["recall@20"] >= scores["own_history_then_popularity"]["recall@20"] - 0.03
    with duckdb.connect(str(tmp_path / "yoo" / "shop.duckdb"), read_only=True) as con:
        ranks = con.sql("select entity_id, count(*) as n, min(rank) as lo, max(rank) as hi "
                        "from basemodel_output.basemodel_recommendations group by 1").df()  # fmt: skip
    assert len(ranks) == results["predict"]["population"] > 0
    assert (ranks["n"] == 20).all() and (ranks["lo"] == 1).all() and (ranks["hi"] == 20).all()
