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

from twentyday.crypto.keys import write_private_file
from twentyday.errors import KeyMaterialError

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
    (folder / VERIFY_KEY_FILE).write_bytes(
        secrets.verify_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return secrets


def load(data_dir: Path) -> DaemonSecrets:
    folder = secrets_dir(data_dir)
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
