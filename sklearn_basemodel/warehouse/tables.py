"""Warehouse tables in and out: read relations, turn histories and SQL sketches into model
inputs, write entity codes back.

* :func:`read_relation` reads a table or view of a DuckDB database into pandas through Arrow,
  with list columns (histories, baskets) as Python lists.
* :func:`history_rows` turns the dbt package's parallel ``<col>_items`` / ``<col>_weights``
  lists (decayed in the warehouse as ``exp(-rate * days)``) into the mappings
  ``item -> weight`` that :class:`~sklearn_basemodel.EMDESketcher` reads;
  :func:`read_histories` reads the history table that way.
* :func:`sketch_matrix` turns the sketches the package builds in SQL
  (``basemodel_history_sketches``: row columns, ``position``, ``value``) into the matrix
  ``EMDESketcher.transform`` returns for the same rows.
* :func:`write_entity_codes` writes a fitted sketcher's entity codes to a warehouse table, the
  input of the package's ``emde_sketch`` macro.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..decay import weighted_rows
from .connections import (
    duckdb_connection,
    is_duckdb_target,
    quote_identifier,
    quote_relation,
)

__all__ = [
    "history_rows",
    "python_lists",
    "read_histories",
    "read_relation",
    "sketch_matrix",
    "write_entity_codes",
]


# --------------------------------------------------------------------------- reading
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


def python_lists(column):
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
    name = quote_relation(relation)
    if columns is None:
        selection = "*"
    else:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise TypeError(f"columns must be a list of column names, got {columns!r}")
        selection = ", ".join(quote_identifier(c) for c in columns)
    with duckdb_connection(database, read_only=True) as connection:
        table = connection.sql(f"select {selection} from {name}").to_arrow_table()
    return arrow_frame(table)


def arrow_frame(table):
    """An Arrow table as pandas, list columns as Python lists (None for a NULL list)."""
    is_list = [_is_list(field.type) for field in table.schema]
    plain = table.select([i for i, listed in enumerate(is_list) if not listed])
    frame = plain.to_pandas()
    with _garbage_collection_paused():
        for position, field in enumerate(table.schema):
            if is_list[position]:
                values = python_lists(table.column(position))
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

# --------------------------------------------------------------------------- histories
def history_rows(frame, names):
    """Replace the package's parallel ``<name>_items`` / ``<name>_weights`` lists by mappings.

    Parameters
    ----------
    frame : DataFrame
        Rows of the history table (``basemodel_entity_history``), with the list columns of
        every item column in ``names``.
    names : sequence of str
        Item column names of the package (``basemodel_item_columns``), e.g. ``["product"]``.

    Returns
    -------
    frame : DataFrame
        A copy in which ``<name>_history`` holds one mapping ``item -> summed weight`` per row
        (:func:`sklearn_basemodel.decay.weighted_rows`), in place of the two lists.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"product_items": [["a", "b", "a"]],
    ...                       "product_weights": [[0.5, 1.0, 0.25]]})
    >>> history_rows(frame, ["product"])["product_history"].tolist()
    [{'a': 0.75, 'b': 1.0}]
    """
    frame = frame.copy()
    for name in names:
        items, weights = f"{name}_items", f"{name}_weights"
        frame[f"{name}_history"] = weighted_rows(frame[items], frame[weights])
        frame = frame.drop(columns=[items, weights])
    return frame


def read_histories(database, names, *, columns=(), relation="basemodel_entity_history"):
    """Read the package's history table with each item history as a mapping (see
    :func:`history_rows`).

    Parameters
    ----------
    database : str, path-like or duckdb.DuckDBPyConnection
    names : sequence of str
        Item column names, e.g. ``["product", "category"]``.
    columns : sequence of str, default=()
        Other columns to read (``split_id``, ``split_at``, ``entity_id``, RFM columns ...).
    relation : str or tuple of str, default="basemodel_entity_history"

    Returns
    -------
    frame : DataFrame
        ``columns`` then one ``<name>_history`` column per name.
    """
    lists = [f"{name}_{part}" for name in names for part in ("items", "weights")]
    frame = read_relation(database, relation, columns=[*columns, *lists])
    return history_rows(frame, names)


# --------------------------------------------------------------------------- sketches
def sketch_matrix(sketches, rows, codebook, *, on=("split_id", "entity_id"), norm=None):
    """The SQL sketches of ``basemodel_history_sketches`` as a CSR matrix aligned with ``rows``.

    Parameters
    ----------
    sketches : DataFrame
        One row per (row, position): the ``on`` columns, ``position`` and ``value``
        (:func:`read_relation` of the model).
    rows : DataFrame
        The rows to return, in this order (e.g. the history table); holds the ``on`` columns.
        Rows without a sketch row get a zero sketch; sketch rows matching no row are refused.
    codebook : SketchCodebook
        The layout of the sketcher whose codes were written (``sketcher.codebook_``).
    on : sequence of str, default=("split_id", "entity_id")
    norm : str, default=None
        Normalise per block as the sketcher would (``codebook.normalize``); None keeps the
        summed weights (``EMDESketcher(normalize=None)``).

    Returns
    -------
    X : scipy.sparse.csr_matrix of shape (len(rows), codebook.width)
    """
    on = list(on)
    index = pd.MultiIndex.from_frame(rows[on])
    if not index.is_unique:
        raise ValueError(f"rows repeat a key of {on}; pass one row per key.")
    positions = index.get_indexer(pd.MultiIndex.from_frame(sketches[on]))
    if (positions < 0).any():
        raise ValueError(f"{int((positions < 0).sum())} sketch rows match no row of `rows`.")
    X = codebook.from_positions(
        positions,
        sketches["position"].to_numpy(np.int64),
        sketches["value"].to_numpy(np.float64),
        len(rows),
    )
    return X if norm is None else codebook.normalize(X, norm)


# --------------------------------------------------------------------------- writing
def _codes_table(sketcher):
    """A fitted sketcher's codes as an Arrow table (entity_key, partitioning, bucket, position)."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(sketcher, ["codebook_", "keys_"])
    keys = np.asarray(sketcher.keys_)
    frame = sketcher.codebook_.to_frame(keys)
    if np.issubdtype(keys.dtype, np.integer):
        entity_key = pa.array(frame["entity_key"].to_numpy(np.int64))
    else:
        # Keys are compared as text in SQL; str() of an int key is what SQL's cast gives too.
        # Two keys with the same text (1 and '1') would fill both their buckets for one item.
        text = pd.Series([str(k) for k in keys])
        if text.duplicated().any():
            clash = text[text.duplicated(keep=False)].iloc[0]
            same = [k for k, t in zip(keys.tolist(), text) if t == clash]
            raise ValueError(
                f"Entity keys {same!r} are written as the same text {clash!r}; SQL would count "
                "both for one item. Give the entities distinct keys (e.g. all str or all int)."
            )
        entity_key = pa.array([str(k) for k in frame["entity_key"]], type=pa.string())
    return pa.table(
        {
            "entity_key": entity_key,
            "partitioning": pa.array(frame["partitioning"].to_numpy(np.int32)),
            "bucket": pa.array(frame["bucket"].to_numpy(np.int32)),
            "position": pa.array(frame["position"].to_numpy(np.int64)),
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
    (``j`` in ``[0, n_sketches)``), ``bucket`` (in ``[0, sketch_dim)``) and
    ``position = partitioning * sketch_dim + bucket``, the column of the entity's 1 in
    ``EMDESketcher.transform``. The dbt package's ``basemodel.emde_sketch`` macro (and the
    ``basemodel_history_sketches`` model, with the var ``basemodel_sketch_codes_identifier``
    set to this table) then sums item weights per position in SQL, which equals
    ``EMDESketcher(normalize=None).transform`` on the same rows.

    Parameters
    ----------
    sketcher : EMDESketcher
        A fitted sketcher (``keys_`` and ``codebook_``, the owner of the sketch layout).
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
    codes = _codes_table(sketcher)
    name = quote_relation(table)
    if is_duckdb_target(connection):
        with duckdb_connection(connection, read_only=False) as duck:
            _write_duckdb(duck, name, codes)
    elif hasattr(connection, "cursor") and hasattr(connection, "commit"):
        _write_dbapi(connection, name, codes)
    else:
        raise TypeError(
            "connection must be a DuckDB connection, the path of a DuckDB database file or a "
            f"DB-API 2 connection, got {type(connection).__name__}"
        )
    return codes.num_rows
