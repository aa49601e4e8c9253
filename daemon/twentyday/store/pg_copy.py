"""Copy an embedded archive's index (its SQLite file) into a new PostgreSQL index, every row as it is.

The data half of ``twentyday migrate --to`` (issue 17, store/migrate_index.py), which calls
:func:`check_copy` before it writes anything, then :func:`copy_index` and :func:`compare_indexes`.

:func:`copy_index` reads the SQLite file read-only, in one read transaction (a snapshot: a daemon
still writing to it changes nothing the copy sees), and writes PostgreSQL in one transaction that
creates the schema (:func:`pg_schema.create_within`, which refuses a database that holds any table)
and copies every table with ``COPY ... FROM STDIN (FORMAT binary)``, in rowid order. A copy that
fails leaves the database as it found it, empty, so it can simply be run again.

- ``rowid`` and the ``INTEGER PRIMARY KEY`` numbers keep their values: COPY writes an identity
  column's given value (it is never ``GENERATED ALWAYS``'s refusal an INSERT meets), and each
  identity's sequence is then moved to the copied maximum, so the next row gets the number SQLite
  would have given it (max + 1).
- The FTS5 table's rows go into the plain ``record_terms`` with their rowids (``record_terms_row``
  names them by it).
- Derived tables are copied as they are, with ``record``'s triggers disabled for the copy's
  transaction (``ALTER TABLE ... DISABLE TRIGGER USER``, on the table the transaction has just
  created: nothing else sees it). Letting the insert trigger run instead would derive
  ``record_participant`` a second time from the copied records (doubled rows, or a key conflict
  with the copied ones), and the copy is to hold the rows the archive holds, which verify then
  compares with their sources, not rows PostgreSQL recomputed.
- Bytes stay bytes (sealed chunks, keyslots, escrow); a pointer row of an S3-backed archive is text
  in ``chunk.data``'s BLOB column, and goes as those bytes.
- Before anything is written, each column's values are checked in SQLite to be of the type its
  PostgreSQL column takes (SQLite would keep a text in an INTEGER column: the store never writes
  one, so that is a file changed outside it), and text to hold no U+0000, which PostgreSQL's text
  cannot hold. The pipeline now replaces U+0000 in a record's names and keys by U+FFFD on both
  databases (:func:`twentyday.records.nul_replaced`), but an archive written before it may hold one:
  a chat export whose sender's name held one kept it in ``record.sender``. Such an archive is
  refused, naming the table, the column, how many rows and the first one's rowid (never the value),
  until its ledgered rows are given a form both databases hold (a decision about ledgered records,
  not the copy's to make).

The indexes no constraint stands on (``record``'s ten, the blind words' GIN index ...) are dropped
inside the transaction and built again from their own definitions once the rows are in: one sorted
build each instead of an insert per row. Measured with bench/pg_copy.py on a 200,000-message chat
archive (602,446 rows, a 456 MB index; PostgreSQL 15 on the same two shared cores), best of three:
binary COPY with the indexes built after, 8.6 s (70,000 rows/s; 3.1-3.5 s of this process's CPU,
~6.8 s of the server's); text COPY 13.1 s; either keeping the indexes as the rows go, 11.6-13.4 s
(the server's CPU ~1.3 s more). Binary is also exact by construction (integers as 8 bytes, bytes as
bytes, no escaping), so it is the one used. Peak memory is bounded by a fetch (500 rows; 8 of a
table of bytes), not by the archive: 50 MB copying an archive of 20,000 messages, 75 MB that one,
84 MB one of 400,000 (1,204,865 rows, a 906 MB index: 19.3 s, 62,000 rows/s; compared in 21 s,
124 MB).

Errors of PostgreSQL itself during the copy (connection lost, disk full) are psycopg's, raised
after the transaction is rolled back; SQLite text that is not UTF-8 (which the store never writes)
stops the read with sqlite3's error.

:func:`compare_indexes` reads both indexes table by table in one canonical order (the primary key,
else rowid), streaming, with a count and a SHA-256 per table on each side, and names each table
whose rows differ (where first, by position and rowid, and which columns: never a value).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from twentyday.errors import ConfigError, IntegrityError, NotFoundError
from twentyday.store import pg_schema, schema

#: Called as the copy goes: ``(table, rows copied of it so far, its rows in all)``.
Progress = Callable[[str, int, int], None]

#: Rows read per fetch: memory stays flat; a ledger entry of a pack is ~40 kB, a sealed chunk up to 1 MiB.
_FETCH, _FETCH_BYTES = 500, 8
#: Progress is reported every this many rows of a table (and at its end).
_PROGRESS_EVERY = 50_000
#: SQLite's ``typeof()`` of the values each PostgreSQL column type takes (NULL aside).
_SQLITE_TYPE = {"bigint": "integer", "text": "text", "bytea": "blob"}
#: Which COPY format :func:`copy_index` writes, and whether it builds the indexes no constraint stands on
#: after the rows are in instead of as they go (see the module's docstring; bench/pg_copy.py measures both).
COPY_FORMAT = "binary"
REBUILD_INDEXES = True


@dataclass(frozen=True)
class Column:
    name: str
    pg_type: str  # bigint | text | bytea


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    #: The canonical order of its rows: the primary key's columns, else ``rowid``.
    order: tuple[str, ...]
    #: It has a rowid in SQLite (every table but a WITHOUT ROWID one), so the copy reads in rowid order.
    has_rowid: bool
    #: Its ``rowid`` is a column of its own on PostgreSQL (pg_schema.ROWID_TABLES).
    keeps_rowid: bool


@dataclass
class CopyReport:
    """What :func:`copy_index` copied: rows per table (in copy order) and where each identity now stands."""

    schema_version: int
    rows: dict[str, int] = field(default_factory=dict)
    #: ``table.column`` -> the sequence's last value (the next row gets the one after it); None: still unused.
    identities: dict[str, int | None] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def copy_index(sqlite_path: Path, dsn: str, progress: Progress | None = None) -> CopyReport:
    """Copy the index at ``sqlite_path`` into the empty PostgreSQL database ``dsn`` names; see the module.

    Refuses an index not at this code's schema version (:class:`ArchiveVersionError`), a value
    PostgreSQL could not hold as it is (:class:`IntegrityError`) and a database that holds any table
    or does not compare text byte by byte (:class:`ConfigError`); in each case nothing is written.
    """
    began = time.monotonic()
    source = _open_sqlite(sqlite_path)
    try:
        source.execute("BEGIN")  # one read transaction: every table from the same snapshot
        schema.check_current(source)
        with _connect(dsn) as target, target.transaction():
            version, tables, totals = _prepare(source, target)
            report = CopyReport(version)
            # create() wrote the meta row a new index starts with; the archive's own meta rows replace it
            target.execute("DELETE FROM meta")
            triggered = _tables_with_triggers(target)
            for name in triggered:
                target.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(sql.Identifier(name)))
            rebuilt = _drop_indexes(target) if REBUILD_INDEXES else []
            for table in tables:
                report.rows[table.name] = _copy_table(source, target, table, totals[table.name], progress)
            for definition in rebuilt:
                target.execute(definition)
            for name in triggered:
                target.execute(sql.SQL("ALTER TABLE {} ENABLE TRIGGER USER").format(sql.Identifier(name)))
            report.identities = _move_identities(target)
            # Statistics now, not when autovacuum comes by: without them the planner takes the new tables
            # for small, and the first readers (migrate's verify: a lookup per ledger entry) scan instead
            # of using the indexes (measured: a 20,000-mail archive's verify, 9.5 s with them, ~150 s without).
            target.execute("ANALYZE")
        source.execute("COMMIT")
    finally:
        source.close()
    report.seconds = time.monotonic() - began
    return report


def check_copy(sqlite_path: Path, dsn: str) -> None:
    """Refuse what :func:`copy_index` would refuse before it writes a row (the same errors), writing nothing.

    ``migrate --to`` runs it before it writes anything else (secrets, the blobs into a bucket): a
    database that is not empty, or a value PostgreSQL cannot hold, is refused before the work, not after.
    The schema is created and the values checked inside a transaction that is then rolled back.
    """
    source = _open_sqlite(sqlite_path)
    try:
        source.execute("BEGIN")
        schema.check_current(source)
        with _connect(dsn) as target, target.transaction(force_rollback=True):
            _prepare(source, target)
        source.execute("COMMIT")
    finally:
        source.close()


def _prepare(source: sqlite3.Connection, target: psycopg.Connection[Any]) -> tuple[int, list[Table], dict[str, int]]:
    """Inside the copy's transaction: the schema created, the tables matched, every value checked; the row counts."""
    version = pg_schema.create_within(target)
    tables = _tables(target, source)
    _check_same_tables(source, tables)
    return version, tables, {table.name: _check_values(source, table) for table in tables}


def compare_indexes(sqlite_path: Path, dsn: str) -> list[str]:
    """The differences between the SQLite index and the PostgreSQL one, one line each (empty: equal).

    Both are read from a snapshot each, every table in its canonical order (primary key, else
    rowid), streaming: a count and a SHA-256 of its rows per side, and for a table that differs the
    first row where it does (its position, its rowid when it has one, the columns that differ).
    """
    source = _open_sqlite(sqlite_path)
    try:
        source.execute("BEGIN")
        with _connect(dsn) as target, target.transaction():
            target.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            differences = []
            found = pg_schema.version(target)
            if found != schema.version(source):
                differences.append(f"schema version: {schema.version(source)} in SQLite, {found} in PostgreSQL")
            tables = _tables(target, source)
            try:
                _check_same_tables(source, tables)
            except IntegrityError as exc:
                return [*differences, str(exc)]
            for table in tables:
                difference = _compare_table(source, target, table)
                if difference:
                    differences.append(difference)
        source.execute("COMMIT")
    finally:
        source.close()
    return differences


def _open_sqlite(path: Path) -> sqlite3.Connection:
    """The index file, read-only (the copy never writes it: no checkpoint, no journal of its own)."""
    if not path.is_file():
        raise NotFoundError(f"{path}: no index file there")
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None,
                               timeout=30.0)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"the index could not be read: {exc}", path=str(path)) from None
    return conn


def _connect(dsn: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        # psycopg's message names the server and why, never the password
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"could not connect to the PostgreSQL index: {first}") from None


def _tables(conn: psycopg.Connection[Any], source: sqlite3.Connection) -> list[Table]:
    """The index's tables on PostgreSQL, by name, with their columns as PostgreSQL orders them."""
    columns: dict[str, list[Column]] = {}
    for table, column, data_type in conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name <> %s ORDER BY table_name, ordinal_position",
            (pg_schema.VERSION_TABLE,)):
        if data_type not in _SQLITE_TYPE:
            raise ValueError(f"{table}.{column}: pg_copy knows no SQLite type for {data_type}")
        columns.setdefault(table, []).append(Column(column, data_type))
    keys: dict[str, tuple[str, ...]] = {}
    for table, key in conn.execute(
            "SELECT t.relname, array_agg(a.attname ORDER BY k.n) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace s ON s.oid = t.relnamespace "
            "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "WHERE s.nspname = current_schema() AND c.contype = 'p' GROUP BY t.relname"):
        keys[table] = tuple(key)
    # SQLite keeps a few tables WITHOUT ROWID (their key is their order): read in their key's order
    without_rowid = {str(name) for (name,) in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%WITHOUT ROWID%'")}
    return [Table(name, tuple(found), keys.get(name, ("rowid",)), name not in without_rowid,
                  name in pg_schema.ROWID_TABLES)
            for name, found in sorted(columns.items())]


def _sqlite_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")]


def _check_same_tables(conn: sqlite3.Connection, tables: Sequence[Table]) -> None:
    """The SQLite file has the tables and columns the PostgreSQL schema has (both at one version)."""
    fts_shadows = ("_data", "_idx", "_content", "_docsize", "_config")
    found = {str(name) for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")}
    found -= {pg_schema.FTS_TABLE + suffix for suffix in fts_shadows}
    expected = {table.name for table in tables}
    if found != expected:
        raise IntegrityError(f"the SQLite index's tables are not the schema's: missing {sorted(expected - found)}, "
                             f"extra {sorted(found - expected)}")
    for table in tables:
        wanted = {column.name for column in table.columns} - ({"rowid"} if table.keeps_rowid else set())
        held = set(_sqlite_columns(conn, table.name))
        if wanted != held:
            raise IntegrityError(f"{table.name}: the SQLite index's columns are not the schema's: missing "
                                 f"{sorted(wanted - held)}, extra {sorted(held - wanted)}")


def _check_values(conn: sqlite3.Connection, table: Table) -> int:
    """The table's row count, once every value is checked to be one PostgreSQL's column takes as it is."""
    checks = []
    for column in table.columns:
        if column.name == "rowid":
            continue
        quoted = _quote(column.name)
        checks.append(f"sum(typeof({quoted}) NOT IN ('{_SQLITE_TYPE[column.pg_type]}', 'null'))")
        if column.pg_type == "text":
            # instr() on a text: where U+0000 is (SQLite's text keeps it, PostgreSQL's cannot)
            checks.append(f"sum(typeof({quoted}) = 'text' AND instr({quoted}, char(0)) > 0)")
    row = conn.execute(f"SELECT count(*), {', '.join(checks)} FROM {table.name}").fetchone()
    findings = iter(row[1:])
    for column in table.columns:
        if column.name == "rowid":
            continue
        wrong_type = next(findings) or 0
        if wrong_type:
            raise IntegrityError(f"{table.name}.{column.name}: {wrong_type} row(s) hold a value that is not "
                                 f"{_SQLITE_TYPE[column.pg_type]}, which PostgreSQL's {column.pg_type} column "
                                 "cannot take as it is; nothing was copied")
        if column.pg_type == "text" and (with_nul := next(findings) or 0):
            first = ""
            if table.has_rowid:
                row = conn.execute(f"SELECT rowid FROM {table.name} WHERE typeof({_quote(column.name)}) = 'text' "
                                   f"AND instr({_quote(column.name)}, char(0)) > 0 ORDER BY rowid LIMIT 1").fetchone()
                first = f" (the first at rowid {row[0]})"
            raise IntegrityError(f"{table.name}.{column.name}: {with_nul} row(s){first} hold the character U+0000, "
                                 "which PostgreSQL's text cannot hold; nothing was copied")
    return int(row[0])


def _select(table: Table, order: Sequence[str]) -> str:
    return (f"SELECT {', '.join(_quote(column.name) for column in table.columns)} FROM {table.name} "
            f"ORDER BY {', '.join(_quote(name) for name in order)}")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"' if name != "rowid" else "rowid"


def _fetch_size(table: Table) -> int:
    return _FETCH_BYTES if any(column.pg_type == "bytea" for column in table.columns) else _FETCH


def _rows(cursor: sqlite3.Cursor, size: int) -> Iterator[tuple[Any, ...]]:
    while batch := cursor.fetchmany(size):
        yield from batch


def _copy_table(source: sqlite3.Connection, target: psycopg.Connection[Any], table: Table, total: int,
                progress: Progress | None) -> int:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT {})").format(
        sql.Identifier(table.name), sql.SQL(", ").join(sql.Identifier(column.name) for column in table.columns),
        sql.SQL(COPY_FORMAT))
    copied = 0
    # rowid order: the order SQLite wrote the rows in, which is how PostgreSQL's heap then holds them
    cursor = source.execute(_select(table, ("rowid",) if table.has_rowid else table.order))
    with target.cursor().copy(statement) as copy:
        copy.set_types([column.pg_type for column in table.columns])
        for row in _rows(cursor, _fetch_size(table)):
            copy.write_row(row)
            copied += 1
            if progress is not None and copied % _PROGRESS_EVERY == 0:
                progress(table.name, copied, total)
    if copied != total:  # the snapshot cannot change under the read transaction
        raise IntegrityError(f"{table.name}: read {copied} rows of the {total} counted")
    if progress is not None:
        progress(table.name, copied, total)
    return copied


def _drop_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """Drop the indexes no constraint stands on; their definitions, to build again once the rows are in."""
    found = conn.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1").fetchall()
    for name, _ in found:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    return [str(definition) for _, definition in found]


def _tables_with_triggers(conn: psycopg.Connection[Any]) -> list[str]:
    return [str(name) for (name,) in conn.execute(
        "SELECT DISTINCT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() "
        "AND NOT t.tgisinternal ORDER BY c.relname")]


def _move_identities(conn: psycopg.Connection[Any]) -> dict[str, int | None]:
    """Move each identity's sequence to its column's copied maximum; ``table.column`` -> that value."""
    moved: dict[str, int | None] = {}
    for table, column in conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name, column_name"
    ).fetchall():
        row = conn.execute(sql.SQL("SELECT setval(pg_get_serial_sequence(%s, %s), max({})) FROM {}").format(
            sql.Identifier(column), sql.Identifier(table)), (table, column)).fetchone()
        # setval(NULL) (an empty table) leaves the sequence where it starts: the first row gets 1, as in SQLite
        moved[f"{table}.{column}"] = None if row is None or row[0] is None else int(row[0])
    return moved


def _compare_table(source: sqlite3.Connection, target: psycopg.Connection[Any], table: Table) -> str | None:
    select = _select(table, table.order)
    sides = (_rows(source.execute(select), _fetch_size(table)), _pg_rows(target, select, _fetch_size(table)))
    digests = (hashlib.sha256(), hashlib.sha256())
    counts = [0, 0]
    first: str | None = None
    for position, (left, right) in enumerate(zip_longest(*sides), start=1):
        for side, row in enumerate((left, right)):
            if row is not None:
                counts[side] += 1
                digests[side].update(_canonical(row))
        if first is None and left != right:
            first = _where(table, position, left, right)
    if counts[0] == counts[1] and digests[0].digest() == digests[1].digest():
        return None
    return (f"{table.name}: {counts[0]} rows in SQLite (sha256 {digests[0].hexdigest()[:16]}), {counts[1]} in "
            f"PostgreSQL (sha256 {digests[1].hexdigest()[:16]}); first difference: {first}")


def _pg_rows(conn: psycopg.Connection[Any], select: str, size: int) -> Iterator[tuple[Any, ...]]:
    # A server-side cursor: the table streams in batches, never whole into memory
    with conn.cursor(name="pg_copy_compare") as cursor:
        cursor.itersize = size
        cursor.execute(select)
        yield from cursor


def _canonical(row: tuple[Any, ...]) -> bytes:
    """A row as bytes both sides give alike: each value's kind, length and bytes."""
    out = bytearray()
    for value in row:
        if value is None:
            out += b"N"
        elif isinstance(value, int):
            out += b"I" + str(value).encode() + b";"
        elif isinstance(value, str):
            data = value.encode()
            out += b"T" + str(len(data)).encode() + b":" + data
        elif isinstance(value, bytes | bytearray | memoryview):
            data = bytes(value)
            out += b"B" + str(len(data)).encode() + b":" + data
        else:
            out += b"?" + repr(value).encode() + b";"
    return bytes(out)


def _where(table: Table, position: int, left: tuple[Any, ...] | None, right: tuple[Any, ...] | None) -> str:
    """Where two rows first differ, named without a value: the row's position, its rowid, the columns."""
    if left is None or right is None:
        return f"row {position} in {'PostgreSQL' if left is None else 'SQLite'} only"
    names = [column.name for column in table.columns]
    rowid = f" (rowid {left[names.index('rowid')]})" if "rowid" in names else ""
    differing = [name for name, a, b in zip(names, left, right, strict=True) if a != b]
    return f"row {position}{rowid}, column(s) {', '.join(differing)}"
