"""A real archive with alert sinks configured, and helpers to open alerts in it."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.chatgen import write_export
from twentyday import config as config_module
from twentyday.initialise import init_archive
from twentyday.pipeline import process as pipeline
from twentyday.store import outbox
from twentyday.store.alerts import raise_alert
from twentyday.store.archive import Archive

NOW = datetime(2026, 10, 30, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_archive(tmp_path: Path, extra: str) -> Path:
    """``twentyday init`` and ``extra`` TOML appended to its config; returns the config's path."""
    init_archive(tmp_path / "arch", passphrase=None, demo=False, now=NOW)
    config = tmp_path / "arch" / "twentyday.toml"
    with config.open("a") as handle:
        handle.write("\n" + extra)
    return config


def secret_file(path: Path, text: str) -> Path:
    path.write_text(text + "\n")
    path.chmod(0o600)
    return path


def open_alert(archive: Archive, kind: str, custodian: str, conversation: str, detail: str,
               at: datetime = NOW) -> int:
    """Open (or bump) an alert the way ingest does: in a transaction of its own, then a signed checkpoint."""
    with outbox.change(archive.conn, archive.secrets.signing_key, at.isoformat()):
        raise_alert(archive.conn, kind, custodian, conversation, detail, at)
    row = archive.conn.execute("SELECT id FROM alert WHERE kind = ? AND custodian = ? AND conversation = ? "
                               "AND resolved_at IS NULL", (kind, custodian, conversation)).fetchone()
    return int(row[0])


def ingest_whatsapp(archive: Archive, tmp_path: Path, name: str = "WhatsApp Chat with Budget team.txt",
                    count: int = 3) -> str:
    """A real WhatsApp export for jdoe (13 Oct 2026 from 08:00 New York time); returns its conversation."""
    path = write_export(tmp_path / name, count)
    outcome = pipeline.process(archive, pipeline.Item(path.name, "cli", NOW, path=path, custodian_id="jdoe"))
    assert outcome.state == "ingested", outcome
    return str(archive.conn.execute("SELECT conversation FROM record WHERE capture_id = ?",
                                    (outcome.capture_id,)).fetchone()[0])


class Clock:
    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[Callable[[str], Archive]]:
    archives: list[Archive] = []

    def make(extra: str) -> Archive:
        archive = Archive(config_module.load(make_archive(tmp_path, extra)))
        archives.append(archive)
        return archive

    yield make
    for archive in archives:
        archive.close()
