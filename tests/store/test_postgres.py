"""The index's connection to PostgreSQL (store/postgres.py) and its side of the seam (store/db.py),
against a real PostgreSQL (tests/pg.py): the store's ``?`` SQL runs unchanged, values come back as
SQLite gives them, transactions are the store's own, ledger writers wait for each other, and a
database that would sort otherwise than SQLite is refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests import pg as local_pg
from twentyday.errors import ConfigError
from twentyday.store import db
from twentyday.store.postgres import LEDGER_LOCK_KEY, PgConnection, TextWithNul, connect


@pytest.fixture
def conn(pg_dsn: str) -> Iterator[PgConnection]:
    c = connect(pg_dsn)
    c.execute("CREATE TABLE t (id bigint PRIMARY KEY, name text, data bytea)")
    yield c
    c.close()


def test_positional_placeholders_bind_in_order(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (id, name, data) VALUES (?, ?, ?)", (1, "one", b"\x01"))
    conn.execute("INSERT INTO t (name, id, data) VALUES (?, ?, ?)", ("two", 2, b"\x02"))
    assert conn.execute("SELECT id, name, data FROM t WHERE name = ? OR id = ? ORDER BY id", ("two", 1)).fetchall() \
        == [(1, "one", b"\x01"), (2, "two", b"\x02")]


def test_numbered_placeholders_bind_as_sqlite_numbers_them(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (id, name) VALUES (?, ?), (?, ?)", (1, "a", 2, "b"))
    # "?1" twice (as store/disposition.py deletes a record's blind-word row); a bare "?" after "?N" is N + 1.
    assert conn.execute("SELECT id FROM t WHERE id = ?1 OR (id > ?1 AND name = ?)", (1, "b")).fetchall() \
        == [(1,), (2,)]


def test_a_statement_binds_as_many_parameters_as_the_protocol_allows(conn: PgConnection) -> None:
    rows = 65_535 // 3  # 21,845 rows, 65,535 parameters: the store's bulk inserts fill db.max_parameters
    assert db.max_parameters(conn) == 65_535
    values = [v for n in range(rows) for v in (n, f"name-{n}", n.to_bytes(4, "big"))]
    conn.execute("INSERT INTO t (id, name, data) VALUES " + ",".join(["(?,?,?)"] * rows), values)
    assert conn.execute("SELECT count(*), min(name), max(id) FROM t").fetchone() == (rows, "name-0", rows - 1)
    assert conn.execute("SELECT name, data FROM t WHERE id = ?", (12_345,)).fetchone() == ("name-12345", b"\x00\x0009")


def test_a_statement_without_parameters_is_sent_as_written(conn: PgConnection) -> None:
    # Its '?' and '%' are the literal's: no placeholder conversion, no %-escaping looks at it.
    assert conn.execute("SELECT '?', '%s', '100%', ':name'").fetchone() == ("?", "%s", "100%", ":name")
    # A script of several statements, as a migration is, runs whole.
    conn.execute("INSERT INTO t (id) VALUES (1); INSERT INTO t (id) VALUES (2) -- two rows")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_a_placeholder_inside_a_quoted_literal_is_refused_not_guessed(conn: PgConnection) -> None:
    with pytest.raises(ValueError, match="placeholder inside a quoted literal"):
        conn.execute("SELECT id FROM t WHERE name = 'why?' AND id = ?", (1,))
    with pytest.raises(ValueError, match="comment"):
        conn.execute("SELECT id FROM t WHERE id = ? -- is it?", (1,))
    # A literal without a placeholder in it is fine beside parameters (the store's '[]', '' ...).
    conn.execute("INSERT INTO t (id, name) VALUES (?, 'it''s')", (7,))
    assert conn.execute("SELECT name FROM t WHERE id = ? AND name != ''", (7,)).fetchone() == ("it's",)


def test_named_parameters_bind_by_name(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (id, name, data) VALUES (:id, :name, :data)", {"data": b"d", "name": "n", "id": 3})
    assert conn.execute("SELECT id, name, data FROM t WHERE id = :id AND :id > 0", {"id": 3}).fetchone() \
        == (3, "n", b"d")


def test_bytes_round_trip_unchanged(conn: PgConnection) -> None:
    every_byte = bytes(range(256)) * 4096  # 1 MiB, like a sealed chunk
    conn.execute("INSERT INTO t (id, data) VALUES (?, ?), (?, ?)", (1, every_byte, 2, b""))
    assert conn.execute("SELECT data FROM t ORDER BY id").fetchall() == [(every_byte,), (b"",)]
    assert conn.execute("SELECT id FROM t WHERE data = ?", (every_byte,)).fetchall() == [(1,)]


@pytest.mark.parametrize("value", [2**31, 2**31 + 7, -(2**31) - 1, 2**63 - 1, -(2**63), 0, 5])
def test_an_int_binds_as_bigint_whatever_its_size(conn: PgConnection, value: int) -> None:
    conn.execute("INSERT INTO t (id) VALUES (?)", (value,))
    assert conn.execute("SELECT id, pg_typeof(?)::text FROM t WHERE id = ?", (value, value)).fetchall() \
        == [(value, "bigint")]
    assert conn.execute("SELECT id FROM t WHERE id >= ? LIMIT ?", (value, 1)).fetchall() == [(value,)]


def test_none_binds_as_null(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (id, name, data) VALUES (?, ?, ?)", (1, None, None))
    assert conn.execute("SELECT name, data FROM t WHERE id = ?", (1,)).fetchone() == (None, None)
    assert conn.execute("SELECT coalesce(?, name, 'none') FROM t", (None,)).fetchone() == ("none",)
    assert conn.execute("SELECT count(*) FROM t WHERE name IS NOT DISTINCT FROM ?", (None,)).fetchone() == (1,)


def test_text_holding_u0000_is_refused_naming_the_parameter_not_its_value(conn: PgConnection) -> None:
    with pytest.raises(TextWithNul) as refused:
        conn.execute("INSERT INTO t (id, name) VALUES (?, ?)", (1, "secret\x00subject"))
    assert str(refused.value) == "parameter 2 holds the character U+0000 (NUL), which PostgreSQL's text cannot store"
    assert isinstance(refused.value, db.DATABASE_ERRORS) and isinstance(refused.value, db.ERRORS)
    assert not conn.in_transaction  # refused before it was sent: nothing was written
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    # In the store's transaction, as its bulk writes run: the transaction goes on, to be rolled back.
    conn.execute("BEGIN")
    with pytest.raises(TextWithNul, match="parameter 1 "):
        conn.executemany("INSERT INTO t (name, id) VALUES (?, ?)", [("fine", 1), ("\x00", 2)])
    assert conn.in_transaction
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


def test_a_row_reads_the_same_with_parameters_or_without(conn: PgConnection) -> None:
    # With parameters, results come in binary; without, as text (the simple protocol, for scripts).
    conn.execute("INSERT INTO t (id, name, data) VALUES (?, ?, ?)", (2**40, "name", b"\x00\xff"))
    query = "SELECT id, name, data, count(*) OVER (), id IS NULL, sum(id) OVER () FROM t"
    with_parameters = conn.execute(query + " WHERE id = ?", (2**40,)).fetchone()
    without = conn.execute(query).fetchone()
    assert with_parameters == without == (2**40, "name", b"\x00\xff", 1, False, 2**40)
    assert [type(v) for v in with_parameters] == [type(v) for v in without]
    # Unlike SQLite, sum() of integers is a Decimal (numeric): the store's SQL says what it wants.
    assert type(without[5]).__name__ == "Decimal"
    assert [column[0] for column in conn.execute(query + " WHERE id > ?", (0,)).description] \
        == ["id", "name", "data", "count", "?column?", "sum"]


def test_cursors_give_tuples_as_sqlite_s_do(conn: PgConnection) -> None:
    conn.executemany("INSERT INTO t (id, name) VALUES (?, ?)", [(n, f"n{n}") for n in range(5)])
    assert conn.executemany("UPDATE t SET name = ? WHERE id = ?", [("x", 1), ("y", 2), ("z", 99)]).rowcount == 2
    assert conn.executemany("UPDATE t SET name = :n WHERE id = :id", iter([{"n": "w", "id": 4}])).rowcount == 1
    assert conn.execute("DELETE FROM t WHERE id > ?", (2,)).rowcount == 2
    cursor = conn.execute("SELECT id, name FROM t ORDER BY id")
    assert cursor.fetchone() == (0, "n0")
    assert cursor.fetchmany(1) == [(1, "x")]
    assert list(cursor) == [(2, "y")]
    assert cursor.fetchone() is None
    assert conn.execute("SELECT id FROM t WHERE id = ?", (42,)).fetchall() == []
    # Two cursors read at once, as the store's nested loops do.
    outer = conn.execute("SELECT id FROM t ORDER BY id")
    assert [(row[0], conn.execute("SELECT name FROM t WHERE id = ?", row).fetchone()[0]) for row in outer] \
        == [(0, "n0"), (1, "x"), (2, "y")]


def test_transactions_are_opened_and_closed_by_the_store_s_sql(conn: PgConnection, pg_dsn: str) -> None:
    other = connect(pg_dsn)
    try:
        assert not conn.in_transaction
        conn.execute("BEGIN")
        assert conn.in_transaction
        conn.execute("INSERT INTO t (id) VALUES (?)", (1,))
        conn.execute("SAVEPOINT capture")
        conn.execute("INSERT INTO t (id) VALUES (?)", (2,))
        conn.execute("ROLLBACK TO capture")
        conn.execute("RELEASE capture")
        assert conn.in_transaction
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)  # not committed yet
        conn.execute("COMMIT")
        assert not conn.in_transaction
        assert other.execute("SELECT id FROM t").fetchall() == [(1,)]
        # Autocommit outside a transaction: each statement is committed as it runs.
        conn.execute("INSERT INTO t (id) VALUES (?)", (3,))
        assert not conn.in_transaction
        assert other.execute("SELECT count(*) FROM t").fetchone() == (2,)
    finally:
        other.close()


def test_an_error_inside_a_transaction_leaves_it_open_until_rolled_back(conn: PgConnection) -> None:
    conn.execute("INSERT INTO t (id) VALUES (?)", (1,))
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t (id) VALUES (?)", (2,))
    with pytest.raises(db.INTEGRITY_ERRORS) as taken:
        conn.execute("INSERT INTO t (id) VALUES (?)", (1,))
    assert isinstance(taken.value, psycopg.errors.UniqueViolation)
    assert isinstance(taken.value, db.DATABASE_ERRORS) and isinstance(taken.value, db.ERRORS)
    assert not isinstance(taken.value, db.OPERATIONAL_ERRORS)  # a taken key is not worth retrying
    assert conn.in_transaction  # unlike SQLite, the whole transaction is now failed ...
    with pytest.raises(psycopg.errors.InFailedSqlTransaction):
        conn.execute("SELECT 1")
    conn.execute("ROLLBACK")  # ... and ROLLBACK ends it
    assert not conn.in_transaction
    assert conn.execute("SELECT id FROM t").fetchall() == [(1,)]


def test_an_error_inside_a_savepoint_is_undone_by_rolling_back_to_it(conn: PgConnection) -> None:
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t (id) VALUES (?)", (1,))
    conn.execute("SAVEPOINT capture")
    with pytest.raises(db.INTEGRITY_ERRORS):
        conn.execute("INSERT INTO t (id) VALUES (?)", (1,))
    conn.execute("ROLLBACK TO capture")
    conn.execute("INSERT INTO t (id) VALUES (?)", (2,))
    conn.execute("COMMIT")
    assert conn.execute("SELECT id FROM t ORDER BY id").fetchall() == [(1,), (2,)]


def test_begin_write_makes_a_second_writer_wait_until_the_first_commits(conn: PgConnection, pg_dsn: str) -> None:
    conn.execute("CREATE TABLE ledger (seq bigint PRIMARY KEY)")
    conn.execute("INSERT INTO ledger (seq) VALUES (1)")
    second = connect(pg_dsn)
    seen: dict[str, object] = {}

    def write_next() -> None:
        db.begin_write(second)
        seen["locked_at"] = time.monotonic()
        # READ COMMITTED: the head read after the lock is the one the first writer committed.
        head = second.execute("SELECT max(seq) FROM ledger").fetchone()[0]
        second.execute("INSERT INTO ledger (seq) VALUES (?)", (head + 1,))
        second.execute("COMMIT")

    try:
        db.begin_write(conn)
        assert conn.in_transaction
        head = conn.execute("SELECT max(seq) FROM ledger").fetchone()[0]
        writer = threading.Thread(target=write_next)
        writer.start()
        time.sleep(0.5)
        assert "locked_at" not in seen  # still waiting for the first writer
        conn.execute("INSERT INTO ledger (seq) VALUES (?)", (head + 1,))
        committed_at = time.monotonic()
        conn.execute("COMMIT")
        writer.join(10)
        assert not writer.is_alive()
        locked_at = seen["locked_at"]
        assert isinstance(locked_at, float) and locked_at >= committed_at
        assert conn.execute("SELECT seq FROM ledger ORDER BY seq").fetchall() == [(1,), (2,), (3,)]
        # The lock is the transaction's: it went with COMMIT.
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone() == (0,)
    finally:
        second.close()


def test_a_writer_that_cannot_get_the_lock_fails_retryably_and_leaves_no_transaction(conn: PgConnection,
                                                                                    pg_dsn: str) -> None:
    second = connect(pg_dsn)
    try:
        db.begin_write(conn)
        second.execute("SET lock_timeout = '100ms'")
        with pytest.raises(db.OPERATIONAL_ERRORS) as waited:
            db.begin_write(second)
        assert isinstance(waited.value, psycopg.errors.LockNotAvailable)
        assert not second.in_transaction  # as when SQLite's BEGIN IMMEDIATE finds the file busy
        conn.execute("COMMIT")
        db.begin_write(second)
        second.execute("COMMIT")
    finally:
        second.close()


def test_a_read_only_server_is_an_operational_error_as_a_read_only_sqlite_file_is(conn: PgConnection) -> None:
    conn.execute("SET default_transaction_read_only = on")  # as on a standby
    with pytest.raises(db.OPERATIONAL_ERRORS) as refused:
        conn.execute("INSERT INTO t (id) VALUES (?)", (1,))
    assert isinstance(refused.value, psycopg.errors.ReadOnlySqlTransaction)  # an InternalError to psycopg


def test_the_error_tuples_keep_sqlite_s_classes_beside_psycopg_s() -> None:
    assert (sqlite3.Error, psycopg.Error) == db.ERRORS
    assert {sqlite3.OperationalError, psycopg.OperationalError} <= set(db.OPERATIONAL_ERRORS)
    assert (sqlite3.DatabaseError, psycopg.DatabaseError) == db.DATABASE_ERRORS
    assert (sqlite3.IntegrityError, psycopg.IntegrityError) == db.INTEGRITY_ERRORS


def test_the_ledger_lock_is_an_advisory_lock_on_the_named_key(conn: PgConnection) -> None:
    db.begin_write(conn)
    held = conn.execute("SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks"
                        " WHERE locktype = 'advisory' AND pid = pg_backend_pid()").fetchall()
    conn.execute("ROLLBACK")
    assert held == [(LEDGER_LOCK_KEY,)]
    assert conn.execute("SELECT current_setting('transaction_isolation')").fetchone() == ("read committed",)


def test_dialect_tells_the_two_databases_apart(conn: PgConnection) -> None:
    assert db.dialect(conn) == "postgresql"
    lite = sqlite3.connect(":memory:")
    try:
        assert db.dialect(lite) == "sqlite"
    finally:
        lite.close()


@pytest.mark.parametrize(("name", "options", "described"), [
    # libc's C.UTF-8: lower() of non-ASCII letters is not SQLite's
    ("other_c_utf8", "ENCODING 'UTF8' LOCALE 'C.UTF-8'",
     "collation 'C.UTF-8', character type 'C.UTF-8' and encoding UTF8"),
    # ICU sorts 'a' < 'B' < 'b'; SQLite sorts 'B' < 'a' < 'b'
    ("other_icu", "ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'",
     "the ICU locale 'en-US' and encoding UTF8"),
    # cannot hold every name a mail carries
    ("other_latin1", "ENCODING 'LATIN1' LOCALE 'C'", "collation 'C', character type 'C' and encoding LATIN1"),
])
def test_a_database_that_would_sort_otherwise_than_sqlite_is_refused(postgres: local_pg.LocalPG, name: str,
                                                                     options: str, described: str) -> None:
    postgres.psql(f"CREATE DATABASE {name} TEMPLATE template0 {options}")
    try:
        with pytest.raises(ConfigError) as refused:
            connect(postgres.dsn(name))
        assert str(refused.value).startswith(f'PostgreSQL database "{name}" has {described};')
        assert "the index needs collation and character type C (byte order, as SQLite sorts) and encoding UTF8" \
            in str(refused.value)
        # The refused connection was closed, not left open on the server.
        sessions = postgres.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}'")
        assert sessions.strip() == "0"
    finally:
        postgres.drop_database(name)


def test_a_c_collation_utf8_database_is_accepted(pg_dsn: str) -> None:
    c = connect(pg_dsn)
    try:
        # Byte order, as SQLite's: upper case before lower case, hex digits before letters.
        assert c.execute("SELECT x FROM (VALUES ('b'), ('B'), ('a'), ('1f'), ('é')) v(x) ORDER BY x").fetchall() \
            == [("1f",), ("B",), ("a",), ("b",), ("é",)]
        assert c.execute("SELECT lower(?)", ("ÉA",)).fetchone() == ("Éa",)  # ASCII only, as SQLite's lower()
    finally:
        c.close()


def test_the_sqlite_index_never_imports_psycopg() -> None:
    # psycopg takes about 150 ms to import: a CLI on an archive kept in SQLite should not pay it.
    code = (
        "import sqlite3, sys\n"
        "from twentyday.store import db, schema\n"
        # Every entry point of the daemon and the CLI: a module that reads db's error tuples at import
        # (rather than when an error is caught) would import psycopg here.
        "import twentyday.cli, twentyday.daemon, twentyday.pipeline.worker, twentyday.status\n"
        "conn = sqlite3.connect(':memory:', isolation_level=None)\n"
        "assert db.dialect(conn) == 'sqlite'\n"
        "db.begin_write(conn); conn.execute('COMMIT')\n"
        "assert db.max_parameters(conn) > 0\n"
        "print('psycopg' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"
