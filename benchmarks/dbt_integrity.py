"""Benchmark: does every raw row end in exactly one place? The dbt package, old SQL against new.

Generates raw events with re-spelled duplicates (the same event with blanks around the
customer, a 'T' or a 'Z' in the timestamp, a trailing zero on the amount), runs the staging
models of a copy of the `basemodel` dbt package on them (DuckDB) and counts, by raw row id, the
rows that are both staged and rejected and those in neither. Two scenarios:

* deduplication: every row loaded at once, no load order configured, so copies of an event can
  only be told apart by their content;
* incremental staging: the rows arrive in three batches, each followed by an incremental run.
  Later batches hold rows loaded in the same instant as the previous batch's last rows, rows
  without a load time, events from months before (loaded late but with a current load time) and
  rows whose load time is before the incremental window (a late load). A row is lost when it
  ends in neither table.

"Old" is the package as committed at HEAD (``git archive HEAD dbt_package``), "new" the working
tree. The last line reads::

    dbt_integrity old_both=<n> old_neither=<n> new_both=<n> new_neither=<n>
    old_incremental_lost=<n> new_incremental_lost=<n>

(on one line). Run::

    .venv/bin/python benchmarks/dbt_integrity.py                  # 420,000 rows, as in the note
    .venv/bin/python benchmarks/dbt_integrity.py --rows 30000     # quick

tests/test_dbt_integrity.py reuses the generator, the runner and the counts from this file.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from sklearn_basemodel.warehouse import read_relation, run_dbt

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "dbt_package"
START = pd.Timestamp("2024-01-01")
DAYS = 180
FIRST_LOAD = pd.Timestamp("2024-07-01")
LOOKBACK_DAYS = 3  # the package's default basemodel_incremental_lookback_days
STAGING_MODELS = ["basemodel_stg_events", "basemodel_rejected_events"]
# The integration project's vars, adjusted per scenario: its package unit tests mock the
# original seed and are not part of these builds.
BASE_VARS = {"basemodel_unit_tests": False}
DEDUP_VARS = {"basemodel_loaded_at_column": None, "basemodel_dedup_order_by": None}


def _respell(frame, rng):
    """The same events spelled differently: each copy gets one or two harmless changes."""
    frame = frame.copy()
    n = len(frame)
    change = rng.integers(0, 4, size=(n, 2))
    for column in range(2):
        kind = change[:, column]
        padded = kind == 0
        frame.loc[padded, "customer_id"] = "  " + frame.loc[padded, "customer_id"] + " "
        with_t = kind == 1
        frame.loc[with_t, "event_time"] = frame.loc[with_t, "event_time"].str.replace(" ", "T")
        zulu = (kind == 2) & ~frame["event_time"].str.endswith("Z")
        frame.loc[zulu, "event_time"] = frame.loc[zulu, "event_time"] + "Z"
        priced = (kind == 3) & frame["amount"].notna()
        frame.loc[priced, "amount"] = frame.loc[priced, "amount"] + "0"
    return frame


def generate_raw_events(n_rows, duplicate_share=0.05, seed=0):
    """Raw events (text columns, as loaded) of which about `duplicate_share` are re-spelled copies.

    Parameters
    ----------
    n_rows : int
        Rows in the result, copies included.
    duplicate_share : float, default=0.05
        Copies per original event.
    seed : int, default=0

    Returns
    -------
    events : pandas.DataFrame
        The columns of the integration project's ``raw_events`` seed with ``loaded_at`` NULL,
        sorted by ``raw_row_id`` (1..n_rows, drawn at random, so a copy comes before or after
        its original); ``copy_of`` is the ``raw_row_id`` of the original event a row copies
        (NULL for originals).
    """
    rng = np.random.default_rng(seed)
    n_original = round(n_rows / (1.0 + duplicate_share))
    n_copies = n_rows - n_original
    customers = rng.integers(0, max(n_original // 20, 1), n_original)
    seconds = rng.integers(0, DAYS * 86_400, n_original)
    kind = rng.choice(np.array(["view", "add_to_cart", "purchase"]), n_original, p=[0.7, 0.2, 0.1])
    products = rng.integers(0, 5_000, n_original)
    prices = np.round(rng.lognormal(3.0, 0.8, n_original), 2)
    times = START + pd.to_timedelta(seconds, unit="s")
    originals = pd.DataFrame(
        {
            "customer_id": np.char.add("c", customers.astype(str)),
            "event_time": times.strftime("%Y-%m-%d %H:%M:%S"),
            "event_type": kind,
            "product": np.char.add("p", products.astype(str)),
            "category": np.char.add("cat", (products % 50).astype(str)),
            "brand": np.char.add("b", (products % 97).astype(str)),
            "basket_id": [f"{c}-{d}" for c, d in zip(customers, seconds // 86_400)],
            "amount": np.where(kind == "purchase", [f"{p:.2f}" for p in prices], None),
        }
    ).astype(object)
    originals["copy_of"] = None
    sources = rng.choice(n_original, n_copies, replace=n_copies > n_original)
    copies = _respell(originals.iloc[sources].reset_index(drop=True), rng)
    copies["copy_of"] = sources  # positions for now, raw_row_ids below
    events = pd.concat([originals, copies], ignore_index=True)
    order = rng.permutation(len(events))
    raw_row_id = np.empty(len(events), dtype=np.int64)
    raw_row_id[order] = np.arange(1, len(events) + 1)
    events.insert(0, "raw_row_id", raw_row_id)
    is_copy = events["copy_of"].notna()
    events.loc[is_copy, "copy_of"] = raw_row_id[events.loc[is_copy, "copy_of"].astype(int)]
    events["loaded_at"] = pd.NaT
    return events.iloc[np.argsort(raw_row_id)].reset_index(drop=True)


def assign_batches(events, n_batches=3, seed=0):
    """Split `events` into load batches that stress an incremental run.

    Batch b holds the b-th range of raw_row_id (so raw_row_id is the load order), loaded at
    FIRST_LOAD + (b - 1) days plus up to an hour. In every batch after the first, 2% of the
    rows carry the previous batch's latest load time exactly (loaded in the same instant as
    rows already staged, but after the run), 1% no load time, and 0.5% a load time ten days
    before the first batch (a late load, beyond the lookback). Their events span six months,
    so most are older than rows already staged (late events). Rows without a load time or
    loaded late have no other copy: for them "the copy loaded first" is not defined the same
    way in an incremental run and a full refresh (see docs/BAD_DATA.md).

    Returns
    -------
    events : pandas.DataFrame
        `events` sorted by raw_row_id with ``batch`` (1..n_batches) and ``loaded_at`` set.
    """
    rng = np.random.default_rng(seed)
    events = events.sort_values("raw_row_id", ignore_index=True)
    n = len(events)
    bounds = np.linspace(0, n, n_batches + 1).astype(int)
    batch = np.searchsorted(bounds, np.arange(n), side="right")
    loaded = pd.Series(FIRST_LOAD + pd.to_timedelta(batch - 1, unit="D")
                       + pd.to_timedelta(rng.integers(0, 3_600, n), unit="s"))
    copied = events["copy_of"].dropna().astype(int)
    alone = ~(events["raw_row_id"].isin(copied) | events["copy_of"].notna()).to_numpy()
    draw = rng.random(n)
    for b in range(2, n_batches + 1):
        inside = batch == b
        loaded[inside & (draw < 0.02)] = loaded[batch == b - 1].max()
        loaded[inside & alone & (draw >= 0.02) & (draw < 0.03)] = pd.NaT
        loaded[inside & alone & (draw >= 0.03) & (draw < 0.035)] = FIRST_LOAD - pd.Timedelta(days=10)
    return events.assign(batch=batch, loaded_at=loaded.to_numpy())


class PackageBuild:
    """A copy of a dbt package whose integration project runs the staging models on DuckDB.

    Parameters
    ----------
    root : path-like
        An empty working folder.
    package : path-like, default=PACKAGE
        The dbt package to copy (the working tree, or an older commit extracted elsewhere).
    """

    def __init__(self, root, package=PACKAGE):
        self.root = Path(root)
        shutil.copytree(
            package,
            self.root / "dbt_package",
            ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*"),
        )
        self.project = self.root / "dbt_package" / "integration_tests"
        self.database = self.root / "events.duckdb"
        run_dbt(["deps"], self.project, profiles_dir=self.project, log_path=self.root / "logs",
                env=self._env())

    def _env(self):
        return {"BASEMODEL_DBT_TARGET": "duckdb", "BASEMODEL_DUCKDB_PATH": self.database}

    def load(self, table, events, replace=True):
        """Write the raw columns of `events` into `table` (a plain name), replacing or appending."""
        verb = "create or replace table {} as" if replace else "insert into {}"
        with duckdb.connect(str(self.database)) as connection:
            connection.register("incoming", events[RAW_COLUMNS])
            connection.execute(verb.format(_quoted(table)) + " select * from incoming")

    def dbt(self, *args, vars=None):
        """Run a dbt command in the integration project with BASE_VARS and `vars`."""
        return run_dbt(list(args), self.project, profiles_dir=self.project,
                       log_path=self.root / "logs", target_path=self.root / "target",
                       env=self._env(), vars={**BASE_VARS, **(vars or {})})

    def stage(self, table, vars=None, full_refresh=False, models=STAGING_MODELS):
        """Run the staging `models` on `table`; returns the (staged, rejected) tables."""
        self.dbt("run", "--select", *models, *(["--full-refresh"] if full_refresh else []),
                 vars={"basemodel_events_identifier": table, **(vars or {})})
        return (read_relation(self.database, "basemodel_stg_events"),
                read_relation(self.database, "basemodel_rejected_events"))


RAW_COLUMNS = ["raw_row_id", "customer_id", "event_time", "event_type", "product", "category",
               "brand", "basket_id", "amount", "loaded_at"]


def _quoted(name):
    """`name` as a quoted identifier; only the plain names this module uses are accepted."""
    if not name.isidentifier():
        raise ValueError(f"table name {name!r} must be a plain identifier")
    return f'"{name}"'


def placement(raw_ids, staged, rejected):
    """How many raw rows are staged and rejected (both), or in neither table."""
    staged_ids = set(staged["raw_row_id"])
    rejected_ids = set(rejected["raw_row_id"])
    raw_ids = set(raw_ids)
    return {
        "both": len(staged_ids & rejected_ids),
        "neither": len(raw_ids - staged_ids - rejected_ids),
        "repeated": (len(staged) - len(staged_ids)) + (len(rejected) - len(rejected_ids)),
    }


def dedup_scenario(build, events):
    """Stage all rows at once with no load order; returns (placement, staged, rejected)."""
    build.load("generated_events", events)
    staged, rejected = build.stage("generated_events", vars=DEDUP_VARS)
    return placement(events["raw_row_id"], staged, rejected), staged, rejected


def incremental_scenario(build, events):
    """Load `events` batch by batch (column ``batch``), staging incrementally after each.

    Returns
    -------
    counts : dict
        placement() after the last run.
    staged, rejected : pandas.DataFrame
        The tables after the last incremental run.
    """
    incremental = {"basemodel_incremental": True}
    for number, (_, batch) in enumerate(events.groupby("batch", sort=True)):
        build.load("streamed_events", batch, replace=number == 0)
        staged, rejected = build.stage("streamed_events", vars=incremental,
                                       full_refresh=number == 0)
    return placement(events["raw_row_id"], staged, rejected), staged, rejected


def _head_package(workdir):
    """The dbt package as committed at HEAD, extracted into `workdir`."""
    archive = subprocess.run(["git", "archive", "HEAD", "dbt_package"], cwd=REPOSITORY,
                             check=True, capture_output=True).stdout
    Path(workdir).mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    return Path(workdir) / "dbt_package"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=420_000)
    parser.add_argument("--duplicates", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="basemodel-integrity-"))
    try:
        old_package = _head_package(workdir / "head")
        events = generate_raw_events(args.rows, args.duplicates, args.seed)
        batches = assign_batches(events, seed=args.seed)
        figures = {}
        for name, package in (("old", old_package), ("new", PACKAGE)):
            build = PackageBuild(workdir / name, package)
            counts, _, _ = dedup_scenario(build, events)
            figures[f"{name}_both"], figures[f"{name}_neither"] = counts["both"], counts["neither"]
            counts, _, rejected = incremental_scenario(build, batches)
            figures[f"{name}_incremental_lost"] = counts["neither"]
            figures[f"{name}_incremental_both"] = counts["both"]
            late = (rejected["rejection_reason"] == "late_event").sum()
            print(f"{name}: deduplication both={figures[f'{name}_both']:,} "
                  f"neither={figures[f'{name}_neither']:,}; incremental "
                  f"lost={counts['neither']:,} both={counts['both']:,} "
                  f"quarantined as late_event={late:,}", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    n_ties = int(((batches["batch"] > 1) & batches["loaded_at"].isin(
        batches.groupby("batch")["loaded_at"].max().to_numpy())).sum())
    print(f"{args.rows:,} raw rows, {int(batches['copy_of'].notna().sum()):,} re-spelled "
          f"copies; incremental batches with {n_ties:,} tied load times, "
          f"{int(batches['loaded_at'].isna().sum()):,} without one; "
          f"{os.cpu_count()} CPU cores, DuckDB {duckdb.__version__}")
    print("dbt_integrity " + " ".join(
        f"{key}={figures[key]}" for key in (
            "old_both", "old_neither", "new_both", "new_neither",
            "old_incremental_lost", "new_incremental_lost")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
