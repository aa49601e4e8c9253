"""Sealed blobs in an S3 bucket with Object Lock, against a real Ceph RGW (tests/rgw.py).

What an administrator, an employee who wants a record gone, and someone holding the archive's own
bucket key would each try: the archive works the same (ingest, show, verify), nothing readable is
in the bucket, and what it wrote cannot be deleted, shortened or replaced before its retention ends.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.rgw import LocalRGW
from tests.s3archive import make_s3_archive, new_bucket_name
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.errors import ConfigError, TwentydayError
from twentyday.retention import parse_rule
from twentyday.store.archive import Archive
from twentyday.store.objects import capture_retain_until
from twentyday.store.writer import CaptureInput

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SECRET_WORDS = "pelican schedule moves to Thursday"


def run(config_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args])
    return result.exit_code, result.output


def ingest(config_path: Path, tmp_path: Path, raw: bytes, name: str = "m.eml") -> None:
    path = tmp_path / name
    path.write_bytes(raw)
    code, output = run(config_path, "ingest", str(path))
    assert code == 0, output


def bucket_of(config_path: Path) -> str:
    target = config_module.load(config_path).blobs
    assert target is not None
    return target.bucket


def versions(s3: S3Client, bucket: str, prefix: str = "captures/") -> list[tuple[str, str]]:
    found = s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", [])
    return [(v["Key"], v["VersionId"]) for v in found]


@pytest.fixture
def s3_archive(tmp_path: Path, rgw: LocalRGW) -> Path:
    return make_s3_archive(tmp_path / "arch", rgw, now=datetime.now(UTC))


def test_a_capture_is_sealed_into_the_bucket_and_reads_back(s3_archive: Path, tmp_path: Path, s3: S3Client) -> None:
    raw = make_mail(body=SECRET_WORDS, date=datetime.now(UTC) - timedelta(days=2),
                    attachment=("minutes.pdf", b"%PDF-1.4 " + b"minutes " * 200_000))
    ingest(s3_archive, tmp_path, raw)
    bucket = bucket_of(s3_archive)
    [(key, _)] = versions(s3, bucket)  # one small capture: one segment
    stored = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert SECRET_WORDS.encode() not in stored and b"minutes minutes" not in stored  # sealed before it left
    # The index keeps pointers, not the sealed bytes: the 1.6 MB capture is in the bucket only.
    index = config_module.load(s3_archive).data_dir / "index.db"
    with sqlite3.connect(index) as conn:
        kept = conn.execute("SELECT sum(length(data)) FROM chunk").fetchone()[0]
    assert kept < 2_000 < len(stored)

    code, output = run(s3_archive, "search", "--json")
    [record] = json.loads(output)
    code, output = run(s3_archive, "show", record["id"], "--identity", str(s3_archive.parent / "officer.key"),
                       "--purpose", "test")
    assert code == 0, output
    assert SECRET_WORDS in output and "minutes.pdf" in output
    code, output = run(s3_archive, "verify")
    assert code == 0, output
    assert output.startswith("OK:")
    code, output = run(s3_archive, "status", "--json")
    target = config_module.load(s3_archive).blobs
    assert target is not None and json.loads(output)["blobs"] == f"s3://{bucket} at {target.endpoint}"


def test_the_archives_own_key_cannot_delete_shorten_or_replace_a_locked_capture(
        s3_archive: Path, tmp_path: Path, s3: S3Client) -> None:
    ingest(s3_archive, tmp_path, make_mail(body=SECRET_WORDS, date=datetime.now(UTC) - timedelta(days=1)))
    bucket = bucket_of(s3_archive)
    [(key, version)] = versions(s3, bucket)
    retention = s3.get_object_retention(Bucket=bucket, Key=key, VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    # GRS 6.1 item 011: 7 years after the end of the calendar year, less the zone margin.
    this_year = datetime.now(UTC).year
    expected = datetime(this_year + 8, 1, 1, tzinfo=UTC) - timedelta(hours=14)
    assert retention["RetainUntilDate"].astimezone(UTC) == expected

    # s3 holds the very keys the archive writes with (tests/rgw.py: one user).
    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError):
        s3.put_object_retention(Bucket=bucket, Key=key, VersionId=version, Retention={
            "Mode": "COMPLIANCE", "RetainUntilDate": datetime.now(UTC) + timedelta(days=1)})
    with pytest.raises(ClientError):
        s3.put_object_retention(Bucket=bucket, Key=key, VersionId=version, Retention={
            "Mode": "GOVERNANCE", "RetainUntilDate": retention["RetainUntilDate"]})
    # Deleting without a version id only stacks a delete marker; writing over the name adds a version.
    s3.delete_object(Bucket=bucket, Key=key)
    s3.put_object(Bucket=bucket, Key=key, Body=b"forged bytes")
    code, output = run(s3_archive, "search", "--json")
    [record] = json.loads(output)
    code, output = run(s3_archive, "show", record["id"], "--identity", str(s3_archive.parent / "officer.key"),
                       "--purpose", "test")
    assert code == 0, output
    assert SECRET_WORDS in output  # the locked version, found by the bytes its name commits to
    code, output = run(s3_archive, "verify")
    assert code == 0, output


def test_a_quarantined_capture_is_locked_under_the_custodians_rule_from_its_capture(
        s3_archive: Path, tmp_path: Path, s3: S3Client) -> None:
    # No record to date it, and disposition never destroys it: it is kept as a record captured then would be.
    nested = b"(" * 5000 + b"x" + b")" * 5000
    path = tmp_path / "bad.eml"
    path.write_bytes(b"From: a@b.example\r\nTo: " + nested + b"\r\nSubject: zebrafinch\r\n\r\nbody\r\n")
    code, output = run(s3_archive, "ingest", "--custodian", "jdoe", str(path))
    assert code == 4 and output.startswith("quarantined"), output
    bucket = bucket_of(s3_archive)
    [(key, version)] = versions(s3, bucket)
    retention = s3.get_object_retention(Bucket=bucket, Key=key, VersionId=version)["Retention"]
    assert retention["Mode"] == "COMPLIANCE"
    expected = datetime(datetime.now(UTC).year + 8, 1, 1, tzinfo=UTC) - timedelta(hours=14)
    assert retention["RetainUntilDate"].astimezone(UTC) == expected


def test_a_bucket_without_object_lock_is_refused(tmp_path: Path, rgw: LocalRGW, s3: S3Client) -> None:
    plain = new_bucket_name()
    s3.create_bucket(Bucket=plain)
    with pytest.raises(TwentydayError, match="the bucket has no Object Lock"):
        make_s3_archive(tmp_path / "arch", rgw, now=datetime.now(UTC), bucket=plain)


def test_a_bucket_holding_another_archive_is_refused(tmp_path: Path, rgw: LocalRGW, s3_archive: Path,
                                                       s3: S3Client) -> None:
    ingest(s3_archive, tmp_path, make_mail())
    with pytest.raises(TwentydayError, match="holds objects already"):
        make_s3_archive(tmp_path / "second", rgw, now=datetime.now(UTC), bucket=bucket_of(s3_archive))


def test_create_makes_the_bucket_with_object_lock_and_a_default_retention(
        tmp_path: Path, rgw: LocalRGW, s3: S3Client) -> None:
    bucket = new_bucket_name()
    make_s3_archive(tmp_path / "arch", rgw, now=datetime.now(UTC), bucket=bucket, min_retention_days=30)
    found = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert found["ObjectLockEnabled"] == "Enabled"
    assert found["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 30}


def test_a_write_the_bucket_refuses_commits_nothing(s3_archive: Path, tmp_path: Path) -> None:
    # The administrator points the archive at a service that is down: ingest fails, the index is untouched.
    text = s3_archive.read_text()
    endpoint = config_module.load(s3_archive).blobs
    assert endpoint is not None
    s3_archive.write_text(text.replace(endpoint.endpoint, "http://127.0.0.1:9"))
    path = tmp_path / "m.eml"
    path.write_bytes(make_mail())
    code, output = run(s3_archive, "ingest", str(path))
    assert code != 0
    assert "cannot reach the bucket" in output and "Traceback" not in output
    s3_archive.write_text(text)
    with sqlite3.connect(config_module.load(s3_archive).data_dir / "index.db") as conn:
        assert conn.execute("SELECT count(*) FROM capture").fetchone()[0] == 0


def test_a_put_that_fails_rolls_the_capture_back(s3_archive: Path, tmp_path: Path, s3: S3Client) -> None:
    config = config_module.load(s3_archive)
    with Archive(config) as archive:
        assert archive.objects is not None
        archive.ingest(CaptureInput(raw=make_mail(), custodian="jdoe", channel="cli", source_name="m.eml",
                                    received_at=datetime.now(UTC), parser="mail"))
        archive.objects.bucket = new_bucket_name()  # gone between the check and the next write
        with pytest.raises(TwentydayError, match="cannot write a sealed segment"):
            archive.ingest(CaptureInput(raw=make_mail(message_id="<m2@x>"), custodian="jdoe", channel="cli",
                                        source_name="m2.eml", received_at=datetime.now(UTC), parser="mail"))
        assert archive.conn.execute("SELECT count(*) FROM capture").fetchone()[0] == 1


def test_the_credentials_file_must_be_the_daemons_alone(s3_archive: Path, rgw: LocalRGW, tmp_path: Path) -> None:
    shared = tmp_path / "s3.credentials"
    shared.write_text(rgw.credentials_file.read_text())
    shared.chmod(0o644)
    s3_archive.write_text(s3_archive.read_text().replace(str(rgw.credentials_file), str(shared)))
    with pytest.raises(ConfigError, match=r"store\.s3_credentials"):
        config_module.load(s3_archive)


def test_the_config_refuses_what_is_not_a_bucket(tmp_path: Path, rgw: LocalRGW) -> None:
    init_dir = tmp_path / "arch"
    make_s3_archive(init_dir, rgw, now=datetime.now(UTC))
    config_path = init_dir / "twentyday.toml"
    text = config_path.read_text()
    for bad in ('blobs = "s3://No_Such"', 'blobs = "file:///tmp/x"'):
        config_path.write_text(text.replace(text[text.index('blobs = "'):text.index("\n", text.index('blobs = "'))],
                                            bad))
        with pytest.raises(ConfigError, match=r"store\.blobs"):
            config_module.load(config_path)


@pytest.mark.parametrize(("rule", "latest", "tenure", "expected"), [
    # calendar-year cutoff, 7 years: the end of 2033 in UTC, less the largest zone offset
    ('{"v":1,"schedule":"grs-6.1-011","authority":"GRS 6.1, item 011","permanent":false,"retain_years":7,'
     '"retain_days":0,"cutoff":"calendar_year","transfer_years":0}', datetime(2026, 6, 1, tzinfo=UTC), None,
     datetime(2033, 12, 31, 10, tzinfo=UTC)),
    # an age rule: exactly its days after the record's own time
    ('{"v":1,"schedule":"grs-5.2-010","authority":"GRS 5.2, item 010","permanent":false,"retain_years":0,'
     '"retain_days":180,"cutoff":"creation","transfer_years":0}', datetime(2026, 6, 1, 9, 30, tzinfo=UTC), None,
     datetime(2026, 11, 28, 9, 30, tzinfo=UTC)),
    # a tenure still running: the earliest it can end is today
    ('{"v":1,"schedule":"t","authority":"x","permanent":false,"retain_years":3,"retain_days":0,"cutoff":"tenure",'
     '"transfer_years":0}', datetime(2026, 6, 1, tzinfo=UTC), None, datetime(2029, 12, 3, tzinfo=UTC)
     - timedelta(hours=14)),
    # permanent: transferred to NARA, never destroyed here
    ('{"v":1,"schedule":"grs-6.1-010","authority":"GRS 6.1, item 010","permanent":true,"retain_years":0,'
     '"retain_days":0,"cutoff":"calendar_year","transfer_years":15}', datetime(2026, 6, 1, tzinfo=UTC), None,
     datetime(2126, 1, 1, tzinfo=UTC)),
])
def test_a_captures_lock_follows_its_records_rule(rule: str, latest: datetime, tenure: date | None,
                                                   expected: datetime) -> None:
    assert capture_retain_until(parse_rule(rule), latest, tenure, date(2026, 12, 2)) == expected


def test_a_capture_matched_by_an_active_hold_is_written_legally_held(
        s3_archive: Path, tmp_path: Path, s3: S3Client) -> None:
    identity = s3_archive.parent / "officer.key"
    code, output = run(s3_archive, "hold", "add", "--name", "Matter 7", "--reason", "litigation",
                       "--custodian", "jdoe", "--identity", str(identity))
    assert code == 0, output
    ingest(s3_archive, tmp_path, make_mail(date=datetime.now(UTC) - timedelta(days=1)))
    bucket = bucket_of(s3_archive)
    [(key, version)] = versions(s3, bucket)
    assert s3.get_object_legal_hold(Bucket=bucket, Key=key, VersionId=version)["LegalHold"]["Status"] == "ON"


def test_a_delete_marker_stacked_over_a_segment_hides_nothing(s3_archive: Path, tmp_path: Path, s3: S3Client) -> None:
    # Anyone with the bucket's key may DELETE without a version id: S3 then stacks a delete marker,
    # and the locked version stays under it. The archive reads that version, and verify finds it whole.
    ingest(s3_archive, tmp_path, make_mail(body=SECRET_WORDS, date=datetime.now(UTC) - timedelta(days=1)))
    bucket = bucket_of(s3_archive)
    [(key, _)] = versions(s3, bucket)
    s3.delete_object(Bucket=bucket, Key=key)
    assert s3.list_object_versions(Bucket=bucket, Prefix=key).get("DeleteMarkers")
    code, output = run(s3_archive, "search", "--json")
    [record] = json.loads(output)
    code, output = run(s3_archive, "show", record["id"], "--identity", str(s3_archive.parent / "officer.key"),
                       "--purpose", "test")
    assert code == 0, output
    assert SECRET_WORDS in output
    code, output = run(s3_archive, "verify")
    assert code == 0, output
