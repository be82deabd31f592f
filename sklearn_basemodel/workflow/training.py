"""The models of a project, trained from the package's tables: the recipe, task by task.

:func:`fit_models` takes the baskets (hyperedges) and the history rows joined with their
targets, and fits, in order:

1. one Cleora embedder per modality (item column) on the baskets;
2. the behavioral profile: an EMDE sketch of each modality's decayed history plus the RFM
   columns the package computed;
3. the pretrainer: a ``SketchRecommender`` of the next horizon's items (the ``next_items``
   column, else the first item column): self-supervised, every customer is an example;
4. the next-items ranker: a :class:`~sklearn_basemodel.history_ranker.HistoryRanker` fitted on
   the pretraining rows the network was validated on (not trained on), which learns how much
   the customer's own decayed history counts beside the network's scores, or keeps the tuned
   history boost where it does not validate better;
5. the universal profile: one fixed vector per customer from the pretrained trunk
   (:class:`~sklearn_basemodel.universal_profile.UniversalProfile`), for any downstream use;
6. one model per configured task (churn, propensity, spend), the best on held-out customers
   of: a network fine-tuned from the pretrained trunk, a small network on the RFM columns,
   gradient boosting on them, and their blend (:mod:`sklearn_basemodel.blending`), so a
   task's model is never below that baseline on the validation customers.

The result, :class:`Models`, predicts every task for new rows (:meth:`Models.predict`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import top_k
from .threads import OneThread

__all__ = ["Models", "describe_kept", "explained_candidate", "fit_models", "item_names",
           "rfm_columns", "task_targets"]

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
        Task name -> fitted model (a ``BlendedClassifier`` for binary tasks, a
        ``BlendedRegressor`` for amounts: the kept candidate or blend).
    chosen : dict
        Task name -> the candidate kept on the validation customers and every candidate's
        validation score.
    networks : dict
        Task name -> the network fine-tuned from the pretrained trunk, kept or not
        (``explain`` attributes it when the task keeps gradient boosting alone).
    history_column : str
        The history column the recommender blends in (``<item>_history``).
    universal : UniversalProfile or None
        The fitted universal profile (None in a model saved before it existed).
    ranker : HistoryRanker or None
        Ranks the next items from the recommender's scores and the history column (or
        applies the boost it chose); None without enough held-out pretraining rows, or in a
        model saved before it existed: the recommender's fixed history blend is used.
    next_items : dict
        What the ranker kept (``"ranker"``, ``"boost"`` or ``"fixed_blend"``), on how many
        held-out rows, and the validation scores of ranker and boost.
    """

    embedders: dict
    recommender: object
    tasks: dict = field(default_factory=dict)
    chosen: dict = field(default_factory=dict)
    networks: dict = field(default_factory=dict)
    history_column: str = ""
    k: int = 10
    universal: object = None
    ranker: object = None
    next_items: dict = field(default_factory=dict)

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
        history = rows[self.history_column].tolist()
        if self.ranker is not None:
            return self.ranker.rank(rows, {_RANKER_HISTORY: history}, k)
        model = self.recommender.named_steps["model"]
        features = self.recommender.named_steps["features"].transform(rows)
        scores = model.predict_scores(features, history=history)
        top, values = top_k(scores, min(k, scores.shape[1]))
        return model.entities_[top], values

    def predict(self, rows):
        """One score column per task (probability of the event, or the amount)."""
        out = {}
        for name, model in self.tasks.items():
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


def _profile(project, embedders, target_sketcher):
    from ..recipes import behavioral_profile, history_block

    model = project.model
    main = _pretraining_column(project)
    # the histories are decayed in the warehouse (mappings item -> weight): no ages here
    blocks = [
        history_block(name, embedder, f"{name}_history", n_sketches=model.n_sketches,
                      sketch_dim=model.sketch_dim, random_state=model.random_state + i + 1)
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
    from ..recipes import pretrainer, resolve_sketch_dim

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
                            sketch_dim=resolve_sketch_dim(model.sketch_dim, embedders[main]),
                            random_state=model.random_state,
                            handle_unknown="ignore").fit(baskets[f"{main}_items"])  # fmt: skip
    profile = _profile(project, embedders, sketcher)
    recommender = pretrainer(sketcher, k=project.tasks.k, **_network_params(project, progress_bar))
    pipeline = Pipeline([("features", profile), ("model", recommender)])
    pipeline.fit(examples, examples[target].tolist())
    log(f"pretrained on {len(examples):,} rows, {len(recommender.history_)} epochs")
    return pipeline, examples


# The history's label in the ranker's features and report.
_RANKER_HISTORY = "history"
# Fewest held-out pretraining rows (customers at a cut-off) to learn the ranker on: fewer
# leave the fixed history blend of the recommender.
_MIN_RANKER_ROWS = 50


def _fit_ranker(project, recommender, examples, log):
    """The next-items ranker (:class:`~sklearn_basemodel.history_ranker.HistoryRanker`),
    fitted on the pretraining rows the network held out for early stopping, or None when
    they are too few. The other pretraining rows give the items' popularity and repeat rate.

    Returns the fitted ranker (or None) and its report record.
    """
    from ..history_ranker import HistoryRanker

    model = recommender.named_steps["model"]
    held_out = getattr(model, "validation_rows_", None)
    if held_out is None or len(held_out) < _MIN_RANKER_ROWS:
        n = 0 if held_out is None else len(held_out)
        log(f"next items: {n} held-out pretraining rows (< {_MIN_RANKER_ROWS}); the "
            f"recommender's fixed history blend is used")  # fmt: skip
        return None, {"kept": "fixed_blend", "rows": n}
    main = _pretraining_column(project)
    history, target = f"{main}_history", f"future_{main}_items"
    trained = np.setdiff1d(np.arange(len(examples)), held_out)
    rows, others = examples.iloc[held_out], examples.iloc[trained]
    ranker = HistoryRanker(recommender, k=project.tasks.k,
                           random_state=project.model.random_state)  # fmt: skip
    ranker.fit(rows, rows[target].tolist(), {_RANKER_HISTORY: rows[history].tolist()},
               item_rows=(others[history].tolist(), others[target].tolist()))  # fmt: skip
    k = project.tasks.k
    chosen = {"kept": ranker.kept_, "rows": len(rows),
              "validation": {f"ranker_recall@{k}": ranker.cv_score_[0],
                             f"ranker_ndcg@{k}": ranker.cv_score_[1],
                             f"boost_recall@{k}": ranker.boost_score_[0],
                             f"boost_ndcg@{k}": ranker.boost_score_[1]},
              "boost": dict(ranker.boost_)}  # fmt: skip
    log(f"next items: ranker (out of fold) Recall@{k} {ranker.cv_score_[0]:.4f}, history "
        f"boost {ranker.boost_score_[0]:.4f} ({ranker.boost_['history_blend']} "
        f"{ranker.boost_['history_weight']:g}) on {len(rows):,} held-out rows; kept "
        f"{ranker.kept_}")  # fmt: skip
    return ranker, chosen


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


# The cheap candidates: fitted and asked single-threaded (:class:`OneThread`: their OpenMP
# threads would fight torch's) and, when kept alone or in a blend, refitted on every customer
# (seconds); the networks keep their fit on the 80% (another fit would double the training time).
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
    return [
        ("network", fine_tuner(profile, recommender, regression=regression,
                               **params | {"freeze_epochs": 1})),
        # the project's hidden_units sizes the networks on the profile, not this small one
        ("rfm_network", rfm_network(rfm, regression=regression,
                                    **{k: v for k, v in params.items() if k != "hidden_units"})),
        ("rfm_gradient_boosting", OneThread(Pipeline([("rfm", raw_rfm), ("model", booster)]))),
    ]  # fmt: skip


def _network_start(pipeline):
    """Whether the fine-tuned network kept the pretrained trunk, and the held-out losses of
    the two starts when ``pretrained_fallback`` compared them (else None)."""
    network = pipeline.named_steps["model"]
    losses = getattr(network, "fallback_valid_losses_", None)
    return {"pretrained_kept": bool(getattr(network, "pretrained_kept_", False)),
            "valid_losses": None if losses is None else {k: float(v) for k, v in losses.items()}}


def describe_kept(chosen):
    """The kept candidate of a task, with the blend's weights (those above 0) when it is the
    blend: ``"blend (network 0.4, rfm_gradient_boosting 0.6)"``."""
    weights = chosen.get("weights")
    if chosen["kept"] != "blend" or not weights:
        return chosen["kept"]
    return "blend (" + ", ".join(f"{k} {w:g}" for k, w in weights.items() if w) + ")"


# The candidates whose gradients reach their inputs (``explain`` can attribute them).
_NETWORKS = ("network", "rfm_network")


def explained_candidate(models, task):
    """The candidate ``explain`` attributes for a task: the kept one when it is a network;
    in a blend, its network of largest weight; the fine-tuned network otherwise (gradient
    boosting kept alone has no gradients).

    Returns
    -------
    name : str
    estimator : fitted Pipeline ending in a sketch network
    """
    chosen = models.chosen.get(task, {})
    weights = chosen.get("weights") or {chosen.get("kept"): 1.0}
    blended = models.tasks.get(task)
    kept = {name: w for name, w in weights.items() if w > 0 and name in _NETWORKS}
    if not kept or not hasattr(blended, "candidates_"):  # a model saved before the blend
        return "network", models.networks[task]
    name = max(kept, key=lambda n: (kept[n], n == "network"))
    return name, blended.candidates_[name]


def _fit_task(name, kind, column, project, rows, recommender, progress_bar, log):
    """The task's candidates (:func:`_candidates`) and their blend, chosen on a fifth of the
    customers: a :class:`~sklearn_basemodel.blending.BlendedClassifier` (or
    ``BlendedRegressor``) grouped by customer. Gradient boosting, when kept alone or in the
    blend, is refitted on every customer (seconds); the networks keep their fit on the 80%
    (another fit would double the training time).

    Returns the fitted blended estimator, the fine-tuned network (kept or not: what
    ``explain`` attributes) and the ``chosen`` record of the report."""
    from ..blending import BlendedClassifier, BlendedRegressor

    population = rows[rows["in_churn_population"].astype(bool)] if kind != "items" else rows
    population = population[population[column].notna()]
    target = population[column].to_numpy(dtype=np.int64 if kind == "binary" else np.float64)
    if kind == "binary" and len(np.unique(target)) < 2:
        raise ValueError(f"task {name}: every training row has the label {target[:1]}; "
                         "nothing to learn.")  # fmt: skip
    profile = recommender.named_steps["features"]
    model = recommender.named_steps["model"]
    candidates = _candidates(kind, project, profile, model, progress_bar)
    blended = (BlendedClassifier if kind == "binary" else BlendedRegressor)(
        candidates, validation_fraction=0.2, refit=list(_BOOSTERS),
        random_state=project.model.random_state,
    ).fit(population, target, groups=population["entity_id"].astype(str).to_numpy())
    network = blended.candidates_["network"]
    chosen = {"kept": blended.chosen_, "validation": blended.validation_scores_,
              "rows": len(population), "network_start": _network_start(network)}  # fmt: skip
    if blended.chosen_ == "blend":
        chosen["weights"] = blended.weights_
    log(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in chosen["validation"].items())
        + f"; kept {describe_kept(chosen)}")  # fmt: skip
    return blended, network, chosen


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
    recommender, examples = _pretrain(project, baskets, rows, embedders, progress_bar, log)
    models = Models(embedders, recommender, history_column=f"{_pretraining_column(project)}_history",
                    k=project.tasks.k)  # fmt: skip
    models.ranker, models.next_items = _fit_ranker(project, recommender, examples, log)
    models.universal = _universal_profile(project, recommender, rows, log)
    for name, (kind, column) in task_targets(project).items():
        if kind == "items":
            continue
        models.tasks[name], models.networks[name], models.chosen[name] = _fit_task(
            name, kind, column, project, rows, recommender, progress_bar, log
        )
    return models
