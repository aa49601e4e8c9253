"""Issue 12, item 2: the archive cannot be cut short or rolled back behind the daemon's back.

A real ``twentyday serve`` archives a mail on time, then a late one (which raises
``late_capture``); its log — the journal, outside the archive — carries the signed head
after each batch. The attacker owns the archive's files but no key pinned elsewhere:

- truncation: the newest capture's rows and ledger entries are removed (and its alert), a
  clean cut that plain ``verify`` cannot tell from an archive that never got the mail;
- rollback: an earlier copy of ``index.db`` (a backup taken between the mails) is put back.

``verify --head <the daemon's log>`` must fail on both (exit 5), naming the published head
the archive no longer contains. Before this issue the head was logged only hourly, unsigned
in the log, and ``verify`` had no ``--head``: both attacks passed.
"""

from __future__ import annotations

import json
import shutil
import smtplib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import make_mail
from tests.security.verify_attacks import (
    last_checkpoint,
    published_seqs,
    records,
    run,
    start_serve,
    stop_serve,
    truncate,
    wait_for,
)
from tests.smtp_helpers import configure
from twentyday.initialise import init_archive


@dataclass(frozen=True)
class Served:
    archive: Path
    log: Path
    backup: Path
    #: The checkpoint the daemon published once the first (on-time) mail was committed.
    first_head: int


def deliver(port: int, mail: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        assert client.sendmail("jane.doe@gmail.com", ["records@agency.example"], mail) == {}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("served")
    now = datetime.now(UTC)
    init_archive(root / "arch", passphrase=None, demo=False, now=now)
    config, port = configure(root / "arch")
    log = root / "serve.log"
    daemon = start_serve(config, log)
    try:
        wait_for(lambda: _listening(port), "listening", daemon)
        deliver(port, make_mail(date=now - timedelta(days=1), message_id="<on-time@x>", body="on time"))
        wait_for(lambda: len(records(config)) == 1 and last_checkpoint(root / "arch") in published_seqs(log),
                 "the first mail archived and its head published", daemon)
        first_head = last_checkpoint(root / "arch")
        backup = root / "index.db.backup"
        source = sqlite3.connect(root / "arch" / "data" / "index.db")
        target = sqlite3.connect(backup)
        source.backup(target)  # what a nightly backup, or the attacker's own copy, holds
        source.close()
        target.close()
        deliver(port, make_mail(date=now - timedelta(days=40), message_id="<late@x>", body="late"))
        wait_for(lambda: len(records(config)) == 2 and last_checkpoint(root / "arch") in published_seqs(log),
                 "the late mail archived and its head published", daemon)
    finally:
        assert stop_serve(daemon) == 0, log.read_text(errors="replace")
    yield Served(root / "arch", log, backup, first_head)


def _listening(port: int) -> bool:
    try:
        smtplib.SMTP("127.0.0.1", port, timeout=5).quit()
    except OSError:
        return False
    return True


def copy_of(served: Served, tmp_path: Path) -> Path:
    archive = tmp_path / "arch"
    shutil.copytree(served.archive, archive)
    return archive


def test_truncating_the_newest_capture_fails_against_the_published_head(served: Served, tmp_path: Path) -> None:
    archive = copy_of(served, tmp_path)
    config = archive / "twentyday.toml"
    assert any(a["kind"] == "late_capture" for a in _alerts(config))

    truncate(archive, served.first_head)

    # A clean cut: the late record and its alert are gone, and the archive proves itself by itself.
    assert [r["status"] for r in records(config)] == ["on_time"]
    assert not any(a["kind"] == "late_capture" for a in _alerts(config))
    code, output = run(config, "verify")
    assert code == 0, output
    # The daemon's log, outside the archive, says more was committed.
    code, output = run(config, "verify", "--head", str(served.log))
    assert code == 5, output
    assert "truncated: published head" in output, output


def test_rolling_back_to_an_earlier_copy_fails_against_the_published_head(served: Served, tmp_path: Path) -> None:
    archive = copy_of(served, tmp_path)
    config = archive / "twentyday.toml"
    data = archive / "data"
    for name in ("index.db-wal", "index.db-shm"):
        (data / name).unlink(missing_ok=True)
    shutil.copyfile(served.backup, data / "index.db")

    assert len(records(config)) == 1
    code, output = run(config, "verify")
    assert code == 0, output
    code, output = run(config, "verify", "--head", str(served.log))
    assert code == 5, output
    assert "truncated: published head" in output, output


def test_the_head_verify_reports_is_the_one_the_daemon_published(served: Served, tmp_path: Path) -> None:
    archive = copy_of(served, tmp_path)
    config = archive / "twentyday.toml"
    code, output = run(config, "verify", "--json")
    assert code == 0, output
    head = json.loads(output)["head"]
    assert f"ledger head {head}" in served.log.read_text(), head
    # The string alone is a head to hold the archive to; so is the whole log.
    assert run(config, "verify", "--head", head)[0] == 0
    code, output = run(config, "verify", "--head", str(served.log))
    assert code == 0, output


def _alerts(config: Path) -> list[dict[str, object]]:
    code, output = run(config, "alerts", "--json")
    assert code == 0, output
    found: list[dict[str, object]] = json.loads(output)
    return found
