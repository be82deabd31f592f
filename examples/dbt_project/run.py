"""Run this example dbt project end to end, from Python, without touching the repository.

1. Copy the project to a work folder (default: a temporary one).
2. Generate raw events (1% malformed) into a DuckDB file there: the table ``raw_events``.
3. ``dbt deps`` (installs the ``basemodel`` package: packages.yml reads its folder from the
   environment variable BASEMODEL_DBT_PATH, set here to what ``basemodel dbt-path`` prints) and
   ``dbt build`` (the package's models and tests, then ``churn_training_set`` and its tests),
   through ``sklearn_basemodel.warehouse.run_dbt``.
4. Read the rejected rows and ``churn_training_set`` back with ``read_relation`` and fit a
   quick churn model on it, to show the table is ready for scikit-learn.

Run:  python examples/dbt_project/run.py                 (100k events)
      python examples/dbt_project/run.py --small         (20k events)
      python examples/dbt_project/run.py --workdir DIR   (keep the files in DIR)
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from sklearn_basemodel.datasets import make_events, write_events
from sklearn_basemodel.warehouse import dbt_package_path, read_relation, run_dbt

HERE = Path(__file__).resolve().parent
FEATURES = ["recency_days", "tenure_days", "frequency", "monetary", "decay_weight_sum"]


def run(workdir, n_events, seed=0):
    project = Path(workdir) / "my_shop"
    shutil.copytree(
        HERE, project, dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("run.py", "target", "logs", "dbt_packages",
                                      "package-lock.yml", "*.duckdb*", "__pycache__"),
    )  # fmt: skip
    database = project / "my_shop.duckdb"
    database.unlink(missing_ok=True)
    write_events(make_events(n_events, random_state=seed), database, table="raw_events")

    # What profiles.yml and packages.yml read from the environment.
    env = {"MY_SHOP_DUCKDB_PATH": str(database), "BASEMODEL_DBT_PATH": str(dbt_package_path())}
    run_dbt(["deps"], project, profiles_dir=project, env=env)
    result = run_dbt(["build"], project, profiles_dir=project, env=env)
    statuses = [str(getattr(r.status, "value", r.status)) for r in result.result.results]
    print(f"dbt build: {len(statuses)} nodes, "
          + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))))

    rejected = read_relation(database, "basemodel_rejected_events")
    print(f"{n_events:,} raw rows; {len(rejected):,} rejected:")
    for reason, count in rejected["rejection_reason"].value_counts().sort_index().items():
        print(f"  {reason:<30} {count:>6,}")

    table = read_relation(database, "churn_training_set")
    print(f"churn_training_set: {len(table):,} rows, columns {list(table.columns)}")
    splits = sorted(table["split_at"].unique())
    train, test = table[table["split_at"] < splits[-1]], table[table["split_at"] == splits[-1]]
    model = HistGradientBoostingClassifier(random_state=seed).fit(train[FEATURES], train["churned"])
    auc = roc_auc_score(test["churned"], model.predict_proba(test[FEATURES])[:, 1])
    print(f"churn AUC (RFM + gradient boosting; train before {splits[-1]:%Y-%m-%d}, "
          f"test at it): {auc:.3f}")
    return {
        "n_rejected": len(rejected),
        "rejected_by_reason": rejected["rejection_reason"].value_counts().to_dict(),
        "n_rows": len(table),
        "columns": list(table.columns),
        "splits": [str(s) for s in splits],
        "auc": auc,
        "node_statuses": statuses,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="20k events instead of 100k")
    parser.add_argument("--workdir", help="where to put the project copy and the database")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_events = 20_000 if args.small else 100_000
    if args.workdir:
        return run(args.workdir, n_events, args.seed)
    with tempfile.TemporaryDirectory() as workdir:
        return run(workdir, n_events, args.seed)


if __name__ == "__main__":
    main()
