"""The archive through the same entry points a records officer uses."""

from __future__ import annotations

import json
import os
import pwd
import re
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import NOW, make_mail
from tests.store.conftest import stored_bytes
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.store.archive import Archive
from twentyday.store.writer import CaptureInput


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def ingest(archive_dir: Path, tmp_path: Path, name: str, raw: bytes, *extra: str) -> tuple[int, str]:
    path = tmp_path / name
    path.write_bytes(raw)
    return run(archive_dir, "ingest", *extra, str(path))


def search(archive_dir: Path, *args: str) -> list[dict[str, object]]:
    code, output = run(archive_dir, "search", "--json", *args)
    assert code == 0, output
    rows: list[dict[str, object]] = json.loads(output)
    return rows


def test_eml_becomes_one_record_routed_from_its_headers(archive_dir: Path, tmp_path: Path) -> None:
    raw = make_mail(date=NOW - timedelta(days=30), attachment=("minutes.pdf", b"%PDF-1.4 minutes"))
    code, output = ingest(archive_dir, tmp_path, "m.eml", raw)
    assert code == 0, output
    [record] = search(archive_dir)
    assert record["custodian"] == "jdoe"
    assert record["platform"] == "email"
    assert record["sender"] == "jane.doe@gmail.com"
    assert record["recipients"] == ["counterpart@partner.example"]
    assert record["direction"] == "sent"
    assert record["has_attachments"] is True
    assert record["status"] == "late"
    assert isinstance(record["days_late"], int) and record["days_late"] >= 10
    assert set(record) == {"id", "custodian", "platform", "channel", "conversation", "sender", "recipients",
                           "direction", "created_at", "captured_at", "deadline_at", "status", "days_late",
                           "capture_id", "has_attachments", "flags"}
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d.*[+-]\d\d:\d\d$", str(record["deadline_at"]))


def test_copy_to_official_address_is_copied(archive_dir: Path, tmp_path: Path) -> None:
    ingest(archive_dir, tmp_path, "m.eml", make_mail(cc="jane.doe@agency.example", date=NOW - timedelta(days=90)))
    [record] = search(archive_dir)
    assert record["status"] == "copied"


def test_missing_date_is_undated_with_an_alert(archive_dir: Path, tmp_path: Path) -> None:
    ingest(archive_dir, tmp_path, "m.eml", make_mail(date=None))
    [record] = search(archive_dir)
    assert record["status"] == "undated"
    assert record["created_at"] is None
    _, output = run(archive_dir, "alerts", "--json")
    assert [a["kind"] for a in json.loads(output)] == ["undated_record"]


def test_forward_without_its_original_is_undated_with_an_alert(archive_dir: Path, tmp_path: Path) -> None:
    # The original's header was cut: its 20-day clock cannot be checked, so it is not "on time".
    raw = make_mail(subject="Fwd: Meeting notes", body="Please keep this one.", date=NOW - timedelta(hours=1))
    ingest(archive_dir, tmp_path, "m.eml", raw)
    [record] = search(archive_dir)
    assert record["status"] == "undated"
    assert record["created_at"] is None
    _, output = run(archive_dir, "alerts", "--json")
    assert [a["kind"] for a in json.loads(output)] == ["undated_record"]


def test_same_bytes_twice_is_a_no_op(archive_dir: Path, tmp_path: Path) -> None:
    raw = make_mail()
    ingest(archive_dir, tmp_path, "a.eml", raw)
    code, output = ingest(archive_dir, tmp_path, "b.eml", raw)
    assert code == 0
    assert output.startswith("duplicate")
    assert len(search(archive_dir)) == 1


def test_same_message_in_a_later_capture_is_linked_and_keeps_earliest_capture(archive: Archive) -> None:
    from twentyday.parsers.mail.message import read_message
    from twentyday.pipeline.process import draft

    custodian = archive.config.custodian("jdoe")
    assert custodian is not None
    first_raw = make_mail(body="first delivery")
    message = read_message(first_raw)
    first = archive.ingest(CaptureInput("jdoe", "cli", "a.eml", first_raw, "email", NOW), [draft(custodian, message)])
    # Forwarded again later: different bytes (a relay added a header), same Message-ID.
    later_raw = b"X-Relay: later\r\n" + first_raw
    later_capture = archive.ingest(
        CaptureInput("jdoe", "cli", "b.eml", later_raw, "email", NOW + timedelta(days=40)),
        [draft(custodian, read_message(later_raw))])
    assert later_capture.new_records == []
    assert later_capture.linked_records == first.new_records
    row = archive.record_row(first.new_records[0])
    assert row["capture_id"] == first.capture_id
    assert row["status"] == "on_time"
    later = archive.conn.execute("SELECT capture_id FROM record_capture WHERE record_id = ?",
                                 (row["id"],)).fetchall()
    assert later == [(later_capture.capture_id,)]


def test_identical_chat_lines_in_one_capture_stay_two_records(archive: Archive) -> None:
    from twentyday.records import ParsedMessage
    from twentyday.store.writer import RecordDraft

    at = NOW - timedelta(days=1)
    message = ParsedMessage("whatsapp", "Team", "Jane", at, None, "ok")
    drafts = [RecordDraft(message, "sent", False, ("jdoe", "whatsapp", "Team", "Jane", at.isoformat(), "ok"))] * 2
    first = archive.ingest(CaptureInput("jdoe", "cli", "chat1.txt", b"export 1", "test", NOW), drafts)
    assert len(first.new_records) == 2
    # A later export repeats both lines and adds a third "ok": one new record, two links.
    second = archive.ingest(CaptureInput("jdoe", "cli", "chat2.txt", b"export 2", "test", NOW), drafts * 2)
    assert second.linked_count == 2
    assert second.new_count == 2


def test_text_search_uses_the_blind_index(archive_dir: Path, tmp_path: Path) -> None:
    ingest(archive_dir, tmp_path, "a.eml", make_mail(body="The pelican budget is final.", message_id="<a@x>"))
    ingest(archive_dir, tmp_path, "b.eml", make_mail(body="Lunch on Friday?", message_id="<b@x>"))
    assert len(search(archive_dir, "--text", "PELICAN budget")) == 1
    assert search(archive_dir, "--text", "pelican lunch") == []
    assert len(search(archive_dir, "--participant", "COUNTERPART@partner.example")) == 2


def test_text_search_finds_words_inside_a_long_mail(archive_dir: Path, tmp_path: Path) -> None:
    # Long bodies are tokenised piece by piece: punctuation still separates words,
    # non-ASCII text is folded, and a 70-letter run is cut as a short text's would be.
    filler = "Routine weekly update with nothing of note in it at all. " * 40
    body = f"{filler}Budget,agenda;MINISTER(visit) Straße {'x' * 70} {filler}"
    ingest(archive_dir, tmp_path, "long.eml", make_mail(body=body, message_id="<long@x>"))
    for words in ("agenda", "minister visit", "STRASSE", "x" * 64):
        assert len(search(archive_dir, "--text", words)) == 1, words
    assert search(archive_dir, "--text", "agendas") == []


def test_no_plaintext_words_in_the_data_directory_or_the_bucket(archive_dir: Path, tmp_path: Path,
                                                                backend: str) -> None:
    secret_words = ["Zanzibarian", "quokkaphone", "Operationmarmalade", "Dossierflamingo"]
    raw = make_mail(subject=f"{secret_words[0]} plan", body=f"Keep the {secret_words[1]} quiet.",
                    attachment=(f"{secret_words[2]}.txt", f"{secret_words[3]} inside".encode()))
    ingest(archive_dir, tmp_path, "m.eml", raw)
    [record] = search(archive_dir, "--text", secret_words[1])
    run(archive_dir, "show", str(record["id"]), "--identity", str(archive_dir / "officer.key"),
        "--purpose", "test")
    stored = stored_bytes(archive_dir)  # the files under data/, the bucket's objects, PostgreSQL's tables
    assert any(where.endswith("index.db") for where in stored) == (not backend.startswith("pg"))
    assert any(where.startswith("postgresql:") for where in stored) == backend.startswith("pg")
    assert any(where.startswith("s3://") for where in stored) == backend.endswith("s3")
    for where, data in stored.items():
        data = data.lower()
        for word in secret_words:
            assert word.lower().encode() not in data, f"{word} in clear in {where}"
            assert word.lower().encode("utf-16-le") not in data


def test_two_recipients_can_each_open_new_captures(archive_dir: Path, tmp_path: Path) -> None:
    keys.generate_identity(tmp_path / "escrow.key", "escrow", b"escrow passphrase")
    code, output = run(archive_dir, "keys", "add-recipient", str(tmp_path / "escrow.key.pub"))
    assert code == 0, output
    ingest(archive_dir, tmp_path, "m.eml", make_mail(body="Both officers can read this."))
    [record] = search(archive_dir)
    passfile = tmp_path / "pass"
    passfile.write_text("escrow passphrase")
    for identity, extra in [(archive_dir / "officer.key", []),
                            (tmp_path / "escrow.key", ["--passphrase-file", str(passfile)])]:
        code, output = run(archive_dir, "show", str(record["id"]), "--identity", str(identity),
                           "--purpose", "audit", *extra)
        assert code == 0, output
        assert "Both officers can read this." in output


def test_show_with_the_wrong_identity_fails_clearly_but_is_still_accounted(archive_dir: Path,
                                                                          tmp_path: Path) -> None:
    ingest(archive_dir, tmp_path, "m.eml", make_mail())
    [record] = search(archive_dir)
    keys.generate_identity(tmp_path / "stranger.key", "stranger", None)
    # A key the config does not name is refused before anything is accounted (its disclosure
    # would be signed by a key verify does not know); one named only after the capture is not.
    code, output = run(archive_dir, "show", str(record["id"]), "--identity", str(tmp_path / "stranger.key"),
                       "--purpose", "curiosity")
    assert code == 3 and "in no public key keys.recipients names" in output
    assert json.loads(run(archive_dir, "audit", "--json")[1]) == []
    assert run(archive_dir, "keys", "add-recipient", str(tmp_path / "stranger.key.pub"))[0] == 0
    code, output = run(archive_dir, "show", str(record["id"]), "--identity", str(tmp_path / "stranger.key"),
                       "--purpose", "curiosity")
    assert code == 3
    assert "was not sealed to" in output
    assert "Traceback" not in output
    code, output = run(archive_dir, "audit", "--json")
    attempt, outcome = json.loads(output)  # the attempt, then that it opened nothing
    assert (attempt["action"], attempt["purpose"]) == ("show", "curiosity")
    assert outcome["action"] == "failed"
    assert outcome["purpose"].startswith("curiosity (not opened: ")
    assert outcome["subjects"] == attempt["subjects"] == [record["id"]]
    assert run(archive_dir, "verify")[0] == 0


def test_a_disclosure_needs_a_purpose_and_names_the_account_that_made_it(
        archive_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ingest(archive_dir, tmp_path, "m.eml", make_mail(body="Numbers for Q3."))
    [record] = search(archive_dir)
    code, output = run(archive_dir, "show", str(record["id"]), "--identity", str(archive_dir / "officer.key"),
                       "--purpose", "  ")
    assert code == 2 and "--purpose" in output and "Numbers for Q3." not in output
    assert json.loads(run(archive_dir, "audit", "--json")[1]) == []
    monkeypatch.setenv("USER", "mallory")  # the environment is the caller's to set, not the account
    monkeypatch.setenv("LOGNAME", "mallory")
    code, output = run(archive_dir, "show", str(record["id"]), "--identity", str(archive_dir / "officer.key"),
                       "--purpose", "review")
    assert code == 0, output
    [disclosure] = json.loads(run(archive_dir, "audit", "--json")[1])
    assert disclosure["actor"] == pwd.getpwuid(os.getuid()).pw_name


def test_show_records_a_disclosure_in_the_audit(archive_dir: Path, tmp_path: Path) -> None:
    ingest(archive_dir, tmp_path, "m.eml", make_mail(subject="Budget", body="Numbers for Q3."))
    [record] = search(archive_dir)
    code, output = run(archive_dir, "show", str(record["id"]), "--identity", str(archive_dir / "officer.key"),
                       "--purpose", "FOIA 2026-0042", "--recipient", "FOIA office", "--actor", "rofficer")
    assert code == 0, output
    assert "Numbers for Q3." in output
    assert "Budget" in output
    code, output = run(archive_dir, "audit", "--json")
    [disclosure] = json.loads(output)
    assert disclosure["actor"] == f"rofficer (account {pwd.getpwuid(os.getuid()).pw_name})"
    assert disclosure["recipient"] == "FOIA office"
    assert disclosure["purpose"] == "FOIA 2026-0042"
    assert disclosure["subjects"] == [record["id"]]
    assert run(archive_dir, "verify")[0] == 0


def test_unreadable_mail_is_quarantined_sealed_with_an_alert(archive_dir: Path, tmp_path: Path) -> None:
    nested = b"(" * 5000 + b"x" + b")" * 5000
    raw = b"From: a@b.example\r\nTo: " + nested + b"\r\nSubject: zebrafinch\r\n\r\nbody\r\n"
    code, output = ingest(archive_dir, tmp_path, "bad.eml", raw)
    assert code == 4
    assert output.startswith("quarantined")
    assert "Traceback" not in output
    _, alerts = run(archive_dir, "alerts", "--json")
    assert [a["kind"] for a in json.loads(alerts)] == ["ingest_failed"]
    assert not [where for where, data in stored_bytes(archive_dir).items() if b"zebrafinch" in data]
    assert run(archive_dir, "verify")[0] == 0


def test_mail_for_nobody_is_kept_with_unknown_custodian_alert(archive_dir: Path, tmp_path: Path) -> None:
    raw = make_mail(sender="someone@else.example", to="other@else.example")
    code, output = ingest(archive_dir, tmp_path, "m.eml", raw)
    assert code == 0
    assert output.startswith("unrouted")
    _, alerts = run(archive_dir, "alerts", "--json")
    assert [a["kind"] for a in json.loads(alerts)] == ["unknown_custodian"]
    assert search(archive_dir) == []
    assert run(archive_dir, "verify")[0] == 0


def test_the_index_names_each_custodian_as_the_config_last_did(archive_dir: Path, tmp_path: Path) -> None:
    ingest(archive_dir, tmp_path, "m1.eml", make_mail(message_id="<c1@x>"))
    config_path = archive_dir / "twentyday.toml"
    config_path.write_text(config_path.read_text().replace('name = "Jane Doe"', 'name = "Jane Q. Doe"', 1))
    ingest(archive_dir, tmp_path, "m2.eml", make_mail(message_id="<c2@x>"))
    archive = Archive(config_module.load(config_path))
    try:
        rows = archive.conn.execute("SELECT id, name, timezone FROM custodian").fetchall()
    finally:
        archive.close()
    assert rows == [("jdoe", "Jane Q. Doe", "America/New_York")]
