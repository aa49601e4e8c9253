"""What the attacks on ``verify`` share: a real ``twentyday serve`` whose log is the journal,
and the hand of someone who can write the archive's files (but holds no key pinned elsewhere)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from twentyday.cli import cli

#: Generous: the machine running the suite may be loaded.
WAIT_SECONDS = 120
HEAD_LINE = re.compile(r"ledger head (\d+):[0-9a-f]{64}:\S+:[A-Za-z0-9+/]{86}==$")


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def start_serve(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``twentyday serve`` as a process of its own; its stderr (the journal) goes to ``log``."""
    with log.open("wb") as stderr:
        return subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                                stdout=stderr, stderr=stderr,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def stop_serve(daemon: subprocess.Popen[bytes]) -> int:
    daemon.send_signal(signal.SIGTERM)
    try:
        return daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait(timeout=30)
        raise


def wait_for(condition: Callable[[], bool], what: str, daemon: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"twentyday serve exited with {daemon.returncode} before {what}")
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {WAIT_SECONDS} s: {what}")


def published_seqs(log: Path) -> set[int]:
    """The sequence numbers of the signed heads the daemon logged, each on a line of its own."""
    return {int(m.group(1)) for line in log.read_text(errors="replace").splitlines()
            if (m := HEAD_LINE.search(line))}


def index(archive_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(archive_dir / "data" / "index.db", isolation_level=None)


def last_checkpoint(archive_dir: Path) -> int:
    conn = index(archive_dir)
    try:
        return int(conn.execute("SELECT coalesce(max(seq), 0) FROM checkpoint").fetchone()[0])
    finally:
        conn.close()


def records(config: Path) -> list[dict[str, Any]]:
    code, output = run(config, "search", "--json")
    assert code == 0, output
    found: list[dict[str, Any]] = json.loads(output)
    return found


def truncate(archive_dir: Path, keep: int) -> None:
    """Remove every ledger entry after ``keep``, with the rows they account for, and put each alert and
    custodian back as its last remaining entry says: a clean cut, as an attacker with the files makes it
    (no key is needed for any of it)."""
    conn = index(archive_dir)
    try:
        conn.execute("BEGIN")
        restore: set[tuple[str, str]] = set()
        for kind, subject in conn.execute(
                "SELECT kind, subject FROM ledger WHERE seq > ? ORDER BY seq DESC", (keep,)).fetchall():
            if kind == "capture":
                blobs = "SELECT id FROM blob WHERE capture_id = ?"
                conn.execute(f"DELETE FROM chunk WHERE blob_id IN ({blobs})", (subject,))
                conn.execute("DELETE FROM blob WHERE capture_id = ?", (subject,))
                for table in ("keyslot", "event", "record_capture", "capture_span"):  # capture_span: derived
                    conn.execute(f"DELETE FROM {table} WHERE capture_id = ?", (subject,))
                conn.execute("DELETE FROM capture WHERE id = ?", (subject,))
            elif kind == "pack":
                ids = "SELECT id FROM record WHERE content_blob = ?"
                conn.execute(f"DELETE FROM attachment WHERE record_id IN ({ids})", (subject,))
                conn.execute(f"DELETE FROM record_terms WHERE record_id IN ({ids})", (subject,))
                conn.execute("DELETE FROM record WHERE content_blob = ?", (subject,))
            elif kind == "link":
                conn.execute("DELETE FROM record_capture WHERE record_id || '/' || capture_id = ?", (subject,))
            elif kind in {"alert_event", "delivery"}:  # the outbox: rows made after the cut go with it
                conn.execute(f"DELETE FROM {kind} WHERE id = ?", (int(subject),))
            elif kind in {"alert", "custodian"}:
                restore.add((kind, subject))
        conn.execute("DELETE FROM ledger WHERE seq > ?", (keep,))
        conn.execute("DELETE FROM checkpoint WHERE seq > ?", (keep,))
        for kind, subject in restore:
            row = conn.execute("SELECT payload FROM ledger WHERE kind = ? AND subject = ? ORDER BY seq DESC "
                               "LIMIT 1", (kind, subject)).fetchone()
            key = "id"
            conn.execute(f"DELETE FROM {kind} WHERE {key} = ?", (int(subject) if kind == "alert" else subject,))
            if row is not None:
                values = json.loads(row[0])[kind]
                conn.execute(f"INSERT INTO {kind} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                             list(values.values()))
        conn.execute("COMMIT")
    finally:
        conn.close()
