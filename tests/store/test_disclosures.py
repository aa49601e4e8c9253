"""Opening a record is accounted for by the library itself, without the command line."""

from __future__ import annotations

import os
import pwd
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW, make_mail
from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.errors import IntegrityError, InvalidArgument, KeyMaterialError, NotFoundError
from twentyday.pipeline import process as pipeline
from twentyday.store.archive import Archive
from twentyday.store.disclosures import Disclosure
from twentyday.store.search import open_record
from twentyday.store.verify import verify

ACCOUNT = pwd.getpwuid(os.getuid()).pw_name


def ingest_mail(archive: Archive, tmp_path: Path, body: str) -> str:
    path = tmp_path / "m.eml"
    path.write_bytes(make_mail(body=body))
    outcome = pipeline.process(archive, pipeline.Item(path.name, "cli", NOW, path=path, custodian_id="jdoe"))
    assert outcome.result is not None
    [record_id] = outcome.result.new_records
    return record_id


def clock() -> datetime:
    return NOW + timedelta(days=1)


@pytest.fixture
def officer(archive_dir: Path) -> keys.Identity:
    return keys.load_identity(archive_dir / "officer.key", None)


def test_opening_a_record_accounts_for_it_before_anything_is_decrypted(
        archive: Archive, officer: keys.Identity, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record_id = ingest_mail(archive, tmp_path, "Numbers for Q3.")
    accounted_when_decrypting = []
    decrypt = archive.open_content

    def watched_decrypt(*args: Any) -> dict[str, Any]:
        accounted_when_decrypting.extend(archive.disclosures())
        return decrypt(*args)

    monkeypatch.setattr(archive, "open_content", watched_decrypt)
    document = open_record(archive, record_id, officer, purpose="FOIA 2026-0042", recipient="FOIA office",
                           actor="rofficer", clock=clock)
    assert document["content"]["body"].startswith("Numbers for Q3.")
    expected = Disclosure.new(at=clock(), actor=f"rofficer (account {ACCOUNT})", action="show",
                              purpose="FOIA 2026-0042", recipient="FOIA office", subjects=[record_id],
                              identity=officer.recipient.fingerprint)
    assert accounted_when_decrypting == archive.disclosures() == [expected]
    # Ledgered: the head moved to a checkpoint over the disclosure, and verify accounts for it.
    assert archive.conn.execute("SELECT subject FROM ledger WHERE kind = 'disclosure'").fetchall() == [
        (expected.id,)]
    assert verify(archive.conn, archive.secrets.verify_key).ok


def test_an_attempt_that_cannot_open_the_record_is_accounted_as_failed(
        archive: Archive, tmp_path: Path) -> None:
    record_id = ingest_mail(archive, tmp_path, "Not for strangers.")
    keys.generate_identity(tmp_path / "stranger.key", "stranger", None)
    stranger = keys.load_identity(tmp_path / "stranger.key", None)
    with pytest.raises(KeyMaterialError, match="was not sealed to") as raised:
        open_record(archive, record_id, stranger, purpose="curiosity")
    attempt, outcome = archive.disclosures()
    assert (attempt.action, attempt.purpose, attempt.actor, attempt.recipient) == ("show", "curiosity", ACCOUNT,
                                                                                   "self")
    assert (outcome.action, outcome.purpose) == ("failed", f"curiosity (not opened: {raised.value})")
    assert outcome.subjects == attempt.subjects == (record_id,)
    assert outcome.identity == attempt.identity == stranger.recipient.fingerprint


def test_a_blob_missing_chunks_is_an_integrity_error_and_the_attempt_is_accounted(
        archive: Archive, officer: keys.Identity, tmp_path: Path) -> None:
    record_id = ingest_mail(archive, tmp_path, "Soon without its last chunk.")
    blob = archive.record_row(record_id)["content_blob"]
    archive.conn.execute("DELETE FROM chunk WHERE blob_id = ? AND seq = "
                         "(SELECT max(seq) FROM chunk WHERE blob_id = ?)", (blob, blob))
    with pytest.raises(IntegrityError, match="missing chunks"):
        open_record(archive, record_id, officer, purpose="review")
    assert [d.action for d in archive.disclosures()] == ["show", "failed"]


@pytest.mark.parametrize("purpose", ["", "  ", "\t\n"])
def test_a_blank_purpose_is_refused_and_nothing_is_accounted(
        archive: Archive, officer: keys.Identity, tmp_path: Path, purpose: str) -> None:
    record_id = ingest_mail(archive, tmp_path, "Why do you ask?")
    with pytest.raises(InvalidArgument) as raised:
        open_record(archive, record_id, officer, purpose=purpose)
    assert raised.value.argument == "purpose"
    assert archive.disclosures() == []


def test_an_unknown_record_is_not_found_and_nothing_is_accounted(
        archive: Archive, officer: keys.Identity) -> None:
    with pytest.raises(NotFoundError, match="no record 'rec-nope'"):
        open_record(archive, "rec-nope", officer, purpose="review")
    assert archive.disclosures() == []


def test_archive_is_a_context_manager_with_its_ledger_head_and_escrow_holders(
        archive_dir: Path, officer: keys.Identity, tmp_path: Path) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    with Archive(config) as archive:
        ingest_mail(archive, tmp_path, "Head moves.")
        seq, head = archive.conn.execute("SELECT seq, head FROM checkpoint ORDER BY seq DESC").fetchone()
        assert (archive.ledger_head().seq, archive.ledger_head().hash) == (seq, head)
        [holder] = archive.escrow_holders()
        assert (holder.fingerprint, holder.label) == (officer.recipient.fingerprint, "records officer")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        archive.conn.execute("SELECT 1")
