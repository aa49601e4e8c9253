"""``twentyday status``: what the daemon is doing, read from the archive and the spool, writing nothing.

A real archive: mail ingested through the CLI (one late, one for nobody), items waiting in the real
spool, serve's integrity check run for real; then ``status`` through the CLI.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import NOW, make_mail
from tests.indexdb import cut_off_index, on_postgresql, open_index, remove_index
from tests.pgarchive import make_pg_archive
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.errors import IntakeError, NotFoundError
from twentyday.initialise import init_archive
from twentyday.spool import Spool, SpoolMeta
from twentyday.status import SERVE_LOCK, daemon_state, hold_serve_lock
from twentyday.store.archive import Archive
from twentyday.store.integrity import LAST_RUN_FILE, IntegrityCheck


@pytest.fixture(params=["embedded", "pg"])
def archive_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh archive as 'twentyday init --no-passphrase' makes it, its index in SQLite (``[embedded]``)
    or in the local PostgreSQL (``[pg]``, tests/pgarchive.py)."""
    if request.param == "pg":
        make_pg_archive(tmp_path / "arch", request.getfixturevalue("postgres"), now=NOW)
    else:
        init_archive(tmp_path / "arch", passphrase=None, demo=False, now=NOW)
    return tmp_path / "arch"


def ingest(config: Path, name: str, mail: bytes, *custodian: str) -> None:
    path = config.parent.parent / name
    path.write_bytes(mail)
    result = CliRunner().invoke(cli, ["--config", str(config), "ingest", *custodian, str(path)])
    assert result.exit_code in (0, 4), result.output  # 4: kept, sealed, for nobody (unknown custodian)


def status_json(config: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


#: SQLite's own: a read-only reader of a WAL index makes them when no daemon has them open (as verify does).
SQLITE_SIDE_FILES = frozenset({"index.db-wal", "index.db-shm"})


def snapshot(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Every file under the data directory with its size and modification time (SQLite's side files aside)."""
    return {str(p.relative_to(data_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(data_dir.rglob("*")) if p.is_file() and p.name not in SQLITE_SIDE_FILES}


@pytest.fixture
def busy_archive(archive_dir: Path) -> Path:
    """One late mail for jdoe, one mail for nobody, two items waiting in the spool (their segment
    written an hour ago)."""
    config = archive_dir / "twentyday.toml"
    ingest(config, "late.eml", make_mail(date=datetime.now(UTC) - timedelta(days=40), message_id="<late@x>"),
           "--custodian", "jdoe")
    ingest(config, "nobody.eml", make_mail(sender="someone@elsewhere.example", to="other@elsewhere.example",
                                           message_id="<nobody@x>"))
    spool = Spool.open(config_module.load(config))
    try:
        for n in range(2):
            spool.put_bytes(make_mail(message_id=f"<waiting{n}@x>"),
                            SpoolMeta(f"smtp-{n}.eml", "smtp", datetime.now(UTC), "jdoe"))
    finally:
        spool.close()
    [segment] = (archive_dir / "data" / "spool").glob("seg-*.log")
    hour_ago = an_hour_ago()
    os.utime(segment, (hour_ago.timestamp(), hour_ago.timestamp()))
    return config


def an_hour_ago() -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def segment_time(config: Path) -> datetime:
    [segment] = (config.parent / "data" / "spool").glob("seg-*.log")
    return datetime.fromtimestamp(segment.stat().st_mtime, UTC)


def test_status_reports_spool_captures_alerts_and_ledger_head_and_writes_nothing(busy_archive: Path) -> None:
    data_dir = busy_archive.parent / "data"
    before = snapshot(data_dir)
    status = status_json(busy_archive)
    assert snapshot(data_dir) == before  # read only: not a byte, not a file (not even serve.pid)
    if not on_postgresql(busy_archive.parent):  # (PostgreSQL: read in a READ ONLY transaction)
        assert (data_dir / "index.db-wal").stat().st_size == 0  # nothing written through SQLite either

    assert status["daemon"] == {"running": False, "pid": None}
    assert status["spool"]["items"] == 2
    assert status["spool"]["oldest_at"] == segment_time(busy_archive).isoformat()
    assert 3600 <= status["spool"]["oldest_age_seconds"] < 3600 + 120
    conn = open_index(busy_archive.parent)
    try:
        captures = dict(conn.execute("SELECT coalesce(custodian, ''), received_at FROM capture"))
        [(seq, digest)] = conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        [(signed_seq, signed_at)] = conn.execute("SELECT seq, at FROM checkpoint ORDER BY seq DESC LIMIT 1")
    finally:
        conn.close()
    assert status["custodians"] == [
        {"custodian": "jdoe", "last_capture_at": captures["jdoe"], "channel": "cli"},
        {"custodian": "", "last_capture_at": captures[""], "channel": "cli"},
    ]
    assert status["open_alerts"] == {"late_capture": {"open": 1, "escalated": 0},
                                     "unknown_custodian": {"open": 1, "escalated": 0}}
    assert status["ledger"] == {"seq": seq, "hash": digest, "signed_seq": signed_seq, "signed_hash": digest,
                                "signed_at": signed_at}
    assert status["last_verify"] is None
    assert status["verify_every_hours"] == 24.0 and status["ledger_key_pinned"] is True


def test_status_shows_serves_last_integrity_check(busy_archive: Path) -> None:
    config = config_module.load(busy_archive)
    archive = Archive(config)
    try:
        report = IntegrityCheck(config, archive).run_once()
    finally:
        archive.close()
    assert report.ok
    verify = status_json(busy_archive)["last_verify"]
    assert verify["result"] == "ok" and verify["problems"] == 0 and verify["detail"] == ""
    assert verify["ledger_entries"] == report.ledger_entries and verify["head"] == report.head
    started = datetime.fromisoformat(verify["started_at"])
    assert started <= datetime.fromisoformat(verify["finished_at"]) <= datetime.now(UTC)
    assert datetime.now(UTC) - started < timedelta(minutes=5)
    human = CliRunner().invoke(cli, ["--config", str(busy_archive), "status"]).output
    assert f"last verify   {verify['finished_at']}: ok, {report.ledger_entries} ledger entries\n" in human


def test_a_run_that_fails_is_kept_as_an_error(busy_archive: Path) -> None:
    config = config_module.load(busy_archive)
    archive = Archive(config)
    try:
        cut_off = cut_off_index(busy_archive.parent)
        with pytest.raises(Exception, match=r"no archive here|cannot open the index") as failed:
            IntegrityCheck(config, archive).run_once()
        assert type(failed.value).__name__ == cut_off.error
        cut_off.restore()
    finally:
        archive.close()
    kept = json.loads((busy_archive.parent / "data" / LAST_RUN_FILE).read_text())
    assert (kept["result"], kept["detail"], kept["head"]) == ("error", cut_off.error, "")
    human = CliRunner().invoke(cli, ["--config", str(busy_archive), "status"]).output
    assert f": did not finish ({cut_off.error})\n" in human


def test_human_status_is_labelled_lines_then_two_tables(busy_archive: Path) -> None:
    status = status_json(busy_archive)
    result = CliRunner().invoke(cli, ["--config", str(busy_archive), "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    ledger = status["ledger"]
    age = status["spool"]["oldest_age_seconds"]
    assert lines[0] == "daemon        not running"
    since = segment_time(busy_archive).isoformat()
    assert lines[1].startswith(f"spool         2 item(s) waiting, the oldest since {since} (")
    assert abs(float(lines[1].rsplit("(", 1)[1].removesuffix(" s)")) - age) < 60
    assert lines[2] == (f"ledger head   entry {ledger['seq']} {ledger['hash']}; signed {ledger['signed_seq']} "
                        f"{ledger['signed_hash']} at {ledger['signed_at']}")
    assert lines[3] == "last verify   none kept yet (serve runs it a minute after start, then every 24 h)"
    assert lines[4] == "sealed blobs  in the index (the embedded store)"
    assert status["blobs"] == "index"
    jdoe = status["custodians"][0]["last_capture_at"]
    nobody = status["custodians"][1]["last_capture_at"]
    width = len(jdoe)
    assert lines[6:] == [
        f"{'CUSTODIAN':<14}  {'LAST CAPTURE':<{width}}  CHANNEL",
        f"{'jdoe':<14}  {jdoe}  cli",
        f"(no custodian)  {nobody}  cli",
        "2 custodian(s)",
        "",
        "ALERT KIND         OPEN  ESCALATED",
        "late_capture          1          0",
        "unknown_custodian     1          0",
        "2 open alert(s)",
    ]


def test_a_custodian_with_no_capture_is_listed_as_never(archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    status = status_json(config)
    assert status["custodians"] == [{"custodian": "jdoe", "last_capture_at": None, "channel": None}]
    assert status["spool"] == {"items": 0, "oldest_at": None, "oldest_age_seconds": None}
    assert status["open_alerts"] == {}
    human = CliRunner().invoke(cli, ["--config", str(config), "status"]).output
    assert "jdoe       never\n" in human and "0 open alert(s)\n" in human


def test_status_without_an_archive_is_one_line_and_exit_7(archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    remove_index(archive_dir)
    result = CliRunner().invoke(cli, ["--config", str(config), "status"])
    assert result.exit_code == 7
    if on_postgresql(archive_dir):  # the database is there, without the tables 'twentyday create' makes
        assert re.fullmatch(r"twentyday: PostgreSQL database '\w+' on \S+: no archive here "
                            r"\(run 'twentyday create' first\)\n", result.output), result.output
    else:
        index = archive_dir / "data" / "index.db"
        assert result.output == f"twentyday: {index}: no archive here (run 'twentyday init' first)\n"


def test_serve_lock_is_seen_by_status_and_refuses_a_second_holder(archive_dir: Path) -> None:
    data_dir = archive_dir / "data"
    with hold_serve_lock(data_dir):
        assert daemon_state(data_dir).running is True and daemon_state(data_dir).pid == os.getpid()
        refusal = rf"another twentyday serve is running on this archive \(pid {os.getpid()}\); stop it first"
        with pytest.raises(IntakeError, match=refusal), hold_serve_lock(data_dir):
            pass
    assert (data_dir / SERVE_LOCK).exists()  # left in place: the lock, not the file, says who runs
    assert daemon_state(data_dir).running is False and daemon_state(data_dir).pid is None


def test_serve_without_a_data_directory_says_there_is_no_archive(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"index\.db: no archive here \(run 'twentyday init' first\)"), \
            hold_serve_lock(tmp_path / "missing"):
        pass
