"""Benchmark: ``verify`` throughput beside a plain SHA-256 pass over the same files.

Builds a throwaway archive (captures with large raw exports and many small
messages, like real chat exports), then times, in the same run:

- baseline: ``hashlib.sha256`` over every file under the data directory;
- twentyday: the full ``verify`` (chain, signatures, index ↔ ledger, every
  sealed chunk re-hashed).

Two archive shapes, because verify's cost has two parts: bytes (re-hashing
sealed chunks) and rows (comparing each record with its ledger entry):

- media-heavy: exports with photos and documents, where bytes dominate;
- text-heavy: text-only chat exports, where per-record rows dominate.

Target (issue 2): verify at least half the baseline's MB/s.
Usage: python bench/verify.py [--captures N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twentyday.config import load
from twentyday.crypto import secrets
from twentyday.initialise import init_archive
from twentyday.records import ParsedMessage
from twentyday.store.archive import Archive
from twentyday.store.verify import verify
from twentyday.store.writer import CaptureInput, RecordDraft


def drafts(seed: int, count: int) -> Iterator[RecordDraft]:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    for n in range(count):
        body = f"capture {seed} message {n}: the quarterly numbers look fine, see you at the meeting"
        message = ParsedMessage("whatsapp", f"chat {seed}", "Jane", start + timedelta(seconds=n), None, body)
        yield RecordDraft(message, "sent", False, ("jdoe", "whatsapp", str(seed), str(n)))


def sha256_files(folder: Path) -> tuple[int, float]:
    total = 0
    began = time.perf_counter()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
                total += len(chunk)
    return total, time.perf_counter() - began


def run(captures: int, raw_mb: int, messages: int) -> tuple[float, float, float, int]:
    """Returns (MB on disk, baseline seconds, verify seconds, ingested records/s)."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "bench"
        init_archive(root, passphrase=None, demo=False, now=datetime.now(UTC))
        config = load(root / "twentyday.toml")
        archive = Archive(config)
        began = time.perf_counter()
        for seed in range(captures):
            raw = os.urandom(raw_mb * 1024 * 1024)
            archive.ingest(CaptureInput("jdoe", "cli", f"export-{seed}.zip", raw, "bench", datetime.now(UTC)),
                           drafts(seed, messages))
        ingest_rate = int(captures * messages / (time.perf_counter() - began))
        archive.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        archive.close()

        baseline_bytes, baseline_seconds = sha256_files(config.data_dir)
        archive = Archive(config)
        began = time.perf_counter()
        report = verify(archive.conn, secrets.load(config.data_dir).verify_key)
        verify_seconds = time.perf_counter() - began
        archive.close()
        if not report.ok:
            raise SystemExit(f"verify failed: {report.problems[:3]}")
    return baseline_bytes / 1e6, baseline_seconds, verify_seconds, ingest_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--captures", type=int, default=8)
    args = parser.parse_args()
    shapes = {"media-heavy": (32, 1000), "text-heavy": (4, 10000)}
    print(f"{'archive':<13}{'MB':>6}{'records':>9}{'sha256 MB/s':>13}{'verify MB/s':>13}{'ratio':>7}"
          f"{'ingest rec/s':>14}")
    for name, (raw_mb, messages) in shapes.items():
        mb, baseline, verified, rate = run(args.captures, raw_mb, messages)
        ratio = baseline / verified
        print(f"{name:<13}{mb:>6.0f}{args.captures * messages:>9}{mb / baseline:>13.0f}{mb / verified:>13.0f}"
              f"{ratio:>7.2f}{rate:>14,}   target >= 0.50 {'met' if ratio >= 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
