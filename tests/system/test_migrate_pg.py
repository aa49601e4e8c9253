"""``twentyday migrate --to CONFIG`` into the scale-out backend: the index in a real PostgreSQL (tests/pg.py),
alone or with the blobs in a bucket of the real Ceph RGW, as an administrator runs it (the CLI), then
verified, searched and served on the new config."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.conftest import NOW, make_mail
from tests.pg import LocalPG
from tests.pgarchive import index_uri
from tests.rgw import LocalRGW
from tests.s3archive import new_bucket_name, store_section
from tests.smtp_helpers import configure
from tests.system.serve_process import Serve
from tests.system.test_migrate_blobs import CHAT_LINE, _moved_captures, embedded_archive, ingest, run, show_chat
from tests.system.test_smtp_crash import wait_port
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.crypto import secrets
from twentyday.parsers import whatsapp
from twentyday.parsers.base import BytesSource
from twentyday.pipeline import process as pipeline
from twentyday.records import ParsedMessage
from twentyday.store import pg_copy
from twentyday.store.archive import Archive
from twentyday.store.nodes import SECRETS_CHECK, secrets_check
from twentyday.store.objects import read_pointer
from twentyday.store.writer import CaptureInput


def new_database(postgres: LocalPG) -> tuple[str, str]:
    """A new, empty database: its ``[store] index`` URI and its dsn."""
    name = "migrated_" + uuid.uuid4().hex[:16]
    return index_uri(postgres, name), postgres.create_database(name)


def pg_target(source: Path, uri: str, blobs: str = "") -> Path:
    """The config of the migrated archive: the same keys and [smtp], another data_dir, ``[store] index``."""
    target = source.with_name("target.toml")
    text = source.read_text().replace('data_dir = "data"', 'data_dir = "data-pg"')
    store = f'\n[store]\nindex = "{uri}"\n'
    if blobs:  # store_section's [store] table, with the index added to it
        store = blobs.replace("[store]\n", f'[store]\nindex = "{uri}"\n', 1)
    target.write_text(text + store)
    target.chmod(0o600)
    return target


def migrate_json(source: Path, target: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--config", str(source), "migrate", "--to", str(target), "--json"])
    assert result.stdout and "Traceback" not in result.output, result.output
    return result.exit_code, json.loads(result.stdout)


def records(config_path: Path) -> list[tuple[str, str]]:
    """What ``search`` lists: every record's id and conversation."""
    code, output = run(config_path, "search", "--json", "--limit", "1000")
    assert code == 0, output
    return sorted((str(r["id"]), str(r["conversation"])) for r in json.loads(output))


def pg_rows(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def tables_in(dsn: str) -> int:
    return len(pg_rows(dsn, "SELECT 1 FROM pg_tables WHERE schemaname = 'public'"))


def serve_takes_a_mail(target: Path, port: int) -> None:
    """``serve`` on the migrated archive answers a mail 250 and stores it; ``search`` then finds it."""
    before = len(records(target))
    daemon = Serve(target, target.parent / "serve-target.log")
    try:
        daemon.wait_ready()
        wait_port(port)
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                            make_mail(message_id="<after-migrate@x>", body="stored after the migration"))
        deadline = time.monotonic() + 30
        while len(records(target)) == before and time.monotonic() < deadline:
            time.sleep(0.25)
    finally:
        code, _ = daemon.terminate(45)
    assert code == 0, daemon.text()
    assert len(records(target)) == before + 1
    assert "index.db" not in daemon.text()


def check_migrated(source: Path, target: Path, found: dict[str, Any], dsn: str) -> None:
    """What both targets must show after a migrate: agreement, the copy's numbers, the data_dir, the node check."""
    assert found["agree"] and found["differences"] == [], found
    for name in ("ledger_entries", "head", "checkpoint", "captures", "records", "blobs", "sealed_bytes"):
        assert found["source"][name] == found["target"][name], name
    copy = found["index"]["copy"]
    source_index = config_module.load(source).data_dir / "index.db"
    with sqlite3.connect(f"file:{source_index}?mode=ro", uri=True) as conn:
        assert copy["rows"]["ledger"] == conn.execute("SELECT count(*) FROM ledger").fetchone()[0]
        assert copy["rows"]["record"] == conn.execute("SELECT count(*) FROM record").fetchone()[0] > 0
    assert copy["total_rows"] == sum(copy["rows"].values()) and copy["seconds"] > 0
    assert found["index"]["compared"] and not found["index"]["resumed"]
    data_dir = config_module.load(target).data_dir
    # Nothing can read a stale index beside the one in PostgreSQL; the secrets are the daemon's, 0700/0600.
    assert sorted(path.name for path in data_dir.iterdir()) == ["secrets"]
    assert oct(data_dir.stat().st_mode & 0o777) == "0o700"
    assert oct((data_dir / "secrets" / "index.key").stat().st_mode & 0o777) == "0o600"
    # A second node can join: the archive holds the check of its secrets (store/nodes.py).
    daemon_secrets = secrets.load(config_module.load(source).data_dir)
    assert pg_rows(dsn, f"SELECT value FROM meta WHERE key = '{SECRETS_CHECK}'") == [(secrets_check(daemon_secrets),)]
    code, output = run(target, "verify")
    assert code == 0 and output.startswith("OK:"), output
    assert records(target) == records(source)
    assert CHAT_LINE in show_chat(target)
    # A second run finds the archive there, and writes nothing.
    code, output = run(source, "migrate", "--to", str(target))
    assert code == 2 and "holds an archive already" in output and "Traceback" not in output


def test_migrate_moves_an_embedded_archive_s_index_into_postgresql_with_its_blobs(
        tmp_path: Path, postgres: LocalPG) -> None:
    source = embedded_archive(tmp_path / "arch", mails=3)
    _, port = configure(source.parent)
    before = hashlib.sha256((source.parent / "data" / "index.db").read_bytes()).hexdigest()
    uri, dsn = new_database(postgres)
    target = pg_target(source, uri)

    code, found = migrate_json(source, target)
    assert code == 0, found
    assert found["moved"] is None and found["index"]["intermediate_removed"] is False
    assert found["source"]["sealed_bytes"] == found["target"]["sealed_bytes"] > 2_500_000
    # The sealed bytes are in PostgreSQL's chunk rows, as they were in the source's.
    assert all(read_pointer(bytes(data)) is None for (data,) in pg_rows(dsn, "SELECT data FROM chunk"))
    check_migrated(source, target, found, dsn)
    assert hashlib.sha256((source.parent / "data" / "index.db").read_bytes()).hexdigest() == before
    serve_takes_a_mail(target, port)


def test_migrate_into_the_scale_out_backend_index_in_postgresql_blobs_in_the_bucket(
        tmp_path: Path, postgres: LocalPG, rgw: LocalRGW) -> None:
    source = embedded_archive(tmp_path / "arch", mails=3)
    _, port = configure(source.parent)
    uri, dsn = new_database(postgres)
    target = pg_target(source, uri, store_section(rgw, new_bucket_name()))

    code, found = migrate_json(source, target)
    assert code == 0, found
    assert found["moved"]["captures"] == found["source"]["captures"] and found["index"]["intermediate_removed"]
    assert found["target"]["objects"] == found["moved"]["objects"] and found["target"]["stray_objects"] == 0
    # PostgreSQL's chunk rows are the pointers into the bucket (the index of pointers was copied, then removed).
    assert all(read_pointer(bytes(data)) is not None for (data,) in pg_rows(dsn, "SELECT data FROM chunk"))
    check_migrated(source, target, found, dsn)
    serve_takes_a_mail(target, port)

    lines = CliRunner().invoke(cli, ["--config", str(source), "verify"]).output
    assert lines.startswith("OK:"), lines


def test_a_database_that_is_not_empty_is_refused_and_nothing_is_written(tmp_path: Path, postgres: LocalPG) -> None:
    source = embedded_archive(tmp_path / "arch", mails=1)
    uri, dsn = new_database(postgres)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (n bigint)")
    target = pg_target(source, uri)
    code, output = run(source, "migrate", "--to", str(target))
    assert code == 2 and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1 and "already holds 1 table(s) (invoices)" in output, output
    assert "store.index" in output
    assert not config_module.load(target).data_dir.exists()
    assert tables_in(dsn) == 1


def test_a_sender_s_name_holding_u0000_is_refused_in_one_line_before_anything_is_written(
        tmp_path: Path, postgres: LocalPG, rgw: LocalRGW, s3: Any) -> None:
    """An archive written before the pipeline replaced U+0000 in names (records.nul_replaced) keeps a chat
    sender's name as the export spelled it (tests/store/test_pg_copy.py): PostgreSQL's text cannot hold it,
    so the migrate is refused before the blobs move, naming where; the source unchanged."""
    source = embedded_archive(tmp_path / "arch", mails=1)
    raw = b"13/10/2026, 08:00 - Jane Doe: hello\n13/10/2026, 08:01 - Counter\x00part: yes\n"
    config = config_module.load(source)
    custodian = config.custodian("jdoe")
    assert custodian is not None
    # The records as such a version drafted them: the parser's own, with no replacement.
    drafted = [pipeline.draft(custodian, r) for r in whatsapp.parse(
        BytesSource("WhatsApp Chat with Budget team.txt", raw),
        pipeline.hints_for(custodian, "WhatsApp Chat with Budget team.txt")) if isinstance(r, ParsedMessage)]
    with Archive(config) as archive:
        archive.ingest(CaptureInput("jdoe", "cli", "file given to twentyday ingest", raw, "whatsapp", NOW), drafted)
    source_index = config_module.load(source).data_dir / "index.db"
    before = hashlib.sha256(source_index.read_bytes()).hexdigest()
    uri, dsn = new_database(postgres)
    bucket = new_bucket_name()
    target = pg_target(source, uri, store_section(rgw, bucket))

    code, output = run(source, "migrate", "--to", str(target))
    assert code == 5 and "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert "record.sender: 1 row(s)" in output and "U+0000" in output and "the source is unchanged" in output
    assert hashlib.sha256(source_index.read_bytes()).hexdigest() == before
    assert not config_module.load(target).data_dir.exists()
    assert tables_in(dsn) == 0
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_a_migrate_killed_while_the_blobs_move_completes_when_run_again(
        tmp_path: Path, postgres: LocalPG, rgw: LocalRGW) -> None:
    source = embedded_archive(tmp_path / "arch", mails=30)
    uri, dsn = new_database(postgres)
    target = pg_target(source, uri, store_section(rgw, new_bucket_name()))
    intermediate = config_module.load(target).data_dir / "index.db"
    process = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(source), "migrate", "--to",
                                str(target), "--batch", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    moved = 0
    deadline = time.monotonic() + 60
    try:
        while moved < 3 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
            if intermediate.exists():
                try:
                    moved = len(_moved_captures(intermediate))
                except sqlite3.OperationalError:
                    continue  # the copy is being put in place
        process.kill()
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    assert moved > 0 and tables_in(dsn) == 0
    assert (intermediate.parent / "migrating-index.json").exists()

    code, found = migrate_json(source, target)
    assert code == 0 and found["agree"], found
    assert found["index"]["resumed"] and found["moved"]["resumed"] and found["index"]["intermediate_removed"]
    assert sorted(path.name for path in intermediate.parent.iterdir()) == ["secrets"]
    code, output = run(target, "verify")
    assert code == 0 and output.startswith("OK:"), output


@pytest.mark.parametrize("stopped", ["after-the-copy", "after-the-secrets-check", "and-the-source-served-since"])
def test_a_migrate_stopped_after_its_copy_committed_finishes_when_run_again(
        tmp_path: Path, postgres: LocalPG, stopped: str) -> None:
    """What a run killed after the copy's commit leaves (its marker, the secrets, the copy in PostgreSQL), made
    with the same functions; the rerun finishes from there, or refuses a copy the source has moved on from."""
    source = embedded_archive(tmp_path / "arch", mails=2)
    uri, dsn = new_database(postgres)
    target = pg_target(source, uri)
    source_dir, data_dir = config_module.load(source).data_dir, config_module.load(target).data_dir
    data_dir.mkdir(mode=0o700)
    (data_dir / "migrating-index.json").write_text(json.dumps({"source": str(source_dir.resolve())}))
    shutil.copytree(source_dir / "secrets", data_dir / "secrets")
    pg_copy.copy_index(source_dir / "index.db", dsn)
    if stopped == "after-the-secrets-check":
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s)",
                         (SECRETS_CHECK, secrets_check(secrets.load(source_dir))))
    if stopped == "and-the-source-served-since":
        late = tmp_path / "items" / "late.eml"
        late.write_bytes(make_mail(body="Arrived between the runs.", message_id="<late@x>", subject="Late"))
        ingest(source, late)
        code, output = run(source, "migrate", "--to", str(target))
        assert code == 5 and len(output.strip().splitlines()) == 1 and "Traceback" not in output, output
        assert "holds a copy of this archive at ledger entry" in output and "drop that database" in output
        return

    code, found = migrate_json(source, target)
    assert code == 0 and found["agree"], found
    assert found["index"]["resumed"] and found["index"]["copy"] is None
    assert found["index"]["compared"] == (stopped == "after-the-copy")
    assert sorted(path.name for path in data_dir.iterdir()) == ["secrets"]
    assert len(pg_rows(dsn, f"SELECT value FROM meta WHERE key = '{SECRETS_CHECK}'")) == 1
    code, output = run(target, "verify")
    assert code == 0 and output.startswith("OK:"), output


def test_migrate_into_postgresql_prints_what_it_copied_and_that_both_agree(tmp_path: Path, postgres: LocalPG) -> None:
    source = embedded_archive(tmp_path / "arch", mails=1)
    uri, _ = new_database(postgres)
    code, output = run(source, "migrate", "--to", str(pg_target(source, uri)))
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("copied:   the index, ") and " rows of " in lines[0]
    assert "PostgreSQL database" in lines[0]
    assert lines[1] == "          compared row by row with the index it was copied from: alike"
    assert any(line.startswith("target:   OK: ") for line in lines)
    assert any(line.startswith("agree:    the same ledger (head ") for line in lines)
