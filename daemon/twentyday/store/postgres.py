"""The index in PostgreSQL: a connection that runs the store's SQL, written for SQLite, unchanged.

:func:`connect` opens a :class:`PgConnection`, which implements :class:`twentyday.store.db.Connection`:
statements run in autocommit mode and the SQL the store runs opens and closes its transactions
(``BEGIN``, :func:`twentyday.store.db.begin_write`, ``SAVEPOINT``, ``COMMIT``), as SQLite's
``isolation_level=None`` does.

Placeholders. The store writes ``?`` (``?1`` where it uses one value twice; ``:name`` with a dict
in a few inserts of whole rows), PostgreSQL's protocol wants ``$1..$n``. The text is converted once
per distinct statement (a bounded cache) and sent through psycopg's :class:`psycopg.RawCursor`,
which passes ``$n`` through untouched: psycopg's own ``%s`` conversion, measured by the issue's
scout, was 92% of a bulk insert's time. A statement without parameters is sent as it is (a
migration's script, with its comments and ``'...'`` literals, is never looked at).

The conversion does not parse SQL. A ``?`` inside a quoted literal, or in a comment, would be
taken for a placeholder; none of the store's statements has one (a literal value belongs in a
parameter anyway), so such a statement is refused instead of lexed: a lexer that knows ``E''``
strings, dollar quoting and nested comments is code to get wrong for a case that does not occur,
while the refusal costs one look per distinct statement and fails the first test that runs it.

Values. ``str`` binds as an untyped literal that the server types from its place (a text column,
a ``lower(?)``), ``bytes`` as ``bytea``, ``None`` as NULL, and ``int`` always as ``bigint``: the
schema's INTEGER columns are bigint on PostgreSQL, and psycopg's default (the smallest of
smallint/integer/bigint that holds the value) gives one statement a different parameter type per
value, so its server-side prepared statement is prepared again and again. Every int the store binds
is an INTEGER column's value, a comparison with one, or a LIMIT (all bigint); none goes to a text
column or to a function wanting ``integer``. PostgreSQL's text cannot hold U+0000, which SQLite
stores: such a value is refused with :class:`TextWithNul`, naming the parameter, never its value.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.types.numeric import Int8BinaryDumper

from twentyday.errors import ConfigError

#: The key of the transaction-level advisory lock every ledger writer takes after ``BEGIN``
#: (:func:`twentyday.store.db.begin_write`), so writers run one at a time as SQLite's
#: ``BEGIN IMMEDIATE`` makes them. The first 8 bytes of sha256(b"twentyday ledger writer") as a
#: signed 64-bit integer: fixed, and unlikely to be another application's key in a shared cluster.
LEDGER_LOCK_KEY = 4_169_716_626_646_925_978

#: How long a statement waits for a lock (the ledger writers' lock among them) before failing with
#: an operational error the caller may retry, as SQLite's busy timeout (schema.connect: 30 s).
LOCK_TIMEOUT = "30s"

#: Distinct statement texts whose converted form is kept. The store has a few hundred statements;
#: a multi-row insert has one text per row count, up to the batch size.
_CONVERTED_CACHE = 2048

#: Rows a server-side cursor (:meth:`PgConnection.stream`) fetches at a time by default.
STREAM_BATCH = 1000
#: What ``pg_export_snapshot()`` returns (hex words and dashes).
_SNAPSHOT_ID = re.compile(r"[0-9A-Fa-f]+(-[0-9A-Fa-f]+)+")

_POSITIONAL = re.compile(r"\?(\d*)")
_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class TextWithNul(psycopg.DataError):
    """A text value holds U+0000, which PostgreSQL's text type cannot store (SQLite can)."""


def connect(dsn: str) -> PgConnection:
    """Open the index in the PostgreSQL database ``dsn`` names (a libpq connection string or URI).

    Refuses a database whose collation or character type is not ``C``, or whose encoding is not
    UTF8 (:class:`ConfigError`): the store's ORDER BY of keyed hashes and ISO times, and its
    ``lower()``, must give SQLite's byte order and ASCII-only result on both databases.
    """
    conn = psycopg.connect(dsn, autocommit=True, cursor_factory=psycopg.RawCursor)
    try:
        _check_database(conn)
        conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    except BaseException:
        conn.close()
        raise
    conn.adapters.register_dumper(int, Int8BinaryDumper)
    return PgConnection(conn)


def _check_database(conn: psycopg.Connection[Any]) -> None:
    version = conn.info.server_version
    # The locale provider (15+): libc, ICU, or (17+) PostgreSQL's builtin; its own locale beside.
    provider = "datlocprovider::text" if version >= 150000 else "'c'"
    own_locale = "datlocale" if version >= 170000 else "daticulocale" if version >= 150000 else "NULL"
    row = conn.execute(
        f"SELECT datname, datcollate, datctype, pg_encoding_to_char(encoding), {provider}, {own_locale}"
        " FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None  # the database we are connected to
    name, collate, ctype, encoding, locale_provider, locale = row
    byte_order = {
        "c": collate in ("C", "POSIX") and ctype in ("C", "POSIX"),
        "b": locale == "C",  # builtin C: byte order, ASCII-only case mapping (builtin C.UTF-8 is not)
    }.get(locale_provider, False)
    if byte_order and encoding == "UTF8":
        return
    if locale_provider == "c":
        sorting = f"collation {collate!r}, character type {ctype!r}"
    else:
        sorting = f"the {'ICU' if locale_provider == 'i' else 'builtin'} locale {locale!r}"
    raise ConfigError(
        f'PostgreSQL database "{name}" has {sorting} and encoding {encoding}; the index needs'
        " collation and character type C (byte order, as SQLite sorts) and encoding UTF8:"
        " CREATE DATABASE ... TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER libc"
    )


class PgConnection:
    """An open index in PostgreSQL (:class:`twentyday.store.db.Connection`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._streams = itertools.count(1)  # names of server-side cursors, unique on this connection

    def execute(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (), /) -> psycopg.Cursor[Any]:
        """Run one statement; its rows are read from the cursor returned (as tuples)."""
        if not parameters:
            # The simple query protocol: a script of several statements (a migration) runs whole.
            # Its results come as text; the same Python values as binary's, a little slower.
            return self._conn.cursor().execute(sql.encode())
        query, names = _converted(sql, isinstance(parameters, Mapping))
        values = _values(parameters, names)
        try:
            # Results in binary: a bytea (a sealed chunk) comes as its bytes, not as hex to decode,
            # 4 to 7 times faster for 1 MiB chunks here.
            return self._conn.cursor(binary=True).execute(query, values)
        except psycopg.DataError as error:
            _raise_if_nul(error, values)
            raise

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any] | Mapping[str, Any]], /) -> psycopg.Cursor[Any]:
        """Run one statement once per set of parameters (``rowcount``: the rows all of them changed)."""
        rows = iter(parameters)
        first = next(rows, None)
        cursor = self._conn.cursor(binary=True)
        if first is None:
            return cursor
        query, names = _converted(sql, isinstance(first, Mapping))
        values = [_values(first, names), *(_values(row, names) for row in rows)]
        try:
            cursor.executemany(query, values)
        except psycopg.DataError as error:
            for row in values:
                _raise_if_nul(error, row)
            raise
        return cursor

    def stream(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] = (), /, *,
               batch: int = STREAM_BATCH) -> psycopg.RawServerCursor[Any]:
        """Run one statement inside the open transaction and read its rows ``batch`` at a time
        (a server-side cursor): a cursor of :meth:`execute` holds the whole result in memory, this
        one as many rows as ``batch``. Closed when the transaction ends (or by its ``close``).

        Outside a transaction there is no cursor to keep on the server (without a costly WITH HOLD
        copy of the whole result): refused, as a bug of the caller.
        """
        if not self.in_transaction:
            raise ValueError("stream() reads through a cursor of the open transaction: BEGIN first")
        cursor: psycopg.RawServerCursor[Any] = psycopg.RawServerCursor(
            self._conn, f"twentyday_stream_{next(self._streams)}")
        cursor.itersize = batch
        if not parameters:
            cursor.execute(sql.encode(), binary=True)
            return cursor
        query, names = _converted(sql, isinstance(parameters, Mapping))
        values = _values(parameters, names)
        try:
            cursor.execute(query, values, binary=True)  # results in binary, as execute()'s
        except psycopg.DataError as error:
            _raise_if_nul(error, values)
            raise
        return cursor

    def export_snapshot(self) -> str:
        """The open transaction's snapshot, which another connection may read from too
        (:meth:`import_snapshot`) while this transaction stays open."""
        row = self._conn.execute(b"SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        return str(row[0])

    def import_snapshot(self, snapshot: str) -> None:
        """Open a read-only transaction that sees what the one which exported ``snapshot`` sees."""
        if not _SNAPSHOT_ID.fullmatch(snapshot):  # spliced into the text: SET takes no parameter
            raise ValueError(f"not a snapshot id: {snapshot!r}")
        self._conn.execute(b"BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        self._conn.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'".encode())

    def reopen(self) -> PgConnection:
        """Another connection to the same database, as :func:`connect` opens one (the same user and
        server; a password is not kept by libpq's own description and comes from where it came)."""
        return connect(self._conn.info.dsn)

    def close(self) -> None:
        self._conn.close()

    @property
    def in_transaction(self) -> bool:
        """A transaction is open: running, or failed and waiting for its ROLLBACK."""
        status = self._conn.info.transaction_status
        return status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)

    @property
    def closed(self) -> bool:
        return self._conn.closed

    def begin_write(self) -> None:
        """Open a transaction no other ledger writer runs beside (:func:`twentyday.store.db.begin_write`).

        READ COMMITTED, so each statement sees what the writer before committed (REPEATABLE READ
        would read the ledger head as of the first statement: a stale one), then the lock, held
        until COMMIT or ROLLBACK. If the lock is not had, no transaction stays open, as when
        SQLite's BEGIN IMMEDIATE finds the file busy.
        """
        self._conn.execute(b"BEGIN ISOLATION LEVEL READ COMMITTED")
        try:
            self._conn.execute(f"SELECT pg_advisory_xact_lock({LEDGER_LOCK_KEY})".encode())
        except BaseException:
            if not self._conn.closed:
                self._conn.execute(b"ROLLBACK")
            raise


@functools.lru_cache(maxsize=_CONVERTED_CACHE)
def _converted(sql: str, named: bool) -> tuple[bytes, tuple[str, ...] | None]:
    """``sql`` with ``$1..$n`` for its ``?`` (or ``:name``) placeholders, and the names in ``$n`` order."""
    _refuse_placeholder_in_literal(sql, named)
    if named:
        order: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${order.setdefault(match.group(1), len(order) + 1)}"

        return _NAMED.sub(number, sql).encode(), tuple(order)
    if "?" not in sql:
        return sql.encode(), None
    largest = 0

    def numbered(match: re.Match[str]) -> str:
        # SQLite's rule: "?N" is parameter N; a bare "?" is one more than the largest so far.
        nonlocal largest
        n = int(match.group(1)) if match.group(1) else largest + 1
        largest = max(largest, n)
        return f"${n}"

    return _POSITIONAL.sub(numbered, sql).encode(), None


def _refuse_placeholder_in_literal(sql: str, named: bool) -> None:
    # Pieces between single quotes alternate outside, inside, outside... ('it''s' splits into 'it'
    # and 's', both inside: a doubled quote keeps the parity). Outside, a comment, a double quote or
    # a '$' is refused: a quote in a comment or an identifier would shift the parity, and '$n' is
    # what the placeholders become. No statement of the store that takes parameters has one.
    pieces = sql.split("'")
    outside, inside = pieces[0::2], pieces[1::2]
    placeholder = _NAMED.search if named else (lambda piece: "?" in piece)
    if any(placeholder(piece) for piece in inside) or any(
        mark in piece for piece in outside for mark in ("--", "/*", '"', "$")
    ):
        raise ValueError(
            "a statement with parameters has a placeholder inside a quoted literal, or a comment,"
            f" a double quote or a '$' outside one, which the conversion to $n cannot tell apart: {sql[:80]!r}"
        )


def _values(parameters: Sequence[Any] | Mapping[str, Any], names: tuple[str, ...] | None) -> Sequence[Any]:
    if names is None:
        if isinstance(parameters, Mapping):
            raise ValueError("a statement with '?' placeholders was given named parameters")
        return parameters
    if not isinstance(parameters, Mapping):
        raise ValueError("a statement with ':name' placeholders was given positional parameters")
    return [parameters[name] for name in names]


def _raise_if_nul(error: psycopg.DataError, values: Sequence[Any]) -> None:
    # psycopg refuses such a value before sending it; this says which parameter, not what it holds.
    for n, value in enumerate(values, start=1):
        if isinstance(value, str) and "\x00" in value:
            raise TextWithNul(
                f"parameter {n} holds the character U+0000 (NUL), which PostgreSQL's text cannot store"
            ) from error
