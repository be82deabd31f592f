"""Ta-Feng next-basket recommendation under the shared protocol (issue #4).

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
train users' future baskets, never a val/test user's future basket.

Methods
-------
* GP-TopFreq: the user's own item frequency (number of history baskets holding the item), ties
  broken by global popularity (baskets holding the item, over all users' histories), topped up
  with the most popular items.
* EMDE, built with the library's public API only:

  1. ``CleoraEmbedder`` item vectors (iterations 1 and 3 concatenated) on every history basket
     as a hyperedge plus customer x item edges (all users' histories; no future basket).
  2. Every user's history gives self-supervised pairs: the baskets before position t -> basket
     t. Each prefix is encoded by a ``ColumnTransformer`` of three ``EMDESketcher``s over a
     DataFrame of list columns: the whole prefix decayed by ``basket_decay`` per basket
     (``half_life`` in baskets, ``time_input="age"``), the last basket alone, and a decayed
     random-vector sketch of the prefix (``RandomVectorEmbedder``, ID hashing).
  3. A ``SketchRecommender`` (residual net, geometric-mean decoding) is pretrained once on
     these pairs (they hold no future basket, so they serve every keyset), then, per keyset,
     copied and trained two more epochs (``partial_fit``) on the train users' whole history ->
     future basket.
  4. Decoding blends the network's distribution with the user's own decayed purchase
     frequency: ``history_mode="boost"``, ``history_blend="log"`` (score ``(1 - w) log p_model
     + w log(1 + h)``) with ``h`` = sum over the user's baskets holding the item of
     ``decay ** baskets_ago``. ``w`` and ``decay`` are chosen on the keyset's val users.

Output: a markdown table (printed and written to ``benchmarks/results/tafeng.md``), then the
last line ``tafeng recall@10=<x> ndcg@10=<y> recall@20=<z>`` (EMDE, mean of the keysets).
"""

from __future__ import annotations

import argparse
import ast
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


@dataclass
class Config:
    """Settings of the EMDE model (defaults: the full benchmark)."""

    cleora_dim: int = 1024  # per snapshot; iterations 1 and 3 concatenated
    cleora_iter: tuple = (1, 3)
    customer_edges: bool = True
    n_sketches: int = 12
    sketch_dim: int = 128
    random_dim: int = 64  # dimension of the random vectors of the ID-hashing sketch
    basket_decay: float = 0.9  # weight of a basket per basket of age, in the input sketches
    hidden_units: int = 512
    n_blocks: int = 2
    dropout: float = 0.3
    lr: float = 2e-3
    batch_size: int = 512
    epochs: int = 1  # pretraining on the history pairs
    finetune_epochs: int = 2  # per keyset, on the train users' history -> future
    finetune_lr: float = 1e-3
    history_weights: tuple = (0.4, 0.5, 0.6, 0.7)  # grid, tuned on val users
    history_decays: tuple = (0.9, 1.0)  # grid, tuned on val users
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


def decayed_frequency(rows: pd.DataFrame, decay: float) -> list:
    """Per row, item -> sum over the prefix baskets holding it of ``decay ** baskets_ago``."""
    from sklearn_basemodel.recipes import half_life_of_factor, history_weights

    return history_weights(rows["items"], rows["ages"], half_life_of_factor(decay))


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


# --------------------------------------------------------------------------- the model
def fit_item_vectors(history: pd.DataFrame, config: Config):
    """CleoraEmbedder on the history baskets (plus customer x item edges)."""
    from sklearn_basemodel import CleoraEmbedder

    params = dict(n_components=config.cleora_dim, n_iter=list(config.cleora_iter),
                  random_state=config.seed)  # fmt: skip
    if config.customer_edges:
        cleora = CleoraEmbedder(relations=["items", ("user_id", "items")], **params)
        return cleora.fit(history[["user_id", "items"]]), "items"
    return CleoraEmbedder(**params).fit(history["items"].rename("items")), None


def make_features(cleora, column, config: Config):
    """The behavioral profile: decayed history, last basket and decayed ID-hash sketches."""
    from sklearn_basemodel.recipes import behavioral_profile, half_life_of_factor

    return behavioral_profile(
        cleora, n_sketches=config.n_sketches, sketch_dim=config.sketch_dim, items="items",
        ages="ages", half_life=half_life_of_factor(config.basket_decay), last="last",
        id_dim=config.random_dim, id_random_state=config.seed, embedder_column=column,
        random_state=config.seed + 1,
    )  # fmt: skip


def make_recommender(cleora, column, config: Config):
    """The pretrainer: next-basket sketches decoded with the log blend of the own history."""
    from sklearn.frozen import FrozenEstimator

    from sklearn_basemodel import EMDESketcher
    from sklearn_basemodel.recipes import pretrainer

    target = EMDESketcher(FrozenEstimator(cleora), embedder_column=column,
                          n_sketches=config.n_sketches, sketch_dim=config.sketch_dim,
                          normalize="l1", random_state=config.seed + 4)  # fmt: skip
    return pretrainer(
        target, k=20, history_blend="log", hidden_units=config.hidden_units,
        n_blocks=config.n_blocks, dropout=config.dropout, lr=config.lr,
        batch_size=config.batch_size, max_epochs=config.epochs, random_state=config.seed,
    )  # fmt: skip


def tune_history_boost(recommender, X_val, val_rows, y_val, config: Config):
    """Choose (history_weight, decay) by Recall@10 (then NDCG@10) on the val users."""
    from sklearn_basemodel.recipes import tune_history_boost as tune

    histories = {decay: decayed_frequency(val_rows, decay) for decay in config.history_decays}
    return tune(recommender, X_val, y_val, histories, config.history_weights, k=10)


def gp_topfreq(history: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """GP-TopFreq (``baselines.PersonalFrequencyRecommender``) top-20 for the users' rows:
    own basket counts, ties and the rest by popularity over every history basket."""
    from sklearn_basemodel.baselines import PersonalFrequencyRecommender

    model = PersonalFrequencyRecommender().fit(history["items"])
    return model.predict(rows["items"], k=20)


def _log(message, start):
    print(f"[{time.perf_counter() - start:7.1f}s] {message}", flush=True)


def run(data, config: Config | None = None, keysets=(0, 1, 2), verbose=True) -> dict:
    """Fit and evaluate GP-TopFreq and EMDE on the given keysets of ``data``.

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
    dict with ``per_keyset`` (list of dicts: method -> metrics, plus tuned parameters and
    times), ``mean`` (method -> mean metrics over the keysets) and ``timing``.
    """
    import torch

    from sklearn_basemodel.recipes import fine_tune_recommender

    config = config or Config()
    torch.set_num_threads(config.threads)
    start = time.perf_counter()
    say = (lambda m: _log(m, start)) if verbose else (lambda m: None)
    history, future = data.history, data.future
    target_of = dict(zip(future["user_id"], future["items"]))
    timing = {}

    t0 = time.perf_counter()
    cleora, column = fit_item_vectors(history, config)
    timing["cleora"] = time.perf_counter() - t0
    say(f"Cleora: {cleora.embeddings_.shape} in {timing['cleora']:.1f}s")

    t0 = time.perf_counter()
    examples = user_examples(history)
    full = examples[examples["is_full"]].set_index("key", drop=False)
    pairs = examples[~examples["is_full"]].reset_index(drop=True)
    features = make_features(cleora, column, config).fit(full)  # vocabulary: all histories
    X_pairs = features.transform(pairs)
    timing["sketches"] = time.perf_counter() - t0
    say(f"sketches: {X_pairs.shape[0]} history pairs, {X_pairs.shape[1]} features in "
        f"{timing['sketches']:.1f}s")  # fmt: skip

    t0 = time.perf_counter()
    base = make_recommender(cleora, column, config)
    base.fit(X_pairs, pairs["target"].tolist())
    timing["pretrain"] = time.perf_counter() - t0
    say(f"pretrained on history pairs in {timing['pretrain']:.1f}s "
        f"(loss {base.history[-1, 'train_loss']:.4f})")  # fmt: skip

    per_keyset = []
    for index in keysets:
        split = data.keysets[index]
        result = {"keyset": index}
        test_rows = full.loc[split["test"]]
        val_rows = full.loc[split["val"]]
        train_rows = full.loc[split["train"]]
        y_test = [target_of[u] for u in split["test"]]
        y_val = [target_of[u] for u in split["val"]]

        t0 = time.perf_counter()
        result["GP-TopFreq"] = ranking_metrics(y_test, gp_topfreq(history, test_rows))
        timing_gp = time.perf_counter() - t0

        X_test = features.transform(test_rows)
        X_val = features.transform(val_rows)
        models = [("pretrained", base)]
        t0 = time.perf_counter()
        if config.finetune_epochs:
            tuned = fine_tune_recommender(
                base, features.transform(train_rows), [target_of[u] for u in split["train"]],
                max_epochs=config.finetune_epochs, lr=config.finetune_lr,
            )  # fmt: skip
            models.append(("fine-tuned", tuned))
        result["finetune_seconds"] = time.perf_counter() - t0

        # the boost is tuned for the final model; the pretrained one reuses its setting
        weight, decay, grid = tune_history_boost(models[-1][1], X_val, val_rows, y_val, config)
        result["tuned"] = {"history_weight": weight, "decay": decay, "grid": grid}
        test_history = decayed_frequency(test_rows, decay)
        for name, model in models:
            model.set_params(history_mode="ignore")
            result[f"EMDE {name}, model only"] = ranking_metrics(y_test, model.predict(X_test))
            model.set_params(history_mode="boost", history_weight=weight)
            top = model.predict(X_test, history=test_history)
            result[f"EMDE {name} + history boost"] = ranking_metrics(y_test, top)
        result["gp_seconds"] = timing_gp
        per_keyset.append(result)
        best = result[f"EMDE {models[-1][0]} + history boost"]
        say(f"keyset {index}: EMDE recall@10={best['recall@10']:.4f} "
            f"ndcg@10={best['ndcg@10']:.4f}; GP-TopFreq "
            f"{result['GP-TopFreq']['recall@10']:.4f} / {result['GP-TopFreq']['ndcg@10']:.4f}; "
            f"w={weight}, decay={decay}")  # fmt: skip

    methods = [m for m in per_keyset[0] if isinstance(per_keyset[0][m], dict)
               and "recall@10" in per_keyset[0][m]]  # fmt: skip
    mean = {m: {k: float(np.mean([r[m][k] for r in per_keyset])) for k in METRICS}
            for m in methods}  # fmt: skip
    timing["finetune_per_keyset"] = float(np.mean([r["finetune_seconds"] for r in per_keyset]))
    timing["total"] = time.perf_counter() - start
    final = "EMDE fine-tuned + history boost" if config.finetune_epochs else (
        "EMDE pretrained + history boost")
    return {"per_keyset": per_keyset, "mean": mean, "timing": timing, "final": final,
            "config": config, "keysets": list(keysets)}  # fmt: skip


# --------------------------------------------------------------------------- report
def _cell(value):
    return "–" if value is None else f"{value:.4f}".lstrip("0")


def format_table(results: dict) -> str:
    timing, config = results["timing"], results["config"]
    shared = timing["cleora"] + timing["sketches"] + timing["pretrain"]
    n = len(results["keysets"])
    lines = [
        f"Ta-Feng next basket, test users, mean of keysets {results['keysets']} "
        "(sklearn_basemodel.metrics).",
        "",
        "| method | Recall@10 | NDCG@10 | PHR@10 | Recall@20 | NDCG@20 | PHR@20 | fit time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fit_time = {
        "GP-TopFreq": f"{np.mean([r['gp_seconds'] for r in results['per_keyset']]):.1f}s",
        "EMDE pretrained, model only": f"{shared:.0f}s",
        "EMDE pretrained + history boost": f"{shared:.0f}s",
        "EMDE fine-tuned, model only": f"{shared:.0f}s + {timing['finetune_per_keyset']:.0f}s",
        "EMDE fine-tuned + history boost": (
            f"{shared:.0f}s + {timing['finetune_per_keyset']:.0f}s"),
    }
    for method, values in results["mean"].items():
        label = f"**{method}**" if method == results["final"] else method
        if method == "GP-TopFreq":
            label = "GP-TopFreq (computed here)"
        cells = " | ".join(_cell(values[k]) for k in METRICS)
        lines.append(f"| {label} | {cells} | {fit_time.get(method, '')} |")
    for method, values in REFERENCE.items():
        lines.append(f"| {method} | {' | '.join(_cell(v) for v in values)} | |")
    final = results["mean"][results["final"]]
    lines += [
        "",
        "Per keyset (Recall@10 / NDCG@10 of the final model; tuned on val users):",
        "",
        "| keyset | GP-TopFreq | EMDE | history_weight | decay |",
        "|---|---|---|---|---|",
    ]
    for r in results["per_keyset"]:
        gp, em, tuned = r["GP-TopFreq"], r[results["final"]], r["tuned"]
        lines.append(f"| {r['keyset']} | {_cell(gp['recall@10'])} / {_cell(gp['ndcg@10'])} | "
                     f"{_cell(em['recall@10'])} / {_cell(em['ndcg@10'])} | "
                     f"{tuned['history_weight']} | {tuned['decay']} |")  # fmt: skip
    verdict = " and ".join(
        f"{k} {final[k]:.4f} {'>' if final[k] > v else '<='} {v:.4f}" for k, v in TARGET.items()
    )
    cfg = asdict(config)
    lines += [
        "",
        f"Target (beat GP-TopFreq reference): {verdict}.",
        "",
        f"Fit time: Cleora {timing['cleora']:.0f}s, sketches {timing['sketches']:.0f}s, "
        f"pretraining {timing['pretrain']:.0f}s (shared by the keysets: history pairs only), "
        f"fine-tuning {timing['finetune_per_keyset']:.0f}s per keyset; whole run "
        f"{timing['total']:.0f}s ({n} keyset(s), {config.threads} torch threads, "
        f"{platform.processor() or platform.machine()}).",
        "",
        f"Config: {cfg}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="datasets folder (holding tafeng/) or the tafeng folder itself")
    parser.add_argument("--keysets", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE",
                        help="override Config fields, e.g. --set hidden_units=512 epochs=1")
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
    config = Config()
    for item in args.set:
        name, value = item.split("=", 1)
        if not hasattr(config, name):
            parser.error(f"unknown Config field {name!r}")
        setattr(config, name, ast.literal_eval(value))
    results = run(data, config, keysets=tuple(args.keysets))
    table = format_table(results)
    print()
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("# Ta-Feng next-basket benchmark (`benchmarks/tafeng.py`)\n\n"
                           + table + "\n")  # fmt: skip
    final = results["mean"][results["final"]]
    print(f"tafeng recall@10={final['recall@10']:.4f} ndcg@10={final['ndcg@10']:.4f} "
          f"recall@20={final['recall@20']:.4f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
