"""The spool: where an item becomes durable before anything else happens.

Sources put items here and acknowledge only when :meth:`Spool.put_bytes` /
:meth:`Spool.put_file` return; the pipeline takes them out after the store has
committed them. A crash anywhere resumes from the spool, and because ingest is
idempotent (same bytes → same capture), a replay creates no duplicates.

Layout under ``<data_dir>/spool/``::

    seg-00000001.log   a segment: its own key (sealed), then framed, sealed items
    files/<item-id>    a file taken from the watched folder, or a large SMTP message written
                       as it arrived, sealed under its own key (``.partial`` until complete)
    done.log           ids of items the store has committed

**The spool forgets** (docs/ARCHITECTURE.md, "Security model"). Every segment and
every taken file is sealed (AES-256-GCM) under a fresh random key of its own. That
key is kept in the container's first bytes, itself sealed under a key derived from
the daemon's index key, because it must survive a crash until the container's
items are committed. Once they are, the container is destroyed: its key is
overwritten with zeros and fsynced, then the file is unlinked. What is left on the
disk, or in its free blocks, is ciphertext under a key that no longer exists. A
segment takes the group commits of ROLL_SECONDS: the writer closes it after the
first fsync past that age (or :meth:`Spool.retire_idle` does, when no write comes),
so it is destroyed soon after its items are done, instead of waiting for 64 MiB
of later mail. The worker destroys a segment only once the
writer has let go of it (an exclusive ``flock``, held by the writer while the
segment is current).

**Sealed, authenticated headers.** A frame's header holds only the item's id in
clear; its metadata (custodian, receive time, the file's or the envelope's names,
refused flag) is sealed under the segment's key, like the payload, so it is gone
with that key. The header is the associated data of the sealed payload, and a
taken file's metadata is sealed inside the file too: a header edited on the disk
makes the item fail authentication (:class:`SpoolItemDamaged`), never re-routed or
re-dated. (Frames of the previous format kept the metadata in clear; they are
still read.)

**Taken once.** A file from the watched folder is read once, from a descriptor
opened without following links, and sealed into the spool as it is read; the
employee's file is then removed from the inbox. Every later digest, id and
ciphertext of the capture reads the daemon's sealed copy (:class:`SealedFile`),
which the employee cannot change (a hard link or an open descriptor to the
original reaches only the original).

**Large messages are written as they arrive.** An SMTP message past
``smtp.spool_to_disk_bytes`` is sealed into ``files/`` chunk by chunk while its DATA is read
(:class:`IncomingFile`, one file per custodian it is for), so the intake holds no more than
a chunk of it in memory; it is framed, all its items or none, once it has ended and its files
are durable. A refused or cut-off message's files are destroyed like a committed item's.

Group commit: writers append their frame under a lock and wait until an fsync
covers their offset; whoever finds no fsync in flight does one for everybody
waiting. Under concurrent load one fsync makes many items durable.

A spool written by the version before this format (segments without a key of
their own, taken files in clear) is converted at start-up by :meth:`Spool.recover`:
each pending item is sealed again as a new item, and the old segment and clear
files are removed.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import errno
import fcntl
import functools
import io
import json
import logging
import os
import stat
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twentyday.canonical import parse_iso
from twentyday.config import Config
from twentyday.crypto import secrets
from twentyday.errors import IntakeError, SpoolItemDamaged

log = logging.getLogger(__name__)

MAGIC = b"TDSP"  # a frame
SEGMENT_MAGIC = b"TDSS0002"  # a segment of this format (one of the earlier format starts with a frame)
FILE_MAGIC = b"TDSF0002"  # a taken file, sealed
#: A file being written into ``files/``, not yet an item (a crash leaves it: recover() removes it).
PARTIAL_SUFFIX = ".partial"
#: A segment being created: the worker never looks at it (see :meth:`Spool._open_segment`).
NEW_SUFFIX = ".new"
#: A segment this large is closed early (a segment normally takes ROLL_SECONDS of group commits).
SEGMENT_BYTES = 64 * 1024 * 1024
#: A segment takes the group commits of at most this long, then the next write starts a new one
#: (and an idle one is closed by :meth:`Spool.retire_idle`). A new segment per group commit would
#: cost a file creation and a folder fsync on every commit (intake fell by a fifth); this bounds
#: how long a committed item shares a live key with the items written just after it.
ROLL_SECONDS = 0.5
#: Plaintext bytes per sealed chunk of a taken file.
FILE_CHUNK = 1024 * 1024
#: Room for a file's sealed metadata beyond its draft's size, in a file written as its bytes
#: arrive (:class:`IncomingFile`): only the receive time, known when the message ends, differs.
META_SLACK = 1024
_COPY_BYTES = 1024 * 1024
_FRAME_HEAD = struct.Struct(">4sII")  # magic, header length, sealed payload length
_NONCE = 12
_TAG = 16
_SEALED_KEY = _NONCE + 32 + _TAG
SEGMENT_HEADER = len(SEGMENT_MAGIC) + _SEALED_KEY
_FILE_STRIDE = _NONCE + FILE_CHUNK + _TAG
_AD = b"twentyday/spool/v2\0"


@dataclass(frozen=True)
class SpoolItem:
    """One durable item: its metadata and either sealed bytes in a segment or a taken file."""

    id: str
    meta: SpoolMeta
    segment: Path
    payload_offset: int
    payload_length: int
    file: Path | None = None
    #: The frame's header as written: the associated data its payload is sealed with.
    header: bytes = b""
    #: Why its sealed metadata could not be opened ('' if it could): ``meta`` is then a stand-in
    #: and reading the item raises SpoolItemDamaged, so the worker keeps it for review.
    damaged: str = ""


@dataclass(frozen=True)
class SyncTicket:
    """How far a segment must be on disk for an item written to it to be durable."""

    writer: _Writer
    offset: int


@dataclass
class _Writer:
    fd: int  # written with os.write: a failed write leaves nothing in a buffer to come out later
    path: Path
    aead: AESGCM  # the segment's own key
    written: int = 0  # the end of the last whole frame
    durable: int = 0
    #: The segment's name is on disk (its folder fsynced since it was created).
    named: bool = False
    syncing: bool = False
    #: Written to no more: full, or a failed write could not be cut off (a frame after a
    #: torn one would be unreadable, and its segment collected with it unread).
    retired: bool = False
    #: An fsync failed: what it covered may be lost even if a later fsync succeeds.
    failed: bool = False
    closed: bool = False
    #: When it was started (monotonic): see ROLL_SECONDS.
    opened_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class SpoolMeta:
    """What a source records with an item: names and times, never content.

    Sealed in the frame header (under the segment's key, and authenticated as the payload's
    associated data) as the JSON object of :meth:`to_json`; a taken file holds it sealed too.
    """

    name: str
    channel: str  # smtp | folder
    #: When the source received the item, from the source's clock: it decides on time or late.
    received_at: datetime
    custodian: str | None = None
    #: SMTP's envelope (sender, recipients, peer, TLS, AUTH), as text.
    envelope: dict[str, str] | None = None
    #: Why the item was refused (a link in the inbox, a folder too large): recorded, not parsed.
    refused: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "channel": self.channel, "received_at": self.received_at.isoformat(),
                "custodian": self.custodian, "envelope": self.envelope, "refused": self.refused}

    @classmethod
    def from_json(cls, value: Any) -> SpoolMeta:
        """Raises ValueError if ``value`` is not metadata a source wrote."""
        try:
            envelope = value.get("envelope")
            return cls(name=str(value["name"]), channel=str(value["channel"]),
                       received_at=parse_iso(str(value["received_at"])), custodian=value.get("custodian"),
                       envelope=dict(envelope) if envelope is not None else None,
                       refused=str(value.get("refused") or ""))
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not spool item metadata ({type(error).__name__}: {error})") from None

    def encoded(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True).encode()


def file_kind(mode: int) -> str:
    """What an entry that is not a regular file is, in the words a refusal uses."""
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "socket"


class SealedFile:
    """A file taken into the spool: its bytes, readable only through its key.

    :meth:`open` gives a seekable binary stream of the plaintext, checked chunk by chunk
    (each chunk's position and whether it is the last are its associated data, so a
    chunk moved, dropped or cut short fails). It reads the daemon's copy, never the
    employee's file: every pass of the pipeline over it sees the same bytes.
    """

    def __init__(self, path: Path, item_id: str, key: bytes, data_offset: int, stored: int) -> None:
        self.path = path
        self.item_id = item_id
        self._aead = AESGCM(key)
        self.data_offset = data_offset
        rest = stored - data_offset
        self.chunks = max(1, -(-rest // _FILE_STRIDE))
        self.size = rest - self.chunks * (_NONCE + _TAG)
        if self.size < 0 or rest - (self.chunks - 1) * _FILE_STRIDE < _NONCE + _TAG:
            raise SpoolItemDamaged(f"spool item {item_id} is damaged (its sealed file is cut short)")

    def open(self) -> BinaryIO:
        return cast(BinaryIO, io.BufferedReader(_SealedReader(self), buffer_size=FILE_CHUNK))

    def read_all(self) -> bytes:
        with self.open() as handle:
            return handle.read()

    def chunk(self, fd: int, number: int) -> bytes:
        last = number == self.chunks - 1
        sealed = os.pread(fd, _FILE_STRIDE, self.data_offset + number * _FILE_STRIDE)
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _chunk_ad(self.item_id, number, last))
        except InvalidTag:
            raise SpoolItemDamaged(f"spool item {self.item_id} is damaged (chunk {number} of its sealed file "
                                   "fails authentication)") from None


class _SealedReader(io.RawIOBase):
    def __init__(self, sealed: SealedFile) -> None:
        self._sealed = sealed
        self._fd = os.open(sealed.path, os.O_RDONLY | os.O_NOFOLLOW)
        self._position = 0
        self._cached: tuple[int, bytes] | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._sealed.size}[whence]
        if base + offset < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        if self._position >= self._sealed.size:
            return 0
        number, within = divmod(self._position, FILE_CHUNK)
        if self._cached is None or self._cached[0] != number:
            self._cached = (number, self._sealed.chunk(self._fd, number))
        piece = self._cached[1][within:within + len(buffer)]
        buffer[:len(piece)] = piece
        self._position += len(piece)
        return len(piece)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class _SealingWriter(io.RawIOBase):
    """Seals what is written to it into ``out`` in chunks of FILE_CHUNK (not seekable: a zip
    written to it uses data descriptors)."""

    def __init__(self, out: BinaryIO, item_id: str, key: bytes) -> None:
        self._out = out
        self._item_id = item_id
        self._aead = AESGCM(key)
        self._pending = bytearray()
        self._number = 0
        self._count = 0

    def writable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._count

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._pending += view
        self._count += len(view)
        # A full chunk is sealed once more follows: only the last one is marked last.
        while len(self._pending) > FILE_CHUNK:
            self._seal(bytes(self._pending[:FILE_CHUNK]), last=False)
            del self._pending[:FILE_CHUNK]
        return len(view)

    def finish(self) -> None:
        self._seal(bytes(self._pending), last=True)
        self._pending.clear()

    def _seal(self, plaintext: bytes, last: bool) -> None:
        nonce = os.urandom(_NONCE)
        self._out.write(nonce + self._aead.encrypt(nonce, plaintext, _chunk_ad(self._item_id, self._number, last)))
        self._number += 1


def _chunk_ad(item_id: str, number: int, last: bool) -> bytes:
    return _AD + b"file\0" + item_id.encode() + struct.pack(">Q?", number, last)


@dataclass
class _IncomingPart:
    """One item of an :class:`IncomingFile`: its sealed file under a ``.partial`` name."""

    item_id: str
    path: Path  # ``files/<id>.partial`` until committed, then ``files/<id>``
    fd: int  # -1 once closed
    aead: AESGCM  # the file's own key
    meta_offset: int  # where its sealed metadata goes once the message has ended
    meta_room: int  # the bytes kept there for it
    chunks: int = 0


class IncomingFile:
    """Items whose bytes arrive over time (a large SMTP message), sealed into ``files/`` as they
    are written, so no more than a chunk of them is held in memory.

    One sealed file per item (a message for several custodians: one item each), in the format
    of a taken file, each under a key of its own and a ``.partial`` name. The metadata is sealed
    at the head of each file, in room kept for it when the file is started, since the receive
    time is known only when the message ends; the room is the draft's size plus META_SLACK.
    :meth:`commit` frames them all, or none; :meth:`discard` destroys them (keys zeroed, then
    unlinked). A crash before the commit leaves only ``.partial`` files, which
    :meth:`Spool.recover` destroys: no 250 was sent, so the sender retries.

    Not thread-safe: one connection writes it, then commits or discards it once.
    """

    def __init__(self, spool: Spool, drafts: Sequence[SpoolMeta]) -> None:
        self._spool = spool
        self._parts: list[_IncomingPart] = []
        self._pending = bytearray()
        self._finished = False
        with self._or_discard("start a file for a message"):
            for draft in drafts:
                self._start(draft)

    @property
    def ids(self) -> list[str]:
        return [part.item_id for part in self._parts]

    @property
    def buffered(self) -> int:
        """Bytes written and held in memory, not sealed yet (less than a chunk and a write)."""
        return len(self._pending)

    def _start(self, draft: SpoolMeta) -> None:
        item_id = uuid.uuid4().hex
        path = self._spool.files / (item_id + PARTIAL_SUFFIX)
        key = AESGCM.generate_key(256)
        room = _NONCE + len(draft.encoded()) + META_SLACK + _TAG
        head = FILE_MAGIC + self._spool._seal_key(key, b"file", item_id) + struct.pack(">I", room)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._parts.append(_IncomingPart(item_id, path, fd, AESGCM(key), len(head), room))  # discard() sees it
        _write_all(fd, head + bytes(room))  # the metadata's room, filled when the message ends

    def write(self, data: bytes) -> None:
        """Seal ``data`` into every item's file as whole chunks fill. Raises IntakeError."""
        if self._finished:
            raise IntakeError("spool: this message was committed or discarded already")
        self._pending += data
        try:
            # A full chunk is sealed once more follows: only the last one is marked last.
            while len(self._pending) > FILE_CHUNK:
                self._seal(bytes(self._pending[:FILE_CHUNK]), last=False)
                del self._pending[:FILE_CHUNK]
        except OSError as error:
            raise IntakeError(f"spool write failed: {error.strerror}") from None

    def _seal(self, plaintext: bytes, last: bool) -> None:
        for part in self._parts:
            nonce = os.urandom(_NONCE)
            _write_all(part.fd, nonce + part.aead.encrypt(nonce, plaintext,
                                                          _chunk_ad(part.item_id, part.chunks, last)))
            part.chunks += 1

    def commit(self, metas: Sequence[SpoolMeta]) -> tuple[list[str], SyncTicket]:
        """The message has ended: seal its last chunk and each item's metadata (``metas``, one
        per draft, in order), make every file durable (fsync, rename, folder fsync), then frame
        them all at once. Durable once :meth:`Spool.sync` of the ticket returns. All or none:
        on failure every file is destroyed and IntakeError raised. Blocks on the disk (run it
        off the event loop)."""
        if self._finished or len(metas) != len(self._parts):
            self.discard()
            raise IntakeError("spool: a message's items do not match the files written for it")
        with self._or_discard("make a message durable"):
            self._seal(bytes(self._pending), last=True)
            self._pending = bytearray()
            for part, meta in zip(self._parts, metas, strict=True):
                encoded = meta.encoded()
                if len(encoded) > part.meta_room - _NONCE - _TAG:
                    raise IntakeError("spool: a message's metadata outgrew the room kept for it")
                # JSON allows trailing spaces: the sealed metadata fills its room exactly.
                padded = encoded + b" " * (part.meta_room - _NONCE - _TAG - len(encoded))
                nonce = os.urandom(_NONCE)
                sealed = nonce + part.aead.encrypt(nonce, padded, _AD + b"meta\0" + part.item_id.encode())
                os.pwrite(part.fd, sealed, part.meta_offset)
                os.fsync(part.fd)
                os.close(part.fd)
                part.fd = -1
                target = self._spool.files / part.item_id
                os.rename(part.path, target)
                part.path = target
            _fsync_dir(self._spool.files)
            ticket = self._spool._write(lambda aead: iter([
                _frame(aead, part.item_id, meta, b"", file=True)
                for part, meta in zip(self._parts, metas, strict=True)]))
        self._finished = True
        return self.ids, ticket

    @contextlib.contextmanager
    def _or_discard(self, doing: str) -> Iterator[None]:
        """Whatever fails inside destroys every file of the message (all or none); a failure
        of the disk is an IntakeError."""
        try:
            yield
        except OSError as error:
            self.discard()
            raise IntakeError(f"spool: cannot {doing}: {error.strerror}") from None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Destroy every file written for the message (keys zeroed and made durable, then
        unlinked): it was refused, or its connection was lost. Blocks on the disk."""
        self._finished = True
        self._pending = bytearray()
        for part in self._parts:
            if part.fd >= 0:
                os.close(part.fd)
                part.fd = -1
        self._spool._destroy_all([(part.path, part.meta_offset) for part in self._parts])


class Spool:
    @classmethod
    def open(cls, config: Config, *, writer: bool = True) -> Spool:
        """The spool of ``config``'s archive; containers' keys are sealed under a key derived
        from the daemon's secrets."""
        return cls(config.data_dir / "spool", secrets.load(config.data_dir).derived("spool"), writer=writer)

    def __init__(self, root: Path, key: bytes, *, writer: bool = True, roll_seconds: float = ROLL_SECONDS) -> None:
        """``writer=False``: the pipeline's view (read, mark done, collect), e.g. in the worker process.
        ``roll_seconds``: see ROLL_SECONDS (0: a segment per group commit)."""
        self.root = root
        self._roll_seconds = roll_seconds
        self.files = root / "files"
        #: Seals each container's own key (and, in the earlier format, the items themselves).
        self._daemon = AESGCM(key)
        self._keys: dict[Path, AESGCM] = {}
        self._lock = threading.Condition()
        self._writes = writer
        self._writer: _Writer | None = None
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.files.mkdir(exist_ok=True, mode=0o700)
            self._done = os.fdopen(os.open(root / "done.log", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600), "a+b")
            self._done_cache: set[str] = set()
            self._done_read = 0
            #: (segment, offset): every item before it is done (see :meth:`pending`).
            self._watermark: tuple[Path, int] | None = None
        except OSError as error:
            raise IntakeError(f"{root}: spool is not writable: {error.strerror}") from None

    def close(self) -> None:
        with self._lock:
            if self._writer is not None and not self._writer.closed:
                self._writer.closed = True
                os.close(self._writer.fd)
            self._done.close()

    # -- keys --------------------------------------------------------------------------

    def _seal_key(self, key: bytes, kind: bytes, name: str) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._daemon.encrypt(nonce, key, _AD + kind + b"\0" + name.encode())

    def _open_key(self, sealed: bytes, kind: bytes, name: str) -> bytes:
        try:
            return self._daemon.decrypt(sealed[:_NONCE], sealed[_NONCE:], _AD + kind + b"\0" + name.encode())
        except InvalidTag:
            raise SpoolItemDamaged(f"spool {kind.decode()} {name} is damaged, or its key was destroyed "
                                   "(its key fails authentication)") from None

    def _segment_key(self, segment: Path) -> AESGCM:
        aead = self._keys.get(segment)
        if aead is None:
            try:
                with segment.open("rb") as handle:
                    head = handle.read(SEGMENT_HEADER)
            except FileNotFoundError:
                raise SpoolItemDamaged(f"spool segment {segment.name} is gone") from None
            if head[:len(SEGMENT_MAGIC)] != SEGMENT_MAGIC or len(head) < SEGMENT_HEADER:
                raise SpoolItemDamaged(f"spool segment {segment.name} has no key")
            aead = self._keys[segment] = AESGCM(self._open_key(head[len(SEGMENT_MAGIC):], b"segment", segment.name))
        return aead

    # -- writing ---------------------------------------------------------------------

    def _segments(self) -> list[Path]:
        return sorted(self.root.glob("seg-*.log"))

    def _open_segment(self) -> _Writer:
        """A new segment with a fresh key, held (flock) until the writer closes it.

        It is created under a ``.new`` name, locked, given its sealed key and only then
        renamed, so the worker never sees a segment the writer does not hold yet (it would
        find it empty, so done, and destroy it under the writer).
        """
        names = [p.name.split(".")[0] for p in self.root.glob("seg-*")]
        number = max((int(name[4:]) for name in names if name[4:].isdigit()), default=0) + 1
        while True:
            path = self.root / f"seg-{number:08d}.log"
            try:
                fd = os.open(path.with_name(path.name + NEW_SUFFIX), os.O_WRONLY | os.O_APPEND | os.O_CREAT
                             | os.O_EXCL, 0o600)
                break
            except FileExistsError:  # another writer's
                number += 1
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            key = AESGCM.generate_key(256)
            _write_all(fd, SEGMENT_MAGIC + self._seal_key(key, b"segment", path.name))
            os.rename(path.with_name(path.name + NEW_SUFFIX), path)
        except BaseException:
            os.close(fd)
            path.with_name(path.name + NEW_SUFFIX).unlink(missing_ok=True)
            raise
        return _Writer(fd, path, AESGCM(key), written=SEGMENT_HEADER)

    def put_bytes(self, data: bytes, meta: SpoolMeta) -> str:
        """Make ``data`` durable; returns the item id. Raises IntakeError if it cannot."""
        item_id, ticket = self.write_bytes(data, meta)
        self.sync(ticket)
        return item_id

    def write_bytes(self, data: bytes, meta: SpoolMeta) -> tuple[str, SyncTicket]:
        """Write an item without waiting for the disk: it is durable once :meth:`sync` of the
        ticket returns. Lets an event loop write inline and wait for one shared fsync."""
        [item_id], ticket = self.write_items([meta], data)
        return item_id, ticket

    def write_items(self, metas: Sequence[SpoolMeta], data: bytes) -> tuple[list[str], SyncTicket]:
        """Write ``data`` as one item per entry of ``metas`` (a message for several custodians),
        all or none: if one cannot be written, none of them is in the spool."""
        ids = [uuid.uuid4().hex for _ in metas]

        def frames(aead: AESGCM) -> Iterator[tuple[bytes, ...]]:
            # Sealed one at a time, as written: the message is held once more, not once per item.
            for item_id, meta in zip(ids, metas, strict=True):
                yield _frame(aead, item_id, meta, data)

        return ids, self._write(frames)

    def put_file(self, path: Path, meta: SpoolMeta) -> str:
        """Take a complete file into the spool: read it once, sealing it as it is read.

        The file is opened without following a link or blocking on a FIFO, and only a
        regular file is read; what the spool holds is the daemon's sealed copy, durable
        before the original is removed from the inbox. A crash before the copy is complete
        leaves the original in the inbox; after it, :meth:`recover` frames the copy (should
        the original still be there, it is taken again, and the same bytes make the same
        capture).
        """
        item_id = uuid.uuid4().hex
        try:
            source = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as error:
            if error.errno == errno.ELOOP:  # O_NOFOLLOW's answer for a symbolic link
                raise IntakeError(f"{path} was replaced by a symbolic link while being taken; "
                                  "it was not opened") from None
            raise IntakeError(f"{path}: cannot take into the spool: {error.strerror}") from None
        try:
            taken = os.fstat(source)
            if not stat.S_ISREG(taken.st_mode):
                raise IntakeError(f"{path} was replaced by a {file_kind(taken.st_mode)} while being taken; "
                                  "it was not opened")

            def copy(out: BinaryIO) -> None:
                while piece := os.read(source, _COPY_BYTES):
                    out.write(piece)

            try:
                target = self._write_sealed_file(item_id, meta, copy)
            except OSError as error:
                raise IntakeError(f"{path}: cannot take into the spool: {error.strerror}") from None
        finally:
            os.close(source)
        try:
            _fsync_dir(self.files)
        except OSError as error:
            # The copy may not be on disk: the original stays in the inbox, and the copy, if it
            # survives, is framed at the next start (the same bytes: the same capture).
            raise IntakeError(f"{path}: taken into the spool, but the spool could not be synced "
                              f"({error.strerror}); it is taken again") from None
        try:
            now = os.lstat(path)
            if (now.st_dev, now.st_ino) == (taken.st_dev, taken.st_ino):
                os.unlink(path)  # not whatever the employee put at that name since
        except FileNotFoundError:
            pass
        except OSError as error:
            self._destroy(target, _file_header_length(target))  # left in the inbox: taken once, later
            raise IntakeError(f"{path}: cannot remove it from the inbox: {error.strerror}") from None
        try:
            _fsync_dir(path.parent)
        except OSError as error:
            # The item is durable in the spool: frame it. Should the removal from the inbox be
            # lost in a crash, the file is taken again and, being the same bytes, makes the
            # same capture (ingest is idempotent), not a second one.
            log.warning("%s: taken into the spool, but its folder could not be synced: %s", path, error.strerror)
        self._frame_file(item_id, meta)
        return item_id

    def put_written_file(self, write: Callable[[BinaryIO], None], meta: SpoolMeta) -> str:
        """Make a file that ``write`` produces an item (e.g. a dropped folder, packed), sealed
        as it is written; a crash before it is complete leaves nothing that :meth:`recover`
        would frame."""
        item_id = uuid.uuid4().hex
        try:
            self._write_sealed_file(item_id, meta, write)
            _fsync_dir(self.files)
        except OSError as error:
            self._discard(self.files / item_id)
            raise IntakeError(f"{meta.name}: cannot write into the spool: {error.strerror}") from None
        except BaseException:
            self._discard(self.files / item_id)
            raise
        self._frame_file(item_id, meta)
        return item_id

    def _write_sealed_file(self, item_id: str, meta: SpoolMeta, write: Callable[[BinaryIO], None]) -> Path:
        """``files/<item_id>``: the file's sealed key, its sealed metadata, then its sealed chunks;
        written under a temporary name, fsynced, and renamed (the caller fsyncs the folder)."""
        target = self.files / item_id
        partial = target.with_name(item_id + PARTIAL_SUFFIX)
        key = AESGCM.generate_key(256)
        nonce = os.urandom(_NONCE)
        sealed_meta = nonce + AESGCM(key).encrypt(nonce, meta.encoded(), _AD + b"meta\0" + item_id.encode())
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(FILE_MAGIC + self._seal_key(key, b"file", item_id)
                             + struct.pack(">I", len(sealed_meta)) + sealed_meta)
                sealing = _SealingWriter(cast(BinaryIO, handle), item_id, key)
                write(cast(BinaryIO, sealing))
                sealing.finish()
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return target

    def _frame_file(self, item_id: str, meta: SpoolMeta) -> None:
        self.sync(self._write(lambda aead: iter([_frame(aead, item_id, meta, b"", file=True)])))

    def receive_file(self, drafts: Sequence[SpoolMeta]) -> IncomingFile:
        """Start items whose bytes will arrive over time, one per entry of ``drafts`` (their
        metadata as known now; :meth:`IncomingFile.commit` gives the final one). Raises
        IntakeError if the spool cannot start them."""
        if not self._writes:
            raise IntakeError("this spool was opened read-only")
        return IncomingFile(self, drafts)

    def sealed_file(self, item: SpoolItem) -> SealedFile:
        """The taken file of ``item``, to read (raises SpoolItemDamaged if it fails authentication)."""
        if item.file is None:
            raise ValueError(f"spool item {item.id} is not a file")
        if item.damaged:
            raise SpoolItemDamaged(item.damaged)
        sealed, meta = self._open_file(item.file)
        if meta != item.meta:  # its frame was sealed with other metadata than the file was
            raise SpoolItemDamaged(f"spool item {item.id} is damaged (its frame and its file disagree)")
        return sealed

    def _open_file(self, path: Path) -> tuple[SealedFile, SpoolMeta]:
        item_id = path.name
        try:
            with path.open("rb") as handle:
                stored = os.fstat(handle.fileno()).st_size
                head = handle.read(len(FILE_MAGIC) + _SEALED_KEY + 4)
                if len(head) < len(FILE_MAGIC) + _SEALED_KEY + 4 or not head.startswith(FILE_MAGIC):
                    raise SpoolItemDamaged(f"spool item {item_id} is damaged (not a sealed file)")
                key = self._open_key(head[len(FILE_MAGIC):-4], b"file", item_id)
                (length,) = struct.unpack(">I", head[-4:])
                sealed_meta = handle.read(min(length, 1024 * 1024))
        except FileNotFoundError:
            raise SpoolItemDamaged(f"spool item {item_id} is damaged (its file is gone)") from None
        try:
            encoded = AESGCM(key).decrypt(sealed_meta[:_NONCE], sealed_meta[_NONCE:],
                                          _AD + b"meta\0" + item_id.encode())
            meta = SpoolMeta.from_json(json.loads(encoded))
        except (InvalidTag, ValueError):
            raise SpoolItemDamaged(f"spool item {item_id} is damaged (its metadata fails authentication)"
                                   ) from None
        return SealedFile(path, item_id, key, len(head) + len(sealed_meta), stored), meta

    def recover(self) -> int:
        """At start-up: frame files taken but not recorded before a crash, and convert a spool of
        the earlier format; returns how many items were framed or converted."""
        for leftover in self.files.glob(f"*{PARTIAL_SUFFIX}"):
            # Cut short by a crash: its source is still in the inbox, or its sender had no 250
            # and retries. It may hold a large message's first chunks: its key is destroyed.
            self._destroy(leftover, _file_header_length(leftover))
        for leftover in self.root.glob(f"seg-*{NEW_SUFFIX}"):
            leftover.unlink()  # it held nothing yet
        count = self._convert_earlier_format()
        done = self._done_ids()
        framed = {item.file.name for item in self.pending() if item.file is not None}
        for path in sorted(self.files.iterdir()):
            if path.name in framed or "." in path.name:
                continue
            if path.name in done:  # committed; the crash came before it was destroyed
                self._destroy(path, _file_header_length(path))
                continue
            if not stat.S_ISREG(os.lstat(path).st_mode):
                log.warning("spool: %s is not a regular file; it was not opened", path.name)
                continue
            try:
                _, meta = self._open_file(path)
            except SpoolItemDamaged as error:  # framed, it would stop the pipeline at an item it cannot read
                log.warning("%s; it was not framed", error)
                continue
            self._frame_file(path.name, meta)
            count += 1
        return count

    def _convert_earlier_format(self) -> int:
        """Seal the pending items of a spool written by the earlier format again, in this one.

        That format sealed every segment under the daemon's derived key and kept taken
        files in clear beside a ``.meta`` sidecar. Each pending item becomes a new item
        (a new id); then the old segment and files are removed. A crash part-way converts
        again at the next start: an item then pending twice makes one capture (same bytes).
        """
        old = [segment for segment in self._segments() if _is_earlier_format(segment)]
        sidecars = sorted(self.files.glob("*.meta"))
        if not old and not sidecars:
            return 0
        done = self._done_ids()
        count = 0
        for segment in old:
            for item, _ in _read_segment(segment, functools.partial(self._segment_key, segment)):
                if item.id in done or item.file is not None:
                    continue  # a file is converted from its sidecar below
                sealed = self.read_sealed(item)
                try:
                    data = self._daemon.decrypt(sealed[:_NONCE], sealed[_NONCE:], item.id.encode())
                    self.put_bytes(data, item.meta)
                except InvalidTag:
                    reason = f"spool item {item.id} of the earlier format is damaged (fails authentication)"
                    self.put_bytes(sealed, SpoolMeta(item.meta.name, item.meta.channel, item.meta.received_at,
                                                     None, refused=reason))
                count += 1
        for sidecar in sidecars:
            clear = self.files / sidecar.stem
            if sidecar.stem not in done and os.path.lexists(clear):
                if not stat.S_ISREG(os.lstat(clear).st_mode):
                    log.warning("spool: %s was not a regular file; it was not opened", clear.name)
                else:
                    meta = SpoolMeta.from_json(json.loads(sidecar.read_bytes()))
                    with clear.open("rb") as handle:
                        self.put_written_file(functools.partial(_copy, handle), meta)
                    count += 1
            _discard_clear(clear)
            sidecar.unlink()
        for segment in old:
            segment.unlink()
        log.warning("spool: %d pending item(s) of the earlier spool format sealed again under keys of their own",
                    count)
        return count

    def _write(self, frames: Callable[[AESGCM], Iterator[tuple[bytes, ...]]]) -> SyncTicket:
        """Append whole frames, all or none: a failure cuts the segment back to where it was."""
        with self._lock:
            writer = self._current_writer()
            end = writer.written
            try:
                for frame in frames(writer.aead):
                    for part in frame:
                        _write_all(writer.fd, part)
                        end += len(part)
            except BaseException as error:
                self._cut_back(writer)
                if isinstance(error, OSError):
                    raise IntakeError(f"spool write failed: {error.strerror}") from None
                raise
            writer.written = end
            if writer.written >= SEGMENT_BYTES:
                writer.retired = True  # the next write starts a new segment
            return SyncTicket(writer, writer.written)

    def _current_writer(self) -> _Writer:
        if not self._writes:
            raise IntakeError("this spool was opened read-only")
        writer = self._writer
        if writer is not None and writer.retired:
            self._close_retired(writer)
            writer = None
        if writer is None or writer.closed:
            try:
                writer = self._writer = self._open_segment()
            except OSError as error:
                raise IntakeError(f"spool: cannot start a new segment: {error.strerror}") from None
        return writer

    def _cut_back(self, writer: _Writer) -> None:
        """Remove what a failed write left after the last whole frame; if that fails too, write
        no more to this segment, so the torn frame is its last."""
        try:
            os.ftruncate(writer.fd, writer.written)
        except OSError:
            writer.retired = True

    def _close_retired(self, writer: _Writer) -> None:
        """Make a retired segment durable for the tickets already given out, and close it."""
        while writer.syncing:
            self._lock.wait()
        if writer.closed:
            return
        try:
            if writer.durable < writer.written and not writer.failed:
                if not writer.named:
                    _fsync_dir(self.root)
                os.fsync(writer.fd)
                writer.durable = writer.written
        except OSError:
            writer.failed = True  # its waiting tickets fail (see _sync_locked): their senders retry
        finally:
            writer.closed = True
            os.close(writer.fd)

    def sync(self, ticket: SyncTicket) -> None:
        """Return once everything up to ``ticket`` is on disk (group commit: one fsync serves
        every writer waiting at the time). Raises IntakeError if the disk refuses.

        A segment whose writes are all on disk and that is ROLL_SECONDS old is closed: the next
        write starts a new one, so each segment holds the group commits of about ROLL_SECONDS
        and is destroyed once they are done."""
        with self._lock:
            self._sync_locked(ticket)
            self._close_if_due(ticket.writer)

    def retire_idle(self) -> bool:
        """Close the current segment once its writes are on disk and it is ROLL_SECONDS old, so
        the worker can destroy it when its items are done (the daemon calls this every
        ROLL_SECONDS: a segment no write follows is closed too). True if one was closed."""
        with self._lock:
            writer = self._writer
            return writer is not None and self._close_if_due(writer)

    def _close_if_due(self, writer: _Writer) -> bool:
        if (writer.closed or writer.syncing or writer.failed or writer.durable < writer.written
                or time.monotonic() - writer.opened_at < self._roll_seconds):
            return False
        writer.closed = True
        os.close(writer.fd)  # lets go of its flock: the worker may destroy it once it is done
        return True

    def _sync_locked(self, ticket: SyncTicket) -> None:
        writer = ticket.writer
        while writer.durable < ticket.offset:
            if writer.failed or writer.closed:
                # After a failed fsync the kernel may have dropped the pages it could not
                # write, and a later fsync can succeed without them: nothing it covered is durable.
                raise IntakeError("spool fsync failed earlier on this segment")
            if writer.syncing:
                self._lock.wait()
                continue
            writer.syncing = True
            covered = writer.written
            failure: OSError | None = None
            self._lock.release()
            try:
                if not writer.named:  # a new segment: its name must be on disk before its frames count
                    _fsync_dir(self.root)
                    writer.named = True
                os.fsync(writer.fd)
            except OSError as error:
                failure = error
            finally:
                self._lock.acquire()
                writer.syncing = False
                self._lock.notify_all()
            if failure is not None:
                writer.failed = writer.retired = True
                raise IntakeError(f"spool fsync failed: {failure.strerror}")
            writer.durable = max(writer.durable, covered)

    # -- reading ---------------------------------------------------------------------

    def _done_ids(self) -> set[str]:
        """Ids in done.log, read incrementally: only what was appended since the last call."""
        with self._lock:
            size = os.fstat(self._done.fileno()).st_size
            if size < self._done_read:  # truncated by collect(), maybe in another process
                self._done_cache, self._done_read, self._watermark = set(), 0, None
            self._done.seek(self._done_read)
            appended = self._done.read(size - self._done_read)
            complete = appended[: appended.rfind(b"\n") + 1]  # a line still being written waits
            self._done_read += len(complete)
            self._done_cache.update(line.decode() for line in complete.split() if line)
            return self._done_cache

    def pending(self) -> Iterator[SpoolItem]:
        """Items not yet marked done, oldest first. Torn frames at a segment's end are skipped.

        Scanning resumes at a watermark before which every item is done, so a worker woken
        for each new message reads only the frames after it, not the whole segment again.
        """
        done = self._done_ids()
        mark = self._watermark
        if mark is not None and not mark[0].exists():
            # Destroyed: every segment after it has a higher number, unless all were destroyed
            # and numbering began again; either way a scan from the start misses nothing.
            mark = self._watermark = None
        advancing = True
        for segment in self._segments():
            if mark is not None and segment.name < mark[0].name:
                continue
            start = mark[1] if mark is not None and segment == mark[0] else 0
            for item, end in _read_segment(segment, functools.partial(self._segment_key, segment), start):
                if item.id in done:
                    if advancing:
                        self._watermark = (segment, end)
                    continue
                advancing = False
                yield item

    def read(self, item: SpoolItem) -> bytes:
        """The item's bytes (empty for a taken file), once its payload and header authenticate."""
        if item.damaged:
            raise SpoolItemDamaged(item.damaged)
        aead = self._segment_key(item.segment)
        sealed = self.read_sealed(item)
        try:
            return aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _AD + b"frame\0" + item.header)
        except InvalidTag:
            raise SpoolItemDamaged(f"spool item {item.id} is damaged (its sealed bytes or its header fail "
                                   "authentication)") from None

    def read_sealed(self, item: SpoolItem) -> bytes:
        """The item's payload as it is on disk, still sealed."""
        with item.segment.open("rb") as handle:
            handle.seek(item.payload_offset)
            return handle.read(item.payload_length)

    def mark_done(self, *items: SpoolItem) -> None:
        """The store durably committed these items: forget them (one fsync for all), and destroy
        every container all of whose items are now done."""
        with self._lock:
            self._done.write(b"".join(item.id.encode() + b"\n" for item in items))
            self._done.flush()
            os.fsync(self._done.fileno())
        done = self._done_ids()
        finished = [(item.file, _file_header_length(item.file)) for item in items if item.file is not None]
        finished += [(segment, SEGMENT_HEADER) for segment in sorted({item.segment for item in items})
                     if segment.exists() and all(i in done for i in _segment_ids(segment))]
        self._destroy_all(finished)

    def collect(self) -> None:
        """Destroy every container whose items are all done (the worker calls this when idle:
        a segment the writer still held at mark_done is destroyed here, once it let go)."""
        done = self._done_ids()
        finished = [(segment, SEGMENT_HEADER) for segment in self._segments()
                    if all(i in done for i in _segment_ids(segment))]
        finished += [(path, _file_header_length(path)) for path in self.files.iterdir() if path.name in done]
        destroyed = self._destroy_all(finished)
        live = len(destroyed) < len(finished) or any(
            path not in destroyed for path in [*self._segments(), *self.files.iterdir()])
        if not live:  # done.log may only be emptied once no container holds an item
            with self._lock:
                self._done.seek(0)
                self._done.truncate()
                self._done_cache, self._done_read, self._watermark = set(), 0, None

    def _destroy(self, path: Path, key_bytes: int) -> bool:
        return path in self._destroy_all([(path, key_bytes)]) or not os.path.lexists(path)

    def _destroy_all(self, containers: Sequence[tuple[Path, int]]) -> set[Path]:
        """Overwrite each container's sealed key with zeros, make that durable, then unlink it:
        what is left of it (on the disk or in its free blocks) is ciphertext under a key that no
        longer exists. One ``syncfs`` covers a batch of them (an fsync each where there is none).
        A container a writer still holds is skipped (:meth:`collect` destroys it later).
        Returns those destroyed."""
        opened: list[tuple[Path, int]] = []
        try:
            for path, key_bytes in containers:
                try:
                    fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
                except OSError:  # gone already, or a link or something else that is no container of ours
                    continue
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    size = os.fstat(fd)
                    if not stat.S_ISREG(size.st_mode):
                        raise BlockingIOError
                    for offset in range(0, min(key_bytes, size.st_size), _COPY_BYTES):
                        os.pwrite(fd, bytes(min(_COPY_BYTES, key_bytes - offset, size.st_size - offset)), offset)
                except BlockingIOError:
                    os.close(fd)
                    continue
                except BaseException:
                    os.close(fd)
                    raise
                opened.append((path, fd))
            if opened and not _syncfs(opened[0][1]):
                for _, fd in opened:
                    os.fsync(fd)
            for path, _ in opened:
                os.unlink(path)
                self._keys.pop(path, None)
        finally:
            for _, fd in opened:
                os.close(fd)
        return {path for path, _ in opened}

    def _discard(self, path: Path) -> None:
        if path.exists():
            self._destroy(path, _file_header_length(path))


def _syncfs(fd: int) -> bool:
    """Linux: flush the file system holding ``fd`` (one call for many files); False elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.syncfs(fd) == 0)
    except (OSError, AttributeError):
        return False


def _frame(aead: AESGCM, item_id: str, meta: SpoolMeta, data: bytes, *, file: bool = False) -> tuple[bytes, ...]:
    """A frame: its header (the id in clear, the metadata sealed), and its payload sealed with
    the header as associated data."""
    nonce = os.urandom(_NONCE)
    sealed_meta = nonce + aead.encrypt(nonce, meta.encoded(), _AD + b"meta\0" + item_id.encode())
    header: dict[str, Any] = {"id": item_id, "sealed_meta": base64.b64encode(sealed_meta).decode()}
    if file:
        header["file"] = item_id
    encoded = json.dumps(header, sort_keys=True).encode()
    nonce = os.urandom(_NONCE)
    sealed = aead.encrypt(nonce, data, _AD + b"frame\0" + encoded)
    return _FRAME_HEAD.pack(MAGIC, len(encoded), _NONCE + len(sealed)) + encoded + nonce, sealed


def _file_header_length(path: Path) -> int:
    """How many first bytes of a taken file hold its key (all of them, if it is not one)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(len(FILE_MAGIC))
    except OSError:
        return 0
    return len(FILE_MAGIC) + _SEALED_KEY if head == FILE_MAGIC else 1 << 40


def _is_earlier_format(segment: Path) -> bool:
    with segment.open("rb") as handle:
        return handle.read(len(SEGMENT_MAGIC)) != SEGMENT_MAGIC


def _copy(source: BinaryIO, out: BinaryIO) -> None:
    while piece := source.read(_COPY_BYTES):
        out.write(piece)


def _discard_clear(path: Path) -> None:
    """Remove a file of the earlier format (in clear), its content overwritten first."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW)
    except FileNotFoundError:
        return
    except OSError:
        path.unlink(missing_ok=True)
        return
    try:
        size = os.fstat(fd).st_size
        for offset in range(0, size, _COPY_BYTES):
            os.pwrite(fd, bytes(min(_COPY_BYTES, size - offset)), offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()


def _frames(segment: Path, start: int = 0) -> Iterator[tuple[dict[str, Any], bytes, int, int]]:
    """The frames of a segment from offset ``start``: each one's decoded header, the header as
    written, where its payload starts, and the offset after it."""
    try:
        handle = segment.open("rb")
    except FileNotFoundError:  # destroyed meanwhile
        return
    with handle:
        size = os.fstat(handle.fileno()).st_size  # a frame past this is torn, or still being written
        if start == 0 and handle.read(len(SEGMENT_MAGIC)) == SEGMENT_MAGIC:
            start = SEGMENT_HEADER
        offset = start
        handle.seek(start)
        while True:
            head = handle.read(_FRAME_HEAD.size)
            if len(head) < _FRAME_HEAD.size:
                return
            magic, header_length, payload_length = _FRAME_HEAD.unpack(head)
            if magic != MAGIC:
                return
            header = handle.read(header_length)
            if len(header) < header_length:
                return
            payload_offset = offset + _FRAME_HEAD.size + header_length
            end = payload_offset + payload_length
            if end > size:
                return  # torn write: never acknowledged, the sender retries
            handle.seek(end)
            try:
                decoded = json.loads(header)
            except ValueError:
                return
            yield decoded, header, payload_offset, end
            offset = end


def _segment_ids(segment: Path) -> Iterator[str]:
    """The ids of the items framed in a segment (no key needed)."""
    return (str(decoded["id"]) for decoded, _, _, _ in _frames(segment))


@dataclass(frozen=True)
class Backlog:
    """What the spool holds that the store has not committed yet, as an onlooker sees it.

    ``oldest_at``: when the segment framing the oldest waiting item was last written (a segment
    takes the group commits of ROLL_SECONDS, so within about that of the item's arrival; its own
    receive time is sealed). None when nothing waits."""

    items: int
    oldest_at: datetime | None


def backlog(root: Path) -> Backlog:
    """The items framed in the spool at ``root`` and not in ``done.log``: read with no key (a frame's
    id is its only clear field) and without writing or creating anything, so ``twentyday status``
    runs beside the daemon, as a user who may only read. Frames are read before ``done.log``: an
    item is marked done only after it was framed, so none is missed, and one committed meanwhile
    is counted once more at most."""
    try:
        segments = sorted(root.glob("seg-*.log"))
    except OSError:
        return Backlog(0, None)
    framed: list[tuple[Path, list[str]]] = [(segment, list(_segment_ids(segment))) for segment in segments]
    try:
        done = set((root / "done.log").read_bytes().split())
    except FileNotFoundError:
        done = set()
    items, oldest_at = 0, None
    for segment, ids in framed:
        waiting = sum(1 for item_id in ids if item_id.encode() not in done)
        if waiting and oldest_at is None:
            with contextlib.suppress(FileNotFoundError):  # destroyed meanwhile: its items were done
                oldest_at = datetime.fromtimestamp(segment.stat().st_mtime, UTC)
        items += waiting
    return Backlog(items, oldest_at)


def _read_segment(segment: Path, key: Callable[[], AESGCM], start: int = 0) -> Iterator[tuple[SpoolItem, int]]:
    """The items framed in a segment from offset ``start``, each with the offset after it; their
    sealed metadata is opened with the segment's key (``key`` is asked for it only when a frame
    has some: frames of the previous format kept it in clear). An item whose metadata cannot be
    opened is still yielded, marked damaged, so it is kept for review rather than stopping the
    items behind it."""
    files = segment.parent / "files"
    for decoded, header, payload_offset, end in _frames(segment, start):
        item_id = str(decoded["id"])
        file = files / decoded["file"] if decoded.get("file") else None
        damaged = ""
        try:
            if "sealed_meta" in decoded:
                sealed = base64.b64decode(decoded["sealed_meta"], validate=True)
                encoded = key().decrypt(sealed[:_NONCE], sealed[_NONCE:], _AD + b"meta\0" + item_id.encode())
                meta = SpoolMeta.from_json(json.loads(encoded))
            else:
                meta = SpoolMeta.from_json(decoded["meta"])
        except (InvalidTag, ValueError, KeyError, SpoolItemDamaged) as error:
            # Nothing of it is trusted: no custodian, received when found (the worker's _damaged).
            # A stable phrase: the reason is kept in clear, and what failed to parse may be a name.
            detail = "it fails authentication" if isinstance(error, InvalidTag) else "not spool item metadata"
            damaged = f"spool item {item_id} is damaged (its metadata is unreadable: {detail})"
            meta = SpoolMeta(f"damaged spool item {item_id}", "folder" if file else "smtp", datetime.now(UTC))
        yield SpoolItem(item_id, meta, segment, payload_offset, end - payload_offset, file, header, damaged), end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
