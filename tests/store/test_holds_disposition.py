"""Legal holds and disposition on each store (tests/store/conftest.py: with the index in PostgreSQL
too), through the CLI: a hold by participant and one by words keep their records out of a plan,
and disposing of the plan leaves the destroyed record's metadata, flagged, and none of its words.
The whole story, on SQLite, is tests/system/test_records_management.py."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.conftest import make_mail
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.crypto import keys

OLD = datetime(2015, 3, 2, 10, 0, tzinfo=UTC)  # GRS 6.1 item 011: eligible since 2023-01-01


def test_holds_keep_their_records_and_disposal_leaves_a_flagged_tombstone_without_its_words(
        archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"

    notes: list[str] = []

    def run(*args: str) -> Any:
        result = CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        notes.append(result.stderr)
        return json.loads(result.stdout) if "--json" in args else result.stdout

    second = archive_dir / "second.key"
    keys.generate_identity(second, "second officer", None)
    run("keys", "add-recipient", str(keys.public_path(second)))
    mails = {"free": ("a@partner.example", "routine pelican"), "witness": ("witness@partner.example", "routine"),
             "words": ("b@partner.example", "keep the zebrafinch")}
    ids = {}
    for n, (name, (to, body)) in enumerate(mails.items()):
        path = archive_dir / f"{name}.eml"
        path.write_bytes(make_mail(to=to, date=OLD, body=body, subject=f"note {n}", message_id=f"<{name}@x>"))
        [done] = run("ingest", "--json", "--custodian", "jdoe", str(path))
        [record] = run("search", "--json", "--participant", to)
        assert record["capture_id"] == done["capture_id"]
        ids[name] = record["id"]
    officer = str(archive_dir / "officer.key")
    run("hold", "add", "--name", "Smith", "--reason", "litigation", "--participant", "WITNESS@partner.example",
        "--identity", officer)
    run("hold", "add", "--name", "Jones", "--reason", "litigation", "--text", "Zebrafinch", "--identity", officer)

    plan = run("retention", "plan", "--json", "--identity", officer)
    assert [r["id"] for r in plan["records"]] == [ids["free"]]
    assert sorted(h["id"] for h in plan["held"]) == sorted([ids["witness"], ids["words"]])
    run("retention", "approve", plan["id"], "--identity", str(second))
    done = run("retention", "dispose", "--plan", plan["id"], "--json", "--identity", officer)
    assert [r["id"] for r in done["records"]] == [ids["free"]]
    # PostgreSQL cannot zero what it deleted: the officer is told where copies of the pages stay.
    in_postgresql = config_module.load(config).index is not None
    assert ("write-ahead log, its replicas and its backups" in notes[-1]) == in_postgresql, notes[-1]

    flags = {r["id"]: r["flags"] for r in run("search", "--json")}
    assert flags == {ids["free"]: ["destroyed"], ids["witness"]: [], ids["words"]: []}
    assert run("search", "--json", "--text", "pelican") == []  # its words went with it
    assert [r["id"] for r in run("search", "--json", "--text", "zebrafinch")] == [ids["words"]]
    report = run("verify", "--json")
    assert report["ok"], report["problems"]
