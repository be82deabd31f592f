"""The models of a project, trained from the package's tables: the recipe, task by task.

:func:`fit_models` takes the baskets (hyperedges) and the history rows joined with their
targets, and fits, in order:

1. one Cleora embedder per modality (item column) on the baskets;
2. the behavioral profile: an EMDE sketch of each modality's decayed history plus the RFM
   columns the package computed;
3. the pretrainer: a ``SketchRecommender`` of the next horizon's items (the ``next_items``
   column, else the first item column): self-supervised, every customer is an example;
4. the universal profile: one fixed vector per customer from the pretrained trunk
   (:class:`~sklearn_basemodel.universal_profile.UniversalProfile`), for any downstream use;
5. one model per configured task (churn, propensity, spend), the best on held-out customers
   of: a network fine-tuned from the pretrained trunk, a small network on the RFM columns,
   gradient boosting on them, and their blend (:mod:`sklearn_basemodel.blending`), so a
   task's model is never below that baseline on the validation customers.

The result, :class:`Models`, predicts every task for new rows (:meth:`Models.predict`).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import top_k
from .threads import one_openmp_thread

__all__ = ["Models", "fit_models", "item_names", "rfm_columns", "task_targets"]

_BASE_RFM = ["n_events", "n_groups", "days_since_last_event", "days_since_first_event",
             "decay_weight_sum"]  # fmt: skip
_AMOUNT_RFM = ["total_amount", "mean_amount"]


def item_names(project):
    """The package's name of each item column (``basemodel_item_columns``: lower case)."""
    return [column.lower() for column in project.columns.items]


def rfm_columns(project):
    """The RFM columns of the history table the profile uses."""
    return _BASE_RFM + (_AMOUNT_RFM if project.columns.amount else [])


def _sql_name(value):
    """The package's column-name form of a value (macro ``basemodel.sql_name``)."""
    return re.sub("[^a-z0-9]+", "_", str(value).lower()).strip("_")


def task_targets(project):
    """Each configured task -> (kind, target column of the targets table).

    ``kind`` is ``"items"`` (next items), ``"binary"`` or ``"amount"``.

    Examples
    --------
    >>> from sklearn_basemodel.workflow import Project
    >>> project = Project.from_dict({"events": {"table": "t"},
    ...     "columns": {"customer": "c", "time": "t", "items": ["SKU", "category"]},
    ...     "tasks": {"next_items": {}, "churn": {},
    ...               "propensity": [{"column": "category", "value": "Home & Garden"}]}})
    >>> task_targets(project)  # doctest: +NORMALIZE_WHITESPACE
    {'next_items': ('items', 'future_sku_items'), 'churn': ('binary', 'churned'),
     'propensity_category_home_garden': ('binary', 'propensity_category_home_garden')}
    """
    tasks = project.tasks
    targets = {}
    if tasks.next_items is not None:
        targets["next_items"] = ("items", f"future_{tasks.next_items.lower()}_items")
    if tasks.churn is not None:
        targets["churn"] = ("binary", "churned")
    for task in tasks.propensity:
        name = f"propensity_{task.column.lower()}_{_sql_name(task.value)}"
        targets[name] = ("binary", name)
    if tasks.spend_horizon_days is not None:
        targets["spend"] = ("amount", "future_spend")
    return targets


def _pretraining_column(project):
    return (project.tasks.next_items or project.columns.items[0]).lower()


# --------------------------------------------------------------------------- fitting
@dataclass
class Models:
    """The fitted models of a project.

    Attributes
    ----------
    embedders : dict
        Item name -> fitted ``CleoraEmbedder``.
    recommender : Pipeline
        ``features`` (the profile) then ``model`` (the pretrained ``SketchRecommender``).
    tasks : dict
        Task name -> fitted model (a ``Pipeline`` with ``predict_proba`` for binary tasks,
        ``predict`` for amounts).
    chosen : dict
        Task name -> the candidate kept on the validation customers and every candidate's
        validation score.
    networks : dict
        Task name -> the network fine-tuned from the pretrained trunk (what ``explain``
        attributes, whether or not it was kept).
    history_column : str
        The history column the recommender blends in (``<item>_history``).
    universal : UniversalProfile or None
        The fitted universal profile (None in a model saved before it existed).
    """

    embedders: dict
    recommender: object
    tasks: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)
    history_column: str = ""
    k: int = 10
    universal: object = None

    def universal_profiles(self, rows):
        """The universal profile of each row, one column per feature (``embedding0`` .., then
        the RFM columns); None when the model has no universal profile."""
        if self.universal is None:
            return None
        values = self.universal.transform(rows)
        names = [str(name) for name in self.universal.get_feature_names_out()]
        return pd.DataFrame(values, columns=names, index=rows.index)

    def recommend(self, rows, k=None):
        """Top-k items and their scores per row: (items, scores) arrays of shape (n, k)."""
        k = self.k if k is None else k
        model = self.recommender.named_steps["model"]
        features = self.recommender.named_steps["features"].transform(rows)
        scores = model.predict_scores(features, history=rows[self.history_column].tolist())
        top, values = top_k(scores, min(k, scores.shape[1]))
        return model.entities_[top], values

    def predict(self, rows):
        """One score column per task (probability of the event, or the amount)."""
        out = {}
        for name, model in self.tasks.items():
            # gradient boosting alone runs single-threaded; the networks and the blend (which
            # limits its own booster) keep torch's threads
            alone = self.chosen.get(name, {}).get("kept") in _BOOSTERS
            with one_openmp_thread() if alone else contextlib.nullcontext():
                if hasattr(model, "predict_proba"):
                    out[name] = model.predict_proba(rows)[:, 1]
                else:
                    out[name] = model.predict(rows)
        return pd.DataFrame(out, index=rows.index)


def _embedder(kind, project, descriptions=None):
    from .. import CleoraEmbedder, RandomVectorEmbedder, TextEmbedder
    from ..embed.cleora.estimator import cleora_device

    size, seed = project.model.n_components, project.model.random_state
    if kind == "text":  # SVD needs fewer components than descriptions
        return TextEmbedder(min(size, max(1, len(descriptions) - 1)), random_state=seed)
    if kind == "cleora":
        return CleoraEmbedder(n_components=size, device=cleora_device(project.model.device),
                              random_state=seed)  # fmt: skip
    return RandomVectorEmbedder(n_components=size, random_state=seed)


def _embedders(project, baskets, descriptions, log):
    """One fitted embedder per item column, of the kind its modality names."""
    kinds = {m.column.lower(): m.embedder for m in project.modalities}
    embedders = {}
    for name in item_names(project):
        kind = kinds.get(name, "cleora")
        texts = descriptions.get(name) if kind == "text" else None
        embedder = _embedder(kind, project, texts)
        embedders[name] = embedder.fit(texts if kind == "text" else baskets[f"{name}_items"])
        n = len(embedder.vocabulary_)
        log(f"{kind} {name}: {n:,} entities" + ("" if kind == "text" else
                                                f" from {len(baskets):,} baskets"))  # fmt: skip
    return embedders


def _sketch_dim(model, embedder):
    """``model.sketch_dim``, with "auto" sized from the embedder's entities (as the recipe's
    profile sizes it)."""
    from ..recipes import resolve_sketch_dim

    return resolve_sketch_dim(model.sketch_dim, embedder)


def _profile(project, embedders, target_sketcher):
    from sklearn.frozen import FrozenEstimator

    from .. import EMDESketcher
    from ..recipes import behavioral_profile

    model = project.model
    main = _pretraining_column(project)
    blocks = [
        (name, EMDESketcher(FrozenEstimator(embedder), n_sketches=model.n_sketches,
                            sketch_dim=_sketch_dim(model, embedder),
                            random_state=model.random_state + i + 1,
                            handle_unknown="ignore"), f"{name}_history")
        for i, (name, embedder) in enumerate(embedders.items()) if name != main
    ]  # fmt: skip
    return behavioral_profile(
        target_sketcher, items=f"{main}_history", name=main, rfm=rfm_columns(project),
        blocks=blocks, handle_unknown="ignore", random_state=model.random_state,
    )  # fmt: skip


def _network_params(project, progress_bar):
    model = project.model
    return {
        "hidden_units": model.hidden_units, "max_epochs": model.max_epochs,
        "batch_size": 256, "validation_fraction": 0.1, "early_stopping": True,
        "n_iter_no_change": 2, "random_state": model.random_state, "progress_bar": progress_bar,
        "device": model.device,
    }  # fmt: skip


def _pretrain(project, baskets, rows, embedders, progress_bar, log):
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    from .. import EMDESketcher
    from ..recipes import pretrainer

    main = _pretraining_column(project)
    target = f"future_{main}_items"
    examples = rows[rows[target].map(len) > 0]
    if len(examples) < 20:
        raise ValueError(
            f"only {len(examples)} history rows have items in the next horizon to pretrain on; "
            "more data or more backtest.splits are needed."
        )
    model = project.model
    sketcher = EMDESketcher(FrozenEstimator(embedders[main]), n_sketches=model.n_sketches,
                            sketch_dim=_sketch_dim(model, embedders[main]),
                            random_state=model.random_state,
                            handle_unknown="ignore").fit(baskets[f"{main}_items"])  # fmt: skip
    profile = _profile(project, embedders, sketcher)
    recommender = pretrainer(sketcher, k=project.tasks.k, **_network_params(project, progress_bar))
    pipeline = Pipeline([("features", profile), ("model", recommender)])
    pipeline.fit(examples, examples[target].tolist())
    log(f"pretrained on {len(examples):,} rows, {len(recommender.history_)} epochs")
    return pipeline


def _universal_profile(project, recommender, rows, log):
    """The pretrained trunk's embedding, compressed, beside the profile's RFM columns: fitted
    (no label involved) on every training row."""
    from sklearn.frozen import FrozenEstimator

    from ..universal_profile import UniversalProfile

    universal = UniversalProfile(
        FrozenEstimator(recommender.named_steps["model"]),
        profile=FrozenEstimator(recommender.named_steps["features"]),
        random_state=project.model.random_state,
    ).fit(rows)
    log(f"universal profile: {universal.n_components_} components of the trunk's embedding + "
        f"{universal.n_features_out_ - universal.n_components_} RFM columns")  # fmt: skip
    return universal


def _held_out(rows, random_state):
    """Which rows are held out for choosing between models: those of a fifth of the
    customers (all their cut-offs)."""
    entities = np.sort(rows["entity_id"].astype(str).unique())
    rng = np.random.default_rng(random_state)
    held = set(rng.choice(entities, size=max(1, len(entities) // 5), replace=False))
    return rows["entity_id"].astype(str).isin(held).to_numpy()


# The cheap candidates: they run single-threaded (:func:`one_openmp_thread`) and, when kept
# alone or in a blend, are refitted on every customer (seconds); the networks keep their fit on
# the 80% (another fit would double the training time).
_BOOSTERS = ("rfm_gradient_boosting",)


def _candidates(kind, project, profile, recommender, progress_bar):
    """The network fine-tuned from the pretrained trunk, a small network on the RFM columns
    alone (:func:`~sklearn_basemodel.recipes.rfm_network`), and gradient boosting on them."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.pipeline import Pipeline

    from ..recipes import fine_tuner, rfm_network

    params = _network_params(project, progress_bar)
    regression = kind == "amount"
    booster = (HistGradientBoostingRegressor if regression else
               HistGradientBoostingClassifier)(random_state=project.model.random_state)  # fmt: skip
    rfm = rfm_columns(project)
    raw_rfm = ColumnTransformer([("rfm", "passthrough", rfm)])
    return {
        "network": fine_tuner(profile, recommender, regression=regression,
                              **params | {"freeze_epochs": 1}),
        # the project's hidden_units sizes the networks on the profile, not this small one
        "rfm_network": rfm_network(rfm, regression=regression,
                                   **{k: v for k, v in params.items() if k != "hidden_units"}),
        "rfm_gradient_boosting": Pipeline([("rfm", raw_rfm), ("model", booster)]),
    }  # fmt: skip


def _network_start(pipeline):
    """Whether the fine-tuned network kept the pretrained trunk, and the held-out losses of
    the two starts when ``pretrained_fallback`` compared them (else None)."""
    network = pipeline.named_steps["model"]
    losses = getattr(network, "fallback_valid_losses_", None)
    return {"pretrained_kept": bool(getattr(network, "pretrained_kept_", False)),
            "valid_losses": None if losses is None else {k: float(v) for k, v in losses.items()}}


def _fit_task(name, kind, column, project, rows, recommender, progress_bar, log):
    """Fit the candidates on 80% of the customers, keep the best on the other 20%.

    The candidates (:func:`_candidates`) and their blend (a weighted mean, scored on the
    validation customers with its weights cross-fitted there:
    :func:`sklearn_basemodel.blending.choose`). Gradient boosting, when kept alone or in the
    blend, is refitted on every customer (seconds); the networks keep their fit on the 80%
    (another fit would double the training time)."""
    from sklearn.base import clone

    from ..blending import choose, task_output
    from .blend import AmountBlend, TaskBlend, describe_kept

    population = rows[rows["in_churn_population"].astype(bool)] if kind != "items" else rows
    population = population[population[column].notna()]
    target = population[column].to_numpy(dtype=np.int64 if kind == "binary" else np.float64)
    if kind == "binary" and len(np.unique(target)) < 2:
        raise ValueError(f"task {name}: every training row has the label {target[:1]}; "
                         "nothing to learn.")  # fmt: skip
    is_held = _held_out(population, project.model.random_state)
    train, valid = population[~is_held], population[is_held]
    profile = recommender.named_steps["features"]
    model = recommender.named_steps["model"]
    predictions, fitted = {}, {}
    for label, candidate in _candidates(kind, project, profile, model, progress_bar).items():
        with one_openmp_thread() if label in _BOOSTERS else contextlib.nullcontext():
            fitted[label] = candidate.fit(train, target[~is_held])
            predictions[label] = task_output(kind, fitted[label], valid)
    scores, best, weights = choose(kind, target[is_held], predictions, valid["entity_id"],
                                   project.model.random_state)  # fmt: skip
    chosen = {"kept": best, "validation": scores, "rows": len(population),
              "network_start": _network_start(fitted["network"])}  # fmt: skip
    if best == "blend":
        chosen["weights"] = weights
    log(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items())
        + f"; kept {describe_kept(chosen)}")  # fmt: skip
    for label in _BOOSTERS:
        if weights.get(label):
            with one_openmp_thread():
                fitted[label] = clone(fitted[label]).fit(population, target)
    if best != "blend":
        return fitted[best], fitted["network"], chosen
    blend = (TaskBlend if kind == "binary" else AmountBlend)(
        fitted, weights, single_threaded=_BOOSTERS)
    return blend, fitted["network"], chosen


def fit_models(project, baskets, rows, *, descriptions=None, progress_bar=False, log=print):
    """Fit the embedders, the profile, the pretrainer and every task's model.

    Parameters
    ----------
    project : Project
    baskets : DataFrame
        The package's hyperedges before the last training cut-off (``<item>_items`` columns).
    rows : DataFrame
        History rows (``<item>_history`` mappings, RFM columns) joined with their targets, of
        the training cut-offs (complete horizons only).
    descriptions : dict, default=None
        Item name -> mapping item -> text, for the modalities embedded from text.
    progress_bar : bool, default=False
    log : callable, default=print
        Receives one line per fitted model.

    Returns
    -------
    Models
    """
    embedders = _embedders(project, baskets, descriptions or {}, log)
    recommender = _pretrain(project, baskets, rows, embedders, progress_bar, log)
    models = Models(embedders, recommender, history_column=f"{_pretraining_column(project)}_history",
                    k=project.tasks.k)  # fmt: skip
    models.universal = _universal_profile(project, recommender, rows, log)
    for name, (kind, column) in task_targets(project).items():
        if kind == "items":
            continue
        models.tasks[name], models.networks[name], models.chosen[name] = _fit_task(
            name, kind, column, project, rows, recommender, progress_bar, log
        )
    return models
