"""A batch on the S3 blob store (a real Ceph RGW, tests/rgw.py): what a rolled-back batch wrote is
forgotten with it, so the bucket's refusal of one of its writes never fails the batch after it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import NOW
from tests.pipeline.test_worker_batches import drafts
from tests.rgw import LocalRGW
from tests.s3archive import make_s3_archive, new_bucket_name
from twentyday import config as config_module
from twentyday.errors import BatchRolledBack, TwentydayError
from twentyday.store.archive import Archive
from twentyday.store.objects import ObjectStore
from twentyday.store.writer import CaptureInput

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def capture(name: str) -> CaptureInput:
    return CaptureInput("jdoe", "cli", name, name.encode(), "whatsapp", NOW)


def test_a_refused_write_of_a_rolled_back_batch_does_not_fail_the_next_batch(
        tmp_path: Path, rgw: LocalRGW, s3: S3Client) -> None:
    config = config_module.load(make_s3_archive(tmp_path / "arch", rgw, now=NOW))
    assert config.blobs is not None
    with Archive(config) as archive:
        with archive.batch():  # the bucket is checked (Object Lock) before the archive's first write
            archive.ingest(capture("zero.txt"), drafts("z", 5))
        # The bucket the archive writes to is gone now: the first capture's write is refused,
        # and the batch is rolled back anyway (a capture parsed ahead fails half-way).
        missing = ObjectStore(dataclasses.replace(config.blobs, bucket=new_bucket_name()))
        archive.objects, reachable = missing, archive.objects
        try:
            with pytest.raises(BatchRolledBack), archive.batch():
                archive.ingest(capture("first.txt"), drafts("a", 20), savepoint=False)
                archive.ingest(capture("second.txt"), drafts("b", 20, fail_after=10), savepoint=False)
            s3.create_bucket(Bucket=missing.bucket, ObjectLockEnabledForBucket=True)  # the bucket is there now
            with archive.batch():
                archive.ingest(capture("third.txt"), drafts("c", 20))
            assert archive.conn.execute("SELECT source_name FROM capture ORDER BY source_name").fetchall() == [
                ("third.txt",), ("zero.txt",)]
        finally:
            archive.objects = reachable
            missing.close()


def test_a_legal_hold_the_bucket_refuses_at_commit_rolls_the_batch_back_and_the_next_one_commits(
        tmp_path: Path, rgw: LocalRGW, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_module.load(make_s3_archive(tmp_path / "arch", rgw, now=NOW))
    with Archive(config) as archive:
        objects = archive.objects
        assert objects is not None

        def refused(key: str, version_id: str, *, on: bool) -> None:  # what the service answers a denied hold
            raise TwentydayError(f"{objects.describe()}: cannot set a legal hold (AccessDenied)")

        with monkeypatch.context() as patched:
            patched.setattr(objects, "set_legal_hold", refused)
            with pytest.raises(TwentydayError, match=r"cannot set a legal hold \(AccessDenied\)"), archive.batch():
                archive.ingest(capture("first.txt"), drafts("a", 20))
                # A segment of a capture an active hold matches, written before the hold was known: its
                # hold is set once the PUT is done (BlobStore.finish), and refused.
                key, version = objects.put_segment("cap-held", b"sealed bytes", None, False)
                objects.relock(key, version, None, legal_hold=True)
        assert not archive.conn.in_transaction  # rolled back, not left open to wedge every later batch
        assert archive.conn.execute("SELECT count(*) FROM capture").fetchone() == (0,)
        with archive.batch():
            archive.ingest(capture("first.txt"), drafts("a", 20))
        assert archive.conn.execute("SELECT source_name FROM capture").fetchall() == [("first.txt",)]
