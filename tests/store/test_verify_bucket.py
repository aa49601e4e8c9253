"""``verify`` with the sealed blobs in a bucket (real Ceph RGW, tests/rgw.py): the bucket held to the index.

What someone with the index, or with the bucket's own key, could do to make a record unreadable,
unprotected or rolled back, and what verify names: a chunk row pointed at another capture's
segment, a segment gone once its lock ended, a legal hold taken off, a lock shorter than the
records' rule, the archive put back to an older copy below a head the bucket holds. And what it
only counts: strays a rolled-back capture leaves, a delete marker stacked on a locked segment.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.rgw import LocalRGW
from tests.s3archive import make_s3_archive
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.daemon import publish_head
from twentyday.store.archive import Archive
from twentyday.store.ledger import signed_head
from twentyday.store.objects import POINTER_PREFIX, read_pointer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def run(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args])
    return result.exit_code, result.output  # stdout and stderr


def verify_json(config_path: Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--config", str(config_path), "verify", "--json"])
    return result.exit_code, json.loads(result.stdout)


def ingest(config_path: Path, name: str, *, body: str = "Notes.", date: datetime | None = None,
           attachment: tuple[str, bytes] | None = None) -> None:
    path = config_path.parent.parent / name
    path.write_bytes(make_mail(body=body, message_id=f"<{name}@x>", subject=name,
                               date=date or datetime.now(UTC) - timedelta(days=2), attachment=attachment))
    code, output = run(config_path, "ingest", "--custodian", "jdoe", str(path))
    assert code == 0, output


def index_of(config_path: Path) -> Path:
    return config_module.load(config_path).data_dir / "index.db"


def bucket_of(config_path: Path) -> str:
    target = config_module.load(config_path).blobs
    assert target is not None
    return target.bucket


def segments(config_path: Path) -> dict[str, list[tuple[str, int, bytes]]]:
    """Each capture's chunk rows (blob id, seq, pointer), by capture id."""
    with sqlite3.connect(index_of(config_path)) as conn:
        rows = conn.execute("SELECT b.capture_id, c.blob_id, c.seq, c.data FROM chunk c "
                            "JOIN blob b ON b.id = c.blob_id ORDER BY c.rowid").fetchall()
    found: dict[str, list[tuple[str, int, bytes]]] = {}
    for capture_id, blob_id, seq, data in rows:
        assert bytes(data).startswith(POINTER_PREFIX)
        found.setdefault(capture_id, []).append((blob_id, seq, bytes(data)))
    return found


def key_of(data: bytes) -> str:
    found = read_pointer(data)
    assert found is not None
    return found.key


@pytest.fixture
def archive(tmp_path: Path, rgw: LocalRGW) -> Path:
    return make_s3_archive(tmp_path / "arch", rgw, now=datetime.now(UTC))


def test_an_archive_in_a_bucket_verifies_with_its_objects_counted(archive: Path, s3: S3Client) -> None:
    ingest(archive, "a.eml", attachment=("minutes.pdf", os.urandom(1_500_000)))
    ingest(archive, "b.eml")
    code, report = verify_json(archive)
    assert code == 0, report["problems"]
    pointed = {key_of(data) for rows in segments(archive).values() for _, _, data in rows}
    assert report["objects"] == len(pointed) >= 2
    sizes = {v["Key"]: v["Size"] for v in s3.list_object_versions(Bucket=bucket_of(archive),
                                                                  Prefix="captures/")["Versions"]}
    assert report["object_bytes"] == sum(sizes[key] for key in pointed)
    assert report["stray_objects"] == 0 and report["notes"] == []
    code, output = run(archive, "verify")
    assert code == 0 and f"{len(pointed)} objects ({report['object_bytes']} bytes) in the bucket" in output


def test_a_chunk_row_pointed_at_another_captures_segment_is_named(archive: Path) -> None:
    ingest(archive, "a.eml", body="The first capture.")
    ingest(archive, "b.eml", body="The second capture.")
    (first, first_rows), (_, second_rows) = segments(archive).items()
    blob_id, seq, _ = first_rows[0]
    other = second_rows[0][2]  # the same offsets, in the other capture's segment
    with sqlite3.connect(index_of(archive)) as conn:
        conn.execute("UPDATE chunk SET data = ? WHERE blob_id = ? AND seq = ?", (other, blob_id, seq))
    code, output = run(archive, "verify")
    assert code == 5, output
    assert (f"altered: blob {blob_id}: " in output and f"pointed to in {key_of(other)}, outside its own capture's "
            f"segments (captures/{first}/)" in output)


def test_strays_are_counted_in_a_note_and_are_no_problem(archive: Path, s3: S3Client) -> None:
    ingest(archive, "a.eml")
    [capture] = segments(archive)
    bucket = bucket_of(archive)
    # What a capture rolled back after its PUTs leaves: its segments, named as the writer names them,
    # under its own prefix (a capture retried) or under a capture id the index never committed.
    for prefix in (f"captures/{capture}/", "captures/cap-never-committed/"):
        data = os.urandom(4096)
        s3.put_object(Bucket=bucket, Key=prefix + hashlib.sha256(data).hexdigest(), Body=data)
    code, report = verify_json(archive)
    assert code == 0, report["problems"]
    assert report["stray_objects"] == 2 and report["objects"] == 1
    assert any(note.startswith("2 object version(s) (8192 bytes) under captures/ that no chunk row points to")
               for note in report["notes"])


def test_a_head_the_bucket_holds_names_an_archive_put_back_to_an_older_copy(archive: Path) -> None:
    ingest(archive, "a.eml", body="Before the copy.")
    index = index_of(archive)
    older = index.with_name("older-copy.db")
    with sqlite3.connect(f"file:{index}?mode=ro", uri=True) as source, sqlite3.connect(older) as copy:
        source.backup(copy)
    ingest(archive, "b.eml", body="After the copy.")
    config = config_module.load(archive)
    with Archive(config) as opened:
        head = signed_head(opened.conn)
        assert head is not None
        publish_head(opened, head, -1)  # what serve does each round
    code, report = verify_json(archive)
    assert code == 0, report["problems"]
    assert report["bucket_head"] == head.text() and report["heads_checked"] == 1

    for suffix in ("-wal", "-shm"):
        index.with_name(index.name + suffix).unlink(missing_ok=True)
    os.replace(older, index)  # the older copy put back: the second capture is gone from the index
    code, output = run(archive, "verify")
    assert code == 5, output
    assert (f"truncated: published head {head.seq} (heads/{head.seq:012d} in s3://{bucket_of(archive)} at "
            in output)
    assert "entries were removed, or the archive is an earlier copy" in output
    assert "under captures/ that no chunk row points to" in output  # the second capture's segment: a stray now


def test_a_segment_deleted_once_its_lock_ended_is_named(archive: Path, s3: S3Client) -> None:
    # Records of 2015 under GRS 6.1 item 011 (7 years after the calendar year): eligible since 2023, so the
    # capture is written with no lock (the test bucket has no minimum), and its segment can be deleted.
    ingest(archive, "old.eml", date=datetime(2015, 3, 2, 9, 0, tzinfo=UTC))
    [[(blob_id, _, data), *_]] = segments(archive).values()
    bucket = bucket_of(archive)
    [version] = s3.list_object_versions(Bucket=bucket, Prefix=key_of(data))["Versions"]
    s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    code, output = run(archive, "verify")
    assert code == 5, output
    assert f"missing: segment {key_of(data)}: not in s3://{bucket}" in output
    assert f"missing: blob {blob_id}: " in output


def test_a_legal_hold_taken_off_with_the_buckets_key_is_named(archive: Path, s3: S3Client) -> None:
    code, output = run(archive, "hold", "add", "--name", "Matter 7", "--reason", "litigation", "--custodian",
                       "jdoe", "--identity", str(archive.parent / "officer.key"))
    assert code == 0, output
    ingest(archive, "held.eml")
    code, report = verify_json(archive)
    assert code == 0, report["problems"]
    [rows] = segments(archive).values()
    key = key_of(rows[0][2])
    bucket = bucket_of(archive)
    [version] = s3.list_object_versions(Bucket=bucket, Prefix=key)["Versions"]
    # Anyone with the bucket's key may lift a legal hold: the lock stays, the hold does not.
    s3.put_object_legal_hold(Bucket=bucket, Key=key, VersionId=version["VersionId"], LegalHold={"Status": "OFF"})
    code, output = run(archive, "verify")
    assert code == 5, output
    assert f"unlocked: segment {key}: capture " in output and "yet the segment carries no legal hold" in output


TENURE_SCHEDULE = """
[[schedules]]
id = "tenure-2d"
title = "Tenure files, two days"
authority = "test"
permanent = false
retain_years = 0
retain_days = 2
cutoff = "tenure"
transfer_years = 0
"""


def test_a_lock_shorter_than_the_records_rule_is_named(tmp_path: Path, rgw: LocalRGW) -> None:
    # Written while the config said jdoe's tenure ended ten days ago: the capture's records were
    # destroyable at once, so no lock. The tenure is then corrected to the capture's own day: the
    # records are kept two days more, and the segment is not locked for them.
    now = datetime.now(UTC)
    config_path = make_s3_archive(tmp_path / "arch", rgw, now=now, extra_config=TENURE_SCHEDULE)
    text = config_path.read_text()
    config_path.write_text(text.replace('schedule = "grs-6.1-011"', 'schedule = "tenure-2d"\n'
                                        f'tenure_ended = "{(now - timedelta(days=10)).date()}"'))
    ingest(config_path, "t.eml", date=now - timedelta(days=3))
    code, report = verify_json(config_path)
    assert code == 0, report["problems"]
    config_path.write_text(config_path.read_text().replace(str((now - timedelta(days=10)).date()),
                                                           str(now.date())))
    [rows] = segments(config_path).values()
    code, output = run(config_path, "verify")
    assert code == 5, output
    assert f"unlocked: segment {key_of(rows[0][2])}: not locked, yet capture " in output
    assert "'s records are kept until " in output


def test_a_delete_marker_stacked_on_a_locked_segment_is_counted_and_the_record_still_reads(
        archive: Path, s3: S3Client) -> None:
    ingest(archive, "a.eml", body="Still readable after the delete.")
    [rows] = segments(archive).values()
    s3.delete_object(Bucket=bucket_of(archive), Key=key_of(rows[0][2]))  # no version id: a marker, allowed
    code, output = run(archive, "search", "--json")
    [record] = json.loads(output)
    code, output = run(archive, "show", record["id"], "--identity", str(archive.parent / "officer.key"),
                       "--purpose", "test")
    assert code == 0, output
    assert "Still readable after the delete." in output
    code, report = verify_json(archive)
    assert code == 0, report["problems"]
    assert any(note.startswith("1 segment(s) with another version or a delete marker over their name")
               for note in report["notes"])
