"""A name holding U+0000 (NUL): stored alike on every backend, the original kept in the raw capture.

PostgreSQL's text cannot hold U+0000; SQLite's can. The pipeline replaces it by U+FFFD in a record's
names and keys as the record leaves its parser (records.nul_replaced, through pipeline.guarded_parse,
which ``ingest`` and serve's worker both pass), so every backend stores the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from tests.conftest import NOW
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.pipeline.worker import Worker
from twentyday.spool import Spool, SpoolMeta
from twentyday.store import db
from twentyday.store.archive import Archive
from twentyday.store.disclosures import EXPORT
from twentyday.store.search import disclose_records

EXPORT_LINES = "13/10/2026, 08:00 - Jane Doe: hello\n13/10/2026, 08:01 - Counter\x00part: yes\n"
REPLACED = "Counter\ufffdpart"


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def ingest(archive_dir: Path, path: Path) -> dict[str, Any]:
    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", "--json", str(path))
    assert code == 0, output
    [outcome] = json.loads(output)
    assert outcome["state"] == "ingested", outcome
    return dict(outcome)


def test_a_sender_s_name_with_u0000_is_stored_with_u_fffd_on_every_backend(archive_dir: Path,
                                                                            tmp_path: Path) -> None:
    export = tmp_path / "WhatsApp Chat with Budget team.txt"
    export.write_text(EXPORT_LINES)
    outcome = ingest(archive_dir, export)  # on PostgreSQL this was "index error: parameter 34 holds ... U+0000"

    config = config_module.load(archive_dir / "twentyday.toml")
    with Archive(config, officer=True) as archive:
        rows = [(r["sender"], json.loads(r["recipients"]), r["conversation"], r["direction"]) for r in db.query(
            archive.conn, "SELECT sender, recipients, conversation, direction FROM record ORDER BY created_utc")]
        assert rows == [("Jane Doe", [], "Budget team", "sent"), (REPLACED, [], "Budget team", "received")]
        record_ids = [r for (r,) in archive.conn.execute("SELECT id FROM record ORDER BY created_utc")]
        # The raw capture, opened by an officer, is the export as it came: U+0000 included.
        disclosed = disclose_records(archive, record_ids, keys.load_identity(archive_dir / "officer.key", None),
                                     action=EXPORT, purpose="test", recipient="self")
        assert disclosed.raw_capture(outcome["capture_id"]) == EXPORT_LINES.encode()

    code, output = run(archive_dir, "search", "--json", "--participant", REPLACED)
    assert code == 0, output
    assert [r["sender"] for r in json.loads(output)] == [REPLACED]
    code, output = run(archive_dir, "verify", "--json")
    assert code == 0, output
    assert json.loads(output)["problems"] == []


def test_the_same_message_exported_again_is_the_record_already_archived(archive_dir: Path, tmp_path: Path) -> None:
    """The dedup identity is made of the replaced name too: a later export of the chat links the message."""
    first, later = tmp_path / "1", tmp_path / "2"
    for folder, lines in ((first, EXPORT_LINES), (later, EXPORT_LINES + "13/10/2026, 08:02 - Jane Doe: ok\n")):
        folder.mkdir()
        (folder / "WhatsApp Chat with Budget team.txt").write_text(lines)
    ingest(archive_dir, first / "WhatsApp Chat with Budget team.txt")
    outcome = ingest(archive_dir, later / "WhatsApp Chat with Budget team.txt")
    assert outcome["detail"] == "whatsapp: 1 new record(s), 2 already archived", outcome


def test_serve_s_worker_stores_it_as_ingest_does(archive_dir: Path) -> None:
    """The worker's items pass the same pipeline.process (guarded_parse) as ``ingest``: no failed
    capture, no quarantine, no item left in the spool to be tried again."""
    config = config_module.load(archive_dir / "twentyday.toml")
    spool = Spool.open(config)
    spool.put_bytes(EXPORT_LINES.encode(), SpoolMeta("WhatsApp Chat with Budget team.txt", "folder", NOW, "jdoe"))
    spool.close()
    with Archive(config, durable=False) as archive:
        spool = Spool.open(config, writer=False)
        try:
            [outcome] = Worker(archive, spool).run_once()
            assert (outcome.state, outcome.detail) == ("ingested", "whatsapp: 2 new record(s), 0 already archived")
            assert list(spool.pending()) == []
        finally:
            spool.close()
        assert [r for (r,) in archive.conn.execute("SELECT sender FROM record ORDER BY created_utc")] == [
            "Jane Doe", REPLACED]
