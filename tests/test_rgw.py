"""The Object Lock facts the S3 blob store relies on, shown against a real Ceph RGW (tests/rgw.py).

Ceph 16.2's answers, recorded here: a refused delete or retention change is 403 AccessDenied (the same
credentials that wrote the object, and the governance bypass header changes nothing in compliance
mode); a bucket made without Object Lock answers GetObjectLockConfiguration with 404
ObjectLockConfigurationNotFoundError.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests import rgw as local_rgw

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import ObjectLockRetentionModeType

ROOT = Path(__file__).resolve().parents[1]


def refusal(call: Callable[[], Any]) -> tuple[int, str]:
    """The HTTP status and S3 error code of a call that must be refused."""
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["ResponseMetadata"]["HTTPStatusCode"], caught.value.response["Error"]["Code"]


def locked_put(s3: S3Client, bucket: str, key: str, body: bytes, until: datetime) -> str:
    return s3.put_object(Bucket=bucket, Key=key, Body=body, ObjectLockMode="COMPLIANCE",
                         ObjectLockRetainUntilDate=until)["VersionId"]


def test_a_bucket_made_with_object_lock_says_so(s3: S3Client, s3_bucket: str) -> None:
    config = s3.get_object_lock_configuration(Bucket=s3_bucket)["ObjectLockConfiguration"]
    assert config["ObjectLockEnabled"] == "Enabled"
    assert s3.get_bucket_versioning(Bucket=s3_bucket)["Status"] == "Enabled"  # Object Lock turns it on


def test_a_bucket_without_object_lock_says_so(s3: S3Client, s3_bucket: str) -> None:
    plain = s3_bucket[:50] + "-plain"
    s3.create_bucket(Bucket=plain)
    assert refusal(lambda: s3.get_object_lock_configuration(Bucket=plain)) == (
        404, "ObjectLockConfigurationNotFoundError")


def test_a_compliance_version_cannot_be_deleted_by_the_credentials_that_wrote_it(s3: S3Client,
                                                                               s3_bucket: str) -> None:
    version = locked_put(s3, s3_bucket, "blob", b"sealed bytes", datetime.now(UTC) + timedelta(minutes=1))

    assert refusal(lambda: s3.delete_object(Bucket=s3_bucket, Key="blob", VersionId=version)) == (
        403, "AccessDenied")
    assert refusal(lambda: s3.delete_object(Bucket=s3_bucket, Key="blob", VersionId=version,
                                            BypassGovernanceRetention=True)) == (403, "AccessDenied")
    # A delete without a version only stacks a delete marker, and a second put only a new version:
    # the locked version is still there, byte for byte.
    assert s3.delete_object(Bucket=s3_bucket, Key="blob")["DeleteMarker"] is True
    s3.put_object(Bucket=s3_bucket, Key="blob", Body=b"other bytes")
    assert s3.get_object(Bucket=s3_bucket, Key="blob", VersionId=version)["Body"].read() == b"sealed bytes"


def test_a_compliance_retention_can_be_extended_but_not_shortened_nor_made_governance(s3: S3Client,
                                                                                    s3_bucket: str) -> None:
    until = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0)
    version = locked_put(s3, s3_bucket, "blob", b"sealed bytes", until)

    def retain(mode: ObjectLockRetentionModeType, new_until: datetime) -> Callable[[], Any]:
        return lambda: s3.put_object_retention(Bucket=s3_bucket, Key="blob", VersionId=version,
                                               Retention={"Mode": mode, "RetainUntilDate": new_until})

    assert refusal(retain("COMPLIANCE", until - timedelta(seconds=30))) == (403, "AccessDenied")
    assert refusal(retain("GOVERNANCE", until + timedelta(seconds=30))) == (403, "AccessDenied")
    retain("COMPLIANCE", until + timedelta(minutes=1))()

    kept = s3.get_object_retention(Bucket=s3_bucket, Key="blob", VersionId=version)["Retention"]
    assert kept["Mode"] == "COMPLIANCE"
    assert kept["RetainUntilDate"] == until + timedelta(minutes=1)


def test_a_legal_hold_blocks_deleting_a_version_whose_retention_has_passed(s3: S3Client, s3_bucket: str) -> None:
    until = datetime.now(UTC) + timedelta(seconds=2)
    held = locked_put(s3, s3_bucket, "held", b"held bytes", until)
    free = locked_put(s3, s3_bucket, "free", b"free bytes", until)
    s3.put_object_legal_hold(Bucket=s3_bucket, Key="held", VersionId=held, LegalHold={"Status": "ON"})
    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 1.1)  # retention is whole seconds

    s3.delete_object(Bucket=s3_bucket, Key="free", VersionId=free)  # retention passed, no hold: it goes
    assert refusal(lambda: s3.delete_object(Bucket=s3_bucket, Key="held", VersionId=held)) == (403, "AccessDenied")
    assert s3.get_object_legal_hold(Bucket=s3_bucket, Key="held", VersionId=held)["LegalHold"]["Status"] == "ON"

    s3.put_object_legal_hold(Bucket=s3_bucket, Key="held", VersionId=held, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=s3_bucket, Key="held", VersionId=held)
    assert s3.list_object_versions(Bucket=s3_bucket).get("Versions", []) == []


def test_a_legal_hold_alone_blocks_deleting_and_released_allows_it(s3: S3Client, s3_bucket: str) -> None:
    version = s3.put_object(Bucket=s3_bucket, Key="blob", Body=b"bytes")["VersionId"]
    s3.put_object_legal_hold(Bucket=s3_bucket, Key="blob", VersionId=version, LegalHold={"Status": "ON"})
    assert refusal(lambda: s3.delete_object(Bucket=s3_bucket, Key="blob", VersionId=version)) == (
        403, "AccessDenied")
    s3.put_object_legal_hold(Bucket=s3_bucket, Key="blob", VersionId=version, LegalHold={"Status": "OFF"})
    s3.delete_object(Bucket=s3_bucket, Key="blob", VersionId=version)
    assert refusal(lambda: s3.get_object(Bucket=s3_bucket, Key="blob", VersionId=version))[0] == 404


def test_a_ranged_get_returns_exactly_those_bytes(s3: S3Client, s3_bucket: str) -> None:
    body = os.urandom(1000)
    version = s3.put_object(Bucket=s3_bucket, Key="blob", Body=body)["VersionId"]
    part = s3.get_object(Bucket=s3_bucket, Key="blob", VersionId=version, Range="bytes=100-199")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == "bytes 100-199/1000"
    assert part["Body"].read() == body[100:200]
    assert s3.get_object(Bucket=s3_bucket, Key="blob", Range="bytes=990-")["Body"].read() == body[990:]


def test_the_credentials_file_is_private_and_what_an_aws_client_reads(rgw: local_rgw.LocalRGW,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert rgw.credentials_file.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(rgw.credentials_file))
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    client = boto3.session.Session(region_name=rgw.region).client("s3", endpoint_url=rgw.endpoint)
    assert client.list_buckets()["Owner"]["ID"] == "twentyday"


def ceph_processes(folder: Path) -> list[int]:
    return local_rgw._pids_with(str(folder.absolute() / local_rgw.CONFIG))


def test_the_cli_starts_a_cluster_that_outlives_it_and_stops_it(tmp_path: Path) -> None:
    folder = tmp_path / "s3"
    started = subprocess.run([sys.executable, "-m", "tests.rgw", "start", str(folder)], cwd=ROOT,
                             capture_output=True, text=True, timeout=90, check=False)
    try:
        assert started.returncode == 0, started.stderr
        handle = local_rgw.load(folder)
        assert f"endpoint: {handle.endpoint}\n" in started.stdout
        assert f"credentials: {handle.credentials_file}\n" in started.stdout
        assert handle.secret_key not in started.stdout + started.stderr
        assert len(ceph_processes(folder)) == 3
        assert 0 < local_rgw.rss_bytes(folder) < 400_000_000
        with pytest.raises(local_rgw.RGWError, match="started here already"):
            local_rgw.start(folder)
    finally:
        stopped = subprocess.run([sys.executable, "-m", "tests.rgw", "stop", str(folder)], cwd=ROOT,
                                 capture_output=True, text=True, timeout=90, check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert ceph_processes(folder) == []


def test_local_s3_gives_the_osd_the_capacity_asked_for(tmp_path: Path) -> None:
    """scripts/local-s3 start DIR --store-bytes N: the running OSD holds up to N bytes (in memory)."""
    folder = tmp_path / "s3"
    started = subprocess.run([str(ROOT / "scripts" / "local-s3"), "start", str(folder), "--store-bytes",
                              str(512 << 20)], capture_output=True, text=True, timeout=90, check=False)
    try:
        assert started.returncode == 0, started.stderr
        assert f"credentials: {folder / 's3.credentials'}\n" in started.stdout
        asked = subprocess.run(["ceph", "--admin-daemon", str(folder / "run" / "osd.0.asok"), "config", "get",
                                "memstore_device_bytes"], capture_output=True, text=True, timeout=30, check=True)
        assert json.loads(asked.stdout) == {"memstore_device_bytes": str(512 << 20)}
    finally:
        subprocess.run([str(ROOT / "scripts" / "local-s3"), "stop", str(folder)], capture_output=True, timeout=90,
                       check=False)
    assert ceph_processes(folder) == []
    refused = subprocess.run([str(ROOT / "scripts" / "local-s3"), "start", str(tmp_path / "other"), "--store-bytes",
                              "much"], capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode == 2
    assert "usage: " in refused.stderr


def test_the_daemons_die_with_a_test_process_that_is_killed(tmp_path: Path) -> None:
    folder = tmp_path / "s3"
    script = ("import sys, time; from pathlib import Path; from tests import rgw; "
              "rgw.start(Path(sys.argv[1])); print('up', flush=True); time.sleep(600)")
    owner = subprocess.Popen([sys.executable, "-c", script, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "up\n"
        assert len(ceph_processes(folder)) == 3
        owner.send_signal(signal.SIGKILL)  # no atexit, no finally: only the kernel's parent-death signal
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while ceph_processes(folder) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ceph_processes(folder) == []
    finally:
        owner.kill()
        local_rgw.stop(folder)
