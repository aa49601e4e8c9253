"""SIGKILL the real daemon while 100 messages are in flight: every 250 survives, none twice."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import make_mail
from tests.smtp_helpers import configure
from twentyday.cli import cli
from twentyday.config import load
from twentyday.store.archive import Archive


def serve(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                            stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def wait_port(port: int) -> None:
    import socket

    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def pipeline_children(pid: int) -> list[int]:
    """The daemon's pipeline process (multiprocessing also starts a resource tracker)."""
    return [c for c in children(pid) if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def conversations(config: Path) -> list[str]:
    result = CliRunner().invoke(cli, ["--config", str(config), "search", "--json", "--limit", "100000"])
    return [str(r["conversation"]) for r in json.loads(result.output)]


def thread_names(config: Path, message_ids: list[str]) -> list[str]:
    """The conversations mails with these Message-IDs (and no References) are kept under: a keyed hash."""
    archive = Archive(load(config))
    try:
        return [f"thread:{archive.hashes.message_ref('email', message_id)}" for message_id in message_ids]
    finally:
        archive.close()


def test_sigkill_with_messages_in_flight(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    daemon = serve(config)
    wait_port(port)
    accepted: list[str] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        for n in range(100 // 10):
            message_id = f"<w{worker}-m{n}@crash.test>"
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                    client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                                    make_mail(message_id=message_id, body=f"in flight {worker} {n}"))
            except (smtplib.SMTPException, OSError):
                return  # the server died under us: this one never got its 250
            with lock:
                accepted.append(message_id)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(10)]
    for thread in threads:
        thread.start()
    while len(accepted) < 30:
        time.sleep(0.005)
    pipeline_processes = pipeline_children(daemon.pid)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(30)
    for thread in threads:
        thread.join(30)
    assert 30 <= len(accepted) < 100
    # The pipeline process dies with the daemon: no orphan goes on working the spool.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in pipeline_processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pipeline_processes)

    daemon = serve(config)
    wait_port(port)
    deadline = time.monotonic() + 60
    expected = set(thread_names(config, accepted))
    while time.monotonic() < deadline and not expected <= set(conversations(config)):
        time.sleep(0.2)
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(30) == 0
    archived = conversations(config)
    assert expected <= set(archived)
    assert len(archived) == len(set(archived))  # none twice
    result = CliRunner().invoke(cli, ["--config", str(config), "verify"])
    assert result.exit_code == 0, result.output


def test_the_daemon_survives_its_pipeline_process_being_killed(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    daemon = serve(config)
    try:
        wait_port(port)
        deadline = time.monotonic() + 20
        while not pipeline_children(daemon.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        [pipeline] = pipeline_children(daemon.pid)
        time.sleep(1.0)  # idle, waiting to be woken
        os.kill(pipeline, signal.SIGKILL)  # the OOM killer, say
        began = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:  # waking a dead worker must not block
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail(message_id="<after@kill>"))
        assert time.monotonic() - began < 5
        deadline = time.monotonic() + 30
        [after] = thread_names(config, ["<after@kill>"])
        while after not in conversations(config) and time.monotonic() < deadline:
            time.sleep(0.2)  # the daemon restarts its pipeline process, which takes the message
        assert after in conversations(config)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)
