"""The main job, end to end: ``make demo`` / ``basemodel demo``.

:func:`run_demo` goes from raw events to evaluated models, the way a user would on their own
data, and reports what it measured:

1. generate a raw events table (:func:`~sklearn_basemodel.datasets.make_events`, about 1% of
   the rows malformed) and write it to a DuckDB file;
2. write a small dbt project that installs the ``basemodel`` dbt package and run ``dbt deps``
   and ``dbt build`` (:mod:`sklearn_basemodel.warehouse`: models and their data tests; every
   raw row is a staged event or a rejected row with a reason);
3. count the rows (raw, staged, rejected by reason) and reconcile the rejected rows, row by
   row, with the generator's record of which rows it broke;
4. read the basket (hyperedge), history and target tables (histories as decayed mappings);
5. fit Cleora embeddings of products and of categories on the baskets before the test split;
6. the BaseModel recipe (:mod:`sklearn_basemodel.recipes`): the behavioral profile (EMDE
   sketches of the decayed product and category histories plus RFM features) and the
   pretrainer, a ``SketchRecommender`` of the next 30 days' products; Recall@10 on a later
   split against the popularity and personal-frequency baselines
   (:mod:`sklearn_basemodel.baselines`);
7. the fine-tuner: a ``SketchClassifier`` for churn from the recommender's trunk, with a small
   ``GridSearchCV``, against gradient boosting on the RFM features;
8. plots and the report (:mod:`sklearn_basemodel.report`).

Every stage is a small function; :func:`run_demo` strings them together and returns the
measured numbers as a dict.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import report

__all__ = ["run_demo"]

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


# --------------------------------------------------------------------------- warehouse
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


def package_vars(truth, splits):
    """The ``basemodel`` package's vars for the generated table."""
    from .warehouse import dbt_vars

    return dbt_vars(
        _RAW_TABLE,
        splits,
        item_columns={"product": "product_id", "category": "category_id"},
        entity_column="customer_id",
        timestamp_column="event_time",
        event_type_column="event_type",
        group_column="basket_id",
        amount_column="amount",
        event_id_column="event_id",
        passthrough_columns=[_ROW_COLUMN],
        dedup_order_by=_ROW_COLUMN,
        valid_from=truth.start.strftime("%Y-%m-%d"),
        valid_to=truth.end.strftime("%Y-%m-%d"),
        horizon_days=_HORIZON_DAYS,
        decay_rate=_DECAY_RATE,
        # every customer gets a churn label (the package's default labels only those with an
        # event in the 90 days before the split)
        active_days=None,
    )


def _read_row_outcomes(database):
    """Raw and staged counts, the rejected rows with their reasons, staged negative amounts."""
    from .warehouse import read_relation

    raw = len(read_relation(database, _RAW_TABLE, columns=[_ROW_COLUMN]))
    staged = read_relation(database, "basemodel_stg_events", columns=[_ROW_COLUMN, "amount"])
    rejected = read_relation(
        database, "basemodel_rejected_events", columns=[_ROW_COLUMN, "rejection_reason"]
    )
    negative = staged.loc[staged["amount"] < 0, _ROW_COLUMN].to_numpy()
    return raw, len(staged), rejected, negative


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
    raw, staged, rejected, negative = _read_row_outcomes(database)
    generated = truth.malformed_reason.astype(object)
    rejected["generated_as"] = (
        generated.iloc[rejected[_ROW_COLUMN].to_numpy()].fillna("valid").to_numpy()
    )
    crosstab = {
        reason: group["generated_as"].value_counts().to_dict()
        for reason, group in rejected.groupby("rejection_reason")
    }
    by_reason = rejected["rejection_reason"].value_counts().to_dict()
    return {
        "raw": raw,
        "staged": staged,
        "rejected": len(rejected),
        "rejected_by_reason": {k: int(v) for k, v in sorted(by_reason.items())},
        "generated_malformed": {
            k: int(v) for k, v in generated.value_counts().sort_index().items()
        },
        "crosstab": {r: {s: int(n) for s, n in c.items()} for r, c in sorted(crosstab.items())},
        "negative_amount_generated": int((generated == "negative_amount").sum()),
        "negative_amount_staged": len(negative),
        "negative_amount_matched": int((generated.iloc[negative] == "negative_amount").sum()),
        "reconciled": raw == staged + len(rejected) and _reconciled(crosstab, generated),
    }


def _reconciled(crosstab, generated):
    """Every rejected row was generated malformed with the matching kind, and every malformed
    row of a kind the package checks was rejected."""
    matches = all(
        set(sources) <= {s for s, rs in _EXPECTED_REASONS.items() if reason in rs}
        for reason, sources in crosstab.items()
    )
    per_kind = {
        source: sum(crosstab.get(r, {}).get(source, 0) for r in reasons)
        for source, reasons in _EXPECTED_REASONS.items()
        if reasons
    }
    return bool(matches and all(per_kind[s] == int((generated == s).sum()) for s in per_kind))


def read_tables(database):
    """The package's baskets and the history rows joined with their targets.

    Returns
    -------
    baskets : DataFrame
        ``basemodel_hyperedges``: one row per basket, ``product_items``, ``category_items``.
    customers : DataFrame
        ``basemodel_entity_history`` joined with ``basemodel_entity_targets`` (one row per
        split and customer), with ``product_history`` / ``category_history``: the decayed
        histories as mappings key -> weight.
    """
    from .warehouse import read_histories, read_relation

    baskets = read_relation(
        database,
        "basemodel_hyperedges",
        columns=["entity_id", "group_id", "last_event_at", "product_items", "category_items"],
    )
    history = read_histories(
        database, ["product", "category"],
        columns=["split_id", "split_at", "entity_id", *_RFM_COLUMNS],
    )  # fmt: skip
    targets = read_relation(
        database,
        "basemodel_entity_targets",
        columns=["split_at", "entity_id", "is_horizon_complete", "churned", "n_future_events",
                 "future_product_items"],
    )  # fmt: skip
    customers = history.merge(targets, on=["split_at", "entity_id"], how="inner", validate="1:1")
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
    keep = np.not_equal(labels, None)  # elementwise on an object array
    vectors, labels = vectors[keep], labels[keep]
    k = min(n_neighbours, len(vectors) - 1)
    if k < 1:
        return float("nan"), float("nan")
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    same = float((labels[nearest] == labels[:, None]).mean())
    shares = pd.Series(labels).value_counts(normalize=True).to_numpy()
    return same, float((shares**2).sum())


# --------------------------------------------------------------------------- the recipe
def build_profile(product_sketcher, category_embedder, settings, random_state=0):
    """The behavioral profile: the prefit product sketcher (frozen, so the recommender decodes
    with the very same codes), a category sketch and the RFM columns."""
    from sklearn.frozen import FrozenEstimator

    from . import EMDESketcher
    from .recipes import behavioral_profile

    n_sketches, sketch_dim = settings["category_sketches"]
    categories = EMDESketcher(
        embedder=FrozenEstimator(category_embedder), n_sketches=n_sketches,
        sketch_dim=sketch_dim, random_state=random_state,
    )  # fmt: skip
    return behavioral_profile(
        product_sketcher, items="product_history", name="products", rfm=_RFM_COLUMNS,
        blocks=[("categories", categories, "category_history")],
    )  # fmt: skip


def pretrain_recommender(train, profile, product_sketcher, settings, *, progress_bar, verbose,
                         random_state=0):  # fmt: skip
    """Pipeline(profile, pretrainer) fitted to predict the next 30 days' products."""
    from sklearn.pipeline import Pipeline

    from .recipes import pretrainer

    recommender = pretrainer(
        product_sketcher, k=_K, hidden_units=settings["hidden_units"],
        n_blocks=settings["n_blocks"], max_epochs=settings["recommender_epochs"],
        batch_size=settings["batch_size"], lr=1e-3, validation_fraction=0.1,
        early_stopping=True, n_iter_no_change=2, progress_bar=progress_bar,
        callbacks=report.epoch_printer("recommender", verbose), random_state=random_state,
    )  # fmt: skip
    pipeline = Pipeline([("features", profile), ("model", recommender)])
    return pipeline.fit(train, train["future_product_items"].tolist())


def evaluate_recommendations(pipeline, test, baskets, split_at):
    """Recall@10 of the model, the model with the own-history boost, and the baselines.

    Popularity counts the products of the baskets of the last 30 days; personal frequency
    ranks the customer's own decayed history, ties and the rest by popularity over all baskets
    before the split.
    """
    from .baselines import PersonalFrequencyRecommender, PopularityRecommender
    from .metrics import recall_at_k

    truth = test["future_product_items"].tolist()
    history = test["product_history"].tolist()
    recent = baskets["last_event_at"] > split_at - pd.Timedelta(days=_HORIZON_DAYS)
    popularity = PopularityRecommender().fit(baskets.loc[recent, "product_items"])
    personal = PersonalFrequencyRecommender().fit(baskets["product_items"])
    return {
        "popularity": recall_at_k(truth, popularity.predict(history, k=_K), k=_K),
        "personal_frequency": recall_at_k(truth, personal.predict(history, k=_K), k=_K),
        "sketch_recommender": recall_at_k(truth, pipeline.predict(test), k=_K),
        "sketch_recommender_with_history": recall_at_k(
            truth, pipeline.predict(test, history=history), k=_K
        ),
    }


def churn_classifier(profile, recommender, settings, *, progress_bar=False, callbacks=None,
                     random_state=0):  # fmt: skip
    """The fine-tuner: Pipeline(frozen profile, SketchClassifier from the recommender's trunk)."""
    from .recipes import fine_tuner

    return fine_tuner(
        profile, recommender, freeze_epochs=2, max_epochs=settings["classifier_epochs"],
        batch_size=settings["batch_size"], lr=3e-3, validation_fraction=0.1,
        early_stopping=True, n_iter_no_change=2, progress_bar=progress_bar,
        callbacks=callbacks, random_state=random_state,
    )  # fmt: skip


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
        pipeline, settings["grid"], scoring="roc_auc", cv=GroupKFold(n_splits=settings["cv"]),
        refit=True, verbose=3 if verbose else 0,
    )  # fmt: skip
    search.fit(train, train["churned"], groups=train["entity_id"])
    cv = search.cv_results_
    rows = [
        {
            "params": {k.removeprefix("model__"): v for k, v in params.items()},
            "mean_auc": float(mean),
            "std_auc": float(std),
            "mean_fit_seconds": float(fit_time),
            "rank": int(rank),
        }
        for params, mean, std, fit_time, rank in zip(
            cv["params"],
            cv["mean_test_score"],
            cv["std_test_score"],
            cv["mean_fit_time"],
            cv["rank_test_score"],
        )
    ]
    return search, rows


# --------------------------------------------------------------------------- stages
def _clear_project(project_dir):
    for stale in ("target", "logs", "dbt_packages", "package-lock.yml"):
        path = project_dir / stale
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _stage_warehouse(log, results, run):
    """Generate the events, load them into DuckDB, run the dbt package, reconcile the rows."""
    from .datasets import write_events
    from .warehouse import run_dbt_package, split_times, write_dbt_project

    database, project_dir = run["database"], run["output_dir"] / "dbt_project"
    with log.stage("Generate events") as notes:
        events, truth = generate_events(run["n_events"], run["random_state"])
        run["splits"] = split_times(truth.end, run["n_train_splits"], _HORIZON_DAYS)
        notes.append(
            f"{len(events):,} rows, {events['customer_id'].nunique():,} customers, "
            f"{events['product_id'].nunique():,} products, "
            f"{int(truth.malformed.sum()):,} malformed"
        )
    with log.stage("Write the raw events to DuckDB") as notes:
        for stale in (database, database.with_name(database.name + ".wal")):
            stale.unlink(missing_ok=True)
        write_events(events, database, table=_RAW_TABLE)
        notes.append(f"{database} table {_RAW_TABLE}")
        run["files"].append(database.name)
    with log.stage("Run the basemodel dbt package (dbt deps, dbt build)") as notes:
        _clear_project(project_dir)
        vars = package_vars(truth, run["splits"])
        write_dbt_project(project_dir, database, vars, name="basemodel_demo")
        results["dbt_nodes"] = run_dbt_package(project_dir)
        notes.append(", ".join(f"{n} {k}" for k, n in results["dbt_nodes"].items()))
        run["files"].append("dbt_project/")
    with log.stage("Count and reconcile rows") as notes:
        rows = results["rows"] = count_rows(database, truth)
        notes.append(
            f"raw {rows['raw']:,} = staged {rows['staged']:,} + rejected {rows['rejected']:,}; "
            f"reconciled with the generator: {rows['reconciled']}"
        )


def _split_rows(customers, test_split):
    """Training rows (complete horizons before the test split), test rows, and those of each
    with products in the next 30 days (the recommender's rows)."""
    is_test = customers["split_at"] == test_split
    train = customers[~is_test & customers["is_horizon_complete"]].reset_index(drop=True)
    test = customers[is_test].reset_index(drop=True)

    def with_future(rows):
        return rows[rows["future_product_items"].map(len) > 0].reset_index(drop=True)

    return train, test, with_future(train), with_future(test)


def _stage_read(log, results, run):
    """Read the tables back; split the rows into training and test."""
    splits = run["splits"]
    with log.stage("Read baskets, histories and targets") as notes:
        baskets, customers = read_tables(run["database"])
        test_split = run["test_split"] = pd.Timestamp(splits[-1])
        baskets = baskets[baskets["last_event_at"] <= test_split].reset_index(drop=True)
        train, test, train_rec, test_rec = _split_rows(customers, test_split)
        results["data"] = {
            "baskets": len(baskets),
            "histories": len(customers),
            "train_splits": splits[:-1],
            "test_split": splits[-1],
            "train_rows": len(train),
            "train_rows_with_future": len(train_rec),
            "test_rows": len(test),
            "test_rows_with_future": len(test_rec),
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
    run.update(baskets=baskets, train=train, test=test, train_rec=train_rec, test_rec=test_rec)


def _stage_embed(log, results, run):
    """Cleora embeddings of products and categories, the product sketcher."""
    settings, seed = run["settings"], run["random_state"]
    with log.stage("Fit Cleora embeddings and EMDE sketchers") as notes:
        products, categories = fit_embeddings(run["baskets"], settings, seed)
        run["product_sketcher"] = fit_product_sketcher(products, run["baskets"], settings, seed)
        category_of = product_categories(run["baskets"])
        same, chance = neighbour_agreement(products, category_of)
        results["embeddings"] = {"same_category_share": same, "chance_share": chance}
        results["data"]["products"] = len(products.vocabulary_)
        results["data"]["categories"] = len(categories.vocabulary_)
        notes.append(
            f"{len(products.vocabulary_):,} products, {len(categories.vocabulary_):,} "
            f"categories; nearest products in the same category: {same:.0%} (chance "
            f"{chance:.0%})"
        )
    run.update(products=products, categories=categories, category_of=category_of)


def _stage_pretrain(log, results, run):
    """The profile and the pretrained recommender; Recall@10 against the baselines."""
    settings, seed, train_rec = run["settings"], run["random_state"], run["train_rec"]
    with log.stage("Pretrain SketchRecommender (next 30 days' products)") as notes:
        profile = build_profile(run["product_sketcher"], run["categories"], settings, seed)
        pipeline = pretrain_recommender(
            train_rec, profile, run["product_sketcher"], settings,
            progress_bar=run["progress"], verbose=run["verbose"], random_state=seed,
        )  # fmt: skip
        recommender = pipeline.named_steps["model"]
        results["data"]["n_features"] = int(recommender.n_features_in_)
        notes.append(f"{len(recommender.history_)} epochs on {len(train_rec):,} rows")
    with log.stage("Evaluate Recall@10 against baselines") as notes:
        recall = evaluate_recommendations(
            pipeline, run["test_rec"], run["baskets"], run["test_split"]
        )
        results["recall_at_10"] = recall
        notes.append(", ".join(f"{k} {v:.3f}" for k, v in recall.items()))
    run.update(recommender=recommender, profile=pipeline.named_steps["features"])


def _fit_churn(pipeline, results, run):
    """The churn pipeline fitted, through GridSearchCV when asked."""
    train, settings, verbose = run["train"], run["settings"], run["verbose"]
    if not run["grid_search"]:
        results["grid_search"] = None
        return pipeline.fit(train, train["churned"])
    search, grid_rows = grid_search_churn(pipeline, train, settings, verbose)
    classifier = search.best_estimator_
    report.print_epochs("refit of the best", classifier.named_steps["model"].history_, verbose)
    results["grid_search"] = {
        "best_params": {k.removeprefix("model__"): v for k, v in search.best_params_.items()},
        "best_cv_auc": float(search.best_score_),
        "cv": settings["cv"],
        "results": grid_rows,
    }
    return classifier


def _stage_churn(log, results, run):
    """The fine-tuned churn classifier against RFM + gradient boosting."""
    from sklearn.metrics import roc_auc_score

    settings, train, test = run["settings"], run["train"], run["test"]
    grid_search, verbose = run["grid_search"], run["verbose"]
    title = "Fine-tune SketchClassifier for churn"
    if grid_search:
        n_candidates = math.prod(len(v) for v in settings["grid"].values())
        title += f" (GridSearchCV: {n_candidates} candidates x {settings['cv']} folds + refit)"
    with log.stage(title + "; RFM + gradient boosting baseline") as notes:
        pipeline = churn_classifier(
            run["profile"], run["recommender"], settings, random_state=run["random_state"],
            progress_bar=run["progress"] and not grid_search,
            callbacks=None if grid_search else report.epoch_printer("churn classifier", verbose),
        )  # fmt: skip
        classifier = run["classifier"] = _fit_churn(pipeline, results, run)
        baseline = rfm_baseline(train, run["random_state"])
        model = classifier.named_steps["model"]
        churn = results["churn_auc"] = {
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
            f"AUC sketch classifier {churn['sketch_classifier']:.3f}, "
            f"RFM gradient boosting {churn['rfm_gradient_boosting']:.3f}"
        )


def _stage_plots(log, results, run):
    output_dir = run["output_dir"]
    with log.stage("Plot training curves and the product map") as notes:
        if report.pyplot() is None:
            message = "matplotlib is not installed: plots skipped (pip install matplotlib)"
            notes.append(message)
            results["notes"].append(message)
            return
        curves = report.plot_training_curves(
            {
                "SketchRecommender (pretraining)": run["recommender"].history_,
                "SketchClassifier (churn fine-tuning)": (
                    run["classifier"].named_steps["model"].history_
                ),
            },
            output_dir / "training_curves.png",
        )
        product_map = report.plot_product_map(
            run["products"], run["category_of"], output_dir / "product_map.png",
            run["random_state"],
        )  # fmt: skip
        run["files"] += [Path(curves).name, Path(product_map).name]
        notes.append(", ".join(run["files"][-2:]))


# --------------------------------------------------------------------------- the demo
def _check_arguments(n_events, n_train_splits, settings):
    if int(n_events) < 1000:
        raise ValueError(f"n_events={n_events} is too small for the demo; use at least 1000.")
    if int(n_train_splits) < 1:
        raise ValueError(f"n_train_splits must be at least 1, got {n_train_splits}.")
    unknown = set(settings or {}) - set(_SETTINGS)
    if unknown:
        raise ValueError(f"Unknown settings {sorted(unknown)}; known: {sorted(_SETTINGS)}.")
    return {**_SETTINGS, **(settings or {})}


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
    settings = _check_arguments(n_events, n_train_splits, settings)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    run = {
        "n_events": int(n_events), "n_train_splits": int(n_train_splits),
        "random_state": random_state, "settings": settings, "output_dir": output_dir,
        "database": output_dir / "warehouse.duckdb", "grid_search": grid_search,
        "verbose": verbose, "files": [],
        "progress": bool(verbose) and sys.stderr.isatty() if progress is None else progress,
    }  # fmt: skip
    results = {
        "n_events": int(n_events),
        "random_state": random_state,
        "output_dir": os.fspath(output_dir),
        "database": run["database"].name,
        "notes": [],
    }
    log = report.Progress(9 + bool(plots), verbose)
    started = time.perf_counter()
    stages = [_stage_warehouse, _stage_read, _stage_embed, _stage_pretrain, _stage_churn]
    for stage in stages + ([_stage_plots] if plots else []):
        stage(log, results, run)
    results["timings"] = dict(log.timings)
    results["cpu_timings"] = dict(log.cpu_timings)
    results["total_seconds"] = time.perf_counter() - started
    results["files"] = run["files"] + ["report.md", "results.json"]
    text = report.write_results(results, output_dir)
    log.print()
    log.print(text)
    log.print(f"Report and plots written to {output_dir.resolve()}")
    return results
