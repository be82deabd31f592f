"""End-to-end pipeline time against the number of events.

Generated events (``sklearn_basemodel.datasets.make_events``) -> clean + group in pandas ->
Cleora on basket hyperedges -> EMDE sketches of every customer's history before a split date ->
one epoch of ``SketchRecommender`` on (history sketch -> next-period products). Each stage is
timed; the per-event time should stay flat as the data grows.

Run:  .venv/bin/python benchmarks/pipeline_scaling.py [--sizes 100000 1000000 10000000]
"""

from __future__ import annotations

import argparse
import importlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.frozen import FrozenEstimator

from sklearn_basemodel import CleoraEmbedder, EMDESketcher, SketchRecommender
from sklearn_basemodel.datasets import make_events

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline_scaling.md"


def run(n_events: int, seed: int = 0) -> dict:
    """Time every stage of the pipeline on ``n_events`` generated events."""
    times = {}
    t = time.perf_counter()
    events = make_events(n_events, random_state=seed)
    times["generate"] = time.perf_counter() - t

    t = time.perf_counter()
    valid = events.dropna(subset=["customer_id", "event_time"])
    valid = valid[(valid["event_type"] == "purchase") & (valid["amount"] >= 0)]
    valid = valid[valid["event_time"].dt.year.between(2000, 2100)].drop_duplicates()
    split = valid["event_time"].quantile(0.8)
    before = valid[valid["event_time"] <= split]
    after = valid[valid["event_time"] > split]
    baskets = before.groupby("basket_id")["product_id"].agg(list)
    history = before.groupby("customer_id")["product_id"].agg(list)
    future = after.groupby("customer_id")["product_id"].agg(list)
    customers = history.index.intersection(future.index)
    times["prepare"] = time.perf_counter() - t

    t = time.perf_counter()
    cleora = CleoraEmbedder(n_components=128, n_iter=3, random_state=seed).fit(baskets.tolist())
    times["cleora"] = time.perf_counter() - t

    t = time.perf_counter()
    sketcher = EMDESketcher(FrozenEstimator(cleora), n_sketches=10, sketch_dim=128, random_state=seed)
    sketcher.fit(baskets.tolist())
    X = sketcher.transform(history.loc[customers].tolist())
    times["sketch"] = time.perf_counter() - t

    t = time.perf_counter()
    rec = SketchRecommender(
        target_sketcher=FrozenEstimator(sketcher), hidden_units=512, n_blocks=2, max_epochs=1,
        batch_size=512, early_stopping=False, random_state=seed,  # one whole epoch is timed
    ).fit(X, future.loc[customers].tolist())
    times["train (1 epoch)"] = time.perf_counter() - t

    times["total"] = sum(times.values())
    return {"events": n_events, "customers": len(customers), "baskets": len(baskets), **times}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    # the first optimizer construction imports torch._dynamo (seconds): keep it out of the timings
    importlib.import_module("torch._dynamo")

    rows = []
    for n in args.sizes:
        result = run(n)
        rows.append(result)
        print({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}, flush=True)
    table = pd.DataFrame(rows)
    table["µs/event (total)"] = table["total"] / table["events"] * 1e6
    markdown = table.to_markdown(index=False, floatfmt=".2f")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("#### End-to-end pipeline time vs events\n\n" + markdown + "\n")
    print(markdown)
    return table


if __name__ == "__main__":
    main()
