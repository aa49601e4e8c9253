"""SIGKILL a real ingest process at several points: all of a capture or none of it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from twentyday.cli import cli
from twentyday.config import load
from twentyday.store.archive import Archive

WORKER = Path(__file__).with_name("ingest_worker.py")
MESSAGES = 20000
RAW_MB = 24


def start_worker(config: Path, seed: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen([sys.executable, str(WORKER), str(config), seed, str(MESSAGES), str(RAW_MB)],
                            stdout=subprocess.PIPE, text=True, env=env)


def counts(config: Path, seed: str) -> tuple[int, int]:
    archive = Archive(load(config))
    try:
        captures = archive.conn.execute("SELECT count(*) FROM capture WHERE source_name = ?",
                                        (f"export-{seed}.txt",)).fetchone()[0]
        records = archive.conn.execute("SELECT count(*) FROM record WHERE conversation = ?",
                                       (f"chat {seed}",)).fetchone()[0]
        return captures, records
    finally:
        archive.close()


def verify_ok(config: Path) -> bool:
    result = CliRunner().invoke(cli, ["--config", str(config), "verify"])
    return result.exit_code == 0


def test_sigkill_mid_ingest_leaves_all_or_nothing(archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    # Time one full ingest, so the kills land at known fractions of it.
    worker = start_worker(config, "timing")
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "started"
    began = time.monotonic()
    assert worker.wait(timeout=300) == 0
    duration = time.monotonic() - began
    assert counts(config, "timing") == (1, MESSAGES)

    outcomes = []
    for n, fraction in enumerate((0.1, 0.35, 0.6, 0.85, 0.98)):
        seed = f"kill{n}"
        worker = start_worker(config, seed)
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "started"
        time.sleep(duration * fraction)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=60)
        captures, records = counts(config, seed)
        assert (captures, records) in {(0, 0), (1, MESSAGES)}, f"partial capture after kill at {fraction}"
        outcomes.append(captures)
        assert verify_ok(config), f"verify failed after kill at {fraction}"
    assert 0 in outcomes  # at least one kill really interrupted an ingest

    # The interrupted items can be ingested again and then exist exactly once.
    worker = start_worker(config, "kill0")
    assert worker.wait(timeout=300) == 0
    assert counts(config, "kill0") == (1, MESSAGES)
    assert verify_ok(config)


def test_verify_beside_captures_committing_reports_no_false_problems(archive_dir: Path) -> None:
    # verify runs while the daemon writes (the daily timer): its reads must see one state.
    config = archive_dir / "twentyday.toml"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writer = subprocess.Popen([sys.executable, str(WORKER), str(config), "busy", "300", "0", "400"],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "started"
        reports: list[dict[str, object]] = []
        # Until the writer has committed something verify saw (a loaded machine may run many verifies
        # before its first commit), and at most 60 s.
        give_up = time.monotonic() + 60
        while writer.poll() is None and time.monotonic() < give_up and (
                len(reports) < 25 or len({r["ledger_entries"] for r in reports}) < 2):
            result = CliRunner().invoke(cli, ["--config", str(config), "verify", "--json"])
            reports.append(json.loads(result.output))
        assert len(reports) >= 3, "the writer finished before verify could run beside it"
        assert [r["problems"] for r in reports if not r["ok"]] == []
        assert len({r["ledger_entries"] for r in reports}) > 1  # it really ran while entries were added
    finally:
        writer.kill()
        writer.wait()
    assert verify_ok(config)
