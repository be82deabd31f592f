"""Reading the package's tables for a project: baskets, and history rows with their targets.

Only the columns the models use are read: the item lists of the baskets, the histories' item
lists and weights (turned into mappings item -> decayed weight), the RFM columns and the
configured tasks' targets.
"""

from __future__ import annotations

import pandas as pd

from .training import item_names, rfm_columns, task_targets

__all__ = ["as_of_time", "fill_amounts", "read_baskets", "read_descriptions", "read_rows"]

_KEYS = ["split_id", "split_at", "entity_id"]


def read_baskets(warehouse, project, *, before=None):
    """The hyperedges (one per order / session) ending at or before ``before``."""
    columns = ["entity_id", "group_id", "last_event_at"]
    columns += [f"{name}_items" for name in item_names(project)]
    baskets = warehouse.read("basemodel_hyperedges", columns)
    if before is not None:
        baskets = baskets[baskets["last_event_at"] <= pd.Timestamp(before)]
    return baskets.reset_index(drop=True)


def as_of_time(warehouse):
    """The ``basemodel_as_of`` cut-off of the last build (None when it had none)."""
    splits = warehouse.read("basemodel_splits", ["split_at", "is_as_of"])
    times = splits.loc[splits["is_as_of"].astype(bool), "split_at"]
    return None if times.empty else pd.Timestamp(times.iloc[0])


def fill_amounts(rows):
    """A copy with NULL amounts as 0 (customers without amounts), as the models read them."""
    rows = rows.copy()
    amounts = [c for c in ("total_amount", "mean_amount") if c in rows]
    rows[amounts] = rows[amounts].astype("float64").fillna(0.0)
    return rows


def read_rows(warehouse, project, *, split_at=None, targets=True, state=False):
    """History rows (one per cut-off and customer), joined with their targets.

    Parameters
    ----------
    warehouse : Warehouse
    project : Project
    split_at : datetime-like, default=None
        Read this cut-off only; None reads every cut-off.
    targets : bool, default=True
        Join the targets (``is_horizon_complete``, ``in_churn_population`` and the tasks'
        target columns); without them only ``in_churn_population`` is joined (who is scored).
    state : bool, default=False
        Also read the columns :func:`~sklearn_basemodel.workflow.fold.fold_events` needs to
        fold later events into these rows (``profile_columns``), and keep NULL amounts NULL
        (:func:`fill_amounts` turns them into what the models read).

    Returns
    -------
    rows : DataFrame
        ``split_id, split_at, entity_id``, the RFM columns (NULL amounts as 0), one
        ``<item>_history`` mapping per item column, then the target columns; sorted by cut-off
        and customer.
    """
    from ..warehouse import history_rows

    names = item_names(project)
    where = None if split_at is None else {"split_at": pd.Timestamp(split_at).to_pydatetime()}
    lists = [f"{name}_{part}" for name in names for part in ("items", "weights")]
    from .fold import PROFILE_COLUMNS

    state_columns = list(PROFILE_COLUMNS) if state else []
    scalars = [c for c in dict.fromkeys([*rfm_columns(project), *state_columns]) if c not in _KEYS]
    history = warehouse.read("basemodel_entity_history", [*_KEYS, *scalars, *lists], where=where)
    history = history_rows(history, names)
    wanted = ["split_at", "entity_id", "in_churn_population"]
    if targets:
        wanted += ["is_horizon_complete"] + sorted({c for _, c in task_targets(project).values()})
        wanted += [f"future_{(project.tasks.next_items or names[0]).lower()}_items"]
    target_rows = warehouse.read("basemodel_entity_targets", list(dict.fromkeys(wanted)),
                                 where=where)  # fmt: skip
    rows = history.merge(target_rows, on=["split_at", "entity_id"], how="inner", validate="1:1")
    if len(rows) != len(history):
        raise RuntimeError(
            f"{len(history) - len(rows)} history rows have no target row: the tables "
            "basemodel_entity_history and basemodel_entity_targets are from different builds."
        )
    rows = rows if state else fill_amounts(rows)
    return rows.sort_values(["split_at", "entity_id"], ignore_index=True)


def read_descriptions(warehouse, project, *, before=None):
    """Item name -> mapping item -> description, for the modalities embedded from text.

    The description column (``columns.item_text``) is carried into the staged events; an item
    described differently over time keeps its latest description up to ``before``.
    """
    text = project.columns.item_text
    names = [m.column.lower() for m in project.modalities if m.embedder == "text"]
    out = {}
    for name in names:
        rows = warehouse.read("basemodel_stg_events", [name, text, "event_at"])
        if before is not None:
            rows = rows[rows["event_at"] <= pd.Timestamp(before)]
        rows = rows.dropna(subset=[name]).sort_values("event_at", kind="stable")
        latest = rows.drop_duplicates(subset=[name], keep="last")
        out[name] = dict(zip(latest[name], latest[text].fillna("").astype(str)))
    return out
