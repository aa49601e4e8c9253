"""serve's scheduler: the worker evaluates what each batch touched, and every alert on its timer,
so a reminder opens on its day with no new input; a failing evaluation never stops intake."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import make_mail
from twentyday import config as config_module
from twentyday.pipeline.worker import Worker
from twentyday.spool import Spool, SpoolMeta
from twentyday.store.alerts import open_alerts
from twentyday.store.archive import Archive

RECEIVED = datetime(2026, 9, 6, 12, tzinfo=UTC)
CHAT = "".join(f"09/0{n}/26, 09:00 - Jane Doe: budget {n}\n" for n in range(1, 6)).encode()


def spool_items(archive_dir: Path, *items: tuple[str, bytes]) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    spool = Spool.open(config)
    for name, data in items:
        spool.put_bytes(data, SpoolMeta(name, "folder" if name.endswith(".txt") else "smtp", RECEIVED, "jdoe"))
    spool.close()


def test_a_reminder_opens_on_its_day_with_no_new_input(archive_dir: Path) -> None:
    spool_items(archive_dir, ("WhatsApp Chat with Budget Team.txt", CHAT),
                ("m.eml", make_mail(message_id="<reply@x.test>", date=RECEIVED - timedelta(days=1))))
    config = config_module.load(archive_dir / "twentyday.toml")
    archive = Archive(config, durable=False)
    spool = Spool.open(config, writer=False)
    clock = [RECEIVED + timedelta(minutes=1)]
    try:
        worker = Worker(archive, spool, evaluate_every=900.0, clock=lambda: clock[0])
        worker.run_once()
        kinds = {a.kind for a in open_alerts(archive.conn)}
        assert "deadline_approaching" not in kinds and "custodian_silent" not in kinds
        # Coverage ended 2026-09-05 09:00 in New York: due from 2026-09-20 00:00 EDT. The timer's pass
        # that day opens it, with nothing spooled.
        clock[0] = datetime(2026, 9, 20, 4, 1, tzinfo=UTC)
        worker.evaluate_due()
        [reminder] = [a for a in open_alerts(archive.conn) if a.kind == "deadline_approaching"]
        assert reminder.conversation == "Budget Team"
        assert reminder.opened_at == "2026-09-20T04:01:00+00:00"
        # Not again before evaluate_every has passed.
        clock[0] = datetime(2026, 10, 30, tzinfo=UTC)
        worker.evaluate_due()
        assert not any(a.kind == "custodian_silent" for a in open_alerts(archive.conn))
    finally:
        spool.close()
        archive.close()


def test_a_failing_evaluation_is_logged_and_intake_goes_on(archive_dir: Path, caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    spool_items(archive_dir, ("m.eml", make_mail(message_id="<one@x.test>", date=RECEIVED - timedelta(days=1))))
    config = config_module.load(archive_dir / "twentyday.toml")
    archive = Archive(config, durable=False)
    spool = Spool.open(config, writer=False)
    # The alert table gone: an on-time mail raises no alert, so only the evaluation needs it.
    archive.conn.execute("ALTER TABLE alert RENAME TO alert_elsewhere")

    try:
        worker = Worker(archive, spool, evaluate_every=900.0)
        with pytest.raises(sqlite3.OperationalError):
            archive.evaluate_alerts(RECEIVED)
        outcomes = worker.run_once()
        assert [o.state for o in outcomes] == ["ingested"]
        assert list(spool.pending()) == []
        assert "alert evaluation after a batch failed (OperationalError)" in caplog.text
    finally:
        spool.close()
        archive.close()
