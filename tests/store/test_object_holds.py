"""Legal holds and disposition on the bucket's objects, through the real CLI, against a real Ceph RGW.

What an officer does (place and release holds, plan and dispose) and what someone holding the
archive's own bucket key then can and cannot do (fixture ``s3``: the very keys the archive uses).
The records fall under a one-day rule counted from their own date (cutoff "creation") and are
dated a day less :data:`LEAD` seconds before the test starts: their captures' locks end that soon
after, in the RGW's real time, so a test sees a lock end.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner, Result

from tests.conftest import make_mail
from tests.rgw import LocalRGW
from tests.s3archive import make_s3_archive
from twentyday import config as config_module
from twentyday import errors
from twentyday.canonical import iso
from twentyday.cli import cli
from twentyday.store import object_disposal
from twentyday.store.objects import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

#: Seconds from the archive's making to the end of its due records' locks (ingests run meanwhile).
LEAD = 5
DAY_RULE = """
[[schedules]]
id = "test-1d"
title = "Transitory notes (a day)"
authority = "Test schedule, item 1"
permanent = false
retain_years = 0
retain_days = 1
cutoff = "creation"
transfer_years = 0

[retention]
two_person_approval = false
"""
WITNESS = "witness@partner.example"


class Bucketed:
    """An archive whose blobs are in a new bucket of the local RGW; jdoe's records under the one-day rule."""

    def __init__(self, root: Path, rgw: LocalRGW, s3: S3Client, *, min_retention_days: int = 0) -> None:
        self.config = make_s3_archive(root, rgw, now=datetime.now(UTC), min_retention_days=min_retention_days,
                                      extra_config=DAY_RULE)
        self.config.write_text(self.config.read_text().replace('schedule = "grs-6.1-011"', 'schedule = "test-1d"'))
        loaded = config_module.load(self.config)
        assert loaded.blobs is not None
        self.target = loaded.blobs
        self.bucket = loaded.blobs.bucket
        self.index = loaded.data_dir / "index.db"
        self.identity = root / "officer.key"
        self.root = root
        self.s3 = s3
        self.mails = 0
        #: When the locks of the records ingested ``due=True`` end (whole seconds: a Date header's).
        self.due = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD)

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args])

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result.output

    def ingest(self, *, to: str = "counterpart@partner.example", due: bool = True, raw: bytes | None = None) -> tuple[
            str, str]:
        """One mail from jdoe; (its record, the capture that brought it or, for bytes linked, the new one)."""
        self.mails += 1
        date = self.due - timedelta(days=1) if due else datetime.now(UTC) - timedelta(hours=1)
        raw = raw or make_mail(to=to, date=date, subject=f"note {self.mails}", message_id=f"<m{self.mails}@t.test>")
        path = self.root / f"m{self.mails}.eml"
        path.write_bytes(raw)
        [done] = json.loads(self.ok("ingest", "--json", "--custodian", "jdoe", str(path)))
        capture = str(done["capture_id"])
        with sqlite3.connect(self.index) as db:
            found = db.execute("SELECT id FROM record WHERE capture_id = ? UNION SELECT record_id FROM record_capture "
                               "WHERE capture_id = ?", (capture, capture)).fetchall()
        [(record,)] = found
        return str(record), capture

    def hold(self, *scope: str) -> tuple[str, str]:
        """Place a hold; its id, and what the command printed."""
        output = self.ok("hold", "add", "--name", "Smith v. Agency", "--reason", "litigation hold, case 26-cv-1",
                         *scope, "--identity", str(self.identity))
        return output.split()[2], output

    def plan(self) -> dict[str, Any]:
        return dict(json.loads(self.ok("retention", "plan", "--json", "--identity", str(self.identity))))

    def dispose(self, plan_id: str) -> dict[str, Any]:
        return dict(json.loads(self.ok("retention", "dispose", "--plan", plan_id, "--json",
                                       "--identity", str(self.identity))))

    def versions(self, capture: str) -> set[tuple[str, str]]:
        """Every version under the capture's prefix, delete markers too."""
        found = self.s3.list_object_versions(Bucket=self.bucket, Prefix=f"captures/{capture}/")
        return {(v["Key"], v["VersionId"]) for v in [*found.get("Versions", []), *found.get("DeleteMarkers", [])]}

    def held(self, capture: str) -> list[str]:
        """The legal hold of each version of the capture (delete markers have none)."""
        found = self.s3.list_object_versions(Bucket=self.bucket, Prefix=f"captures/{capture}/").get("Versions", [])
        return [self.s3.get_object_legal_hold(Bucket=self.bucket, Key=v["Key"], VersionId=v["VersionId"])
                ["LegalHold"]["Status"] for v in found]

    def wait_for_locks_to_end(self) -> None:
        time.sleep(max(0.0, (self.due - datetime.now(UTC)).total_seconds()) + 0.5)

    def show(self, record: str) -> Result:
        return self.run("show", record, "--purpose", "review", "--identity", str(self.identity))

    def verify_ok(self) -> None:
        report = json.loads(self.run("verify", "--json").output)
        assert report["ok"], report["problems"]


@pytest.fixture
def bucketed(tmp_path: Path, rgw: LocalRGW, s3: S3Client) -> Bucketed:
    return Bucketed(tmp_path / "arch", rgw, s3)


def test_a_held_capture_cannot_be_deleted_after_its_retention_ended_until_the_hold_is_released(
        bucketed: Bucketed, s3: S3Client) -> None:
    _, capture = bucketed.ingest(to=WITNESS)
    [(key, version)] = bucketed.versions(capture)
    until = s3.get_object_retention(Bucket=bucketed.bucket, Key=key, VersionId=version)["Retention"]
    assert until["RetainUntilDate"].astimezone(UTC) == bucketed.due  # locked, for a few seconds more
    hold_id, said = bucketed.hold("--participant", WITNESS)
    assert "legal hold set on 1 object(s) of 1 capture(s)" in said
    bucketed.wait_for_locks_to_end()

    with pytest.raises(ClientError) as refused:  # the archive's own key, the lock over: the hold keeps it
        s3.delete_object(Bucket=bucketed.bucket, Key=key, VersionId=version)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"

    said = bucketed.ok("hold", "release", hold_id, "--reason", "case settled", "--identity", str(bucketed.identity))
    assert "taken off 1 object(s) of 1 capture(s)" in said
    assert bucketed.held(capture) == ["OFF"]
    s3.delete_object(Bucket=bucketed.bucket, Key=key, VersionId=version)
    assert bucketed.versions(capture) == set()


def test_a_hold_placed_after_ingest_holds_exactly_the_captures_of_its_records(bucketed: Bucketed) -> None:
    record, first = bucketed.ingest(to=WITNESS, due=False)
    _, other = bucketed.ingest(due=False)
    # The same message relayed again later: a capture of its own, linked to the record (it holds it too).
    raw = make_mail(to=WITNESS, date=datetime.now(UTC) - timedelta(hours=1), subject="note 1",
                    message_id="<m1@t.test>")
    linked_record, linked = bucketed.ingest(raw=b"X-Relay: later\r\n" + raw)
    assert linked_record == record and linked != first
    assert bucketed.held(first) == bucketed.held(other) == bucketed.held(linked) == ["OFF"]

    _, said = bucketed.hold("--participant", WITNESS)
    assert "legal hold set on 2 object(s) of 2 capture(s)" in said
    assert bucketed.held(first) == bucketed.held(linked) == ["ON"]
    assert bucketed.held(other) == ["OFF"]
    # Again: nothing to change (each flag is read first), here nor by a sync.
    _, said = bucketed.hold("--participant", WITNESS)
    assert "legal hold set on 0 object(s) of 0 capture(s); 2 object(s) of 2 capture(s) looked at" in said
    said = bucketed.ok("hold", "sync")
    assert "legal hold set on 0 object(s) of 0 capture(s); 2 object(s) of 2 capture(s)" in said


def test_a_text_hold_written_held_at_ingest_is_made_exact_by_sync(bucketed: Bucketed) -> None:
    # Ingest cannot ask the blind index yet, so a --text hold holds every capture its other filters
    # match; 'hold sync' then leaves the hold only on the capture whose words match.
    bucketed.hold("--custodian", "jdoe", "--text", "pelican")
    _, matching = bucketed.ingest(raw=make_mail(body="the pelican budget", message_id="<p@t.test>"))
    _, other = bucketed.ingest(raw=make_mail(body="routine note", message_id="<r@t.test>"))
    assert bucketed.held(matching) == bucketed.held(other) == ["ON"]
    said = bucketed.ok("hold", "sync")
    assert "taken off 1 object(s) of 1 capture(s)" in said
    assert bucketed.held(matching) == ["ON"] and bucketed.held(other) == ["OFF"]


def test_a_disposition_after_retention_deletes_exactly_the_planned_versions(
        bucketed: Bucketed, s3: S3Client) -> None:
    gone, planned_capture = bucketed.ingest()
    kept, kept_capture = bucketed.ingest(due=False)
    # Someone with the bucket's key left a stray under the planned capture and a delete marker over
    # its segment: both are versions of the capture, and go with it.
    [(segment, _)] = bucketed.versions(planned_capture)
    s3.put_object(Bucket=bucketed.bucket, Key=f"captures/{planned_capture}/{'0' * 64}", Body=b"stray")
    s3.delete_object(Bucket=bucketed.bucket, Key=segment)
    before = bucketed.versions(planned_capture)
    untouched = bucketed.versions(kept_capture)
    assert len(before) == 3 and len(untouched) == 1
    bucketed.wait_for_locks_to_end()

    plan = bucketed.plan()
    assert [r["id"] for r in plan["records"]] == [gone] and plan["captures"] == [planned_capture]
    done = bucketed.dispose(plan["id"])
    assert [r["id"] for r in done["records"]] == [gone] and done["skipped"] == []
    [capture] = done["captures"]
    assert capture["id"] == planned_capture
    assert {(o["key"], o["version_id"]) for o in capture["objects"]} == before
    assert [o for o in capture["objects"] if o.get("delete_marker")] != []
    assert "objects_not_deleted" not in done
    assert bucketed.versions(planned_capture) == set()
    assert bucketed.versions(kept_capture) == untouched

    # As in the embedded store: the tombstone, the record named destroyed, the other one readable.
    shown = bucketed.show(gone)
    assert shown.exit_code == errors.RecordDestroyed.exit_code and f"under plan {plan['id']}" in shown.output
    assert bucketed.show(kept).exit_code == 0
    with sqlite3.connect(bucketed.index) as db:
        assert db.execute("SELECT count(*) FROM chunk WHERE blob_id IN (SELECT id FROM blob WHERE capture_id = ?)",
                          (planned_capture,)).fetchone()[0] == 0
        assert db.execute("SELECT disposition_id FROM disposed_capture WHERE capture_id = ?",
                          (planned_capture,)).fetchone() == (done["id"],)
    bucketed.verify_ok()
    with sqlite3.connect(bucketed.index) as db:
        certified = object_disposal.certified_versions(db)
    assert {(v.capture, v.key, v.version_id) for v in certified} == {(planned_capture, *kv) for kv in before}


def test_a_disposition_while_the_objects_are_still_locked_skips_their_capture(
        tmp_path: Path, rgw: LocalRGW, s3: S3Client) -> None:
    # The bucket keeps everything a day at least: longer than the records' own rule.
    bucketed = Bucketed(tmp_path / "arch", rgw, s3, min_retention_days=1)
    record, capture = bucketed.ingest()
    before = bucketed.versions(capture)
    [(key, version)] = before
    until = s3.get_object_retention(Bucket=bucketed.bucket, Key=key, VersionId=version)["Retention"]["RetainUntilDate"]
    assert until.astimezone(UTC) > datetime.now(UTC) + timedelta(hours=23)
    bucketed.wait_for_locks_to_end()

    plan = bucketed.plan()
    assert [r["id"] for r in plan["records"]] == [record]  # eligible under its own rule
    result = bucketed.run("retention", "dispose", "--plan", plan["id"], "--identity", str(bucketed.identity))
    assert result.exit_code == 0, result.output
    reason = f"its sealed objects are locked until {iso(until.astimezone(UTC))} ({capture})"
    assert f"skipped: {record}: {reason}" in result.output
    assert "0 record(s) destroyed in 0 capture(s)" in result.output
    assert bucketed.versions(capture) == before
    assert bucketed.show(record).exit_code == 0
    bucketed.verify_ok()


def test_a_hold_placed_between_plan_and_disposal_keeps_its_records_and_objects(bucketed: Bucketed) -> None:
    held, held_capture = bucketed.ingest(to=WITNESS)
    free, free_capture = bucketed.ingest()
    objects = bucketed.versions(held_capture)
    bucketed.wait_for_locks_to_end()
    plan = bucketed.plan()
    assert {r["id"] for r in plan["records"]} == {held, free}

    hold_id, said = bucketed.hold("--participant", WITNESS)
    assert "legal hold set on 1 object(s) of 1 capture(s)" in said
    done = bucketed.dispose(plan["id"])
    assert done["skipped"] == [{"id": held, "reason": f"held by {hold_id}"}]
    assert [c["id"] for c in done["captures"]] == [free_capture]
    assert bucketed.versions(held_capture) == objects and bucketed.held(held_capture) == ["ON"]
    assert bucketed.versions(free_capture) == set()
    assert bucketed.show(held).exit_code == 0
    bucketed.verify_ok()


def test_a_hold_the_bucket_did_not_take_is_reported_and_set_by_sync(bucketed: Bucketed) -> None:
    _, capture = bucketed.ingest(to=WITNESS, due=False)
    text = bucketed.config.read_text()
    bucketed.config.write_text(text.replace(bucketed.target.endpoint, "http://127.0.0.1:9"))  # the bucket is down
    result = bucketed.run("hold", "add", "--name", "Matter 9", "--reason", "litigation", "--participant", WITNESS,
                          "--identity", str(bucketed.identity))
    assert result.exit_code == errors.IntegrityError.exit_code
    assert "placed hold hold-" in result.output  # committed in the index: the fact is kept
    assert "the bucket's legal holds do not follow the archive's holds yet" in result.output
    assert "run 'twentyday hold sync'" in result.output and "Traceback" not in result.output
    bucketed.config.write_text(text)
    assert bucketed.held(capture) == ["OFF"]
    assert "legal hold set on 1 object(s) of 1 capture(s)" in bucketed.ok("hold", "sync")
    assert bucketed.held(capture) == ["ON"]


def test_a_deletion_the_bucket_refuses_after_the_commit_is_reported_and_finished_by_a_rerun(
        bucketed: Bucketed, s3: S3Client, monkeypatch: pytest.MonkeyPatch) -> None:
    record, capture = bucketed.ingest()
    [(key, version)] = bucketed.versions(capture)
    bucketed.wait_for_locks_to_end()
    plan = bucketed.plan()

    inspect = object_disposal.inspect

    def an_administrator_holds_it_meanwhile(objects: ObjectStore, captures: Any, at: datetime) -> Any:
        found = inspect(objects, captures, at)
        s3.put_object_legal_hold(Bucket=bucketed.bucket, Key=key, VersionId=version, LegalHold={"Status": "ON"})
        return found

    monkeypatch.setattr(object_disposal, "inspect", an_administrator_holds_it_meanwhile)
    result = bucketed.run("retention", "dispose", "--plan", plan["id"], "--json", "--identity",
                          str(bucketed.identity))
    assert result.exit_code == errors.IntegrityError.exit_code
    done = json.loads(result.stdout)
    assert done["record_count"] == 1
    assert [(o["key"], o["version_id"], o["error"]) for o in done["objects_not_deleted"]] == [
        (key, version, "AccessDenied")]
    assert f"not deleted: {key} version {version} ({capture}): AccessDenied" in result.stderr
    assert "the bucket kept 1 object version(s) the certificate destroyed" in result.stderr
    assert bucketed.show(record).exit_code == errors.RecordDestroyed.exit_code
    # What verify is given to name: the version a certificate destroyed that the bucket still holds.
    objects = ObjectStore(bucketed.target)
    with sqlite3.connect(bucketed.index) as db:
        left = object_disposal.remaining(objects, object_disposal.certified_versions(db))
    assert [(v.disposition, v.capture, v.key, v.version_id) for v in left] == [(done["id"], capture, key, version)]
    named = bucketed.run("verify")  # and verify names it, until the rerun deletes it
    assert named.exit_code == errors.IntegrityError.exit_code
    assert f"1 sealed object version(s) remain in the bucket, yet certificate {done['id']} destroyed them" in \
        named.output, named.output

    s3.put_object_legal_hold(Bucket=bucketed.bucket, Key=key, VersionId=version, LegalHold={"Status": "OFF"})
    said = bucketed.ok("retention", "dispose", "--plan", plan["id"], "--identity", str(bucketed.identity))
    assert f"disposed of under certificate {done['id']}: 1 object version(s)" in said
    assert bucketed.versions(capture) == set()
    assert bucketed.run("verify").exit_code == 0
    again = bucketed.run("retention", "dispose", "--plan", plan["id"], "--identity", str(bucketed.identity))
    assert again.exit_code == errors.InvalidArgument.exit_code and "disposed of already" in again.output
    objects.close()
