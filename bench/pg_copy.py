"""Benchmark: an archive's index copied into PostgreSQL (store/pg_copy.py), then compared with it.

Builds an archive from a generated WhatsApp export of ``--messages`` messages (or takes the index
file ``--index``), then, ``--rounds`` times for each variant, copies it into a new database of the
PostgreSQL server ``--dsn`` names and compares the two, each copy in a fresh child process so its
peak RSS (``ru_maxrss``) is its own. The variants: COPY's binary and text formats, each with the
indexes no constraint stands on built after the rows (pg_copy's choice) or kept as the rows go in.
Prints per run: rows, seconds, rows/s, the child's CPU seconds, its peak RSS, and the compare's
seconds and peak RSS (the best of the rounds is the figure to quote: the machine is shared).

A server to try it on: ``scripts/local-pg start DIR`` prints its dsn.

Usage: python bench/pg_copy.py --dsn DSN [--messages N | --index PATH] [--rounds N] [--variants ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_MESSAGES = 200_000
VARIANTS = ("binary", "text", "binary-keep-indexes", "text-keep-indexes")
# Copied from tests/chatgen.py (bench must not import tests): keep the two in step.
WORDS = ("budget", "meeting", "draft", "agenda", "minister", "call", "notes", "tomorrow", "report", "visit")
START = datetime(2026, 10, 13, 8, 0)


def android_line(n: int) -> str:
    at = START + timedelta(minutes=n)
    sender = "Jane Doe" if n % 3 else "Counterpart"
    words = " ".join(WORDS[(n * 7 + k) % len(WORDS)] for k in range(8))
    return f"{at:%d/%m/%Y, %H:%M} - {sender}: message {n} {words}\n"


def build_archive(root: Path, messages: int) -> Path:
    """A new archive holding one WhatsApp export of ``messages`` messages; its index file."""
    from twentyday import config as config_module
    from twentyday.initialise import init_archive
    from twentyday.pipeline import process as pipeline
    from twentyday.store.archive import INDEX_FILE, Archive

    logging.disable(logging.WARNING)
    export = root / "WhatsApp Chat with Bench.txt"
    with export.open("w", encoding="utf-8", buffering=1024 * 1024) as handle:
        for n in range(messages):
            handle.write(android_line(n))
    init_archive(root / "archive", passphrase=None, demo=False, now=datetime.now(UTC))
    config = config_module.load(root / "archive" / "twentyday.toml")
    with Archive(config) as archive:
        outcome = pipeline.process(archive, pipeline.Item(export.name, "cli", datetime.now(UTC), path=export,
                                                          custodian_id="jdoe"))
    if outcome.state != "ingested":
        raise SystemExit(f"the export was not ingested: {outcome.state}: {outcome.detail}")
    export.unlink()
    return config.data_dir / INDEX_FILE


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child(phase: str, index: Path, dsn: str, variant: str) -> dict[str, Any]:
    """One copy (``phase`` copy) or one compare, in this process; what it measured."""
    from twentyday.store import pg_copy

    pg_copy.COPY_FORMAT = variant.split("-")[0]
    pg_copy.REBUILD_INDEXES = not variant.endswith("keep-indexes")
    cpu, began = cpu_seconds(), time.perf_counter()
    if phase == "copy":
        rows = pg_copy.copy_index(index, dsn).total_rows
        differences: list[str] = []
    else:
        rows, differences = 0, pg_copy.compare_indexes(index, dsn)
    return {"rows": rows, "seconds": time.perf_counter() - began, "cpu_seconds": cpu_seconds() - cpu,
            "peak_rss_mb": peak_rss_mb(), "differences": differences}


def run_child(phase: str, index: Path, dsn: str, variant: str, *extra: str) -> dict[str, Any]:
    """``phase`` in a child process. The build too: Linux carries a process's peak RSS over fork and exec, so
    a parent that had built the archive would lend its peak to every child."""
    done = subprocess.run([sys.executable, __file__, "--phase", phase, "--index", str(index), "--dsn", dsn,
                           "--variants", variant, *extra], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the {phase} child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="a PostgreSQL server's dsn (its dbname is where the "
                        "bench's databases are created and dropped from)")
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--index", type=Path, help="copy this index file instead of building an archive")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--phase", choices=("build", "copy", "compare"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "build":
        print(json.dumps({"index": str(build_archive(args.index, args.messages))}))
        return
    if args.phase:
        print(json.dumps(child(args.phase, args.index, args.dsn, args.variants[0])))
        return

    import psycopg
    from psycopg import conninfo

    with tempfile.TemporaryDirectory(prefix="twentyday-bench-pgcopy-") as scratch:
        index = args.index
        if index is None:
            began = time.perf_counter()
            index = Path(run_child("build", Path(scratch), args.dsn, VARIANTS[0], "--messages",
                                   str(args.messages))["index"])
            print(f"archive of {args.messages} messages built in {time.perf_counter() - began:.1f} s; "
                  f"index {index.stat().st_size / 1e6:.0f} MB")
        name = f"pg_copy_bench_{os.getpid()}"
        target = conninfo.make_conninfo(args.dsn, dbname=name)
        for round_number in range(1, args.rounds + 1):
            for variant in args.variants:
                with psycopg.connect(args.dsn, autocommit=True) as admin:
                    admin.execute(f"DROP DATABASE IF EXISTS {name}")
                    admin.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
                try:
                    copied = run_child("copy", index, target, variant)
                    compared = run_child("compare", index, target, variant)
                finally:
                    with psycopg.connect(args.dsn, autocommit=True) as admin:
                        admin.execute(f"DROP DATABASE IF EXISTS {name}")
                equal = "equal" if not compared["differences"] else f"DIFFERENT: {compared['differences']}"
                print(f"round {round_number} {variant:<20} copy: {copied['rows']} rows in {copied['seconds']:.2f} s "
                      f"({copied['rows'] / copied['seconds']:,.0f} rows/s), cpu {copied['cpu_seconds']:.2f} s, "
                      f"peak RSS {copied['peak_rss_mb']:.0f} MB; compare: {compared['seconds']:.2f} s, "
                      f"peak RSS {compared['peak_rss_mb']:.0f} MB, {equal}", flush=True)


if __name__ == "__main__":
    main()
