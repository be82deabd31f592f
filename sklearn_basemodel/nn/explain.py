"""Attributions of sketch-network predictions to input blocks (tables, columns) and entities.

Integrated gradients (or gradient x input) over the dense input sketch give one attribution per
input column. A fitted pipeline tells which columns belong to which input block (the names of a
``ColumnTransformer``'s transformers), and each ``EMDESketcher`` tells which buckets an entity
fills (``codes_``), so column attributions are summed back to blocks and to the entities of each
row. :func:`explain_sources` goes one step further, to the source table, column and value
(item, or RFM feature) each attribution comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from .._compat import select_columns
from ..rows import flatten_rows, lookup
from ..sketch import codebook_of

__all__ = [
    "WHOLE_EVENTS",
    "Explanation",
    "attribute",
    "entity_attributions",
    "explain",
    "explain_sources",
]

_METHODS = ("integrated_gradients", "gradient_x_input")
# Path points (rows x steps x features) evaluated at once; bounds the memory of one chunk.
_MAX_POINTS = 1 << 23


def attribute(estimator, X, targets, *, method="integrated_gradients", n_steps=32):
    """Attribution of each row's explained value to each input column.

    Parameters
    ----------
    estimator : fitted sketch estimator
        Provides ``module_``, ``device`` and ``_explained_value(logits, targets)``.
    X : ndarray or CSR matrix of shape (n_rows, n_features), float32
    targets : ndarray of shape (n_rows,), int
        Per-row index of what is explained (interpreted by the estimator).
    method : {"integrated_gradients", "gradient_x_input"}
    n_steps : int
        Midpoint steps of the integrated-gradients path from the zero baseline.

    Returns
    -------
    ndarray of shape (n_rows, n_features), float32
        With integrated gradients each row sums (up to the path discretisation) to the
        explained value at the row minus its value at the zero input.
    """
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}.")
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    n_steps = int(n_steps) if method == "integrated_gradients" else 1
    module = estimator.module_
    was_training = module.training
    module.eval()  # BatchNorm on running statistics: rows (and path points) independent
    n_rows, n_features = X.shape
    chunk = max(1, _MAX_POINTS // (n_steps * max(n_features, 1)))
    alphas = (torch.arange(n_steps, dtype=torch.float32) + 0.5) / n_steps
    out = np.empty((n_rows, n_features), dtype=np.float32)
    try:
        for start in range(0, n_rows, chunk):
            part = X[start : start + chunk]
            part = part.toarray() if sp.issparse(part) else np.asarray(part)
            x = torch.as_tensor(part, dtype=torch.float32, device=estimator.device)
            t = torch.as_tensor(targets[start : start + chunk], device=estimator.device)
            if method == "integrated_gradients":
                path = (alphas.to(x.device)[:, None, None] * x[None]).reshape(-1, n_features)
            else:
                path = x.clone()
            path.requires_grad_(True)
            logits = module(path)
            logits = logits[0] if isinstance(logits, tuple) else logits
            value = estimator._explained_value(logits, t.repeat(n_steps))
            (grad,) = torch.autograd.grad(value.sum(), path)
            grad = grad.reshape(n_steps, len(part), n_features).mean(dim=0)
            out[start : start + len(part)] = (x * grad).detach().cpu().numpy()
    finally:
        module.train(was_training)
    return out


def _block_columns(spec, n_features: int) -> np.ndarray:
    return np.arange(n_features)[spec]


# The source column reported for a feature derived from the events as a whole (``None`` in
# ``sources``): counts, recency and tenure come from no single column of the events table.
WHOLE_EVENTS = "(events)"
_LEVELS = ("value", "column")
_SOURCE_COLUMNS = ["table", "column", "value", "attribution", "mean_abs_attribution", "n_rows"]


@dataclass
class Explanation:
    """Attributions of a batch of predictions.

    Attributes
    ----------
    attributions : ndarray of shape (n_rows, n_features)
        Per input column.
    blocks : DataFrame with columns ``row, block, attribution``
        Sum over each block's columns (one line per row and block).
    entities : DataFrame with columns ``row, block, entity, attribution``
        For sketch blocks: the attribution of each entity present in the row (empty when no
        sketcher information was available).
    block_columns : dict of str -> ndarray of int
        The input columns of every block.
    feature_names : dict of str -> list of str
        For every block that is not a sketch block: the name of each of its columns (e.g. the
        RFM columns), in the order of ``block_columns``. Blocks missing here are sketch blocks,
        explained by entity.
    """

    attributions: np.ndarray
    blocks: pd.DataFrame
    entities: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["row", "block", "entity", "attribution"])
    )
    block_columns: dict = field(default_factory=dict)
    feature_names: dict = field(default_factory=dict)

    @classmethod
    def from_attributions(
        cls, attributions: np.ndarray, blocks: dict, feature_names=None, sketch_blocks=()
    ) -> Explanation:
        """Sum column attributions over ``blocks`` (name -> columns).

        ``feature_names`` (block -> names) names the columns of plain blocks; blocks in
        ``sketch_blocks`` are explained by entity instead, and other blocks without names get
        ``"<block>[<i>]"``.
        """
        n_rows, n_features = attributions.shape
        feature_names = dict(feature_names or {})
        frames, columns_of, names_of = [], {}, {}
        for name, spec in blocks.items():
            columns = _block_columns(spec, n_features)
            columns_of[name] = columns
            if name not in sketch_blocks:
                names = feature_names.get(name)
                names_of[name] = (
                    [f"{name}[{i}]" for i in range(len(columns))] if names is None else list(names)
                )
            frames.append(
                pd.DataFrame({
                    "row": np.arange(n_rows),
                    "block": name,
                    "attribution": attributions[:, columns].sum(axis=1, dtype=np.float64),
                })
            )
        table = pd.concat(frames, ignore_index=True).sort_values(["row"], kind="stable")
        return cls(
            attributions=attributions,
            blocks=table.reset_index(drop=True),
            block_columns=columns_of,
            feature_names=names_of,
        )

    def block_importance(self) -> pd.Series:
        """Mean absolute attribution of each block over the rows, largest first."""
        importance = self.blocks.groupby("block", sort=False)["attribution"].apply(
            lambda a: a.abs().mean()
        )
        return importance.sort_values(ascending=False)

    def entity_importance(self, block=None) -> pd.DataFrame:
        """Per entity: mean attribution, mean absolute attribution and number of rows.

        Parameters
        ----------
        block : str, default=None
            Only this sketch block.

        Returns
        -------
        DataFrame indexed by (block, entity), sorted by mean absolute attribution.
        """
        table = self.entities if block is None else self.entities[self.entities.block == block]
        grouped = table.assign(abs_attribution=table.attribution.abs()).groupby(
            ["block", "entity"]
        )
        summary = grouped.agg(
            attribution=("attribution", "mean"),
            abs_attribution=("abs_attribution", "mean"),
            n_rows=("row", "size"),
        )
        return summary.sort_values("abs_attribution", ascending=False)

    def feature_attributions(self, block=None) -> pd.DataFrame:
        """Per row, the attribution of each column of the plain (not sketch) blocks.

        Parameters
        ----------
        block : str, default=None
            Only this block (e.g. ``"rfm"``).

        Returns
        -------
        DataFrame with columns ``row, block, feature, attribution``
        """
        names = self.feature_names if block is None else {block: self.feature_names[block]}
        n_rows = self.attributions.shape[0]
        frames = [
            pd.DataFrame({
                "row": np.tile(np.arange(n_rows), len(features)),
                "block": name,
                "feature": np.repeat(np.asarray(features, dtype=object), n_rows),
                "attribution": self.attributions[:, self.block_columns[name]]
                .astype(np.float64)
                .ravel(order="F"),
            })
            for name, features in names.items()
        ]
        if not frames:
            return pd.DataFrame(columns=["row", "block", "feature", "attribution"])
        return pd.concat(frames, ignore_index=True)

    def by_source(self, sources, *, table="events", level="value") -> pd.DataFrame:
        """Attributions aggregated to the source table, column and value they come from.

        Parameters
        ----------
        sources : mapping of str -> source
            One entry per block, no more and no fewer. A sketch block's source is its item
            column, e.g. ``{"product": "product_id"}``: its values are the items. A plain block
            (e.g. ``"rfm"``) takes a mapping feature -> source, with one entry per feature,
            e.g. ``{"total_amount": "amount", "n_events": None}``: its values are the feature
            names. A source is a column name, a ``(table, column)`` pair, or None for a feature
            derived from the events as a whole (reported as column ``"(events)"``); a plain
            block may also take one source for all its features.
        table : str, default="events"
            The table of the sources given by column name only.
        level : {"value", "column"}, default="value"
            One line per (table, column, value), or per (table, column).

        Returns
        -------
        DataFrame with columns ``table, column, value, attribution, mean_abs_attribution,
        n_rows`` (no ``value`` with ``level="column"``)
            ``attribution`` is the mean over all the explained rows of the signed contribution
            (0 on rows without the value), so the column sums to the mean of the rows' total
            attributions: with integrated gradients, the mean explained output minus its value
            at the zero input, up to the path discretisation. ``mean_abs_attribution`` is the
            mean over all the rows of the absolute contribution (0 on rows without the value),
            the sort key (largest first); ``n_rows`` counts the rows that hold the value (every
            row, for a feature). Blocks with the same source add up row by row first.
        """
        if level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}, got {level!r}.")
        self._check_sources(sources)
        keys = ["table", "column"] + (["value"] if level == "value" else [])
        per_row = pd.concat(
            [self._source_rows(name, source, table) for name, source in sources.items()],
            ignore_index=True,
        )
        # one contribution per row and source: blocks sharing a source add up before averaging
        per_row = per_row.groupby([*keys, "row"], sort=False, dropna=False)["attribution"].sum()
        grouped = per_row.reset_index().assign(abs_attribution=lambda t: t.attribution.abs())
        summary = grouped.groupby(keys, sort=False, dropna=False).agg(
            attribution=("attribution", "sum"),
            mean_abs_attribution=("abs_attribution", "sum"),
            n_rows=("row", "size"),
        )
        n_rows = max(self.attributions.shape[0], 1)
        summary[["attribution", "mean_abs_attribution"]] /= n_rows
        summary = summary.reset_index().sort_values(
            "mean_abs_attribution", ascending=False, kind="stable"
        )
        return summary[[c for c in _SOURCE_COLUMNS if c in summary]].reset_index(drop=True)

    def _check_sources(self, sources):
        if not isinstance(sources, Mapping):
            raise TypeError(f"sources must be a mapping block -> source, got {type(sources)}.")
        unknown = [name for name in sources if name not in self.block_columns]
        missing = [name for name in self.block_columns if name not in sources]
        if unknown or missing:
            raise ValueError(
                f"sources must name every block of the model once: unknown blocks {unknown}, "
                f"blocks without a source {missing}; the blocks are {list(self.block_columns)}."
            )

    def _source_rows(self, name, source, table) -> pd.DataFrame:
        """``table, column, value, row, attribution`` of one block, before aggregation."""
        if name not in self.feature_names:
            if source is None or isinstance(source, Mapping):
                raise ValueError(
                    f"The source of sketch block {name!r} must be its item column (a name or a "
                    f"(table, column) pair), got {source!r}."
                )
            entities = self.entities[self.entities.block == name]
            source_table, column = _source_of(source, table)
            return pd.DataFrame({
                "table": source_table,
                "column": column,
                "value": entities.entity.to_numpy(dtype=object),
                "row": entities.row.to_numpy(),
                "attribution": entities.attribution.to_numpy(dtype=np.float64),
            })
        features = self.feature_attributions(name)
        names = self.feature_names[name]
        if isinstance(source, Mapping):
            unknown = [f for f in source if f not in names]
            missing = [f for f in names if f not in source]
            if unknown or missing:
                raise ValueError(
                    f"The sources of block {name!r} must name each of its features once: "
                    f"unknown features {unknown}, features without a source {missing}."
                )
            located = {feature: _source_of(source[feature], table) for feature in names}
        else:
            located = dict.fromkeys(names, _source_of(source, table))
        return pd.DataFrame({
            "table": features.feature.map({f: t for f, (t, _) in located.items()}).astype(object),
            "column": features.feature.map({f: c for f, (_, c) in located.items()}).astype(object),
            "value": features.feature.to_numpy(dtype=object),
            "row": features.row.to_numpy(),
            "attribution": features.attribution.to_numpy(dtype=np.float64),
        })


def _source_of(source, table):
    """(table, column) of one source: a column name, a (table, column) pair or None."""
    if source is None:
        return table, WHOLE_EVENTS
    if isinstance(source, str):
        return table, source
    if isinstance(source, tuple) and len(source) == 2 and all(isinstance(s, str) for s in source):
        return source
    raise ValueError(
        f"A source is a column name, a (table, column) pair or None, got {source!r}."
    )


def _is_sketcher(transformer) -> bool:
    return all(hasattr(transformer, a) for a in ("codes_", "vocabulary_", "keys_"))


def _entity_events(sketcher, rows, block):
    """Keys of every row and the weight of every event, as the sketcher weighs them.

    The sketcher's own parser reads the rows as its ``transform`` does (decayed (keys, times)
    rows, an ``embedder_column`` beside the keys); an object without one gets plain rows of
    keys or mappings key -> weight.
    """
    if hasattr(sketcher, "event_weights"):
        return sketcher.event_weights(rows)
    flat = flatten_rows(rows, name=f"the rows of block {block!r}", allow_empty=True)
    return flat, flat.weights_or_ones()


def entity_attributions(block_attributions, rows, sketcher, block="sketch") -> pd.DataFrame:
    """Map a sketch block's column attributions back to the entities of each row.

    Each bucket's attribution is shared among the row's entities that fill it, in proportion to
    their weights (1 per occurrence; the mapping value for weighted rows). Every bucket with
    attribution holds at least one of the row's entities (with a zero baseline, an empty bucket
    gets none), so a row's entity attributions sum to its block attribution. Entities absent
    from the row get nothing; unknown entities are skipped.

    Parameters
    ----------
    block_attributions : ndarray of shape (n_rows, n_sketches * sketch_dim)
    rows : rows of entity keys (the column the sketcher transformed)
    sketcher : fitted EMDESketcher
    block : str
        Name written in the ``block`` column.

    Returns
    -------
    DataFrame with columns ``row, block, entity, attribution``
    """
    n_rows, width = block_attributions.shape
    flat, weight = _entity_events(sketcher, rows, block)
    if flat.n_rows != n_rows:
        raise ValueError(f"Block {block!r} has {n_rows} attribution rows but {flat.n_rows} rows.")
    book = codebook_of(sketcher)
    n_entities, n_sketches = book.n_entities, book.n_sketches
    position = lookup(flat.keys, sketcher.vocabulary_)
    weight = np.abs(weight)
    keep = (position >= 0) & (weight > 0)
    row, entity, weight = flat.row_ids()[keep], position[keep], weight[keep]
    pair, inverse = np.unique(row * np.int64(n_entities) + entity, return_inverse=True)
    weight = np.bincount(inverse, weights=weight)
    row, entity = np.divmod(pair, np.int64(n_entities))
    columns = book.columns(entity)  # (n_pairs, n_sketches)
    bucket = (row[:, None] * width + columns).ravel()
    _, bucket_group = np.unique(bucket, return_inverse=True)
    repeated = np.repeat(weight, n_sketches)
    share = (repeated / np.bincount(bucket_group, weights=repeated)[bucket_group]).reshape(
        columns.shape
    )
    attribution = (block_attributions[row[:, None], columns] * share).sum(axis=1)
    table = pd.DataFrame({
        "row": row,
        "block": block,
        "entity": np.asarray(sketcher.keys_)[entity],
        "attribution": attribution,
    })
    order = np.lexsort((-np.abs(attribution), row))
    return table.iloc[order].reset_index(drop=True)


def _unfrozen(estimator):
    """The estimator inside any ``FrozenEstimator`` (the documented way to reuse a fitted step)."""
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def _feature_names(transformer, spec, width, name):
    """Names of a plain block's output columns: the transformer's, else its input columns."""
    try:
        names = list(transformer.get_feature_names_out())
    except (AttributeError, ValueError, TypeError, NotFittedError):
        names = None
    if names is not None and len(names) == width:
        return [str(n) for n in names]
    if isinstance(spec, (list, tuple)) and len(spec) == width:
        return [str(s) for s in spec]
    return [f"{name}[{i}]" for i in range(width)]


def _column_transformer_blocks(transformer: ColumnTransformer, X):
    """Blocks, sketch blocks and feature names of a fitted ``ColumnTransformer`` on input X."""
    blocks, sketches, names = {}, {}, {}
    specs = {n: c for n, _, c in transformer.transformers_}
    for name, columns in transformer.output_indices_.items():
        if columns.stop <= columns.start:
            continue
        blocks[name] = columns
        fitted = transformer.named_transformers_[name]
        spec = specs.get(name)
        spec = spec(X) if callable(spec) else spec
        if name != "remainder" and _is_sketcher(fitted):
            sketches[name] = (columns, _unfrozen(fitted), select_columns(X, spec))
        else:
            names[name] = _feature_names(fitted, spec, columns.stop - columns.start, name)
    return blocks, sketches, names


def _pipeline_blocks(pipeline: Pipeline, X, n_features: int):
    """Blocks (name -> columns), sketch blocks (name -> (columns, sketcher, rows)) and the
    column names of the other blocks, from the step before the model."""
    if len(pipeline.steps) < 2:
        return {"X": slice(0, n_features)}, {}, {}
    previous_name, previous = pipeline.steps[-2]
    previous = _unfrozen(previous)
    # the rows the previous step reads: the output of any steps before it
    X = pipeline[:-2].transform(X) if len(pipeline.steps) > 2 else X
    if isinstance(previous, ColumnTransformer) and hasattr(previous, "output_indices_"):
        return _column_transformer_blocks(previous, X)
    whole = slice(0, n_features)
    if _is_sketcher(previous):
        return {previous_name: whole}, {previous_name: (whole, previous, X)}, {}
    return {"X": whole}, {}, {"X": _feature_names(previous, None, n_features, "X")}


def explain(estimator, X, *, target=None, method="integrated_gradients", n_steps=32):
    """Explain predictions of a fitted pipeline by input block and by entity.

    When the model is the last step of a pipeline whose previous step is a ``ColumnTransformer``
    (e.g. one ``EMDESketcher`` per column plus passthrough numeric columns), every transformer is
    a block named as in the ``ColumnTransformer``; for sketcher blocks the attributions are
    also mapped to the entities of each row (see :func:`entity_attributions`), for the others
    to their columns (:meth:`Explanation.feature_attributions`). When the previous step is a
    single sketcher, its step name is the block. ``FrozenEstimator`` wrappers around the
    pipeline, its steps or the sketchers (as :func:`sklearn_basemodel.recipes.fine_tuner`
    builds them) are looked through.

    Parameters
    ----------
    estimator : Pipeline ending in a sketch estimator, or a sketch estimator
    X : the pipeline's raw input (e.g. a DataFrame with list columns), rows to explain
    target : optional
        What to explain; see the final estimator's ``explain`` (default: its prediction).
    method : {"integrated_gradients", "gradient_x_input"}, default="integrated_gradients"
    n_steps : int, default=32

    Returns
    -------
    Explanation

    See Also
    --------
    explain_sources : the same attributions per source table, column and value.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_basemodel.nn import SketchRegressor, explain
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"recency": rng.normal(size=80), "noise": rng.normal(size=80)})
    >>> spend = 3 * df["recency"]
    >>> pre = ColumnTransformer([("recency", "passthrough", ["recency"]),
    ...                          ("noise", "passthrough", ["noise"])])
    >>> model = SketchRegressor(hidden_units=16, n_blocks=1, max_epochs=30, random_state=0)
    >>> pipe = make_pipeline(pre, model).fit(df, spend)
    >>> explain(pipe, df.head(20)).block_importance().index[0]
    'recency'
    """
    estimator = _unfrozen(estimator)
    if not isinstance(estimator, Pipeline):
        return estimator.explain(X, target=target, method=method, n_steps=n_steps)
    model = _unfrozen(estimator.steps[-1][1])
    model.check_is_fitted()  # NotFittedError before any earlier step is asked to transform
    Xt = estimator[:-1].transform(X) if len(estimator.steps) > 1 else X
    blocks, sketches, names = _pipeline_blocks(estimator, X, model.n_features_in_)
    result = model.explain(Xt, target=target, method=method, n_steps=n_steps, blocks=blocks)
    result = Explanation.from_attributions(
        result.attributions, blocks, feature_names=names, sketch_blocks=sketches
    )
    frames = [
        entity_attributions(result.attributions[:, columns], rows, sketcher, block=name)
        for name, (columns, sketcher, rows) in sketches.items()
    ]
    if frames:
        result.entities = pd.concat(frames, ignore_index=True)
    return result


def explain_sources(
    estimator,
    X,
    *,
    sources,
    table="events",
    target=None,
    method="integrated_gradients",
    n_steps=32,
    level="value",
):
    """Explain predictions by the source table, column and value each input comes from.

    :func:`explain`, then :meth:`Explanation.by_source`: the attributions of every sketch
    block go to the items of its source column, those of the plain blocks (the RFM columns)
    to the source column of each feature.

    Parameters
    ----------
    estimator : Pipeline ending in a sketch estimator (see :func:`explain`)
    X : the pipeline's raw input, rows to explain
    sources : mapping of str -> source
        One entry per block of the model. A sketch block maps to its item column (e.g.
        ``{"product": "product_id", "category": "category_code"}``); a plain block such as
        ``"rfm"`` to a mapping feature -> column, or None for a feature derived from the events
        as a whole, reported as column ``"(events)"`` (e.g. ``{"total_amount": "amount",
        "n_events": None, ...}``). A ``(table, column)`` pair names another table.
    table : str, default="events"
        The table of the columns named alone.
    target : optional
        What to explain (see :func:`explain`).
    method : {"integrated_gradients", "gradient_x_input"}, default="integrated_gradients"
    n_steps : int, default=32
    level : {"value", "column"}, default="value"
        One line per (table, column, value), or per (table, column).

    Returns
    -------
    DataFrame with columns ``table, column, value, attribution, mean_abs_attribution, n_rows``
        Sorted by ``mean_abs_attribution``, largest first. ``value`` is the item for sketch
        blocks and the feature name for plain blocks; ``attribution`` is the mean signed
        contribution over the rows of X, so the column sums (up to the method's completeness
        error) to the mean explained output minus that of the zero input. See
        :meth:`Explanation.by_source`.

    Raises
    ------
    ValueError
        When ``sources`` names a block the model does not have, or misses one of its blocks
        (or features of a plain block); the message names them.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.compose import ColumnTransformer
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_basemodel.nn import SketchRegressor
    >>> from sklearn_basemodel.nn.explain import explain_sources
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"n_events": rng.normal(size=80), "total_amount": rng.normal(size=80)})
    >>> rfm = ColumnTransformer([("rfm", "passthrough", ["n_events", "total_amount"])])
    >>> model = SketchRegressor(hidden_units=16, n_blocks=1, max_epochs=30, random_state=0)
    >>> pipe = make_pipeline(rfm, model).fit(df, 3 * df["total_amount"])
    >>> table = explain_sources(
    ...     pipe, df.head(20), sources={"rfm": {"n_events": None, "total_amount": "amount"}})
    >>> table[["table", "column", "value"]].iloc[0].tolist()
    ['events', 'amount', 'total_amount']
    """
    result = explain(estimator, X, target=target, method=method, n_steps=n_steps)
    return result.by_source(sources, table=table, level=level)
