"""Connections to the warehouse and SQL identifiers.

Every table name that reaches SQL goes through :func:`quote_relation` (or
:func:`quote_identifier`): names are quoted, never pasted in as written, so a user's string
cannot change the statement.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

__all__ = [
    "duckdb_connection",
    "is_duckdb_target",
    "quote_identifier",
    "quote_relation",
    "split_relation",
]


def quote_identifier(name):
    """One SQL identifier in double quotes, inner quotes doubled: ``a"b`` -> ``"a""b"``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an identifier must be a non-empty string, got {name!r}")
    return '"' + name.replace('"', '""') + '"'


def split_relation(relation):
    """The parts of a relation written with double-quoted identifiers (``"my schema".events``).

    Strict: each part is a bare name without quotes or dots, or a double-quoted name whose inner
    quotes are doubled. Anything else, such as SQL after a quoted name, is refused, so a string
    never reaches SQL as written.
    """
    parts, i, n = [], 0, len(relation)
    while True:
        if i < n and relation[i] == '"':
            j, name = i + 1, []
            while True:
                end = relation.find('"', j)
                if end < 0:
                    raise ValueError(f"relation {relation!r} has an unclosed quote.")
                name.append(relation[j:end])
                if relation.startswith('""', end):
                    name.append('"')
                    j = end + 2
                    continue
                i = end + 1
                break
            parts.append("".join(name))
        else:
            end = relation.find(".", i)
            end = n if end < 0 else end
            parts.append(relation[i:end])
            if '"' in parts[-1]:
                raise ValueError(
                    f"relation {relation!r} is not a name: quotes may only enclose a whole part."
                )
            i = end
        if i == n:
            return parts
        if relation[i] != ".":
            raise ValueError(
                f"relation {relation!r} is not 'table', 'schema.table' or "
                "'database.schema.table' (with optionally double-quoted parts)."
            )
        i += 1


def quote_relation(relation):
    """``relation`` as a quoted SQL name: 'events', 'schema.events', ('db', 'schema', 'events').

    Parts may be written double-quoted (``'"My Schema".events'``); the name is parsed and quoted
    again, never used as written.
    """
    if isinstance(relation, str):
        if not relation.strip():
            raise ValueError("relation is empty; pass a table or view name such as 'main.events'.")
        parts = split_relation(relation)
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
    return ".".join(quote_identifier(part) for part in parts)


def is_duckdb_target(database):
    """True for a DuckDB connection or the path of a DuckDB file (what DuckDB can open)."""
    import duckdb

    return isinstance(database, (duckdb.DuckDBPyConnection, str, os.PathLike))


@contextlib.contextmanager
def duckdb_connection(database, read_only):
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
