"""``verify`` after an officer's ``show``: the head it reports is the newest entry it proved.

``show`` ledgers a disclosure signed by the officer, not by the daemon; no checkpoint covers it
until the daemon's next commit. ``verify`` still proves it (chained, officer-signed), so its
``"head"`` names that entry (``seq:hash``), says how many entries are past the last checkpoint,
and ``verify --head`` holds a later archive to it: contained and extended, never cut off.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import make_mail
from tests.indexdb import keep_a_copy, open_index
from twentyday.cli import cli


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


def verify_json(config: Path, *args: str) -> tuple[int, dict[str, object]]:
    code, output = run(config, "verify", "--json", *args)
    return code, json.loads(output)


def ingest(config: Path, name: str, body: str) -> None:
    mail = config.parent.parent / name
    mail.write_bytes(make_mail(body=body, message_id=f"<{name}@x>"))
    code, output = run(config, "ingest", "--custodian", "jdoe", str(mail))
    assert code == 0, output


def show(config: Path) -> None:
    code, output = run(config, "search", "--json")
    assert code == 0, output
    record_id = json.loads(output)[0]["id"]
    code, output = run(config, "show", record_id, "--json", "--identity", str(config.parent / "officer.key"),
                       "--purpose", "a records request")
    assert code == 0, output


def last_entry(config: Path) -> tuple[int, str, str]:
    conn = open_index(config.parent)
    try:
        seq, kind, digest = conn.execute("SELECT seq, kind, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        return int(seq), str(kind), str(digest)
    finally:
        conn.close()


def test_after_a_show_verify_reports_the_disclosure_as_its_head_and_holds_the_archive_to_it(
        archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, "first.eml", "Before the request.")
    code, before = verify_json(config)
    assert code == 0 and before["past_checkpoint"] == 0 and before["head"] == before["checkpoint"]
    put_back = keep_a_copy(archive_dir)

    show(config)
    seq, kind, digest = last_entry(config)
    assert kind == "disclosure"
    code, report = verify_json(config)
    assert code == 0, report
    assert report["head"] == f"{seq}:{digest}"  # the disclosure's entry, not "(none)"
    assert report["checkpoint"] == before["checkpoint"] and report["past_checkpoint"] == 1
    code, text = run(config, "verify")
    assert code == 0, text
    assert text.splitlines()[-1].endswith(
        f"; head {seq}:{digest} (1 entry after the last signed checkpoint, each an officer-signed disclosure)")

    # The head verify reported holds: now, and after the daemon's next checkpoint extends it.
    head = str(report["head"])
    code, held = verify_json(config, "--head", head)
    assert code == 0 and held["heads_checked"] == 1, held
    ingest(config, "second.eml", "After the request.")
    code, extended = verify_json(config, "--head", head)
    assert code == 0, extended
    assert extended["past_checkpoint"] == 0 and extended["head"] == extended["checkpoint"] != before["checkpoint"]
    assert str(extended["head"]).split(":")[0] == str(seq + 2)  # the mail's pack and capture entries, signed

    # An archive put back to before the disclosure no longer contains that head.
    put_back()
    code, output = run(config, "verify", "--head", head)
    assert code == 5, output
    assert f"truncated: published head {seq}: the ledger ends at entry {seq - 1}" in output


def test_a_head_past_the_checkpoint_that_is_not_this_chain_s_entry_is_named(archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, "first.eml", "Before the request.")
    show(config)
    seq, _, _ = last_entry(config)
    code, output = run(config, "verify", "--head", f"{seq}:{'0' * 64}")
    assert code == 5, output
    assert f"altered: published head {seq}: ledger entry {seq} differs from the published head" in output


def test_a_disclosure_past_the_checkpoint_that_fails_its_signature_is_not_reported_as_the_head(
        archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, "first.eml", "Before the request.")
    code, before = verify_json(config)
    show(config)
    conn = open_index(archive_dir)
    conn.execute("UPDATE disclosure SET purpose = 'something else'")
    conn.close()
    code, report = verify_json(config)
    assert code == 5
    assert report["head"] == report["checkpoint"] == before["checkpoint"]  # what was proved, no further
    assert report["past_checkpoint"] == 1
