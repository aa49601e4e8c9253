"""A 10,000-row multi-row INSERT into PostgreSQL: through the index's connection (store/postgres.py:
``?`` converted to ``$n`` once, psycopg's RawCursor) against psycopg's own ``%s`` path.

    .venv/bin/python bench/pg_insert.py [DSN]

Without DSN it starts a local cluster (scripts/local-pg, as the tests' does) and stops it after.
Rows are shaped like the store's: 6 columns (bigint, three text, bigint, a 32-byte bytea), so one
statement binds 60,000 parameters, under PostgreSQL's 65,535. Each run inserts into an emptied
table, in a transaction, as the writer does; the median of the runs is reported, in ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from twentyday.store.postgres import PgConnection, connect

REPO = Path(__file__).resolve().parent.parent
ROWS = 10_000
RUNS = 9
COLUMNS = "(id, custodian, conversation, sender, size, digest)"


def rows() -> list[tuple[Any, ...]]:
    return [(n, f"custodian-{n % 50}", f"{n:064x}", f"sender{n}@example.gov", n * 1000, os.urandom(32))
            for n in range(ROWS)]


def timed(run: Callable[[], None], reset: Callable[[], None]) -> list[float]:
    times = []
    for _ in range(RUNS):
        reset()
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    return times


def bench(dsn: str) -> None:
    data = rows()
    flat = [v for row in data for v in row]
    index = connect(dsn)
    index.execute("DROP TABLE IF EXISTS bench_row")
    index.execute("CREATE TABLE bench_row (id bigint PRIMARY KEY, custodian text, conversation text,"
                  " sender text, size bigint, digest bytea)")
    plain = psycopg.connect(dsn, autocommit=True)

    def reset() -> None:
        index.execute("TRUNCATE bench_row")

    question = f"INSERT INTO bench_row {COLUMNS} VALUES " + ",".join(["(?,?,?,?,?,?)"] * ROWS)
    percent = f"INSERT INTO bench_row {COLUMNS} VALUES " + ",".join(["(%s,%s,%s,%s,%s,%s)"] * ROWS)

    def through_index(conn: PgConnection = index) -> None:
        conn.execute("BEGIN")
        conn.execute(question, flat)
        conn.execute("COMMIT")

    def through_percent() -> None:
        with plain.transaction():
            plain.execute(percent.encode(), flat)

    def executemany_percent() -> None:
        with plain.transaction():
            plain.cursor().executemany(f"INSERT INTO bench_row {COLUMNS} VALUES (%s,%s,%s,%s,%s,%s)".encode(), data)

    results = {
        "PgConnection '?' -> $n, RawCursor": timed(through_index, reset),
        "psycopg %s (its own conversion)": timed(through_percent, reset),
        "psycopg executemany %s, one row each": timed(executemany_percent, reset),
    }
    assert index.execute("SELECT count(*) FROM bench_row").fetchone() == (ROWS,)
    print(f"{ROWS:,} rows x 6 columns, one statement, in a transaction; median of {RUNS} runs (min-max), ms")
    for name, times in results.items():
        print(f"  {name:40} {statistics.median(times):8.1f}   ({min(times):.1f}-{max(times):.1f})")
    index.close()
    plain.close()


def main() -> None:
    if len(sys.argv) > 1:
        bench(sys.argv[1])
        return
    with tempfile.TemporaryDirectory(prefix="pgbench-") as folder:
        started = subprocess.run([str(REPO / "scripts" / "local-pg"), "start", folder],
                                 capture_output=True, text=True, check=True)
        try:
            bench(next(line.removeprefix("dsn: ") for line in started.stdout.splitlines() if line.startswith("dsn: ")))
        finally:
            subprocess.run([str(REPO / "scripts" / "local-pg"), "stop", folder], check=False)


if __name__ == "__main__":
    main()
