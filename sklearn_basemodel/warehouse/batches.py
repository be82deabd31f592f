"""Warehouse tables in and out in bounded batches: read a relation as pandas batches, write
predictions back batch by batch.

* :class:`WarehouseBatches` reads a table, view or query of a DuckDB database as a sequence of
  pandas DataFrames of at most ``batch_size`` rows, list columns (histories, baskets) as Python
  lists, through ``relation.to_arrow_reader(batch_size)`` under a DuckDB ``memory_limit``: the
  peak memory follows the limit and the batch size, not the table. Every iteration reads the
  relation again from the start, so it can feed several training epochs
  (:class:`~sklearn_basemodel.nn.streaming.BatchStream`).
* :func:`write_batches` appends DataFrames or Arrow tables to a warehouse table, one at a time;
  :func:`write_predictions` writes the ``(keys, predictions)`` pairs of
  ``predict_stream`` that way.

Table and column names are quoted (:func:`~sklearn_basemodel.warehouse.connections.quote_relation`),
never pasted into SQL as written; a ``query`` is the caller's own SQL, run as given with
``params`` bound by the driver.
"""

from __future__ import annotations

import re
from numbers import Integral

import numpy as np
import pandas as pd
import pyarrow as pa

from .connections import duckdb_connection, quote_identifier, quote_relation
from .tables import arrow_frame

__all__ = ["WarehouseBatches", "write_batches", "write_predictions"]

# DuckDB's own size syntax (e.g. "512MB", "1.5 GiB"); checked before it reaches the driver so a
# typo fails here with a clear message.
_MEMORY_LIMIT = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B|bytes)\s*$", re.IGNORECASE)
# The name under which a batch being written is visible to the INSERT statement.
_BATCH_VIEW = "__basemodel_write_batch"


def _batch_frame(batch: pa.RecordBatch) -> pd.DataFrame:
    """A record batch as pandas, list columns as Python lists (as ``read_relation`` returns)."""
    return arrow_frame(pa.Table.from_batches([batch]))


class WarehouseBatches:
    """A relation or query of a DuckDB database, read in bounded batches, again on every pass.

    Parameters
    ----------
    database : str, path-like or duckdb.DuckDBPyConnection
        A DuckDB database file (opened read-only for each pass, closed at its end) or an open
        connection (each pass reads through a cursor of it, so the connection stays usable,
        e.g. to write predictions while the rows are being read).
    relation : str or tuple of str, default=None
        A table or view: ``"table"``, ``"schema.table"`` or a tuple of name parts (quoted).
    query : str, default=None
        Instead of ``relation``: a SELECT statement of your own, run as written, with
        ``params`` bound by the driver.
    params : sequence, default=None
        Parameters of ``query`` (``?`` placeholders).
    columns : sequence of str, default=None
        With ``relation``: the columns to read (quoted); all by default.
    order_by : sequence of str, default=None
        With ``relation``: columns to order the rows by (quoted). Without it rows come in
        DuckDB's insertion order (kept while ``preserve_insertion_order`` is on, its
        default), which is stable from pass to pass; sorting a table larger than the memory
        limit spills to disk.
    batch_size : int, default=65536
        Rows per batch (the last one may be shorter).
    memory_limit : str or None, default="1GB"
        DuckDB's ``memory_limit`` (e.g. ``"512MB"``), set for the database while reading.
        None leaves the setting alone. The setting belongs to the database, not the pass: an
        open connection keeps it afterwards.

    Examples
    --------
    >>> import duckdb
    >>> from sklearn_basemodel.warehouse.batches import WarehouseBatches
    >>> con = duckdb.connect()
    >>> _ = con.execute("create table h as select i as customer_id, [i, i + 1] as items "
    ...                 "from range(5) t(i)")
    >>> batches = WarehouseBatches(con, "h", order_by=["customer_id"], batch_size=2)
    >>> [len(frame) for frame in batches]
    [2, 2, 1]
    >>> next(iter(batches))["items"].tolist()
    [[0, 1], [1, 2]]
    """

    def __init__(
        self,
        database,
        relation=None,
        *,
        query=None,
        params=None,
        columns=None,
        order_by=None,
        batch_size=65536,
        memory_limit="1GB",
    ):
        self.database = database
        self.relation = relation
        self.query = query
        self.params = params
        self.columns = columns
        self.order_by = order_by
        self.batch_size = batch_size
        self.memory_limit = memory_limit

    def _names(self, names, what: str) -> str:
        if isinstance(names, str) or not all(isinstance(c, str) for c in names):
            raise TypeError(f"{what} must be a list of column names, got {names!r}")
        return ", ".join(quote_identifier(c) for c in names)

    def sql(self) -> str:
        """The statement each pass runs (its ``params`` are bound separately)."""
        if (self.relation is None) == (self.query is None):
            raise ValueError("Pass exactly one of relation= (a table or view) and query= (SQL).")
        if self.query is not None:
            if self.columns is not None or self.order_by is not None:
                raise ValueError("columns= and order_by= go with relation=; write them in query.")
            return self.query
        selection = "*" if self.columns is None else self._names(self.columns, "columns")
        sql = f"select {selection} from {quote_relation(self.relation)}"
        if self.order_by is not None:
            sql += f" order by {self._names(self.order_by, 'order_by')}"
        return sql

    def _check(self) -> None:
        if not isinstance(self.batch_size, Integral) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        limit = self.memory_limit
        if limit is not None and not (isinstance(limit, str) and _MEMORY_LIMIT.match(limit)):
            raise ValueError(
                f"memory_limit must be a DuckDB size such as '512MB' or '2GB', got {limit!r}"
            )

    def __iter__(self):
        self._check()
        sql = self.sql()
        with duckdb_connection(self.database, read_only=True) as connection:
            # A cursor of its own: a pending streamed result on the caller's connection would
            # be cut off by the next statement the caller runs on it.
            cursor = connection.cursor()
            try:
                if self.memory_limit is not None:
                    cursor.execute("set memory_limit = ?", [self.memory_limit])
                relation = cursor.sql(sql, params=self.params)
                # relation.to_arrow_reader streams; cursor.execute(...).to_arrow_reader
                # materialises the whole result first.
                reader = relation.to_arrow_reader(int(self.batch_size))
                for batch in reader:
                    if batch.num_rows:
                        yield _batch_frame(batch)
            finally:
                cursor.close()

    def __repr__(self) -> str:
        what = f"relation={self.relation!r}" if self.query is None else "query=..."
        return f"{type(self).__name__}({what}, batch_size={self.batch_size})"


def _arrow_table(batch) -> pa.Table:
    if isinstance(batch, pa.Table):
        return batch
    if isinstance(batch, pa.RecordBatch):
        return pa.Table.from_batches([batch])
    if isinstance(batch, pd.DataFrame):
        return pa.Table.from_pandas(batch, preserve_index=False)
    raise TypeError(
        f"A batch to write must be a pandas DataFrame or an Arrow table, got {type(batch).__name__}"
    )


def write_batches(database, table, batches, *, mode="replace") -> int:
    """Write batches of rows to a DuckDB table, one batch in memory at a time.

    Parameters
    ----------
    database : str, path-like or duckdb.DuckDBPyConnection
        A DuckDB database file (opened read-write, then closed) or an open connection.
    table : str or tuple of str
        The table to write (name parts quoted).
    batches : iterable of pandas.DataFrame or pyarrow.Table
        Rows with the same columns in every batch; consumed lazily.
    mode : {"replace", "append"}, default="replace"
        ``"replace"``: the table is created (replacing one of that name) from the first
        batch's columns; ``"append"``: rows are inserted into an existing table.

    Returns
    -------
    int
        Rows written. With ``"replace"`` and no batch at all, no table is created.
    """
    if mode not in ("replace", "append"):
        raise ValueError(f"mode must be 'replace' or 'append', got {mode!r}")
    name = quote_relation(table)
    view = quote_identifier(_BATCH_VIEW)
    written = 0
    with duckdb_connection(database, read_only=False) as connection:
        create = mode == "replace"
        for batch in batches:
            arrow = _arrow_table(batch)
            connection.register(_BATCH_VIEW, arrow)
            try:
                if create:
                    connection.execute(f"create or replace table {name} as select * from {view}")
                    create = False
                else:
                    connection.execute(f"insert into {name} by name select * from {view}")
            finally:
                connection.unregister(_BATCH_VIEW)
            written += arrow.num_rows
    return written


def _prediction_column(values: np.ndarray) -> pa.Array:
    """One prediction per row: a scalar column, or a list column for a row of several."""
    values = np.asarray(values)
    if values.ndim == 1:
        return pa.array(values.tolist() if values.dtype == object else values)
    if values.ndim != 2:
        raise ValueError(f"predictions must be 1-D or 2-D per batch, got {values.ndim}-D")
    if values.dtype == object:
        return pa.array(values.tolist())
    flat = pa.array(np.ascontiguousarray(values).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def write_predictions(database, table, predictions, *, key="row_id", column="prediction",
                      mode="replace") -> int:
    """Write ``(keys, predictions)`` pairs (what ``predict_stream`` yields) batch by batch.

    Parameters
    ----------
    database : str, path-like or duckdb.DuckDBPyConnection
    table : str or tuple of str
    predictions : iterable of (keys, values)
        Per batch: the rows' keys (1-D) and their predictions, 1-D (a label, a probability)
        or 2-D (class probabilities, top-k keys: stored as a list per row).
    key, column : str, default="row_id", "prediction"
        Names of the key and prediction columns.
    mode : {"replace", "append"}, default="replace"

    Returns
    -------
    int
        Rows written.
    """

    def tables():
        for keys, values in predictions:
            keys = np.asarray(keys)
            values = _prediction_column(values)
            if len(keys) != len(values):
                raise ValueError(f"A batch has {len(keys)} keys but {len(values)} predictions.")
            key_array = pa.array(keys.tolist() if keys.dtype == object else keys)
            yield pa.table({key: key_array, column: values})

    return write_batches(database, table, tables(), mode=mode)
