"""Peak memory of streaming training against the number of events, and its throughput.

For each size: generated events (``make_events``) are written to a DuckDB file and turned into
one row per customer in SQL (purchase history before a split date, and whether the customer
bought again after it: churn). Then, each in a fresh subprocess so that its peak resident
memory (``ru_maxrss``) is its own:

* **stream**: a profile (Cleora + EMDE) is fitted on a bounded sample of baskets, and a
  ``SketchClassifier`` is trained from a ``BatchStream`` over ``WarehouseBatches`` of the
  customer table (sketched batch by batch, shuffled in a buffer, early stopping on rows held
  out by key hash); churn probabilities are written back to the database in batches.
* **memory** (the smallest size only): the same profile and classifier, trained in memory
  (``read_relation`` of the whole table, all sketches at once): the throughput to compare.

Both train the same number of epochs; rows/s = training rows x epochs / time from the table to
the fitted model (reading and sketching included).

Run:  .venv/bin/python benchmarks/streaming_memory.py [--sizes 1000000 10000000]
Last line: ``streaming peak_rss_1m=<MB> peak_rss_10m=<MB> rows_per_s=<x>``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "streaming_memory.md"
SPLIT = "2024-10-01"
SEED = 0
BASKET_SAMPLE = 50_000  # baskets the profile is fitted on, whatever the size
MODEL = {"hidden_units": 256, "n_blocks": 2, "max_epochs": 3, "batch_size": 512, "lr": 1e-3,
         "early_stopping": True, "n_iter_no_change": 5, "validation_fraction": 0.1,
         "random_state": SEED}
READ = {"batch_size": 8192, "memory_limit": "256MB"}
SHUFFLE_BUFFER = 16384


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --------------------------------------------------------------------------- stages (children)
def prepare(database: str, n_events: int) -> dict:
    """Events -> DuckDB file -> one row per customer (history before SPLIT, churn after)."""
    import duckdb

    from sklearn_basemodel.datasets import make_events, write_events

    start = time.perf_counter()
    events = make_events(n_events, random_state=SEED)
    write_events(events, database)
    del events
    with duckdb.connect(database) as con:
        con.execute(
            """
            create or replace table purchases as
            select customer_id, basket_id, product_id, event_time
            from raw_events
            where customer_id is not null and event_type = 'purchase' and amount >= 0
              and event_time >= timestamp '2024-01-01' and event_time < timestamp '2025-01-01'
            """
        )
        # Ordered by a hash of the customer so churners are spread over the whole stream.
        con.execute(
            """
            create or replace table customer_rows as
            with history as (
                select customer_id, list(product_id order by event_time, product_id) as history
                from purchases where event_time < cast(? as timestamp) group by customer_id
            ), later as (
                select distinct customer_id from purchases
                where event_time >= cast(? as timestamp)
            )
            select h.customer_id, h.history, (l.customer_id is null)::int as churned
            from history h left join later l using (customer_id)
            order by hash(h.customer_id)
            """,
            [SPLIT, SPLIT],
        )
        con.execute(
            """
            create or replace table basket_sample as
            select list(product_id order by product_id) as items
            from purchases where event_time < cast(? as timestamp)
            group by basket_id order by hash(basket_id) limit ?
            """,
            [SPLIT, BASKET_SAMPLE],
        )
        n_rows = con.execute("select count(*) from customer_rows").fetchone()[0]
    return {"seconds": time.perf_counter() - start, "customers": n_rows}


def _warm_up() -> None:
    """One tiny fit, so one-time costs (torch's lazy imports, a second or more) stay untimed.

    One torch thread: the other core reads and sketches, and on a shared 2-core machine
    OpenMP threads spinning against each other slow training down several times.
    """
    import numpy as np
    import torch

    from sklearn_basemodel import SketchClassifier

    torch.set_num_threads(1)
    X = np.random.default_rng(SEED).random((64, 4), dtype=np.float32)
    SketchClassifier(hidden_units=8, n_blocks=1, max_epochs=1, batch_size=32).fit(X, X[:, 0] > 0.5)


def _profile(con):
    """The fitted feature transform: Cleora + EMDE on a bounded sample of baskets."""
    from sklearn.frozen import FrozenEstimator

    from sklearn_basemodel import CleoraEmbedder, EMDESketcher
    from sklearn_basemodel.warehouse import read_relation

    baskets = read_relation(con, "basket_sample")["items"].tolist()
    cleora = CleoraEmbedder(n_components=64, n_iter=3, random_state=SEED).fit(baskets)
    sketcher = EMDESketcher(FrozenEstimator(cleora), n_sketches=10, sketch_dim=64,
                            random_state=SEED)
    return sketcher.fit(baskets)


def stream(database: str) -> dict:
    """Stream-train the churn classifier from the table, write its scores back in batches."""
    import duckdb

    from sklearn_basemodel import SketchClassifier
    from sklearn_basemodel.nn.streaming import BatchStream
    from sklearn_basemodel.warehouse.batches import WarehouseBatches, write_predictions

    _warm_up()
    with duckdb.connect(database) as con:
        sketcher = _profile(con)
        batches = WarehouseBatches(con, "customer_rows",
                                   columns=["customer_id", "history", "churned"], **READ)
        rows = BatchStream(batches, features="history", target="churned", key="customer_id",
                           transform=sketcher, targets=[0, 1], shuffle_buffer=SHUFFLE_BUFFER)
        start = time.perf_counter()
        clf = SketchClassifier(**MODEL).fit(rows)
        seconds = time.perf_counter() - start
        epochs = len(clf.history_)
        trained = sum(clf.history_[-1, "batches", :, "train_batch_size"])
        scores = ((keys, proba[:, 1]) for keys, proba in clf.predict_stream(rows, "predict_proba"))
        written = write_predictions(con, "churn_scores", scores, key="customer_id",
                                    column="churn_probability")
        auc = _auc(con)
    return {"seconds": seconds, "epochs": epochs, "train_rows": int(trained),
            "rows_per_s": trained * epochs / seconds, "written": written, "auc": auc,
            "peak_rss_mb": _peak_rss_mb()}


def _auc(con) -> float:
    """ROC AUC of the written scores against the labels, computed in SQL (rank statistic)."""
    return con.execute(
        """
        with scored as (
            select r.churned, rank() over (order by s.churn_probability) as position
            from customer_rows r join churn_scores s using (customer_id)
        )
        select (sum(position) filter (where churned = 1)
                - count(*) filter (where churned = 1) * (count(*) filter (where churned = 1) + 1) / 2)
               / (count(*) filter (where churned = 1) * count(*) filter (where churned = 0))
        from scored
        """
    ).fetchone()[0]


def memory(database: str) -> dict:
    """The same training in memory: the whole table read and sketched at once."""
    import duckdb
    from sklearn.metrics import roc_auc_score

    from sklearn_basemodel import SketchClassifier
    from sklearn_basemodel.warehouse import read_relation

    _warm_up()
    with duckdb.connect(database) as con:
        sketcher = _profile(con)
        start = time.perf_counter()
        table = read_relation(con, "customer_rows", columns=["customer_id", "history", "churned"])
        X = sketcher.transform(table["history"].tolist())
        clf = SketchClassifier(**MODEL).fit(X, table["churned"].to_numpy())
        seconds = time.perf_counter() - start
    epochs = len(clf.history_)
    trained = sum(clf.history_[-1, "batches", :, "train_batch_size"])
    auc = roc_auc_score(table["churned"], clf.predict_proba(X)[:, 1])
    return {"seconds": seconds, "epochs": epochs, "train_rows": int(trained),
            "rows_per_s": trained * epochs / seconds, "auc": auc, "peak_rss_mb": _peak_rss_mb()}


STAGES = {"prepare": prepare, "stream": stream, "memory": memory}


# --------------------------------------------------------------------------- driver
def _child(stage: str, database: str, n_events: int) -> dict:
    args = [sys.executable, __file__, "--stage", stage, "--database", database,
            "--events", str(n_events)]
    done = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _label(n_events: int) -> str:
    return f"{n_events // 1_000_000}m" if n_events % 1_000_000 == 0 else str(n_events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--workdir", default="/tmp/basemodel_streaming")
    parser.add_argument("--keep", action="store_true",
                        help="keep the DuckDB files and reuse them in the next run")
    parser.add_argument("--stage", choices=sorted(STAGES))
    parser.add_argument("--database")
    parser.add_argument("--events", type=int)
    args = parser.parse_args()
    if args.stage:  # a child: one stage, one JSON line
        from sklearn_basemodel.exceptions import UnknownEntityWarning

        # Products missing from the basket sample the profile is fitted on: expected, counted.
        warnings.simplefilter("ignore", UnknownEntityWarning)
        call = STAGES[args.stage]
        result = call(args.database, args.events) if args.stage == "prepare" else call(
            args.database
        )
        print(json.dumps(result))
        return

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [
        "| events | customers | prepare s | stream fit s | epochs | rows/s | peak RSS MB | AUC |",
        "|---|---|---|---|---|---|---|---|",
    ]
    peaks, baseline = {}, None
    for n_events in sorted(args.sizes):
        database = str(workdir / f"events_{_label(n_events)}.duckdb")
        sidecar = Path(database + ".json")
        if args.keep and sidecar.exists():  # prepared by an earlier run with --keep
            prepared = json.loads(sidecar.read_text())
        else:
            Path(database).unlink(missing_ok=True)
            prepared = _child("prepare", database, n_events)
            sidecar.write_text(json.dumps(prepared))
        result = _child("stream", database, n_events)
        peaks[n_events] = result["peak_rss_mb"]
        print(f"{n_events} events: prepared {prepared}, stream {result}", flush=True)
        lines.append(
            f"| {n_events:,} | {prepared['customers']:,} | {prepared['seconds']:.0f} | "
            f"{result['seconds']:.1f} | {result['epochs']} | {result['rows_per_s']:,.0f} | "
            f"{result['peak_rss_mb']:,.0f} | {result['auc']:.3f} |"
        )
        if baseline is None:
            baseline = _child("memory", database, n_events)
            stream_rate = result["rows_per_s"]
            print(f"{n_events} events in memory: {baseline}", flush=True)
        if not args.keep:
            Path(database).unlink(missing_ok=True)
            sidecar.unlink(missing_ok=True)
    smallest = min(peaks)
    ratios = ", ".join(
        f"{_label(n)}/{_label(smallest)} {peaks[n] / peaks[smallest]:.2f}"
        for n in sorted(peaks)[1:]
    )
    summary = (
        f"In memory on {smallest:,} events: {baseline['seconds']:.1f} s, "
        f"{baseline['rows_per_s']:,.0f} rows/s, peak RSS {baseline['peak_rss_mb']:,.0f} MB, "
        f"AUC {baseline['auc']:.3f}. Streaming/in-memory throughput: "
        f"{stream_rate / baseline['rows_per_s']:.2f}. Peak RSS ratios: {ratios}."
    )
    lines += ["", summary]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        "# Streaming training: peak memory and throughput\n\n" + "\n".join(lines) + "\n"
    )
    print("\n".join(lines))
    # the figures the issue asks for: the 1M and 10M peaks (the two smallest sizes otherwise)
    first, second = ([1_000_000, 10_000_000] if {1_000_000, 10_000_000} <= set(peaks)
                     else sorted(peaks)[:2])
    print(
        f"streaming peak_rss_{_label(first)}={peaks[first]:.0f} "
        f"peak_rss_{_label(second)}={peaks[second]:.0f} rows_per_s={stream_rate:.0f}"
    )


if __name__ == "__main__":
    main()
