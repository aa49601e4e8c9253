"""The daemon's own secrets: the index key and the ledger-signing key.

``init`` generates both into ``<data_dir>/secrets/`` with 0600 permissions and
seals a copy to every officer recipient (the ``escrow`` table), so an officer
can recover them if the host is lost.

From the index key, HMAC derives one key per purpose (token, dedup, blob
name, source hash): a leak of one derived value says nothing about another.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.crypto.keys import replace_file, write_private_file, write_public_file
from twentyday.errors import KeyMaterialError
from twentyday.permissions import require_secret, require_trusted

INDEX_KEY_FILE = "index.key"
SIGNING_KEY_FILE = "ledger-signing.pem"
VERIFY_KEY_FILE = "ledger-signing.pub"


@dataclass(frozen=True)
class DaemonSecrets:
    index_key: bytes
    signing_key: ed25519.Ed25519PrivateKey

    def derived(self, purpose: str) -> bytes:
        return hmac.digest(self.index_key, b"twentyday/v1/" + purpose.encode(), hashlib.sha256)

    @property
    def verify_key(self) -> ed25519.Ed25519PublicKey:
        return self.signing_key.public_key()

    def escrow_payload(self) -> bytes:
        """What is sealed to the officers: both secrets, in a self-describing JSON document."""
        signing_pem = self.signing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return json.dumps(
            {"index_key": self.index_key.hex(), "ledger_signing_key_pkcs8": signing_pem.decode()},
            sort_keys=True,
        ).encode()


def secrets_dir(data_dir: Path) -> Path:
    return data_dir / "secrets"


def generate(data_dir: Path) -> DaemonSecrets:
    """Create the secrets directory (0700) and both secret files (0600). Refuses to overwrite."""
    folder = secrets_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    if (folder / INDEX_KEY_FILE).exists():
        raise KeyMaterialError(f"{folder}: secrets already exist; refusing to overwrite")
    secrets = DaemonSecrets(os.urandom(32), ed25519.Ed25519PrivateKey.generate())
    write_private_file(folder / INDEX_KEY_FILE, secrets.index_key.hex().encode() + b"\n")
    write_private_file(
        folder / SIGNING_KEY_FILE,
        secrets.signing_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    write_public_file(
        folder / VERIFY_KEY_FILE,
        secrets.verify_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    return secrets


def load(data_dir: Path) -> DaemonSecrets:
    """Both secrets; refused if group or others may read or change them (see permissions)."""
    folder = secrets_dir(data_dir)
    for name in (INDEX_KEY_FILE, SIGNING_KEY_FILE):
        require_secret(folder / name, "a daemon secret", KeyMaterialError)
    try:
        index_key = bytes.fromhex((folder / INDEX_KEY_FILE).read_text().strip())
        signing_key = serialization.load_pem_private_key((folder / SIGNING_KEY_FILE).read_bytes(), None)
    except FileNotFoundError as error:
        raise KeyMaterialError(
            f"{error.filename}: missing daemon secret (was the archive made with 'twentyday init'?)"
        ) from None
    except (OSError, ValueError) as error:
        raise KeyMaterialError(f"{folder}: unreadable daemon secrets: {error}") from None
    if len(index_key) != 32 or not isinstance(signing_key, ed25519.Ed25519PrivateKey):
        raise KeyMaterialError(f"{folder}: damaged daemon secrets")
    return DaemonSecrets(index_key, signing_key)


def load_verify_key(data_dir: Path) -> ed25519.Ed25519PublicKey:
    """The ledger's public verification key alone: what ``verify`` needs, without the secrets.

    Read from ``secrets/ledger-signing.pub``, which the verify user may be let read
    (``chmod g+x secrets``, ``chmod g+r`` the file) while the secrets stay the daemon's.
    """
    path = secrets_dir(data_dir) / VERIFY_KEY_FILE
    try:
        daemon_user = data_dir.stat().st_uid  # the daemon writes the archive: it may own the key
        require_trusted(path, "the ledger's verification key", KeyMaterialError, also_owner=daemon_user)
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise KeyMaterialError(f"{path}: missing (was the archive made with 'twentyday init'?)") from None
    except (OSError, ValueError) as error:
        raise KeyMaterialError(f"{path}: unreadable verification key: {error}") from None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyMaterialError(f"{path}: not an Ed25519 public key")
    return key


# -- a new ledger key (``keys rotate-ledger``) ----------------------------------------------

#: The successor key while a rotation is under way: written before the handover is committed,
#: renamed over :data:`SIGNING_KEY_FILE` after it (a rerun after a crash finishes or restarts).
NEXT_SIGNING_KEY_FILE = "ledger-signing.next.pem"


def _pem(key: ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _public_pem(key: ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def staged_successor(data_dir: Path, current: DaemonSecrets) -> DaemonSecrets | None:
    """The successor a rotation left staged (the same index key, the staged ledger key), or None."""
    path = secrets_dir(data_dir) / NEXT_SIGNING_KEY_FILE
    if not path.exists():
        return None
    require_secret(path, "a daemon secret", KeyMaterialError)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except (OSError, ValueError) as error:
        raise KeyMaterialError(f"{path}: unreadable staged ledger key: {error}") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise KeyMaterialError(f"{path}: not an Ed25519 key")
    return DaemonSecrets(current.index_key, key)


def stage_successor(data_dir: Path, current: DaemonSecrets) -> DaemonSecrets:
    """A new ledger key beside the current one (0600, replacing a stale staged one); the index key stays."""
    successor = DaemonSecrets(current.index_key, ed25519.Ed25519PrivateKey.generate())
    replace_file(secrets_dir(data_dir) / NEXT_SIGNING_KEY_FILE, _pem(successor.signing_key), 0o600)
    return successor


def install_successor(data_dir: Path, former: ed25519.Ed25519PublicKey, number: int) -> Path:
    """After the handover is committed: keep the former public key as ``ledger-signing-<number>.pub``
    (0644), put the successor's public key in place, then rename the staged key over the signing key.
    Each step replaces a whole file, so a rerun after a crash repeats them unchanged."""
    folder = secrets_dir(data_dir)
    staged = folder / NEXT_SIGNING_KEY_FILE
    successor = serialization.load_pem_private_key(staged.read_bytes(), None)
    if not isinstance(successor, ed25519.Ed25519PrivateKey):
        raise KeyMaterialError(f"{staged}: not an Ed25519 key")
    kept = folder / f"ledger-signing-{number}.pub"
    replace_file(kept, _public_pem(former), 0o644)
    replace_file(folder / VERIFY_KEY_FILE, _public_pem(successor.public_key()), 0o644)
    os.replace(staged, folder / SIGNING_KEY_FILE)
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return kept
