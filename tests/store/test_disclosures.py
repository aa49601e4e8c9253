"""Opening a record is accounted for by the library itself, without the command line."""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import NOW, make_mail
from tests.s3archive import make_s3_archive
from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.errors import IntegrityError, InvalidArgument, KeyMaterialError, NotFoundError
from twentyday.pipeline import process as pipeline
from twentyday.recipients import add_recipient
from twentyday.store import db, schema
from twentyday.store.archive import Archive
from twentyday.store.disclosures import Disclosure
from twentyday.store.ledger import Ledger
from twentyday.store.search import open_record
from twentyday.store.verify import verify
from twentyday.store.writer import CaptureWriter

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


def verified(archive: Archive) -> list[str]:
    """The problems verify names, with the officers' signing keys the config names (and its bucket, if any)."""
    return [str(p) for p in verify(archive.conn, archive.secrets.verify_key, signers=keys.signers(archive.recipients),
                                   objects=archive.objects).problems]


def strip_signing_key(identity_path: Path) -> None:
    """Make an identity (and its .pub) as the code before signing keys wrote them: two blocks."""
    for path in (identity_path, keys.public_path(identity_path)):
        text = path.read_text()
        blocks = list(re.finditer(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", text, re.DOTALL))
        path.write_text(text[:blocks[2].start()] + text[blocks[2].end():])


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
    [accounted] = accounting = archive.disclosures()
    assert accounted_when_decrypting == accounting
    assert accounted == dataclasses.replace(expected, signer=officer.recipient.signer,
                                            signature=accounted.signature)
    # Ledgered, and signed by the officer over the ledger hash it extends; verify accepts it
    # although no daemon checkpoint covers it yet (the officer's side has no daemon key).
    [(seq, prev)] = archive.conn.execute("SELECT seq, prev FROM ledger WHERE kind = 'disclosure'").fetchall()
    assert officer.recipient.verify_key is not None and accounted.signature_ok(officer.recipient.verify_key, prev)
    assert archive.ledger_head().seq < seq
    assert verified(archive) == []


def test_an_attempt_that_cannot_open_the_record_is_accounted_as_failed(
        archive_dir: Path, tmp_path: Path) -> None:
    config_path = archive_dir / "twentyday.toml"
    with Archive(config_module.load(config_path)) as archive:
        record_id = ingest_mail(archive, tmp_path, "Sealed before the new officer came.")
    keys.generate_identity(tmp_path / "newcomer.key", "newcomer", None)
    add_recipient(config_path, keys.public_path(tmp_path / "newcomer.key"))
    stranger = keys.load_identity(tmp_path / "newcomer.key", None)
    archive = Archive(config_module.load(config_path), officer=True)
    with pytest.raises(KeyMaterialError, match="was not sealed to") as raised:
        open_record(archive, record_id, stranger, purpose="curiosity")
    attempt, outcome = archive.disclosures()
    assert (attempt.action, attempt.purpose, attempt.actor, attempt.recipient) == ("show", "curiosity", ACCOUNT,
                                                                                   "self")
    assert (outcome.action, outcome.purpose) == ("failed", f"curiosity (not opened: {raised.value})")
    assert outcome.subjects == attempt.subjects == (record_id,)
    assert outcome.identity == attempt.identity == stranger.recipient.fingerprint
    assert outcome.signer == attempt.signer == stranger.recipient.signer
    archive.close()
    with Archive(config_module.load(config_path)) as daemon_side:
        assert verified(daemon_side) == []


def test_an_identity_the_config_does_not_name_is_refused_before_anything_is_accounted(
        archive: Archive, tmp_path: Path) -> None:
    record_id = ingest_mail(archive, tmp_path, "Not for strangers.")
    keys.generate_identity(tmp_path / "stranger.key", "stranger", None)
    stranger = keys.load_identity(tmp_path / "stranger.key", None)
    with pytest.raises(KeyMaterialError, match=r"in no public key keys\.recipients names"):
        open_record(archive, record_id, stranger, purpose="curiosity")
    assert archive.disclosures() == []


def test_an_identity_without_a_signing_key_opens_nothing_until_add_signing(archive_dir: Path, tmp_path: Path) -> None:
    strip_signing_key(archive_dir / "officer.key")
    config = config_module.load(archive_dir / "twentyday.toml")
    with Archive(config) as archive:
        record_id = ingest_mail(archive, tmp_path, "Sealed to a two-block identity.")
    old = keys.load_identity(archive_dir / "officer.key", None)
    assert old.signing_key is None
    with Archive(config, officer=True) as archive:
        with pytest.raises(KeyMaterialError, match="run 'twentyday keys add-signing KEY'"):
            open_record(archive, record_id, old, purpose="review")
        assert archive.disclosures() == []
        # It still decrypts (escrow, recovery): only the disclosure needs the signing key.
        assert archive.open_content(record_id, archive.record_row(record_id)["content_blob"], old)["body"]
    added = keys.add_signing_key(archive_dir / "officer.key", None)
    officer = keys.load_identity(archive_dir / "officer.key", None)
    assert officer.recipient.fingerprint == old.recipient.fingerprint and officer.recipient.signer == added.signer
    with Archive(config, officer=True) as archive:
        assert open_record(archive, record_id, officer, purpose="review")["content"]["body"]
    with Archive(config) as archive:
        assert verified(archive) == []


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
    with pytest.raises(db.DATABASE_ERRORS, match="closed"):
        archive.conn.execute("SELECT 1")


def test_an_archive_opened_for_an_officer_holds_no_daemon_secret(archive_dir: Path) -> None:
    with Archive(config_module.load(archive_dir / "twentyday.toml"), officer=True) as archive:
        with pytest.raises(KeyMaterialError, match="opened for an officer"):
            archive.secrets  # noqa: B018
        with pytest.raises(KeyMaterialError, match="opened for an officer"):
            archive.term_tokens("pelican")


def test_disclosures_and_daemon_commits_at_once_keep_one_chain(archive_dir: Path, officer: keys.Identity,
                                                               tmp_path: Path) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    with Archive(config) as archive:
        record_id = ingest_mail(archive, tmp_path, "Opened while the daemon writes.")
    failures: list[BaseException] = []

    def daemon() -> None:
        try:
            with Archive(config) as writer:
                for n in range(12):
                    path = tmp_path / f"d{n}.eml"
                    path.write_bytes(make_mail(body=f"daemon mail {n}", message_id=f"<d{n}@x>"))
                    item = pipeline.Item(path.name, "cli", NOW, path=path, custodian_id="jdoe")
                    if n % 2:
                        with writer.batch():
                            pipeline.process(writer, item)
                    else:
                        pipeline.process(writer, item)
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    thread = threading.Thread(target=daemon)
    thread.start()
    with Archive(config, officer=True) as reader:
        for n in range(12):
            open_record(reader, record_id, officer, purpose=f"review {n}")
    thread.join()
    assert failures == []
    with Archive(config) as archive:
        seqs = [seq for (seq,) in archive.conn.execute("SELECT seq FROM ledger ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(archive.disclosures()) == 12
        assert verified(archive) == []


def old_style_disclosure(archive: Archive, record_id: str, at: datetime, *, checkpoint: bool) -> str:
    """A disclosure as the code before officer signatures wrote it: eight columns, daemon checkpoint."""
    disclosure = Disclosure.new(at=at, actor="legacy", action="show", purpose="before signing",
                                recipient="self", subjects=[record_id], identity="SHA256:x")
    row = {k: v for k, v in disclosure.row().items() if k not in ("signer", "signature")}
    with archive.transaction():
        ledger = Ledger(archive.conn)
        ledger.begin()
        archive.conn.execute(f"INSERT INTO disclosure ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             list(row.values()))
        ledger.append(disclosure.at, "disclosure", disclosure.id, {"disclosure": row})
        if checkpoint:
            ledger.checkpoint(disclosure.at, archive.secrets.signing_key)
        else:
            ledger.flush()
    return disclosure.id


def test_disclosures_from_before_the_migration_verify_and_unsigned_ones_after_it_are_named(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest) -> None:
    from twentyday.initialise import init_archive

    with monkeypatch.context() as before:
        before.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])  # up to signed disclosures
        # The writer of that schema kept no capture_span (a later migration fills it from the records).
        before.setattr(CaptureWriter, "_write_spans", lambda self: None)
        before.setattr(schema, "derive_terms_rows", lambda conn, after: None)  # nor record_terms_row
        if backend == "s3":
            make_s3_archive(tmp_path / "old", request.getfixturevalue("rgw"), now=NOW)
        else:
            init_archive(tmp_path / "old", passphrase=None, demo=False, now=NOW)
        config = config_module.load(tmp_path / "old" / "twentyday.toml")
        with Archive(config) as archive:
            record_id = ingest_mail(archive, tmp_path, "Disclosed long ago.")
            legacy = old_style_disclosure(archive, record_id, NOW, checkpoint=True)
    with Archive(config) as archive:  # migrated now
        assert verified(archive) == []
        assert [(d.id, d.signer, d.signature) for d in archive.disclosures()] == [(legacy, "", "")]
        forged = old_style_disclosure(archive, record_id, NOW + timedelta(hours=1), checkpoint=True)
        assert verified(archive) == [f"signature: disclosure {forged}: not signed by an officer key"]
