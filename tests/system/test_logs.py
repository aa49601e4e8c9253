"""Nothing leaked: message content never reaches the log, even at log_level = debug."""

from __future__ import annotations

import logging
import smtplib
from pathlib import Path

import pytest

from tests.conftest import make_mail
from tests.smtp_helpers import DaemonThread, configure
from twentyday import logs


def test_debug_logging_does_not_log_message_content(archive_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config, port = configure(archive_dir)
    config.write_text(config.read_text().replace('deadline_rule = "calendar"',
                                                 'deadline_rule = "calendar"\nlog_level = "debug"'))
    caplog.set_level(logging.DEBUG)
    logs.configure("debug")  # what 'twentyday serve' does with log_level = "debug"
    running = DaemonThread(config).start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                            make_mail(subject="Operation Kestrel", body="The kestrel budget is 4 million."))
    finally:
        running.stop()
    assert "committed" in caplog.text or "archived" in caplog.text or "SMTP" in caplog.text
    assert "kestrel" not in caplog.text.lower()
