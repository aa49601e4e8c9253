"""`twentyday export`: refusals, accounting, the AES zip a recipient opens with 7-Zip, jsonl and mbox."""

from __future__ import annotations

import json
import re
import subprocess
import zipfile

import pytest
import pyzipper

from tests.export.conftest import PASSPHRASE, Officer, tool, unzip
from twentyday import errors
from twentyday.config import DEFAULT_DISSEMINATION_NOTICE


def mail_ids(officer: Officer) -> list[str]:
    return [r["id"] for r in officer.search("--platform", "email")]


@pytest.mark.parametrize("missing", ["--identity", "--purpose", "--recipient", "--recipient-address"])
def test_an_export_without_identity_purpose_or_recipient_is_refused_and_nothing_is_written(
        officer: Officer, missing: str) -> None:
    out = officer.tmp / "out.zip"
    args = {"--identity": str(officer.identity), "--purpose": "FOIA", "--recipient": "OIG",
            "--recipient-address": "1 Example Plaza"}
    del args[missing]
    result = officer.run("export", "--format", "jsonl", *[x for kv in args.items() for x in kv],
                         "--zip-passphrase-file", str(officer.zip_passphrase), "--custodian", "jdoe", "--out", str(out))
    assert result.exit_code == 2
    assert f"Missing option '{missing}'" in result.output
    assert not out.exists()
    assert officer.audit() == []


@pytest.mark.parametrize("blank", ["--purpose", "--recipient", "--recipient-address"])
def test_a_blank_purpose_or_recipient_is_refused(officer: Officer, blank: str) -> None:
    out = officer.tmp / "out.zip"
    values = {"purpose": "FOIA", "recipient": "OIG", "address": "1 Example Plaza"}
    values[{"--purpose": "purpose", "--recipient": "recipient", "--recipient-address": "address"}[blank]] = "  "
    result = officer.export("jsonl", out, "--custodian", "jdoe", **values)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{blank}'" in result.output
    assert not out.exists()
    assert officer.audit() == []


def test_an_export_needs_exactly_one_way_to_encrypt(officer: Officer) -> None:
    out = officer.tmp / "out.zip"
    assert officer.export("jsonl", out, "--custodian", "jdoe", encrypt=()).exit_code == 2
    both = ("--zip-passphrase-file", str(officer.zip_passphrase), "--to", "age1xyz")
    result = officer.export("jsonl", out, "--custodian", "jdoe", encrypt=both)
    assert result.exit_code == 2
    assert "choose how the export is encrypted" in result.output
    assert not out.exists()
    assert officer.audit() == []


def test_an_existing_output_is_never_overwritten(officer: Officer) -> None:
    out = officer.tmp / "out.zip"
    out.write_bytes(b"keep me")
    result = officer.export("jsonl", out, "--custodian", "jdoe")
    assert result.exit_code == errors.InvalidArgument.exit_code
    assert result.output.strip() == f"twentyday: {out} exists: an export never overwrites a file"
    assert out.read_bytes() == b"keep me"
    assert officer.audit() == []


def test_a_passphrase_file_others_can_read_is_refused(officer: Officer) -> None:
    officer.zip_passphrase.chmod(0o644)
    out = officer.tmp / "out.zip"
    result = officer.export("jsonl", out, "--custodian", "jdoe")
    assert result.exit_code == errors.KeyMaterialError.exit_code
    assert "--zip-passphrase-file" in result.output and "chmod" in result.output
    assert not out.exists()
    assert officer.audit() == []


def test_an_unknown_record_is_refused_with_nothing_accounted(officer: Officer) -> None:
    out = officer.tmp / "out.zip"
    result = officer.export("jsonl", out, "--record", "rec-nope")
    assert result.exit_code == errors.NotFoundError.exit_code
    assert result.output.strip() == "twentyday: no record 'rec-nope'"
    assert not out.exists()
    assert officer.audit() == []


def test_jsonl_export_is_an_aes_zip_7zip_opens_with_every_record_the_notice_and_one_disclosure(
        officer: Officer) -> None:
    records = officer.search("--custodian", "jdoe")
    assert len(records) == 19  # 5 + 10 Budget Team, 2 Ops, 2 mails
    out = officer.tmp / "foia.zip"
    result = officer.export("jsonl", out, "--custodian", "jdoe")
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o600
    # Every member is AES-256, WinZip AE-2; nothing of it is readable without the passphrase.
    with pyzipper.AESZipFile(out) as opened:
        infos = opened.infolist()
        assert infos[0].filename == "NOTICE.txt"
        assert all(i.flag_bits & 0x1 for i in infos)
        assert {(i.wz_aes_strength, i.wz_aes_version) for i in infos} == {(3, 2)}
    with pytest.raises(RuntimeError):
        zipfile.ZipFile(out).read("records.jsonl")
    assert PASSPHRASE.encode() not in out.read_bytes()

    folder = unzip(out, officer.tmp / "opened")
    assert DEFAULT_DISSEMINATION_NOTICE in (folder / "NOTICE.txt").read_text()
    lines = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == [r["id"] for r in records]
    deleted = [r for r in lines if r["deleted"]]
    assert [(r["sender"], r["body"], r["flags"]) for r in deleted] == \
        [("Counterpart", "This message was deleted", ["deleted"])]
    first = next(r for r in lines if r["body"] == "september 0")
    assert first["created_at"] == "2026-09-01T09:00:00-04:00"
    assert first["time_reading"]["zone"] == "America/New_York"
    assert first["time_reading"]["raw"] == "09/01/26, 09:00"
    undated = next(r for r in lines if r["subject"] == "no date")
    assert undated["created_at"] is None and undated["status"] == "undated"

    manifest = json.loads((folder / "EXPORT.json").read_text())
    assert manifest["records"] == manifest["exported"] == 19 and manifest["left_out"] == []
    [disclosure] = officer.audit()
    assert disclosure["id"] == manifest["disclosure"]
    assert (disclosure["action"], disclosure["record_count"], disclosure["purpose"], disclosure["recipient"],
            disclosure["recipient_address"]) == ("export", 19, "FOIA request 2026-0042",
                                                 "Office of Inspector General", "1 Example Plaza, Washington, DC 20001")
    assert disclosure["subjects"] == [r["id"] for r in records]
    assert officer.run("verify").exit_code == 0, officer.run("verify").output


def test_after_show_and_export_the_accounting_lists_both_with_their_counts(officer: Officer) -> None:
    record = mail_ids(officer)[0]
    shown = officer.run("show", record, "--identity", str(officer.identity), "--purpose", "check the date")
    assert shown.exit_code == 0, shown.output
    out = officer.tmp / "ops.zip"
    assert officer.export("html", out, "--conversation", "Ops").exit_code == 0
    entries = officer.audit()
    assert [(e["action"], e["record_count"], e["recipient"], e["recipient_address"]) for e in entries] == [
        ("show", 1, "self", ""), ("export", 2, "Office of Inspector General", "1 Example Plaza, Washington, DC 20001")]
    table = officer.run("audit").output
    assert "Office of Inspector General <1 Example Plaza, Washington, DC 20001>" in table
    assert table.rstrip().endswith("2 disclosure(s)")
    verified = officer.run("verify")
    assert verified.exit_code == 0, verified.output


def test_an_altered_recipient_address_is_named_by_verify(officer: Officer) -> None:
    import sqlite3

    out = officer.tmp / "ops.zip"
    assert officer.export("jsonl", out, "--conversation", "Ops").exit_code == 0
    with sqlite3.connect(officer.dir / "data" / "index.db") as conn:
        conn.execute("UPDATE disclosure SET recipient_address = 'somewhere else'")
    result = officer.run("verify")
    assert result.exit_code == errors.IntegrityError.exit_code
    assert "recipient_address" in result.output


def test_mbox_is_mboxrd_and_gives_back_each_eml_exactly(officer: Officer) -> None:
    from datetime import UTC, datetime

    from tests.conftest import make_mail
    from tests.scenario import ingest
    from twentyday import config as config_module
    from twentyday.store.archive import Archive

    quoting = officer.tmp / "quoting.eml"
    quoting.write_bytes(make_mail(message_id="<from@example.test>", subject="From lines",
                                  body="From the desk of Jane\n>From an old quote\nFrom here on, agreed."))
    with Archive(config_module.load(officer.config)) as archive:
        ingest(archive, quoting, datetime(2026, 10, 29, 8, tzinfo=UTC))
    out = officer.tmp / "mail.zip"
    assert officer.export("eml", out, "--platform", "email").exit_code == 0
    emls = {path.read_bytes() for path in (unzip(out, officer.tmp / "eml") / "mail").glob("*.eml")}
    assert len(emls) == 3
    out = officer.tmp / "mbox.zip"
    assert officer.export("mbox", out, "--platform", "email").exit_code == 0
    text = (unzip(out, officer.tmp / "mbox") / "mail.mbox").read_bytes()
    assert text.startswith(b"From jane.doe@gmail.com Wed Oct 28 10:00:00 2026\n")
    assert b"\n>From the desk of Jane\n>>From an old quote\n>From here on, agreed." in text
    # A reader of mboxrd: split at the From lines, drop each entry's closing blank line, remove one '>'.
    entries = re.split(rb"(?m)^From [^\n]*\n", text)[1:]
    assert len(entries) == 3
    back = {re.sub(rb"(?m)^>(>*From )", rb"\1", entry[:-1]) for entry in entries}
    assert back == emls


def test_mboxrd_escapes_from_lines_one_level_deeper() -> None:
    from twentyday.export.build import mboxrd

    message = b"Subject: x\r\n\r\nFrom here\r\n>From there\r\nnot From\r\n"
    assert mboxrd(message) == b"Subject: x\r\n\r\n>From here\r\n>>From there\r\nnot From\r\n\r\n"


def test_age_export_opens_with_the_age_cli(officer: Officer) -> None:
    key = officer.tmp / "recipient.txt"
    subprocess.run([tool("age-keygen"), "-o", str(key)], check=True, capture_output=True, timeout=60)
    public = next(line.split(": ")[1] for line in key.read_text().splitlines() if "public key" in line)
    out = officer.tmp / "export.age"
    result = officer.export("jsonl", out, "--conversation", "Ops", encrypt=("--to", public))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(b"age-encryption.org/v1\n")
    assert b"ops one" not in out.read_bytes()
    plain = officer.tmp / "export.zip"
    subprocess.run([tool("age"), "-d", "-i", str(key), "-o", str(plain), str(out)], check=True, timeout=60)
    with zipfile.ZipFile(plain) as opened:
        assert opened.namelist()[0] == "NOTICE.txt"
        bodies = [json.loads(line)["body"] for line in opened.read("records.jsonl").decode().splitlines()]
    assert bodies == ["ops one", "two"]


def test_the_dissemination_notice_is_configurable(officer: Officer) -> None:
    text = officer.config.read_text()
    officer.config.write_text(text + '\n[export]\ndissemination_notice = "Agency X only; ask before sharing."\n')
    out = officer.tmp / "ops.zip"
    assert officer.export("html", out, "--conversation", "Ops").exit_code == 0
    folder = unzip(out, officer.tmp / "opened")
    assert (folder / "NOTICE.txt").read_text().startswith("Agency X only; ask before sharing.")
    page = next((folder / "conversations").glob("*.html")).read_text()
    assert "Agency X only; ask before sharing." in page
