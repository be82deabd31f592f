"""BaseModel on your own warehouse: YooChoose clicks (epoch seconds, sessions), raw table to
recommendations written back.

1. The clicks are in the warehouse as they come: a DuckDB table ``clicks.yoochoose`` with
   ``SessionId``, ``ItemId`` and ``Time`` (unix seconds with a fraction), 8 days of clicks.
2. ``basemodel init`` inspects it: no customer column, so the session is the customer and the
   group; the time is ``epoch_s``.
3. A few edits: the task is the next items of a session (k 20) within a 1-day horizon, with
   cut-offs every half hour over the last three days (sessions are short: what a session does
   after a cut-off is its "future"), profiles over the last 1.2 hours (the session so far), a
   smaller network for the small data.
4. ``basemodel evaluate``: the backtest of Recall@20 / NDCG@20 against popularity and the
   session's own items.
5. ``basemodel fit`` and ``basemodel predict --as-of now``: each active session's top 20 items
   written back to the DuckDB file.

Run:  python examples/warehouse_yoochoose.py           (train + test days: 83,846 clicks)
      python examples/warehouse_yoochoose.py --small   (the 7 training days only: 70,278 clicks)
      (--data: the folder of the shared datasets, default ../shared/datasets)
"""

import argparse
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from sklearn_basemodel.workflow import evaluate, fit, init_project, predict


def load_into_duckdb(data, database, small):
    """Step 1: both files as one table, columns as the files name them."""
    folder = Path(data) / "yoochoose100k"
    frames = []
    for name in ("train.tsv",) if small else ("train.tsv", "test.tsv"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found; pass --data.")
        frames.append(pd.read_csv(folder / name, sep="\t"))
    clicks = pd.concat(frames, ignore_index=True)
    with duckdb.connect(str(database)) as con:
        con.execute("create schema if not exists clicks")
        con.register("raw_file", clicks)
        con.execute("create or replace table clicks.yoochoose as select * from raw_file")
        return con.execute("select count(*) from clicks.yoochoose").fetchone()[0]


def edit_project(path):
    """Step 3: the edits a user makes to the starter project."""
    project = yaml.safe_load(path.read_text())
    item = project["columns"]["items"][0]
    project["tasks"] = {"next_items": {"column": item, "k": 20, "horizon_days": 1}}
    project["backtest"] = {"splits": 144, "every_days": 0.02, "test_splits": 48}
    # A profile is the session so far: the events of the last 1.2 hours before a cut-off.
    project["model"] = {"hidden_units": 256, "max_epochs": 10, "history_days": 0.05}
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    return project


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/datasets")
    parser.add_argument("--output", default="yoochoose_project")
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)

    folder = Path(args.output)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = load_into_duckdb(args.data, folder / "shop.duckdb", args.small)
    print(f"1. {rows:,} clicks in {folder / 'shop.duckdb'}, table clicks.yoochoose")

    path = init_project(folder, duckdb=folder / "shop.duckdb", table="clicks.yoochoose")
    guessed = yaml.safe_load(path.read_text())
    print(f"2. basemodel init guessed: {guessed['columns']}, time {guessed['time']}, "
          f"grouping {guessed.get('grouping')}")  # fmt: skip

    project = edit_project(path)
    print(f"3. edited: tasks {project['tasks']}, backtest {project['backtest']}")

    print("4. basemodel evaluate")
    backtest = evaluate(path, folder / "evaluation")

    print("5. basemodel fit, predict --as-of now")
    fitted = fit(path, folder / "model")
    scored = predict(fitted["model_dir"], "now")
    return {"rows": rows, "guessed": guessed, "backtest": backtest, "fit": fitted,
            "predict": scored}  # fmt: skip


if __name__ == "__main__":
    main()
