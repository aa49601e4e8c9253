"""The index's database seam: what the store asks of a connection, whichever database keeps the index.

The store's modules type their connection as :class:`Connection`, start a write with
:func:`begin_write`, and catch the error tuples below instead of one driver's classes. Today one
database keeps the index: SQLite, a file in ``data_dir`` (:func:`twentyday.store.schema.connect`).
Issue 17 adds PostgreSQL behind the same seam: its connection implements :class:`Connection`, its
errors join the tuples, and :func:`begin_write` takes its ledger lock.

Statements are written once, in the SQL both databases share (``?`` placeholders; see
``docs/ARCHITECTURE.md``, "One SQL for two databases"); where they cannot share a text,
:func:`dialect` says which one to run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any, Literal, Protocol

#: Which database keeps the index.
Dialect = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    """What the store reads from a statement's result: rows as tuples."""

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ..., /) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any:
        """One sequence per column of the result, its name first (None: a statement that returns no rows)."""


class Connection(Protocol):
    """An open index: statements in autocommit mode, transactions opened and closed by the SQL the
    store runs (``BEGIN``/:func:`begin_write`, ``SAVEPOINT``, ``COMMIT``, ``ROLLBACK``)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...

    def close(self) -> None: ...

    @property
    def in_transaction(self) -> bool: ...


#: Any error the index's database raises: a failed statement, a locked, full or broken index.
ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)
#: The database could not do it now (locked, busy, full, read-only, I/O): the work may be retried.
OPERATIONAL_ERRORS: tuple[type[Exception], ...] = (sqlite3.OperationalError,)
#: The index is not one the database can read (not a database, damaged), or an operation on it failed.
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)
#: A constraint refused a write (a unique key taken).
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError,)


def dialect(conn: Connection) -> Dialect:
    """Which database ``conn`` is open on."""
    return "sqlite" if isinstance(conn, sqlite3.Connection) else "postgresql"


def begin_write(conn: Connection) -> None:
    """Open a write transaction that no other writer of the index runs beside: the ledger head read
    inside it stays the head until it commits (SQLite: the file's write lock, taken at once)."""
    conn.execute("BEGIN IMMEDIATE")


def max_parameters(conn: Connection) -> int:
    """How many parameters one statement may bind on ``conn``."""
    if isinstance(conn, sqlite3.Connection):
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 65_535  # PostgreSQL's protocol: a 16-bit parameter count
