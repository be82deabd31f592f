"""Benchmark: `dbt build` of the basemodel package over generated events, and reading histories.

Generates raw events (default 2,000,000 for 100,000 customers, about 1% malformed: missing
customers, unparseable or out-of-range timestamps, bad amounts, duplicates) into a DuckDB
database, runs `dbt build` of the basemodel package on them (staging, rejection, hyperedges,
four rolling monthly splits, histories, targets and every data test), then reads the history
table of the latest split (about one row per customer, with list columns) into pandas with
`sklearn_basemodel.warehouse.read_relation`.

    .venv/bin/python benchmarks/dbt_build.py                 # the figures in the README
    .venv/bin/python benchmarks/dbt_build.py --events 200000 --customers 10000   # quick

Prints a markdown table. Everything is written to a temporary folder (or --workdir). Times are
wall clock, with the CPU time of this process (all its threads) beside them: on a shared
machine the wall time grows with the load, the CPU time much less.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from sklearn_basemodel.warehouse import dbt_package_path, read_relation, run_dbt

START = np.datetime64("2024-01-01T00:00:00", "s")
DAYS = 182  # events from 2024-01-01 to 2024-07-01
SPLITS = {"start": "2024-03-01", "end": "2024-05-30", "every_days": 30}


def generate_events(n_events, n_customers, seed=0):
    """Raw events as an Arrow table of text columns, ~1% of them malformed or duplicated."""
    rng = np.random.default_rng(seed)
    n_products = 20_000
    # Every customer has an event; the rest follow a skewed activity level.
    activity = rng.lognormal(0.0, 1.0, n_customers)
    customers = np.concatenate(
        [
            np.arange(n_customers),
            rng.choice(n_customers, n_events - n_customers, p=activity / activity.sum()),
        ]
    )
    popularity = 1.0 / (np.arange(n_products) + 10.0) ** 1.1
    products = rng.choice(n_products, n_events, p=popularity / popularity.sum())
    category = rng.integers(0, 200, n_products)[products]
    brand = rng.integers(0, 500, n_products)[products]
    seconds = rng.integers(0, DAYS * 86_400, n_events)
    times = START + seconds.astype("timedelta64[s]")
    kind = rng.choice(np.array(["view", "add_to_cart", "purchase"]), n_events, p=[0.7, 0.2, 0.1])
    price = np.round(rng.lognormal(3.0, 0.8, n_products), 2)[products]
    day = seconds // 86_400

    customer_text = np.char.add("c", customers.astype(str)).astype(object)
    time_text = np.datetime_as_string(times, unit="s").astype(object)
    amount_text = np.where(kind == "purchase", price.astype(str), None).astype(object)

    # Malformed rows, as raw loads have them.
    broken = rng.random(n_events)
    customer_text[broken < 0.002] = None
    time_text[(broken >= 0.002) & (broken < 0.003)] = "not a date"
    time_text[(broken >= 0.003) & (broken < 0.004)] = "2024-02-30 10:00:00"
    time_text[(broken >= 0.004) & (broken < 0.005)] = "2099-01-01 00:00:00"
    amount_text[(broken >= 0.005) & (broken < 0.006)] = "12,50"

    columns = {
        "customer_id": customer_text,
        "event_time": time_text,
        "event_type": kind.astype(object),
        "product_id": np.char.add("p", products.astype(str)).astype(object),
        "category": np.char.add("cat", category.astype(str)).astype(object),
        "brand": np.char.add("b", brand.astype(str)).astype(object),
        "basket_id": np.char.add(
            np.char.add(customers.astype(str), "-"), day.astype(str)
        ).astype(object),
        "amount": amount_text,
    }
    duplicates = rng.choice(n_events, int(0.004 * n_events), replace=False)
    return pa.table(
        {
            name: pa.array(np.concatenate([values, values[duplicates]]), type=pa.string())
            for name, values in columns.items()
        }
    )


def write_project(workdir, database):
    project = workdir / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text(
        textwrap.dedent(
            f"""\
            name: basemodel_benchmark
            version: "1.0"
            config-version: 2
            profile: basemodel_benchmark
            vars:
              basemodel_events_identifier: raw_events
              basemodel_entity_column: customer_id
              basemodel_timestamp_column: event_time
              basemodel_event_type_column: event_type
              basemodel_item_columns: [product_id, category, brand]
              basemodel_group_column: basket_id
              basemodel_amount_column: amount
              basemodel_valid_from: "2023-01-01"
              basemodel_valid_to: "2025-01-01"
              basemodel_split_times: {SPLITS}
              basemodel_horizon_days: 30
              basemodel_decay_rate: 0.02
              basemodel_propensity_event_types: [purchase]
            """
        )
    )
    (project / "packages.yml").write_text(f"packages:\n  - local: {dbt_package_path()}\n")
    threads = max(1, os.cpu_count() or 1)
    (project / "profiles.yml").write_text(
        "basemodel_benchmark:\n  target: dev\n  outputs:\n    dev:\n"
        f"      type: duckdb\n      path: {database}\n      threads: {threads}\n"
    )
    return project


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="reads of the history table")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    args = parser.parse_args(argv)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="basemodel-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        database = workdir / "events.duckdb"
        started = time.perf_counter()
        events = generate_events(args.events, args.customers)
        with duckdb.connect(str(database)) as connection:
            connection.register("generated", events)
            connection.execute("create or replace table raw_events as select * from generated")
        generate_seconds = time.perf_counter() - started

        project = write_project(workdir, database)
        paths = {"profiles_dir": project, "log_path": workdir / "logs"}
        run_dbt(["deps"], project, **paths)
        started, started_cpu = time.perf_counter(), time.process_time()
        result = run_dbt(["build"], project, target_path=workdir / "target", **paths)
        build_seconds = time.perf_counter() - started
        build_cpu = time.process_time() - started_cpu
        node_seconds = {}
        for node_result in result.result.results:
            kind = str(node_result.node.resource_type).split(".")[-1].lower()
            node_seconds[kind] = node_seconds.get(kind, 0.0) + node_result.execution_time
        slowest = max(
            (r for r in result.result.results if "model" in str(r.node.resource_type).lower()),
            key=lambda r: r.execution_time,
        )

        with duckdb.connect(str(database)) as connection:
            counts = {
                name: connection.execute(f"select count(*) from {name}").fetchone()[0]
                for name in (
                    "raw_events",
                    "basemodel_stg_events",
                    "basemodel_rejected_events",
                    "basemodel_hyperedges",
                    "basemodel_entity_history",
                )
            }
            connection.execute(
                "create table history_latest_split as select * from basemodel_entity_history"
                " where split_id = (select max(split_id) from basemodel_splits)"
            )
            latest_rows, n_elements = connection.execute(
                "select count(*), sum(3 * n_events + len(product_id_items) + len(category_items)"
                " + len(brand_items) + len(product_id_weights) + len(category_weights)"
                " + len(brand_weights)) from history_latest_split"
            ).fetchone()

        reads, reads_cpu = [], []
        for _ in range(args.repeats):
            started, started_cpu = time.perf_counter(), time.process_time()
            history = read_relation(database, "history_latest_split")
            reads.append(time.perf_counter() - started)
            reads_cpu.append(time.process_time() - started_cpu)
            del history
        history = read_relation(database, "history_latest_split")
        assert len(history) == latest_rows and isinstance(history["product_id_items"][0], list)
        started = time.perf_counter()
        read_relation(database, "basemodel_entity_history")
        all_splits_read = time.perf_counter() - started
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = [
        ("raw events generated (incl. malformed and duplicated)", f"{counts['raw_events']:,}",
         f"{generate_seconds:.1f} s"),
        ("staged events / rejected rows", f"{counts['basemodel_stg_events']:,} / "
         f"{counts['basemodel_rejected_events']:,}", ""),
        ("hyperedges (baskets)", f"{counts['basemodel_hyperedges']:,}", ""),
        ("history rows (4 rolling splits)", f"{counts['basemodel_entity_history']:,}", ""),
        ("**`dbt build`** (all models and data tests)", f"{len(result.result.results)} nodes",
         f"**{build_seconds:.1f} s** (CPU {build_cpu:.1f} s)"),
        ("  of which models / data tests (node time)", "",
         f"{node_seconds.get('model', 0):.1f} s / {node_seconds.get('test', 0):.1f} s"),
        ("  slowest model", slowest.node.name, f"{slowest.execution_time:.1f} s"),
        ("**read history of the latest split** (`read_relation`, lists as Python lists)",
         f"{latest_rows:,} customers, {n_elements:,} list elements",
         f"**{statistics.median(reads):.2f} s** (CPU {statistics.median(reads_cpu):.2f} s; "
         f"median of {len(reads)}; target <= 2 s)"),
        ("read history of all splits", f"{counts['basemodel_entity_history']:,} rows",
         f"{all_splits_read:.2f} s"),
    ]
    print(f"dbt build of the basemodel package, {args.events:,} events, {args.customers:,} "
          f"customers; {os.cpu_count()} CPU cores ({platform.machine()}, load {load:.1f}), "
          f"Python {sys.version.split()[0]}, DuckDB {duckdb.__version__}\n")
    print("| step | size | time |\n| --- | --- | --- |")
    for step, size, seconds in rows:
        print(f"| {step} | {size} | {seconds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
