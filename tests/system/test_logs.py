"""Nothing leaked: message content never reaches the log, even at log_level = debug.

The real ``twentyday serve`` runs as a process of its own (SMTP intake, spool, pipeline
process and its read-ahead helper all write to its stdout/stderr); a mail goes in over real
SMTP, and once its record is archived the daemon's whole output is searched for the mail's
words.
"""

from __future__ import annotations

import json
import os
import signal
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.conftest import make_mail
from tests.smtp_helpers import configure
from twentyday.cli import cli

#: Generous: the machine running the suite may be loaded.
START_SECONDS = 60
ARCHIVE_SECONDS = 120
#: Words of the mail that only its content holds: subject, body and the display names.
SECRET_WORDS = ("Quillmarsh", "Vexbrook", "Ostrelline", "Dunmorrow", "Tarnquist", "Wexhollow")


def wait_for_smtp(daemon: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"twentyday serve exited with {daemon.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"twentyday serve did not listen on port {port} within {START_SECONDS} s")


def wait_for_record(config: Path, daemon: subprocess.Popen[bytes]) -> dict[str, Any]:
    deadline = time.monotonic() + ARCHIVE_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"twentyday serve exited with {daemon.returncode} before archiving the mail")
        found = CliRunner().invoke(cli, ["--config", str(config), "search", "--json"])
        assert found.exit_code == 0, found.output
        records: list[dict[str, Any]] = json.loads(found.stdout)
        if records:
            return records[0]
        time.sleep(0.25)
    raise AssertionError(f"the mail was not archived within {ARCHIVE_SECONDS} s")


def test_debug_logging_does_not_log_message_content(archive_dir: Path, tmp_path: Path) -> None:
    config, port = configure(archive_dir)
    config.write_text(config.read_text().replace('deadline_rule = "calendar"',
                                                 'deadline_rule = "calendar"\nlog_level = "debug"'))
    assert 'log_level = "debug"' in config.read_text()
    mail = make_mail(sender="Jane Quillmarsh <jane.doe@gmail.com>",
                     to="Vexbrook Ostrelline <counterpart@partner.example>",
                     subject="Operation Dunmorrow",
                     body="The Tarnquist budget is 4 million; tell Wexhollow.")
    stdout_path, stderr_path = tmp_path / "serve.out", tmp_path / "serve.err"
    # Files, not pipes: a debug log that nobody reads while it runs must not fill a pipe and stall it.
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        daemon = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                                  stdout=stdout, stderr=stderr,
                                  env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        wait_for_smtp(daemon, port)
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            refused = client.sendmail("jane.doe@gmail.com", ["records@agency.example"], mail)
        assert refused == {}
        record = wait_for_record(config, daemon)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            returncode = daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait(timeout=30)
            raise
    output = stdout_path.read_text(errors="replace") + stderr_path.read_text(errors="replace")

    assert returncode == 0, output
    assert "Traceback" not in output
    # The daemon did log at debug, and logged the commit of this very capture: by its id, not its words.
    assert "DEBUG " in output, output
    assert f"ingested {record['capture_id']} (smtp)" in output, output
    leaked = [word for word in SECRET_WORDS if word.lower() in output.lower()]
    assert not leaked, f"message words in the daemon's output: {leaked}\n{output}"
