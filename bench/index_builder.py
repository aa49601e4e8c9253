"""What the index benchmarks share: a real archive made with ``init`` and custodians added to its config,
the record and capture columns as the writer fills them, and a timer.

The benchmarks fill the index with SQL, not through the pipeline (sealing a million records one by
one takes far too long for a benchmark): the rows are what the writer would index (same columns,
same time formats), but nothing is sealed or ledgered, so ``verify`` would name every row; only
reads are measured with them.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from twentyday.initialise import init_archive

RECORD_COLUMNS = ("id", "dedup_key", "custodian", "platform", "channel", "conversation", "sender", "recipients",
                  "direction", "created_at", "created_utc", "time_reading", "captured_at", "deadline_at",
                  "deadline_rule", "status", "days_late", "capture_id", "has_attachments", "incomplete", "edited",
                  "flags", "message_ref", "reply_ref", "content_blob", "schedule", "retention")
CAPTURE_COLUMNS = ("id", "custodian", "channel", "source_name", "source_hash", "received_at", "parser", "size",
                   "raw_blob", "envelope_blob", "state", "reason", "first_at", "last_at", "exported_at",
                   "message_count", "parent_capture", "delivered_by", "origin_auth")
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Pacific/Honolulu")


def custodian_config(number: int) -> str:
    """A ``[[custodians]]`` block for custodian ``c{number:03d}``."""
    return (f'\n[[custodians]]\nid = "c{number:03d}"\nname = "Custodian {number}"\n'
            f'timezone = "{ZONES[number % len(ZONES)]}"\nofficial = ["c{number:03d}@agency.example"]\n'
            f'personal = ["c{number:03d}@gmail.example"]\nchat_names = ["Custodian {number}"]\n'
            'schedule = "grs-6.1-011"\n')


def new_archive(path: Path, custodians: int, now: datetime) -> Path:
    """A real, empty archive at ``path`` (``init``) whose config names ``custodians`` custodians: init's
    own (jdoe) and c001, c002, ...; returns its config file."""
    config_path = init_archive(path, passphrase=None, demo=False, now=now).config_path
    config_path.write_text(config_path.read_text() + "".join(custodian_config(n) for n in range(1, custodians)))
    return config_path


def built_or_kept(keep: Path | None, name: str, records: int, build: Callable[[Path, int], Path]) -> Path:
    """The config of the archive kept in ``keep`` (built there by this bench before), else of one
    ``build(folder, records)`` makes there (or in a temporary folder); prints which."""
    folder = keep or Path(tempfile.mkdtemp(prefix=f"twentyday-bench-{name}-"))
    config_path = folder / "archive" / "twentyday.toml"
    if config_path.exists():
        print(f"measuring the index kept in {folder}")
        return config_path
    began = time.perf_counter()
    config_path = build(folder / "archive", records)
    print(f"index of {records:,} records built in {time.perf_counter() - began:.1f} s (SQL, not the pipeline)")
    return config_path


def timed(action: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """The median wall time of ``repeat`` runs (after one warm-up run), and the last result."""
    result = action()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result
