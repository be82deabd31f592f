"""Attributions of sketch-network predictions to input blocks (tables, columns) and entities.

Integrated gradients (or gradient x input) over the dense input sketch give one attribution per
input column. A fitted pipeline tells which columns belong to which input block (the names of a
``ColumnTransformer``'s transformers), and each ``EMDESketcher`` tells which buckets an entity
fills (``codes_``), so column attributions are summed back to blocks and to the entities of each
row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from .._compat import select_columns
from ..rows import flatten_rows, lookup
from ..sketch import codebook_of

__all__ = ["Explanation", "attribute", "explain"]

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
    """

    attributions: np.ndarray
    blocks: pd.DataFrame
    entities: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["row", "block", "entity", "attribution"])
    )

    @classmethod
    def from_attributions(cls, attributions: np.ndarray, blocks: dict) -> Explanation:
        n_rows, n_features = attributions.shape
        frames = []
        for name, spec in blocks.items():
            columns = _block_columns(spec, n_features)
            frames.append(
                pd.DataFrame({
                    "row": np.arange(n_rows),
                    "block": name,
                    "attribution": attributions[:, columns].sum(axis=1, dtype=np.float64),
                })
            )
        table = pd.concat(frames, ignore_index=True).sort_values(["row"], kind="stable")
        return cls(attributions=attributions, blocks=table.reset_index(drop=True))

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


def _is_sketcher(transformer) -> bool:
    return all(hasattr(transformer, a) for a in ("codes_", "vocabulary_", "keys_"))


def _entity_events(sketcher, rows, block):
    """Keys of every row and the weight of every event, as the sketcher weighs them.

    A sketcher with time decay takes (keys, timestamps) rows; its own parser gives the decayed
    weights. Otherwise the rows are plain rows of keys or mappings key -> weight.
    """
    if getattr(sketcher, "half_life", None) is not None and hasattr(sketcher, "event_weights"):
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


def _pipeline_blocks(pipeline: Pipeline, X, n_features: int):
    """Blocks (name -> columns) and sketch blocks (name -> (columns, sketcher, rows))."""
    previous_name, previous = pipeline.steps[-2] if len(pipeline.steps) > 1 else (None, None)
    if isinstance(previous, ColumnTransformer) and hasattr(previous, "output_indices_"):
        blocks, sketches = {}, {}
        for name, columns in previous.output_indices_.items():
            if columns.stop <= columns.start:
                continue
            blocks[name] = columns
            transformer = previous.named_transformers_[name]
            if name != "remainder" and _is_sketcher(transformer):
                spec = next(c for n, _, c in previous.transformers_ if n == name)
                spec = spec(X) if callable(spec) else spec
                sketches[name] = (columns, transformer, select_columns(X, spec))
        return blocks, sketches
    if previous is not None and _is_sketcher(previous):
        whole = slice(0, n_features)
        return {previous_name: whole}, {previous_name: (whole, previous, X)}
    return {"X": slice(0, n_features)}, {}


def explain(estimator, X, *, target=None, method="integrated_gradients", n_steps=32):
    """Explain predictions of a fitted pipeline by input block and by entity.

    When the model is the last step of a pipeline whose previous step is a ``ColumnTransformer``
    (e.g. one ``EMDESketcher`` per column plus passthrough numeric columns), every transformer is
    a block named as in the ``ColumnTransformer``; for sketcher blocks the attributions are
    also mapped to the entities of each row (see :func:`entity_attributions`). When the previous
    step is a single sketcher, its step name is the block.

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
    if not isinstance(estimator, Pipeline):
        return estimator.explain(X, target=target, method=method, n_steps=n_steps)
    model = estimator.steps[-1][1]
    model.check_is_fitted()  # NotFittedError before any earlier step is asked to transform
    Xt = estimator[:-1].transform(X) if len(estimator.steps) > 1 else X
    blocks, sketches = _pipeline_blocks(estimator, X, model.n_features_in_)
    result = model.explain(Xt, target=target, method=method, n_steps=n_steps, blocks=blocks)
    frames = [
        entity_attributions(result.attributions[:, columns], rows, sketcher, block=name)
        for name, (columns, sketcher, rows) in sketches.items()
    ]
    if frames:
        result.entities = pd.concat(frames, ignore_index=True)
    return result
