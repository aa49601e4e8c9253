"""``serve`` under a real NOTIFY_SOCKET: READY=1, STATUS=, WATCHDOG=1, and no pings from a wedged worker.

The test plays systemd's part: it binds the datagram socket (an abstract one, '@', as
systemd's own is not), starts ``twentyday serve`` as a subprocess with NOTIFY_SOCKET and a
one-second WATCHDOG_USEC, and reads what arrives. Then it stops the pipeline process with
SIGSTOP, as a deadlock or an endless parse would, and sees the pings stop within the
watchdog period (systemd would restart the service); SIGCONT, and they come back.
"""

from __future__ import annotations

import os
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.conftest import make_mail
from tests.smtp_helpers import configure
from tests.system.test_smtp_crash import pipeline_children

WATCHDOG_SECONDS = 1.0


class FakeSystemd:
    """The receiving end of sd_notify: every datagram, with when it arrived."""

    def __init__(self) -> None:
        self.name = f"@twentyday-test-{uuid.uuid4().hex}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + self.name[1:])
        self._socket.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._done.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            with self._lock:
                self.messages.append((time.monotonic(), data.decode()))

    def lines(self, since: float = 0.0) -> list[tuple[float, str]]:
        with self._lock:
            return [(at, line) for at, text in self.messages if at >= since for line in text.split("\n")]

    def pings(self, since: float = 0.0, until: float = float("inf")) -> list[float]:
        return [at for at, line in self.lines(since) if line == "WATCHDOG=1" and at <= until]

    def wait_for(self, found: Callable[[str], bool], timeout: float, since: float = 0.0) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in self.lines(since):
                if found(line):
                    return at, line
            time.sleep(0.05)
        raise AssertionError(f"not sent in {timeout} s; got {[line for _, line in self.lines(since)]}")

    def close(self) -> None:
        self._done.set()
        self._thread.join(2)
        self._socket.close()


def test_serve_tells_systemd_ready_status_and_stops_pinging_when_the_worker_is_wedged(
        archive_dir: Path, tmp_path: Path) -> None:
    config, port = configure(archive_dir)
    systemd = FakeSystemd()
    log_file = (tmp_path / "serve.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "twentyday", "--config", str(config), "serve"], stderr=log_file,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "NOTIFY_SOCKET": systemd.name,
             "WATCHDOG_USEC": str(int(WATCHDOG_SECONDS * 1_000_000))})
    try:
        ready_at, _ = systemd.wait_for(lambda line: line == "READY=1", timeout=90)
        # Ready means intake is up: the SMTP port answers, the pipeline is running.
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert pipeline_children(daemon.pid)
        ready = dict(line.split("=", 1) for _, line in systemd.lines() if "=" in line)
        assert ready["MAINPID"] == str(daemon.pid)
        assert ready["STATUS"] == "0 item(s) in the spool, 0 open alert(s), last capture none yet"

        # A mail arrives: the status says when (it is refreshed every few seconds).
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                            make_mail(message_id="<notify-1@test>", body="for the status line"))
        _, status = systemd.wait_for(lambda line: line.startswith("STATUS=") and "last capture 20" in line,
                                     timeout=30, since=ready_at)
        assert status.startswith("STATUS=0 item(s) in the spool, 0 open alert(s), last capture 20")

        # Pings every half period while the worker makes progress.
        start = time.monotonic()
        time.sleep(3 * WATCHDOG_SECONDS)
        pings = systemd.pings(since=start)
        assert len(pings) >= 4, pings
        assert max(b - a for a, b in zip([start, *pings], [*pings, time.monotonic()], strict=True)) \
            < 2 * WATCHDOG_SECONDS

        # Wedge the worker: the pings stop within one watchdog period, and systemd is told why.
        (worker,) = pipeline_children(daemon.pid)
        os.kill(worker, signal.SIGSTOP)
        stopped_at = time.monotonic()
        stall_at, stall = systemd.wait_for(lambda line: line.startswith("STATUS=pipeline: no progress"),
                                           timeout=10, since=stopped_at)
        time.sleep(3 * WATCHDOG_SECONDS)
        after = systemd.pings(since=stopped_at)
        assert all(at < stopped_at + WATCHDOG_SECONDS for at in after), (after, stopped_at)
        assert not systemd.pings(since=stall_at), "a ping came after the daemon saw the stall"
        assert daemon.poll() is None  # the daemon itself is fine: systemd decides, by the missing pings

        # Unwedge it: the pings resume.
        os.kill(worker, signal.SIGCONT)
        resumed_at = time.monotonic()
        systemd.wait_for(lambda line: line == "WATCHDOG=1", timeout=5, since=resumed_at)

        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(60) == 0
        systemd.wait_for(lambda line: line == "STOPPING=1", timeout=5, since=resumed_at)
    finally:
        if daemon.poll() is None:
            for child in pipeline_children(daemon.pid):
                os.kill(child, signal.SIGCONT)
            daemon.kill()
            daemon.wait(10)
        systemd.close()
        log_file.close()
    logged = (tmp_path / "serve.log").read_text()
    assert "withholding the watchdog ping" in logged
    assert "the pipeline is making progress again; watchdog pings resume" in logged
    assert "Traceback" not in logged
    assert stall.startswith("STATUS=pipeline: no progress for ")
