"""The encrypted container every export is written into: nothing of it is ever in clear on the disk.

Two ways, each one a recipient opens with a standard tool and without twentyday:

- :class:`PassphraseZip`: a zip whose every member is AES-256 encrypted in the WinZip AE-2
  format (``pyzipper``), which 7-Zip, WinZip and macOS's archive tools open with the
  passphrase; the passphrase is read from a 0600 file (:func:`read_zip_passphrase`), given to
  the recipient separately, and written nowhere. Members are compressed and encrypted as they
  are added, straight into the output file. (The central directory, as in every zip, names the
  members in clear: names are twentyday's own ids, never a subject or a person's name.)
- :class:`AgeZip`: a plain zip sealed to the recipient's age public key (``pyrage``, the age
  format, https://age-encryption.org/v1): ``age -d -i key.txt export.age > export.zip``. The
  zip is built in memory, then encrypted into the output file, so an export is bounded by
  memory (one export at a time; a streaming pipe is not built yet).

The output file is created with O_EXCL and mode 0600: an existing path is never overwritten,
and a failed export removes what it had written.
"""

from __future__ import annotations

import contextlib
import io
import os
import zipfile
from pathlib import Path
from typing import BinaryIO, Protocol

import pyrage
import pyzipper

from twentyday.errors import InvalidArgument, KeyMaterialError
from twentyday.permissions import require_secret

#: A passphrase shorter than this is refused: it protects the export on its way to the recipient.
MIN_PASSPHRASE_CHARACTERS = 12


class Container(Protocol):
    """Where an export's members go, in order; :meth:`close` finishes the file."""

    def add(self, name: str, data: bytes) -> None: ...

    def close(self) -> None: ...

    def abandon(self) -> None: ...


def create_output(path: Path) -> BinaryIO:
    """The output file, new (never an existing path, never through a link), readable by its owner only."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise InvalidArgument(f"{path} exists: an export never overwrites a file", argument="out") from None
    return os.fdopen(descriptor, "wb")


def read_zip_passphrase(path: Path) -> bytes:
    """The zip passphrase from its file (0600 like every secret; one line, trailing newline dropped)."""
    require_secret(path, "--zip-passphrase-file", KeyMaterialError)
    try:
        text = path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise KeyMaterialError(f"{path}: cannot read the zip passphrase: {error}") from None
    if len(text) < MIN_PASSPHRASE_CHARACTERS or "\n" in text:
        raise KeyMaterialError(f"{path}: the zip passphrase must be one line of at least "
                               f"{MIN_PASSPHRASE_CHARACTERS} characters")
    return text.encode("utf-8")


def age_recipient(value: str) -> pyrage.x25519.Recipient:
    """An age X25519 public key (``age1...``), given as itself or as a file holding it (one per line)."""
    text = value.strip()
    if not text.startswith("age1"):
        candidate = Path(value)
        try:
            lines = [line.strip() for line in candidate.read_text().splitlines()]
        except OSError:
            raise KeyMaterialError(f"--to: {value!r} is neither an age public key (age1...) nor a file "
                                   "holding one") from None
        keys = [line for line in lines if line and not line.startswith("#")]
        if len(keys) != 1:
            raise KeyMaterialError(f"--to: {value} must hold exactly one age public key")
        text = keys[0]
    try:
        return pyrage.x25519.Recipient.from_str(text)
    except pyrage.RecipientError:
        raise KeyMaterialError(f"--to: not an age X25519 public key: {text[:80]!r}") from None


class PassphraseZip:
    """AES-256, WinZip AE-2, every member (see the module docstring)."""

    def __init__(self, path: Path, passphrase: bytes) -> None:
        self._path = path
        self._file = create_output(path)
        self._zip = pyzipper.AESZipFile(self._file, "w", compression=zipfile.ZIP_DEFLATED,
                                        encryption=pyzipper.WZ_AES,
                                        encryption_kwargs={"nbits": 256,
                                                           "force_wz_aes_version": pyzipper.zipfile_aes.WZ_AES_V2})
        self._zip.setpassword(passphrase)

    def add(self, name: str, data: bytes) -> None:
        self._zip.writestr(_info(name, self._zip.zipinfo_cls), data)

    def close(self) -> None:
        self._zip.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abandon(self) -> None:
        with contextlib.suppress(Exception):  # the file is removed anyway
            self._zip.close()
        _abandon(self._file, self._path)


class AgeZip:
    """A zip sealed to an age public key (see the module docstring)."""

    def __init__(self, path: Path, recipient: pyrage.x25519.Recipient) -> None:
        self._path = path
        self._recipient = recipient
        self._file = create_output(path)
        self._buffer = io.BytesIO()
        self._zip = zipfile.ZipFile(self._buffer, "w", compression=zipfile.ZIP_DEFLATED)

    def add(self, name: str, data: bytes) -> None:
        self._zip.writestr(_info(name, zipfile.ZipInfo), data)

    def close(self) -> None:
        self._zip.close()
        self._buffer.seek(0)
        pyrage.encrypt_io(self._buffer, self._file, [self._recipient])
        self._buffer = io.BytesIO()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abandon(self) -> None:
        self._buffer = io.BytesIO()
        _abandon(self._file, self._path)


def _info(name: str, kind: type[zipfile.ZipInfo]) -> zipfile.ZipInfo:
    # A fixed time and mode: the same export twice differs only by what it holds.
    info = kind(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    return info


def _abandon(file: BinaryIO, path: Path) -> None:
    try:
        file.close()
    finally:
        path.unlink(missing_ok=True)
