"""Shared test helpers: a real archive in a temporary directory, real e-mail bytes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest

from twentyday import config as config_module
from twentyday.initialise import init_archive
from twentyday.store.archive import Archive

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def make_mail(
    *,
    sender: str = "Jane Doe <jane.doe@gmail.com>",
    to: str = "counterpart@partner.example",
    cc: str = "",
    date: datetime | None = NOW - timedelta(days=3),
    subject: str = "Meeting notes",
    body: str = "We agreed on the pelican schedule.",
    message_id: str = "<m1@example.test>",
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if date is not None:
        message["Date"] = format_datetime(date)
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    if attachment:
        message.add_attachment(attachment[1], maintype="application", subtype="octet-stream",
                               filename=attachment[0])
    return bytes(message)


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    """A fresh archive made by the same code as 'twentyday init --no-passphrase'."""
    init_archive(tmp_path / "arch", passphrase=None, demo=False, now=NOW)
    return tmp_path / "arch"


@pytest.fixture
def archive(archive_dir: Path) -> Iterator[Archive]:
    opened = Archive(config_module.load(archive_dir / "twentyday.toml"))
    yield opened
    opened.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The corpus test's undated records, at the end of every run that read the corpus (CI's log included).

    ``tests/pipeline/test_corpus.py`` fills ``UNDATED`` (export -> undated records) as it reads each
    real export; issue 15 asks that count be printed, not only asserted.
    """
    import sys

    corpus = next((m for name, m in sys.modules.items() if name.endswith("test_corpus") and hasattr(m, "UNDATED")),
                  None)
    undated: dict[str, int] = getattr(corpus, "UNDATED", {})
    if not undated:
        return
    with_undated = {name: count for name, count in sorted(undated.items()) if count}
    terminalreporter.section("undated records in the tests/data corpus")
    terminalreporter.write_line(f"{sum(with_undated.values())} undated records in {len(with_undated)} of "
                                f"{len(undated)} exports read")
    for name, count in with_undated.items():
        terminalreporter.write_line(f"  {count:>4}  {name}")
