from __future__ import annotations

import base64
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.crypto.envelope import DataKey
from twentyday.errors import IntegrityError, KeyMaterialError


def test_identity_files_are_standard_pkcs8_and_private_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "officer.key"
    recipient = keys.generate_identity(path, "Ann Officer", b"correct horse battery")
    text = path.read_text()
    # ML-KEM-768 and X25519 (the hybrid HPKE key), then Ed25519 (signs disclosures).
    assert text.count("-----BEGIN ENCRYPTED PRIVATE KEY-----") == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    public = keys.load_recipient(keys.public_path(path))
    assert keys.public_path(path).read_text().count("-----BEGIN PUBLIC KEY-----") == 3
    assert public.fingerprint == recipient.fingerprint
    assert public.signer == recipient.signer != "" and public.signer != public.fingerprint
    assert public.label == "Ann Officer"
    identity = keys.load_identity(path, b"correct horse battery")
    assert identity.signing_key is not None and identity.recipient.signer == recipient.signer
    assert keys.signers((public,)) == {public.signer: public.verify_key}


def test_seal_and_open_round_trip_with_the_hybrid_suite(tmp_path: Path) -> None:
    path = tmp_path / "officer.key"
    recipient = keys.generate_identity(path, "officer", b"correct horse battery")
    identity = keys.load_identity(path, b"correct horse battery")
    data_key = DataKey()
    [(fingerprint, sealed)] = data_key.seal_for((recipient,), "cap-1")
    assert fingerprint == recipient.fingerprint
    # The ML-KEM-768+X25519 encapsulation is 1120 bytes, plus the 32-byte key and the 16-byte tag.
    assert len(sealed) == 1120 + 32 + 16
    chunk = data_key.seal_chunk(b"the record", "rec-1", "content", 0, True)
    reopened = DataKey.open_sealed(identity, sealed, "cap-1")
    assert reopened.open_chunk(chunk, "rec-1", "content", 0, True) == b"the record"


def test_ciphertext_moved_to_another_record_or_slot_fails(tmp_path: Path) -> None:
    data_key = DataKey()
    chunk = data_key.seal_chunk(b"the record", "rec-1", "content", 0, True)
    for owner, slot, seq, last in [("rec-2", "content", 0, True), ("rec-1", "att:0", 0, True),
                                   ("rec-1", "content", 1, True), ("rec-1", "content", 0, False)]:
        with pytest.raises(IntegrityError):
            data_key.open_chunk(chunk, owner, slot, seq, last)


def test_data_key_sealed_for_one_capture_does_not_open_for_another(tmp_path: Path) -> None:
    path = tmp_path / "officer.key"
    recipient = keys.generate_identity(path, "officer", None)
    identity = keys.load_identity(path, None)
    [(_, sealed)] = DataKey().seal_for((recipient,), "cap-1")
    with pytest.raises(KeyMaterialError):
        DataKey.open_sealed(identity, sealed, "cap-2")


def test_wrong_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "officer.key"
    keys.generate_identity(path, "officer", b"correct horse battery")
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        keys.load_identity(path, b"incorrect horse")
    with pytest.raises(KeyMaterialError, match="passphrase-protected"):
        keys.load_identity(path, None)


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    recipient = keys.generate_identity(tmp_path / "a.key", "a", None)
    keys.generate_identity(tmp_path / "b.key", "b", None)
    other = keys.load_identity(tmp_path / "b.key", None)
    [(_, sealed)] = DataKey().seal_for((recipient,), "cap-1")
    with pytest.raises(KeyMaterialError, match="cannot open"):
        DataKey.open_sealed(other, sealed, "cap-1")


def test_a_private_key_is_refused_where_a_public_key_belongs(tmp_path: Path) -> None:
    path = tmp_path / "officer.key"
    keys.generate_identity(path, "officer", None)
    with pytest.raises(KeyMaterialError, match="private key"):
        keys.load_recipient(path)


def test_generate_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "officer.key"
    keys.generate_identity(path, "officer", None)
    with pytest.raises(KeyMaterialError, match="already exists"):
        keys.generate_identity(path, "officer", None)


def test_keys_cli_generate_with_passphrase_file_and_fingerprint(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("correct horse battery\n")
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "generate", str(tmp_path / "o.key"), "--passphrase-file", str(secret)])
    assert made.exit_code == 0, made.output
    fingerprint = made.output.split("fingerprint: ")[1].split()[0]
    shown = runner.invoke(cli, ["keys", "fingerprint", str(tmp_path / "o.key.pub")])
    assert shown.output.startswith(fingerprint)
    assert keys.load_identity(tmp_path / "o.key", b"correct horse battery").recipient.fingerprint == fingerprint


def test_a_passphrase_is_stretched_with_600000_pbkdf2_rounds_in_standard_pkcs8(tmp_path: Path) -> None:
    # A stolen identity file is guessed at through its KDF: OpenSSL's default of 2,048 rounds
    # lets an attacker try passphrases about 300 times faster.
    path = tmp_path / "officer.key"
    keys.generate_identity(path, "officer", b"correct horse battery")
    blocks = re.findall(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----\n(.*?)-----END", path.read_bytes(), re.DOTALL)
    assert len(blocks) == 3
    for block in blocks:
        der = base64.b64decode(block)
        assert bytes.fromhex("06092a864886f70d01050d") in der  # PBES2
        assert bytes.fromhex("06092a864886f70d01050c") in der  # PBKDF2
        assert bytes.fromhex("02030927c0") in der  # 600,000 rounds
        assert bytes.fromhex("06096086480165030401 2a".replace(" ", "")) in der  # AES-256-CBC
    assert keys.load_identity(path, b"correct horse battery").protected
    if shutil.which("openssl"):  # and a common tool reads it (the X25519 block; ML-KEM needs OpenSSL 3.5)
        x25519_block = b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n" + blocks[1] + b"-----END ENCRYPTED PRIVATE KEY-----\n"
        opened = subprocess.run(["openssl", "pkey", "-passin", "pass:correct horse battery", "-noout", "-text"],
                                input=x25519_block, capture_output=True)
        assert opened.returncode == 0, opened.stderr
        assert b"X25519" in opened.stdout


def two_block_identity(path: Path, passphrase: bytes | None) -> None:
    """An identity as the code before signing keys wrote it (ML-KEM-768 and X25519 only)."""
    keys.generate_identity(path, "old officer", passphrase)
    for file in (path, keys.public_path(path)):
        text = file.read_text()
        blocks = list(re.finditer(r"-----BEGIN ([A-Z ]+)-----\n.*?-----END \1-----\n", text, re.DOTALL))
        file.write_text(text[:blocks[2].start()] + text[blocks[2].end():])


def test_add_signing_gives_an_old_identity_an_ed25519_block_under_its_own_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "old.key"
    two_block_identity(path, b"correct horse battery")
    old = keys.load_identity(path, b"correct horse battery")
    assert old.signing_key is None and keys.load_recipient(keys.public_path(path)).verify_key is None
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        keys.add_signing_key(path, b"incorrect horse")
    added = keys.add_signing_key(path, b"correct horse battery")
    assert path.read_text().count("-----BEGIN ENCRYPTED PRIVATE KEY-----") == 3
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    new = keys.load_identity(path, b"correct horse battery")
    assert new.recipient.fingerprint == old.recipient.fingerprint  # captures sealed to it still open
    assert new.recipient.signer == added.signer == keys.load_recipient(keys.public_path(path)).signer
    assert keys.load_recipient(keys.public_path(path)).fingerprint == old.recipient.fingerprint
    with pytest.raises(KeyMaterialError, match="already has a signing key"):
        keys.add_signing_key(path, b"correct horse battery")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.key", "old.key.pub"]  # no temporary left


def test_keys_cli_add_signing(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_text("correct horse battery\n")
    two_block_identity(tmp_path / "o.key", b"correct horse battery")
    made = CliRunner().invoke(cli, ["keys", "add-signing", str(tmp_path / "o.key"), "--passphrase-file", str(secret)])
    assert made.exit_code == 0, made.output
    signer = made.output.split("signing key: ")[1].split()[0]
    assert keys.load_recipient(tmp_path / "o.key.pub").signer == signer
    again = CliRunner().invoke(cli, ["keys", "add-signing", str(tmp_path / "o.key"), "--passphrase-file", str(secret)])
    assert again.exit_code == KeyMaterialError.exit_code
    assert again.output.startswith("twentyday: ") and "already has a signing key" in again.output
