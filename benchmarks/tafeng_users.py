"""Ta-Feng users x items under strong generalisation (issue #10's protocol).

How to run
----------
    .venv/bin/python benchmarks/tafeng_users.py                 # full run (minutes on 2 cores)
    .venv/bin/python benchmarks/tafeng_users.py --data PATH     # folder holding tafeng/

Without the data (``../shared/datasets`` next to the project, or ``--data``) it prints
``skipped: ...`` and exits 0.

Protocol (``shared/datasets/README.md``, second Ta-Feng protocol)
-----------------------------------------------------------------
* Each user's row is the set of distinct items in their history baskets (``history.json``;
  the future basket is never read). Users with at least 5 distinct items are kept.
* Users, sorted by id, are split 70 / 10 / 20 into train / validation / test by
  ``np.random.default_rng(0).permutation``.
* For every validation and test user (validation users first, then test users, each in id
  order, items sorted) a second generator, ``np.random.default_rng(0)``, hides
  ``int(0.2 * n_items)`` of the user's items (at least 1, since n >= 5; as in Liang et al.'s
  VAE-CF split). The other 80% are the user's input; every item not in them is ranked.
* Models are fit on the train users' rows only; validation and test users are folded in
  through their 80% at prediction time (strong generalisation).
* Metrics from ``sklearn_basemodel.metrics`` over the test users: Recall@20 and Recall@50 with
  denominator ``min(k, n_hidden)`` (``recall_at_k(..., normalized=True)``, Liang et al. 2018),
  and NDCG@100 with binary relevance (ideal DCG over ``min(k, n_hidden)`` positions). The same
  definitions for every method.

Methods (one run, library estimators, library defaults)
--------------------------------------------------------
* popularity: ``PopularityRecommender`` (item counts over train users);
* EASE: ``EASERecommender(l2=None)`` with the validation users as ``X_val`` / ``y_val``: its
  built-in search over its default λ grid (decades walked out from the middle three, then the
  half-decade midpoints next to the best) by validation Recall@20, keeping the best model;
* item-kNN: ``ItemKNNRecommender`` (shrunk cosine, its defaults);
* the library's default: :func:`learned_model_scores`, ``BlendedRecommender`` over
  ``default_candidates()`` (popularity, GP-TopFreq, item-kNN, EASE and the learned
  ``HistoryRecommender``), with library defaults; it learns and checks its blend on its own
  held-out training users (the protocol's validation users are not used). Run with model seeds
  0, 1, 2 (``--seeds``; the seed moves its held-out users and every candidate's randomness, the
  protocol's split stays seed 0): the row is the mean, with the standard deviation over seeds.

Also timed: one EASE fit (default float32) at the chosen λ on the train users: the cost of
EASE at Ta-Feng's item count on this machine.

Output: a markdown table (printed and written to ``benchmarks/results/tafeng_users.md``), then
the last line ``tafeng_users recall@20=<x> ndcg@100=<y> ease_recall@20=<a> ease_ndcg@100=<b>``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results" / "tafeng_users.md"
MIN_ITEMS = 5
SPLIT = (0.7, 0.1, 0.2)
HIDE_FRACTION = 0.2
SEED = 0
TOP_K = 100  # longest cut-off of the metrics


# --------------------------------------------------------------------------- protocol
def user_item_sets(history) -> dict:
    """user id -> sorted distinct items of the user's history baskets (users with >= 5)."""
    rows = {}
    for user, baskets in history.groupby("user_id", sort=True)["items"]:
        items = sorted({int(item) for basket in baskets for item in basket})
        if len(items) >= MIN_ITEMS:
            rows[int(user)] = items
    return rows


def split_users(users, seed=SEED) -> dict:
    """70 / 10 / 20 split of the sorted users by a seeded permutation."""
    users = np.sort(np.asarray(users))
    order = np.random.default_rng(seed).permutation(len(users))
    n_train, n_val = int(SPLIT[0] * len(users)), int(SPLIT[1] * len(users))
    return {
        "train": np.sort(users[order[:n_train]]),
        "val": np.sort(users[order[n_train : n_train + n_val]]),
        "test": np.sort(users[order[n_train + n_val :]]),
    }


def hide_items(rows: dict, splits: dict, seed=SEED) -> dict:
    """For validation then test users: (kept 80%, hidden 20%) lists, one generator."""
    rng = np.random.default_rng(seed)
    out = {}
    for part in ("val", "test"):
        kept, hidden = [], []
        for user in splits[part]:
            items = np.asarray(rows[user])
            mask = np.zeros(len(items), dtype=bool)
            mask[rng.choice(len(items), size=int(HIDE_FRACTION * len(items)), replace=False)] = True
            kept.append(items[~mask].tolist())
            hidden.append(items[mask].tolist())
        out[part] = (kept, hidden)
    return out


def ranking_metrics(hidden, top) -> dict:
    """R@20, R@50 (denominator min(k, n_hidden)) and NDCG@100 of ranked lists ``top``."""
    from sklearn_basemodel.metrics import ndcg_at_k, recall_at_k

    return {
        "recall@20": recall_at_k(hidden, top, k=20, normalized=True),
        "recall@50": recall_at_k(hidden, top, k=50, normalized=True),
        "ndcg@100": ndcg_at_k(hidden, top, k=100),
    }


# --------------------------------------------------------------------------- methods
def learned_model_scores(train_rows, val, test, seed=SEED):
    """The library's default recommender with its built-in selection.

    :class:`~sklearn_basemodel.selection.BlendedRecommender` over the default candidates (the
    learned :class:`~sklearn_basemodel.history_recommender.HistoryRecommender` among them), all
    with library defaults; it learns its blend on its own held-out training customers (the protocol's
    validation users are not used). Returns ``(name, top, info)``: the top-100 items of each
    test user given the kept 80% (``exclude_seen``), and what selection chose.
    """
    from sklearn_basemodel.selection import BlendedRecommender, default_candidates

    del val  # selection uses its own held-out training customers
    # the default candidates, seeded by the protocol's seed (BlendedRecommender would derive one)
    candidates = default_candidates(random_state=seed)
    model = BlendedRecommender(candidates, k=20, exclude_seen=True, random_state=seed)
    model.fit(train_rows)
    top = model.predict(test[0], k=100)
    info = {"chosen": model.chosen_, "weights": model.weights_,
            "validation_recall@20": model.validation_scores_}  # fmt: skip
    return "blended (library default)", top, info


def run(data, verbose=True, seeds=(SEED,)) -> dict:
    from sklearn_basemodel.baselines import (
        EASERecommender,
        ItemKNNRecommender,
        PopularityRecommender,
    )

    start = time.perf_counter()

    def log(message):
        if verbose:
            print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)

    rows = user_item_sets(data.history)
    splits = split_users(list(rows))
    held_out = hide_items(rows, splits)
    train = [rows[u] for u in splits["train"]]
    val_kept, val_hidden = held_out["val"]
    test_kept, test_hidden = held_out["test"]
    n_train_items = len({i for row in train for i in row})
    log(f"{len(rows)} users with >= {MIN_ITEMS} items: {len(train)} train, {len(val_kept)} val, "
        f"{len(test_kept)} test; {n_train_items} items in train rows")  # fmt: skip

    results, info = {}, {}

    def evaluate(name, model, **fit_params):
        t0 = time.perf_counter()
        model.fit(train, **fit_params)
        fit_seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        top = model.predict(test_kept, k=TOP_K)
        results[name] = {**ranking_metrics(test_hidden, top), "fit_seconds": fit_seconds,
                         "predict_seconds": time.perf_counter() - t0,
                         "val": ranking_metrics(val_hidden, model.predict(val_kept, k=TOP_K))}
        log(f"{name}: R@20 {results[name]['recall@20']:.4f} NDCG@100 "
            f"{results[name]['ndcg@100']:.4f} (fit {fit_seconds:.1f}s)")  # fmt: skip
        return model

    evaluate("popularity", PopularityRecommender(exclude_seen=True))
    evaluate("item-kNN", ItemKNNRecommender(exclude_seen=True))
    ease = evaluate("EASE", EASERecommender(exclude_seen=True, random_state=SEED, verbose=verbose),
                    X_val=val_kept, y_val=val_hidden)  # fmt: skip
    info["ease_l2"] = ease.l2_
    info["ease_l2_scores"] = ease.l2_scores_
    log(f"EASE chose l2={ease.l2_:g} from validation R@20 {ease.l2_scores_}")

    t0, cpu0 = time.perf_counter(), time.process_time()
    EASERecommender(l2=ease.l2_).fit(train)
    info["ease_single_fit_seconds"] = time.perf_counter() - t0
    info["ease_single_fit_cpu_seconds"] = time.process_time() - cpu0  # all threads
    log(f"one EASE fit at fixed l2 on {n_train_items} items: "
        f"{info['ease_single_fit_seconds']:.1f}s ({info['ease_single_fit_cpu_seconds']:.1f} "
        "CPU-seconds)")  # fmt: skip

    per_seed = []
    for seed in seeds:
        t0 = time.perf_counter()
        name, top, chosen = learned_model_scores(train, held_out["val"], held_out["test"], seed)
        per_seed.append({**ranking_metrics(test_hidden, top), "chosen": chosen,
                         "seconds": time.perf_counter() - t0})  # fmt: skip
        log(f"{name}, seed {seed}: R@20 {per_seed[-1]['recall@20']:.4f} NDCG@100 "
            f"{per_seed[-1]['ndcg@100']:.4f}; kept {chosen['chosen']}")  # fmt: skip
    metrics = ("recall@20", "recall@50", "ndcg@100")
    results[name] = {**{m: float(np.mean([r[m] for r in per_seed])) for m in metrics},
                     "std": {m: float(np.std([r[m] for r in per_seed])) for m in metrics},
                     "fit_seconds": float(np.mean([r["seconds"] for r in per_seed])),
                     "predict_seconds": float("nan"), "val": None}  # fmt: skip
    info["learned_per_seed"] = dict(zip(seeds, per_seed))
    info["learned_name"] = name
    return {"results": results, "info": info, "n_users": len(rows), "n_train": len(train),
            "n_val": len(val_kept), "n_test": len(test_kept), "n_items": n_train_items,
            "total_seconds": time.perf_counter() - start}  # fmt: skip


# --------------------------------------------------------------------------- report
def best_library_model(out) -> str:
    """The method whose figures head the last line.

    The library's default recommender with its built-in selection (:func:`learned_model_scores`),
    mean over the model seeds.
    """
    return out["info"]["learned_name"]


def _learned_note(info) -> str:
    """What the library's built-in selection chose per seed, from its own held-out users."""
    lines = [f"{info['learned_name']}, per model seed (test R@20 / NDCG@100; what selection "
             "kept, with the blend weights and the Recall@20 of every entry on its own "
             "held-out training users):", ""]  # fmt: skip
    for seed, r in info["learned_per_seed"].items():
        chosen = r["chosen"]
        scores = ", ".join(f"{name} {value:.4f}"
                           for name, value in chosen["validation_recall@20"].items())  # fmt: skip
        weights = ", ".join(f"{name} {value:.3g}" for name, value in chosen["weights"].items())
        lines.append(f"- seed {seed}: {r['recall@20']:.4f} / {r['ndcg@100']:.4f}; kept "
                     f"**{chosen['chosen']}** ({weights}); validation {scores}.")  # fmt: skip
    return "\n".join(lines)


def format_table(out: dict) -> str:
    info = out["info"]
    lines = [
        (f"Ta-Feng users x items, strong generalisation: {out['n_users']} users with >= "
         f"{MIN_ITEMS} distinct history items ({out['n_train']} train / {out['n_val']} "
         f"validation / {out['n_test']} test, seed {SEED}), {out['n_items']} items in the train "
         "users' rows; 20% of each validation/test user's items hidden (seed 0), all items not "
         "in the other 80% ranked. Recall@k denominator min(k, hidden); NDCG@100 binary."),
        "",
        "| method | Recall@20 | Recall@50 | NDCG@100 | val Recall@20 | fit time |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in out["results"].items():
        val = f"{r['val']['recall@20']:.4f}" if r["val"] else "–"
        cells = [f"{r[m]:.4f}" + (f" ± {r['std'][m]:.4f}" if "std" in r else "")
                 for m in ("recall@20", "recall@50", "ndcg@100")]  # fmt: skip
        lines.append(f"| {name} | {' | '.join(cells)} | {val} | {r['fit_seconds']:.1f}s |")
    scores = ", ".join(f"{l2:g}: {s:.4f}" for l2, s in info["ease_l2_scores"].items())
    lines += [
        "",
        (f"EASE λ chosen on the validation users (R@20, in the order tried: {scores}): "
         f"**{info['ease_l2']:g}**. Its fit time above is that search "
         f"({len(info['ease_l2_scores'])} fits, the best kept); one EASE fit at a fixed λ on "
         f"{out['n_items']} items took {info['ease_single_fit_seconds']:.1f}s "
         f"({info['ease_single_fit_cpu_seconds']:.1f} CPU-seconds, float32)."),
        "",
        _learned_note(info),
        "",
        (f"Whole run {out['total_seconds']:.0f}s on {os.cpu_count()} CPU cores "
         f"({platform.processor() or platform.machine()}); other jobs shared the machine, so "
         "the times are upper bounds."),
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="datasets folder (holding tafeng/) or the tafeng folder itself")
    parser.add_argument("--no-write", action="store_true",
                        help="do not write results/tafeng_users.md")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="model seeds of the library's default (the split stays seed 0)")
    args = parser.parse_args(argv)

    from sklearn_basemodel.datasets import load_tafeng

    try:
        data = load_tafeng(args.data)
    except FileNotFoundError:
        print(f"skipped: Ta-Feng data not found under {args.data}")
        return 0
    out = run(data, seeds=tuple(args.seeds))
    table = format_table(out)
    print()
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("# Ta-Feng users x items benchmark (`benchmarks/tafeng_users.py`)\n\n"
                           + table + "\n")  # fmt: skip
    best, ease = out["results"][best_library_model(out)], out["results"]["EASE"]
    print(f"tafeng_users recall@20={best['recall@20']:.4f} ndcg@100={best['ndcg@100']:.4f} "
          f"ease_recall@20={ease['recall@20']:.4f} ease_ndcg@100={ease['ndcg@100']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
