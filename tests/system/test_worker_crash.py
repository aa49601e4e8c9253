"""SIGKILL the real daemon while it ingests a large export; the restart finishes it, once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from tests.chatgen import write_export
from twentyday.cli import cli
from twentyday.config import load
from twentyday.store.archive import Archive

MESSAGES = 60_000


def serve(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def counts(config: Path) -> tuple[int, int, int]:
    archive = Archive(load(config))
    try:
        return (archive.conn.execute("SELECT count(*) FROM capture").fetchone()[0],
                archive.conn.execute("SELECT count(*) FROM record").fetchone()[0],
                archive.conn.execute("SELECT count(DISTINCT dedup_key) FROM record").fetchone()[0])
    finally:
        archive.close()


def test_restart_after_sigkill_mid_ingest_finishes_with_no_duplicates(archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    inbox = load(config).folder_path / "jdoe"
    export = write_export(inbox / "WhatsApp Chat with Team.txt", MESSAGES)

    daemon = serve(config)
    deadline = time.monotonic() + 60
    while export.exists() and time.monotonic() < deadline:  # taken into the spool
        time.sleep(0.05)
    assert not export.exists()
    time.sleep(0.5)  # well inside the ingest of 60,000 messages
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(30)
    assert counts(config)[:2] in {(0, 0), (1, MESSAGES)}
    spooled = list((archive_dir / "data" / "spool" / "files").glob("*"))

    daemon = serve(config)
    deadline = time.monotonic() + 120
    while counts(config)[1] < MESSAGES and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    assert daemon.stderr is not None
    assert "Traceback" not in daemon.stderr.read()
    assert counts(config) == (1, MESSAGES, MESSAGES)
    assert spooled, "the kill should have found the item still in the spool"
    assert not list((archive_dir / "data" / "spool" / "files").glob("*"))
    result = CliRunner().invoke(cli, ["--config", str(config), "verify"])
    assert result.exit_code == 0, result.output


def test_a_pipeline_process_whose_daemon_is_already_gone_does_not_run(archive_dir: Path) -> None:
    import multiprocessing

    from twentyday.pipeline.worker import worker_process

    context = multiprocessing.get_context("spawn")
    reader, _writer = multiprocessing.Pipe(duplex=False)
    # A parent pid that is not ours: what the child sees when the daemon died before the
    # child could ask the kernel to kill it with the daemon.
    child = context.Process(target=worker_process,
                            args=(str(archive_dir / "twentyday.toml"), reader, "info", 2**22 + 7))
    child.start()
    child.join(20)
    assert child.exitcode == 0
