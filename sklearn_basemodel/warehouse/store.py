"""The user's warehouse, read and written back: one :class:`Warehouse` for DuckDB and PostgreSQL.

The configuration-driven workflow names a connection (a DuckDB file, or a dbt profile) and
then only talks to the warehouse through a :class:`Warehouse`: it reads the tables the dbt
package built (:meth:`Warehouse.read`, :meth:`Warehouse.count`, :meth:`Warehouse.columns`)
and writes its results back (:meth:`Warehouse.write`), replacing the rows of one as-of date
so that a re-run gives the same table, not a second copy.

Identifiers are quoted by the driver on PostgreSQL (``psycopg2.sql.Identifier``) and by
:func:`~sklearn_basemodel.warehouse.connections.quote_relation` on DuckDB; values are always
bound as parameters. No user string becomes SQL as written.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .connections import (
    duckdb_connection,
    quote_identifier,
    quote_relation,
    split_relation,
)
from .tables import arrow_frame

__all__ = ["Warehouse", "read_dbt_profile"]

# Relation kinds PostgreSQL reads from: tables, views, materialized views, partitioned and
# foreign tables (not indexes, sequences or composite types).
_PG_RELKINDS = ("r", "v", "m", "p", "f")
# The name under which a frame being written is visible to DuckDB's INSERT ... SELECT.
_FRAME_VIEW = "__basemodel_store_frame"
# Rows per COPY call: bounds the text buffer built in memory for one call.
_COPY_ROWS = 100_000
_SUPPORTED_TYPES = ("duckdb", "postgres")


# --------------------------------------------------------------------------- names and values
def _name_parts(relation):
    """The name parts of ``relation`` (a name such as ``'"my schema".events'``, or a tuple)."""
    quote_relation(relation)  # the one validation of relation names (raises on bad names)
    return split_relation(relation) if isinstance(relation, str) else list(relation)


def _relation_parts(relation, schema):
    """``relation`` as a list of name parts, a bare table name qualified with ``schema``."""
    parts = _name_parts(relation)
    return [schema, *parts] if len(parts) == 1 else parts


def _python_value(value):
    """A bound parameter as a plain Python value; None for every kind of missing value."""
    if isinstance(value, (list, tuple, set, dict, np.ndarray)):
        raise TypeError(f"where values are compared with '=': pass a scalar, got {value!r}")
    if pd.isna(value):
        return None
    if isinstance(value, datetime.datetime):
        value = pd.Timestamp(value)
        if value.tzinfo is not None:  # timestamps are stored as naive UTC
            value = value.tz_convert("UTC").tz_localize(None)
        return value.to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _naive_utc(frame):
    """Time-zone aware columns converted to UTC and made naive, as timestamps are stored."""
    for name in frame.columns[[isinstance(t, pd.DatetimeTZDtype) for t in frame.dtypes]]:
        frame[name] = frame[name].dt.tz_convert("UTC").dt.tz_localize(None)
    return frame


# --------------------------------------------------------------------------- frames to columns
def _is_list(value):
    return isinstance(value, (list, tuple, np.ndarray))


def _missing(value):
    return value is None or (not _is_list(value) and pd.isna(value))


_ARROW_TYPES = {
    "bigint": pa.int64(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
}


def _list_column(cells):
    """A column of lists (None when missing) as ``(SQL array type, Arrow list array)``.

    Arrow reads the lists in C and finds one element type; lists that mix types (or hold
    values other than numbers, bools and strings) are written as text arrays of ``str(e)``.
    """
    types = pa.types
    try:
        array = pa.array(cells)
        element = array.type.value_type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        element = None
    if element is not None and types.is_boolean(element):
        sql_type = "boolean"
    elif element is not None and types.is_integer(element):
        sql_type = "bigint"
    elif element is not None and types.is_floating(element):
        sql_type = "double precision"
    elif element is not None and (types.is_string(element) or types.is_null(element)):
        sql_type = "text"
    else:
        cells = [None if cell is None else [None if e is None else str(e) for e in cell]
                 for cell in cells]  # fmt: skip
        array, sql_type = pa.array(cells, type=pa.list_(pa.string())), "text"
    return sql_type + "[]", array.cast(pa.list_(_ARROW_TYPES[sql_type]))


def _column(series):
    """``(SQL type, values)`` of a frame column, the values as they are written: numbers and
    bools unchanged, timestamps as naive UTC, text as ``str`` or None, lists as Arrow."""
    dtype = series.dtype
    series = series.reset_index(drop=True)
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean", series
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint", series
    if pd.api.types.is_float_dtype(dtype):
        return "double precision", series
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "timestamp", _naive_utc(series.to_frame())[series.name]
    if isinstance(dtype, pd.StringDtype):
        return "text", series.astype(object).where(series.notna(), None)
    if not (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_object_dtype(dtype)):
        raise TypeError(
            f"column {series.name!r} has dtype {dtype}, which has no warehouse type here; "
            "convert it to int, float, bool, datetime64 or str first."
        )
    cells = [None if _missing(v) else v for v in series.tolist()]
    present = [v for v in cells if v is not None]
    if present and all(_is_list(v) for v in present):
        return _list_column(cells)
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return "boolean", pd.Series([None if v is None else bool(v) for v in cells], dtype=object)
    return "text", pd.Series([None if v is None else str(v) for v in cells], dtype=object)


def _frame_columns(frame):
    """``[(name, SQL type, values)]`` for every column of ``frame``, in order."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    names = list(frame.columns)
    if not names:
        raise ValueError("frame has no columns; a table needs at least one")
    if not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"column names must be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"column names repeat: {sorted({n for n in names if names.count(n) > 1})}")
    return [(name, *_column(frame.iloc[:, i])) for i, name in enumerate(names)]


def _arrow_table(columns):
    """The columns as an Arrow table (DuckDB reads it as a view without copying)."""
    arrays = {}
    for name, sql_type, values in columns:
        if isinstance(values, pa.Array):
            arrays[name] = values
        elif sql_type == "timestamp":
            arrays[name] = pa.array(values, from_pandas=True)
        else:
            arrays[name] = pa.array(values, type=_ARROW_TYPES[sql_type], from_pandas=True)
    return pa.table(arrays)


# --------------------------------------------------------------------------- COPY text format
def _copy_escape(text):
    """Escape a Series of str for PostgreSQL's COPY text format (backslash, tab, newlines)."""
    for raw, escaped in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        text = text.str.replace(raw, escaped, regex=False)
    return text


def _array_literals(array):
    """Arrow list cells as PostgreSQL array literals (``{1,2}``, ``{"a",NULL}``), None for a
    NULL list; built by Arrow's string kernels, not element by element in Python."""
    # Offsets from 0 over just this slice's elements: Arrow cannot rebuild a sliced list.
    first, last = array.offsets[0].as_py(), array.offsets[-1].as_py()
    offsets = pc.subtract(array.offsets, pa.scalar(first, array.offsets.type))
    values = array.values.slice(first, last - first)
    if pa.types.is_string(values.type):
        for raw, escaped in (("\\", "\\\\"), ('"', '\\"')):
            values = pc.replace_substring(values, raw, escaped)
        values = pc.binary_join_element_wise('"', values, '"', "")
    else:  # numbers in their shortest round-trip form; booleans as true / false
        values = pc.cast(values, pa.string())
    cells = pa.ListArray.from_arrays(offsets, pc.fill_null(values, "NULL"), mask=array.is_null())
    return pc.binary_join_element_wise("{", pc.binary_join(cells, ","), "}", "").to_pylist()


def _copy_field(values, sql_type):
    """A column as COPY text fields: ``\\N`` for NULL, else the value PostgreSQL parses back."""
    if isinstance(values, pa.Array):  # lists
        values = pd.Series(_array_literals(values), dtype=object)
    missing = values.isna().to_numpy(bool)
    present = values[~missing]
    if sql_type == "bigint":
        text = present.astype("int64").astype(str)
    elif sql_type == "double precision":
        text = pd.Series([repr(float(v)) for v in present], index=present.index, dtype=object)
        text = text.replace({"inf": "Infinity", "-inf": "-Infinity"})
    elif sql_type == "boolean":
        text = present.map(lambda v: "t" if v else "f")
    elif sql_type == "timestamp":
        text = present.dt.strftime("%Y-%m-%d %H:%M:%S.%f")
    else:  # text, and array literals
        text = present
    fields = pd.Series("\\N", index=values.index, dtype=object)
    fields[~missing] = _copy_escape(text.astype(object).astype(str)) if len(text) else text
    return fields.tolist()


def _copy_buffer(columns, start, stop):
    """Rows ``start:stop`` of the columns as a COPY text buffer (tab-separated, one per line)."""
    fields = [
        _copy_field(values.slice(start, stop - start) if isinstance(values, pa.Array)
                    else values.iloc[start:stop], sql_type)
        for _, sql_type, values in columns
    ]  # fmt: skip
    buffer = io.StringIO()
    for row in zip(*fields):
        buffer.write("\t".join(row))
        buffer.write("\n")
    buffer.seek(0)
    return buffer


# --------------------------------------------------------------------------- backends
class _DuckDB:
    """DuckDB: a connection per call on a database file, so the file is free between calls
    (for dbt, or another process); an in-memory database or a given connection stays open."""

    kind = "duckdb"
    mark = "?"
    columns_sql = (
        "select column_name, data_type from information_schema.columns where table_schema = ?"
        " and table_name = ? and table_catalog = coalesce(?, current_database())"
        " order by ordinal_position"
    )
    relations_sql = (
        "select table_name from information_schema.tables where table_schema = ?"
        " and table_catalog = coalesce(?, current_database()) order by table_name"
    )
    schema_sql = (
        "select count(*) from information_schema.schemata where schema_name = ?"
        " and catalog_name = coalesce(?, current_database())"
    )

    def __init__(self, database):
        import duckdb

        self._owned = None
        if isinstance(database, (str, os.PathLike)):
            database = os.fspath(database)
            if database == ":memory:":  # a connection per call would see a new, empty database
                database = self._owned = duckdb.connect()
        elif not isinstance(database, duckdb.DuckDBPyConnection):
            raise TypeError(
                "path must be the path of a DuckDB database file or a DuckDB connection, "
                f"got {type(database).__name__}"
            )
        self.database = database

    @contextlib.contextmanager
    def session(self, *, write, rows=None):
        """A connection for one call, in a transaction when writing; ``rows`` (the columns of
        :func:`_frame_columns`) are registered as a view before the transaction starts, so
        that removing the view still works after a failed insert aborted the transaction."""
        import duckdb

        with contextlib.ExitStack() as stack:
            try:
                connection = stack.enter_context(duckdb_connection(self.database, not write))
            except duckdb.ConnectionException:
                # dbt-duckdb, run in this process without run_dbt (which releases it), holds
                # the file with its own configuration: close its instance and open ours.
                # (imported here: _compat imports scikit-learn, which nothing else needs)
                from .._compat import release_dbt_duckdb

                if not release_dbt_duckdb():
                    raise
                connection = stack.enter_context(duckdb_connection(self.database, not write))
            if not write:
                yield connection
                return
            if rows is not None:
                connection.register(_FRAME_VIEW, _arrow_table(rows))
                stack.callback(connection.unregister, _FRAME_VIEW)
            connection.begin()
            try:
                yield connection
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def quote(self, parts):
        return quote_relation(tuple(parts))

    def rows(self, connection, statement, params):
        return connection.execute(statement, params).fetchall()

    def execute(self, connection, statement, params):
        connection.execute(statement, params)

    def frame(self, connection, statement, params):
        return arrow_frame(connection.sql(statement, params=params).to_arrow_table())

    def insert(self, connection, parts, columns):
        # The rows are the view the session registered (``session(rows=columns)``).
        names = ", ".join(quote_identifier(name) for name, _, _ in columns)
        connection.execute(
            f"insert into {self.quote(parts)} ({names}) select {names}"
            f" from {quote_identifier(_FRAME_VIEW)}"
        )

    def close(self):
        if self._owned is not None:
            self._owned.close()
            self._owned = None


class _Postgres:
    """PostgreSQL through one psycopg2 connection; each call is one transaction."""

    kind = "postgres"
    mark = "%s"
    _catalog = (
        " from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        f" where c.relkind in {_PG_RELKINDS!r} and n.nspname = %s"
        " and coalesce(%s, current_database()) = current_database()"
    )
    columns_sql = (
        "select a.attname, format_type(a.atttypid, a.atttypmod)"
        " from pg_attribute a join pg_class c on c.oid = a.attrelid"
        " join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = %s and c.relname = %s"
        f" and c.relkind in {_PG_RELKINDS!r}"
        " and coalesce(%s, current_database()) = current_database()"
        " and a.attnum > 0 and not a.attisdropped order by a.attnum"
    )
    relations_sql = "select c.relname" + _catalog + " order by c.relname"
    schema_sql = (
        "select count(*) from pg_namespace where nspname = %s"
        " and coalesce(%s, current_database()) = current_database()"
    )
    # psycopg2 type codes of timestamp and timestamptz: read as datetime64, naive UTC.
    _TIMESTAMP, _TIMESTAMPTZ = 1114, 1184

    def __init__(self, connection):
        self.connection = connection

    @contextlib.contextmanager
    def session(self, *, write, rows=None):
        with self.connection:  # psycopg2: commit on success, roll back on an error
            yield self.connection

    def quote(self, parts, *, bound=True):
        quoted = _pg_identifier(parts).as_string(self.connection)
        # psycopg2 substitutes parameters with '%': a '%' in a name must then be doubled.
        return quoted.replace("%", "%%") if bound else quoted

    def rows(self, connection, statement, params):
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall()

    def execute(self, connection, statement, params):
        with connection.cursor() as cursor:
            cursor.execute(statement, params)

    def frame(self, connection, statement, params):
        with connection.cursor() as cursor:
            cursor.execute(statement, params)
            names = [column.name for column in cursor.description]
            codes = [column.type_code for column in cursor.description]
            frame = pd.DataFrame.from_records(cursor.fetchall(), columns=names)
        for position, code in enumerate(codes):
            if code in (self._TIMESTAMP, self._TIMESTAMPTZ):
                column = frame.iloc[:, position]
                frame.isetitem(position, pd.to_datetime(column, utc=code == self._TIMESTAMPTZ))
        return frame

    def insert(self, connection, parts, columns):
        names = ", ".join(self.quote([name], bound=False) for name, _, _ in columns)
        statement = f"copy {self.quote(parts, bound=False)} ({names}) from stdin"
        n_rows = len(columns[0][2]) if columns else 0
        with connection.cursor() as cursor:
            for start in range(0, n_rows, _COPY_ROWS):
                cursor.copy_expert(statement, _copy_buffer(columns, start, start + _COPY_ROWS))

    def close(self):
        self.connection.close()


def _pg_identifier(parts):
    from psycopg2 import sql

    return sql.Identifier(*parts)


# --------------------------------------------------------------------------- dbt profiles
def _render_profile(value, render):
    """Every string of a profile rendered as a template (``{{ env_var('X') }}``), like dbt."""
    if isinstance(value, str):
        return render(value)
    if isinstance(value, Mapping):
        return {key: _render_profile(item, render) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_profile(item, render) for item in value]
    return value


def _env_var(name, default=None):
    if name in os.environ:
        return os.environ[name]
    if default is None:
        raise ValueError(f"environment variable {name!r} is required by the profile but not set")
    return default


def _template_renderer():
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    environment = SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    environment.globals["env_var"] = _env_var
    # dbt's type filters: the value is rendered as text and typed below, key by key.
    for name in ("as_text", "as_number", "as_bool", "as_native"):
        environment.filters[name] = lambda value: value
    return lambda text: environment.from_string(text).render()


def read_dbt_profile(profile, *, target=None, profiles_dir=None):
    """The rendered settings of one target of a dbt profile.

    Parameters
    ----------
    profile : str
        The profile's name in ``profiles.yml``.
    target : str, default=None
        The output to use; None uses the profile's own ``target``.
    profiles_dir : path-like, default=None
        The folder with ``profiles.yml``; None uses ``$DBT_PROFILES_DIR``, else ``~/.dbt``.

    Returns
    -------
    settings : dict
        The target's settings, every string rendered (``{{ env_var('NAME', 'default') }}``).

    Raises
    ------
    FileNotFoundError
        When there is no ``profiles.yml`` in the folder.
    LookupError
        When the profile or the target does not exist; the message lists those that do.
    """
    import yaml

    folder = profiles_dir or os.environ.get("DBT_PROFILES_DIR") or Path.home() / ".dbt"
    path = Path(folder).expanduser() / "profiles.yml"
    if not path.is_file():
        raise FileNotFoundError(f"No profiles.yml in {str(path.parent)!r} (for profile {profile!r}).")
    profiles = yaml.safe_load(path.read_text()) or {}
    names = sorted(k for k, v in profiles.items() if k != "config" and isinstance(v, Mapping))
    if profile not in names:
        raise LookupError(f"profile {profile!r} is not in {str(path)!r}; its profiles: {names}")
    render = _template_renderer()
    outputs = profiles[profile].get("outputs") or {}
    if target is None:  # as dbt: the profile's own target, else one named "default"
        target = render(str(profiles[profile].get("target", "default")))
    if target not in outputs:
        raise LookupError(
            f"target {target!r} is not in profile {profile!r} of {str(path)!r}; its targets: "
            f"{sorted(outputs)}"
        )
    return _render_profile(dict(outputs[target]), render)


def _postgres_connection(settings, where):
    import psycopg2

    def setting(*keys, default=None):
        return next((settings[k] for k in keys if settings.get(k) is not None), default)

    options = {
        "host": setting("host", default="localhost"),
        "port": int(setting("port", default=5432)),
        "user": setting("user"),
        "password": setting("password", "pass"),
        "dbname": setting("dbname", "database"),
    }
    for key in ("connect_timeout", "sslmode", "sslcert", "sslkey", "sslrootcert"):
        if settings.get(key) is not None:
            options[key] = settings[key]
    missing = [key for key in ("user", "dbname") if options[key] is None]
    if missing:
        raise ValueError(f"{where} sets no {' or '.join(missing)}")
    return psycopg2.connect(**{k: v for k, v in options.items() if v is not None})


# --------------------------------------------------------------------------- the warehouse
class Warehouse:
    """An open connection to the user's warehouse, and the schema where the dbt package's
    models land.

    Open one with :meth:`duckdb` (a DuckDB file) or :meth:`from_dbt_profile` (a target of a
    dbt profile: DuckDB or PostgreSQL), use it as a context manager, and read and write
    pandas DataFrames. List columns (histories, baskets) come back as Python lists and
    timestamps as naive UTC ``datetime64``, on both warehouses.

    Parameters
    ----------
    backend : object
        The connection; use the class methods rather than this constructor.
    schema : str
        Where the dbt run's models land; bare table names are read from and written here.

    Attributes
    ----------
    schema : str
        The schema of bare table names.
    kind : str
        ``"duckdb"`` or ``"postgres"``.

    See Also
    --------
    sklearn_basemodel.warehouse.read_relation : read one DuckDB relation, without a filter.
    sklearn_basemodel.warehouse.run_dbt : run the dbt package in this process.

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_basemodel.warehouse import Warehouse
    >>> scores = pd.DataFrame({"customer_id": ["c1", "c2"], "as_of": pd.to_datetime(
    ...     ["2024-03-01"] * 2), "items": [["milk", "bread"], ["tea"]]})
    >>> with Warehouse.duckdb(":memory:") as warehouse:
    ...     warehouse.write("scores", scores, schema="output",
    ...                     replace_where={"as_of": "2024-03-01"})
    ...     warehouse.write("scores", scores, schema="output",
    ...                     replace_where={"as_of": "2024-03-01"})  # a re-run: same rows
    ...     print(warehouse.count("output.scores"))
    ...     print(warehouse.read("output.scores", ["items"], where={"customer_id": "c1"}))
    2
    2
    2
            items
    0  [milk, bread]
    """

    def __init__(self, backend, schema):
        if not isinstance(schema, str) or not schema:
            raise ValueError(f"schema must be a non-empty string, got {schema!r}")
        self._backend = backend
        self.schema = schema

    @property
    def kind(self):
        return self._backend.kind

    # ----------------------------------------------------------------------- opening
    @classmethod
    def duckdb(cls, path, *, schema="main"):
        """A DuckDB database: a file (opened for each call, then closed, so dbt or another
        process may use it in between), ``":memory:"``, or an open connection.

        Parameters
        ----------
        path : str, path-like or duckdb.DuckDBPyConnection
        schema : str, default="main"

        Returns
        -------
        warehouse : Warehouse
        """
        return cls(_DuckDB(path), schema)

    @classmethod
    def from_dbt_profile(cls, profile, *, target=None, profiles_dir=None):
        """The warehouse of a dbt profile's target (``type: postgres`` or ``type: duckdb``).

        Parameters
        ----------
        profile, target, profiles_dir
            Which profile and target, and where ``profiles.yml`` is: as in
            :func:`read_dbt_profile`.

        Returns
        -------
        warehouse : Warehouse
            Its :attr:`schema` is the target's ``schema`` (DuckDB: ``main`` unless set).

        Raises
        ------
        FileNotFoundError, LookupError
            See :func:`read_dbt_profile`.
        ValueError
            When the target's type is neither ``duckdb`` nor ``postgres``, or a PostgreSQL
            target sets no ``user``, ``dbname`` or ``schema``.
        """
        settings = read_dbt_profile(profile, target=target, profiles_dir=profiles_dir)
        where = f"profile {profile!r} (target {target or 'default'!r})"
        kind = settings.get("type")
        if kind == "duckdb":
            return cls.duckdb(settings.get("path", ":memory:"), schema=settings.get("schema") or "main")
        if kind == "postgres":
            if not settings.get("schema"):
                raise ValueError(f"{where} sets no schema")
            return cls(_Postgres(_postgres_connection(settings, where)), settings["schema"])
        raise ValueError(
            f"{where} has type {kind!r}; a Warehouse opens the types {list(_SUPPORTED_TYPES)} "
            "(others: run dbt, then export the tables to one of them)"
        )

    def close(self):
        """Close the connection (a DuckDB connection passed in by the caller stays open)."""
        self._backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"Warehouse(kind={self.kind!r}, schema={self.schema!r})"

    # ----------------------------------------------------------------------- reading
    def columns(self, relation):
        """The columns of a table or view, in order.

        Parameters
        ----------
        relation : str or tuple of str
            ``"table"`` (in :attr:`schema`), ``"schema.table"`` or a tuple of name parts.

        Returns
        -------
        columns : list of (str, str)
            ``(name, type)`` pairs, the type as the warehouse names it.

        Raises
        ------
        LookupError
            When the relation does not exist; the message lists the relations of its schema.
        """
        with self._backend.session(write=False) as connection:
            return self._columns(connection, _relation_parts(relation, self.schema))

    def read(self, relation, columns=None, *, where=None, between=None):
        """Rows of a table or view as a DataFrame.

        Parameters
        ----------
        relation : str or tuple of str
            ``"table"`` (in :attr:`schema`), ``"schema.table"`` or a tuple of name parts.
        columns : sequence of str, default=None
            The columns to read, in this order; None reads all.
        where : mapping, default=None
            ``column -> value``: only rows equal on every column (None matches NULL).
        between : tuple, default=None
            ``(column, low, high)``: only rows with ``low < column <= high`` (the events after
            one cut-off up to the next), bound as parameters like ``where``.

        Returns
        -------
        frame : pandas.DataFrame
            List columns as Python lists, timestamps as naive UTC ``datetime64``.
        """
        parts = _relation_parts(relation, self.schema)
        with self._backend.session(write=False) as connection:
            available = [name for name, _ in self._columns(connection, parts)]
            if columns is None:
                selection = available
            else:
                if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
                    raise TypeError(f"columns must be a list of column names, got {columns!r}")
                selection = list(columns)
                _check_known(selection, available, parts)
            condition, params = self._condition(where, available, parts, between)
            names = ", ".join(self._backend.quote([name]) for name in selection)
            statement = f"select {names} from {self._backend.quote(parts)}{condition}"
            frame = self._backend.frame(connection, statement, params)
        return _naive_utc(frame)

    def count(self, relation, *, where=None):
        """The number of rows of a table or view (equal to ``where``, as in :meth:`read`)."""
        parts = _relation_parts(relation, self.schema)
        with self._backend.session(write=False) as connection:
            available = [name for name, _ in self._columns(connection, parts)]
            condition, params = self._condition(where, available, parts)
            statement = f"select count(*) from {self._backend.quote(parts)}{condition}"
            return int(self._backend.rows(connection, statement, params)[0][0])

    # ----------------------------------------------------------------------- writing
    def write(self, table, frame, *, schema=None, replace_where=None):
        """Insert the rows of a DataFrame into a table, first deleting the rows it replaces.

        The schema and the table are created when missing (types from the frame's dtypes:
        int -> bigint, float -> double precision, bool -> boolean, datetime -> timestamp
        (time zones converted to UTC), str and other objects -> text, lists -> arrays of
        those). Everything happens in one transaction: a failure leaves the table as it was.

        Parameters
        ----------
        table : str or tuple of str
            The table: a bare name (in ``schema``) or ``"schema.table"``.
        frame : pandas.DataFrame
            The rows; its columns must be the table's columns when the table exists.
        schema : str, default=None
            The schema of a bare table name; None uses :attr:`schema`.
        replace_where : mapping, default=None
            ``column -> value``: the rows deleted first (say, the as-of date of a run), so
            that running again replaces them instead of adding a second copy.

        Returns
        -------
        n_rows : int
            Rows inserted.

        Raises
        ------
        ValueError
            When the table exists with other columns than the frame.
        """
        if schema is not None and len(_name_parts(table)) > 1:
            raise ValueError(f"table {table!r} names a schema; pass a bare name with schema=")
        parts = _relation_parts(table, self.schema if schema is None else schema)
        columns = _frame_columns(frame)
        with self._backend.session(write=True, rows=columns) as connection:
            existing = self._columns(connection, parts, missing_ok=True)
            if existing is None:
                self._create(connection, parts, columns)
                existing = [(name, sql_type) for name, sql_type, _ in columns]
            available = [name for name, _ in existing]
            if sorted(available) != sorted(name for name, _, _ in columns):
                raise ValueError(
                    f"table {'.'.join(parts)!r} has the columns {available}, the frame "
                    f"{list(frame.columns)}; write the same columns or to another table"
                )
            if replace_where:
                condition, params = self._condition(replace_where, available, parts)
                statement = f"delete from {self._backend.quote(parts)}{condition}"
                self._backend.execute(connection, statement, params)
            if len(frame):
                self._backend.insert(connection, parts, columns)
        return len(frame)

    # ----------------------------------------------------------------------- helpers
    def _scope(self, parts):
        """``(schema, catalog or None)`` bound to the catalog queries."""
        return parts[-2], (parts[0] if len(parts) == 3 else None)

    def _columns(self, connection, parts, *, missing_ok=False):
        schema, catalog = self._scope(parts)
        backend = self._backend
        found = backend.rows(connection, backend.columns_sql, [schema, parts[-1], catalog])
        if found:
            return [(str(name), str(kind)) for name, kind in found]
        if missing_ok:
            return None
        relations = [row[0] for row in backend.rows(connection, backend.relations_sql,
                                                    [schema, catalog])]  # fmt: skip
        listing = f"its relations: {relations}" if relations else "it has no tables or views"
        raise LookupError(
            f"relation {'.'.join(parts)!r} does not exist in the {self.kind} warehouse; "
            f"schema {schema!r}: {listing}"
        )

    def _condition(self, where, available, parts, between=None):
        """`` where a = ? and b is null`` and its parameters, from ``column -> value``; and
        ``c > ? and c <= ?`` from ``between = (c, low, high)``."""
        if where is None and between is None:
            return "", []
        where = {} if where is None else where
        if not isinstance(where, Mapping) or not all(isinstance(k, str) for k in where):
            raise TypeError(f"where must be a mapping of column names to values, got {where!r}")
        _check_known(list(where), available, parts)
        tests, params = [], []
        if between is not None:
            if not isinstance(between, tuple) or len(between) != 3 or not isinstance(between[0], str):
                raise TypeError(f"between must be (column, low, high), got {between!r}")
            column, low, high = between
            _check_known([column], available, parts)
            name, mark = self._backend.quote([column]), self._backend.mark
            tests += [f"{name} > {mark}", f"{name} <= {mark}"]
            params += [_python_value(low), _python_value(high)]
        for column, value in where.items():
            value = _python_value(value)
            name = self._backend.quote([column])
            if value is None:
                tests.append(f"{name} is null")
            else:
                tests.append(f"{name} = {self._backend.mark}")
                params.append(value)
        return (" where " + " and ".join(tests) if tests else ""), params

    def _create(self, connection, parts, columns):
        schema, catalog = self._scope(parts)
        backend = self._backend
        if not backend.rows(connection, backend.schema_sql, [schema, catalog])[0][0]:
            backend.execute(connection, f"create schema {backend.quote(parts[:-1])}", [])
        definitions = ", ".join(f"{backend.quote([name])} {sql_type}"
                                for name, sql_type, _ in columns)  # fmt: skip
        backend.execute(connection, f"create table {backend.quote(parts)} ({definitions})", [])


def _check_known(names, available, parts):
    unknown = [name for name in names if name not in available]
    if unknown:
        raise LookupError(
            f"relation {'.'.join(parts)!r} has no column {unknown[0]!r}; its columns: {available}"
        )
