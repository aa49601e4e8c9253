"""Reading a large result from the index in PostgreSQL a batch at a time (``db.stream``): verify's passes
over every ledger entry, record and sealed chunk keep only a batch in memory, not the whole table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from twentyday.store import db, postgres


@pytest.fixture
def numbers(pg_dsn: str) -> Iterator[postgres.PgConnection]:
    conn = postgres.connect(pg_dsn)
    conn.execute("CREATE TABLE numbers (n bigint PRIMARY KEY, word text NOT NULL, data bytea NOT NULL)")
    conn.execute("INSERT INTO numbers SELECT n, 'w' || n, '\\x00ff'::bytea FROM generate_series(1, 3000) AS n")
    yield conn
    conn.close()


def test_rows_come_through_a_server_side_cursor_a_batch_at_a_time(numbers: postgres.PgConnection) -> None:
    db.begin_read(numbers)
    cursor = db.stream(numbers, "SELECT n, word, data FROM numbers WHERE n > ? ORDER BY n", (0,), batch=100)
    rows = iter(cursor)
    assert next(rows) == (1, "w1", b"\x00\xff")  # binary results: the bytes themselves
    # The result waits on the server, not in this process: one cursor open there, 100 rows fetched.
    assert numbers.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE 'twentyday_stream_%'").fetchone() == (1,)
    assert [n for n, _, _ in rows] == list(range(2, 3001))
    assert [d[0] for d in cursor.description] == ["n", "word", "data"]
    cursor.close()
    numbers.execute("ROLLBACK")


def test_outside_a_transaction_stream_is_refused(numbers: postgres.PgConnection) -> None:
    with pytest.raises(ValueError, match="BEGIN first"):
        numbers.stream("SELECT n FROM numbers")


def test_a_second_connection_reads_the_exported_snapshot(numbers: postgres.PgConnection) -> None:
    """verify's passes on connections of their own see exactly what its first connection sees."""
    db.begin_read(numbers)
    snapshot = numbers.export_snapshot()
    writer = numbers.reopen()
    writer.execute("DELETE FROM numbers WHERE n > 10")  # committed after the snapshot was taken
    other = numbers.reopen()
    other.import_snapshot(snapshot)
    assert other.execute("SELECT count(*) FROM numbers").fetchone() == (3000,)
    assert writer.execute("SELECT count(*) FROM numbers").fetchone() == (10,)
    with pytest.raises(ValueError, match="not a snapshot id"):
        writer.import_snapshot("x'; DROP TABLE numbers; --")
    for conn in (other, writer):
        conn.close()
