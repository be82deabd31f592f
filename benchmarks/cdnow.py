"""CDNOW holdout-purchase (churn) prediction under the shared protocol (issue #4).

How to run
----------
    .venv/bin/python benchmarks/cdnow.py                  # full run (about a minute on 2 cores)
    .venv/bin/python benchmarks/cdnow.py --data PATH      # folder holding cdnow/

Without the data (``../shared/datasets`` next to the project, or ``--data``) it prints
``skipped: ...`` and exits 0.

Protocol (``shared/datasets/README.md``)
-----------------------------------------
``CDNOW_sample.txt`` (2,357 customers). Features from the calibration period only (up to
1997-09-30); label: any purchase in the holdout 1997-10-01 .. 1998-06-30 (base rate 29.0%).
ROC AUC of out-of-fold scores, ``StratifiedKFold(5, shuffle=True, random_state=0)`` over the
customers; the table shows the mean (and std) of the five fold AUCs and the AUC of the pooled
out-of-fold scores over all 2,357 customers.

One configuration (issue #10)
-----------------------------
Every model of ours is built with the library's defaults; the script sets only the protocol
(folds, seed, the cut-offs of the self-supervised rows, threads) and says what the data is (the
``tokens`` column, the RFM columns). Settings are chosen only by the library's built-in
selection: early stopping of every network on 10% of its training rows, and
``pretrained_fallback`` (the fine-tuned network is also trained from scratch and the one with
the lower validation loss is kept; which one is reported). Baselines keep their own settings.

Representation
--------------
One row per customer at a cut-off date: RFM columns (repeat purchase days, recency, tenure,
mean spend per purchase day, CDs bought, and the ``horizon``) scaled by ``recipes.rfm_scaler``,
beside the sketch of the customer's purchase days, each day coded by three tokens (``buy``,
number of CDs, a dollar bucket): ``recipes.behavioral_profile`` with its defaults on
``CleoraEmbedder()`` vectors of the tokens (fitted on the customers' calibration-period
token lists: no label involved).

Self-supervised pairs (the BaseModel recipe): the same representation at earlier cut-off dates
inside the calibration period (ten cut-offs, every 14 days from 1997-04-15 to 1997-08-19),
labelled by a purchase between the cut-off and the end of the calibration period. They use no
holdout data, so every fold may train on them (for all customers, like the Ta-Feng history
pairs); the ``horizon`` column (days to the end of the label window) tells them apart from the
real rows.

Methods. Baselines: the decayed purchase-day count (60-day half-life, no fitting), RFM +
HistGradientBoosting (depth 3, learning rate 0.05, 200 iterations: the defaults overfit 1,900
rows, AUC .723), RFM + logistic regression on log features (C=0.01), real labels only. Ours,
on the profile: scikit-learn's ``LogisticRegression()`` (its defaults) on the real labels
only and on self-supervised pairs + labels; the library's ``SketchClassifier`` (defaults,
early stopping) on the real labels only; ``recipes.rfm_network`` (the small network on the
RFM columns alone that the workflow weighs for every task; early stopping) on the real labels
only; ``blending.BlendedClassifier`` of those two and gradient boosting on RFM (its defaults),
the library's selection for such tasks, on the real labels only; and the recipe's fine-tuner
(``recipes.fine_tuner``): a ``SketchClassifier`` pretrained once on the self-supervised pairs
(every fold may use them), fine-tuned per fold on the real labels with
``pretrained_fallback``.

Output: a markdown table (printed and written to ``benchmarks/results/cdnow.md``), then the last
line ``cdnow auc=<x>`` (EMDE + RFM, logistic regression on self-supervised pairs + labels; mean
of the fold AUCs).
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
RESULTS = Path(__file__).resolve().parent / "results" / "cdnow.md"
CALIBRATION_END = pd.Timestamp("1997-09-30")
HOLDOUT_END = pd.Timestamp("1998-06-30")
REFERENCE = {
    "Pareto/NBD (lifetimes, expected holdout purchases) (reference)": 0.7787,
    "BG/NBD (lifetimes, expected holdout purchases) (reference)": 0.7725,
    "naive rate (calibration rate x holdout length) (reference)": 0.7598,
}
TARGET = 0.7787
RFM_COLUMNS = ["repeat_days", "recency", "tenure", "mean_spend", "cds"]
DOLLAR_BUCKETS = [10, 15, 20, 30, 50, 80, 120]
FINAL = "EMDE + RFM, logistic regression (self-supervised pairs + labels)"
RFM_NETWORK = ("RFM, SketchClassifier (`recipes.rfm_network`: 64 units, no residual block; "
               "the workflow's RFM network) (labels only)")
BLENDED = ("`BlendedClassifier` of the three (the SketchClassifier on EMDE + RFM, the RFM "
           "network, gradient boosting on RFM with its defaults), chosen on 20% of each "
           "training fold (labels only)")
FINE_TUNED = ("EMDE + RFM, SketchClassifier pretrained on the self-supervised pairs, fine-tuned "
              "on the labels (pretrained_fallback)")


BASELINE_HALF_LIFE_DAYS = 60.0  # of the no-fitting decayed-count baseline
BASELINE_C = 0.01  # of the RFM + logistic regression baseline


@dataclass
class Config:
    """The protocol; every setting of our models is the library's default (module docstring)."""

    pretext_start: str = "1997-04-15"  # first self-supervised cut-off
    pretext_step_days: int = 14
    n_splits: int = 5
    seed: int = 0
    threads: int = 2


# --------------------------------------------------------------------------- data
def customer_table(purchases: pd.DataFrame, cutoff, label_end, customers=None) -> pd.DataFrame:
    """One row per customer with a purchase up to ``cutoff``: features and label.

    Parameters
    ----------
    purchases : DataFrame
        ``customer_id``, ``date``, ``number_of_cds``, ``dollar_value`` (``load_cdnow``).
    cutoff : Timestamp
        Features use the purchases up to this day (inclusive).
    label_end : Timestamp
        Label = any purchase in ``(cutoff, label_end]``.
    customers : array-like, default=None
        Customers to keep (all customers with a purchase up to ``cutoff`` by default).

    Returns
    -------
    DataFrame indexed by ``customer_id``: the ``RFM_COLUMNS``, ``tokens`` and ``ages`` (parallel
    lists: three tokens per purchase day and its age in days), ``horizon`` (days in the label
    window) and ``label`` (0/1).
    """
    cutoff, label_end = pd.Timestamp(cutoff), pd.Timestamp(label_end)
    past = purchases[purchases["date"] <= cutoff]
    days = past.groupby(["customer_id", "date"], sort=True).agg(
        cds=("number_of_cds", "sum"), spend=("dollar_value", "sum")
    ).reset_index()
    days["age"] = (cutoff - days["date"]).dt.days
    bucket = np.digitize(days["spend"].to_numpy(), DOLLAR_BUCKETS)
    days["tokens"] = [
        ["buy", f"cds_{min(int(c), 6)}", f"usd_{int(b)}"] for c, b in zip(days["cds"], bucket)
    ]
    days["ages"] = [[int(a)] * 3 for a in days["age"]]
    by = days.groupby("customer_id")
    table = pd.DataFrame({
        "repeat_days": by.size() - 1,
        "recency": (cutoff - by["date"].max()).dt.days,
        "tenure": (cutoff - by["date"].min()).dt.days,
        "mean_spend": by["spend"].mean(),
        "cds": by["cds"].sum(),
        "tokens": by["tokens"].sum(),
        "ages": by["ages"].sum(),
    })  # fmt: skip
    if customers is not None:
        table = table.reindex(pd.Index(customers, name="customer_id"))
        if table["tokens"].isna().any():
            raise ValueError(f"Some customers have no purchase up to {cutoff.date()}.")
    table["horizon"] = (label_end - cutoff).days
    future = purchases[(purchases["date"] > cutoff) & (purchases["date"] <= label_end)]
    table["label"] = table.index.isin(future["customer_id"].unique()).astype(int)
    return table


def pretext_table(purchases: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Self-supervised rows: cut-offs inside the calibration period, labels up to its end."""
    cutoffs = pd.date_range(config.pretext_start, CALIBRATION_END - pd.Timedelta(days=30),
                            freq=f"{config.pretext_step_days}D")  # fmt: skip
    return pd.concat([customer_table(purchases, c, CALIBRATION_END) for c in cutoffs])


# --------------------------------------------------------------------------- models
def item_vectors(table: pd.DataFrame, config: Config):
    """``CleoraEmbedder()`` on the customers' token lists (no label involved)."""
    from sklearn_basemodel import CleoraEmbedder

    return CleoraEmbedder(random_state=config.seed).fit(table["tokens"].rename("tokens"))


def make_features(vectors, config: Config, rfm_only=False):
    """The default behavioral profile: the token sketch and the RFM columns (+ horizon); or
    the baseline's log RFM columns alone."""
    from sklearn.compose import ColumnTransformer

    from sklearn_basemodel.recipes import behavioral_profile, rfm_scaler

    if rfm_only:  # all RFM columns are non-negative: the recipe's signed log1p is log1p here
        return ColumnTransformer([("rfm", rfm_scaler(), RFM_COLUMNS)])
    return behavioral_profile(vectors, items="tokens", rfm=RFM_COLUMNS + ["horizon"],
                              random_state=config.seed)  # fmt: skip


def network(config: Config, **params):
    """The library's ``SketchClassifier`` with its defaults and early stopping."""
    from sklearn_basemodel import SketchClassifier

    return SketchClassifier(early_stopping=True, random_state=config.seed, **params)


def methods(vectors, config: Config) -> dict:
    """name -> (factory of an unfitted estimator, uses self-supervised pairs)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sklearn_basemodel.blending import BlendedClassifier
    from sklearn_basemodel.recipes import rfm_network

    def raw_rfm():
        return ColumnTransformer([("rfm", "passthrough", RFM_COLUMNS)])

    def ours(model):
        return lambda: make_pipeline(make_features(vectors, config), model())

    # max_iter: room for the solver to converge, not a model setting
    return {
        "RFM + HistGradientBoosting": (
            lambda: make_pipeline(raw_rfm(), HistGradientBoostingClassifier(
                max_depth=3, learning_rate=0.05, max_iter=200, random_state=config.seed)),
            False),
        "RFM + logistic regression (log features)": (
            lambda: make_pipeline(make_features(vectors, config, rfm_only=True),
                                  LogisticRegression(C=BASELINE_C, max_iter=5000)), False),
        "EMDE + RFM, logistic regression (labels only)": (
            ours(lambda: LogisticRegression(max_iter=5000)), False),
        "EMDE + RFM, SketchClassifier (labels only)": (ours(lambda: network(config)), False),
        RFM_NETWORK: (lambda: rfm_network(RFM_COLUMNS, early_stopping=True,
                                          random_state=config.seed), False),
        BLENDED: (lambda: BlendedClassifier([
            ("network", ours(lambda: network(config))()),
            ("rfm_network", rfm_network(RFM_COLUMNS, early_stopping=True,
                                        random_state=config.seed)),
            ("rfm_gradient_boosting", make_pipeline(raw_rfm(), HistGradientBoostingClassifier(
                random_state=config.seed))),
        ], random_state=config.seed), False),
        FINAL: (ours(lambda: LogisticRegression(max_iter=5000)), True),
    }  # fmt: skip


def sketch_mass_score(table: pd.DataFrame, config: Config) -> np.ndarray:
    """The decayed purchase-day count: the mass of one partitioning of a raw EMDE sketch."""
    from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder

    buys = [["buy"] * (len(t) // 3) for t in table["tokens"]]
    ages = [a[::3] for a in table["ages"]]
    sketcher = EMDESketcher(RandomVectorEmbedder(16, random_state=config.seed), n_sketches=1,
                            sketch_dim=2, normalize=None, half_life=BASELINE_HALF_LIFE_DAYS,
                            time_input="age", random_state=config.seed)  # fmt: skip
    return np.asarray(sketcher.fit_transform(list(zip(buys, ages))).sum(axis=1)).ravel()


def pretrained_classifier(pretext: pd.DataFrame, vectors, config: Config):
    """The profile fitted on the self-supervised rows and a ``SketchClassifier`` pretrained on
    them (no holdout data: shared by every fold)."""
    profile = make_features(vectors, config).fit(pretext)
    model = network(config).fit(profile.transform(pretext), pretext["label"].to_numpy())
    return profile, model


def run(purchases: pd.DataFrame, config: Config | None = None, verbose=True) -> dict:
    """Cross-validated AUC of every method; see the module docstring."""
    import torch
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    config = config or Config()
    torch.set_num_threads(config.threads)
    start = time.perf_counter()
    customers = np.sort(purchases.loc[purchases["date"] <= CALIBRATION_END,
                                      "customer_id"].unique())  # fmt: skip
    final = customer_table(purchases, CALIBRATION_END, HOLDOUT_END, customers)
    pretext = pretext_table(purchases, config)
    vectors = item_vectors(final, config)
    y = final["label"].to_numpy()
    folds = list(StratifiedKFold(config.n_splits, shuffle=True, random_state=config.seed)
                 .split(final, y))  # fmt: skip
    results = {}

    def record(name, scores, seconds, pairs):
        fold_aucs = [roc_auc_score(y[te], scores[te]) for _, te in folds]
        results[name] = {"auc_mean": float(np.mean(fold_aucs)), "auc_std": float(np.std(fold_aucs)),
                         "auc_pooled": float(roc_auc_score(y, scores)), "fit_seconds": seconds,
                         "pairs": pairs}  # fmt: skip
        if verbose:
            print(f"[{time.perf_counter() - start:6.1f}s] {name}: AUC "
                  f"{results[name]['auc_mean']:.4f}", flush=True)  # fmt: skip

    t0 = time.perf_counter()
    record("Decayed purchase count (EMDE sketch mass, half-life "
           f"{BASELINE_HALF_LIFE_DAYS:g} days), no fitting",
           sketch_mass_score(final, config), time.perf_counter() - t0, 0)  # fmt: skip
    blend_choices = []
    for name, (factory, use_pretext) in methods(vectors, config).items():
        scores, seconds = np.zeros(len(y)), 0.0
        for train, test in folds:
            rows = final.iloc[train]
            if use_pretext:
                rows = pd.concat([pretext, rows])
            t0 = time.perf_counter()
            model = factory().fit(rows, rows["label"].to_numpy())
            seconds += time.perf_counter() - t0
            scores[test] = model.predict_proba(final.iloc[test])[:, 1]
            if name == BLENDED:  # what the library's selection kept, per fold
                blend_choices.append({k: w for k, w in model.weights_.items() if w})
        record(name, scores, seconds / len(folds), len(pretext) if use_pretext else 0)
    selection = fine_tune_folds(final, pretext, vectors, folds, config, record)
    return {"results": results, "config": config, "n_customers": len(final), **selection,
            "blend_choices": blend_choices,
            "base_rate": float(y.mean()), "n_pretext": len(pretext),
            "total_seconds": time.perf_counter() - start}  # fmt: skip


def fine_tune_folds(final, pretext, vectors, folds, config: Config, record) -> dict:
    """The recipe's fine-tuner per fold, from a classifier pretrained once on the pairs."""
    from sklearn_basemodel.recipes import fine_tuner

    t0 = time.perf_counter()
    profile, pretrained = pretrained_classifier(pretext, vectors, config)
    pretrain_seconds = time.perf_counter() - t0
    y, scores, seconds, kept, epochs = final["label"].to_numpy(), np.zeros(len(final)), 0.0, [], []
    for train, test in folds:
        t0 = time.perf_counter()
        model = fine_tuner(profile, pretrained, early_stopping=True, random_state=config.seed)
        model.fit(final.iloc[train], y[train])
        seconds += time.perf_counter() - t0
        kept.append(bool(model[-1].pretrained_kept_))
        epochs.append(len(model[-1].history))
        scores[test] = model.predict_proba(final.iloc[test])[:, 1]
    record(FINE_TUNED, scores, seconds / len(folds), len(pretext))
    return {"pretrain_epochs": len(pretrained.history), "pretrain_seconds": pretrain_seconds,
            "pretrained_kept": kept, "finetune_epochs": epochs}  # fmt: skip


# --------------------------------------------------------------------------- report
def format_table(out: dict) -> str:
    config = out["config"]
    lines = [
        (f"CDNOW_sample holdout purchase: {out['n_customers']} customers, base rate "
        f"{out['base_rate']:.1%}; {config.n_splits}-fold stratified CV (seed {config.seed})."),
        "",
        ("| method | AUC (mean of folds) | fold std | AUC (pooled out-of-fold) "
        "| fit time per fold |"),
        "|---|---|---|---|---|",
    ]
    for name, r in out["results"].items():
        label = f"**{name}**" if name == FINAL else name
        lines.append(f"| {label} | {r['auc_mean']:.4f} | {r['auc_std']:.4f} | "
                     f"{r['auc_pooled']:.4f} | {r['fit_seconds']:.2f}s |")  # fmt: skip
    for name, auc in REFERENCE.items():
        lines.append(f"| {name} | {auc:.4f} | | | |")
    final = out["results"][FINAL]
    kept = out["pretrained_kept"]
    lines += [
        "",
        (f"Target (beat Pareto/NBD): AUC {final['auc_mean']:.4f} "
        f"{'>' if final['auc_mean'] > TARGET else '<='} {TARGET:.4f} (pooled "
        f"{final['auc_pooled']:.4f}). Self-supervised pairs: {out['n_pretext']} rows from "
        "cut-offs inside the calibration period (no holdout data)."),
        "",
        ("Chosen by the built-in selection: the pretrained classifier trained "
        f"{out['pretrain_epochs']} epochs ({out['pretrain_seconds']:.0f}s; early stopping "
        "on, up to the default max_epochs); "
        f"per fold, pretrained_fallback kept the pretrained trunk in {sum(kept)} of "
        f"{len(kept)} folds ({kept}; epochs of the kept network {out['finetune_epochs']}). "
        f"`BlendedClassifier` kept, per fold (weights): {out['blend_choices']}."),
        "",
        (f"Whole run {out['total_seconds']:.0f}s ({config.threads} torch threads, "
        f"{platform.processor() or platform.machine()}). Protocol: {asdict(config)}; every "
        "setting of our models: the library's defaults."),
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="datasets folder (holding cdnow/) or the cdnow folder itself")
    parser.add_argument("--threads", type=int, default=Config.threads, help="torch threads")
    parser.add_argument("--no-write", action="store_true", help="do not write results/cdnow.md")
    args = parser.parse_args(argv)

    from sklearn_basemodel.datasets import load_cdnow

    try:
        purchases = load_cdnow(args.data)
    except FileNotFoundError:
        print(f"skipped: CDNOW data not found under {args.data}")
        return 0
    import warnings

    from sklearn_basemodel.exceptions import UnknownEntityWarning

    warnings.simplefilter("ignore", UnknownEntityWarning)
    out = run(purchases, Config(threads=args.threads))
    table = format_table(out)
    print()
    print(table)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text("# CDNOW holdout-purchase benchmark (`benchmarks/cdnow.py`)\n\n"
                           + table + "\n")  # fmt: skip
    print(f"cdnow auc={out['results'][FINAL]['auc_mean']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
