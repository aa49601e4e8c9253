"""The attacker's tools for the spool's security tests: a real ``twentyday serve``, its
pipeline process stopped and continued at will, and what the disk's owner can read."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.smtp_helpers import configure
from twentyday import spool as spool_module
from twentyday.crypto import secrets
from twentyday.errors import TwentydayError


def add_custodian(archive_dir: Path, custodian_id: str) -> None:
    """A second custodian (same id length as jdoe's, so an edited header keeps its length)."""
    config = archive_dir / "twentyday.toml"
    config.write_text(config.read_text() + f'''
[[custodians]]
id = "{custodian_id}"
name = "Other Person"
timezone = "America/New_York"
official = ["other.person@agency.example"]
personal = ["other.person@gmail.com"]
''')
    inbox = archive_dir / "inbox" / custodian_id
    inbox.mkdir(mode=0o700, exist_ok=True)


@contextlib.contextmanager
def serving(archive_dir: Path, log: Path | None = None) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A real ``twentyday serve``; ``log``: a file that gets its stdout and stderr (else discarded)."""
    config, port = configure(archive_dir)
    output = log.open("wb") if log is not None else None
    daemon = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                              stdout=output, stderr=subprocess.STDOUT if output else subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("server did not start")
        yield daemon, port
    finally:
        for pid in pipeline_processes(daemon.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        if output is not None:
            output.close()


def pipeline_processes(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in found if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def stop_pipeline(daemon: subprocess.Popen[bytes]) -> list[int]:
    for _ in range(100):
        pids = pipeline_processes(daemon.pid)
        if pids:
            break
        time.sleep(0.05)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    return pids


def continue_pipeline(pids: list[int]) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGCONT)


def captures(data_dir: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(f"file:{data_dir / 'index.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM capture ORDER BY rowid")]
    finally:
        conn.close()


def wait_for(condition: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def what_the_disk_gives(data_dir: Path, canary: bytes) -> list[str]:
    """Everything the owner of the disk finds of ``canary`` with the files under ``data_dir``
    (the daemon's secrets included): in the raw bytes of any file, or decrypted from the spool
    with the daemon's spool key, as the earlier format sealed it or as this one does."""
    found = [f"{path}: in clear" for path in data_dir.rglob("*") if path.is_file() and canary in path.read_bytes()]
    spool = data_dir / "spool"
    key = secrets.load(data_dir).derived("spool")
    opener = spool_module.Spool(spool, key, writer=False)
    try:
        for segment in sorted(spool.glob("seg-*")):
            for item, _ in spool_module._read_segment(segment, functools.partial(opener._segment_key, segment)):
                if not item.damaged and canary in item.meta.encoded():
                    found.append(f"{segment.name}: item {item.id}'s metadata opened with its segment's key")
                sealed = opener.read_sealed(item)
                with contextlib.suppress(InvalidTag, ValueError):  # the earlier format: the daemon key, the id as AD
                    if canary in AESGCM(key).decrypt(sealed[:12], sealed[12:], item.id.encode()):
                        found.append(f"{segment.name}: item {item.id} opened with the daemon's spool key")
                with contextlib.suppress(TwentydayError, ValueError):  # this format: its segment key
                    if canary in opener.read(item):
                        found.append(f"{segment.name}: item {item.id} opened with its segment's key")
        for path in sorted((spool / "files").glob("*")):
            with contextlib.suppress(TwentydayError, OSError, ValueError, AttributeError):
                sealed_file, _ = opener._open_file(path)
                if canary in sealed_file.read_all():
                    found.append(f"files/{path.name}: opened with its key")
    finally:
        opener.close()
    return found
