"""The warehouse side: run the ``basemodel`` dbt package, read its tables, write EMDE codes back.

* :func:`run_dbt` runs a dbt command in-process (``dbtRunner``) and raises :class:`DbtRunError`
  naming the models and tests that failed.
* :func:`read_relation` reads a table or view of a DuckDB database into pandas through Arrow,
  with list columns (histories, baskets) as Python lists.
* :func:`dbt_package_path` is where the dbt package shipped with this library lives, for
  ``packages.yml: - local: <path>`` (also ``basemodel dbt-path``).
* :func:`write_entity_codes` writes a fitted :class:`~sklearn_basemodel.emde.EMDESketcher`'s
  entity codes to a warehouse table, so the package's ``emde_sketch`` macro can build sketches
  in SQL for data larger than one machine.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DbtRunError",
    "dbt_package_path",
    "read_relation",
    "run_dbt",
    "write_entity_codes",
]

# Node statuses that mean "this model/test/seed did not do its job" (dbt's RunStatus and
# TestStatus values); "warn" and "skipped" are reported but are not failures themselves.
_FAILED_STATUSES = frozenset({"error", "fail", "runtime error"})


class DbtRunError(RuntimeError):
    """A dbt command failed.

    The message names every failed node (models, seeds, data and unit tests) with dbt's own
    message, or repeats the error that stopped dbt before it ran any node (a parsing or
    compilation error, a profile that cannot connect).

    Attributes
    ----------
    command : list of str
        The dbt command line, as passed to ``dbtRunner.invoke``.
    failures : list of dict
        One dict per failed node: ``unique_id``, ``name``, ``resource_type``, ``status`` and
        ``message``. Empty when dbt stopped before running nodes.
    result : dbtRunnerResult
        What dbt returned, for further inspection.
    """

    def __init__(self, message, *, command, failures, result):
        super().__init__(message)
        self.command = list(command)
        self.failures = list(failures)
        self.result = result

    @property
    def failed_nodes(self):
        """Unique ids of the failed nodes (``model.basemodel.basemodel_stg_events``, ...)."""
        return [failure["unique_id"] for failure in self.failures]


@contextlib.contextmanager
def _environment(overrides):
    """Temporarily set environment variables (profiles read their settings from there)."""
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update({name: str(value) for name, value in overrides.items()})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _release_duckdb():
    """Close the database dbt-duckdb keeps open in this process after a command.

    dbt-duckdb caches one DuckDB instance per process (a class attribute), which keeps the
    database file locked: opening it again here - even read-only - or from another process
    would fail until the interpreter exits.
    """
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # dbt-duckdb not installed: nothing to release
        return
    lock = getattr(DuckDBConnectionManager, "_LOCK", None)
    with lock if lock is not None else contextlib.nullcontext():
        environment = getattr(DuckDBConnectionManager, "_ENV", None)
        if environment is not None:
            environment.close()
            DuckDBConnectionManager._ENV = None


def _describe_failures(result):
    """The failed nodes of a dbt run result, as dicts."""
    failures = []
    for node_result in getattr(result, "results", None) or []:
        status = str(getattr(node_result.status, "value", node_result.status)).lower()
        if status not in _FAILED_STATUSES:
            continue
        node = node_result.node
        failures.append(
            {
                "unique_id": node.unique_id,
                "name": node.name,
                "resource_type": str(getattr(node.resource_type, "value", node.resource_type)),
                "status": status,
                "message": (node_result.message or "").strip(),
            }
        )
    return failures


def run_dbt(
    args,
    project_dir,
    profiles_dir=None,
    *,
    target=None,
    vars=None,
    target_path=None,
    log_path=None,
    env=None,
    quiet=True,
):
    """Run a dbt command in this process and raise if anything failed.

    Parameters
    ----------
    args : str or sequence of str
        The dbt command and its options, e.g. ``["build", "--select", "basemodel"]`` or
        ``"seed"``.
    project_dir : path-like
        The dbt project (the folder with ``dbt_project.yml``).
    profiles_dir : path-like, default=None
        The folder with ``profiles.yml``; None uses dbt's default (the project folder, then
        ``~/.dbt``).
    target : str, default=None
        The profile target (``--target``); None uses the profile's default.
    vars : mapping, default=None
        Project variables (``--vars``), e.g. ``{"basemodel_split_times": ["2024-03-01"]}``.
    target_path, log_path : path-like, default=None
        Where dbt writes compiled SQL / artifacts and its log; None keeps dbt's defaults
        (``target/`` and ``logs/`` in the project folder). Point them at a temporary folder
        to leave the project untouched.
    env : mapping, default=None
        Environment variables set for the duration of the call (profiles usually read their
        settings from ``env_var()``), restored afterwards.
    quiet : bool, default=True
        Pass ``--quiet``: dbt prints only errors (and the output of ``show``/``ls``).

    Returns
    -------
    result : dbtRunnerResult
        ``result.result`` holds the command's result (per-node results for
        ``build``/``run``/``test``/``seed``).

    Raises
    ------
    DbtRunError
        When dbt reports failure: the message names every failed node and says why.

    Notes
    -----
    dbt cannot run two commands at once in one process; call this from one thread at a time.
    After the command, the DuckDB database dbt-duckdb keeps open in the process is closed, so
    the file can be read (:func:`read_relation`) or written right away.
    Anonymous usage statistics are turned off unless ``DBT_SEND_ANONYMOUS_USAGE_STATS`` is
    set.

    Examples
    --------
    >>> from sklearn_basemodel.warehouse import run_dbt  # doctest: +SKIP
    >>> run_dbt(["build"], "my_dbt_project", target_path="/tmp/dbt-target")  # doctest: +SKIP
    """
    from dbt.cli.main import dbtRunner

    command = [args] if isinstance(args, str) else list(args)
    if not command:
        raise ValueError("args is empty; pass a dbt command such as ['build'] or 'seed'.")
    command += ["--project-dir", os.fspath(project_dir)]
    if profiles_dir is not None:
        command += ["--profiles-dir", os.fspath(profiles_dir)]
    if target is not None:
        command += ["--target", target]
    if vars:
        if not isinstance(vars, Mapping):
            raise TypeError(f"vars must be a mapping of variable names to values, got {vars!r}")
        command += ["--vars", json.dumps(dict(vars))]
    if target_path is not None:
        command += ["--target-path", os.fspath(target_path)]
    if log_path is not None:
        command += ["--log-path", os.fspath(log_path)]
    if quiet:
        command.append("--quiet")

    environment = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    environment = {k: v for k, v in environment.items() if k not in os.environ}
    environment.update(env or {})
    with _environment(environment):
        try:
            result = dbtRunner().invoke(command)
        finally:
            _release_duckdb()

    if result.success:
        return result
    failures = _describe_failures(result.result)
    what = f"dbt {command[0]}"
    if failures:
        lines = [f"{what} failed: {len(failures)} node(s) failed:"]
        lines += [
            f"  {f['resource_type']} {f['unique_id']} ({f['status']}): {f['message']}"
            for f in failures
        ]
        message = "\n".join(lines)
    elif result.exception is not None:
        message = f"{what} failed before running any node: {result.exception}"
    else:
        message = f"{what} failed; see the dbt log for details."
    raise DbtRunError(message, command=command, failures=failures, result=result)


def _quote_relation(relation):
    """``relation`` as a quoted SQL name: 'events', 'schema.events', ('db', 'schema', 'events')."""
    if isinstance(relation, str):
        if not relation.strip():
            raise ValueError("relation is empty; pass a table or view name such as 'main.events'.")
        if '"' in relation:  # already quoted by the caller: use as written
            return relation
        parts = relation.split(".")
    elif isinstance(relation, Sequence) and all(isinstance(p, str) for p in relation):
        parts = list(relation)
    else:
        raise TypeError(
            "relation must be a name such as 'schema.table' or a tuple of name parts, "
            f"got {relation!r}"
        )
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ValueError(
            f"relation {relation!r} is not 'table', 'schema.table' or 'database.schema.table'."
        )
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


@contextlib.contextmanager
def _duckdb_connection(database, read_only):
    """A DuckDB connection: the one given, or one opened (and closed) on a database file."""
    import duckdb

    if isinstance(database, duckdb.DuckDBPyConnection):
        yield database
        return
    if not isinstance(database, (str, os.PathLike)):
        raise TypeError(
            "database must be a DuckDB connection or the path of a DuckDB database file, "
            f"got {type(database).__name__}"
        )
    path = os.fspath(database)
    if path != ":memory:" and read_only and not os.path.exists(path):
        raise FileNotFoundError(f"No DuckDB database at {path!r}.")
    try:
        connection = duckdb.connect(path, read_only=read_only)
    except duckdb.ConnectionException:
        if not read_only:
            raise
        # The file is already open read-write in this process (by dbt-duckdb, say): DuckDB
        # then hands out connections only with the same configuration, i.e. the default one.
        connection = duckdb.connect(path)
    try:
        yield connection
    finally:
        connection.close()


def _python_values(values):
    """A flat Arrow array as a list of Python objects, fast for the usual element types."""
    kind = values.type
    is_string_view = getattr(pa.types, "is_string_view", lambda _: False)  # pyarrow >= 16
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or is_string_view(kind):
        # Keys repeat a lot (products, categories): build each distinct string once.
        encoded = pc.dictionary_encode(values)
        words = np.empty(len(encoded.dictionary) + 1, dtype=object)
        words[:-1] = encoded.dictionary.to_pylist()  # the last slot stays None, for nulls
        indices = pc.fill_null(encoded.indices, len(encoded.dictionary))
        return words[indices.to_numpy()].tolist()
    if values.null_count == 0:
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            return values.to_numpy(zero_copy_only=False).tolist()
        if pa.types.is_timestamp(kind) and kind.tz is None and kind.unit != "ns":
            return values.to_numpy().tolist()  # datetime.datetime, at C speed
    return values.to_pylist()


def _is_list(kind):
    types = pa.types
    return types.is_list(kind) or types.is_large_list(kind) or types.is_fixed_size_list(kind)


def _python_lists(column):
    """A chunked Arrow list column as a list of Python lists (None for a NULL list)."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_fixed_size_list(array.type):  # DuckDB ARRAY columns: same path, with offsets
        array = array.cast(pa.list_(array.type.value_field))
    offsets = array.offsets.to_numpy()
    first, last = int(offsets[0]), int(offsets[-1])
    values = _python_values(array.values.slice(first, last - first))
    bounds = (offsets - first).tolist()
    lists = [values[start:stop] for start, stop in zip(bounds[:-1], bounds[1:])]
    if array.null_count:
        for row in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)):
            lists[row] = None
    return lists


def read_relation(database, relation, *, columns=None):
    """Read a table or view of a DuckDB database as a pandas DataFrame, list columns intact.

    The rows travel through Arrow; list columns (the histories, baskets and targets of the
    ``basemodel`` dbt package) come back as Python lists, ready for ``EMDESketcher`` and
    ``CleoraEmbedder``, other columns as pandas columns.

    Parameters
    ----------
    database : str, path-like or duckdb.DuckDBPyConnection
        A DuckDB database file (opened read-only, then closed) or an open connection.
    relation : str or tuple of str
        ``"table"``, ``"schema.table"``, ``"database.schema.table"`` or a tuple of those
        parts; each part is quoted, so names are case-sensitive. A string that contains
        double quotes is used as written.
    columns : sequence of str, default=None
        The columns to read, in this order; None reads all of them.

    Returns
    -------
    frame : pandas.DataFrame
        One row per row of the relation. A list column holds Python lists (None for a NULL
        list, [] for an empty one); their elements are ``str``, ``int``, ``float``, ``bool``
        or ``datetime.datetime`` (``pandas``-free Python objects; nanosecond or time-zone
        aware timestamps and nested values come as Arrow converts them).

    Raises
    ------
    FileNotFoundError
        When ``database`` is a path with no database file.

    Examples
    --------
    >>> import duckdb
    >>> from sklearn_basemodel.warehouse import read_relation
    >>> con = duckdb.connect()
    >>> _ = con.execute("create table baskets as select 1 as id, ['milk', 'bread'] as items")
    >>> read_relation(con, "baskets")["items"].tolist()
    [['milk', 'bread']]
    """
    name = _quote_relation(relation)
    if columns is None:
        selection = "*"
    else:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise TypeError(f"columns must be a list of column names, got {columns!r}")
        selection = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    with _duckdb_connection(database, read_only=True) as connection:
        table = connection.sql(f"select {selection} from {name}").to_arrow_table()

    is_list = [_is_list(field.type) for field in table.schema]
    plain = table.select([i for i, listed in enumerate(is_list) if not listed])
    frame = plain.to_pandas()
    with _garbage_collection_paused():
        for position, field in enumerate(table.schema):
            if is_list[position]:
                values = _python_lists(table.column(position))
                frame.insert(position, field.name, pd.Series(values, dtype=object))
    return frame


@contextlib.contextmanager
def _garbage_collection_paused():
    """Pause the cyclic garbage collector while building millions of lists.

    Every new list is tracked by the collector, whose full passes over all tracked objects
    otherwise make building a million list cells take seconds instead of a fraction of one.
    Lists of strings and numbers cannot form reference cycles, so nothing is leaked.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def dbt_package_path():
    """Where the ``basemodel`` dbt package shipped with this library is.

    Add it to your own dbt project with ``packages.yml``::

        packages:
          - local: <this path>

    then ``dbt deps``. The command line prints the same path: ``basemodel dbt-path``.

    Returns
    -------
    path : pathlib.Path
        The folder holding the package's ``dbt_project.yml`` (inside the installed wheel, or
        ``dbt_package/`` of a source checkout or editable install).

    Raises
    ------
    FileNotFoundError
        When the package files are missing from the installation.

    Examples
    --------
    >>> from sklearn_basemodel.warehouse import dbt_package_path
    >>> (dbt_package_path() / "dbt_project.yml").is_file()
    True
    """
    here = Path(__file__).resolve().parent
    candidates = [
        here / "dbt_package",  # an installed wheel: package data next to this module
        here.parent / "dbt_package",  # a source checkout or editable install: the repository
    ]
    for candidate in candidates:
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    raise FileNotFoundError(
        "The basemodel dbt package is not installed with sklearn_basemodel (looked in "
        f"{[os.fspath(c) for c in candidates]}); reinstall the library."
    )


def _codes_table(sketcher):
    """A fitted sketcher's codes as an Arrow table (entity_key, partitioning, bucket, position)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(sketcher, ["codes_", "keys_"])
    codes = np.asarray(sketcher.codes_)
    keys = np.asarray(sketcher.keys_)
    if codes.ndim != 2 or codes.shape[0] != len(keys):
        raise ValueError(
            f"sketcher.codes_ has shape {codes.shape}; expected (len(keys_)={len(keys)}, "
            "n_sketches)."
        )
    n_entities, n_sketches = codes.shape
    sketch_dim = int(sketcher.sketch_dim)
    partitioning = np.tile(np.arange(n_sketches, dtype=np.int32), n_entities)
    bucket = codes.astype(np.int32).ravel()
    if bucket.size and (bucket.min() < 0 or bucket.max() >= sketch_dim):
        raise ValueError(f"sketcher.codes_ holds buckets outside [0, sketch_dim={sketch_dim}).")
    if np.issubdtype(keys.dtype, np.integer):
        entity_key = pa.array(np.repeat(keys.astype(np.int64), n_sketches))
    else:
        # Keys are compared as text in SQL; str() of an int key is what SQL's cast gives too.
        as_text = np.array([str(k) for k in keys], dtype=object)
        entity_key = pa.array(np.repeat(as_text, n_sketches), type=pa.string())
    return pa.table(
        {
            "entity_key": entity_key,
            "partitioning": partitioning,
            "bucket": bucket,
            "position": partitioning.astype(np.int64) * sketch_dim + bucket,
        }
    )


def _write_duckdb(connection, name, codes):
    view = "__basemodel_entity_codes"
    connection.register(view, codes)
    try:
        connection.execute(f"create or replace table {name} as select * from {view}")
    finally:
        connection.unregister(view)


def _write_dbapi(connection, name, codes):
    """Write through any DB-API 2 connection: COPY on psycopg2, else batched inserts."""
    key_type = "bigint" if pa.types.is_integer(codes.schema.field("entity_key").type) else "text"
    cursor = connection.cursor()
    try:
        cursor.execute(f"drop table if exists {name}")
        cursor.execute(
            f"create table {name} (entity_key {key_type} not null, partitioning integer not null,"
            " bucket integer not null, position bigint not null)"
        )
        if hasattr(cursor, "copy_expert"):  # psycopg2: one COPY instead of a statement per row
            buffer = io.StringIO()
            codes.to_pandas().to_csv(buffer, index=False, header=False)
            buffer.seek(0)
            cursor.copy_expert(f"copy {name} from stdin with (format csv)", buffer)
        else:
            module = importlib.import_module(type(connection).__module__.split(".")[0])
            style = getattr(module, "paramstyle", "qmark")
            mark = {"qmark": "?", "numeric": ":{}", "named": ":p{}", "format": "%s",
                    "pyformat": "%s"}[style]
            marks = ", ".join(mark.format(i) for i in (1, 2, 3, 4))
            statement = f"insert into {name} values ({marks})"
            columns = codes.to_pydict()
            rows = list(zip(*(columns[c] for c in codes.column_names)))
            if style == "named":
                rows = [{f"p{i}": value for i, value in enumerate(row, 1)} for row in rows]
            for start in range(0, len(rows), 10_000):
                cursor.executemany(statement, rows[start:start + 10_000])
        connection.commit()
    finally:
        cursor.close()


def write_entity_codes(sketcher, connection, table="basemodel_entity_codes"):
    """Write a fitted EMDESketcher's entity codes to a warehouse table (replacing it).

    The table has one row per entity and partitioning: ``entity_key``, ``partitioning``
    (``j`` in ``[0, n_sketches)``), ``bucket`` (``codes_[i, j]``, in ``[0, sketch_dim)``) and
    ``position = partitioning * sketch_dim + bucket``, the column of the entity's 1 in
    ``EMDESketcher.transform``. The dbt package's ``basemodel.emde_sketch`` macro (and the
    ``basemodel_history_sketches`` model, with the var ``basemodel_sketch_codes_identifier``
    set to this table) then sums item weights per position in SQL, which equals
    ``EMDESketcher(normalize=None).transform`` on the same rows.

    Parameters
    ----------
    sketcher : EMDESketcher
        A fitted sketcher (``keys_``, ``codes_``, ``sketch_dim``).
    connection : duckdb.DuckDBPyConnection, path-like or DB-API 2 connection
        Where to write: an open DuckDB connection, the path of a DuckDB database file, or any
        DB-API 2 connection (psycopg2 for PostgreSQL is written with COPY; others with
        batched ``executemany``; the transaction is committed).
    table : str or tuple of str, default="basemodel_entity_codes"
        The table, as ``"table"`` or ``"schema.table"``; created or replaced.

    Returns
    -------
    n_rows : int
        Rows written (``n_entities * n_sketches``).

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the sketcher is not fitted.

    Notes
    -----
    Integer keys are written as ``bigint``, other keys as text (``str(key)``); the macro
    compares keys as text so either matches a text item column.
    """
    import duckdb

    codes = _codes_table(sketcher)
    name = _quote_relation(table)
    if isinstance(connection, (duckdb.DuckDBPyConnection, str, os.PathLike)):
        with _duckdb_connection(connection, read_only=False) as duck:
            _write_duckdb(duck, name, codes)
    elif hasattr(connection, "cursor") and hasattr(connection, "commit"):
        _write_dbapi(connection, name, codes)
    else:
        raise TypeError(
            "connection must be a DuckDB connection, the path of a DuckDB database file or a "
            f"DB-API 2 connection, got {type(connection).__name__}"
        )
    return codes.num_rows
