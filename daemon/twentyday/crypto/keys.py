"""Officer identities: HPKE (RFC 9180) with the ML-KEM-768 + X25519 hybrid KEM, and an Ed25519 signing key.

Suite: KEM ML-KEM-768+X25519, KDF HKDF-SHA256, AEAD AES-256-GCM, as shipped by
``cryptography``. The hybrid key is two ordinary keys, so it is stored as two
standard PKCS#8 blocks (ML-KEM-768 and X25519), each encrypted with the
officer's passphrase (PBES2: PBKDF2-HMAC-SHA256, 600,000 rounds, AES-256-CBC;
see :mod:`pbes2`) — readable by OpenSSL 3.5+ and any PKCS#8 tool for decades.
The public half is a small text file of two SubjectPublicKeyInfo blocks with a
comment header (name, suite, fingerprint).

A third PKCS#8 block, Ed25519 under the same passphrase, signs the officer's
disclosures (see :mod:`twentyday.store.disclosures`), and its SubjectPublicKeyInfo
is the third block of the public file: so the accounting of disclosures is
authenticated by the officer who disclosed, not by the daemon host. Identities
written before it have two blocks; they still open records, and
:func:`add_signing_key` gives them the third.

The daemon only ever loads public keys (:func:`load_recipient`); private keys
stay with the officers (:func:`load_identity`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from twentyday.crypto import pbes2
from twentyday.errors import KeyMaterialError
from twentyday.permissions import require_secret, require_trusted

SUITE_NAME = "HPKE ML-KEM-768+X25519 / HKDF-SHA256 / AES-256-GCM (RFC 9180)"
_PEM_BLOCK = re.compile(
    rb"-----BEGIN ([A-Z ]+)-----\r?\n.*?-----END \1-----", re.DOTALL
)


def suite() -> hpke.Suite:
    return hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


@dataclass(frozen=True)
class Recipient:
    """A public key the daemon seals to, and (when the file has one) the officer's disclosure-signing key."""

    public_key: hpke.MLKEM768X25519PublicKey
    fingerprint: str
    label: str
    verify_key: ed25519.Ed25519PublicKey | None = None

    @property
    def signer(self) -> str:
        """Fingerprint of the signing key ('' without one)."""
        return signer_fingerprint(self.verify_key) if self.verify_key is not None else ""


@dataclass(frozen=True)
class Identity:
    """An officer's private key, decrypted in memory for this process only."""

    private_key: hpke.MLKEM768X25519PrivateKey
    recipient: Recipient
    protected: bool
    signing_key: ed25519.Ed25519PrivateKey | None = None


def fingerprint(mlkem_public: mlkem.MLKEM768PublicKey, x_public: x25519.X25519PublicKey) -> str:
    """Short, stable name of a hybrid public key: SHA-256 over both raw public keys."""
    digest = hashlib.sha256(
        b"twentyday-recipient-v1\0" + mlkem_public.public_bytes_raw() + x_public.public_bytes_raw()
    ).digest()
    return "SHA256:" + base64.b32encode(digest[:20]).decode().lower()


def signer_fingerprint(verify_key: ed25519.Ed25519PublicKey) -> str:
    """Short, stable name of an officer's signing key (its own domain: never equal to a recipient's)."""
    digest = hashlib.sha256(b"twentyday-signer-v1\0" + verify_key.public_bytes_raw()).digest()
    return "SHA256:" + base64.b32encode(digest[:20]).decode().lower()


def signers(recipients: tuple[Recipient, ...]) -> dict[str, ed25519.Ed25519PublicKey]:
    """The signing keys among ``recipients``, by fingerprint (what ``verify`` checks disclosures with)."""
    return {r.signer: r.verify_key for r in recipients if r.verify_key is not None}


def generate_identity(path: Path, label: str, passphrase: bytes | None) -> Recipient:
    """Write a new identity to ``path`` (0600) and its public key to ``path.pub``.

    ``passphrase=None`` writes an unprotected demo identity, marked as such in the file.
    """
    if path.exists():
        raise KeyMaterialError(f"{path}: already exists; refusing to overwrite a key")
    if passphrase is not None and len(passphrase) < 8:
        raise KeyMaterialError("passphrase must be at least 8 characters")
    ml_private = mlkem.MLKEM768PrivateKey.generate()
    x_private = x25519.X25519PrivateKey.generate()
    signing = ed25519.Ed25519PrivateKey.generate()
    blocks = [_private_block(k, passphrase) for k in (ml_private, x_private, signing)]
    fp = fingerprint(ml_private.public_key(), x_private.public_key())
    warning = "" if passphrase else "# UNPROTECTED DEMO IDENTITY: no passphrase. Never use for real records.\n"
    header = (
        f"# twentyday officer identity: {label}\n{warning}"
        f"# suite: {SUITE_NAME}\n# fingerprint: {fp}\n"
        "# Two PKCS#8 keys (ML-KEM-768, then X25519) that together form the hybrid HPKE key.\n"
        f"# {_SIGNING_COMMENT}\n"
    ).encode()
    write_private_file(path, header + b"".join(blocks))
    recipient = Recipient(hpke.MLKEM768X25519PublicKey(ml_private.public_key(), x_private.public_key()), fp, label,
                          signing.public_key())
    write_public_file(public_path(path), public_text(ml_private.public_key(), x_private.public_key(), label,
                                                     signing.public_key()))
    return recipient


_SIGNING_COMMENT = "The third PKCS#8 key (Ed25519) signs this officer's disclosures."


def add_signing_key(path: Path, passphrase: bytes | None) -> Recipient:
    """Give an identity written before signing keys its Ed25519 block, and rewrite its ``.pub``.

    The passphrase must open the identity as it is, so the new block is under the same one.
    Each file is replaced whole (written beside, fsynced, renamed): never left half-written.
    """
    keys = _private_keys(path, passphrase)
    if keys.signing is not None:
        raise KeyMaterialError(f"{path}: already has a signing key ({signer_fingerprint(keys.signing.public_key())})")
    signing = ed25519.Ed25519PrivateKey.generate()
    block = _private_block(signing, passphrase if keys.protected else None)
    replace_file(path, keys.text.rstrip(b"\n") + f"\n# {_SIGNING_COMMENT}\n".encode() + block, 0o600)
    label = _label(keys.text)
    ml_public, x_public = keys.ml.public_key(), keys.x.public_key()
    # 0644 like every public key twentyday writes (write_public_file): only its owner may change it.
    replace_file(public_path(path), public_text(ml_public, x_public, label, signing.public_key()), 0o644)
    return Recipient(hpke.MLKEM768X25519PublicKey(ml_public, x_public), fingerprint(ml_public, x_public), label,
                     signing.public_key())


def replace_file(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` whole with ``data`` at ``mode``: written beside, fsynced, renamed, the folder fsynced."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask: the mode is what the permission checks expect
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _private_block(key: mlkem.MLKEM768PrivateKey | x25519.X25519PrivateKey | ed25519.Ed25519PrivateKey,
                   passphrase: bytes | None) -> bytes:
    """One PKCS#8 PEM block; with a passphrase, PBES2 at :data:`pbes2.PBKDF2_ROUNDS` (see there why)."""
    if not passphrase:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pbes2.encrypt_pkcs8(der, passphrase)


def public_path(identity_path: Path) -> Path:
    return identity_path.with_name(identity_path.name + ".pub")


def public_text(ml_public: mlkem.MLKEM768PublicKey, x_public: x25519.X25519PublicKey, label: str,
                verify_key: ed25519.Ed25519PublicKey | None = None) -> bytes:
    public_keys: list[mlkem.MLKEM768PublicKey | x25519.X25519PublicKey | ed25519.Ed25519PublicKey] = [
        ml_public, x_public]
    if verify_key is not None:
        public_keys.append(verify_key)
    spki = [k.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            for k in public_keys]
    signer = f"# signing key (disclosures): {signer_fingerprint(verify_key)}\n" if verify_key is not None else ""
    header = (
        f"# twentyday officer public key: {label}\n# suite: {SUITE_NAME}\n"
        f"# fingerprint: {fingerprint(ml_public, x_public)}\n{signer}"
    ).encode()
    return header + b"".join(spki)


def write_private_file(path: Path, data: bytes) -> None:
    """Create ``path`` owner-only (0600) and durable; never overwrite an existing secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_public_file(path: Path, data: bytes) -> None:
    """Write ``path`` 0644 whatever the umask (a public key, a config): others may read it, only
    its owner write it, which is what :func:`~twentyday.permissions.require_trusted` asks."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    os.fchmod(fd, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _label(text: bytes) -> str:
    match = re.search(rb"^# twentyday officer (?:identity|public key): (.*)$", text, re.MULTILINE)
    return match.group(1).decode("utf-8", "replace").strip() if match else ""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyMaterialError(f"{path}: cannot read key file: {error.strerror}") from None


def load_recipient(path: Path) -> Recipient:
    """Load a public key file. A private key here is refused: the daemon must not hold one.

    Whoever can write it could put their own key here and read every future capture, so
    a file (or a folder above it) that others can write is refused."""
    text = _read(path)
    require_trusted(path, "a public key", KeyMaterialError)
    if b"PRIVATE KEY" in text:
        raise KeyMaterialError(
            f"{path}: this is a private key; the daemon's config must name public keys (.pub) only"
        )
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text)]
    ml_public: mlkem.MLKEM768PublicKey | None = None
    x_public: x25519.X25519PublicKey | None = None
    verify_key: ed25519.Ed25519PublicKey | None = None
    for block in blocks:
        try:
            key = serialization.load_pem_public_key(block)
        except ValueError:
            raise KeyMaterialError(f"{path}: unreadable public key block") from None
        if isinstance(key, mlkem.MLKEM768PublicKey):
            ml_public = key
        elif isinstance(key, x25519.X25519PublicKey):
            x_public = key
        elif isinstance(key, ed25519.Ed25519PublicKey):
            verify_key = key
    if ml_public is None or x_public is None:
        raise KeyMaterialError(f"{path}: not a twentyday public key (needs ML-KEM-768 and X25519 keys)")
    return Recipient(
        hpke.MLKEM768X25519PublicKey(ml_public, x_public), fingerprint(ml_public, x_public), _label(text), verify_key
    )


def is_protected(path: Path) -> bool:
    return b"ENCRYPTED PRIVATE KEY" in _read(path)


@dataclass(frozen=True)
class _PrivateKeys:
    text: bytes
    protected: bool
    ml: mlkem.MLKEM768PrivateKey
    x: x25519.X25519PrivateKey
    signing: ed25519.Ed25519PrivateKey | None


def _private_keys(path: Path, passphrase: bytes | None) -> _PrivateKeys:
    text = _read(path)
    require_secret(path, "an officer identity", KeyMaterialError)
    blocks = [m.group(0) for m in _PEM_BLOCK.finditer(text) if b"PRIVATE KEY" in m.group(1)]
    if len(blocks) not in (2, 3):
        raise KeyMaterialError(f"{path}: not a twentyday identity (expected two or three PKCS#8 private keys)")
    protected = all(b"ENCRYPTED" in b.split(b"\n", 1)[0] for b in blocks)
    if protected and not passphrase:
        raise KeyMaterialError(f"{path}: the identity is passphrase-protected; give the passphrase")
    ml_private: mlkem.MLKEM768PrivateKey | None = None
    x_private: x25519.X25519PrivateKey | None = None
    signing: ed25519.Ed25519PrivateKey | None = None
    for block in blocks:
        try:
            key = serialization.load_pem_private_key(block, passphrase if protected else None)
        except (ValueError, TypeError):
            raise KeyMaterialError(f"{path}: wrong passphrase or damaged key file") from None
        if isinstance(key, mlkem.MLKEM768PrivateKey):
            ml_private = key
        elif isinstance(key, x25519.X25519PrivateKey):
            x_private = key
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            signing = key
    if ml_private is None or x_private is None or (len(blocks) == 3 and signing is None):
        raise KeyMaterialError(f"{path}: not a twentyday identity (needs ML-KEM-768 and X25519 keys, "
                               "and Ed25519 as a third)")
    return _PrivateKeys(text, protected, ml_private, x_private, signing)


def load_identity(path: Path, passphrase: bytes | None) -> Identity:
    """Load an officer identity. Wrong passphrase, wrong file: a clear KeyMaterialError.

    An identity written before signing keys (two blocks) loads with ``signing_key=None``:
    it opens records, but cannot sign a disclosure (see :func:`add_signing_key`)."""
    keys = _private_keys(path, passphrase)
    ml_public, x_public = keys.ml.public_key(), keys.x.public_key()
    recipient = Recipient(hpke.MLKEM768X25519PublicKey(ml_public, x_public), fingerprint(ml_public, x_public),
                          _label(keys.text), keys.signing.public_key() if keys.signing is not None else None)
    return Identity(hpke.MLKEM768X25519PrivateKey(keys.ml, keys.x), recipient, keys.protected, keys.signing)


def seal(recipient: Recipient, plaintext: bytes, info: bytes) -> bytes:
    """HPKE single-shot seal of a small secret (a data key) to one recipient."""
    return suite().encrypt(plaintext, recipient.public_key, info=info)


def unseal(identity: Identity, sealed: bytes, info: bytes) -> bytes:
    try:
        return suite().decrypt(sealed, identity.private_key, info=info)
    except Exception:
        # cryptography raises InvalidTag or ValueError depending on where it fails;
        # either way the answer for the officer is the same.
        raise KeyMaterialError("this identity cannot open the sealed key (wrong key?)") from None
