"""verify hashes rows inside the database: PostgreSQL's text for a row's canonical JSON must give the
same bytes as Python's canonical_json (what the ledger committed to) and as SQLite's json_array, for
every value a row can hold: non-ASCII, quotes and backslashes, control characters, NULL, the largest
integers. A byte of difference would name every such record altered on one database only."""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

import pytest

from twentyday.canonical import canonical_json
from twentyday.store import postgres
from twentyday.store.verify import _pg_json_list, _pg_sha256, _sha256_text

ROWS: list[tuple[Any, ...]] = [
    ("plain", 0, None),
    ('Zoë "Z" O\'Brien \\ path/to', 2**63 - 1, "naïve café 😀 𝄞"),
    ("\x01\x08\t\n\x0c\r\x1f \x7f", -(2**63), "line\u2028sep\u2029par"),
    ("", -1, '["a","b"]'),
    (None, None, None),
]
COLUMNS = ("words", "number", "other")
TABLE = "CREATE TABLE t (words text, number bigint, other text, rowid bigint GENERATED ALWAYS AS IDENTITY)"


@pytest.mark.parametrize("row", ROWS, ids=range(len(ROWS)))
def test_a_row_hashed_in_postgresql_matches_python_and_sqlite(pg_dsn: str, row: tuple[Any, ...]) -> None:
    expected = hashlib.sha256(canonical_json(list(row))).hexdigest()

    lite = sqlite3.connect(":memory:")
    lite.create_function("sha256", 1, _sha256_text, deterministic=True)
    lite.execute("CREATE TABLE t (words TEXT, number INTEGER, other TEXT)")
    lite.execute("INSERT INTO t VALUES (?, ?, ?)", row)
    assert lite.execute(f"SELECT sha256(json_array({', '.join(COLUMNS)})) FROM t").fetchone()[0] == expected

    conn = postgres.connect(pg_dsn)
    try:
        conn.execute(TABLE)
        conn.execute("INSERT INTO t (words, number, other) VALUES (?, ?, ?)", row)
        line = _pg_json_list(COLUMNS)
        assert conn.execute(f"SELECT {line} FROM t").fetchone()[0] == canonical_json(list(row)).decode()
        assert conn.execute(f"SELECT {_pg_sha256(line)} FROM t").fetchone()[0] == expected
    finally:
        conn.close()


def test_rows_joined_in_postgresql_match_python(pg_dsn: str) -> None:
    """A pack's digest: its rows' lines joined by newlines in the order written (string_agg ORDER BY rowid)."""
    expected = hashlib.sha256(b"\n".join(canonical_json(list(row)) for row in ROWS)).hexdigest()
    conn = postgres.connect(pg_dsn)
    try:
        conn.execute(TABLE)
        conn.executemany("INSERT INTO t (words, number, other) VALUES (?, ?, ?)", ROWS)
        joined = f"string_agg({_pg_json_list(COLUMNS)}, chr(10) ORDER BY rowid)"
        assert conn.execute(f"SELECT {_pg_sha256(joined)} FROM t").fetchone()[0] == expected
    finally:
        conn.close()
