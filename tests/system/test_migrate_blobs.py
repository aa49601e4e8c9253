"""``twentyday migrate --to CONFIG``: an embedded archive moved into a bucket of the real Ceph RGW, as an
administrator runs it (the CLI, and a process killed half-way and run again), then read and verified."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.rgw import LocalRGW
from tests.s3archive import new_bucket_name, store_section
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.initialise import init_archive
from twentyday.status import hold_serve_lock
from twentyday.store.objects import POINTER_PREFIX, read_pointer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHAT_LINE = "the heron survey moves to Friday"
PHOTO = b"\xff\xd8\xff\xe0" + os.urandom(300_000)  # a chat export's attachment, sealed apart from its lines
ATTACHMENT = os.urandom(2_500_000)  # three sealed chunks: a capture's segment holds several


def run(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args])
    return result.exit_code, result.output


def migrate_json(source: Path, target: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--config", str(source), "migrate", "--to", str(target), "--json", *extra])
    assert result.stdout, result.output
    return result.exit_code, json.loads(result.stdout)


def ingest(config_path: Path, path: Path) -> None:
    code, output = run(config_path, "ingest", "--custodian", "jdoe", str(path))
    assert code == 0, output


def whatsapp_export(path: Path) -> Path:
    lines = (f"13/10/2026, 08:00 - Jane Doe: {CHAT_LINE}\n"
             "13/10/2026, 08:01 - Counterpart: IMG-20261013-WA0001.jpg (file attached)\n"
             "13/10/2026, 08:02 - Jane Doe: thanks\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("WhatsApp Chat with Counterpart.txt", lines)
        archive.writestr("IMG-20261013-WA0001.jpg", PHOTO)
    return path


def embedded_archive(folder: Path, mails: int) -> Path:
    """An embedded archive (``twentyday init``) holding ``mails`` mails, one with a large attachment, and a chat
    export with a photo; its config path."""
    init_archive(folder, passphrase=None, demo=False, now=datetime.now(UTC))
    config_path = folder / "twentyday.toml"
    items = folder.parent / "items"
    items.mkdir(exist_ok=True)
    for n in range(mails):
        path = items / f"m{n}.eml"
        path.write_bytes(make_mail(body=f"Mail number {n}.", subject=f"Mail {n}", message_id=f"<m{n}@x>",
                                   date=datetime.now(UTC) - timedelta(days=2, minutes=n),
                                   attachment=("minutes.pdf", ATTACHMENT) if n == 0 else None))
        ingest(config_path, path)
    ingest(config_path, whatsapp_export(items / "WhatsApp Chat with Counterpart.zip"))
    return config_path


def target_config(source: Path, rgw: LocalRGW) -> Path:
    """The config of the archive in the bucket: the same keys, another data_dir, ``[store] blobs``."""
    target = source.with_name("target.toml")
    text = source.read_text().replace('data_dir = "data"', 'data_dir = "data-s3"')
    target.write_text(text + store_section(rgw, new_bucket_name()))
    target.chmod(0o600)
    return target


def index_rows(config_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(config_module.load(config_path).data_dir / "index.db") as conn:
        return conn.execute(sql).fetchall()


def pointed_keys(config_path: Path) -> set[str]:
    keys = set()
    for (data,) in index_rows(config_path, "SELECT data FROM chunk"):
        found = read_pointer(bytes(data))
        assert found is not None, "a chunk row still holds sealed bytes"
        keys.add(found.key)
    return keys


def bucket_versions(s3: S3Client, config_path: Path) -> list[dict[str, Any]]:
    blobs = config_module.load(config_path).blobs
    assert blobs is not None
    versions: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=blobs.bucket, Prefix="captures/"):
        versions += [dict(version) for version in page.get("Versions", [])]
    return versions


def show_chat(config_path: Path) -> str:
    """What ``show`` prints of the chat export's records (their contents, sealed in the bucket after a migrate)."""
    code, output = run(config_path, "search", "--json", "--platform", "whatsapp")
    assert code == 0, output
    shown = []
    for record in json.loads(output):
        code, output = run(config_path, "show", record["id"], "--identity", str(config_path.parent / "officer.key"),
                           "--purpose", "records request 12")
        assert code == 0, output
        shown.append(output)
    return "\n".join(shown)


def test_migrate_moves_an_embedded_archive_into_the_bucket_and_both_verify_alike(
        tmp_path: Path, rgw: LocalRGW, s3: S3Client) -> None:
    source = embedded_archive(tmp_path / "arch", mails=3)
    target = target_config(source, rgw)
    source_index = config_module.load(source).data_dir / "index.db"
    before = hashlib.sha256(source_index.read_bytes()).hexdigest()
    captures = len(index_rows(source, "SELECT id FROM capture"))

    code, found = migrate_json(source, target)
    assert code == 0, found
    assert found["agree"] and found["differences"] == []
    moved = found["moved"]
    assert (moved["captures"], moved["resumed"]) == (captures, False)
    assert moved["sealed_bytes"] == found["source"]["sealed_bytes"] > len(ATTACHMENT) + len(PHOTO)
    for name in ("ledger_entries", "head", "checkpoint", "captures", "records", "blobs", "sealed_bytes"):
        assert found["source"][name] == found["target"][name], name
    assert found["source"]["objects"] is None and found["target"]["objects"] == moved["objects"] >= captures
    assert found["target"]["stray_objects"] == 0
    assert found["blob_digests"]["source"] == found["blob_digests"]["target"]

    # The target index holds pointers only (VACUUMed: the sealed bytes left it); the bucket, every segment once.
    keys = pointed_keys(target)
    versions = bucket_versions(s3, target)
    assert sorted(v["Key"] for v in versions) == sorted(keys)
    target_index = config_module.load(target).data_dir / "index.db"
    assert target_index.stat().st_size < source_index.stat().st_size - len(ATTACHMENT)
    assert oct(target_index.stat().st_mode & 0o777) == "0o600"
    assert oct((target_index.parent / "secrets").stat().st_mode & 0o777) == "0o700"
    assert oct((target_index.parent / "secrets" / "index.key").stat().st_mode & 0o777) == "0o600"
    assert not (target_index.parent / "migrating.json").exists()
    # Each segment locked as the writer locks it (GRS 6.1 item 011: seven years after this calendar year).
    bucket = bucket_versions(s3, target)[0]
    lock = s3.get_object_retention(Bucket=config_module.load(target).blobs.bucket,  # type: ignore[union-attr]
                                   Key=bucket["Key"], VersionId=bucket["VersionId"])["Retention"]
    assert lock["Mode"] == "COMPLIANCE" and lock["RetainUntilDate"].year == datetime.now(UTC).year + 8 - 1
    # The signed head, published in the bucket as serve publishes it.
    head_seq = int(found["target"]["head"].split(":")[0])
    heads = s3.list_objects_v2(Bucket=config_module.load(target).blobs.bucket,  # type: ignore[union-attr]
                               Prefix="heads/")["Contents"]
    assert [h["Key"] for h in heads] == [f"heads/{head_seq:012d}"]

    # The archive in the bucket reads as the embedded one did; the source is unchanged and still verifies.
    output = show_chat(target)
    assert CHAT_LINE in output and f"IMG-20261013-WA0001.jpg (image/jpeg, {len(PHOTO)} bytes)" in output
    assert hashlib.sha256(source_index.read_bytes()).hexdigest() == before
    code, output = run(target, "verify")
    assert code == 0 and output.startswith("OK:"), output
    code, output = run(source, "verify")
    assert code == 0, output

    # A second run finds an archive there, and writes nothing.
    code, output = run(source, "migrate", "--to", str(target))
    assert code == 2 and "holds an archive already" in output and "Traceback" not in output


def test_a_capture_holding_no_record_is_locked_under_the_custodians_rule_as_the_writer_locks_it(
        tmp_path: Path, rgw: LocalRGW, s3: S3Client) -> None:
    source = embedded_archive(tmp_path / "arch", mails=1)
    bad = tmp_path / "bad.eml"
    bad.write_bytes(b"From: a@b.example\r\nTo: " + b"(" * 5000 + b"x" + b")" * 5000 + b"\r\n\r\nbody\r\n")
    code, output = run(source, "ingest", "--custodian", "jdoe", str(bad))
    assert code == 4 and output.startswith("quarantined"), output
    [(quarantined,)] = index_rows(source, "SELECT id FROM capture WHERE state = 'quarantined'")
    target = target_config(source, rgw)
    code, found = migrate_json(source, target)
    assert code == 0 and found["agree"], found
    bucket = config_module.load(target).blobs.bucket  # type: ignore[union-attr]
    [segment] = [v for v in bucket_versions(s3, target) if v["Key"].startswith(f"captures/{quarantined}/")]
    lock = s3.get_object_retention(Bucket=bucket, Key=segment["Key"], VersionId=segment["VersionId"])["Retention"]
    # GRS 6.1 item 011 from the capture's own time (no record dates it), as the writer would have locked it.
    assert lock["Mode"] == "COMPLIANCE"
    assert lock["RetainUntilDate"].astimezone(UTC) == datetime(datetime.now(UTC).year + 8, 1, 1, tzinfo=UTC) - \
        timedelta(hours=14)


def test_migrate_prints_what_it_moved_and_what_both_archives_agree_on(tmp_path: Path, rgw: LocalRGW) -> None:
    source = embedded_archive(tmp_path / "arch", mails=1)
    target = target_config(source, rgw)
    code, output = run(source, "migrate", "--to", str(target))
    assert code == 0, output
    lines = output.splitlines()
    assert lines[0].startswith("moved:    2 captures, ") and " sealed bytes into s3://" in lines[0]
    assert any(line.startswith("source:   OK: ") for line in lines)
    assert any(line.startswith("target:   OK: ") and "objects" in line for line in lines)
    assert any(line.startswith("agree:    the same ledger (head ") and "blob digests" in line for line in lines)


def test_migrate_refuses_while_serve_runs_on_the_source_and_a_target_with_other_keys(
        tmp_path: Path, rgw: LocalRGW) -> None:
    source = embedded_archive(tmp_path / "arch", mails=1)
    target = target_config(source, rgw)
    with hold_serve_lock(config_module.load(source).data_dir):  # what serve holds for its whole life
        code, output = run(source, "migrate", "--to", str(target))
    assert code == 5 and "twentyday serve is running on this archive" in output and "stop it" in output
    assert not config_module.load(target).data_dir.exists()

    other = init_archive(tmp_path / "other", passphrase=None, demo=False, now=datetime.now(UTC))
    assert other is not None
    elsewhere = tmp_path / "other" / "officer.key.pub"
    target.write_text(target.read_text().replace('recipients = ["officer.key.pub"]', f'recipients = ["{elsewhere}"]'))
    code, output = run(source, "migrate", "--to", str(target))
    assert code == 2 and "keys.recipients" in output and "same officer keys" in output


@pytest.mark.parametrize("source_grows", [False, True], ids=["source-unchanged", "source-took-a-capture-since"])
def test_a_migrate_killed_half_way_completes_when_run_again_with_nothing_duplicated(
        tmp_path: Path, rgw: LocalRGW, s3: S3Client, source_grows: bool) -> None:
    source = embedded_archive(tmp_path / "arch", mails=40)
    target = target_config(source, rgw)
    target_index = config_module.load(target).data_dir / "index.db"
    process = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(source), "migrate", "--to",
                                str(target), "--batch", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    moved = 0
    deadline = time.monotonic() + 60
    try:
        while moved < 5 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.01)
            if target_index.exists():
                try:
                    moved = len(_moved_captures(target_index))
                except sqlite3.OperationalError:
                    continue  # the copy is being put in place
        process.send_signal(signal.SIGSTOP)  # its state, held still, then the kill
        moved = len(_moved_captures(target_index))
        process.kill()
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
    captures = len(index_rows(source, "SELECT id FROM capture"))
    assert 0 < moved < captures, "the kill came before the first batch or after the last"
    assert (target_index.parent / "migrating.json").exists()
    written_before = {v["Key"] for v in bucket_versions(s3, target)}
    if source_grows:  # ingest (serve stays stopped) took a mail before the second run
        late = tmp_path / "items" / "late.eml"
        late.write_bytes(make_mail(body="Arrived between the runs.", message_id="<late@x>", subject="Late"))
        ingest(source, late)
        captures += 1

    code, found = migrate_json(source, target, "--batch", "3")
    assert code == 0, found
    assert found["agree"], found["differences"]
    again = found["moved"]
    assert again["resumed"] and again["recopied"] == source_grows
    if source_grows:  # the index copied anew: every capture's rows rewritten, no segment written twice
        assert (again["captures"], again["earlier_captures"]) == (captures, 0)
        assert again["earlier_objects"] == len(written_before)
    else:
        assert again["earlier_captures"] >= moved and again["earlier_captures"] + again["captures"] == captures
    assert found["target"]["stray_objects"] == 0 and found["target"]["captures"] == captures
    # Nothing duplicated: each chunk once, each segment once (one written before the kill is found, not rewritten).
    assert index_rows(target, "SELECT count(*) FROM chunk") == index_rows(source, "SELECT count(*) FROM chunk")
    keys = pointed_keys(target)
    assert sorted(v["Key"] for v in bucket_versions(s3, target)) == sorted(keys)
    assert written_before <= keys
    assert CHAT_LINE in show_chat(target)


def _moved_captures(index: Path) -> set[str]:
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=5) as conn:
        return {c for (c,) in conn.execute("SELECT DISTINCT b.capture_id FROM chunk c JOIN blob b ON b.id = c.blob_id "
                                           "WHERE substr(c.data, 1, ?) = ?", (len(POINTER_PREFIX), POINTER_PREFIX))}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subprocess reaches the local RGW directly, whatever proxy the environment names."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
