"""``basemodel init``: read a user's DuckDB table, guess what its columns are, write a project.

:func:`guess_project` inspects the table read-only (its column names and types, and a bounded
sample of rows) and guesses each column's role: the customer, the time and how it is written,
the item columns (product first), the event type, the amount, the basket or session id, the
event id. :func:`init_project` writes that guess as a commented ``basemodel.yml`` next to a dbt
project ``dbt/`` that installs the ``basemodel`` package; guesses it is unsure of carry a
``# CHECK:`` comment. The user edits a few lines and runs ``basemodel fit``.

When no column looks like the customer, the time or an item, nothing is written: a
:class:`~sklearn_basemodel.workflow.ProjectError` names the key and lists the table's columns
(rename them in a view, or write the project file by hand).

Examples
--------
>>> import tempfile, duckdb
>>> from pathlib import Path
>>> from sklearn_basemodel.workflow import load_project
>>> from sklearn_basemodel.workflow.starter import guess_project, init_project
>>> folder = Path(tempfile.mkdtemp())
>>> with duckdb.connect(str(folder / "shop.duckdb")) as connection:
...     _ = connection.execute(
...         "create table orders as select 'c' || (i % 7) as user_id, i % 20 as order_no,"
...         " timestamp '2024-01-01' + i * interval 1 hour as ordered_at,"
...         " 'p' || (i % 5) as product_id, i * 1.5 as price from range(100) t(i)")
>>> guess = guess_project(folder / "shop.duckdb", "orders")
>>> guess["columns"]
{'customer': 'user_id', 'time': 'ordered_at', 'items': ['product_id'], 'amount': 'price', 'group': 'order_no'}
>>> guess["time"], guess["grouping"]
({'format': 'iso'}, {'by': 'group'})
>>> path = init_project(folder, duckdb=folder / "shop.duckdb", table="orders")
>>> load_project(path).tasks.spend_horizon_days
30
>>> import shutil; shutil.rmtree(folder)
"""

from __future__ import annotations

import datetime
import functools
import math
import os
import re
import statistics
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..warehouse.connections import duckdb_connection, quote_identifier, quote_relation
from ..warehouse.dbt import dbt_package_path
from .config import Backtest, Churn, ModelSizes, Output, ProjectError

__all__ = ["guess_project", "init_project"]

# Enough rows to see the formats and cardinalities; a bounded read of any table size.
_SAMPLE_ROWS = 10_000
# Distinct time texts tried against each pattern (strptime is slow; a few thousand decide).
_TIME_TRIES = 2_000
# Below this share of sample values read, a time format is not the column's format; between it
# and 1 the guess stands, flagged: the unreadable rows will be quarantined by the package.
_READ_SHARE = 0.95

# Name words (a token of the column name starts with one), in order of preference.
_CUSTOMER = ("customer", "cust", "user", "client", "member", "visitor", "account", "household",
             "shopper", "buyer", "consumer", "subscriber", "guest")  # fmt: skip
_GROUP = ("order", "basket", "session", "transaction", "txn", "invoice", "receipt", "cart",
          "trip", "visit", "checkout")  # fmt: skip
_ITEMS = ("product", "item", "sku", "article", "stock", "upc", "ean", "asin", "offer", "listing",
          "category", "subcategory", "class", "brand", "manufacturer", "department", "dept",
          "aisle", "genre", "family", "collection", "section", "artist", "author")  # fmt: skip
# Whole tokens.
_AMOUNT = ("amount", "revenue", "sales", "spend", "total", "value", "price", "cost", "paid", "gmv")
_QUANTITY = ("quantity", "qty", "units", "count")
_ID_LIKE = ("id", "key", "no", "nr", "num", "number", "code", "uuid", "ref", "hash")
_TIME_WORDS = ("time", "date", "timestamp", "ts", "datetime", "day", "dt", "epoch")
_LOADED = ("loaded", "ingested", "inserted", "extracted", "synced", "etl")
_NOT_EVENT_TIME = ("updated", "modified", "deleted") + _LOADED
_EVENT_TYPE = ("event", "type", "action", "activity", "interaction", "behavior", "behaviour",
               "kind", "name")  # fmt: skip
_EVENT_ID = ("event", "row", "line", "record", "message", "log")
_FREE_TEXT = ("description", "desc", "title", "text", "comment", "review", "url")
_MAX_EVENT_TYPES = 50
# Words SQL refuses as a bare column name: the package pastes column names into its SQL.
_RESERVED = frozenset(("all", "and", "as", "asc", "by", "case", "check", "column", "default",
                       "desc", "do", "end", "for", "from", "group", "in", "into", "is", "limit",
                       "not", "offset", "on", "or", "order", "select", "table", "to", "union",
                       "user", "when", "where", "window", "with"))  # fmt: skip
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# The patterns tried on text times: day first before month first (most of the world), the
# directives the package reads (macros/internal/time_pattern.sql).
_DATES = ("%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%Y%m%d", "%d %b %Y",
          "%d-%b-%Y", "%b %d %Y")  # fmt: skip
_PATTERNS = tuple(date + time for date in _DATES for time in (" %H:%M:%S", " %H:%M", ""))


# --------------------------------------------------------------------------- the table
@dataclass
class _Column:
    """One column: its name, DuckDB type, the name's words and the sample's non-null values."""

    name: str
    type: str
    values: list
    tokens: tuple = field(init=False)

    def __post_init__(self):
        words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+", self.name)
        self.tokens = tuple(word.lower() for word in words) or (self.name.lower(),)

    @property
    def kind(self):
        """``timestamp``, ``date``, ``integer``, ``number``, ``text``, ``boolean`` or ``other``."""
        t = self.type.upper()
        if t == "DATE":
            return "date"
        if t.startswith("TIMESTAMP") or t == "DATETIME":
            return "timestamp"
        if re.fullmatch(r"U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?", t):
            return "integer"
        if t in ("FLOAT", "DOUBLE", "REAL") or t.startswith("DECIMAL"):
            return "number"
        if t in ("VARCHAR", "UUID") or t.startswith(("VARCHAR(", "ENUM(")):
            return "text"
        return "boolean" if t == "BOOLEAN" else "other"

    @functools.cached_property
    def distinct(self):
        return len(set(self.values))

    def named(self, words):
        """Whether a word of the name starts with one of ``words``."""
        return any(token.startswith(word) for token in self.tokens for word in words)

    def has(self, words):
        """Whether a word of the name is one of ``words``."""
        return any(token in words for token in self.tokens)

    @property
    def id_like(self):
        return self.has(_ID_LIKE) or self.tokens[-1].endswith("id")

    @property
    def can_be_id(self):
        """Ids are text or whole numbers, and differ between rows."""
        return self.kind in ("text", "integer") and self.distinct >= 2


def _read_table(database, table):
    """The columns of ``table`` with a sample of its rows, read without writing anything."""
    import duckdb

    relation = quote_relation(table)
    with duckdb_connection(database, read_only=True) as connection:
        try:
            described = connection.execute(f"describe select * from {relation}").fetchall()
        except duckdb.CatalogException:
            found = connection.execute(
                "select table_schema, table_name from information_schema.tables"
                " order by table_schema, table_name"
            ).fetchall()
            names = ", ".join(f"{schema}.{name}" for schema, name in found) or "none"
            raise ProjectError(
                f"events.table: there is no table or view {table!r} in {os.fspath(database)}. "
                f"Tables there: {names}."
            ) from None
        rows = connection.execute(f"select * from {relation} limit {_SAMPLE_ROWS}").fetchall()
    columns = []
    for position, (name, type_, *_) in enumerate(described):
        values = [row[position] for row in rows if row[position] is not None]
        if values and not isinstance(values[0], (list, dict)):  # unhashable: never a role
            columns.append(_Column(name, type_, values))
        else:
            columns.append(_Column(name, type_, []))
    return columns


# --------------------------------------------------------------------------- time
def _iso_grammar():
    """The package's ISO 8601 grammar, read from its macro so both sides agree on it."""
    macro = dbt_package_path() / "macros" / "internal" / "iso_timestamp_pattern.sql"
    grammar = r"iso_timestamp_pattern\(\) -%\}\s*(\^[^\n]*\$)\s*\{%- endmacro"
    match = re.search(grammar, macro.read_text())
    return re.compile(match.group(1))


def _share(values, reads):
    return sum(map(reads, values)) / len(values)


def _strptime_reads(pattern):
    def reads(text):
        try:
            datetime.datetime.strptime(text, pattern)
        except ValueError:
            return False
        return True

    return reads


def _number_format(values):
    """epoch_s / epoch_ms by the magnitude of the values, or an 8-digit ``%Y%m%d`` number."""
    numbers = [n for n in map(float, values) if math.isfinite(n)]
    if not numbers:
        return None
    if all(n == int(n) and 19000101 <= n <= 21001231 for n in numbers):
        return {"format": "pattern", "pattern": "%Y%m%d"}, [
            "numbers read as %Y%m%d dates (e.g. 20240131) because of their size"
        ]
    magnitude = statistics.median(abs(n) for n in numbers)
    if 1e8 <= magnitude < 1e11:
        return {"format": "epoch_s"}, []
    if 1e11 <= magnitude < 1e14:
        return {"format": "epoch_ms"}, []
    return None


def _text_format(values):
    """iso, a number as text, or the first pattern that reads (almost) every value."""
    texts = sorted({str(v).strip() for v in values} - {""})[:_TIME_TRIES]
    if not texts:
        return None
    grammar = _iso_grammar()
    iso = _share(texts, lambda text: grammar.fullmatch(text) is not None)
    if iso >= _READ_SHARE:
        return {"format": "iso"}, _unread_note(iso, "ISO")
    if all(re.fullmatch(r"-?[0-9]+([.][0-9]+)?", t) for t in texts):
        return _number_format(texts)
    shares = {p: _share(texts, _strptime_reads(p)) for p in _PATTERNS}
    best = max(shares, key=shares.get)  # the first of equals: the preferred one
    if shares[best] < _READ_SHARE:
        return None
    notes = _unread_note(shares[best], best)
    others = [p for p in _PATTERNS if p != best and shares[p] == shares[best]]
    if others:
        notes.append(f"the values read as {best!r} and as {others[0]!r} alike; keep the right one")
    return {"format": "pattern", "pattern": best}, notes


def _unread_note(share, what):
    if share == 1:
        return []
    return [f"{1 - share:.1%} of the sampled values do not read as {what}; those rows will be rejected"]


def _time_format(column):
    """``({format, pattern?}, notes)`` the package reads ``column`` with, or None."""
    if column.kind == "date":
        return {"format": "date"}, []
    if column.kind == "timestamp":
        return {"format": "iso"}, []
    named = column.has(_TIME_WORDS) or column.tokens[-1] in ("at", "on")
    if not named or not column.values:
        return None
    if column.kind in ("integer", "number"):
        return _number_format(column.values)
    return _text_format(column.values) if column.kind == "text" else None


def _guess_time(columns, notes):
    """The event time column and its format; a loaded-at column too when there is one."""
    candidates = []
    for position, column in enumerate(columns):
        found = _time_format(column)
        if found is None:
            continue
        score = (column.has(_TIME_WORDS) or column.tokens[-1] in ("at", "on")) + (
            column.kind in ("date", "timestamp")
        ) - 2 * column.has(_NOT_EVENT_TIME)
        candidates.append((-score, position, column, found))
    if not candidates:
        return None, None, None
    candidates.sort(key=lambda c: c[:2])
    _, _, column, (time_format, format_notes) = candidates[0]
    notes.setdefault("time", []).extend(format_notes)
    if column.has(_NOT_EVENT_TIME):
        notes.setdefault("columns.time", []).append(
            f"{column.name!r} is named like a load or update time, not when the event happened"
        )
    others = [c[2].name for c in candidates[1:]]
    if others:
        notes.setdefault("columns.time", []).append(f"other time columns: {', '.join(others)}")
    loaded = next(
        (c[2] for c in candidates[1:] if c[2].has(_LOADED) and c[2].kind == "timestamp"), None
    )
    return column, time_format, loaded


# --------------------------------------------------------------------------- other roles
def _best(columns, score, key, notes, unsure=1):
    """The column of highest positive ``score`` (ties: the first); a note when it is unsure."""
    scored = [(score(c), -i, c) for i, c in enumerate(columns)]
    scored = sorted((s for s in scored if s[0] > 0), key=lambda s: s[:2], reverse=True)
    if not scored:
        return None
    best, column = scored[0][0], scored[0][2]
    if best <= unsure:
        notes.setdefault(key, []).append(f"guessed from the name {column.name!r} alone")
    rivals = [c.name for s, _, c in scored[1:] if s == best]
    if rivals:
        notes.setdefault(key, []).append(f"could also be {', '.join(rivals)}")
    return column


def _customer_score(column):
    if not column.can_be_id or not column.named(_CUSTOMER):
        return 0
    exact = len(column.tokens) == 1 and column.tokens[0] in _CUSTOMER
    return 2 if column.id_like or exact else 1


def _group_score(column):
    # visitor_id is a customer (a second one, left over), not a visit.
    if not column.can_be_id or not column.named(_GROUP) or column.named(_CUSTOMER):
        return 0
    exact = len(column.tokens) == 1 and column.tokens[0] in _GROUP
    return 2 if column.id_like or exact else 1


def _amount_score(column):
    if column.kind not in ("integer", "number") or not column.has(_AMOUNT):
        return 0
    rank = min(_AMOUNT.index(t) for t in column.tokens if t in _AMOUNT)
    return 2 + len(_AMOUNT) - rank  # amount before price: never "unsure", ranked by word


def _event_type_score(column):
    # "name" or "kind" alone is too vague: a customer's name has few values in a sample too.
    words_only = all(t in _EVENT_TYPE for t in column.tokens) and column.has(_EVENT_TYPE[:7])
    few = 1 <= column.distinct <= _MAX_EVENT_TYPES
    return 2 if column.kind == "text" and words_only and few else 0


def _event_id_score(column):
    if not column.can_be_id or not column.id_like:
        return 0
    unique = column.distinct == len(column.values)
    plain = column.tokens in (("id",), ("uuid",)) or column.tokens[0] in _EVENT_ID
    return 2 if unique and plain else 0


def _item_rank(column):
    """Position of the column's item word (product first), or None when it is no item."""
    if not column.can_be_id or column.has(_FREE_TEXT + _QUANTITY + _AMOUNT):
        return None
    ranks = [i for i, word in enumerate(_ITEMS) for t in column.tokens if t.startswith(word)]
    return min(ranks) if ranks else None


def _guess_items(columns, notes):
    ranked = sorted(
        (rank, i, c) for i, c in enumerate(columns) if (rank := _item_rank(c)) is not None
    )
    if ranked:
        return [c for _, _, c in ranked]
    # No item word: the first id-like column that repeats across rows, flagged.
    fallback = [c for c in columns if c.can_be_id and c.distinct < len(c.values)]
    if fallback:
        notes.setdefault("columns.items", []).append(
            f"no column is named like a product or category; {fallback[0].name!r} is a guess"
        )
    return fallback[:1]


def _missing(key, role, columns):
    listed = ", ".join(f"{c.name} ({c.type})" for c in columns)
    return ProjectError(
        f"{key}: no column looks like {role}. The table has: {listed}. Rename the column in a "
        "view (create view ... as select ..., my_column as customer_id ...) and run init on the "
        "view, or write basemodel.yml by hand (see examples/)."
    )


# --------------------------------------------------------------------------- the guess
def _sql_name(column, key, notes, *, item=False):
    """The column as the package writes it into SQL: quoted when it is not a plain name."""
    name = column.name
    if _PLAIN.fullmatch(name) and name.lower() not in _RESERVED:
        return name
    if item:
        notes.setdefault(key, []).append(
            f"the package names its output after item columns: rename {name!r} to a plain name "
            "in a staging model (see dbt/models/README.md)"
        )
    return quote_identifier(name)


def _guess(database, table, directory):
    columns = _read_table(database, table)
    notes = {}
    time, time_format, loaded = _guess_time(columns, notes)
    if time is None:
        raise _missing("columns.time", "the event time (a timestamp, date, epoch or text time)",
                       columns)  # fmt: skip
    free = [c for c in columns if c is not time and c is not loaded]
    roles = {}
    for key, score in (("amount", _amount_score), ("customer", _customer_score),
                       ("group", _group_score), ("event_id", _event_id_score),
                       ("event_type", _event_type_score)):  # fmt: skip
        roles[key] = _best(free, score, f"columns.{key}", notes)
        free = [c for c in free if c is not roles[key]]
    if roles["customer"] is None and roles["group"] is not None:
        # Anonymous sessions (clickstreams): each session is the entity profiled.
        roles["customer"] = roles["group"]
        notes.setdefault("columns.customer", []).append(
            f"no customer column: the {roles['group'].name!r} groups are the customers"
        )
    if roles["customer"] is None:
        raise _missing("columns.customer", "the customer (customer_id, user_id, ...)", columns)
    items = _guess_items(free, notes)
    if not items:
        raise _missing("columns.items", "an item (product_id, sku, category, ...)", columns)
    if roles["amount"] is not None and any(c.has(_QUANTITY) for c in columns):
        notes.setdefault("columns.amount", []).append(
            "there is a quantity column: if this is a unit price, derive price * quantity in a "
            "staging model"
        )

    mapping = {"customer": _sql_name(roles["customer"], "columns.customer", notes),
               "time": _sql_name(time, "columns.time", notes),
               "items": [_sql_name(c, "columns.items", notes, item=True) for c in items]}  # fmt: skip
    for key in ("event_type", "amount", "event_id", "group"):
        if roles[key] is not None:
            mapping[key] = _sql_name(roles[key], f"columns.{key}", notes)
    if loaded is not None:
        mapping["loaded_at"] = _sql_name(loaded, "columns.loaded_at", notes)

    tasks = {"next_items": {"column": mapping["items"][0], "k": 10},
             "churn": asdict(Churn())}  # fmt: skip
    if roles["amount"] is not None:  # one horizon for every task (the package labels once)
        tasks["spend"] = {"horizon_days": tasks["churn"]["horizon_days"]}
    project = {
        "version": 1,
        "connection": {"duckdb": _relative(database, directory)},
        "dbt_project": "dbt",
        "events": {"table": table},
        "columns": mapping,
        "time": time_format,
        "modalities": [{"column": c, "embedder": "cleora"} for c in mapping["items"]],
        "grouping": {"by": "group"} if roles["group"] is not None else {"by": "gap", "gap_minutes": 30},
        "tasks": tasks,
        "backtest": asdict(Backtest()),
        "model": asdict(ModelSizes()),
        "output": asdict(Output()),
    }
    return project, notes


def _relative(database, directory):
    """The database file as the project file names it: relative to its folder when possible."""
    if directory is None:
        return os.fspath(database)
    try:
        return os.path.relpath(Path(database).resolve(), Path(directory).resolve())
    except ValueError:  # another drive (Windows): only an absolute path reaches it
        return os.fspath(Path(database).resolve())


def guess_project(duckdb, table, *, directory=None):
    """Guess a project for a DuckDB table: the mapping :func:`init_project` writes.

    Parameters
    ----------
    duckdb : str or path-like
        The DuckDB database file; opened read-only.
    table : str
        The table or view, ``table`` or ``schema.table`` (parts may be double-quoted).
    directory : str or path-like, default=None
        The project's folder: ``connection.duckdb`` is written relative to it when possible.
        None keeps ``duckdb`` as given.

    Returns
    -------
    project : dict
        The sections of ``basemodel.yml`` (``Project.from_dict`` accepts it).

    Raises
    ------
    ProjectError
        When the table does not exist (the message lists the tables there) or no column looks
        like the customer, the time or an item (the message lists the columns).
    FileNotFoundError
        When there is no file at ``duckdb``.

    See Also
    --------
    init_project : Write the guess, with comments, and a dbt project.
    """
    return _guess(duckdb, table, directory)[0]


# --------------------------------------------------------------------------- writing
_HELP = {
    "version": "The format of this file.",
    "connection": "Where the events are: `duckdb: FILE` (relative to this file), or `profile: NAME`"
    " (and `target:`) for a dbt profile such as PostgreSQL.",
    "connection.duckdb": "the DuckDB database file",
    "dbt_project": "The dbt project that installs the basemodel package; add staging models there.",
    "events": "The input relation: `table: schema.table`, `ref: my_model` (a model in dbt/models)"
    " or `source: {name: shop, table: orders}`.",
    "events.table": "read as it is",
    "columns": "Which column holds what (names as in the table; quoted names stay quoted).",
    "columns.customer": "whom the events belong to: profiled and scored",
    "columns.time": "when the event happened",
    "columns.items": "what the events are about, most specific first",
    "columns.event_type": "the kind of event (view, buy, ...)",
    "columns.amount": "the money of the event (spend task, monetary features)",
    "columns.event_id": "one id per event: repeated ids are duplicates",
    "columns.group": "the basket, order or session of the event",
    "columns.loaded_at": "when the row was loaded: of several copies of an event the earliest wins",
    "time": "How the time column is written: format iso, epoch_s, epoch_ms, date,"
    " pattern (with `pattern: '%d/%m/%Y %H:%M'`) or sql (with `sql: <expression>`). Optionally"
    " valid_from and valid_to (dates): events outside them are rejected, not staged.",
    "time.format": "how the package reads the time column",
    "time.pattern": "strftime directives %Y %m %b %d %H %M %S %f %z",
    "modalities": "One entry per item column: the embedder of its entities (cleora, random, text).",
    "grouping": "How events form hyperedges: `by: group` (the group column), or `by: gap` with"
    " `gap_minutes` (a longer pause starts a new session).",
    "tasks": "What to train and evaluate. Add propensity too, e.g."
    " `propensity: [{column: category, value: books, horizon_days: 30}]`.",
    "tasks.next_items": "recommend the next items of this column (top k)",
    "tasks.churn": "of the customers active in the last active_days: none in the next horizon_days",
    "tasks.spend": "the amount spent in the next horizon_days",
    "backtest": "Cut-offs: `splits` of them, `every_days` apart, the last one a horizon before the"
    " end of the data.",
    "model": "Sizes of the profile and networks (the recipe's defaults), and the device they"
    " train on (cpu, or cuda on a GPU).",
    "output": "Where scores are written back: a schema (created if missing), a table prefix,"
    " and whether every customer's universal profile (one vector each) is written too.",
}


def _flow(value):
    """``value`` as one line of YAML (quoted where YAML would misread it)."""
    import yaml  # installed with dbt-core

    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def _entry(key, value, path, indent, notes):
    pad = " " * indent
    lines = [f"{pad}# CHECK: {note}" for note in notes.get(path, [])]
    help_ = f"  # {_HELP[path]}" if indent and path in _HELP else ""
    if isinstance(value, dict):
        lines.append(f"{pad}{_flow(key)}:{help_}")
        for child, child_value in value.items():
            lines += _entry(child, child_value, f"{path}.{child}", indent + 2, notes)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        lines.append(f"{pad}{_flow(key)}:{help_}")
        lines += [f"{pad}  - {_flow(item)}" for item in value]
    else:
        lines.append(f"{pad}{_flow(key)}: {_flow(value)}{help_}")
    return lines


def _render(project, notes, database, table):
    lines = [
        (
            f"# basemodel.yml, written by `basemodel init` from the table {_flow(table)} of "
            f"{_flow(os.fspath(database))}."
        ),
        "# Read the CHECK lines, edit what is wrong, then run `basemodel fit`.",
    ]
    for section, value in project.items():
        lines += ["", *(f"# {line}" for line in textwrap.wrap(_HELP[section], 98))]
        lines += _entry(section, value, section, 0, notes)
    return "\n".join(lines) + "\n"


def _dbt_name(directory):
    """A dbt project name from the folder's name: an identifier, never the package's own."""
    name = re.sub(r"[^a-z0-9_]+", "_", Path(directory).resolve().name.lower()).strip("_")
    if not name or name[0].isdigit():
        name = f"project_{name}".rstrip("_")
    return f"{name}_project" if name == "basemodel" else name


_DBT_PROJECT = """\
# The dbt project of this BaseModel project: it installs the basemodel package
# (packages.yml) and holds your own models (models/). `basemodel fit` runs it
# with the vars from ../basemodel.yml and writes the profile `basemodel` from
# its connection section, so nothing needs configuring here.
name: {name}
version: "0.1.0"
config-version: 2
profile: basemodel
model-paths: [models]
clean-targets: [target, dbt_packages, logs]
"""

_PACKAGES = """\
# The basemodel dbt package shipped with sklearn-basemodel (`basemodel dbt-path`
# prints this path; run init again with --force after reinstalling elsewhere).
packages:
  - local: {path}
"""

_MODELS_README = """\
# Your models

The basemodel package reads the table named in `../../basemodel.yml`
(`events: {{table: {table}}}`). When the table needs work first (a time derived
from other columns, names to rename, rows to filter, a price times a quantity)
write a staging model here, e.g. `stg_orders.sql`:

```sql
select
    customer_id,
    cast('2000-01-01' as date) + day_number as ordered_on,  -- a derived time
    "Product Name" as product_name,                          -- a plain name
    unit_price * quantity as amount
from {{{{ source('shop', 'orders') }}}}
```

declare the source it reads in `sources.yml` next to it:

```yaml
version: 2
sources:
  - name: shop
    schema: main
    tables:
      - name: orders
```

and point the project file at the model, with the columns it outputs:

```yaml
events: {{ref: stg_orders}}
columns: {{customer: customer_id, time: ordered_on, items: [product_name], amount: amount}}
time: {{format: date}}
```

The package reads it through `ref`, so dbt builds it first on every run.
"""


def init_project(directory=".", *, duckdb, table, force=False):
    """Write a starter ``basemodel.yml`` and dbt project for a DuckDB table.

    The table is inspected read-only (:func:`guess_project`); the guess is written, with a
    comment on every key and ``# CHECK:`` on uncertain guesses, to ``directory/basemodel.yml``,
    next to ``directory/dbt/`` (``dbt_project.yml``, ``packages.yml`` that installs the
    ``basemodel`` package, ``models/README.md`` on adding a staging model). No
    ``profiles.yml``: the workflow writes it from the connection section when it runs dbt.

    Parameters
    ----------
    directory : str or path-like, default="."
        The project folder; created if absent.
    duckdb : str or path-like
        The DuckDB database file holding the events.
    table : str
        The events table or view, ``table`` or ``schema.table``.
    force : bool, default=False
        Overwrite files an earlier init wrote.

    Returns
    -------
    path : pathlib.Path
        The written ``basemodel.yml``.

    Raises
    ------
    FileExistsError
        When one of the files exists and ``force`` is False.
    ProjectError
        When the table is missing or no column looks like the customer, the time or an item;
        nothing is written then.
    """
    directory = Path(directory)
    dbt_dir = directory / "dbt"
    files = {
        directory / "basemodel.yml": None,
        dbt_dir / "dbt_project.yml": _DBT_PROJECT.format(name=_dbt_name(directory)),
        dbt_dir / "packages.yml": _PACKAGES.format(path=_flow(os.fspath(dbt_package_path()))),
        dbt_dir / "models" / "README.md": _MODELS_README.format(table=_flow(table)),
    }
    existing = [os.fspath(path) for path in files if path.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{', '.join(existing)} already exist; pass force=True (`basemodel init --force`) "
            "to overwrite them."
        )
    project, notes = _guess(duckdb, table, directory)  # before writing: a failure leaves nothing
    files[directory / "basemodel.yml"] = _render(project, notes, duckdb, table)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory / "basemodel.yml"
