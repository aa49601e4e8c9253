"""What every parser sees: an export as a set of members, read as bounded streams.

A chat export is one file (WhatsApp ``.txt``, SMS XML, Telegram ``result.json``)
or a zip of many (WhatsApp with media, Slack workspace, Telegram/Google
Takeout). Parsers never touch the file system: they get an :class:`ExportSource`
and read members through it. :class:`ZipSource` reads zip entries as streams,
never extracting to disk, and treats the archive as hostile:

- entry names with ``..``, absolute paths, drive letters or backslashes, and
  symlink entries are refused (zip slip);
- more than ``Limits.zip_entries`` entries is refused (no real export has that many);
- bytes are counted as they are actually decompressed, not as the headers
  claim, per entry and in total (zip bombs); entries whose data overlap
  another entry's are refused (overlapping-entry bombs; Python 3.11's
  ``zipfile`` does not check this).

A parser module provides ``NAME``, ``detect(source, head) -> bool`` and
``parse(source, hints) -> Iterator[Record]``.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import lzma
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, Protocol, cast

from twentyday.errors import ParseError
from twentyday.records import ParseHints, Record

MAX_ENTRY_BYTES = 2 * 1024**3
MAX_TOTAL_BYTES = 8 * 1024**3
#: Decompressed / compressed beyond this for a large entry looks like a bomb.
MAX_RATIO = 200
HEAD_BYTES = 8192
#: A zip file's first bytes (a local file header).
ZIP_MAGIC = b"PK\x03\x04"



MEBIBYTE = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """How much of an untrusted item the parsers read: every bound that is not fixed by a format.

    The defaults are the daemon's. An :class:`ExportSource` carries them to the parser that
    reads it, so a test (or a caller) lowers one by passing ``Limits(...)``, never by
    changing a module's constant.
    """

    #: One attached or exported media file copied into a record; a larger file is named and
    #: flagged, and stays only in the sealed raw capture.
    media_bytes: int = 256 * MEBIBYTE
    #: One whole JSON file (a Slack day file, a Messenger thread, a Google Chat group): real ones are a
    #: few MB; past this it is not one, and ``json`` would hold it all. Telegram streams instead.
    json_bytes: int = 256 * MEBIBYTE
    #: Entries in a zip; no real export has that many.
    zip_entries: int = 200_000
    #: One message's text (Signal, Telegram): memory is bounded by the largest message.
    message_chars: int = 16 * MEBIBYTE
    #: One line of a Signal export: a longer one is not a chat line (nor a data.json record).
    signal_line_bytes: int = 4 * MEBIBYTE
    #: Bytes the streaming Telegram reader decodes at a time.
    telegram_chunk_bytes: int = MEBIBYTE
    #: Decoded size above which an MMS part of an SMS backup is left out (flagged, never silently).
    mms_part_bytes: int = 64 * MEBIBYTE
    #: One e-mail message (an ``.eml`` capture, or one message of an mbox).
    mail_message_bytes: int = 64 * MEBIBYTE
    #: Everything decoded from one e-mail message (bodies, attachments, enclosed messages).
    mail_decoded_bytes: int = 128 * MEBIBYTE
    #: Lines x (1 + multipart headers): the stdlib mail parser's work, estimated before it runs.
    mail_parse_work: int = 16_000_000


#: The daemon's limits: what every source carries unless a caller passes others.
DEFAULT_LIMITS = Limits()


class ExportSource(Protocol):
    """An export as parsers see it: named members, each opened as a binary stream, and the limits to read them by."""

    @property
    def name(self) -> str: ...

    @property
    def limits(self) -> Limits: ...

    def members(self) -> list[str]: ...

    def open(self, member: str) -> BinaryIO: ...

    def size(self, member: str) -> int: ...


class ParserModule(Protocol):
    NAME: str

    def detect(self, source: ExportSource, head: bytes) -> bool: ...

    def parse(self, source: ExportSource, hints: ParseHints) -> Iterator[Record]: ...


def read_head(source: ExportSource, member: str, limit: int = HEAD_BYTES) -> bytes:
    with source.open(member) as stream:
        return stream.read(limit)


def detect_by_heads(source: ExportSource, head: bytes, matches: Callable[[bytes], bool],
                    candidates: Callable[[], list[str]], count: int = 3) -> bool:
    """Does the item's head match, or the head of one of its first ``count`` candidate
    members (an export zipped)? Never raises: detection of a hostile or broken file must
    answer, not fail."""
    try:
        if matches(head):
            return True
        return any(matches(read_head(source, member)) for member in candidates()[:count])
    except Exception:
        return False


class FileSource:
    """A single-file export; its only member is its own name."""

    def __init__(self, path: Path, name: str | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self._path = path
        self._name = name or path.name
        self._limits = limits

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> Limits:
        return self._limits

    def members(self) -> list[str]:
        return [self._name]

    def open(self, member: str) -> BinaryIO:
        if member != self._name:
            raise ParseError(f"{self._name}: no member {member!r}", code="no_member")
        return self._path.open("rb")

    def size(self, member: str) -> int:
        return self._path.stat().st_size


class BytesSource:
    """An export held in memory (small items, tests)."""

    def __init__(self, name: str, data: bytes | dict[str, bytes], limits: Limits = DEFAULT_LIMITS) -> None:
        self._name = name
        self._data = data if isinstance(data, dict) else {name: data}
        self._limits = limits

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> Limits:
        return self._limits

    def members(self) -> list[str]:
        return list(self._data)

    def open(self, member: str) -> BinaryIO:
        if member not in self._data:
            raise ParseError(f"{self._name}: no member {member!r}", code="no_member")
        return io.BytesIO(self._data[member])

    def size(self, member: str) -> int:
        return len(self._data[member])


@dataclass
class _Budget:
    total: int = 0


class _CountingReader(io.RawIOBase):
    """Counts bytes actually decompressed; refuses past the entry and archive limits."""

    def __init__(self, inner: IO[bytes], member: str, compressed: int, budget: _Budget) -> None:
        self._inner = inner
        self._member = member
        self._compressed = max(compressed, 1)
        self._budget = budget
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError) as error:
            # Damaged entry data (bad CRC, corrupt or truncated stream) is a fault of the item:
            # it must quarantine like any other unreadable content, not escape the parser.
            raise ParseError(f"zip entry {self._member!r} cannot be read ({error})",
                             code="zip_entry_unreadable") from None
        except OSError as error:
            if error.errno is not None:
                raise  # a real I/O error reading the item: the caller keeps it and tries again
            # bz2 reports a corrupt stream as an OSError without an errno.
            raise ParseError(f"zip entry {self._member!r} cannot be read ({error})",
                             code="zip_entry_unreadable") from None
        count = len(data)
        self._read += count
        self._budget.total += count
        if self._read > MAX_ENTRY_BYTES:
            raise ParseError(f"zip entry {self._member!r} decompresses past {MAX_ENTRY_BYTES} bytes", code="zip_bomb")
        if self._budget.total > MAX_TOTAL_BYTES:
            raise ParseError(f"zip decompresses past {MAX_TOTAL_BYTES} bytes in total (zip bomb?)", code="zip_bomb")
        if self._read > 64 * 1024 * 1024 and self._read > MAX_RATIO * self._compressed:
            raise ParseError(f"zip entry {self._member!r} expands more than {MAX_RATIO}x (zip bomb?)", code="zip_bomb")
        buffer[:count] = data
        return count

    def close(self) -> None:
        self._inner.close()
        super().close()


def _unsafe_name(name: str) -> bool:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return True
    return ".." in PurePosixPath(name).parts


def _stored_name_length(info: zipfile.ZipInfo) -> int:
    """The entry name's length in bytes as written in the zip, not as re-encoded in UTF-8.

    Names without the UTF-8 flag are cp437 (Windows' built-in zip tool writes them so);
    counting 'café' as UTF-8 would make it a byte longer than on disk, and two honest
    adjacent entries would look like an overlap.
    """
    return len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437"))


_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END64_LOCATOR_SIZE = 20
_END64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record
_CENTRAL_SIZE = 46  # fixed part of a central directory header


def _directory_entries(handle: IO[bytes], limit: int) -> int:
    """Count central directory headers as ``zipfile`` will read them, stopping at ``limit + 1``.

    ``zipfile.ZipFile`` builds a ZipInfo (~500 bytes) for every entry before anyone can
    count them, and it walks the directory by its byte size, not by the end record's count
    (which can lie): a 108 MB zip of two million bare entries took 10 s and 1.3 GB. So
    find the directory exactly as zipfile 3.11 does (end record: the last 22 bytes, else the
    last signature in the final 64 KiB; a zip64 record right before it) and walk its
    headers without building them. Anything unparsable here returns 0: zipfile then fails
    on it by itself, or reads a directory this walk has already bounded.
    """
    size = handle.seek(0, io.SEEK_END)
    tail_start = max(0, size - _END.size - (1 << 16))  # zipfile's search window, to the byte
    handle.seek(tail_start)
    tail = handle.read()
    at = len(tail) - _END.size
    if not (at >= 0 and tail[at : at + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0"):
        at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < _END.size:
        return 0
    directory_size = _END.unpack_from(tail, at)[5]
    end = tail_start + at
    handle.seek(max(0, end - _END64_LOCATOR_SIZE - _END64.size))
    zip64 = handle.read(_END64.size + 4)
    if end >= _END64_LOCATOR_SIZE + _END64.size and zip64[-4:] == b"PK\x06\x07" and zip64[:4] == b"PK\x06\x06":
        directory_size = _END64.unpack_from(zip64)[8]
        end -= _END64_LOCATOR_SIZE + _END64.size
    position = end - directory_size
    if position < 0:
        return 0
    count = 0
    handle.seek(position)
    while count <= limit and position < end:
        header = handle.read(_CENTRAL_SIZE)
        if len(header) < _CENTRAL_SIZE or header[:4] != b"PK\x01\x02":
            break
        name, extra, comment = struct.unpack_from("<3H", header, 28)
        position += _CENTRAL_SIZE + name + extra + comment
        handle.seek(position)
        count += 1
    return count


class ZipSource:
    """A zip export, checked on open and read entry by entry as streams."""

    def __init__(self, zipped: Path | IO[bytes], name: str | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        """``zipped``: a file, or bytes in memory (an export mailed as an attachment)."""
        self._name = name or (zipped.name if isinstance(zipped, Path) else "export.zip")
        self._limits = limits
        most = limits.zip_entries
        try:
            # Counted before zipfile builds them all: see _directory_entries.
            with zipped.open("rb") if isinstance(zipped, Path) else contextlib.nullcontext(zipped) as handle:
                entries = _directory_entries(handle, most)
            if entries > most:
                raise ParseError(f"{self._name}: more than {most} zip entries; no real export has that many",
                                 code="too_many_zip_entries")
            self._zip = zipfile.ZipFile(zipped)
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise ParseError(f"{self._name}: not a readable zip file ({error})", code="zip_unreadable") from None
        infos = self._zip.infolist()
        if len(infos) > most:
            raise ParseError(f"{self._name}: {len(infos)} zip entries is more than any export has",
                             code="too_many_zip_entries")
        self._infos = {}
        for info in infos:
            if _unsafe_name(info.filename):
                raise ParseError(f"{self._name}: zip entry name {info.filename!r} escapes the archive (zip slip)",
                                 code="zip_slip")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ParseError(f"{self._name}: zip entry {info.filename!r} is a symbolic link",
                                 code="zip_entry_symlink")
            if not info.is_dir():
                self._infos[info.filename] = info
        self._check_overlap(infos)
        self._budget = _Budget()

    def _check_overlap(self, infos: list[zipfile.ZipInfo]) -> None:
        """Refuse entries whose compressed data overlap (one local file reused many times)."""
        spans = sorted((i.header_offset, i.header_offset + 30 + _stored_name_length(i) + i.compress_size, i.filename)
                       for i in infos)
        for (_, end, name), (start, _, following) in itertools.pairwise(spans):
            if start < end:
                raise ParseError(f"{self._name}: zip entries {name!r} and {following!r} overlap (zip bomb)",
                                 code="zip_entries_overlap")

    @property
    def name(self) -> str:
        return self._name

    @property
    def limits(self) -> Limits:
        return self._limits

    def members(self) -> list[str]:
        return list(self._infos)

    def open(self, member: str) -> BinaryIO:
        info = self._infos.get(member)
        if info is None:
            raise ParseError(f"{self._name}: no member {member!r}", code="no_member")
        if info.flag_bits & 0x1:
            # zipfile's own message for this embeds the ZipInfo repr; say it plainly.
            raise ParseError(f"{self._name}: zip entry {member!r} is encrypted (password-protected); cannot read it",
                             code="zip_entry_encrypted")
        try:
            inner = self._zip.open(info)
        except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError) as error:
            raise ParseError(f"{self._name}: cannot read {member!r} ({error})", code="zip_entry_unreadable") from None
        reader = _CountingReader(inner, member, info.compress_size, self._budget)
        return cast(BinaryIO, io.BufferedReader(reader, buffer_size=256 * 1024))

    def size(self, member: str) -> int:
        return self._infos[member].file_size

    def close(self) -> None:
        self._zip.close()


class Reopenable(io.RawIOBase):
    """A member stream that supports ``seek(0)`` by opening the member again.

    Two-pass parsers (decide the layout, then read) need to start over; zip entry
    streams cannot seek, so starting over means decompressing again, bounded as before.
    """

    def __init__(self, source: ExportSource, member: str) -> None:
        self._source = source
        self._member = member
        self._stream = source.open(member)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) != (0, io.SEEK_SET):
            raise io.UnsupportedOperation("only seek(0) is supported")
        self._stream.close()
        self._stream = self._source.open(self._member)
        return 0

    def close(self) -> None:
        self._stream.close()
        super().close()


def open_rewindable(source: ExportSource, member: str) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(Reopenable(source, member), buffer_size=256 * 1024))
