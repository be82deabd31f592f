"""Cleora's input side: rows and columns -> hypergraph columns of entity sets and a vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from numbers import Integral

import numpy as np
import pandas as pd

from ...rows import flatten_rows, flatten_scalars, is_list_like_column, unique_per_row


@dataclass
class Column:
    """One input column as sets of global entity indices per row (CSR layout, no repeats)."""

    name: object
    indptr: np.ndarray  # (n_rows + 1,) int64
    entity: np.ndarray  # (nnz,) global entity index of each member, sorted within a row

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1


def factorize(keys: np.ndarray):
    """pd.factorize with a modest initial hash table: entity keys repeat a lot, and a table sized
    for every key (pandas' default) costs more to allocate than growing a small one."""
    return pd.factorize(keys, size_hint=min(len(keys), 1 << 16))


def iteration_steps(n_iter) -> list[int]:
    """``n_iter`` (an int or a list of them) as the sorted list of snapshot steps."""
    steps = [n_iter] if isinstance(n_iter, Integral) else list(n_iter)
    if not steps or any(
        not isinstance(s, Integral) or isinstance(s, bool) or s < 0 for s in steps
    ):
        raise ValueError(
            f"n_iter must be a non-negative int or a non-empty list of them, got "
            f"{n_iter!r}. Example: n_iter=3 or n_iter=[1, 3]."
        )
    if len(set(steps)) != len(steps):
        raise ValueError(f"n_iter lists an iteration count twice: {n_iter!r}.")
    return sorted(int(s) for s in steps)

def parse_columns(X, *, columns=None, share_keys=False, fitted_columns=None, allow_weights=True):
    """Input -> list of (column name, FlatRows).

    ``allow_weights=False`` refuses mapping rows (key -> weight): the graph's hyperedges are
    sets, so weights would be silently dropped.
    """
    if isinstance(X, pd.DataFrame):
        if X.columns.has_duplicates:
            duplicated = list(dict.fromkeys(X.columns[X.columns.duplicated()]))
            raise ValueError(
                f"X has duplicate column names {duplicated!r}; give every column its own name."
            )
        wanted = fitted_columns if fitted_columns is not None else columns
        if wanted is None:
            _refuse_measurement_columns(X)
            wanted = list(X.columns)
        if fitted_columns is not None:
            wanted = [c for c in fitted_columns if c in X.columns]
            unknown = [c for c in X.columns if c not in fitted_columns]
            if not wanted or unknown:
                raise ValueError(
                    f"X has columns {list(X.columns)!r} but the embedder was fitted on "
                    f"{list(fitted_columns)!r}. Pass a DataFrame with (some of) the fitted "
                    "columns."
                )
        missing = [c for c in wanted if c not in X.columns]
        if missing:
            raise ValueError(
                f"columns {missing!r} are not in X, whose columns are {list(X.columns)!r}."
            )
        if len(X) == 0:
            raise ValueError("X has no rows. Pass at least one row (hyperedge).")
        parsed = []
        for col in wanted:
            values = X[col]
            if is_list_like_column(values):
                parsed.append(
                    (col, flatten_rows(values, name=f"column {col!r}", allow_weights=allow_weights))
                )
            else:
                parsed.append((col, flatten_scalars(values, name=f"column {col!r}")))
        return parsed
    if fitted_columns is not None and len(fitted_columns) > 1 and not share_keys:
        raise ValueError(
            f"This embedder was fitted on columns {list(fitted_columns)!r} kept apart "
            "(share_keys=False); pass a DataFrame with those columns so each key's column is "
            "known."
        )
    name = fitted_columns[0] if fitted_columns is not None else None
    return [(name, flatten_rows(X, name="X", allow_weights=allow_weights))]


def _refuse_measurement_columns(X):
    """With ``columns=None`` every column of a DataFrame becomes a kind of entity: refuse
    timestamps, durations and fractional numbers, which are measurements, not entities (a
    hyperedge table usually carries them next to its item lists)."""
    suspicious = [
        col for col in X.columns
        if X[col].dtype.kind in "mMf" or isinstance(X[col].dtype, pd.DatetimeTZDtype)
    ]  # fmt: skip
    if suspicious:
        raise ValueError(
            f"columns={None!r} embeds every column of X as entities, but {suspicious!r} hold "
            "timestamps, durations or fractional numbers. Pass columns=[...] naming the "
            "entity columns (e.g. the item lists of a hyperedge table)."
        )

def check_relations(relations, names: list) -> list:
    """The relations (column for a clique, pair of columns for a bipartite graph), checked."""
    if relations is None:
        if len(names) == 1:
            return [names[0]]
        return [tuple(pair) for pair in combinations(names, 2)]
    out = []
    for rel in relations:
        members = list(rel) if isinstance(rel, (tuple, list)) else [rel]
        if len(members) not in (1, 2) or (len(members) == 2 and members[0] == members[1]):
            raise ValueError(
                f"Invalid relation {rel!r}: use a column name for a clique within the column "
                "or a pair of two different columns ('customer', 'products') for a bipartite "
                "relation."
            )
        for m in members:
            if m not in names:
                raise ValueError(
                    f"relation {rel!r} names column {m!r}, which is not among the input "
                    f"columns {names!r}."
                )
        out.append(members[0] if len(members) == 1 else tuple(members))
    unused = [n for n in names if not any(n == r or (isinstance(r, tuple) and n in r) for r in out)]
    if unused:
        raise ValueError(
            f"columns {unused!r} are not used by any relation {out!r}; drop them from "
            "`columns` or add a relation."
        )
    return out

def build_vocabulary(parsed, *, share_keys=False, min_count=1):
    """Factorise keys into entities, make rows sets, apply min_count.

    Returns the columns (rows as sets of entity indices), the vocabulary, the entity counts,
    the number of dropped entities and the start-vector blocks: (namespace, keys, first
    entity) for each run of entities hashed with one namespace.
    """
    names = [name for name, _ in parsed]
    pooled = len(parsed) == 1 or share_keys
    if pooled:
        all_keys = (
            np.concatenate([rows.keys for _, rows in parsed])
            if len(parsed) > 1
            else parsed[0][1].keys
        )
        codes, uniques = factorize(all_keys)
        offsets = np.cumsum([0] + [len(rows.keys) for _, rows in parsed])
        per_column = [codes[offsets[i] : offsets[i + 1]] for i in range(len(parsed))]
        uniques_list = [np.asarray(uniques)]
        n_total = len(uniques)
    else:
        per_column, uniques_list, start = [], [], 0
        for _, rows in parsed:
            codes, uniques = factorize(rows.keys)
            per_column.append(codes + start if start else codes)
            uniques_list.append(np.asarray(uniques))
            start += len(uniques)
        n_total = start

    # a row is a set: sort each row's entities and drop repeats, once
    sets = [
        unique_per_row(rows.indptr, codes, n_total)
        for (_, rows), codes in zip(parsed, per_column)
    ]
    del per_column
    counts = np.zeros(n_total, dtype=np.int64)
    for _, entity in sets:
        counts += np.bincount(entity, minlength=n_total)
    keep = counts >= min_count
    if not keep.all():
        new_index = np.cumsum(keep) - 1
        new_index[~keep] = -1
        filtered = []
        for indptr, entity in sets:
            e = new_index[entity]
            known = e >= 0
            kept_before = np.zeros(len(e) + 1, dtype=np.int64)
            np.cumsum(known, out=kept_before[1:])
            filtered.append((kept_before[indptr], e[known].astype(entity.dtype)))
        sets = filtered
    columns = [Column(name, indptr, entity) for name, (indptr, entity) in zip(names, sets)]

    sizes = [len(u) for u in uniques_list]
    bounds = np.cumsum([0] + sizes)
    kept_keys = [u[keep[bounds[i] : bounds[i + 1]]] for i, u in enumerate(uniques_list)]
    firsts = np.cumsum([0] + [len(k) for k in kept_keys])[:-1]
    if pooled:
        vocabulary = pd.Index(kept_keys[0], tupleize_cols=False)
        blocks = [("", kept_keys[0], 0)]
    else:
        col_of = np.repeat(np.arange(len(names)), [len(k) for k in kept_keys])
        if all(k.dtype.kind in "iu" for k in kept_keys):  # same index, built far faster
            key_values = np.concatenate(kept_keys)
        else:
            key_values = np.concatenate([np.asarray(k, dtype=object) for k in kept_keys])
        column_names = np.asarray(names, dtype=object)
        if all(isinstance(name, str) for name in names):  # same index, built faster
            column_names = pd.Index(column_names)
            column_of = column_names.take(col_of)
        else:
            column_of = column_names[col_of]
        vocabulary = pd.MultiIndex.from_arrays(
            [column_of, key_values], names=["column", "key"]
        )
        blocks = [
            (str(name), k, int(first)) for name, k, first in zip(names, kept_keys, firsts)
        ]
    return columns, vocabulary, counts[keep], int((~keep).sum()), blocks
