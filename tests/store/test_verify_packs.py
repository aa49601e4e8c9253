"""verify on content packs: one ledger entry per pack, every record still checked and named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.chatgen import write_export
from tests.conftest import make_mail
from tests.indexdb import open_index
from twentyday.canonical import canonical_json
from twentyday.cli import cli
from twentyday.crypto import secrets
from twentyday.store import db
from twentyday.store.adopt import adopt_unledgered
from twentyday.store.archive import Archive
from twentyday.store.ledger import GENESIS, Ledger, entry_hash

from .conftest import OpenWithLimits
from .test_store_packs import ingest_export


def problems(archive_dir: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "verify", "--json"])
    found: list[dict[str, Any]] = json.loads(result.output)["problems"]
    return found


def named(archive_dir: Path) -> set[str]:
    return {p["object"] for p in problems(archive_dir)}


@pytest.fixture
def many_packs(archive_dir: Path, archive_with_limits: OpenWithLimits, tmp_path: Path) -> Archive:
    archive = archive_with_limits(pack_records=5)
    export = write_export(tmp_path / "WhatsApp Chat with Counterpart.txt", 200)
    assert ingest_export(archive, export).state == "ingested"
    assert problems(archive_dir) == []
    return archive


def test_a_pack_has_one_ledger_entry_naming_each_of_its_records(many_packs: Archive) -> None:
    conn = many_packs.conn
    packs = conn.execute("SELECT subject, payload FROM ledger WHERE kind = 'pack'").fetchall()
    assert len(packs) == 40
    assert conn.execute("SELECT count(*) FROM ledger WHERE kind = 'record'").fetchone() == (0,)
    listed = [member["id"] for _, payload in packs for member in json.loads(payload)["records"]]
    assert sorted(listed) == sorted(r for (r,) in conn.execute("SELECT id FROM record"))


def test_tampering_in_any_pack_is_named_record_by_record(archive_dir: Path, many_packs: Archive) -> None:
    conn = many_packs.conn
    low = conn.execute("SELECT id FROM record WHERE content_blob < 'b8' ORDER BY id LIMIT 1").fetchone()[0]
    high = conn.execute("SELECT id FROM record WHERE content_blob >= 'b8' ORDER BY id LIMIT 1").fetchone()[0]
    gone = conn.execute("SELECT id FROM record WHERE id NOT IN (?, ?) ORDER BY id DESC LIMIT 1",
                        (low, high)).fetchone()[0]
    for record_id in (low, high):  # one row in each half verify checks in parallel
        conn.execute("UPDATE record SET sender = 'Mallory' WHERE id = ?", (record_id,))
    conn.execute("DELETE FROM record WHERE id = ?", (gone,))
    # A forged row: a copy of another record under a new id, in a pack no entry describes.
    conn.execute("INSERT INTO record SELECT 'rec-forged', 'k', custodian, platform, channel, conversation, sender, "
                 "recipients, direction, created_at, created_utc, time_reading, captured_at, deadline_at, "
                 "deadline_rule, status, days_late, capture_id, has_attachments, incomplete, edited, flags, "
                 "message_ref, reply_ref, 'bforgedpack', schedule, retention FROM record WHERE id = ?", (high,))
    found = {(p["kind"], p["object"]) for p in problems(archive_dir)}
    assert ("altered", f"record {low}") in found
    assert ("altered", f"record {high}") in found
    assert ("missing", f"record {gone}") in found
    assert ("unaccounted", "record rec-forged") in found


def test_a_pack_whose_rows_are_all_gone_names_each_record(archive_dir: Path, many_packs: Archive) -> None:
    conn = many_packs.conn
    pack = conn.execute("SELECT content_blob FROM record ORDER BY id LIMIT 1").fetchone()[0]
    members = [r for (r,) in conn.execute("SELECT id FROM record WHERE content_blob = ?", (pack,))]
    conn.execute("DELETE FROM record WHERE content_blob = ?", (pack,))
    found = {(p["kind"], p["object"]) for p in problems(archive_dir)}
    assert {("missing", f"record {r}") for r in members} <= found


def test_an_altered_attachment_row_is_named(archive_dir: Path, tmp_path: Path) -> None:
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(attachment=("minutes.pdf", b"%PDF-1.4 minutes")))
    CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "ingest", str(mail)])
    assert problems(archive_dir) == []
    conn = open_index(archive_dir)
    record_id = conn.execute("SELECT record_id FROM attachment").fetchone()[0]
    conn.execute("UPDATE attachment SET content_type = 'text/plain'")
    conn.close()
    found = problems(archive_dir)
    assert {"kind": "altered", "object": f"record {record_id}", "detail": "attachments differ from the ledger"} in found


def _as_written_before_packs(archive: Archive) -> None:
    """Rewrite the ledger the way archives were written before packs: one entry per record."""
    conn = archive.conn
    entries = conn.execute("SELECT at, kind, subject, payload FROM ledger ORDER BY seq").fetchall()
    rewritten = []
    for at, kind, subject, payload in entries:
        if kind != "pack":
            rewritten.append((at, kind, subject, payload))
            continue
        pack = json.loads(payload)
        for member in pack["records"]:
            legacy = {"attachments": member["attachments"], "content": pack["content"],
                      "record_sha256": member["row_sha256"]}
            rewritten.append((at, "record", member["id"], canonical_json(legacy).decode()))
    db.begin_write(conn)
    conn.execute("DELETE FROM ledger")
    conn.execute("DELETE FROM checkpoint")
    prev = GENESIS
    for seq, (at, kind, subject, payload) in enumerate(rewritten, start=1):
        digest = entry_hash(prev, seq, at, kind, subject, payload)
        conn.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?)", (seq, at, kind, subject, payload, prev, digest))
        prev = digest
    # Such an archive reaches today's schema only through the upgrade that adopts the search terms
    # its per-record entries do not commit to (store/adopt.py): so does this one.
    adopt_unledgered(conn, secrets.load(archive.data_dir).signing_key, rewritten[-1][0])
    conn.execute("COMMIT")


def test_archives_with_an_entry_per_record_still_verify_and_name_tampering(archive_dir: Path,
                                                                           many_packs: Archive) -> None:
    _as_written_before_packs(many_packs)
    assert problems(archive_dir) == []
    record_id = many_packs.conn.execute("SELECT id FROM record ORDER BY id LIMIT 1").fetchone()[0]
    many_packs.conn.execute("UPDATE record SET status = 'on_time' WHERE id = ?", (record_id,))
    assert [p["object"] for p in problems(archive_dir)] == [f"record {record_id}"]


def test_an_unreadable_pack_entry_is_named_not_a_crash(archive_dir: Path, many_packs: Archive) -> None:
    seq = many_packs.conn.execute("SELECT seq FROM ledger WHERE kind = 'pack' LIMIT 1").fetchone()[0]
    many_packs.conn.execute("UPDATE ledger SET payload = 'not json' WHERE seq = ?", (seq,))
    assert f"ledger entry {seq}" in named(archive_dir)


def test_pending_ledger_entries_are_written_before_a_megabyte_waits(archive: Archive) -> None:
    # A 1M-message export appends ~4,000 pack entries of ~35 KB: held until 5,000 entries,
    # they took 175 MB. The ledger writes them out by size as well as by count.
    written: list[int] = []
    ledger = Ledger(archive.conn, lambda table, columns, rows: written.append(sum(len(r[4]) for r in rows)))
    ledger.begin()
    for n in range(40):
        ledger.append_text("2026-11-22T00:00:00+00:00", "pack", f"b{n}", '"' + "x" * 100_000 + '"')
    assert len(written) >= 3
    assert max(written) <= 1024 * 1024 + 100_002
