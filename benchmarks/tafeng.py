"""Ta-Feng next-basket recommendation under the shared protocol (issues #4 and #10).

How to run
----------
    .venv/bin/python benchmarks/tafeng.py                  # full run, three keysets
    .venv/bin/python benchmarks/tafeng.py --data PATH      # folder holding tafeng/
    .venv/bin/python benchmarks/tafeng.py --keysets 0      # one keyset only (not the protocol)

Without the data (``../shared/datasets`` next to the project, or ``--data``) it prints
``skipped: ...`` and exits 0.

Protocol (``shared/datasets/README.md``)
-----------------------------------------
For each test user of a keyset, rank the items given the user's history baskets; the target is
the user's future basket. Recall@k, NDCG@k (binary relevance, ideal DCG over min(|target|, k)
positions) and PHR@k (share of users with a hit), from ``sklearn_basemodel.metrics``, averaged
over the test users and then over the three keysets. Training may use any user's history and the
train users' future baskets, never a val/test user's future basket; the val users' future
baskets choose settings.

One configuration (issue #10)
-----------------------------
Every model is built with the library's defaults; the script sets only the protocol (keysets,
k, seed, threads). What the data is (its ``items``, ``ages`` and ``last`` columns) is passed;
how to model it is not. Settings are chosen only by the library's built-in selection, on
held-out rows, and reported:

* early stopping of every network on 10% of its training rows (``early_stopping=True``);
* the history boost's weight, half-life and blend, by ``recipes.tune_history_boost`` on the
  keyset's val users over ``HISTORY_WEIGHTS`` x ``HISTORY_HALF_LIVES`` x its default blends
  (linear, log) (the same fixed grid as ``benchmarks/yoochoose.py``);
* ``HistoryRanker`` or that boost, by 5-fold cross-validation over the val users;
* ``selection.BlendedRecommender`` (default candidates: popularity, own history, item kNN,
  EASE and the learned ``HistoryRecommender``), which learns its blend on held-out train users.

Methods
-------
* GP-TopFreq (``baselines.PersonalFrequencyRecommender``): the user's own item frequency, ties
  broken by global popularity, topped up with the most popular items.
* ``BlendedRecommender`` fitted on the train users' histories -> future baskets.
* EMDE: ``CleoraEmbedder()`` item vectors on every history basket (all users' histories; no
  future basket); ``recipes.behavioral_profile`` of every prefix of every user's history (the
  history and the last basket sketched); ``recipes.pretrainer`` (a ``SketchRecommender``)
  pretrained once on the self-supervised pairs prefix -> next history basket (they hold no
  future basket, so they serve every keyset), then per keyset a copy trained further on the
  train users' whole history -> future basket (``recipes.fine_tune_recommender`` with its
  defaults: the estimator's own ``max_epochs``, the learning rate chosen on the early-stopping
  rows, walking down from the estimator's own); decoded alone ("model only") and with the
  user's own decayed purchases blended in (``history_mode="boost"``, tuned as above); and, the
  final recipe, the fine-tuned model's candidates re-ranked with the user's own histories by
  ``history_ranker.HistoryRanker`` (its defaults; learned on the val users, item popularity
  and repeat rates counted on the self-supervised pairs), which keeps the tuned boost instead
  where the ranker does not validate better (out of fold, on the val users).

Output: a markdown table (printed and written to ``benchmarks/results/tafeng.md``), then the
last line ``tafeng recall@10=<x> ndcg@10=<y> model_recall@10=<z>`` (EMDE with the history
ranker, and EMDE alone; means over the keysets).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
RESULTS = Path(__file__).resolve().parent / "results" / "tafeng.md"
METRICS = ("recall@10", "ndcg@10", "phr@10", "recall@20", "ndcg@20", "phr@20")

# The grid of the history boost's selection, the same in every benchmark script: weights of
# the own history in the blend, and half-lives in steps (baskets here, clicks in YooChoose);
# None counts every past purchase once. The weights go on to 0.95 because the selection, on the
# val users, chose the last one (0.7, log blend) on two of the three keysets.
HISTORY_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 0.85, 0.95)
HISTORY_HALF_LIVES = (1.0, 4.0, None)

# Reference numbers of shared/datasets/README.md (same keysets, test users, mean of 3):
# Recall@10, NDCG@10, PHR@10, Recall@20, NDCG@20 (PHR@20 not published).
REFERENCE = {
    "GP-TopFreq (reference)": (0.1364, 0.1227, 0.4200, 0.1864, 0.1369, None),
    "TIFU-KNN, re-implemented, best of a grid (reference)": (
        0.1360, 0.1224, 0.4177, 0.1893, 0.1377, None,
    ),
    "TIFU-KNN, authors' code (reference)": (0.1287, 0.1037, 0.3948, 0.1857, 0.1256, None),
}
TARGET = {"recall@10": 0.1364, "ndcg@10": 0.1227}
BOOSTED = "EMDE fine-tuned + history boost"
FINAL = "EMDE fine-tuned + history ranker (`HistoryRanker`, or the boost where it validates better)"
MODEL_ONLY = "EMDE fine-tuned, model only"
BLEND = "BlendedRecommender (library selection)"


@dataclass
class Config:
    """The protocol; every model setting is the library's default (module docstring).

    ``k`` is the cut-off the history boost's selection optimises (Recall@k, then NDCG@k); the
    models rank 20 items for the @20 metrics.
    """

    k: int = 10
    seed: int = 0
    threads: int = 2


# --------------------------------------------------------------------------- data
def user_examples(history: pd.DataFrame) -> pd.DataFrame:
    """Every prefix of every user's history baskets (``recipes.sequence_examples``), keyed by
    ``user_id`` (users in id order)."""
    from sklearn_basemodel.recipes import sequence_examples

    users = history.groupby("user_id", sort=True)["items"]
    keys = [user for user, _ in users]
    return sequence_examples([list(baskets) for _, baskets in users], keys=keys)


def candidate_histories(rows: pd.DataFrame) -> dict:
    """Half-life -> each row's own decayed purchases (``recipes.history_weights``)."""
    from sklearn_basemodel.recipes import history_weights

    return {hl: history_weights(rows["items"], rows["ages"], hl) for hl in HISTORY_HALF_LIVES}


# --------------------------------------------------------------------------- evaluation
def ranking_metrics(y_true, top) -> dict:
    """Recall/NDCG/PHR at 10 and 20 with the library's metrics; ``top`` ranked best first."""
    from sklearn_basemodel.metrics import hit_rate_at_k, ndcg_at_k, recall_at_k

    out = {}
    for k in (10, 20):
        out[f"recall@{k}"] = recall_at_k(y_true, top, k=k)
        out[f"ndcg@{k}"] = ndcg_at_k(y_true, top, k=k)
        out[f"phr@{k}"] = hit_rate_at_k(y_true, top, k=k)
    return out


# --------------------------------------------------------------------------- the models
def make_features(history: pd.DataFrame, config: Config):
    """Default Cleora vectors on the history baskets, and the default behavioral profile."""
    from sklearn_basemodel import CleoraEmbedder
    from sklearn_basemodel.recipes import behavioral_profile

    cleora = CleoraEmbedder(random_state=config.seed).fit(history["items"].rename("items"))
    # no ``ages``: the profile's default is no decay (``half_life=None``)
    # sketch widths: the default "auto", sized from the number of items
    return cleora, behavioral_profile(cleora, items="items", last="last",
                                      random_state=config.seed)  # fmt: skip


def make_recommender(features, config: Config):
    """The default pretrainer, decoding with the profile's last-basket sketcher (same codes),
    with early stopping."""
    from sklearn_basemodel.recipes import pretrainer

    return pretrainer(features.named_transformers_["last_basket"], k=20, early_stopping=True,
                      random_state=config.seed)  # fmt: skip


def gp_topfreq(history: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """GP-TopFreq (``baselines.PersonalFrequencyRecommender``) top-20 for the users' rows:
    own basket counts, ties and the rest by popularity over every history basket."""
    from sklearn_basemodel.baselines import PersonalFrequencyRecommender

    model = PersonalFrequencyRecommender().fit(history["items"])
    return model.predict(rows["items"], k=20)


def blended(train_rows, y_train, test_rows, config: Config):
    """``BlendedRecommender`` with its defaults, on the train users' histories -> futures."""
    from sklearn_basemodel.selection import BlendedRecommender

    model = BlendedRecommender(k=config.k, random_state=config.seed)
    model.fit(train_rows["items"].tolist(), y_train)
    return model, model.predict(test_rows["items"].tolist(), k=20)


def _log(message, start):
    print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)


def run(data, config: Config | None = None, keysets=(0, 1, 2), verbose=True) -> dict:
    """Fit and evaluate GP-TopFreq, the blend and EMDE on the given keysets of ``data``.

    Parameters
    ----------
    data : Bunch
        As returned by ``sklearn_basemodel.datasets.load_tafeng`` (``history``, ``future``,
        ``keysets``).
    config : Config, default=None
    keysets : sequence of int
    verbose : bool

    Returns
    -------
    dict with ``per_keyset`` (list of dicts: method -> metrics, plus the chosen settings and
    times), ``mean`` (method -> mean metrics over the keysets) and ``timing``.
    """
    import torch

    from sklearn_basemodel.history_ranker import HistoryRanker
    from sklearn_basemodel.recipes import fine_tune_recommender

    config = config or Config()
    torch.set_num_threads(config.threads)
    start = time.perf_counter()
    say = (lambda m: _log(m, start)) if verbose else (lambda m: None)
    history, future = data.history, data.future
    target_of = dict(zip(future["user_id"], future["items"]))
    timing = {}

    t0 = time.perf_counter()
    cleora, features = make_features(history, config)
    examples = user_examples(history)
    full = examples[examples["is_full"]].set_index("key", drop=False)
    pairs = examples[~examples["is_full"]].reset_index(drop=True)
    features.fit(full)  # vocabulary: all histories
    X_pairs = features.transform(pairs)
    # the pairs also count how often each item is bought, and bought again, for the ranker
    item_rows = (pairs["items"].tolist(), pairs["target"].tolist())
    timing["features"] = time.perf_counter() - t0
    say(f"Cleora {cleora.embeddings_.shape}, profile: {X_pairs.shape[0]} history pairs x "
        f"{X_pairs.shape[1]} features in {timing['features']:.1f}s")  # fmt: skip

    t0 = time.perf_counter()
    base = make_recommender(features, config)
    base.fit(X_pairs, pairs["target"].tolist())
    timing["pretrain"] = time.perf_counter() - t0
    say(f"pretrained on history pairs in {timing['pretrain']:.1f}s, {len(base.history)} "
        f"epochs (valid loss {base.history[-1, 'valid_loss']:.4f})")  # fmt: skip

    per_keyset = []
    for index in keysets:
        split = data.keysets[index]
        result = {"keyset": index}
        test_rows, val_rows = full.loc[split["test"]], full.loc[split["val"]]
        train_rows = full.loc[split["train"]]
        y_test = [target_of[u] for u in split["test"]]
        y_val = [target_of[u] for u in split["val"]]
        y_train = [target_of[u] for u in split["train"]]

        t0 = time.perf_counter()
        result["GP-TopFreq"] = ranking_metrics(y_test, gp_topfreq(history, test_rows))
        result["gp_seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        blend, top = blended(train_rows, y_train, test_rows, config)
        result[BLEND] = ranking_metrics(y_test, top)
        result["blend_seconds"] = time.perf_counter() - t0
        result["blend_chosen"] = blend.chosen_, {n: round(w, 3) for n, w in blend.weights_.items()}

        X_test, X_val = features.transform(test_rows), features.transform(val_rows)
        t0 = time.perf_counter()
        tuned = fine_tune_recommender(base, features.transform(train_rows), y_train)
        result["finetune_seconds"] = time.perf_counter() - t0
        result["finetune_epochs"] = len(tuned.history) - len(base.history)

        # the ranker (and the boost it falls back to) are chosen on the val users for the final
        # model; the pretrained one reuses the boost's setting
        t0 = time.perf_counter()
        ranker = HistoryRanker(tuned, k=config.k, boost_weights=HISTORY_WEIGHTS,
                               random_state=config.seed)  # fmt: skip
        ranker.fit(X_val, y_val, candidate_histories(val_rows), item_rows=item_rows)
        result["ranker_seconds"] = time.perf_counter() - t0
        boost = ranker.boost_
        weight, half_life, blend_mode = (boost["history_weight"], boost["history"],
                                         boost["history_blend"])  # fmt: skip
        result["chosen"] = {"history_weight": weight, "half_life": half_life,
                            "history_blend": blend_mode,
                            "item_prior_strength": tuned.item_prior_strength_,
                            "fine_tune_lr": tuned.fine_tuning_lr_, "ranker": ranker.kept_,
                            "ranker_cv": ranker.cv_score_,
                            "boost_val": ranker.boost_score_}  # fmt: skip
        test_histories = candidate_histories(test_rows)
        test_history = test_histories[half_life]
        for name, model in (("pretrained", base), ("fine-tuned", tuned)):
            model.set_params(history_mode="ignore")
            result[f"EMDE {name}, model only"] = ranking_metrics(y_test, model.predict(X_test))
            model.set_params(history_mode="boost", history_weight=weight,
                             history_blend=blend_mode)  # fmt: skip
            top = model.predict(X_test, history=test_history)
            result[f"EMDE {name} + history boost"] = ranking_metrics(y_test, top)
        result[FINAL] = ranking_metrics(y_test, ranker.predict(X_test, test_histories, k=20))
        per_keyset.append(result)
        best = result[FINAL]
        say(f"keyset {index}: EMDE recall@10={best['recall@10']:.4f} "
            f"ndcg@10={best['ndcg@10']:.4f}; GP-TopFreq {result['GP-TopFreq']['recall@10']:.4f}"
            f"; blend {result[BLEND]['recall@10']:.4f}; chosen weight={weight}, "
            f"half-life={half_life}, history_blend={blend_mode}")  # fmt: skip

    methods = [m for m in per_keyset[0] if isinstance(per_keyset[0][m], dict)
               and "recall@10" in per_keyset[0][m]]  # fmt: skip
    mean = {m: {k: float(np.mean([r[m][k] for r in per_keyset])) for k in METRICS}
            for m in methods}  # fmt: skip
    for name in ("finetune", "gp", "blend", "ranker"):
        timing[f"{name}_per_keyset"] = float(np.mean([r[f"{name}_seconds"] for r in per_keyset]))
    timing["total"] = time.perf_counter() - start
    return {"per_keyset": per_keyset, "mean": mean, "timing": timing, "config": config,
            "keysets": list(keysets), "pretrain_epochs": len(base.history)}  # fmt: skip


# --------------------------------------------------------------------------- report
def _cell(value):
    return "–" if value is None else f"{value:.4f}".lstrip("0")


def _fit_times(results) -> dict:
    timing = results["timing"]
    shared = f"{timing['features'] + timing['pretrain']:.0f}s"
    tuned = f"{shared} + {timing['finetune_per_keyset']:.0f}s"
    return {"GP-TopFreq": f"{timing['gp_per_keyset']:.1f}s",
            BLEND: f"{timing['blend_per_keyset']:.0f}s",
            "EMDE pretrained, model only": shared, "EMDE pretrained + history boost": shared,
            MODEL_ONLY: tuned, BOOSTED: tuned,
            FINAL: f"{tuned} + {timing['ranker_per_keyset']:.0f}s"}  # fmt: skip


def format_table(results: dict) -> str:
    timing, config = results["timing"], results["config"]
    lines = [
        (f"Ta-Feng next basket, test users, mean of keysets {results['keysets']} "
        "(sklearn_basemodel.metrics). One configuration: the library's defaults plus its "
        "built-in selection (no setting chosen on test users)."),
        "",
        "| method | Recall@10 | NDCG@10 | PHR@10 | Recall@20 | NDCG@20 | PHR@20 | fit time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fit_time = _fit_times(results)
    for method, values in results["mean"].items():
        label = f"**{method}**" if method == FINAL else method
        if method == "GP-TopFreq":
            label = "GP-TopFreq (computed here)"
        cells = " | ".join(_cell(values[k]) for k in METRICS)
        lines.append(f"| {label} | {cells} | {fit_time.get(method, '')} |")
    for method, values in REFERENCE.items():
        lines.append(f"| {method} | {' | '.join(_cell(v) for v in values)} | |")
    lines += [
        "",
        (f"Settings chosen by the built-in selection (history boost on the val users, by "
        f"Recall@{config.k} then NDCG@{config.k}, over weights {list(HISTORY_WEIGHTS)} x "
        f"half-lives {list(HISTORY_HALF_LIVES)} baskets x history_blend linear / log; the "
        "`HistoryRanker` kept where its Recall@10 / NDCG@10 on val users it did not train on "
        "(5 folds) beats the boost's on the val users it was chosen on; early "
        "stopping; the item prior's strength and the fine-tuning's learning rate on the "
        "fine-tuning's early-stopping rows (fine-tune lr 0: the pretrained network validated "
        "better there and was kept unchanged); the blend on held-out train users), with "
        "Recall@10 / NDCG@10 of the final model:"),
        "",
        ("| keyset | GP-TopFreq | EMDE + ranker | EMDE + boost | kept (val users: ranker out of "
        "fold / boost) | history_weight | half-life | history_blend "
        "| item prior strength | fine-tune lr | fine-tune epochs | blend chose (weights) |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["per_keyset"]:
        gp, em, chosen = r["GP-TopFreq"], r[FINAL], r["chosen"]
        boosted = r[BOOSTED]
        blend, weights = r["blend_chosen"]
        kept = (f"{chosen['ranker']} ({'/'.join(_cell(v) for v in chosen['ranker_cv'])} vs "
                f"{'/'.join(_cell(v) for v in chosen['boost_val'])})")  # fmt: skip
        lines.append(f"| {r['keyset']} | {_cell(gp['recall@10'])} / {_cell(gp['ndcg@10'])} | "
                     f"{_cell(em['recall@10'])} / {_cell(em['ndcg@10'])} | "
                     f"{_cell(boosted['recall@10'])} / {_cell(boosted['ndcg@10'])} | {kept} | "
                     f"{chosen['history_weight']} | {chosen['half_life']} | "
                     f"{chosen['history_blend']} | {chosen['item_prior_strength']} | "
                     f"{chosen['fine_tune_lr']:g} | {r['finetune_epochs']} | {blend} "
                     f"({weights}) |")  # fmt: skip
    final = results["mean"][FINAL]
    verdict = " and ".join(
        f"{k} {final[k]:.4f} {'>' if final[k] > v else '<='} {v:.4f}" for k, v in TARGET.items()
    )
    lines += [
        "",
        f"Target (beat GP-TopFreq reference): {verdict}.",
        "",
        (f"Fit time: Cleora and profile {timing['features']:.0f}s, pretraining "
        f"{timing['pretrain']:.0f}s ({results['pretrain_epochs']} epochs, early stopping; "
        f"shared by the keysets: history pairs only), fine-tuning "
        f"{timing['finetune_per_keyset']:.0f}s per keyset; whole run {timing['total']:.0f}s "
        f"({len(results['keysets'])} keyset(s), {config.threads} torch threads, "
        f"{platform.processor() or platform.machine()})."),
        "",
        f"Protocol: {asdict(config)}; every model setting: the library's defaults.",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="datasets folder (holding tafeng/) or the tafeng folder itself")
    parser.add_argument("--keysets", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=Config.threads, help="torch threads")
    parser.add_argument("--no-write", action="store_true", help="do not write results/tafeng.md")
    args = parser.parse_args(argv)

    from sklearn_basemodel.datasets import load_tafeng

    try:
        data = load_tafeng(args.data)
    except FileNotFoundError:
        print(f"skipped: Ta-Feng data not found under {args.data}")
        return 0
    import warnings

    from sklearn_basemodel.exceptions import UnknownEntityWarning

    warnings.simplefilter("ignore", UnknownEntityWarning)
    results = run(data, Config(threads=args.threads), keysets=tuple(args.keysets))
    table = format_table(results)
    print()
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("# Ta-Feng next-basket benchmark (`benchmarks/tafeng.py`)\n\n"
                           + table + "\n")  # fmt: skip
    final, alone = results["mean"][FINAL], results["mean"][MODEL_ONLY]
    print(f"tafeng recall@10={final['recall@10']:.4f} ndcg@10={final['ndcg@10']:.4f} "
          f"model_recall@10={alone['recall@10']:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
