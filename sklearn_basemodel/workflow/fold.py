"""Fold new events into stored profiles: the history table as of a later cut-off, exactly.

``basemodel predict --as-of T`` stores one profile per customer: the rows of the dbt package's
``basemodel_entity_history`` at ``T`` (:data:`PROFILE_COLUMNS`, item histories as mappings
``item -> decayed weight`` as :func:`~sklearn_basemodel.warehouse.read_histories` reads them).
:func:`fold_events` takes that state and the staged events of ``(T, as_of]`` and returns the
rows the package would compute with ``basemodel_as_of: as_of``, without reading the older
events again: counts, times and groups equal, floating point values to rounding. The package's
formulas, restated:

- ages are fractional days in microseconds, ``(split_at - event_at) / 86400e6``, and every
  weight is ``exp(-decay_rate * age)``, so ageing a stored weight by ``d`` days multiplies it
  by ``exp(-decay_rate * d)``;
- ``mean_amount`` is ``total_amount / n_amounts`` (the non-NULL amounts);
- ``n_groups`` counts distinct groups: ``group_ids`` (with ``group_last_event_times``) tells
  which are already there, and, with sessions (``basemodel_session_gap_minutes``), whether a
  new event continues the open session of its group or starts ``<group>@<first event time>``.

A state built with a history window (``basemodel_history_days``) cannot be folded: events
leave the window as time passes, and the state no longer holds them. Recompute it instead.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from numbers import Real

import numpy as np
import pandas as pd

__all__ = ["PROFILE_COLUMNS", "fold_events", "profile_columns"]

# The history table's columns a stored profile holds, besides one <item>_history per item.
PROFILE_COLUMNS = (
    "split_at",
    "entity_id",
    "n_events",
    "first_event_at",
    "last_event_at",
    "days_since_last_event",
    "days_since_first_event",
    "decay_weight_sum",
    "total_amount",
    "mean_amount",
    "n_amounts",
    "n_groups",
    "group_ids",
    "group_last_event_times",
)
_EVENT_COLUMNS = ("entity_id", "event_id", "event_at", "group_id", "amount")
_MICROSECONDS_PER_DAY = 86_400_000_000.0
_EPOCH = datetime(1970, 1, 1)


def profile_columns(item_names):
    """Every column of a stored profile: :data:`PROFILE_COLUMNS`, then ``<item>_history``.

    Parameters
    ----------
    item_names : sequence of str
        The package's item column names (``basemodel_item_columns``).

    Returns
    -------
    columns : list of str

    Examples
    --------
    >>> profile_columns(["product"])[-3:]
    ['group_ids', 'group_last_event_times', 'product_history']
    """
    return [*PROFILE_COLUMNS, *(f"{name}_history" for name in _item_names(item_names))]


def fold_events(
    profiles,
    events,
    *,
    as_of,
    decay_rate,
    item_names,
    history_days=None,
    session_gap_minutes=None,
):
    """The stored profiles as of a later cut-off, with the events since folded in.

    Equal to what the ``basemodel`` dbt package computes with ``basemodel_as_of: as_of``
    (``basemodel_entity_history``): every customer of ``profiles`` aged to ``as_of``, the new
    events added, customers seen for the first time given new rows.

    Parameters
    ----------
    profiles : pandas.DataFrame
        The stored state: one row per customer, the columns of :func:`profile_columns` and no
        others, all with the same ``split_at`` (the previous cut-off ``T``).
    events : pandas.DataFrame or None
        Staged events (rows of ``basemodel_stg_events``) with ``T < event_at <= as_of``:
        ``entity_id``, ``event_id``, ``event_at``, ``group_id``, ``amount`` and one column
        per item name. None or no rows: only ageing.
    as_of : datetime-like
        The new cut-off, at or after ``T`` (naive UTC, as the package's timestamps).
    decay_rate : float
        ``basemodel_decay_rate`` (per day) the state was built with.
    item_names : sequence of str
        ``basemodel_item_columns`` names, e.g. ``["product", "category"]``.
    history_days : float, default=None
        ``basemodel_history_days`` the state was built with; anything but None is refused.
    session_gap_minutes : float, default=None
        ``basemodel_session_gap_minutes`` the state was built with (None: no sessions).

    Returns
    -------
    profiles : pandas.DataFrame
        The state at ``as_of``, same columns, ``split_at = as_of``: the customers of
        ``profiles`` in their order, then the new ones by ``entity_id``.

    Raises
    ------
    ValueError
        When the state was built with a history window, has unknown, missing or duplicated
        rows or columns, mixes cut-offs, or when an event lies at or before ``T`` (already
        in the state) or after ``as_of``, or is given twice.

    Notes
    -----
    Whether amounts are configured is read from the state (``total_amount`` is NULL without
    an amount column, a number otherwise); a state without rows reads it from the events.
    ``split_id`` is not part of a profile: it numbers the splits of one dbt run.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_basemodel.workflow.fold import fold_events
    >>> t = pd.Timestamp("2024-03-01")
    >>> state = pd.DataFrame({
    ...     "split_at": [t], "entity_id": ["ann"], "n_events": [1],
    ...     "first_event_at": [t], "last_event_at": [t], "days_since_last_event": [0.0],
    ...     "days_since_first_event": [0.0], "decay_weight_sum": [1.0], "total_amount": [10.0],
    ...     "mean_amount": [10.0], "n_amounts": [1], "n_groups": [1], "group_ids": [["b1"]],
    ...     "group_last_event_times": [[t]], "product_history": [{"tea": 1.0}]})
    >>> new = pd.DataFrame({
    ...     "entity_id": ["ann"], "event_id": ["e2"], "event_at": [pd.Timestamp("2024-03-03")],
    ...     "group_id": ["b2"], "amount": [None], "product": ["tea"]})
    >>> out = fold_events(state, new, as_of="2024-03-03", decay_rate=0.5, item_names=["product"])
    >>> out[["n_events", "n_groups", "n_amounts"]].values.tolist(), out["mean_amount"].tolist()
    ([[2, 2, 1]], [10.0])
    >>> round(out["product_history"][0]["tea"], 4)  # 1.0 * exp(-0.5 * 2) + 1.0
    1.3679
    """
    names = _item_names(item_names)
    rate = _decay_rate(decay_rate)
    if history_days is not None:
        raise ValueError(
            f"The stored profiles were built with a history window (basemodel_history_days="
            f"{history_days!r}): events that leave the window as time passes are no longer in "
            "them, so new events cannot be folded in. Run the dbt package with basemodel_as_of "
            "instead (basemodel predict --as-of)."
        )
    gap = _gap_microseconds(session_gap_minutes)
    _check_profiles(profiles, names)
    previous = _previous_cut_off(profiles)
    if isinstance(as_of, str) and as_of.strip().lower() in ("now", "today"):
        # pandas would read the wall clock; the package's 'now' is the latest staged event.
        raise ValueError(
            f"as_of={as_of!r}: pass the time itself (for the package's 'now', the latest "
            "staged event time)."
        )
    cut_off = _microseconds(pd.Series([pd.Timestamp(as_of)]), "as_of")[0]
    if previous is not None and cut_off < previous:
        raise ValueError(
            f"as_of={as_of!r} is before the profiles' cut-off {_time(previous)}; fold forwards "
            "only, or recompute the profiles."
        )
    events = _checked_events(events, names, previous, cut_off)
    return _fold(profiles, events, names, rate, gap, previous, cut_off)


# --------------------------------------------------------------------------- checks
def _item_names(item_names):
    if isinstance(item_names, str) or not all(isinstance(n, str) for n in item_names):
        raise TypeError(f"item_names must be a list of item column names, got {item_names!r}.")
    return list(item_names)


def _decay_rate(decay_rate):
    if isinstance(decay_rate, bool) or not isinstance(decay_rate, Real):
        raise TypeError(f"decay_rate must be a number (per day), got {decay_rate!r}.")
    if not (math.isfinite(decay_rate) and decay_rate >= 0):
        raise ValueError(f"decay_rate must be a finite number >= 0, got {decay_rate!r}.")
    return float(decay_rate)


def _gap_microseconds(session_gap_minutes):
    if session_gap_minutes is None:
        return None
    if isinstance(session_gap_minutes, bool) or not isinstance(session_gap_minutes, Real):
        raise TypeError(f"session_gap_minutes must be a number, got {session_gap_minutes!r}.")
    if not (math.isfinite(session_gap_minutes) and session_gap_minutes > 0):
        raise ValueError(f"session_gap_minutes must be > 0, got {session_gap_minutes!r}.")
    # The package adds the gap to the previous time in whole microseconds and compares exactly.
    return round(session_gap_minutes * 60 * 1_000_000)


def _check_profiles(profiles, names):
    if not isinstance(profiles, pd.DataFrame):
        raise TypeError(f"profiles must be a pandas DataFrame, got {type(profiles).__name__}.")
    expected = profile_columns(names)
    missing = [c for c in expected if c not in profiles.columns]
    unknown = [c for c in profiles.columns if c not in expected]
    if missing:
        raise ValueError(
            f"The profiles lack the columns {missing}; read them from basemodel_entity_history "
            "(profile_columns(item_names) lists them; item histories as mappings)."
        )
    if unknown:
        # Any other column would come back stale: say so rather than return it unchanged.
        raise ValueError(
            f"The profiles have columns that folding cannot update: {unknown}. Drop them, or "
            "join them again after folding."
        )
    if not profiles["entity_id"].is_unique:
        raise ValueError("The profiles hold a customer twice; keep one row per entity_id.")


def _previous_cut_off(profiles):
    """``T`` in microseconds, or None for a state without rows."""
    if profiles.empty:
        return None
    cut_offs = np.unique(_microseconds(profiles["split_at"], "profiles' split_at"))
    if len(cut_offs) != 1:
        raise ValueError(
            f"The profiles mix {len(cut_offs)} cut-offs (split_at); keep the rows of one, the "
            "as-of rows of basemodel_entity_history."
        )
    return int(cut_offs[0])


def _checked_events(events, names, previous, cut_off):
    """The events with ``event_at`` in microseconds, sorted as the package orders them."""
    columns = [*_EVENT_COLUMNS, *names]
    if events is None:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}).assign(
            event_at=np.empty(0, dtype=np.int64)
        )
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame or None, got {type(events).__name__}.")
    missing = [c for c in columns if c not in events.columns]
    if missing:
        raise ValueError(
            f"The events lack the columns {missing}; pass rows of basemodel_stg_events."
        )
    events = events[columns].copy()
    events["event_at"] = _microseconds(events["event_at"], "events' event_at")
    if events["entity_id"].isna().any() or events["event_id"].isna().any():
        raise ValueError("Some events have no entity_id or event_id; pass staged events.")
    repeated = events["event_id"][events["event_id"].duplicated()]
    if len(repeated):
        raise ValueError(
            f"{len(repeated)} event(s) are given twice (event_id {repeated.iloc[0]!r}, ...); "
            "each would be counted twice."
        )
    if previous is not None:
        _refuse(events, events["event_at"] <= previous,
                f"at or before the profiles' cut-off {_time(previous)}: they are already in "
                "the profiles and would be counted twice")  # fmt: skip
    _refuse(events, events["event_at"] > cut_off,
            f"after as_of {_time(cut_off)}: they belong to a later cut-off")  # fmt: skip
    return events.sort_values(["event_at", "event_id"], ignore_index=True)


def _refuse(events, mask, why):
    if mask.any():
        first = events.loc[mask].iloc[0]
        raise ValueError(
            f"{int(mask.sum())} event(s) lie {why} (e.g. event_id {first['event_id']!r} at "
            f"{_time(first['event_at'])}). Pass only the events in (previous cut-off, as_of]."
        )


# --------------------------------------------------------------------------- times
def _microseconds(values, what):
    """Timestamps as int64 microseconds since the epoch (naive UTC; aware ones converted)."""
    stamps = pd.to_datetime(pd.Series(values).reset_index(drop=True))
    if stamps.isna().any():
        raise ValueError(f"The {what} has a missing time (NaT).")
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[us]").to_numpy().view(np.int64)


def _time(microseconds):
    return pd.Timestamp(int(microseconds), unit="us")


def _datetime(microseconds):
    """A naive ``datetime.datetime``, as the list elements read from the warehouse are."""
    return _EPOCH + timedelta(microseconds=microseconds)


def _time_text(microseconds):
    """A time as the package's ``cast(<timestamp> as string)`` writes it (DuckDB, PostgreSQL,
    Spark): seconds, then the fraction without trailing zeros when there is one."""
    stamp = _datetime(microseconds)
    text = f"{stamp.year:04d}-{stamp:%m-%d %H:%M:%S}"
    if stamp.microsecond:
        text += "." + f"{stamp.microsecond:06d}".rstrip("0")
    return text


def _days(later, earlier):
    """Fractional days between microsecond times, as the package's days_between computes."""
    return (np.asarray(later, dtype=np.int64) - np.asarray(earlier, dtype=np.int64)) / (
        _MICROSECONDS_PER_DAY
    )


# --------------------------------------------------------------------------- folding
def _fold(profiles, events, names, rate, gap, previous, cut_off):
    ageing = 1.0 if previous is None else math.exp(-rate * _days(cut_off, previous))
    events = events.assign(
        decay_weight=np.exp(-rate * _days(cut_off, events["event_at"].to_numpy()))
    )
    old = profiles.reset_index(drop=True)
    entities = [*old["entity_id"], *sorted(set(events["entity_id"]) - set(old["entity_id"]))]
    position = {entity: i for i, entity in enumerate(entities)}
    rows = events["entity_id"].map(position).to_numpy(np.int64)
    state = _scalars(old, events, rows, len(entities), ageing, cut_off)
    state = {"split_at": np.full(len(entities), cut_off).astype("datetime64[us]"),
             "entity_id": entities, **state}  # fmt: skip
    state.update(_groups(old, events, rows, len(entities), gap))
    for name in names:
        column = f"{name}_history"
        state[column] = _item_history(old[column], events, name, rows, len(entities), ageing)
    frame = pd.DataFrame(state)
    return frame[list(profiles.columns)]


def _padded(values, n, fill):
    """The stored values of a column followed by ``fill`` for the new customers."""
    out = np.full(n, fill, dtype=np.float64 if isinstance(fill, float) else np.int64)
    out[: len(values)] = values
    return out


def _scalars(old, events, rows, n, ageing, cut_off):
    """Counts, first and last times, recency, decayed count and amounts of every customer."""
    def summed(values):
        return np.bincount(rows, weights=np.asarray(values, dtype=np.float64), minlength=n)

    new_times = events["event_at"].to_numpy()
    never = np.iinfo(np.int64)
    last = _padded(_microseconds(old["last_event_at"], "last_event_at"), n, never.min)
    np.maximum.at(last, rows, new_times)
    first = _padded(_microseconds(old["first_event_at"], "first_event_at"), n, never.max)
    np.minimum.at(first, rows, new_times)

    amounts = pd.to_numeric(events["amount"], errors="raise").astype(np.float64)
    has_amount = amounts.notna().to_numpy()
    n_amounts = _padded(old["n_amounts"].to_numpy(np.int64), n, 0) + np.bincount(
        rows[has_amount], minlength=n
    )
    if _has_amounts(old, has_amount):
        total = _padded(old["total_amount"].astype(np.float64).fillna(0.0), n, 0.0)
        total += summed(amounts.fillna(0.0))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n_amounts > 0, total / np.maximum(n_amounts, 1), np.nan)
    else:
        total = mean = np.full(n, np.nan)
    decayed = _padded(old["decay_weight_sum"].astype(np.float64), n, 0.0) * ageing
    n_events = _padded(old["n_events"].to_numpy(np.int64), n, 0) + np.bincount(rows, minlength=n)
    return {
        "n_events": n_events,
        "first_event_at": first.astype("datetime64[us]"),
        "last_event_at": last.astype("datetime64[us]"),
        "days_since_last_event": _days(cut_off, last),
        "days_since_first_event": _days(cut_off, first),
        "decay_weight_sum": decayed + summed(events["decay_weight"]),
        "total_amount": total,
        "mean_amount": mean,
        "n_amounts": n_amounts,
    }


def _has_amounts(old, has_amount):
    """Whether the package was given an amount column: its total is then never NULL."""
    if len(old):
        return bool(old["total_amount"].notna().all())
    return bool(has_amount.any())


def _item_history(stored, events, name, rows, n, ageing):
    """Each customer's mapping item -> weight, aged, with the new events' weights added."""
    histories = [{item: weight * ageing for item, weight in (h or {}).items()} for h in stored]
    histories += [{} for _ in range(n - len(histories))]
    items = events[name]
    present = items.notna().to_numpy()
    for row, item, weight in zip(
        rows[present], items[present].tolist(), events["decay_weight"][present].tolist()
    ):
        history = histories[row]
        history[item] = history.get(item, 0.0) + weight
    return histories


def _groups(old, events, rows, n, gap):
    """``group_ids``, ``group_last_event_times`` and ``n_groups`` with the new events' groups."""
    added = [[] for _ in range(n - len(old))]
    ids = [list(g) if g is not None else [] for g in old["group_ids"]] + added
    times = [list(t) if t is not None else [] for t in old["group_last_event_times"]]
    times += [[] for _ in added]
    # Plain lists, one pass: per-customer pandas slices cost more than the folding itself.
    grouped = events["group_id"].notna().to_numpy()
    new = {}  # row -> [(group, time, event_id), ...] in event order
    for row, group, time, event_id in zip(
        rows[grouped].tolist(),
        events["group_id"][grouped].tolist(),
        events["event_at"][grouped].tolist(),
        events["event_id"][grouped].tolist(),
    ):
        new.setdefault(row, []).append((group, time, event_id))
    if gap is not None:
        stored = _stored_times(times, list(new))
        for row, row_events in new.items():
            new[row] = _in_sessions(ids[row], stored[row], row_events, gap)
    for row, row_events in new.items():
        ids[row], times[row] = _fold_groups(ids[row], times[row], row_events)
    return {
        "n_groups": np.array([len(g) for g in ids], dtype=np.int64),
        "group_ids": ids,
        "group_last_event_times": times,
    }


def _stored_times(times, rows):
    """The stored group end times of some customers, in microseconds (one conversion)."""
    flat = [time for row in rows for time in times[row]]
    micros = _microseconds(pd.Series(flat, dtype=object), "group_last_event_times").tolist()
    stored, start = {}, 0
    for row in rows:
        stored[row] = micros[start : start + len(times[row])]
        start += len(times[row])
    return stored


def _fold_groups(ids, times, new):
    """One customer's groups after its new ``(group, time, event_id)`` events (in event
    order), ordered as the package orders them: by the time of each group's last event, then
    by group. Stored groups end at or before the previous cut-off, before every new event, so
    those without a new event keep their order and come first."""
    last = {}
    for group, time, _ in new:
        last[group] = time  # the events come in order: the latest wins
    kept = [(g, t) for g, t in zip(ids, times) if g not in last]
    ended = sorted(last.items(), key=lambda item: (item[1], item[0]))
    return (
        [g for g, _ in kept] + [g for g, _ in ended],
        [t for _, t in kept] + [_datetime(t) for _, t in ended],
    )


def _in_sessions(ids, stored, new, gap):
    """The new events with their sessions as groups: the open session of their group when
    the pause since that group's previous event is at most the gap, else
    ``<group>@<time>`` starting at it."""
    previous = {}  # group -> (session, time of its last event)
    for session, time in zip(ids, stored):
        group = session.rsplit("@", 1)[0]  # the package appends '@' and the session's start
        if group not in previous or time > previous[group][1]:
            previous[group] = (session, time)
    sessions = []
    for group, time, event_id in new:
        session, last = previous.get(group, (None, None))
        if session is None or time > last + gap:
            session = f"{group}@{_time_text(time)}"
        previous[group] = (session, time)
        sessions.append((session, time, event_id))
    return sessions
