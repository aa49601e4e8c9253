"""Nothing lost across a restart: an alert opened while its sink is down is delivered once it is up."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import make_mail
from tests.notify.conftest import free_port, make_archive, secret_file
from tests.notify.test_webhook_journal import SECRET, Receiver
from twentyday.cli import cli


def serve(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None
    return process.stderr.read()


def webhook_rows(config: Path) -> list[tuple[str, int, str]]:
    with sqlite3.connect(f"file:{config.parent / 'data' / 'index.db'}?mode=ro", uri=True) as conn:
        return [(s, a, e) for s, a, e in conn.execute(
            "SELECT state, attempts, last_error FROM delivery WHERE sink = 'webhook'")]


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_alert_opened_while_the_sink_is_down_is_delivered_once_after_a_restart(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: the sink is down
    secret = secret_file(tmp_path / "webhook.secret", SECRET)
    config = make_archive(tmp_path, f"""
[alerts.journal]
enabled = false

[alerts.webhook]
url = "http://127.0.0.1:{port}/hook"
secret_file = "{secret}"
timeout_seconds = 2
""")
    text = config.read_text().replace("silent_after_days = 30\n", "silent_after_days = 30\nretry_initial_seconds = 1\n"
                                      "retry_max_seconds = 2\n").replace("[smtp]\n", "[smtp]\nenabled = false\n")
    config.write_text(text)
    late = tmp_path / "late.eml"
    late.write_bytes(make_mail(date=datetime.now(UTC) - timedelta(days=40)))
    assert CliRunner().invoke(cli, ["--config", str(config), "ingest", "--custodian", "jdoe", str(late)]).exit_code == 0

    first = serve(config)
    try:
        wait_for(lambda: any(attempts >= 1 for _, attempts, _ in webhook_rows(config)))
    finally:
        log = stop(first)
    [(state, attempts, error)] = webhook_rows(config)
    assert (state, error) == ("pending", "connection_refused")
    assert "Traceback" not in log

    receiver = Receiver([], port)  # the sink is up
    try:
        second = serve(config)
        try:
            wait_for(lambda: webhook_rows(config)[0][0] == "delivered")
            time.sleep(3)  # a second send would come within a retry's wait
        finally:
            stop(second)
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
    assert len(receiver.requests) == 1
    _, body, signature_ok = receiver.requests[0]
    assert signature_ok
    assert json.loads(body)["data"]["alert"]["kind"] == "late_capture"
    [(state, attempts, error)] = webhook_rows(config)
    assert state == "delivered" and attempts >= 2
    assert CliRunner().invoke(cli, ["--config", str(config), "verify"]).exit_code == 0
