"""The BaseModel recipe: a behavioral profile, a pretrainer and a fine-tuner.

The recipe of the EMDE / BaseModel papers, as three composable pieces that the demo, the
examples and the benchmarks share:

1. **The behavioral profile** (:func:`behavioral_profile`): a ``ColumnTransformer`` that turns
   one row per customer (or session, or history prefix) into fixed-size features - the
   decayed history sketched on learned item vectors, the most recent basket sketched alone,
   the decayed history sketched on random vectors (ID hashing: it tells apart items the item
   vectors put close together) and RFM columns. :func:`sequence_examples` makes the
   self-supervised rows from ordered baskets (every prefix -> the next basket).
2. **The pretrainer** (:func:`pretrainer`): a ``SketchRecommender`` that learns to predict the
   sketch of future behaviour from the profile, decoded with the row's own history blended in
   (``history_mode="boost"``); :func:`history_weights` gives that history,
   :func:`tune_history_boost` chooses its weight and decay on validation rows, and
   :func:`fine_tune_recommender` trains a copy further on other rows, its learning
   rate chosen on held-out rows.
3. **The fine-tuner** (:func:`fine_tuner`): a ``SketchClassifier`` (or any head) that starts
   from the pretrained trunk, on the frozen profile.

Examples
--------
>>> import numpy as np
>>> from sklearn_basemodel import CleoraEmbedder
>>> from sklearn_basemodel.recipes import behavioral_profile, sequence_examples
>>> baskets = [[["milk", "bread"], ["milk"], ["beer"]], [["tea"], ["tea", "milk"]]]
>>> examples = sequence_examples(baskets)
>>> examples[["key", "t", "items", "ages", "last", "target"]].head(2)
   key  t                items       ages           last  target
0    0  1        [milk, bread]     [0, 0]  [milk, bread]  [milk]
1    0  2  [milk, bread, milk]  [1, 1, 0]         [milk]  [beer]
>>> vectors = CleoraEmbedder(n_components=8, random_state=0).fit(
...     [b for user in baskets for b in user])
>>> profile = behavioral_profile(vectors, n_sketches=2, sketch_dim=4, half_life=1.0,
...                              ages="ages", last="last", id_dim=4)
>>> profile.fit_transform(examples).shape
(5, 24)

The pretrainer learns the next basket from every prefix; the fine-tuner starts a classifier
from its trunk, on the frozen profile:

>>> from sklearn_basemodel.recipes import fine_tuner, pretrainer
>>> pairs = examples[~examples["is_full"]]
>>> target = profile.named_transformers_["last_basket"]  # decode with the same codes
>>> recommender = pretrainer(target, k=2, hidden_units=8, max_epochs=2, random_state=0)
>>> recommender.fit(profile.transform(pairs), pairs["target"].tolist()).predict(
...     profile.transform(pairs)).shape
(3, 2)
>>> [name for name, _ in fine_tuner(profile, recommender, freeze_epochs=1).steps]
['features', 'model']
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd

from .decay import decayed_rows, weighted_rows

__all__ = [
    "behavioral_profile",
    "fine_tune_recommender",
    "fine_tuner",
    "half_life_of_factor",
    "histories_at",
    "history_block",
    "history_weights",
    "pretrainer",
    "resolve_sketch_dim",
    "rfm_network",
    "rfm_scaler",
    "sequence_examples",
    "signed_log1p",
    "sketch_dim_for",
    "split_recommender",
    "tune_history_boost",
]

# The width of a sketch ("auto"): about this many entities per bucket, a power of two within
# the bounds. The decoded ranking cannot separate the entities that share buckets, so a large
# catalogue needs finer partitionings (on Ta-Feng's 12,000 items Recall@10 of the model alone
# rose from .103 at 64 buckets to .119 at 128 and .132 at 256); a small one gains nothing.
_ENTITIES_PER_BUCKET = 50
_SKETCH_DIM_RANGE = (64, 256)


# --------------------------------------------------------------------------- rows
def sequence_examples(sequences, keys=None):
    """Self-supervised rows from ordered baskets: every prefix, and the basket after it.

    A customer's baskets (or a session's clicks, each a basket of one) give one row per
    prefix length ``t``: the items of baskets ``0 .. t-1``, their ages in baskets, the last
    basket of the prefix and basket ``t`` as the target. The row of the whole sequence
    (``is_full``, target None) is the one to predict the future from.

    Parameters
    ----------
    sequences : iterable of sequences of baskets
        One sequence per customer, oldest basket first; a basket is a list of item keys.
    keys : sequence, default=None
        One key per sequence (customer or session id); None numbers them 0, 1, ...

    Returns
    -------
    examples : DataFrame
        ``key``, ``t`` (baskets in the prefix), ``items`` (every item of the prefix, oldest
        first), ``ages`` (per item: baskets between its basket and the prefix's last one, 0
        for the last), ``last`` (the prefix's last basket), ``target`` (basket ``t``; None for
        the whole sequence) and ``is_full``.

    Examples
    --------
    >>> sequence_examples([[["a"], ["b", "c"]]])[["t", "items", "ages", "target", "is_full"]]
       t      items       ages  target  is_full
    0  1        [a]        [0]  [b, c]    False
    1  2  [a, b, c]  [1, 0, 0]    None     True
    """
    sequences = [[list(basket) for basket in sequence] for sequence in sequences]
    keys = range(len(sequences)) if keys is None else list(keys)
    if len(keys) != len(sequences):
        raise ValueError(f"{len(keys)} keys for {len(sequences)} sequences; pass one key each.")
    rows = []
    for key, baskets in zip(keys, sequences):
        items, basket_of = [], []
        for t in range(1, len(baskets) + 1):
            items = items + baskets[t - 1]
            basket_of = basket_of + [t - 1] * len(baskets[t - 1])
            ages = [t - 1 - b for b in basket_of]
            target = baskets[t] if t < len(baskets) else None
            rows.append((key, t, items, ages, baskets[t - 1], target, t == len(baskets)))
    columns = ["key", "t", "items", "ages", "last", "target", "is_full"]
    return pd.DataFrame(rows, columns=columns)


def histories_at(events, split, *, horizon_days=30, entity="customer_id", time="event_time",
                 items=None, target=None):  # fmt: skip
    """Each entity's history at a split time and its items in the horizon after it.

    The pandas counterpart of the dbt package's history and target tables
    (``basemodel_entity_history``, ``basemodel_entity_targets``), for events that fit in
    memory.

    Parameters
    ----------
    events : DataFrame
        One row per event with the ``entity``, ``time`` and item columns.
    split : datetime-like
        Histories hold the events up to it (inclusive).
    horizon_days : float, default=30
        The target holds the events in ``(split, split + horizon_days]``.
    entity, time : str, default="customer_id", "event_time"
    items : mapping of str to str, default=None
        Output name -> item column, e.g. ``{"products": "product_id"}``; None gives
        ``{"items": target}``.
    target : str, default=None
        The item column of the target; None takes the first column of ``items``.

    Returns
    -------
    rows : DataFrame
        Indexed by entity (those with an event up to ``split``): per name in ``items`` the item
        list in time order and ``<name>_ages`` (days before ``split``), then ``future`` (the
        target items, ``[]`` for none) and ``split``.

    Examples
    --------
    >>> import pandas as pd
    >>> events = pd.DataFrame({"customer_id": [1, 1, 1], "product_id": ["a", "b", "c"],
    ...     "event_time": pd.to_datetime(["2024-01-01", "2024-01-31", "2024-02-10"])})
    >>> rows = histories_at(events, "2024-01-31", items={"products": "product_id"})
    >>> rows.loc[1, "products"], rows.loc[1, "products_ages"], rows.loc[1, "future"]
    (['a', 'b'], [30.0, 0.0], ['c'])
    """
    if items is None:
        items = {"items": target}
    target = target or next(iter(items.values()))
    split = pd.Timestamp(split)
    past = events[events[time] <= split].sort_values(time, kind="stable")
    past = past.assign(_age=(split - past[time]).dt.total_seconds() / 86_400)
    grouped = past.groupby(entity)
    rows = pd.DataFrame({name: grouped[column].agg(list) for name, column in items.items()})
    for name in items:
        rows[f"{name}_ages"] = grouped["_age"].agg(list)
    end = split + pd.Timedelta(days=horizon_days)
    inside = events[(events[time] > split) & (events[time] <= end)]
    future = inside.groupby(entity)[target].agg(list)
    rows["future"] = [future.get(key, []) for key in rows.index]
    rows["split"] = split
    return rows


def history_weights(items_rows, ages_rows, half_life=None):
    """Each row's own history as a mapping ``item -> decayed weight``, for the history boost.

    Parameters
    ----------
    items_rows, ages_rows : sequences of lists
        Parallel item and age lists (e.g. the ``items`` and ``ages`` of
        :func:`sequence_examples`).
    half_life : float, default=None
        In the unit of the ages; None counts every occurrence once (no decay).

    Returns
    -------
    rows : list of dict

    Examples
    --------
    >>> history_weights([["a", "b", "a"]], [[2, 1, 0]], half_life=1.0)
    [{'a': 1.25, 'b': 0.5}]
    >>> history_weights([["a", "b", "a"]], [[2, 1, 0]])
    [{'a': 2.0, 'b': 1.0}]
    """
    if half_life is None:
        return weighted_rows(items_rows, [np.ones(len(items)) for items in items_rows])
    return decayed_rows(items_rows, ages_rows, half_life)


# --------------------------------------------------------------------------- the profile
def signed_log1p(X):
    """``sign(x) * log(1 + |x|)``: compresses counts and amounts, keeps their sign."""
    X = np.asarray(X, dtype=np.float64)
    return np.sign(X) * np.log1p(np.abs(X))


def rfm_scaler():
    """Recency / frequency / monetary columns -> :func:`signed_log1p`, then standardised."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(
        FunctionTransformer(signed_log1p, feature_names_out="one-to-one"), StandardScaler()
    )


def sketch_dim_for(n_entities):
    """The sketch width ``sketch_dim="auto"`` stands for, given the number of entities.

    About 50 entities per bucket, rounded up to a power of two, at least 64 and at most 256:
    64 up to 3,200 entities, 128 up to 6,400, then 256.

    Parameters
    ----------
    n_entities : int

    Returns
    -------
    int

    Examples
    --------
    >>> [sketch_dim_for(n) for n in (500, 3_000, 5_000, 12_000, 1_000_000)]
    [64, 64, 128, 256, 256]
    """
    if isinstance(n_entities, bool) or not isinstance(n_entities, (int, np.integer)):
        raise TypeError(f"n_entities must be an integer, got {n_entities!r}.")
    if n_entities < 0:
        raise ValueError(f"n_entities must be >= 0, got {n_entities}.")
    low, high = _SKETCH_DIM_RANGE
    needed = math.ceil(int(n_entities) / _ENTITIES_PER_BUCKET)
    width = 1 << max(needed - 1, 1).bit_length()
    return int(min(max(width, low), high))


def resolve_sketch_dim(sketch_dim, item_vectors, embedder_column=None):
    """``sketch_dim`` as a number: "auto" is :func:`sketch_dim_for` the entities of the fitted
    ``item_vectors`` (of ``embedder_column``); a number is returned as given.

    Examples
    --------
    >>> from sklearn_basemodel import RandomVectorEmbedder
    >>> vectors = RandomVectorEmbedder(4).fit([[f"i{i}"] for i in range(5_000)])
    >>> resolve_sketch_dim("auto", vectors), resolve_sketch_dim(32, vectors)
    (128, 32)
    """
    if sketch_dim != "auto":
        return sketch_dim
    try:
        keys, _ = item_vectors.entity_vectors(embedder_column)
    except Exception as error:  # an unfitted embedder: say what "auto" needs
        raise ValueError(
            'sketch_dim="auto" sizes the sketches from the entities of fitted item vectors; '
            "fit the embedder first or pass an integer sketch_dim."
        ) from error
    return sketch_dim_for(len(keys))


def _sketcher(embedder, half_life, shape, **params):
    from . import EMDESketcher

    if half_life is not None:
        params.update(half_life=half_life, time_input="age")
    return EMDESketcher(embedder, **shape, **params)


def history_block(name, item_vectors, items, *, ages=None, half_life=None, n_sketches=16,
                  sketch_dim="auto", handle_unknown="ignore", random_state=0):  # fmt: skip
    """Another item column's history as one more block of :func:`behavioral_profile`.

    A customer's events carry several item columns (product, category, brand ...); the
    profile's main block sketches one, and each other column gets a block of its own, sketched
    on that column's item vectors: pass the result in ``behavioral_profile(blocks=[...])``.
    The workflow builds one per item column of a project.

    Parameters
    ----------
    name : str
        The block's name (e.g. ``"categories"``).
    item_vectors : fitted embedder
        The column's item vectors (e.g. a ``CleoraEmbedder`` fitted on its baskets), used
        frozen.
    items : str
        The history column: lists of items (with ``ages``) or mappings item -> weight.
    ages, half_life : str and float, default=None
        The items' ages and the decay's half-life in their unit, as in
        :func:`behavioral_profile`; None sketches ``items`` as given.
    n_sketches : int, default=16
    sketch_dim : int or "auto", default="auto"
        "auto": :func:`sketch_dim_for` the entities of ``item_vectors``.
    handle_unknown : {"warn", "ignore", "error"}, default="ignore"
        Items without a vector (new since the embedder was fitted).
    random_state : int, default=0
        Seed of the block's partitionings (give each block its own).

    Returns
    -------
    block : tuple
        ``(name, sketcher, columns)``, unfitted.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_basemodel import CleoraEmbedder
    >>> rows = pd.DataFrame({"products": [["p1", "p2"], ["p2"]],
    ...                      "categories": [["food", "food"], ["toys"]]})
    >>> products = CleoraEmbedder(n_components=8, random_state=0).fit(rows["products"])
    >>> categories = CleoraEmbedder(n_components=8, random_state=0).fit(rows["categories"])
    >>> profile = behavioral_profile(products, items="products", n_sketches=4, blocks=[
    ...     history_block("categories", categories, "categories", n_sketches=4, random_state=1)])
    >>> profile.fit_transform(rows).shape  # two blocks of 4 sketches x 64 buckets
    (2, 512)
    """
    from sklearn.frozen import FrozenEstimator

    shape = {"n_sketches": n_sketches,
             "sketch_dim": resolve_sketch_dim(sketch_dim, item_vectors)}  # fmt: skip
    sketcher = _sketcher(FrozenEstimator(item_vectors), half_life, shape,
                         handle_unknown=handle_unknown, random_state=random_state)  # fmt: skip
    return name, sketcher, items if ages is None else [items, ages]


def behavioral_profile(
    item_vectors,
    *,
    n_sketches=16,
    sketch_dim="auto",
    items="items",
    ages=None,
    half_life=None,
    last=None,
    id_dim=None,
    id_random_state=None,
    rfm=None,
    blocks=(),
    name="history",
    embedder_column=None,
    handle_unknown="warn",
    random_state=0,
):
    """The behavioral profile: history sketches and RFM columns in one ``ColumnTransformer``.

    Parameters
    ----------
    item_vectors : embedder or fitted EMDESketcher
        Item vectors (a fitted ``CleoraEmbedder``, used frozen) to sketch the history on; or a
        fitted sketcher, used frozen as the history block (to share its codes with a
        recommender's target).
    n_sketches : int, default=16
        Number of partitionings of every sketch block built here.
    sketch_dim : int or "auto", default="auto"
        Buckets per partitioning of every sketch block built here; "auto":
        :func:`sketch_dim_for` the number of entities of ``item_vectors`` (64 up to 3,200
        entities, 128 up to 6,400, then 256).
    items : str, default="items"
        The history column: lists of items (with ``ages``) or mappings item -> weight (decayed
        in the warehouse: :func:`sklearn_basemodel.warehouse.history_rows`).
    ages : str, default=None
        The column of the items' ages; None sketches ``items`` as given.
    half_life : float, default=None
        Decay of the history in the unit of the ages (``time_input="age"``).
    last : str, default=None
        A column with the most recent basket, sketched alone (block ``last_basket``).
    id_dim : int, default=None
        When set, the decayed history is also sketched on random vectors of this dimension
        (block ``history_ids``; ``RandomVectorEmbedder``: ID hashing).
    id_random_state : int, default=None
        Seed of the random vectors; None uses ``random_state``.
    rfm : list of str, default=None
        Numeric columns scaled by :func:`rfm_scaler` (block ``rfm``, last).
    blocks : sequence of (name, transformer, columns), default=()
        More blocks, placed before ``rfm`` (e.g. a second item kind).
    name : str, default="history"
        Name of the history block.
    embedder_column : str, default=None
        Passed to the item-vector sketchers (``EMDESketcher.embedder_column``).
    handle_unknown : {"warn", "ignore", "error"}, default="warn"
        Of the item-vector sketchers; the ID sketcher always ignores unseen items.
    random_state : int, default=0
        Seed of the history block; the recent-basket and ID blocks use the next two seeds.

    Returns
    -------
    profile : sklearn.compose.ColumnTransformer
        Unfitted; blocks in the order history, last_basket, history_ids, ``blocks``, rfm.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.frozen import FrozenEstimator

    from . import EMDESketcher, RandomVectorEmbedder

    history = [items] if ages is None else [items, ages]
    history = history[0] if len(history) == 1 else history
    vectors = {"embedder_column": embedder_column, "handle_unknown": handle_unknown}
    if isinstance(item_vectors, EMDESketcher):
        parts = [(name, FrozenEstimator(item_vectors), history)]
        shape = {"n_sketches": n_sketches,
                 "sketch_dim": item_vectors.sketch_dim if sketch_dim == "auto" else sketch_dim}
    else:
        sketch_dim = resolve_sketch_dim(sketch_dim, item_vectors, embedder_column)
        shape = {"n_sketches": n_sketches, "sketch_dim": sketch_dim}
        item_vectors = FrozenEstimator(item_vectors)
        parts = [(name, _sketcher(item_vectors, half_life, shape, **vectors,
                                  random_state=random_state), history)]  # fmt: skip
    if last is not None:
        sketcher = _sketcher(item_vectors, None, shape, **vectors,
                             random_state=random_state + 1)  # fmt: skip
        parts.append(("last_basket", sketcher, last))
    if id_dim:
        seed = random_state if id_random_state is None else id_random_state
        ids = RandomVectorEmbedder(id_dim, random_state=seed)
        sketcher = _sketcher(ids, half_life, shape, handle_unknown="ignore",
                             random_state=random_state + 2)  # fmt: skip
        parts.append(("history_ids", sketcher, history))
    parts += list(blocks)
    if rfm:
        parts.append(("rfm", rfm_scaler(), list(rfm)))
    return ColumnTransformer(parts)


# --------------------------------------------------------------------------- pretraining
def _frozen_if_fitted(estimator):
    from sklearn.exceptions import NotFittedError
    from sklearn.frozen import FrozenEstimator
    from sklearn.utils.validation import check_is_fitted

    if estimator is None or isinstance(estimator, FrozenEstimator):
        return estimator
    try:
        check_is_fitted(estimator)
    except NotFittedError:  # the recommender fits a clone of it on the targets
        return estimator
    return FrozenEstimator(estimator)


def pretrainer(target_sketcher, *, k=10, history_weight=0.5, history_blend="linear", **params):
    """The pretrainer: a ``SketchRecommender`` of future behaviour, decoded with the history.

    Parameters
    ----------
    target_sketcher : EMDESketcher
        Sketches the targets (the items of the next basket / horizon) and decodes the output.
        A fitted one is used frozen (its codes shared with the profile); an unfitted one is
        fitted on the targets.
    k : int, default=10
    history_weight : float, default=0.5
    history_blend : {"linear", "log"}, default="linear"
        How the row's own history (``predict(X, history=...)``) is blended in
        (``history_mode="boost"``).
    **params
        Any other ``SketchRecommender`` parameter (network size, epochs, ``random_state`` ...).

    Returns
    -------
    recommender : SketchRecommender

    Examples
    --------
    >>> from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
    >>> target = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=2,
    ...                       sketch_dim=8, random_state=0)
    >>> rec = pretrainer(target, k=5, history_blend="log", hidden_units=64, max_epochs=3)
    >>> rec.history_mode, rec.history_blend, rec.k
    ('boost', 'log', 5)
    """
    from . import SketchRecommender

    return SketchRecommender(
        target_sketcher=_frozen_if_fitted(target_sketcher),
        k=k,
        history_mode="boost",
        history_weight=history_weight,
        history_blend=history_blend,
        **params,
    )


# The learning rates "auto" fine-tuning walks down, as factors of the pretrained one: fine-tuning
# a pretrained trunk usually wants a smaller step than training it did (on Ta-Feng the
# validation loss fell from lr to lr / 10), but how much smaller depends on how far the new rows
# are from the pretraining ones, so each step down is taken only while it helps.
_FINE_TUNE_LR_FACTORS = (1.0, 0.3, 0.1, 0.03)


def fine_tune_recommender(recommender, X, y, *, max_epochs=None, lr="auto"):
    """A copy of a fitted recommender trained further on ``X, y``.

    The pretrained model stays as it was, so one pretraining serves several fine-tunings.

    Parameters
    ----------
    recommender : fitted SketchRecommender
        The pretrained model.
    X, y
        The fine-tuning rows and their targets.
    max_epochs : int or "auto", default=None
        Most epochs of fine-tuning (fewer with the recommender's early stopping); None: the
        recommender's own ``max_epochs`` ("auto" by default: up to 50 with early stopping).
    lr : float or "auto", default="auto"
        Learning rate of the fine-tuning. "auto" chooses it on the rows the recommender
        holds out (its ``early_stopping`` / ``validation_fraction``; the same rows for every
        candidate unless its ``random_state`` is None): it walks down from the recommender's
        own ``lr`` through 0.3, 0.1 and 0.03 times it, one copy fine-tuned per rate, while the
        loss of the network each copy keeps (``held_out_loss`` on those rows) keeps falling,
        and keeps the best copy, unless the pretrained network as it is already has a
        validation loss as low on those rows: then fine-tuning does not help and an unchanged
        copy is returned, so that fine-tuning never leaves the model worse on held-out rows.
        Without held-out rows, the recommender's own ``lr``.

    Returns
    -------
    tuned : SketchRecommender
        The fine-tuned copy (or, see ``lr="auto"``, an unchanged one); ``fine_tuning_lr_`` is
        the rate used (0.0: not fine-tuned), and so is its ``lr`` when it was fine-tuned. With
        ``lr="auto"`` and held-out rows, ``fine_tuning_losses_`` maps each rate tried to that
        validation loss, the rate 0.0 to the unchanged network's.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder, SketchRecommender
    >>> from sklearn_basemodel.recipes import fine_tune_recommender
    >>> rng = np.random.default_rng(0)
    >>> items = [f"i{j}" for j in range(20)]
    >>> X = rng.random((200, 8)).astype(np.float32)
    >>> y = [list(rng.choice(items, 2)) for _ in range(200)]
    >>> target = EMDESketcher(RandomVectorEmbedder(4, random_state=0), n_sketches=2,
    ...                       sketch_dim=8, random_state=0).fit([items])
    >>> base = SketchRecommender(target_sketcher=target, hidden_units=16, max_epochs=2,
    ...                          early_stopping=True, random_state=0).fit(X, y)
    >>> tuned = fine_tune_recommender(base, X[:100], y[:100], max_epochs=2)
    >>> tuned.fine_tuning_lr_ in tuned.fine_tuning_losses_
    True
    """
    epochs = recommender.max_epochs if max_epochs is None else max_epochs

    def tuned_at(rate):
        tuned = copy.deepcopy(recommender)
        tuned.set_params(max_epochs=epochs, lr=rate)
        tuned.partial_fit(X, y)
        tuned.fine_tuning_lr_ = rate
        return tuned

    if not (isinstance(lr, str) and lr == "auto"):
        return tuned_at(lr)
    # each copy is scored as it is kept (early stopping restores the epoch that last improved
    # by more than its tol, not always the lowest in the history), on the same held-out rows
    best = tuned_at(recommender.lr)
    best_loss = best.held_out_loss(X, y)
    if best_loss is None:  # no held-out rows to choose on
        return best
    losses = {recommender.lr: best_loss}
    for factor in _FINE_TUNE_LR_FACTORS[1:]:
        rate = recommender.lr * factor
        candidate = tuned_at(rate)
        losses[rate] = candidate.held_out_loss(X, y)
        if losses[rate] >= best_loss:
            break
        best, best_loss = candidate, losses[rate]
    # the same held-out rows, scored by the network as pretrained (a copy: scoring draws the
    # split's seed as training does); a tie keeps it unchanged
    unchanged = copy.deepcopy(recommender)
    losses[0.0] = unchanged.held_out_loss(X, y)
    if losses[0.0] <= best_loss:
        best = unchanged
        best.fine_tuning_lr_ = 0.0
    best.fine_tuning_losses_ = losses
    return best


def _recall_ndcg(k):
    from .metrics import ndcg_at_k, recall_at_k

    return lambda truth, top: (recall_at_k(truth, top, k=k), ndcg_at_k(truth, top, k=k))


def tune_history_boost(recommender, X, y, histories, weights, *, k=10, score=None,
                       blends=("linear", "log")):  # fmt: skip
    """Choose the history boost's weight, blend and history on validation rows.

    The network runs once over the rows (a block at a time); every setting re-blends its
    scores (``SketchRecommender.apply_history``), as ``predict`` with that setting would.

    Parameters
    ----------
    recommender : SketchRecommender or Pipeline ending in one
        Fitted; left with ``history_mode="boost"`` and the best weight and blend set.
    X : features (or pipeline input) of the validation rows
    y : list of lists
        Their true items.
    histories : mapping of label -> list of dict
        Candidate histories of the rows (e.g. one per decay, :func:`history_weights`).
    weights : sequence of float
        Candidate ``history_weight`` values.
    k : int, default=10
    score : callable, default=None
        ``score(y, top) -> comparable``, higher is better; None ranks by Recall@k, then NDCG@k.
    blends : sequence of {"linear", "log"}, default=("linear", "log")
        Candidate ``history_blend`` values. Which one wins depends on the data: the linear
        mixture where the model and the history find different items, the log-linear blend
        where the model should re-rank the customer's own repeat items.

    Returns
    -------
    weight : float
    label : the key of ``histories`` chosen (the first best on ties)
    grid : list of tuple
        ``(label, blend, weight, *score)`` of every candidate, in the order tried; the chosen
        blend is the recommender's ``history_blend`` afterwards.

    Examples
    --------
    >>> from sklearn_basemodel import EMDESketcher, RandomVectorEmbedder
    >>> from sklearn_basemodel.recipes import pretrainer, tune_history_boost
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> staples = [[f"i{j}" for j in rng.choice(30, 3, replace=False)] for _ in range(200)]
    >>> X = np.hstack([np.eye(200)[:, :8], np.ones((200, 1))]).astype("float32")
    >>> target = EMDESketcher(RandomVectorEmbedder(8, random_state=0), n_sketches=2,
    ...                       sketch_dim=8, random_state=0)
    >>> rec = pretrainer(target, hidden_units=16, max_epochs=2, random_state=0)
    >>> rec = rec.fit(X, staples)
    >>> weight, label, grid = tune_history_boost(
    ...     rec, X, staples, {"counts": staples}, (0.0, 0.5), k=3)
    >>> (weight, label, rec.history_blend in ("linear", "log"), len(grid))
    (0.5, 'counts', True, 4)
    """
    from sklearn.utils import _safe_indexing

    from ._compat import num_samples
    from .metrics import check_k, top_k

    transform, model = split_recommender(recommender)
    if not len(blends):
        raise ValueError("blends must hold at least one of 'linear', 'log'.")
    features = X if transform is None else transform.transform(X)
    n_rows, keys = num_samples(features), np.asarray(model.entities_)
    if n_rows == 0:
        raise ValueError("X has no rows to choose the history boost on.")
    k = min(check_k(k), len(keys))
    score = score or _recall_ndcg(k)
    histories = {label: list(rows) for label, rows in histories.items()}
    for label, rows in histories.items():
        if len(rows) != n_rows:
            raise ValueError(f"history {label!r} has {len(rows)} rows but X has {n_rows}; "
                             "pass one per row.")  # fmt: skip
    settings = [(label, blend, weight) for label in histories for blend in blends
                for weight in weights]  # fmt: skip
    tops = {setting: [] for setting in settings}
    # the network runs once per block of rows; every setting re-blends its scores
    step = max(1, BLOCK_CELLS // max(len(keys), 1))
    for start in range(0, n_rows, step):
        stop = min(start + step, n_rows)
        scores = model.predict_scores(_safe_indexing(features, np.arange(start, stop)))
        for label, blend, weight in settings:
            model.set_params(history_mode="boost", history_weight=weight, history_blend=blend)
            blended = model.apply_history(scores, histories[label][start:stop])
            tops[label, blend, weight].append(top_k(blended, k)[0])
    best, grid = None, []
    for label, blend, weight in settings:
        value = score(y, keys[np.vstack(tops[label, blend, weight])])
        grid.append((label, blend, weight, *np.atleast_1d(value).tolist()))
        if best is None or value > best[0]:
            best = (value, weight, label, blend)
    model.set_params(history_mode="boost", history_weight=best[1], history_blend=best[3])
    return best[1], best[2], grid


# Rows scored at once by the history's tuning and ranking: at most this many (row, item)
# cells of dense scores.
BLOCK_CELLS = 1 << 22


def split_recommender(recommender):
    """(the transform before the final step, or None; the final ``SketchRecommender``) of a
    recommender or a pipeline ending in one.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sklearn_basemodel import SketchRecommender
    >>> transform, model = split_recommender(make_pipeline(StandardScaler(), SketchRecommender()))
    >>> type(transform[0]).__name__, type(model).__name__
    ('StandardScaler', 'SketchRecommender')
    """
    steps = getattr(recommender, "steps", None)
    if steps:
        return recommender[:-1], steps[-1][1]
    return None, recommender


# --------------------------------------------------------------------------- fine-tuning
def fine_tuner(profile, pretrained=None, *, regression=False, **params):
    """The fine-tuner: a ``SketchClassifier`` on the frozen profile, from the pretrained trunk.

    Parameters
    ----------
    profile : fitted transformer
        The behavioral profile the recommender was trained on (used frozen).
    pretrained : SketchRecommender, default=None
        Its trunk starts the classifier (used frozen: the recommender itself is not changed);
        None trains from scratch, for comparison.
    regression : bool, default=False
        Fine-tune a ``SketchRegressor`` (amounts, counts) instead of a classifier.
    **params
        ``SketchClassifier`` (or ``SketchRegressor``) parameters (``freeze_epochs``, ``max_epochs``, ``lr`` ...).

    Returns
    -------
    pipeline : Pipeline
        ``features`` (the frozen profile) then ``model`` (the classifier).

    Examples
    --------
    Fit ``fine_tuner(profile, recommender, freeze_epochs=2).fit(rows, labels)`` on the rows the
    profile reads; the classifier's trunk starts as a copy of the recommender's (see the
    module's example). Without ``pretrained`` it trains from scratch, for comparison:

    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> X, y = np.random.default_rng(0).normal(size=(64, 3)), np.arange(64) % 2
    >>> scratch = fine_tuner(StandardScaler().fit(X), hidden_units=8, max_epochs=2,
    ...                      random_state=0).fit(X, y)
    >>> scratch.predict(X).shape
    (64,)
    """
    from sklearn.frozen import FrozenEstimator
    from sklearn.pipeline import Pipeline

    from . import SketchClassifier, SketchRegressor

    if pretrained is not None:
        params["pretrained"] = FrozenEstimator(pretrained)
    model = (SketchRegressor if regression else SketchClassifier)(**params)
    return Pipeline([("features", FrozenEstimator(profile)), ("model", model)])


# A few RFM columns need no 1,024-wide trunk: the RFM network's width, without residual blocks
# (the demo's churn validated at .6852 AUC with it, .6732 at the default size).
RFM_NETWORK_UNITS = 64


def rfm_network(columns, *, regression=False, **params):
    """A small network on the recency / frequency / monetary columns alone.

    :func:`rfm_scaler` of ``columns``, then a ``SketchClassifier`` (or ``SketchRegressor``)
    of 64 units without residual blocks. Where the label is mostly a matter of recency and
    frequency (churn), the sketches of a behavioral profile can add more noise than signal to
    a network of 1,024 units; this one reads only what gradient boosting on RFM reads, but
    smoothly. The workflow weighs it beside the fine-tuned network and gradient boosting.

    Parameters
    ----------
    columns : list of str
        The numeric columns of the rows (``signed_log1p``, then standardised).
    regression : bool, default=False
        A ``SketchRegressor`` (amounts) instead of a classifier.
    **params
        Further network parameters (``max_epochs``, ``early_stopping``, ``random_state`` ...);
        ``hidden_units`` and ``n_blocks`` given here replace the recipe's.

    Returns
    -------
    pipeline : Pipeline
        ``features`` (the scaled columns) then ``model`` (the network), unfitted.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> rows = pd.DataFrame({"recency": rng.exponential(30, 200),
    ...                      "frequency": rng.poisson(3, 200)})
    >>> churned = (rows["recency"] > 30).astype(int)
    >>> model = rfm_network(["recency", "frequency"], max_epochs=5, random_state=0)
    >>> model.fit(rows, churned).predict_proba(rows).shape
    (200, 2)
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from . import SketchClassifier, SketchRegressor

    params = {"hidden_units": RFM_NETWORK_UNITS, "n_blocks": 0} | params
    model = (SketchRegressor if regression else SketchClassifier)(**params)
    return Pipeline([("features", ColumnTransformer([("rfm", rfm_scaler(), list(columns))])),
                     ("model", model)])  # fmt: skip


def half_life_of_factor(factor):
    """The half-life of a per-step decay factor (``factor ** age``); None for no decay (1).

    Examples
    --------
    >>> round(half_life_of_factor(0.5), 6), half_life_of_factor(1.0)
    (1.0, None)
    """
    if not 0 < factor <= 1:
        raise ValueError(f"a decay factor must be in (0, 1], got {factor!r}.")
    return None if factor == 1 else math.log(0.5) / math.log(factor)
