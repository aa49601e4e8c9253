"""Benchmark: ``verify`` of the same chat archive with its index in SQLite and in PostgreSQL.

Builds two archives from the same drafts (CAPTURES chat exports of MESSAGES messages each, a 1 MiB
raw export each), one per database, then times ``verify_archive`` (as ``twentyday verify`` runs it:
its own read-only connection) RUNS times on each; on PostgreSQL also with the passes run one after
another on one connection (no exported snapshot) instead of on connections of their own.

    .venv/bin/python bench/verify_index.py [--captures 20] [--messages 1000]

Starts a local PostgreSQL cluster (tests/pg.py, as the tests do) and stops it after.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import pg as local_pg  # noqa: E402
from tests.pgarchive import make_pg_archive  # noqa: E402

from twentyday.config import Config, load  # noqa: E402
from twentyday.initialise import init_archive  # noqa: E402
from twentyday.store import verify as verify_module  # noqa: E402
from twentyday.store.archive import Archive  # noqa: E402
from twentyday.store.verify import verify_archive  # noqa: E402
from twentyday.store.writer import CaptureInput  # noqa: E402
from verify import drafts  # noqa: E402  (bench/verify.py, beside this file: the same messages)

RUNS = 3


def fill(config: Config, captures: int, messages: int) -> float:
    archive = Archive(config)
    began = time.perf_counter()
    try:
        for seed in range(captures):
            raw = os.urandom(1024 * 1024)
            archive.ingest(CaptureInput("jdoe", "cli", f"export-{seed}.zip", raw, "bench", datetime.now(UTC)),
                           drafts(seed, messages))
    finally:
        archive.close()
    return time.perf_counter() - began


def timed(config: Config) -> list[float]:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        report = verify_archive(config)
        times.append(time.perf_counter() - began)
        assert report.ok, report.problems[:3]
    return times


def serially(run: Callable[[], list[float]]) -> list[float]:
    exported = verify_module._export_snapshot
    verify_module._export_snapshot = lambda conn: None  # type: ignore[assignment]  # no snapshot: no threads
    try:
        return run()
    finally:
        verify_module._export_snapshot = exported


def line(name: str, times: list[float], records: int) -> str:
    best = min(times)
    return (f"{name:<44} best {best:6.2f} s  median {statistics.median(times):6.2f} s  "
            f"({records / best:,.0f} records/s)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--captures", type=int, default=20)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    records = args.captures * args.messages
    with tempfile.TemporaryDirectory(prefix="tdbench") as scratch:
        root = Path(scratch)
        init_archive(root / "lite", passphrase=None, demo=False, now=datetime.now(UTC))
        lite = load(root / "lite" / "twentyday.toml")
        cluster = local_pg.start(root / "pg")
        try:
            pg = load(make_pg_archive(root / "pgarch", cluster, now=datetime.now(UTC)))
            print(f"{records:,} records in {args.captures} captures; ingest: SQLite "
                  f"{fill(lite, args.captures, args.messages):.1f} s, PostgreSQL "
                  f"{fill(pg, args.captures, args.messages):.1f} s")
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            print(line("verify, index in SQLite", timed(lite), records))
            print(line("verify, index in PostgreSQL (parallel passes)", timed(pg), records))
            print(line("verify, index in PostgreSQL (serial passes)", serially(lambda: timed(pg)), records))
            print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
                  f"(after the ingests: {rss / 1024:.0f} MiB)")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
