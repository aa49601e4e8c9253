"""Retention, legal holds and disposition through the real CLI, on a real archive with real keys.

Records are dated years back (GRS 6.1 item 011: seven years after the calendar-year cutoff), so
what is eligible "now" is decided by each record's own fixed rule; ``--as-of`` moves the plan's
time where a test needs it. Two officers: the one ``init`` made, and a second one whose key the
config names too (two-person approval).
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.conftest import make_mail
from twentyday import config as config_module
from twentyday import errors
from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.initialise import init_archive
from twentyday.store.archive import Archive

OLD = datetime(2015, 3, 2, 10, 0, tzinfo=UTC)  # cut off 2015-12-31: eligible since 2023-01-01
RECENT = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)  # eligible since 2033-01-01
BOSS = """
[[custodians]]
id = "boss"
name = "Capstone Official"
timezone = "America/New_York"
personal = ["boss@gmail.com"]
schedule = "grs-6.1-010"
"""


class Officers:
    def __init__(self, root: Path) -> None:
        init_archive(root, passphrase=None, demo=False, now=datetime.now(UTC))
        self.root = root
        self.config = root / "twentyday.toml"
        self.first = root / "officer.key"
        self.second = root / "second.key"
        keys.generate_identity(self.second, "second officer", None)
        assert self.run("keys", "add-recipient", str(keys.public_path(self.second))).exit_code == 0
        with self.config.open("a") as handle:
            handle.write(BOSS)
        self.runner = CliRunner()
        self.mails = 0

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args], catch_exceptions=False)

    def ok(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.exit_code == 0, result.output
        return result

    def ingest(self, *, date: datetime, to: str = "counterpart@partner.example", body: str = "routine note",
               custodian: str = "jdoe", sender: str = "Jane Doe <jane.doe@gmail.com>") -> str:
        self.mails += 1
        path = self.root / f"m{self.mails}.eml"
        path.write_bytes(make_mail(sender=sender, to=to, date=date, body=body, subject=f"note {self.mails}",
                                   message_id=f"<m{self.mails}@example.test>"))
        done = json.loads(self.ok("ingest", "--json", "--custodian", custodian, str(path)).output)
        [record_id] = self.db().execute("SELECT id FROM record WHERE capture_id = ?",
                                        (done[0]["capture_id"],)).fetchone()
        return str(record_id)

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.root / "data" / "index.db", isolation_level=None)

    def plan(self, *extra: str, identity: Path | None = None) -> dict[str, Any]:
        result = self.ok("retention", "plan", "--json", "--identity", str(identity or self.first), *extra)
        return dict(json.loads(result.output))

    def hold(self, *scope: str) -> str:
        result = self.ok("hold", "add", "--name", "Smith v. Agency", "--reason", "litigation hold, case 26-cv-1",
                         *scope, "--identity", str(self.first))
        return result.output.split()[2]

    def verify(self) -> dict[str, Any]:
        return dict(json.loads(self.run("verify", "--json").output))


@pytest.fixture
def officers(tmp_path: Path) -> Officers:
    return Officers(tmp_path / "arch")


def planned(plan: dict[str, Any]) -> set[str]:
    return {r["id"] for r in plan["records"]}


def test_holds_freeze_exactly_their_records_until_released_and_disposal_destroys_only_the_plan(
        officers: Officers) -> None:
    free = officers.ingest(date=OLD)
    held = officers.ingest(date=OLD, to="witness@partner.example")
    recent = officers.ingest(date=RECENT)
    capstone = officers.ingest(date=OLD, custodian="boss", sender="Boss <boss@gmail.com>")
    hold_id = officers.hold("--participant", "witness@partner.example")
    # A record that arrives after the hold is held too: the hold is a filter, evaluated now.
    later = officers.ingest(date=OLD, to="witness@partner.example")

    plan = officers.plan()
    assert planned(plan) == {free}
    assert {h["id"]: h["holds"] for h in plan["held"]} == {held: [hold_id], later: [hold_id]}
    # The Capstone official's record is permanent: never planned; the recent one is not due yet.
    assert capstone not in json.dumps(plan) and recent not in json.dumps(plan)
    assert plan["counts"] == {"considered": 5, "permanent": 1, "not_yet": 1, "rule_not_read": 0}
    [record] = plan["records"]
    assert (record["schedule"], record["authority"], record["eligible_since"]) == (
        "grs-6.1-011", "GRS 6.1, item 011", "2023-01-01T00:00:00+00:00")
    shown = json.loads(officers.ok("hold", "show", hold_id, "--json").output)
    assert (shown["state"], shown["records"], shown["scope"]["participant"]) == ("active", 2,
                                                                                 "witness@partner.example")

    # Two-person approval: no disposal before it, and the author cannot approve their own plan.
    refused = officers.run("retention", "dispose", "--plan", plan["id"], "--identity", str(officers.first))
    assert refused.exit_code == errors.InvalidArgument.exit_code and "is not approved" in refused.output
    same = officers.run("retention", "approve", plan["id"], "--identity", str(officers.first))
    assert same.exit_code == errors.InvalidArgument.exit_code and "a second officer" in same.output
    officers.ok("retention", "approve", plan["id"], "--identity", str(officers.second))

    db = officers.db()
    [capture] = db.execute("SELECT capture_id FROM record WHERE id = ?", (free,)).fetchone()
    sealed = [bytes(d) for (d,) in db.execute(
        "SELECT data FROM chunk WHERE blob_id IN (SELECT id FROM blob WHERE capture_id = ?)", (capture,))]
    slots = [bytes(s) for (s,) in db.execute("SELECT sealed FROM keyslot WHERE capture_id = ?", (capture,))]
    assert sealed and slots
    db.close()

    done = json.loads(officers.ok("retention", "dispose", "--plan", plan["id"], "--json",
                                  "--identity", str(officers.first)).output)
    assert [r["id"] for r in done["records"]] == [free] and done["record_count"] == 1
    assert [c["id"] for c in done["captures"]] == [capture]
    assert done["approver_signer"] == keys.load_recipient(keys.public_path(officers.second)).signer

    # Nothing left that any key opens, nor the sealed bytes, anywhere in the index's files.
    files = b"".join(p.read_bytes() for p in (officers.root / "data").glob("index.db*"))
    assert not any(piece[:4096] in files for piece in sealed + slots)
    db = officers.db()
    assert db.execute("SELECT count(*) FROM keyslot WHERE capture_id = ?", (capture,)).fetchone()[0] == 0
    # The tombstone remains: the record's metadata and when and under what it was destroyed.
    assert db.execute("SELECT custodian, schedule FROM record WHERE id = ?", (free,)).fetchone() == (
        "jdoe", "grs-6.1-011")
    db.close()
    report = officers.verify()
    assert report["ok"], report["problems"]
    show = officers.run("show", free, "--purpose", "FOIA", "--identity", str(officers.first))
    assert show.exit_code == errors.RecordDestroyed.exit_code
    assert f"record {free} was destroyed on " in show.output and f"under plan {plan['id']}" in show.output
    found = json.loads(officers.ok("search", "--json").output)
    assert [r["flags"] for r in found if r["id"] == free] == [["destroyed"]]
    # An export asked for it and a live record: the destroyed one is named as such, and neither
    # accounted as disclosed nor as failed (nothing of it is left to disclose).
    passphrase = officers.root / "zip.pass"
    passphrase.write_text("correct horse battery staple\n")
    passphrase.chmod(0o600)
    exported = officers.ok("export", "--format", "jsonl", "--identity", str(officers.first), "--purpose",
                           "FOIA request 26-001", "--recipient", "Requester", "--recipient-address", "1 Main St",
                           "--zip-passphrase-file", str(passphrase), "--record", free, "--record", held,
                           "--out", str(officers.root / "foia.zip"))
    assert f"left out:   {free}: record {free} was destroyed on " in exported.output
    accounted = json.loads(officers.ok("audit", "--json").output)
    assert [(d["action"], d["subjects"]) for d in accounted if d["action"] != "show"] == [("export", [held])]
    all_gone = officers.run("export", "--format", "jsonl", "--identity", str(officers.first), "--purpose", "FOIA",
                            "--recipient", "Requester", "--recipient-address", "1 Main St",
                            "--zip-passphrase-file", str(passphrase), "--record", free,
                            "--out", str(officers.root / "none.zip"))
    assert all_gone.exit_code == errors.RecordDestroyed.exit_code and "was destroyed on" in all_gone.output
    assert not (officers.root / "none.zip").exists()
    again = officers.run("retention", "dispose", "--plan", plan["id"], "--identity", str(officers.first))
    assert again.exit_code == errors.InvalidArgument.exit_code and "disposed of already" in again.output

    # Released: its records follow their own rules again.
    officers.ok("hold", "release", hold_id, "--reason", "case settled", "--identity", str(officers.second))
    assert planned(officers.plan()) == {held, later}
    assert json.loads(officers.ok("hold", "list", "--json").output)[0]["state"] == "released"
    report = officers.verify()
    assert report["ok"], report["problems"]


def test_a_hold_placed_after_the_plan_keeps_its_records_at_disposal(officers: Officers) -> None:
    with officers.config.open("a") as handle:
        handle.write("\n[retention]\ntwo_person_approval = false\n")
    first = officers.ingest(date=OLD, body="the pelican budget")
    second = officers.ingest(date=OLD, body="routine")
    plan = officers.plan()
    assert planned(plan) == {first, second}
    hold_id = officers.hold("--text", "pelican")
    # Only tokens of the blind index are kept, never the words.
    db = officers.db()
    assert b"pelican" not in json.dumps(db.execute("SELECT * FROM hold").fetchall()).encode()
    db.close()
    result = officers.ok("retention", "dispose", "--plan", plan["id"], "--identity", str(officers.first))
    assert f"skipped: {first}: held by {hold_id}" in result.output
    assert "1 record(s) destroyed" in result.output
    assert officers.run("show", first, "--purpose", "review", "--identity", str(officers.first)).exit_code == 0
    assert officers.run("show", second, "--purpose", "review",
                        "--identity", str(officers.first)).exit_code == errors.RecordDestroyed.exit_code
    assert officers.verify()["ok"]


def test_records_sharing_a_capture_with_a_record_not_yet_due_are_deferred(officers: Officers) -> None:
    old = officers.ingest(date=OLD)
    # The same message again in a capture that also brings a recent one: that capture cannot go yet.
    path = officers.root / "both.mbox"
    old_mail = make_mail(date=OLD, subject="note 1", message_id="<m1@example.test>")
    new_mail = make_mail(date=RECENT, subject="new", message_id="<new@example.test>")
    path.write_bytes(b"From a@b Mon Jan  1 00:00:00 2024\n" + old_mail + b"\nFrom a@b Mon Jan  1 00:00:00 2024\n"
                     + new_mail)
    officers.ok("ingest", "--custodian", "jdoe", str(path))
    plan = officers.plan()
    assert planned(plan) == set()
    [deferred] = plan["deferred"]
    assert deferred["id"] == old and "also hold(s) 1 record(s) not in this disposition" in deferred["reason"]
    # Once the recent one is due too, both go, with both captures.
    later = officers.plan("--as-of", "2034-01-02T00:00:00+00:00")
    assert len(later["records"]) == 2 and len(later["captures"]) == 2


def test_a_retention_edited_in_the_index_is_named_by_verify_and_refused_by_the_plan(officers: Officers) -> None:
    record_id = officers.ingest(date=RECENT)
    db = officers.db()
    [text] = db.execute("SELECT retention FROM record WHERE id = ?", (record_id,)).fetchone()
    rule = json.loads(text)
    assert (rule["schedule"], rule["retain_years"], rule["cutoff"]) == ("grs-6.1-011", 7, "calendar_year")
    db.execute("UPDATE record SET retention = ?, schedule = 'grs-6.1-012' WHERE id = ?",
               (json.dumps({**rule, "retain_years": 0, "retain_days": 1, "schedule": "grs-6.1-012"}), record_id))
    db.close()
    report = officers.verify()
    assert {(p["kind"], p["object"]) for p in report["problems"]} == {("altered", f"record {record_id}")}
    plan = officers.plan()
    assert planned(plan) == set()
    assert [r["id"] for r in plan["refused"]] == [record_id]


def test_a_config_that_shortens_a_grs_item_is_refused_naming_the_key(officers: Officers) -> None:
    with officers.config.open("a") as handle:
        handle.write('\n[[schedules]]\nid = "grs-6.1-011"\nauthority = "GRS 6.1, item 011"\nretain_years = 3\n')
    result = officers.run("search")
    assert result.exit_code == errors.ConfigError.exit_code
    assert "schedules[0].retain_years: grs-6.1-011 cannot keep records less long than GRS 6.1, item 011" \
        in result.output
    text = officers.config.read_text().replace("retain_years = 3", "permanent = true")
    officers.config.write_text(text.replace('id = "grs-6.1-011"', 'id = "grs-6.1-010"'))
    result = officers.run("search")
    assert result.exit_code == errors.ConfigError.exit_code and "schedules[0].transfer_years" in result.output


def test_a_record_keeps_the_rule_it_was_captured_under_when_the_config_changes(officers: Officers) -> None:
    record_id = officers.ingest(date=OLD)
    text = officers.config.read_text().replace('schedule = "grs-6.1-011"', 'schedule = "grs-5.2-010"')
    officers.config.write_text(text)
    newer = officers.ingest(date=RECENT)
    # The old record keeps seven years; the new one carries the transitory rule, due 180 days on.
    assert planned(officers.plan("--as-of", "2026-01-01T00:00:00+00:00")) == {record_id, newer}
    assert planned(officers.plan("--as-of", "2025-11-28T00:00:00+00:00")) == {record_id}
    assert planned(officers.plan("--as-of", "2022-12-31T00:00:00+00:00")) == set()


def test_nothing_a_custodian_receives_changes_when_a_hold_is_placed(officers: Officers) -> None:
    officers.ingest(date=datetime.now(UTC))
    config = config_module.load(officers.config)
    moment = datetime.now(UTC)

    def custodian_side() -> list[Any]:
        with Archive(config) as archive:
            archive.evaluate_alerts(moment)
            return [archive.conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                    for t in ("alert", "alert_event", "delivery")]

    before = custodian_side()
    officers.hold("--custodian", "jdoe")
    officers.ok("alerts", "deliver", "--as-of", moment.isoformat())
    after = custodian_side()
    assert after[:2] == before[:2]
    assert "Smith" not in json.dumps(after, default=str) and "hold" not in json.dumps(after[2], default=str)
