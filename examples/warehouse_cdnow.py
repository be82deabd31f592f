"""BaseModel on your own warehouse: CDNOW purchases (dates, amounts), from a raw table to scores.

What a user with an orders table does, in five steps:

1. The data is already in the warehouse: here the CDNOW file loaded into a DuckDB table
   ``cdnow.transactions`` with its own column names (``customer_id``, ``date`` as a number
   ``yyyymmdd``, ``number_of_cds``, ``dollar_value``).
2. ``basemodel init`` inspects the table and writes ``basemodel.yml`` and a dbt project.
3. A few edits: CDNOW has no product column, so a staging model of the user's own
   (``dbt/models/stg_transactions.sql``) derives two attributes to embed — the basket size and
   the spend band — and the project reads it (``events: {ref: stg_transactions}``); the tasks
   (churn of the customers active in the last 180 days, over 90 days; spend) and the backtest.
4. ``basemodel evaluate``: the temporal backtest against RFM gradient boosting.
5. ``basemodel fit`` then ``basemodel predict --as-of now``: scores written back to the DuckDB
   file, ready for a downstream dbt model; ``basemodel explain`` says what drives churn.

Run:  python examples/warehouse_cdnow.py            (the master file: 69,659 purchases)
      python examples/warehouse_cdnow.py --small    (the 1/10 sample)
      (--data: the folder of the shared datasets, default ../shared/datasets)
"""

import argparse
import shutil
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from sklearn_basemodel.workflow import evaluate, explain, fit, init_project, predict

STAGING_MODEL = """\
-- The user's staging model: the shop's own attributes of each purchase, as item columns.
select
    customer_id,
    date,
    number_of_cds,
    dollar_value,
    case when number_of_cds = 1 then '1 cd' when number_of_cds = 2 then '2 cds'
         when number_of_cds <= 4 then '3-4 cds' else '5+ cds' end as basket_size,
    case when dollar_value < 15 then 'under 15' when dollar_value < 30 then '15-30'
         when dollar_value < 60 then '30-60' else '60+' end as spend_band
from {{ source('cdnow', 'transactions') }}
"""


def load_into_duckdb(data, database, small):
    """Step 1: the raw file as the user's table (names and types as the file has them)."""
    name = "CDNOW_sample.txt" if small else "CDNOW_master.txt"
    path = Path(data) / "cdnow" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; pass --data (the shared datasets folder).")
    columns = ["customer_id", "date", "number_of_cds", "dollar_value"]
    names = ["customer_id", "customer_index", *columns[1:]] if small else columns
    # Whitespace-aligned columns: pandas reads them; the date stays a number, as in the file.
    raw = pd.read_csv(path, sep=r"\s+", header=None, skiprows=int(not small), names=names)
    with duckdb.connect(str(database)) as con:
        con.execute("create schema if not exists cdnow")
        con.register("raw_file", raw)
        con.execute("create or replace table cdnow.transactions as select "
                    "customer_id, date, number_of_cds, dollar_value from raw_file")  # fmt: skip
        return con.execute("select count(*) from cdnow.transactions").fetchone()[0]


def edit_project(folder):
    """Step 3: the edits a user makes to the starter project."""
    (folder / "dbt" / "models" / "stg_transactions.sql").write_text(STAGING_MODEL)
    (folder / "dbt" / "models" / "sources.yml").write_text(textwrap.dedent("""\
        version: 2
        sources:
          - name: cdnow
            schema: cdnow
            tables: [{name: transactions}]
    """))
    path = folder / "basemodel.yml"
    project = yaml.safe_load(path.read_text())
    project["events"] = {"ref": "stg_transactions"}
    project["columns"]["items"] = ["basket_size", "spend_band"]
    project.pop("modalities", None)
    project["tasks"] = {"churn": {"horizon_days": 90, "active_days": 180},
                        "spend": {"horizon_days": 90}}  # fmt: skip
    project["backtest"] = {"splits": 4, "every_days": 60}
    path.write_text(yaml.safe_dump(project, sort_keys=False))
    return project


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/datasets")
    parser.add_argument("--output", default="cdnow_project")
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)

    folder = Path(args.output)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rows = load_into_duckdb(args.data, folder / "shop.duckdb", args.small)
    print(f"1. {rows:,} purchases in {folder / 'shop.duckdb'}, table cdnow.transactions")

    path = init_project(folder, duckdb=folder / "shop.duckdb", table="cdnow.transactions")
    guessed = yaml.safe_load(path.read_text())
    print(f"2. basemodel init guessed: {guessed['columns']}, time {guessed['time']}")

    project = edit_project(folder)
    print(f"3. edited: events {project['events']}, items {project['columns']['items']}, "
          f"tasks {project['tasks']}")  # fmt: skip

    print("4. basemodel evaluate")
    backtest = evaluate(path, folder / "evaluation")

    print("5. basemodel fit, predict --as-of now, explain --task churn")
    fitted = fit(path, folder / "model")
    scored = predict(fitted["model_dir"], "now")
    explanation = explain(fitted["model_dir"], "churn", level="column")
    return {"rows": rows, "guessed": guessed, "backtest": backtest, "fit": fitted,
            "predict": scored, "explanation": explanation}  # fmt: skip


if __name__ == "__main__":
    main()
