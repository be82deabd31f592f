"""The project file (``basemodel.yml``): what to read, how to group it, what to predict.

A project says where the events are (a DuckDB file by default, or any dbt profile such as
PostgreSQL), how their columns map to the package's concepts (customer, time, items, amount),
how time is given, how events group into baskets or sessions, which tasks to train and
evaluate, and the model sizes. :func:`load_project` reads and validates the YAML file;
:class:`Project` is the same thing in Python for notebooks. Every error names the key and says
what to write instead.

Examples
--------
>>> from sklearn_basemodel.workflow import Project
>>> project = Project.from_dict({
...     "connection": {"duckdb": "shop.duckdb"},
...     "events": {"table": "orders"},
...     "columns": {"customer": "user_id", "time": "order_day", "items": ["product_id"]},
...     "time": {"format": "date"},
...     "tasks": {"churn": {"horizon_days": 30, "active_days": 90}},
... })
>>> project.columns.customer, project.time.format, project.tasks.churn.active_days
('user_id', 'date', 90)
>>> project.dbt_vars()["basemodel_entity_column"]
'user_id'
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..warehouse.connections import split_relation

__all__ = ["Project", "ProjectError", "load_project"]

_TIME_FORMATS = ("iso", "epoch_s", "epoch_ms", "date", "sql")
_EMBEDDERS = ("cleora", "random", "text")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# model.device: the CPU or a CUDA GPU (torch names)
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?")


class ProjectError(ValueError):
    """A project file that cannot be used; the message names the key and the fix."""


def _fail(key, problem, fix):
    raise ProjectError(f"{key}: {problem}. {fix}")


def _take(mapping, key, allowed, where):
    """Refuse keys a section does not know (typos would otherwise be ignored silently)."""
    if mapping is None:
        return {}
    if not isinstance(mapping, dict):
        _fail(where, f"expected a mapping, got {type(mapping).__name__}", "Write it as key: value lines.")
    unknown = sorted(set(mapping) - set(allowed))
    if unknown:
        _fail(
            f"{where}.{unknown[0]}" if where else unknown[0],
            "unknown key",
            f"Known keys here: {', '.join(sorted(allowed))}.",
        )
    return dict(mapping)


def _name(value, key, *, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        _fail(key, f"expected a column name, got {value!r}", "Give the column's name as text.")
    return value


# A column reaches the package's SQL as written: a plain name, or one double-quoted name
# (inner quotes doubled) as `basemodel init` writes names that need quoting. Anything else
# (an expression, a second statement) is refused here; derive it in a staging model instead.
_PART = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")'
_COLUMN = re.compile(_PART)


def _column(value, key, *, optional=False):
    value = _name(value, key, optional=optional)
    if value is not None and not _COLUMN.fullmatch(value):
        _fail(key, f"{value!r} is not a column name",
              "Give the column's name (double-quote it if it has spaces or odd characters); "
              "derive computed columns in a staging model and point `events: {ref: ...}` at it.")  # fmt: skip
    return value


# ``table`` or ``schema.table``, each part a column-like name (a dot or a space inside quotes
# belongs to the name)
_TABLE = re.compile(rf"{_PART}(?:\.{_PART})?")


def _table(value, key):
    value = _name(value, key)
    if not _TABLE.fullmatch(value):
        _fail(key, f"{value!r} is not a table name",
              'Write `table` or `schema.table`; double-quote a part with dots, spaces or odd '
              'characters, e.g. `sales."orders 2024"`.')  # fmt: skip
    return value


def table_parts(value):
    """``(schema or None, table)`` of a validated ``events.table``, quotes removed.

    The dbt package reads the events as a dbt source, and dbt quotes the source's schema and
    identifier itself: it is given the names, not SQL.

    Examples
    --------
    >>> table_parts('sales."orders.2024"')
    ('sales', 'orders.2024')
    >>> table_parts("orders")
    (None, 'orders')
    """
    parts = split_relation(value)
    return (None, *parts) if len(parts) == 1 else tuple(parts)


def _timestamp(value):
    import pandas as pd

    return pd.Timestamp(str(value))


def _positive(value, key, *, integer=True, optional=False):
    if value is None and optional:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive whole number" if integer else "a positive number"
        _fail(key, f"expected {what}, got {value!r}", f"Write {what}, e.g. 30.")
    return value


# --------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class Connection:
    """Where the events live: a DuckDB file, or a dbt profile (and target) of any adapter."""

    duckdb: str | None = "warehouse.duckdb"
    profile: str | None = None
    target: str | None = None
    profiles_dir: str | None = None

    @classmethod
    def from_dict(cls, data):
        data = _take(data, "connection", ("duckdb", "profile", "target", "profiles_dir"), "connection")
        if data.get("duckdb") and data.get("profile"):
            _fail(
                "connection",
                "both `duckdb` and `profile` are set",
                "Use `duckdb: FILE` for a DuckDB file or `profile: NAME` for a dbt profile.",
            )
        if "profile" in data:
            return cls(None, _name(data["profile"], "connection.profile"), data.get("target"),
                       data.get("profiles_dir"))  # fmt: skip
        return cls(str(data.get("duckdb", cls.duckdb)))


@dataclass(frozen=True)
class Events:
    """The input relation: a table (``schema.table``), a dbt source, or the user's own model."""

    table: str | None = None
    source: tuple | None = None
    ref: str | None = None

    @classmethod
    def from_dict(cls, data):
        data = _take(data, "events", ("table", "source", "ref"), "events")
        given = [k for k in ("table", "source", "ref") if data.get(k)]
        if len(given) != 1:
            _fail(
                "events",
                f"give exactly one of table, source, ref (got {given or 'none'})",
                "E.g. `table: raw.orders`, `ref: stg_orders` (your dbt model) or "
                "`source: {name: shop, table: orders}`.",
            )
        if "source" in given:
            source = _take(data["source"], "events.source", ("name", "table"), "events.source")
            if set(source) != {"name", "table"}:
                _fail("events.source", "needs `name` and `table`", "E.g. {name: shop, table: orders}.")
            return cls(source=(source["name"], source["table"]))
        if "ref" in given:
            return cls(ref=_name(data["ref"], "events.ref"))
        return cls(table=_table(data["table"], "events.table"))


@dataclass(frozen=True)
class Columns:
    """Column mapping: the customer, the time, the item columns and the optional ones.

    ``row_id`` names a unique row number of the raw table (a load sequence): it is carried
    into the staged and rejected tables, so each raw row can be traced to where it ended, and
    it orders duplicates (the first copy is staged)."""

    customer: str
    time: str
    items: tuple
    event_type: str | None = None
    amount: str | None = None
    event_id: str | None = None
    group: str | None = None
    loaded_at: str | None = None
    item_text: str | None = None
    row_id: str | None = None

    @classmethod
    def from_dict(cls, data):
        keys = ("customer", "time", "items", "event_type", "amount", "event_id", "group",
                "loaded_at", "item_text", "row_id")  # fmt: skip
        data = _take(data, "columns", keys, "columns")
        for required in ("customer", "time", "items"):
            if required not in data:
                _fail(f"columns.{required}", "missing", "Name the column that holds it.")
        items = data["items"]
        items = [items] if isinstance(items, str) else items
        if not isinstance(items, list) or not items:
            _fail("columns.items", "expected a list of item columns", "E.g. [product_id, category].")
        items = tuple(_column(item, f"columns.items[{i}]") for i, item in enumerate(items))
        optional = {k: _column(data.get(k), f"columns.{k}", optional=True) for k in keys[3:]}
        return cls(_column(data["customer"], "columns.customer"), _column(data["time"], "columns.time"),
                   items, **optional)  # fmt: skip


@dataclass(frozen=True)
class TimeFormat:
    """How the time column is given: ``iso``, ``epoch_s``, ``epoch_ms``, ``date``, a strftime
    pattern (``pattern``), or an SQL expression over the row (``sql``); and optionally the
    valid range (``valid_from`` inclusive, ``valid_to`` exclusive): events outside it are
    rejected with the reason, not staged (a clock error in 2099 would otherwise be "now")."""

    format: str = "iso"
    pattern: str | None = None
    sql: str | None = None
    valid_from: str | None = None
    valid_to: str | None = None

    @classmethod
    def from_dict(cls, data):
        data = _take(data, "time", ("format", "pattern", "sql", "valid_from", "valid_to"), "time")
        bounds = {}
        for key in ("valid_from", "valid_to"):
            if data.get(key) is not None:
                try:
                    bounds[key] = str(_timestamp(data[key]))
                except ValueError:
                    _fail(f"time.{key}", f"not a date or time: {data[key]!r}", "E.g. 2020-01-01.")
        fmt = data.get("format", "pattern" if "pattern" in data else "iso")
        if fmt not in (*_TIME_FORMATS, "pattern"):
            _fail("time.format", f"unknown format {fmt!r}",
                  f"Use one of {', '.join(_TIME_FORMATS)}, or `pattern: '%d/%m/%Y %H:%M'`.")  # fmt: skip
        if fmt == "pattern" and not data.get("pattern"):
            _fail("time.pattern", "missing", "Give a strftime pattern such as '%d/%m/%Y'.")
        if fmt == "sql" and not data.get("sql"):
            _fail("time.sql", "missing", "Give an SQL expression, e.g. \"date '2000-01-01' + days\".")
        return cls(fmt, data.get("pattern"), data.get("sql"), **bounds)


@dataclass(frozen=True)
class Modality:
    """One item column (or attribute) and the embedder that gives its entity vectors:
    ``cleora`` (co-occurrence in baskets / sessions), ``random`` (ID hashing: no similarity,
    for attributes whose values are unrelated) or ``text`` (TF-IDF + SVD of the descriptions in
    ``columns.item_text``: new items get vectors from their text alone)."""

    column: str
    embedder: str = "cleora"

    @classmethod
    def from_dict(cls, data, key):
        if isinstance(data, str):
            data = {"column": data}
        data = _take(data, key, ("column", "embedder"), key)
        embedder = data.get("embedder", "cleora")
        if embedder not in _EMBEDDERS:
            _fail(f"{key}.embedder", f"unknown embedder {embedder!r}", f"Use one of {', '.join(_EMBEDDERS)}.")
        return cls(_name(data.get("column"), f"{key}.column"), embedder)


@dataclass(frozen=True)
class Grouping:
    """How events form hyperedges: the ``group`` column (order, session), or a time gap."""

    by: str = "group"
    gap_minutes: float | None = None

    @classmethod
    def from_dict(cls, data):
        data = _take(data, "grouping", ("by", "gap_minutes"), "grouping")
        by = data.get("by", "gap" if "gap_minutes" in data else "group")
        if by not in ("group", "gap"):
            _fail("grouping.by", f"unknown grouping {by!r}", "Use `group` (the group column) or `gap`.")
        gap = _positive(data.get("gap_minutes"), "grouping.gap_minutes", integer=False,
                        optional=by != "gap")  # fmt: skip
        return cls(by, gap)


@dataclass(frozen=True)
class Churn:
    """Churn of the customers active in the last ``active_days`` days: no event in the next
    ``horizon_days``. Customers inactive for longer are not scored (they have already left)."""

    horizon_days: int = 30
    active_days: int = 90


@dataclass(frozen=True)
class Propensity:
    """Propensity to buy from one value of an item column within the horizon."""

    column: str
    value: str
    horizon_days: int = 30


@dataclass(frozen=True)
class Tasks:
    """The tasks to train and evaluate."""

    next_items: str | None = None
    k: int = 10
    churn: Churn | None = None
    propensity: tuple = ()
    spend_horizon_days: int | None = None
    next_items_horizon_days: int | None = None

    @classmethod
    def from_dict(cls, data, item_columns):
        data = _take(data, "tasks", ("next_items", "churn", "propensity", "spend"), "tasks")
        if not data:
            _fail("tasks", "no task", "Add at least one: next_items, churn, propensity or spend.")
        next_items, k, next_horizon = None, 10, None
        if "next_items" in data:
            entry = _take(data["next_items"] or {}, "tasks.next_items", ("column", "k", "horizon_days"),
                          "tasks.next_items")  # fmt: skip
            next_horizon = _positive(entry.get("horizon_days"), "tasks.next_items.horizon_days",
                                     optional=True)  # fmt: skip
            next_items = entry.get("column", item_columns[0])
            if next_items not in item_columns:
                _fail("tasks.next_items.column", f"{next_items!r} is not an item column",
                      f"Use one of {list(item_columns)}.")  # fmt: skip
            k = _positive(entry.get("k", 10), "tasks.next_items.k")
        churn = None
        if "churn" in data:
            entry = _take(data["churn"] or {}, "tasks.churn", ("horizon_days", "active_days"), "tasks.churn")
            churn = Churn(
                _positive(entry.get("horizon_days", 30), "tasks.churn.horizon_days"),
                _positive(entry.get("active_days", 90), "tasks.churn.active_days"),
            )
        propensity = []
        for i, entry in enumerate(data.get("propensity") or []):
            key = f"tasks.propensity[{i}]"
            entry = _take(entry, key, ("column", "value", "horizon_days"), key)
            column = _name(entry.get("column"), f"{key}.column")
            if column not in item_columns:
                _fail(f"{key}.column", f"{column!r} is not an item column", f"Use one of {list(item_columns)}.")
            if entry.get("value") is None:
                _fail(f"{key}.value", "missing", "Give the item value, e.g. books.")
            propensity.append(Propensity(column, str(entry["value"]),
                                         _positive(entry.get("horizon_days", 30), f"{key}.horizon_days")))  # fmt: skip
        spend = None
        if "spend" in data:
            entry = _take(data["spend"] or {}, "tasks.spend", ("horizon_days",), "tasks.spend")
            spend = _positive(entry.get("horizon_days", 30), "tasks.spend.horizon_days")
        horizons = {"next_items": next_horizon, "churn": churn and churn.horizon_days, "spend": spend}
        horizons.update({f"propensity[{i}]": p.horizon_days for i, p in enumerate(propensity)})
        horizons = {task: days for task, days in horizons.items() if days}
        if len(set(horizons.values())) > 1:
            _fail("tasks", f"the tasks have different horizons ({horizons})",
                  "Every task is labelled over one horizon: give them the same horizon_days.")  # fmt: skip
        return cls(next_items, k, churn, tuple(propensity), spend, next_horizon)

    @property
    def horizon_days(self):
        """The one horizon of every task (30 days when no task sets one)."""
        days = [self.next_items_horizon_days] if self.next_items_horizon_days else []
        days += [p.horizon_days for p in self.propensity]
        days += [self.churn.horizon_days] if self.churn else []
        days += [self.spend_horizon_days] if self.spend_horizon_days else []
        return days[0] if days else 30


@dataclass(frozen=True)
class Backtest:
    """Cut-offs for training and evaluation: ``splits`` cut-offs ``every_days`` apart (a
    fraction of a day for sessions: 0.25 is every 6 hours), the last one ``horizon`` before the
    end of the data (so its labels are complete). ``evaluate`` tests on the last
    ``test_splits`` cut-offs and trains on the earlier ones."""

    splits: int = 3
    every_days: float = 30
    test_splits: int = 1

    @classmethod
    def from_dict(cls, data):
        data = _take(data, "backtest", ("splits", "every_days", "test_splits"), "backtest")
        out = cls(_positive(data.get("splits", 3), "backtest.splits"),
                  _positive(data.get("every_days", 30), "backtest.every_days", integer=False),
                  _positive(data.get("test_splits", 1), "backtest.test_splits"))  # fmt: skip
        if out.test_splits >= out.splits:
            _fail("backtest.test_splits", f"{out.test_splits} of {out.splits} cut-offs",
                  "evaluate tests on the last test_splits cut-offs and trains on the others: "
                  "make it smaller than splits.")  # fmt: skip
        return out


@dataclass(frozen=True)
class ModelSizes:
    """Sizes of the profile and networks; the defaults are the recipe's. ``history_days``
    limits each profile to the events of that many days before the cut-off (None: all of
    them; a fraction of a day for sessions); ``update`` cannot fold into a windowed profile.
    ``device``: where Cleora propagates and the networks train (``cpu``, ``cuda``, ``cuda:1``)."""

    n_components: int = 64
    n_sketches: int = 16
    sketch_dim: int | str = "auto"  # "auto": recipes.sketch_dim_for(entities of the embedder)
    half_life_days: float = 35.0
    history_days: float | None = None
    hidden_units: int = 512
    max_epochs: int | str = "auto"  # "auto": the networks' own (up to 50, early stopping ends it)
    random_state: int = 0
    device: str = "cpu"

    @classmethod
    def from_dict(cls, data):
        keys = tuple(cls.__dataclass_fields__)
        data = _take(data, "model", keys, "model")
        values = {}
        for key in keys:
            if key in data:
                integer = key not in ("half_life_days", "history_days")
                if key == "device":
                    if not isinstance(data[key], str) or not _DEVICE.fullmatch(data[key]):
                        _fail("model.device", f"{data[key]!r} is not a device",
                              "Use cpu, cuda or cuda:N (a GPU's index).")  # fmt: skip
                    values[key] = data[key]
                elif key == "random_state":
                    if isinstance(data[key], bool) or not isinstance(data[key], int):
                        _fail("model.random_state", f"expected an integer, got {data[key]!r}", "E.g. 0.")
                    values[key] = data[key]
                elif key in ("sketch_dim", "max_epochs") and data[key] == "auto":
                    values[key] = "auto"
                else:
                    values[key] = _positive(data[key], f"model.{key}", integer=integer,
                                            optional=key == "history_days")  # fmt: skip
        sketch_dim = values.get("sketch_dim", cls.sketch_dim)
        if sketch_dim != "auto" and sketch_dim & (sketch_dim - 1):
            _fail("model.sketch_dim", f"{sketch_dim} is not a power of two",
                  'Use 32, 64, 128 or 256, or "auto" (sized from the number of entities).')  # fmt: skip
        return cls(**values)


@dataclass(frozen=True)
class Output:
    """Where scores are written back: a schema (created if missing) and a table prefix;
    ``universal_profiles``: also write each customer's universal profile."""

    schema: str = "basemodel_output"
    prefix: str = "basemodel_"
    universal_profiles: bool = True

    @classmethod
    def from_dict(cls, data):
        data = _take(data, "output", ("schema", "prefix", "universal_profiles"), "output")
        out = cls(data.get("schema", cls.schema), data.get("prefix", cls.prefix),
                  data.get("universal_profiles", cls.universal_profiles))  # fmt: skip
        for key, value in (("output.schema", out.schema), ("output.prefix", out.prefix)):
            if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
                _fail(key, f"{value!r} is not a plain identifier", "Use letters, digits and _.")
        if not isinstance(out.universal_profiles, bool):
            _fail("output.universal_profiles", f"expected true or false, got "
                  f"{out.universal_profiles!r}", "E.g. universal_profiles: false.")  # fmt: skip
        return out


# --------------------------------------------------------------------------- the project
_SECTIONS = ("version", "connection", "dbt_project", "events", "columns", "time", "modalities",
             "grouping", "tasks", "backtest", "model", "output")  # fmt: skip


@dataclass(frozen=True)
class Project:
    """A validated project: the Python form of ``basemodel.yml``."""

    connection: Connection
    events: Events
    columns: Columns
    time: TimeFormat
    modalities: tuple
    grouping: Grouping
    tasks: Tasks
    backtest: Backtest = field(default_factory=Backtest)
    model: ModelSizes = field(default_factory=ModelSizes)
    output: Output = field(default_factory=Output)
    dbt_project: str = "dbt"
    root: str = "."

    @classmethod
    def from_dict(cls, data, root="."):
        """Validate a mapping (the parsed YAML) into a Project."""
        data = _take(data, "", _SECTIONS, "")
        if data.get("version", 1) != 1:
            _fail("version", f"unsupported version {data['version']!r}", "Write `version: 1`.")
        for required in ("events", "columns", "tasks"):
            if required not in data:
                _fail(required, "missing section", "See examples/ for a complete basemodel.yml.")
        columns = Columns.from_dict(data["columns"])
        raw_modalities = data.get("modalities") or list(columns.items)
        modalities = tuple(
            Modality.from_dict(entry, f"modalities[{i}]") for i, entry in enumerate(raw_modalities)
        )
        if any(m.embedder == "text" for m in modalities) and columns.item_text is None:
            _fail("modalities", "an item column has `embedder: text` but there is no item text",
                  "Name the description column in `columns.item_text`.")  # fmt: skip
        unknown = [m.column for m in modalities if m.column not in columns.items]
        if unknown:
            _fail("modalities", f"{unknown} are not item columns",
                  f"List them under columns.items too ({list(columns.items)}).")  # fmt: skip
        grouping = Grouping.from_dict(data.get("grouping"))
        if grouping.by == "group" and columns.group is None:
            grouping = Grouping("gap", 30.0)  # no basket id: a 30-minute gap ends a trip
        return cls(
            connection=Connection.from_dict(data.get("connection")),
            events=Events.from_dict(data["events"]),
            columns=columns,
            time=TimeFormat.from_dict(data.get("time")),
            modalities=modalities,
            grouping=grouping,
            tasks=Tasks.from_dict(data["tasks"], columns.items),
            backtest=Backtest.from_dict(data.get("backtest")),
            model=ModelSizes.from_dict(data.get("model")),
            output=Output.from_dict(data.get("output")),
            dbt_project=_name(data.get("dbt_project", "dbt"), "dbt_project"),
            root=str(root),
        )

    @property
    def horizon_days(self):
        """The horizon of the targets of every task."""
        return self.tasks.horizon_days

    def path(self, relative):
        """A path of the project file, relative to its folder unless absolute."""
        path = Path(relative)
        return path if path.is_absolute() else Path(self.root) / path

    @property
    def dbt_dir(self):
        """The dbt project that installs the package (``dbt_project``, default ``dbt/``)."""
        return self.path(self.dbt_project)

    def to_dict(self):
        """The project as plain data (for saving next to a fitted model)."""
        return asdict(self)

    def dbt_vars(self):
        """The ``basemodel_*`` vars of the dbt package for this project."""
        from ..decay import rate_from_half_life

        columns = self.columns
        values = {
            "basemodel_entity_column": columns.customer,
            "basemodel_timestamp_column": columns.time,
            "basemodel_time_format": self.time.format,
            "basemodel_item_columns": list(columns.items),
            "basemodel_decay_rate": rate_from_half_life(self.model.half_life_days),
        }
        if self.model.history_days is not None:
            values["basemodel_history_days"] = self.model.history_days
        if self.time.pattern:
            values["basemodel_time_pattern"] = self.time.pattern
        if self.time.sql:
            values["basemodel_time_expression"] = self.time.sql
        if self.time.valid_from:
            values["basemodel_valid_from"] = self.time.valid_from
        if self.time.valid_to:
            values["basemodel_valid_to"] = self.time.valid_to
        optional = {
            "basemodel_event_type_column": columns.event_type,
            "basemodel_amount_column": columns.amount,
            "basemodel_event_id_column": columns.event_id,
            "basemodel_group_column": columns.group,
            "basemodel_loaded_at_column": columns.loaded_at,
        }
        values.update({k: v for k, v in optional.items() if v is not None})
        passthrough = [c for c in (columns.row_id, columns.item_text) if c is not None]
        if passthrough:
            values["basemodel_passthrough_columns"] = passthrough
        if columns.row_id is not None:
            values["basemodel_dedup_order_by"] = columns.row_id
        if self.grouping.by == "gap":
            values["basemodel_session_gap_minutes"] = self.grouping.gap_minutes
        values["basemodel_horizon_days"] = self.tasks.horizon_days
        if self.tasks.churn is not None:
            values["basemodel_active_days"] = self.tasks.churn.active_days
        if self.tasks.propensity:
            wanted = {}
            for task in self.tasks.propensity:
                wanted.setdefault(task.column.lower(), []).append(task.value)
            values["basemodel_propensity_items"] = wanted
        if self.events.table is not None:
            schema, table = table_parts(self.events.table)
            values["basemodel_events_identifier"] = table
            if schema is not None:
                values["basemodel_events_schema"] = schema
        elif self.events.source is not None:
            values["basemodel_events_source"] = list(self.events.source)
        else:
            values["basemodel_events_model"] = self.events.ref
        return values


def load_project(path):
    """Read and validate a ``basemodel.yml``.

    Parameters
    ----------
    path : str or path-like
        The project file; relative paths inside it are taken from its folder.

    Returns
    -------
    Project

    Raises
    ------
    ProjectError
        Naming the key and the fix.
    """
    import yaml  # installed with dbt-core

    path = Path(path)
    if not path.is_file():
        raise ProjectError(f"{path}: no such project file. Create one with `basemodel init`.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path}: not valid YAML ({exc}).") from None
    return Project.from_dict(data, root=path.parent)
