"""The main job, end to end: ``make demo`` / ``basemodel demo``.

:func:`run_demo` goes from raw events to evaluated models, the way a user would on their own
data, and reports what it measured:

1. generate a raw events table (:func:`~sklearn_basemodel.datasets.make_events`, about 1% of
   the rows malformed) and write it to a DuckDB file;
2. write a small dbt project that installs the ``basemodel`` dbt package
   (``packages.yml: - local: <basemodel dbt-path>``) and run ``dbt deps`` and ``dbt build``
   through :func:`~sklearn_basemodel.warehouse.run_dbt` (models and their data tests: every
   raw row is a staged event or a rejected row with a reason);
3. count the rows (raw, staged, rejected by reason) and reconcile the rejected rows, row by
   row, with the generator's record of which rows it broke;
4. read the basket (hyperedge), history and target tables;
5. fit Cleora embeddings of products and of categories on the baskets before the test split;
6. build a ``Pipeline``: a ``ColumnTransformer`` of EMDE sketches of the decayed product and
   category histories plus recency / frequency / monetary features, ending in a
   ``SketchRecommender`` pretrained to predict the products of the next 30 days; evaluate
   Recall@10 on a later split against popularity and personal-frequency baselines;
7. fine-tune a ``SketchClassifier`` for churn from the recommender's trunk, with a small
   ``GridSearchCV``, and compare its AUC with gradient boosting on RFM features;
8. plot the training curves and a 2-D map of the product embeddings, and write ``report.md``
   and ``results.json`` to the output folder.

Every stage is a small function; :func:`run_demo` strings them together, times them and
returns the measured numbers as a dict.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["run_demo", "format_report"]

# Column names of the generated raw table, mapped onto the dbt package through its vars.
_RAW_TABLE = "raw_events"
_ROW_COLUMN = "source_row"  # a load-time row number, passed through to the dbt tables
_HORIZON_DAYS = 30
_DECAY_RATE = 0.02  # per day: a half-life of about 35 days
_K = 10

# How the generator's kinds of malformed rows show up as the dbt package's rejection reasons.
_EXPECTED_REASONS = {
    "null_customer_id": ("null_entity",),
    "null_event_time": ("null_timestamp",),
    "time_out_of_range": ("timestamp_before_valid_range", "timestamp_after_valid_range"),
    "duplicate": ("duplicate",),
    "negative_amount": (),  # the package has no rule for negative amounts: staged, flagged here
}

_RFM_COLUMNS = [
    "days_since_last_event",
    "days_since_first_event",
    "n_events",
    "decay_weight_sum",
    "total_amount",
]

# Default model sizes: small enough that the whole demo runs in a few minutes on 2 CPU cores.
_SETTINGS = {
    "product_components": 64,
    "category_components": 16,
    "product_sketches": (16, 64),  # (n_sketches, sketch_dim)
    "category_sketches": (8, 16),
    "hidden_units": 256,
    "n_blocks": 1,
    "recommender_epochs": 8,
    "classifier_epochs": 4,
    "batch_size": 256,
    # Does training the new head on the frozen pretrained trunk first help? (lr: 1e-3 and 3e-3
    # tie in cross-validation; a bigger grid costs two fits per candidate)
    "grid": {"model__freeze_epochs": [0, 2]},
    "cv": 2,
}


# --------------------------------------------------------------------------- progress
class _Progress:
    """Prints each stage as it starts and its time when it ends; keeps the timings.

    ``timings`` holds the wall-clock seconds of each stage, ``cpu_timings`` the CPU seconds of
    this process (all its threads; dbt runs in-process too), which tell how much work a stage
    is when the machine is shared.
    """

    def __init__(self, n_stages, verbose=True):
        self.n_stages = n_stages
        self.verbose = verbose
        self.timings = {}
        self.cpu_timings = {}
        self._index = 0

    def print(self, message=""):
        if self.verbose:
            print(message, flush=True)

    @contextmanager
    def stage(self, name):
        self._index += 1
        self.print(f"[{self._index}/{self.n_stages}] {name} ...")
        start, cpu_start = time.perf_counter(), time.process_time()
        notes = []
        try:
            yield notes
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = elapsed
            self.cpu_timings[name] = time.process_time() - cpu_start
            detail = f": {'; '.join(notes)}" if notes else ""
            cpu = self.cpu_timings[name]
            self.print(f"      done in {elapsed:.1f} s (CPU {cpu:.1f} s){detail}")


def _epoch_printer(prefix, verbose):
    """A skorch callback printing one line per epoch (or None when not verbose)."""
    if not verbose:
        return None
    from skorch.callbacks import Callback

    class EpochLine(Callback):
        def on_epoch_end(self, net, **kwargs):
            row = net.history[-1]
            parts = [
                f"epoch {row['epoch']:>2}/{net.max_epochs}",
                f"train loss {row['train_loss']:.4f}",
            ]
            if "valid_loss" in row:
                parts.append(f"valid loss {row['valid_loss']:.4f}")
            parts.append(f"{row['dur']:.1f} s")
            print(f"      {prefix}: " + "  ".join(parts), flush=True)

    return [("epoch_line", EpochLine())]


# --------------------------------------------------------------------------- data
def generate_events(n_events, random_state=0):
    """The raw events table with a load-time row number, and the generator's ground truth.

    Returns
    -------
    events : DataFrame
        :func:`~sklearn_basemodel.datasets.make_events` output plus ``source_row`` (0, 1, ...).
    truth : Bunch
        The generator's truth (``malformed_reason`` per row, ``products`` with categories, the
        period ``start``/``end``).
    """
    from .datasets import make_events

    events, truth = make_events(n_events, return_truth=True, random_state=random_state)
    events.insert(0, _ROW_COLUMN, np.arange(len(events), dtype=np.int64))
    return events, truth


def split_times(truth, n_train_splits):
    """Monthly split points: the test split 31 days before the data ends, training ones before.

    Every split's target window (30 days) ends at or before the next split, and the test
    split's window ends inside the data, so every target is fully observed.
    """
    test = (truth.end - pd.Timedelta(days=_HORIZON_DAYS + 1)).normalize()
    times = [test - pd.DateOffset(months=k) for k in range(n_train_splits, 0, -1)] + [test]
    return [t.strftime("%Y-%m-%d") for t in times]


def dbt_vars(truth, splits):
    """The ``basemodel`` package's vars for the generated table."""
    return {
        "basemodel_events_identifier": _RAW_TABLE,
        "basemodel_entity_column": "customer_id",
        "basemodel_timestamp_column": "event_time",
        "basemodel_event_type_column": "event_type",
        "basemodel_item_columns": [
            {"name": "product", "column": "product_id"},
            {"name": "category", "column": "category_id"},
        ],
        "basemodel_group_column": "basket_id",
        "basemodel_amount_column": "amount",
        "basemodel_event_id_column": "event_id",
        "basemodel_passthrough_columns": [_ROW_COLUMN],
        "basemodel_dedup_order_by": _ROW_COLUMN,
        "basemodel_valid_from": truth.start.strftime("%Y-%m-%d"),
        "basemodel_valid_to": truth.end.strftime("%Y-%m-%d"),
        "basemodel_split_times": list(splits),
        "basemodel_horizon_days": _HORIZON_DAYS,
        "basemodel_decay_rate": _DECAY_RATE,
    }


def write_dbt_project(project_dir, database, vars):
    """A minimal dbt project that installs the ``basemodel`` package and runs it on DuckDB.

    Writes ``dbt_project.yml`` (with the vars), ``packages.yml`` (``- local:`` the package
    shipped with this library) and ``profiles.yml`` (DuckDB at ``database``).
    """
    import yaml

    from .warehouse import dbt_package_path

    project_dir = Path(project_dir)
    project_dir.mkdir(parents=True, exist_ok=True)
    project = {
        "name": "basemodel_demo",
        "version": "0.1.0",
        "config-version": 2,
        "profile": "basemodel_demo",
        "clean-targets": ["target", "dbt_packages", "logs"],
        "vars": vars,
    }
    profiles = {
        "basemodel_demo": {
            "target": "duckdb",
            "outputs": {
                "duckdb": {
                    "type": "duckdb",
                    "path": os.fspath(Path(database).resolve()),
                    "threads": 2,
                }
            },
        }
    }
    packages = {"packages": [{"local": os.fspath(dbt_package_path())}]}
    for name, content in (
        ("dbt_project.yml", project),
        ("profiles.yml", profiles),
        ("packages.yml", packages),
    ):
        (project_dir / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return project_dir


def run_dbt_package(project_dir):
    """``dbt deps`` then ``dbt build`` (models and data tests); node counts by kind and status."""
    from .warehouse import run_dbt

    project_dir = Path(project_dir)
    paths = {"target_path": project_dir / "target", "log_path": project_dir / "logs"}
    run_dbt(["deps"], project_dir, profiles_dir=project_dir, log_path=paths["log_path"])
    result = run_dbt(["build"], project_dir, profiles_dir=project_dir, **paths)
    nodes = Counter()
    for node in result.result.results:
        kind = str(getattr(node.node.resource_type, "value", node.node.resource_type))
        status = str(getattr(node.status, "value", node.status))
        nodes[(kind, status)] += 1
    return {f"{kind} {status}": count for (kind, status), count in sorted(nodes.items())}


def count_rows(database, truth):
    """Raw, staged and rejected rows; rejections by reason, reconciled with the generator.

    Returns
    -------
    dict with ``raw``, ``staged``, ``rejected``, ``rejected_by_reason`` (dbt reason -> rows),
    ``generated_malformed`` (generator reason -> rows), ``crosstab`` (dbt reason -> generator
    reason -> rows, matched row by row through ``source_row``), ``negative_amount_generated``,
    ``negative_amount_staged`` (staged events with an amount below zero),
    ``negative_amount_matched`` (of those, generated as negative amounts) and ``reconciled``:
    raw = staged + rejected, every rejected row was generated malformed with a matching kind,
    and every generated row of a kind the package checks for was rejected.
    """
    import duckdb

    con = duckdb.connect(os.fspath(database), read_only=True)
    try:
        def scalar(sql):
            return int(con.execute(sql).fetchone()[0])

        raw = scalar(f"select count(*) from {_RAW_TABLE}")
        staged = scalar("select count(*) from basemodel_stg_events")
        rejected_rows = con.execute(
            f"select {_ROW_COLUMN}, rejection_reason from basemodel_rejected_events"
        ).df()
        negative_rows = con.execute(
            f"select {_ROW_COLUMN} from basemodel_stg_events where amount < 0"
        ).df()[_ROW_COLUMN].to_numpy()
    finally:
        con.close()

    generated = truth.malformed_reason.astype(object)
    rejected_rows["generated_as"] = (
        generated.iloc[rejected_rows[_ROW_COLUMN].to_numpy()].fillna("valid").to_numpy()
    )
    crosstab = {
        reason: group["generated_as"].value_counts().to_dict()
        for reason, group in rejected_rows.groupby("rejection_reason")
    }
    negative_generated = int((generated == "negative_amount").sum())
    negative_matched = int((generated.iloc[negative_rows] == "negative_amount").sum())
    by_reason = rejected_rows["rejection_reason"].value_counts().to_dict()
    # Row by row: every rejected row was generated malformed with the matching kind, every
    # malformed row of a kind the package checks was rejected, and the totals add up.
    matches = all(
        set(sources) <= {s for s, rs in _EXPECTED_REASONS.items() if reason in rs}
        for reason, sources in crosstab.items()
    )
    per_kind = {
        source: sum(crosstab.get(r, {}).get(source, 0) for r in reasons)
        for source, reasons in _EXPECTED_REASONS.items()
        if reasons
    }
    complete = all(per_kind[s] == int((generated == s).sum()) for s in per_kind)
    return {
        "raw": raw,
        "staged": staged,
        "rejected": int(len(rejected_rows)),
        "rejected_by_reason": {k: int(v) for k, v in sorted(by_reason.items())},
        "generated_malformed": {
            k: int(v) for k, v in generated.value_counts().sort_index().items()
        },
        "crosstab": {r: {s: int(n) for s, n in c.items()} for r, c in sorted(crosstab.items())},
        "negative_amount_generated": negative_generated,
        "negative_amount_staged": int(len(negative_rows)),
        "negative_amount_matched": negative_matched,
        "reconciled": bool(raw == staged + len(rejected_rows) and matches and complete),
    }


def _weighted(items, weights):
    """A row as a mapping key -> summed weight (the decayed history EMDESketcher takes)."""
    row = {}
    for key, weight in zip(items, weights):
        row[key] = row.get(key, 0.0) + weight
    return row


def read_tables(database):
    """The package's baskets and the history rows joined with their targets.

    Returns
    -------
    baskets : DataFrame
        ``basemodel_hyperedges``: one row per basket, ``product_items``, ``category_items``.
    customers : DataFrame
        ``basemodel_entity_history`` joined with ``basemodel_entity_targets`` (one row per
        split and customer), plus ``products`` / ``categories``: the decayed histories as
        mappings key -> weight.
    """
    from .warehouse import read_relation

    baskets = read_relation(
        database,
        "basemodel_hyperedges",
        columns=["entity_id", "group_id", "last_event_at", "product_items", "category_items"],
    )
    history = read_relation(
        database,
        "basemodel_entity_history",
        columns=["split_id", "split_at", "entity_id", *_RFM_COLUMNS,
                 "product_items", "product_weights", "category_items", "category_weights"],
    )  # fmt: skip
    targets = read_relation(
        database,
        "basemodel_entity_targets",
        columns=["split_at", "entity_id", "is_horizon_complete", "churned", "n_future_events",
                 "future_product_items"],
    )  # fmt: skip
    customers = history.merge(targets, on=["split_at", "entity_id"], how="inner", validate="1:1")
    customers["products"] = [
        _weighted(i, w) for i, w in zip(customers["product_items"], customers["product_weights"])
    ]
    customers["categories"] = [
        _weighted(i, w) for i, w in zip(customers["category_items"], customers["category_weights"])
    ]
    customers = customers.drop(
        columns=["product_items", "product_weights", "category_items", "category_weights"]
    )
    customers = customers.sort_values(["split_at", "entity_id"], ignore_index=True)
    return baskets, customers


# --------------------------------------------------------------------------- embeddings
def fit_embeddings(baskets, settings, random_state=0):
    """Cleora embeddings of products and of categories, each from the baskets' co-occurrence."""
    from . import CleoraEmbedder

    products = CleoraEmbedder(
        n_components=settings["product_components"], n_iter=3, random_state=random_state
    ).fit(baskets["product_items"])
    categories = CleoraEmbedder(
        n_components=settings["category_components"], n_iter=3, random_state=random_state
    ).fit(baskets["category_items"])
    return products, categories


def product_categories(baskets):
    """product key -> category key, from the aligned item lists of the baskets."""
    mapping = {}
    for products, categories in zip(baskets["product_items"], baskets["category_items"]):
        if len(products) == len(categories):
            mapping.update(zip(products, categories))
    return mapping


def neighbour_agreement(embedder, category_of, n_neighbours=10):
    """Share of each product's nearest products (cosine) in its own category, and by chance."""
    keys = np.asarray(embedder.vocabulary_, dtype=object)
    vectors = np.asarray(embedder.embeddings_, dtype=np.float32)
    labels = np.array([category_of.get(k) for k in keys], dtype=object)
    keep = labels != None  # noqa: E711 - elementwise comparison on an object array
    vectors, labels = vectors[keep], labels[keep]
    n = len(vectors)
    k = min(n_neighbours, n - 1)
    if k < 1:
        return float("nan"), float("nan")
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    same = float((labels[nearest] == labels[:, None]).mean())
    shares = pd.Series(labels).value_counts(normalize=True).to_numpy()
    return same, float((shares**2).sum())


# --------------------------------------------------------------------------- models
def _signed_log1p(X):
    X = np.asarray(X, dtype=np.float64)
    return np.sign(X) * np.log1p(np.abs(X))


def build_features(product_sketcher, category_embedder, settings, random_state=0):
    """The ColumnTransformer: EMDE sketches of products and categories, plus RFM features.

    The product sketcher is prefit (on the baskets) and frozen, so the recommender can decode
    with the very same codes; the category sketcher learns its partitioning in ``fit`` from the
    frozen Cleora category vectors.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from . import EMDESketcher

    n_sketches, sketch_dim = settings["category_sketches"]
    return ColumnTransformer(
        [
            ("products", FrozenEstimator(product_sketcher), "products"),
            (
                "categories",
                EMDESketcher(
                    embedder=FrozenEstimator(category_embedder),
                    n_sketches=n_sketches,
                    sketch_dim=sketch_dim,
                    random_state=random_state,
                ),
                "categories",
            ),
            (
                "rfm",
                make_pipeline(
                    FunctionTransformer(_signed_log1p, feature_names_out="one-to-one"),
                    StandardScaler(),
                ),
                _RFM_COLUMNS,
            ),
        ]
    )


def fit_product_sketcher(product_embedder, baskets, settings, random_state=0):
    """EMDE partitionings of the Cleora product space (prefit; inputs and targets share it)."""
    from sklearn.frozen import FrozenEstimator

    from . import EMDESketcher

    n_sketches, sketch_dim = settings["product_sketches"]
    return EMDESketcher(
        embedder=FrozenEstimator(product_embedder),
        n_sketches=n_sketches,
        sketch_dim=sketch_dim,
        random_state=random_state,
    ).fit(baskets["product_items"])


def pretrain_recommender(train, features, product_sketcher, settings, *, progress_bar, verbose,
                         random_state=0):  # fmt: skip
    """Pipeline(features, SketchRecommender) fitted to predict the next 30 days' products."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    from . import SketchRecommender

    recommender = SketchRecommender(
        target_sketcher=FrozenEstimator(product_sketcher),
        k=_K,
        hidden_units=settings["hidden_units"],
        n_blocks=settings["n_blocks"],
        max_epochs=settings["recommender_epochs"],
        batch_size=settings["batch_size"],
        lr=1e-3,
        validation_fraction=0.1,
        early_stopping=True,
        n_iter_no_change=2,
        progress_bar=progress_bar,
        callbacks=_epoch_printer("recommender", verbose),
        random_state=random_state,
    )
    pipeline = Pipeline([("features", features), ("model", recommender)])
    return pipeline.fit(train, train["future_product_items"].tolist())


def popularity_ranking(baskets, before, days=_HORIZON_DAYS, k=_K):
    """The k products most often in baskets of the ``days`` before ``before``."""
    recent = baskets[
        (baskets["last_event_at"] <= before)
        & (baskets["last_event_at"] > before - pd.Timedelta(days=days))
    ]
    counts = Counter(p for row in recent["product_items"] for p in row)
    return [p for p, _ in counts.most_common(k)]


def personal_frequency(histories, popular, k=_K):
    """Each customer's own products by decayed frequency, then popular ones to fill k slots."""
    ranked = []
    for history in histories:
        own = sorted(history, key=lambda key: -history[key])[:k]
        seen = set(own)
        own += [p for p in popular if p not in seen][: k - len(own)]
        ranked.append(own)
    return ranked


def evaluate_recommendations(pipeline, test, baskets, split_at):
    """Recall@10 of the model, the model with the own-history boost, and the baselines."""
    from .metrics import recall_at_k

    truth = test["future_product_items"].tolist()
    popular = popularity_ranking(baskets, split_at)
    history = test["products"].tolist()
    model = pipeline.predict(test)
    boosted = pipeline.predict(test, history=history)
    return {
        "popularity": recall_at_k(truth, [popular] * len(test), k=_K),
        "personal_frequency": recall_at_k(truth, personal_frequency(history, popular), k=_K),
        "sketch_recommender": recall_at_k(truth, model, k=_K),
        "sketch_recommender_with_history": recall_at_k(truth, boosted, k=_K),
    }


def churn_classifier(features, recommender, settings, *, progress_bar=False, callbacks=None,
                     random_state=0):  # fmt: skip
    """Pipeline(frozen features, SketchClassifier starting from the recommender's trunk)."""
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    from . import SketchClassifier

    classifier = SketchClassifier(
        pretrained=FrozenEstimator(recommender),
        freeze_epochs=2,
        max_epochs=settings["classifier_epochs"],
        batch_size=settings["batch_size"],
        lr=3e-3,
        validation_fraction=0.1,
        early_stopping=True,
        n_iter_no_change=2,
        progress_bar=progress_bar,
        callbacks=callbacks,
        random_state=random_state,
    )
    return Pipeline([("features", FrozenEstimator(features)), ("model", classifier)])


def rfm_baseline(train, random_state=0):
    """Gradient boosting on recency / frequency / monetary / tenure features."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(random_state=random_state)
    return model.fit(train[_RFM_COLUMNS], train["churned"])


def grid_search_churn(pipeline, train, settings, verbose=False):
    """GridSearchCV of the churn pipeline (AUC, folds grouped by customer), refitted on all rows.

    Returns the fitted search and one dict per candidate (params, mean and std of the CV AUC,
    mean fit time, rank).
    """
    from sklearn.model_selection import GridSearchCV, GroupKFold

    search = GridSearchCV(
        pipeline,
        settings["grid"],
        scoring="roc_auc",
        cv=GroupKFold(n_splits=settings["cv"]),
        refit=True,
        verbose=3 if verbose else 0,
    )
    search.fit(train, train["churned"], groups=train["entity_id"])
    results = pd.DataFrame(search.cv_results_)
    rows = [
        {
            "params": {k.removeprefix("model__"): v for k, v in params.items()},
            "mean_auc": float(mean),
            "std_auc": float(std),
            "mean_fit_seconds": float(fit_time),
            "rank": int(rank),
        }
        for params, mean, std, fit_time, rank in zip(
            results["params"],
            results["mean_test_score"],
            results["std_test_score"],
            results["mean_fit_time"],
            results["rank_test_score"],
        )
    ]
    return search, rows


def _print_epochs(prefix, history, verbose):
    if not verbose:
        return
    for row in history:
        valid = f"  valid loss {row['valid_loss']:.4f}" if "valid_loss" in row else ""
        print(f"      {prefix}: epoch {row['epoch']:>2}  train loss {row['train_loss']:.4f}"
              f"{valid}  {row['dur']:.1f} s", flush=True)  # fmt: skip


# --------------------------------------------------------------------------- plots
def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(histories, path):
    """Train / validation loss per epoch of each network, side by side."""
    plt = _pyplot()
    if plt is None:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(histories), figsize=(5 * len(histories), 3.6))
    axes = np.atleast_1d(axes)
    for ax, (title, history) in zip(axes, histories.items()):
        epochs = [row["epoch"] for row in history]
        ax.plot(epochs, [row["train_loss"] for row in history], marker="o", label="train")
        if all("valid_loss" in row for row in history):
            ax.plot(epochs, [row["valid_loss"] for row in history], marker="o", label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_product_map(embedder, category_of, path, random_state=0, n_coloured=10,
                     max_products=800):  # fmt: skip
    """Product embeddings in 2-D (t-SNE of the Cleora vectors), coloured by category.

    t-SNE costs seconds per thousand points, so only the ``max_products`` most frequent
    products are drawn; the ``n_coloured`` largest categories among them get a colour.
    """
    plt = _pyplot()
    if plt is None:
        return None
    from sklearn.manifold import TSNE

    order = np.argsort(-np.asarray(embedder.entity_counts_), kind="stable")[:max_products]
    keys = np.asarray(embedder.vocabulary_, dtype=object)[order]
    vectors = np.asarray(embedder.embeddings_, dtype=np.float32)[order]
    labels = pd.Series([category_of.get(k) for k in keys], dtype=object)
    perplexity = float(min(30, max(2, (len(keys) - 1) / 3)))
    points = TSNE(
        n_components=2, perplexity=perplexity, init="pca", max_iter=500,
        random_state=random_state,
    ).fit_transform(vectors)  # fmt: skip
    top = labels.value_counts().index[:n_coloured]
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    rest = ~labels.isin(top).to_numpy()
    ax.scatter(points[rest, 0], points[rest, 1], s=6, c="lightgrey", label="other categories")
    colours = plt.get_cmap("tab10")
    for i, category in enumerate(top):
        mask = (labels == category).to_numpy()
        ax.scatter(points[mask, 0], points[mask, 1], s=9, color=colours(i % 10),
                   label=f"category {category}")  # fmt: skip
    ax.set_title(
        f"Cleora product embeddings, t-SNE of the {len(keys):,} most frequent products,\n"
        f"coloured by category ({len(top)} largest; others grey)",
        fontsize=10,
    )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=2, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- report
def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _rows_section(results):
    rows = results["rows"]
    nodes = ", ".join(f"{n} {k}" for k, n in results["dbt_nodes"].items())
    rejected = [
        [reason, f"{n:,}",
         ", ".join(f"{s} ({c:,})" for s, c in rows["crosstab"].get(reason, {}).items())]
        for reason, n in rows["rejected_by_reason"].items()
    ]  # fmt: skip
    generated = ", ".join(f"{k} {v:,}" for k, v in rows["generated_malformed"].items())
    return [
        f"{results['n_events']:,} generated events (seed {results['random_state']}), loaded into "
        f"DuckDB (`{results['database']}`) and prepared by the `basemodel` dbt package "
        f"(`dbt build`: {nodes}).",
        "",
        "## Rows",
        "",
        _table(
            ["table", "rows"],
            [
                ["raw events (`raw_events`)", f"{rows['raw']:,}"],
                ["staged events (`basemodel_stg_events`)", f"{rows['staged']:,}"],
                ["rejected rows (`basemodel_rejected_events`)", f"{rows['rejected']:,}"],
            ],
        ),
        "",
        "Rejected rows by reason, matched row by row with the rows the generator broke:",
        "",
        _table(["rejection reason (dbt)", "rows", "generated as"], rejected),
        "",
        f"Generated malformed rows: {generated}.",
        f"Reconciliation: raw = staged + rejected ({rows['raw']:,} = {rows['staged']:,} + "
        f"{rows['rejected']:,}), and every malformed row of a kind the package checks for was "
        f"rejected with the matching reason: **{'yes' if rows['reconciled'] else 'NO'}**.",
        f"Negative amounts: the package has no rule for them, so the "
        f"{rows['negative_amount_generated']:,} generated ones are staged; "
        f"{rows['negative_amount_staged']:,} staged events have an amount below zero "
        f"({rows['negative_amount_matched']:,} of them generated as `negative_amount`).",
        "",
    ]


def _data_section(results):
    data, embeddings = results["data"], results["embeddings"]
    splits = ", ".join(data["train_splits"])
    return [
        "## Data read back",
        "",
        _table(
            ["", "rows"],
            [
                ["baskets (`basemodel_hyperedges`) before the test split", f"{data['baskets']:,}"],
                ["histories (`basemodel_entity_history`), all splits", f"{data['histories']:,}"],
                [f"training rows (splits {splits})", f"{data['train_rows']:,}"],
                ["  with events in the next 30 days (recommender)",
                 f"{data['train_rows_with_future']:,}"],
                [f"test rows (split {data['test_split']})", f"{data['test_rows']:,}"],
                ["  with events in the next 30 days (Recall@10)",
                 f"{data['test_rows_with_future']:,}"],
                ["products / categories embedded",
                 f"{data['products']:,} / {data['categories']:,}"],
                ["model input width (sketches + RFM)", f"{data['n_features']:,}"],
            ],
        ),  # fmt: skip
        "",
        f"Cleora product embeddings: {embeddings['same_category_share']:.0%} of each product's "
        f"10 nearest products share its category (chance: {embeddings['chance_share']:.0%}).",
        "",
    ]


def _recall_section(results):
    rec, split = results["recall_at_10"], results["data"]["test_split"]
    names = {
        "popularity": "popularity (most frequent products of the last 30 days)",
        "personal_frequency": "personal frequency (own decayed history, then popular)",
        "sketch_recommender": "SketchRecommender",
        "sketch_recommender_with_history": "SketchRecommender + own history (boost)",
    }
    return [
        f"## Recommendation: Recall@10 on the test split ({split}, next 30 days)",
        "",
        _table(["model", "Recall@10"], [[names[k], f"{v:.4f}"] for k, v in rec.items()]),
        "",
    ]


def _churn_section(results):
    churn, search = results["churn_auc"], results["grid_search"]
    params = ", ".join(f"{k}={v}" for k, v in churn["classifier_params"].items())
    if search:
        params += ", chosen by GridSearchCV"
    out = [
        "## Churn (no event in the next 30 days): ROC AUC on the test split",
        "",
        f"Churn rate: {churn['train_churn_rate']:.1%} (training rows), "
        f"{churn['test_churn_rate']:.1%} (test rows).",
        "",
        _table(
            ["model", "AUC"],
            [
                ["RFM features + HistGradientBoostingClassifier",
                 f"{churn['rfm_gradient_boosting']:.4f}"],
                [f"SketchClassifier fine-tuned from the recommender's trunk ({params})",
                 f"{churn['sketch_classifier']:.4f}"],
            ],
        ),  # fmt: skip
        "",
    ]
    if search:
        candidates = [
            [r["rank"], ", ".join(f"{k}={v}" for k, v in r["params"].items()),
             f"{r['mean_auc']:.4f}", f"{r['std_auc']:.4f}", f"{r['mean_fit_seconds']:.1f}"]
            for r in sorted(search["results"], key=lambda r: r["rank"])
        ]  # fmt: skip
        out += [
            f"GridSearchCV over the churn pipeline ({search['cv']} folds grouped by customer, "
            "scoring ROC AUC; the best candidate is refitted on all training rows):",
            "",
            _table(["rank", "params", "mean CV AUC", "std", "mean fit time (s)"], candidates),
            "",
        ]
    return out


def _timing_section(results):
    cpu = results["cpu_timings"]
    rows = [
        [name, f"{seconds:.1f}", f"{cpu.get(name, float('nan')):.1f}"]
        for name, seconds in results["timings"].items()
    ]
    rows.append(
        ["**total**", f"**{results['total_seconds']:.1f}**", f"**{sum(cpu.values()):.1f}**"]
    )
    return [
        "## Time per stage",
        "",
        "Wall-clock seconds, and CPU seconds of this process (all threads; dbt runs in-process).",
        "",
        _table(["stage", "seconds", "CPU seconds"], rows),
        "",
    ]


def format_report(results):
    """The demo's results (the dict :func:`run_demo` returns) as a markdown report."""
    out = ["# sklearn-basemodel demo report", ""]
    out += _rows_section(results)
    out += _data_section(results)
    out += _recall_section(results)
    out += _churn_section(results)
    out += _timing_section(results)
    out += ["## Files", ""] + [f"- `{name}`" for name in results["files"]]
    if results.get("notes"):
        out += ["", "## Notes", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the demo
def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (pd.Timestamp, Path)):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def run_demo(
    n_events=200_000,
    output_dir="demo_output",
    random_state=0,
    *,
    n_train_splits=4,
    grid_search=True,
    plots=True,
    progress=None,
    verbose=True,
    settings=None,
):
    """Run the whole pipeline on generated data and report what it measured.

    Parameters
    ----------
    n_events : int, default=200_000
        Rows of the generated raw events table (about 1% malformed).
    output_dir : path-like, default="demo_output"
        Where everything goes: ``warehouse.duckdb``, the generated ``dbt_project/``, the plots,
        ``report.md`` and ``results.json``. Created if absent; files of an earlier run are
        replaced.
    random_state : int, default=0
        Seeds the data and every model.
    n_train_splits : int, default=4
        Monthly training split points before the test split.
    grid_search : bool, default=True
        Choose the churn classifier's trunk-freezing epochs (``settings["grid"]``) with
        GridSearchCV (else fit it with lr=3e-3, freeze_epochs=2).
    plots : bool, default=True
        Save the plots (skipped with a note when matplotlib is not installed).
    progress : bool, default=None
        Show progress bars of the network fits; None shows them when stderr is a terminal.
    verbose : bool, default=True
        Print the stages, their timings and the report.
    settings : dict, default=None
        Overrides of the model sizes (keys of ``sklearn_basemodel.demo._SETTINGS``), e.g.
        ``{"recommender_epochs": 3}`` for a quick run.

    Returns
    -------
    results : dict
        ``rows`` (raw / staged / rejected counts, by reason, reconciliation), ``data`` (table
        and dataset sizes), ``recall_at_10`` (model and baselines), ``churn_auc`` (model,
        baseline, grid-search best), ``grid_search``, ``embeddings``, ``timings`` (seconds per
        stage), ``total_seconds``, ``files`` (written, relative to ``output_dir``) and
        ``output_dir``.
    """
    from sklearn.metrics import roc_auc_score

    from .datasets import write_events

    if int(n_events) < 1000:
        raise ValueError(f"n_events={n_events} is too small for the demo; use at least 1000.")
    if int(n_train_splits) < 1:
        raise ValueError(f"n_train_splits must be at least 1, got {n_train_splits}.")
    unknown = set(settings or {}) - set(_SETTINGS)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; known: {sorted(_SETTINGS)}.")
    settings = {**_SETTINGS, **(settings or {})}
    if progress is None:
        progress = bool(verbose) and sys.stderr.isatty()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    database = output_dir / "warehouse.duckdb"
    project_dir = output_dir / "dbt_project"
    n_stages = 9 + bool(plots)
    log = _Progress(n_stages, verbose)
    started = time.perf_counter()
    results = {
        "n_events": int(n_events),
        "random_state": random_state,
        "output_dir": os.fspath(output_dir),
        "database": database.name,
        "notes": [],
    }
    files = []

    with log.stage("Generate events") as notes:
        events, truth = generate_events(int(n_events), random_state)
        splits = split_times(truth, int(n_train_splits))
        notes.append(
            f"{len(events):,} rows, {events['customer_id'].nunique():,} customers, "
            f"{events['product_id'].nunique():,} products, {int(truth.malformed.sum()):,} malformed"
        )

    with log.stage("Write the raw events to DuckDB") as notes:
        for stale in (database, database.with_name(database.name + ".wal")):
            stale.unlink(missing_ok=True)
        write_events(events, database, table=_RAW_TABLE)
        notes.append(f"{database} table {_RAW_TABLE}")
        files.append(database.name)
        del events

    with log.stage("Run the basemodel dbt package (dbt deps, dbt build)") as notes:
        for stale in ("target", "logs", "dbt_packages", "package-lock.yml"):
            path = project_dir / stale
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
        write_dbt_project(project_dir, database, dbt_vars(truth, splits))
        results["dbt_nodes"] = run_dbt_package(project_dir)
        notes.append(", ".join(f"{n} {k}" for k, n in results["dbt_nodes"].items()))
        files.append("dbt_project/")

    with log.stage("Count and reconcile rows") as notes:
        rows = count_rows(database, truth)
        results["rows"] = rows
        notes.append(
            f"raw {rows['raw']:,} = staged {rows['staged']:,} + rejected {rows['rejected']:,}; "
            f"reconciled with the generator: {rows['reconciled']}"
        )

    with log.stage("Read baskets, histories and targets") as notes:
        baskets, customers = read_tables(database)
        test_split = pd.Timestamp(splits[-1])
        baskets = baskets[baskets["last_event_at"] <= test_split].reset_index(drop=True)
        is_test = customers["split_at"] == test_split
        train = customers[~is_test & customers["is_horizon_complete"]].reset_index(drop=True)
        test = customers[is_test].reset_index(drop=True)
        has_future = train["future_product_items"].map(len) > 0
        train_rec = train[has_future].reset_index(drop=True)
        test_rec = test[test["future_product_items"].map(len) > 0].reset_index(drop=True)
        results["data"] = {
            "baskets": int(len(baskets)),
            "histories": int(len(customers)),
            "train_splits": splits[:-1],
            "test_split": splits[-1],
            "train_rows": int(len(train)),
            "train_rows_with_future": int(len(train_rec)),
            "test_rows": int(len(test)),
            "test_rows_with_future": int(len(test_rec)),
            "test_horizon_complete": bool(test["is_horizon_complete"].all()),
        }
        if not results["data"]["test_horizon_complete"]:
            results["notes"].append(
                f"The data end before the test split's 30-day window does ({splits[-1]} + 30 "
                "days): its churn labels and future products are incomplete."
            )
        notes.append(
            f"{len(baskets):,} baskets before {splits[-1]}, {len(customers):,} history rows "
            f"({len(train):,} train, {len(test):,} test)"
        )

    with log.stage("Fit Cleora embeddings and EMDE sketchers") as notes:
        product_embedder, category_embedder = fit_embeddings(baskets, settings, random_state)
        product_sketcher = fit_product_sketcher(product_embedder, baskets, settings, random_state)
        category_of = product_categories(baskets)
        same, chance = neighbour_agreement(product_embedder, category_of)
        results["embeddings"] = {"same_category_share": same, "chance_share": chance}
        results["data"]["products"] = int(len(product_embedder.vocabulary_))
        results["data"]["categories"] = int(len(category_embedder.vocabulary_))
        notes.append(
            f"{len(product_embedder.vocabulary_):,} products, "
            f"{len(category_embedder.vocabulary_):,} categories; nearest products in the same "
            f"category: {same:.0%} (chance {chance:.0%})"
        )

    with log.stage("Pretrain SketchRecommender (next 30 days' products)") as notes:
        features = build_features(product_sketcher, category_embedder, settings, random_state)
        recommender_pipeline = pretrain_recommender(
            train_rec, features, product_sketcher, settings,
            progress_bar=progress, verbose=verbose, random_state=random_state,
        )  # fmt: skip
        recommender = recommender_pipeline.named_steps["model"]
        fitted_features = recommender_pipeline.named_steps["features"]
        results["data"]["n_features"] = int(recommender.n_features_in_)
        notes.append(f"{len(recommender.history_)} epochs on {len(train_rec):,} rows")

    with log.stage("Evaluate Recall@10 against baselines") as notes:
        recall = evaluate_recommendations(recommender_pipeline, test_rec, baskets, test_split)
        results["recall_at_10"] = recall
        notes.append(", ".join(f"{k} {v:.3f}" for k, v in recall.items()))

    grid = settings["grid"]
    n_candidates = math.prod(len(v) for v in grid.values())
    title = "Fine-tune SketchClassifier for churn"
    if grid_search:
        title += f" (GridSearchCV: {n_candidates} candidates x {settings['cv']} folds + refit)"
    with log.stage(title + "; RFM + gradient boosting baseline") as notes:
        pipeline = churn_classifier(
            fitted_features, recommender, settings, random_state=random_state,
            progress_bar=progress and not grid_search,
            callbacks=None if grid_search else _epoch_printer("churn classifier", verbose),
        )  # fmt: skip
        if grid_search:
            search, grid_rows = grid_search_churn(pipeline, train, settings, verbose)
            classifier = search.best_estimator_
            best = {k.removeprefix("model__"): v for k, v in search.best_params_.items()}
            _print_epochs("refit of the best", classifier.named_steps["model"].history_, verbose)
            results["grid_search"] = {
                "best_params": best,
                "best_cv_auc": float(search.best_score_),
                "cv": settings["cv"],
                "results": grid_rows,
            }
        else:
            classifier = pipeline.fit(train, train["churned"])
            results["grid_search"] = None
        baseline = rfm_baseline(train, random_state)
        model = classifier.named_steps["model"]
        results["churn_auc"] = {
            "sketch_classifier": float(
                roc_auc_score(test["churned"], classifier.predict_proba(test)[:, 1])
            ),
            "rfm_gradient_boosting": float(
                roc_auc_score(test["churned"], baseline.predict_proba(test[_RFM_COLUMNS])[:, 1])
            ),
            "classifier_params": {"lr": model.lr, "freeze_epochs": model.freeze_epochs},
            "train_churn_rate": float(train["churned"].mean()),
            "test_churn_rate": float(test["churned"].mean()),
        }
        notes.append(
            f"AUC sketch classifier {results['churn_auc']['sketch_classifier']:.3f}, "
            f"RFM gradient boosting {results['churn_auc']['rfm_gradient_boosting']:.3f}"
        )

    if plots:
        with log.stage("Plot training curves and the product map") as notes:
            if _pyplot() is None:
                message = "matplotlib is not installed: plots skipped (pip install matplotlib)"
                notes.append(message)
                results["notes"].append(message)
            else:
                churn_history = classifier.named_steps["model"].history_
                curves = plot_training_curves(
                    {
                        "SketchRecommender (pretraining)": recommender.history_,
                        "SketchClassifier (churn fine-tuning)": churn_history,
                    },
                    output_dir / "training_curves.png",
                )
                product_map = plot_product_map(
                    product_embedder, category_of, output_dir / "product_map.png", random_state
                )
                files += [Path(curves).name, Path(product_map).name]
                notes.append(", ".join(files[-2:]))

    results["timings"] = dict(log.timings)
    results["cpu_timings"] = dict(log.cpu_timings)
    results["total_seconds"] = time.perf_counter() - started
    files += ["report.md", "results.json"]
    results["files"] = files
    report = format_report(results)
    (output_dir / "report.md").write_text(report)
    (output_dir / "results.json").write_text(
        json.dumps(results, indent=2, default=_json_default, allow_nan=True)
    )
    log.print()
    log.print(report)
    log.print(f"Report and plots written to {output_dir.resolve()}")
    return results


if __name__ == "__main__":  # python -m sklearn_basemodel.demo [options]: same as `basemodel demo`
    from .cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
