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

    def close(self) -> None: ...


class Connection(Protocol):
    """An open index: statements in autocommit mode, transactions opened and closed by the SQL the
    store runs (``BEGIN``/:func:`begin_write`, ``SAVEPOINT``, ``COMMIT``, ``ROLLBACK``)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...

    def close(self) -> None: ...

    @property
    def in_transaction(self) -> bool: ...


# The error tuples name psycopg's classes too, but psycopg is imported only when one of them is
# first read (PEP 562's module __getattr__), not when this module is: importing psycopg takes about
# 150 ms, half again the CLI's own start, which an archive kept in SQLite should not pay. Read them
# as ``db.ERRORS`` where an error is caught (an ``except`` clause reads its tuple only when an
# exception reaches it); a module that copies one at import time imports psycopg then.
_SQLITE_ERRORS: dict[str, tuple[type[Exception], ...]] = {
    #: Any error the index's database raises: a failed statement, a locked, full or broken index.
    "ERRORS": (sqlite3.Error,),
    #: The database could not do it now (locked, busy, full, read-only, I/O, shut down): the work
    #: may be retried.
    "OPERATIONAL_ERRORS": (sqlite3.OperationalError,),
    #: The index is not one the database can read (not a database, damaged), or an operation on it failed.
    "DATABASE_ERRORS": (sqlite3.DatabaseError,),
    #: A constraint refused a write (a unique key taken).
    "INTEGRITY_ERRORS": (sqlite3.IntegrityError,),
}

ERRORS: tuple[type[Exception], ...]
OPERATIONAL_ERRORS: tuple[type[Exception], ...]
DATABASE_ERRORS: tuple[type[Exception], ...]
INTEGRITY_ERRORS: tuple[type[Exception], ...]


def __getattr__(name: str) -> tuple[type[Exception], ...]:
    if name not in _SQLITE_ERRORS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        import psycopg
        from psycopg import errors
    except ImportError:  # no psycopg, no connection to PostgreSQL: SQLite's errors are all there are
        globals().update(_SQLITE_ERRORS)
        return _SQLITE_ERRORS[name]
    postgresql: dict[str, tuple[type[Exception], ...]] = {
        "ERRORS": (psycopg.Error,),
        # All are OperationalError subclasses in psycopg's mapping today, named so that they stay
        # retryable whatever it becomes: a writer that lost a serialization or deadlock check, a
        # lock not had within lock_timeout, a full disk, a server shut down. A read-only server
        # (a standby) is an InternalError in psycopg, an OperationalError in SQLite.
        "OPERATIONAL_ERRORS": (
            psycopg.OperationalError, errors.SerializationFailure, errors.LockNotAvailable,
            errors.DeadlockDetected, errors.DiskFull, errors.AdminShutdown, errors.ReadOnlySqlTransaction,
        ),
        "DATABASE_ERRORS": (psycopg.DatabaseError,),
        "INTEGRITY_ERRORS": (psycopg.IntegrityError,),
    }
    for key, classes in _SQLITE_ERRORS.items():
        globals()[key] = classes + postgresql[key]
    return globals()[name]  # type: ignore[no-any-return]


def dialect(conn: Connection) -> Dialect:
    """Which database ``conn`` is open on."""
    if isinstance(conn, sqlite3.Connection):
        return "sqlite"
    # Not imported above: a connection to PostgreSQL exists only once this module was imported.
    from twentyday.store.postgres import PgConnection

    if isinstance(conn, PgConnection):
        return "postgresql"
    raise TypeError(f"not a connection to the index: {type(conn).__name__}")


def begin_write(conn: Connection) -> None:
    """Open a write transaction that no other writer of the index runs beside: the ledger head read
    inside it stays the head until it commits (SQLite: the file's write lock, taken at once;
    PostgreSQL: BEGIN, then a transaction-level advisory lock every writer takes,
    :meth:`twentyday.store.postgres.PgConnection.begin_write`)."""
    if dialect(conn) == "sqlite":
        conn.execute("BEGIN IMMEDIATE")
        return
    from twentyday.store.postgres import PgConnection

    assert isinstance(conn, PgConnection)  # dialect() said so
    conn.begin_write()


def begin_read(conn: Connection) -> None:
    """Open a read-only transaction in which every statement sees the same state, whatever
    writers commit meanwhile (SQLite: a deferred BEGIN, whose first read fixes the snapshot;
    PostgreSQL: REPEATABLE READ, READ ONLY, as its default READ COMMITTED gives each statement a
    snapshot of its own)."""
    if dialect(conn) == "sqlite":
        conn.execute("BEGIN")
    else:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")


def stream(conn: Connection, sql: str, parameters: Any = (), *, batch: int = 1000) -> Cursor:
    """A statement's rows, read as they are iterated, ``batch`` at a time, so a pass over a large
    table keeps only so many in memory. Inside an open transaction (:func:`begin_read`).
    SQLite's cursor already steps row by row (``batch`` means nothing there); PostgreSQL's plain
    cursor holds the whole result, so a server-side one is used there
    (:meth:`twentyday.store.postgres.PgConnection.stream`)."""
    if isinstance(conn, sqlite3.Connection):
        return conn.execute(sql, parameters)
    from twentyday.store.postgres import PgConnection

    assert isinstance(conn, PgConnection), type(conn).__name__
    return conn.stream(sql, parameters, batch=batch)


def query(conn: Connection, sql: str, parameters: Any = ()) -> list[dict[str, Any]]:
    """A statement's rows as dicts by column name (names as the statement gives them, lower case)."""
    cursor = conn.execute(sql, parameters)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def max_parameters(conn: Connection) -> int:
    """How many parameters one statement may bind on ``conn``."""
    if isinstance(conn, sqlite3.Connection):
        return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return 65_535  # PostgreSQL's protocol: a 16-bit parameter count
