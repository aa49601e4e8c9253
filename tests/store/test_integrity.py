"""serve's own verify (store/integrity.py): what the integrity_failure alert says, and how it is raised.

The alert carries counts by a stable code and the head verified, never an object's id or a
difference's text; a repeat bumps the one alert; a failed run is logged and tried again.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import NOW, make_mail
from tests.indexdb import cut_off_index, open_index
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.errors import ConfigError
from twentyday.store.archive import Archive
from twentyday.store.integrity import IntegrityCheck, object_class, problem_code, summarise
from twentyday.store.verify import Problem, VerifyReport, verify_archive

HEAD = "7:" + "a" * 64 + ":2026-11-22T12:00:00+00:00:" + "A" * 86 + "=="


def test_detail_counts_problems_by_code_most_frequent_first_and_names_no_object() -> None:
    report = VerifyReport(problems=[
        Problem("altered", "record rec-8f4000e1046a289feb340e42", "index row differs from the ledger"),
        Problem("missing", "blob b0d2e7", "cap-1/raw: no sealed data"),
        Problem("altered", "record rec-2", "attachments differ from the ledger"),
        Problem("altered", "ledger entry 12", "pack b1: hash chain broken"),
    ], ledger_entries=40, head=HEAD)
    finding = summarise(report)
    assert finding.detail == "verify: 4 problem(s): 2 record_altered, 1 blob_missing, 1 ledger_entry_altered"
    assert finding.facts == {"problems": 4, "head": HEAD, "ledger_entries": 40,
                             "counts": {"blob_missing": 1, "ledger_entry_altered": 1, "record_altered": 2}}
    assert "rec-" not in finding.detail and "b0d2e7" not in json.dumps(finding.facts)


@pytest.mark.parametrize(("label", "kind", "code"), [
    ("index.db", "altered", "index_altered"),
    ("index", "altered", "index_altered"),
    ("secrets/ledger-signing.pub", "signature", "ledger_key_signature"),
    ("ledger entry 5", "chain", "ledger_entry_chain"),
    ("checkpoint 9", "signature", "checkpoint_signature"),
    ("published head 9", "truncated", "published_head_truncated"),
    ("capture cap-1", "unaccounted", "capture_unaccounted"),
    ("keyslot cap-1", "unaccounted", "keyslot_unaccounted"),
    ("link rec-1/cap-2", "altered", "link_altered"),
    ("attachment of rec-1", "unaccounted", "attachment_unaccounted"),
    ("search terms of rec-1", "missing", "search_terms_missing"),
    ("alert event 3", "altered", "alert_event_altered"),
    ("alert_event 3", "missing", "alert_event_missing"),
    ("alert 3", "missing", "alert_missing"),
    ("custodian jdoe", "altered", "custodian_altered"),
    ("escrow 4f2a", "altered", "escrow_altered"),
    ("disclosure d-1", "signature", "disclosure_signature"),
    ("delivery 4", "missing", "delivery_missing"),
    ("hold h-1", "altered", "hold_altered"),
    ("event ev-1", "missing", "event_missing"),
    ("something new 4", "odd kind!", "other_other"),  # a label verify may add later: counted, not shown
])
def test_every_object_verify_names_has_a_stable_code(label: str, kind: str, code: str) -> None:
    assert problem_code(Problem(kind, label, "")) == code


def ingest_one(archive_dir: Path) -> Path:
    config = archive_dir / "twentyday.toml"
    mail = archive_dir.parent / "on-time.eml"
    mail.write_bytes(make_mail())
    result = CliRunner().invoke(cli, ["--config", str(config), "ingest", "--custodian", "jdoe", str(mail)])
    assert result.exit_code == 0, result.output
    return config


def tamper(archive_dir: Path) -> str:
    """The disk's owner deletes the raw capture's sealed chunks and makes the record 'copied'."""
    conn = open_index(archive_dir)
    try:
        conn.execute("DELETE FROM chunk WHERE blob_id = (SELECT raw_blob FROM capture LIMIT 1)")
        conn.execute("UPDATE record SET status = 'copied'")
        return str(conn.execute("SELECT id FROM record").fetchone()[0])
    finally:
        conn.close()


def integrity_alerts(archive: Archive) -> list[dict[str, object]]:
    return [dict(zip(("id", "custodian", "conversation", "count", "detail", "facts", "severity"), row, strict=True))
            for row in archive.conn.execute(
                "SELECT id, custodian, conversation, count, detail, facts, severity FROM alert "
                "WHERE kind = 'integrity_failure'")]


def test_untouched_archive_passes_and_raises_nothing(archive_dir: Path) -> None:
    config = config_module.load(ingest_one(archive_dir))
    archive = Archive(config)
    try:
        check = IntegrityCheck(config, archive)
        assert check.run_once().ok
        assert integrity_alerts(archive) == []
        assert check.last_checkpoint.startswith("4:")  # the next run must still find it in the chain
        assert check.run_once().heads_checked == 1
    finally:
        archive.close()


def test_tampered_archive_raises_one_alert_whose_repeat_bumps_its_count(archive_dir: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    config = config_module.load(ingest_one(archive_dir))
    record_id = tamper(archive_dir)
    archive = Archive(config)
    try:
        check = IntegrityCheck(config, archive, clock=lambda: NOW)
        with caplog.at_level(logging.INFO, logger="twentyday.store.integrity"):
            assert not check.run_once().ok
            check.run_once()
        [alert] = integrity_alerts(archive)
        assert alert["severity"] == "critical" and (alert["custodian"], alert["conversation"]) == ("", "")
        assert alert["count"] == 2
        assert alert["detail"] == "verify: 2 problem(s): 1 blob_missing, 1 record_altered"
        facts = json.loads(str(alert["facts"]))
        assert facts["counts"] == {"blob_missing": 1, "record_altered": 1} and facts["problems"] == 2
        # Queued for the officers, and ledgered: verify still names the attack and only the attack.
        events = archive.conn.execute("SELECT event FROM alert_event WHERE alert_id = ?", (alert["id"],)).fetchall()
        assert events == [("opened",)]
    finally:
        archive.close()
    after = verify_archive(config)
    assert sorted(str(p).split(":")[0] + " " + object_class(p) for p in after.problems) == [
        "altered record", "missing blob"]
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["integrity check: verify: 2 problem(s): 1 blob_missing, 1 record_altered; integrity_failure "
                     "alert raised (run 'twentyday verify' for each object)"] * 2
    assert record_id not in caplog.text


def test_a_failed_run_is_logged_and_the_next_one_runs(archive_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = config_module.load(ingest_one(archive_dir))
    archive = Archive(config)
    stop = threading.Event()
    check = IntegrityCheck(config, archive)
    cut_off = cut_off_index(archive_dir)  # the archive's own connection keeps reading it
    failed = f"integrity check failed ({cut_off.error}); next in 0 s"
    thread = threading.Thread(target=check.run, args=(stop, 0.2, 0.0))
    try:
        with caplog.at_level(logging.INFO, logger="twentyday.store.integrity"):
            thread.start()
            for _ in range(100):
                if failed in caplog.text:
                    break
                stop.wait(0.05)
            cut_off.restore()
            for _ in range(200):
                if "integrity check: ok" in caplog.text:
                    break
                stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
        archive.close()
    assert failed in caplog.text
    assert "integrity check: ok, 4 ledger entries" in caplog.text
    assert not thread.is_alive()


@pytest.mark.parametrize(("value", "hours"), [("24", 24.0), ("0.25", 0.25), ("0", 0.0)])
def test_verify_every_hours_takes_whole_or_fractional_hours(archive_dir: Path, value: str, hours: float) -> None:
    path = archive_dir / "twentyday.toml"
    path.write_text(path.read_text().replace("[alerts]\n", f"[alerts]\nverify_every_hours = {value}\n"))
    assert config_module.load(path).verify_every_hours == hours


@pytest.mark.parametrize("value", ["-1", "true", '"daily"', "nan", "9000"])
def test_verify_every_hours_refuses_what_is_not_an_interval(archive_dir: Path, value: str) -> None:
    path = archive_dir / "twentyday.toml"
    path.write_text(path.read_text().replace("[alerts]\n", f"[alerts]\nverify_every_hours = {value}\n"))
    with pytest.raises(ConfigError, match=r"alerts\.verify_every_hours"):
        config_module.load(path)


def test_verify_every_hours_defaults_to_a_day(archive_dir: Path) -> None:
    assert config_module.load(archive_dir / "twentyday.toml").verify_every_hours == 24.0
