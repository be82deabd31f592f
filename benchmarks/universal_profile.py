"""The universal profile: one pretrained embedding per customer serving three tasks.

How to run
----------
    .venv/bin/python benchmarks/universal_profile.py                  # 3 seeds, minutes on 2 cores
    .venv/bin/python benchmarks/universal_profile.py --events 20000 --seeds 0 --no-write

The RecSys Challenge 2025 protocol in miniature (issue #10), on generated data
(:func:`sklearn_basemodel.datasets.make_events`, no malformed rows, one table per seed).

Protocol
--------
* Cut-offs: training at the first of June .. October 2024 (monthly), test at 2024-11-01. At a
  cut-off a customer's history is their events up to it; labels come from the 30 days after it.
  Every training horizon ends before the test cut-off.
* Task rows: the customers active at the cut-off (an event in its last 90 days).
* Tasks (labels from the horizon): **churn**, no event at all; **category** propensity, a
  purchase in category C; **product** propensity, a purchase of product P. C and P are the
  3rd most purchased category and product before the first training cut-off (a rule fixed in
  advance, not chosen by the results).
* **Universal profile** (the library's recipe, its defaults, read as the workflow reads a
  project's events): one ``CleoraEmbedder()`` per item column, products and categories, on the
  baskets before the test cut-off; :func:`~sklearn_basemodel.recipes.behavioral_profile` of
  every customer's product history with a second block, the category history (each an EMDE
  sketch with the library's widths, ``sketch_dim_for`` the number of entities; decay
  half-life 30 days, a protocol choice), and the workflow's RFM columns (``RFM``: events,
  baskets, days since the last and the first event, the decayed event count, total and mean
  amount); :func:`~sklearn_basemodel.recipes.pretrainer` (a ``SketchRecommender`` with its
  default network and epochs) trained self-supervised to predict the products of the next 30
  days at the training cut-offs, for every customer with a history and a non-empty horizon.
  No task label is used. The profile is then the library's
  :class:`~sklearn_basemodel.universal_profile.UniversalProfile` with its defaults: ``embed()``
  of the pretrained trunk compressed to its first 32 principal components (fitted on the
  training rows, no label), beside the profile's RFM columns: one fixed vector per customer and
  cut-off.
* **Aggregated-features profile**: per event type and window (last 7 / 30 / 90 days, all
  history) the count and amount of events; per category the purchases in the last 30 and 90
  days; days since the first and the last event, number of baskets; ``sign(x) log(1 + |x|)``.
* For reference, the same head on the whole ``embed()`` of the trunk (1,024 columns, what this
  benchmark measured as the universal profile before ``UniversalProfile``), and on the trunk's
  input (the behavioral profile's sketches and RFM columns, densified): what the pretrained
  trunk adds, or loses, over its input.
* **Two heads**, each the same for every profile and every task, fitted on the rows of all
  training cut-offs and scored by ROC AUC on the test cut-off's rows:

  - ``library`` (the headline): ``StandardScaler`` then the library's small network, a
    ``SketchClassifier`` of 64 units without residual block (the shape of
    :func:`~sklearn_basemodel.recipes.rfm_network`), early-stopped on the held-out log loss;
  - ``sklearn``: ``StandardScaler`` then scikit-learn's
    ``MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True)`` (its other defaults).
    With 4% positives its early stopping (on validation accuracy, which barely moves) ends
    at an arbitrary epoch: one head's product AUC spanned .54 to .74 over 8 seeds. It scores
    every profile lower than the library's head and is kept for comparison with earlier runs.

  Each AUC is the mean over ``--heads`` (5) heads that differ only in their
  ``random_state`` (0 .. 4).
* Every figure is the mean of ``--seeds`` (0, 1, 2) with the standard deviation; a seed sets the
  data and the pretraining's ``random_state``.

Output: a markdown table per head (printed and written to
``benchmarks/results/universal_profile.md`` unless ``--no-write``), then the last line
``universal_profile churn=<a>/<b> category=<a>/<b> product=<a>/<b>`` (a: universal profile,
b: aggregated features; mean AUC over the seeds, the library's head).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results" / "universal_profile.md"
TRAIN_CUTOFFS = ["2024-06-01", "2024-07-01", "2024-08-01", "2024-09-01", "2024-10-01"]
TEST_CUTOFF = "2024-11-01"
HORIZON_DAYS = 30
ACTIVE_DAYS = 90
WINDOWS = (7, 30, 90, None)  # None: the whole history
RANK = 3  # the task's category and product: the 3rd most purchased before the first cut-off
HALF_LIFE_DAYS = 30.0
# the workflow's RFM columns (``workflow.training.rfm_columns`` of a project with amounts)
RFM = ["days_since_last", "days_since_first", "n_events", "n_baskets", "decay_weight_sum",
       "total_amount", "mean_amount"]  # fmt: skip
TASKS = ("churn", "category", "product")
# "embedding": the trunk's whole output; "sketches": the trunk's input (the behavioral profile
# itself), to tell what pretraining and the compression add
PROFILES = ("universal", "aggregated", "embedding", "sketches")
HEADS = ("library", "sklearn")  # the first is the headline (the last line)
HEAD_TITLES = {
    "library": "StandardScaler + the library's SketchClassifier (64 units, no residual block, "
               "early stopping on the held-out log loss)",
    "sklearn": "StandardScaler + scikit-learn's MLPClassifier((64,), early_stopping=True) "
               "(early stopping on validation accuracy)",
}


# --------------------------------------------------------------------------- rows and labels
def task_targets(events, before):
    """The category and the product of the propensity tasks: the RANK-th most purchased."""
    past = events[(events["event_time"] < pd.Timestamp(before))
                  & (events["event_type"] == "purchase")]  # fmt: skip
    ranked = {}
    for column in ("category_id", "product_id"):
        counts = past[column].value_counts()
        # ties broken by id, so the rule picks one key whatever the sort's stability
        order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ranked[column] = int(order[min(RANK, len(order)) - 1][0])
    return ranked["category_id"], ranked["product_id"]


def customer_rows(events, cutoff, category, product):
    """Every customer with a history at ``cutoff``: product and category histories with ages
    (days), RFM, the horizon's products (pretraining target), ``active`` and the three task
    labels."""
    from sklearn_basemodel.recipes import histories_at

    cutoff = pd.Timestamp(cutoff)
    rows = histories_at(events, cutoff, horizon_days=HORIZON_DAYS,
                        items={"products": "product_id", "categories": "category_id"})  # fmt: skip
    past = events[events["event_time"] <= cutoff]
    rows["days_since_last"] = rows["products_ages"].map(min)
    rows["days_since_first"] = rows["products_ages"].map(max)
    rows["n_events"] = rows["products"].map(len)
    rows["n_baskets"] = past.groupby("customer_id")["basket_id"].nunique().reindex(rows.index)
    rows["decay_weight_sum"] = [float(np.sum(0.5 ** (np.asarray(ages) / HALF_LIFE_DAYS)))
                                for ages in rows["products_ages"]]  # fmt: skip
    rows["total_amount"] = past.groupby("customer_id")["amount"].sum().reindex(rows.index)
    rows["mean_amount"] = rows["total_amount"] / rows["n_events"]
    rows["active"] = rows["days_since_last"] <= ACTIVE_DAYS
    end = cutoff + pd.Timedelta(days=HORIZON_DAYS)
    horizon = events[(events["event_time"] > cutoff) & (events["event_time"] <= end)
                     & (events["event_type"] == "purchase")]  # fmt: skip
    rows["churn"] = rows["future"].map(len) == 0
    rows["category"] = rows.index.isin(horizon.loc[horizon["category_id"] == category,
                                                   "customer_id"])  # fmt: skip
    rows["product"] = rows.index.isin(horizon.loc[horizon["product_id"] == product,
                                                  "customer_id"])  # fmt: skip
    return rows


def aggregated_features(events, cutoff, customers, categories):
    """The aggregated-features profile of ``customers`` at ``cutoff`` (signed log scale)."""
    from sklearn_basemodel.recipes import signed_log1p

    cutoff = pd.Timestamp(cutoff)
    past = events[events["event_time"] <= cutoff]
    age = (cutoff - past["event_time"]).dt.total_seconds() / 86_400
    blocks = []
    for window in WINDOWS:
        part = past if window is None else past[age <= window]
        name = "all" if window is None else f"{window}d"
        by_type = part.groupby(["customer_id", "event_type"], observed=False)["amount"]
        for stat in ("count", "sum"):
            table = by_type.agg(stat).unstack(fill_value=0)
            table.columns = [f"{t}_{stat}_{name}" for t in table.columns]
            blocks.append(table)
        if window in (30, 90):
            buys = part[part["event_type"] == "purchase"]
            table = pd.crosstab(buys["customer_id"], buys["category_id"])
            table = table.reindex(columns=categories, fill_value=0)
            table.columns = [f"category_{c}_{name}" for c in table.columns]
            blocks.append(table)
    grouped = past.groupby("customer_id")
    blocks.append(pd.DataFrame({
        "days_since_first": age.groupby(past["customer_id"]).max(),
        "days_since_last": age.groupby(past["customer_id"]).min(),
        "n_baskets": grouped["basket_id"].nunique(),
    }))  # fmt: skip
    features = pd.concat(blocks, axis=1).reindex(customers).fillna(0.0)
    return signed_log1p(features.to_numpy(dtype=np.float64))


# --------------------------------------------------------------------------- the recipe
def pretrain(events, train_rows, seed, network):
    """Cleora vectors per item column, the behavioral profile and the pretrained recommender
    (fitted)."""
    from sklearn.frozen import FrozenEstimator

    from sklearn_basemodel import CleoraEmbedder, EMDESketcher
    from sklearn_basemodel.recipes import behavioral_profile, history_block, pretrainer

    before = events[events["event_time"] <= pd.Timestamp(TEST_CUTOFF)]
    vectors = {column: CleoraEmbedder(random_state=seed).fit(
                   before.groupby("basket_id")[column].agg(list).tolist())
               for column in ("product_id", "category_id")}  # fmt: skip
    categories = history_block("categories", vectors["category_id"], "categories",
                               ages="categories_ages", half_life=HALF_LIFE_DAYS,
                               random_state=seed + 1)  # fmt: skip
    vectors = vectors["product_id"]
    profile = behavioral_profile(
        vectors, items="products", ages="products_ages", half_life=HALF_LIFE_DAYS, rfm=RFM,
        blocks=[categories], random_state=seed,
    )  # fmt: skip
    rows = train_rows[train_rows["future"].map(len) > 0]
    target = EMDESketcher(embedder=FrozenEstimator(vectors), random_state=seed)
    recommender = pretrainer(target, random_state=seed, **network)
    recommender.fit(profile.fit_transform(rows), rows["future"].tolist())
    return profile, recommender, len(rows)


def head(kind, random_state):
    """The small head every profile and task goes through: the library's or scikit-learn's."""
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from sklearn_basemodel import SketchClassifier
    from sklearn_basemodel.recipes import RFM_NETWORK_UNITS

    if kind == "library":
        return make_pipeline(StandardScaler(), SketchClassifier(
            hidden_units=RFM_NETWORK_UNITS, n_blocks=0, early_stopping=True,
            random_state=random_state))  # fmt: skip
    return make_pipeline(
        StandardScaler(),
        MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True, random_state=random_state),
    )


def _dense(X):
    import scipy.sparse as sp

    return X.toarray() if sp.issparse(X) else np.asarray(X)


def auc(y_true, scores):
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y_true, scores)) if len(set(y_true)) == 2 else float("nan")


def run_seed(seed, args, network):
    """AUC of every (profile, task) on one generated table, and a few counts."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from sklearn_basemodel.datasets import make_events

    events = make_events(args.events, malformed_fraction=0.0, random_state=seed)
    events["customer_id"] = events["customer_id"].astype(np.int64)
    category, product = task_targets(events, TRAIN_CUTOFFS[0])
    categories = sorted(events["category_id"].unique())
    per_cutoff = {c: customer_rows(events, c, category, product)
                  for c in [*TRAIN_CUTOFFS, TEST_CUTOFF]}  # fmt: skip
    train_all = pd.concat([per_cutoff[c] for c in TRAIN_CUTOFFS])
    t0 = time.perf_counter()
    profile, recommender, n_pretrain = pretrain(events, train_all, seed, network)
    pretrain_s = time.perf_counter() - t0

    from sklearn_basemodel.universal_profile import UniversalProfile

    active = {c: per_cutoff[c][per_cutoff[c]["active"]] for c in per_cutoff}
    # fitted on the training rows (no label involved), then fixed for every task
    universal = UniversalProfile(recommender, profile=profile, random_state=seed)
    universal.fit(pd.concat([active[c] for c in TRAIN_CUTOFFS]))

    def features(cutoffs):
        rows = [active[c] for c in cutoffs]
        sketches = [_dense(profile.transform(r)) for r in rows]
        aggregated = np.vstack([aggregated_features(events, c, r.index, categories)
                                for c, r in zip(cutoffs, rows)])  # fmt: skip
        profiles = {"universal": np.vstack([universal.transform(r) for r in rows]),
                    "aggregated": aggregated,
                    "embedding": np.vstack([recommender.embed(x) for x in sketches]),
                    "sketches": np.vstack(sketches)}  # fmt: skip
        return profiles, pd.concat(rows)

    X_train, train = features(TRAIN_CUTOFFS)
    X_test, test = features([TEST_CUTOFF])
    scores = {}
    for kind in HEADS:
        for task in TASKS:
            for name in PROFILES:
                per_head = []
                for random_state in range(args.heads):
                    with warnings.catch_warnings():  # early stopping may end unconverged
                        warnings.simplefilter("ignore", ConvergenceWarning)
                        model = head(kind, random_state)
                        model.fit(X_train[name], train[task].to_numpy())
                    per_head.append(auc(test[task].to_numpy(),
                                        model.predict_proba(X_test[name])[:, 1]))  # fmt: skip
                scores[kind, name, task] = float(np.mean(per_head))
    info = {
        "customers": int(events["customer_id"].nunique()), "category": category,
        "product": product, "pretrain_rows": n_pretrain, "pretrain_s": pretrain_s,
        "train_rows": len(train), "test_rows": len(test),
        "widths": {name: X_train[name].shape[1] for name in PROFILES},
        "positives": {task: float(test[task].mean()) for task in TASKS},
    }  # fmt: skip
    return scores, info


# --------------------------------------------------------------------------- report
def summary(per_seed):
    """(profile, task) -> (mean, std) over the seeds (NaN AUCs, a one-class test, skipped)."""
    keys = per_seed[0].keys()
    values = {key: np.array([s[key] for s in per_seed], dtype=float) for key in keys}
    return {key: (float(np.nanmean(v)) if np.isfinite(v).any() else float("nan"),
                  float(np.nanstd(v)) if np.isfinite(v).any() else float("nan"))
            for key, v in values.items()}  # fmt: skip


def table(stats, infos, args, network, seconds, load_before):
    first = infos[0]
    lines = [
        "## Universal profile: one pretrained embedding, three tasks, the same heads",
        "",
        f"make_events({args.events:,}) per seed ({first['customers']:,} customers for seed "
        f"{args.seeds[0]}); training cut-offs {TRAIN_CUTOFFS[0]} .. {TRAIN_CUTOFFS[-1]} "
        f"(monthly), test cut-off {TEST_CUTOFF}, {HORIZON_DAYS}-day horizon, rows = customers "
        f"active in the last {ACTIVE_DAYS} days ({first['train_rows']:,} train / "
        f"{first['test_rows']:,} test rows for seed {args.seeds[0]}). Category and product: the "
        f"{RANK}rd most purchased before {TRAIN_CUTOFFS[0]}. Pretraining: "
        f"{first['pretrain_rows']:,} rows, {first['pretrain_s']:.0f} s; network "
        f"{network or 'library defaults'}. Profile widths: universal "
        f"{first['widths']['universal']}, aggregated {first['widths']['aggregated']}, whole "
        f"embedding {first['widths']['embedding']}, sketches {first['widths']['sketches']}. Each "
        f"AUC is the mean of {args.heads} heads (random_state 0 .. {args.heads - 1}).",
    ]
    for kind, title in HEAD_TITLES.items():
        lines += [
            "",
            f"### Head: {title}",
            "",
            f"ROC AUC on the test cut-off, mean +- std over seeds "
            f"{', '.join(map(str, args.seeds))}:",
            "",
            "| task | test positives | universal profile (`UniversalProfile`: 32 principal "
            "components of the trunk's embed, + RFM) | aggregated features | better | for "
            "reference: the whole embed of the trunk | for reference: the trunk's input "
            "(sketches + RFM) |",
            "|---|---:|---:|---:|---|---:|---:|",
        ]
        for task in TASKS:
            (a, sa), (b, sb) = stats[kind, "universal", task], stats[kind, "aggregated", task]
            share = np.mean([info["positives"][task] for info in infos])
            winner = "universal" if a > b else "aggregated" if b > a else "tie"
            (c, sc), (d, sd) = stats[kind, "embedding", task], stats[kind, "sketches", task]
            lines.append(f"| {task} | {share:.1%} | {a:.4f} +- {sa:.4f} | {b:.4f} +- {sb:.4f} "
                         f"| {winner} | {c:.4f} +- {sc:.4f} | {d:.4f} +- {sd:.4f} |")  # fmt: skip
    lines += ["", f"Total {seconds:.0f} s, {os.cpu_count()} CPUs; load average {load_before:.1f} "
              f"before, {os.getloadavg()[0]:.1f} after (the machine may be shared)."]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=150_000, help="events per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--heads", type=int, default=5,
                        help="heads (random_state 0 ..) each AUC is averaged over")  # fmt: skip
    parser.add_argument("--hidden-units", type=int, default=None,
                        help="pretrainer width (default: the library's); for smoke runs")  # fmt: skip
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="pretrainer epochs (default: the library's); for smoke runs")  # fmt: skip
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    network = {k: v for k, v in (("hidden_units", args.hidden_units),
                                 ("max_epochs", args.max_epochs)) if v is not None}  # fmt: skip
    t0, load_before = time.perf_counter(), os.getloadavg()[0]
    per_seed, infos = [], []
    for seed in args.seeds:
        scores, info = run_seed(seed, args, network)
        per_seed.append(scores)
        infos.append(info)
        print(f"seed {seed}: " + ", ".join(f"{h}/{p}/{t} {v:.4f}"
                                           for (h, p, t), v in scores.items()), flush=True)
    stats = summary(per_seed)
    report = table(stats, infos, args, network, time.perf_counter() - t0, load_before)
    print(report)
    if not args.no_write:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(report + "\n")
    print("universal_profile " + " ".join(
        f"{task}={stats[HEADS[0], 'universal', task][0]:.4f}/"
        f"{stats[HEADS[0], 'aggregated', task][0]:.4f}" for task in TASKS))  # fmt: skip
    return stats


if __name__ == "__main__":
    main()
    sys.exit(0)
