"""Benchmark: the full alert evaluation over a large, alert-shaped index, beside a plain GROUP BY over it.

``build_index(path, records)`` makes a real archive (``init``) and fills its index with SQL:
about 200 custodians x 20 conversations, dated over a year, each conversation exported every
few weeks (so captures overlap, leave holes, and some records were captured again), a tenth
of the records forwarded mail with message ids and replies (some replying to mail never
archived), some late and some undated. Rows are inserted directly, not through the pipeline
(then ``capture_span``, which the writer keeps, is recomputed from them):
sealing a million records one by one takes far too long for a benchmark, and the evaluation
reads only the index's metadata (no sealed blob, no ledger entry of a record is read).
``bench/compliance.py`` times the ``compliance`` command (and the evaluation once more) on an
index of its own shape.

Then it times, in the same run:

- baseline: ``SELECT custodian, conversation, count(*) FROM record GROUP BY custodian, conversation``;
- alerts (first): the full evaluation as ``serve``'s timer runs it — read the capture spans,
  custodian facts and missing replies, evaluate, reconcile the alert table (every alert opened,
  ledgered, one signed checkpoint);
- alerts (again): the same a minute later, when almost nothing changes (the timer's usual case).

Target (issue 13): under 2 s for the evaluation at 1,000,000 records.
Usage: python bench/alerts.py [--records N]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twentyday.canonical import utc_key
from twentyday.config import load
from twentyday.initialise import init_archive
from twentyday.store.archive import Archive
from twentyday.store.coverage import rebuild_capture_spans

CUSTODIANS = 200
CONVERSATIONS = 20
#: The index's "now": a year of history ends here.
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles", "Europe/Berlin")


def build_index(path: Path, records: int, *, seed: int = 13) -> Path:
    """A real archive at ``path`` whose index holds ``records`` records (inserted with SQL); returns
    its config file."""
    init_archive(path, passphrase=None, demo=False, now=NOW - timedelta(days=400))
    config_path = path / "twentyday.toml"
    custodians = "".join(
        f'\n[[custodians]]\nid = "c{n:03d}"\nname = "Custodian {n}"\ntimezone = "{ZONES[n % len(ZONES)]}"\n'
        f'official = ["c{n:03d}@agency.example"]\npersonal = ["c{n:03d}@gmail.com"]\nlocale = "en_US"\n'
        for n in range(CUSTODIANS))
    config_path.write_text(config_path.read_text() + custodians)
    config = load(config_path)
    rng = random.Random(seed)
    per_conversation = max(1, records // (CUSTODIANS * CONVERSATIONS))
    conn = sqlite3.connect(config.data_dir / "index.db")
    conn.execute("PRAGMA journal_mode = WAL")
    record_rows, link_rows, capture_rows = [], [], []
    serial = 0
    for custodian in range(CUSTODIANS):
        cid = f"c{custodian:03d}"
        for conversation in range(CONVERSATIONS):
            mail = conversation >= CONVERSATIONS - 2  # a tenth of the conversations are mail threads
            name = f"thread:{custodian:03d}{conversation:02d}" if mail else f"Chat {conversation}"
            exports = rng.randint(3, 8)
            start = NOW - timedelta(days=365)
            step = timedelta(days=365) / per_conversation
            # Each export holds the messages up to its cut; some start after the last one ended (a hole).
            cuts = [*sorted(rng.sample(range(1, per_conversation), min(exports, per_conversation - 1))),
                    per_conversation]
            captures = []
            for number, cut in enumerate(cuts):
                received = start + step * cut + timedelta(days=rng.choice((2, 5, 10, 25)))
                capture_id = f"cap-{cid}-{conversation:02d}-{number}"
                captures.append((capture_id, cut, min(received, NOW)))
                capture_rows.append((capture_id, cid, "folder", "file from the watched folder", capture_id,
                                     _iso(min(received, NOW)), "email" if mail else "whatsapp", 1000, "blob-" +
                                     capture_id, "ingested", "", 0))
            holed = rng.random() < 0.3
            first_export = 0
            for n in range(per_conversation):
                while captures[first_export][1] <= n:
                    first_export += 1
                capture_id, _, received = captures[first_export]
                created = start + step * n
                undated = rng.random() < 0.002
                serial += 1
                record_id = f"rec-{serial:024d}"
                deadline = created + timedelta(days=20)
                late = received > deadline
                message_ref = f"m{serial}" if mail else ""
                replied = f"m{serial - 1}" if n and rng.random() < 0.9 else f"gone{serial}"
                reply_ref = replied if mail and n % 3 else ""
                record_rows.append((
                    record_id, f"dedup-{serial}", cid, "email" if mail else "whatsapp", "folder", name,
                    cid, "[]", "sent", None if undated else _iso(created), None if undated else utc_key(created),
                    None, _iso(received), None if undated else _iso(deadline), "calendar/20d",
                    "undated" if undated else "late" if late else "on_time",
                    None if undated else max(0, (received - deadline).days + 1) if late else 0, capture_id,
                    0, 0, 0, "[]", message_ref, reply_ref, f"pack-{capture_id}", "grs-6.1-011", "2033-12-31"))
                # Later exports repeat older history (unless this conversation has a hole before them).
                for later_id, _, later_received in captures[first_export + 1:first_export + 2]:
                    if not holed:
                        link_rows.append((record_id, later_id, _iso(later_received)))
    with conn:
        conn.executemany("INSERT INTO capture (id, custodian, channel, source_name, source_hash, received_at, parser, "
                         "size, raw_blob, state, reason, message_count) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", capture_rows)
        conn.executemany(f"INSERT INTO record VALUES ({', '.join('?' * 27)})", record_rows)
        conn.executemany("INSERT INTO record_capture VALUES (?,?,?)", link_rows)
        # What the writer keeps as each capture is written (derived from the rows above).
        rebuild_capture_spans(conn)
    conn.execute("ANALYZE")
    conn.close()
    return config_path


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def timed(action: object) -> float:
    began = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="twentyday-bench-") as scratch:
        began = time.perf_counter()
        config_path = build_index(Path(scratch) / "archive", args.records)
        built = time.perf_counter() - began
        archive = Archive(load(config_path))
        try:
            records = archive.conn.execute("SELECT count(*) FROM record").fetchone()[0]
            baseline = timed(lambda: archive.conn.execute(
                "SELECT custodian, conversation, count(*) FROM record GROUP BY custodian, conversation").fetchall())
            first_changes = []
            first = timed(lambda: first_changes.append(archive.evaluate_alerts(NOW)))
            again = timed(lambda: archive.evaluate_alerts(NOW + timedelta(minutes=1)))
            opened = archive.conn.execute("SELECT kind, count(*) FROM alert GROUP BY kind ORDER BY kind").fetchall()
        finally:
            archive.close()
    print(f"index: {records:,} records built in {built:.0f} s; alerts opened: "
          + ", ".join(f"{kind} {count}" for kind, count in opened))
    print(f"{'':<34}{'seconds':>10}{'x baseline':>12}")
    print(f"{'baseline GROUP BY':<34}{baseline:>10.2f}{1:>12.1f}")
    print(f"{'alerts, full evaluation (first)':<34}{first:>10.2f}{first / baseline:>12.1f}")
    print(f"{'alerts, full evaluation (again)':<34}{again:>10.2f}{again / baseline:>12.1f}")
    print("target: under 2 s each")


if __name__ == "__main__":
    main()
