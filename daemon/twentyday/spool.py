"""The spool: where an item becomes durable before anything else happens.

Sources put items here and acknowledge only when :meth:`Spool.put_bytes` /
:meth:`Spool.put_file` return; the pipeline takes them out after the store has
committed them. A crash anywhere resumes from the spool, and because ingest is
idempotent (same bytes → same capture), a replay creates no duplicates.

Layout under ``<data_dir>/spool/``::

    seg-00000001.log   append-only segments of framed items (group-committed)
    files/<item-id>    whole files moved in from the watched folder
    done.log           ids of items the store has committed

Group commit: writers append their frame under a lock and wait until an fsync
covers their offset; whoever finds no fsync in flight does one for everybody
waiting. Under concurrent load one fsync makes many items durable (one fsync'd
file per item caps at about 800 items/s on this disk).

Item bytes in segments are sealed with AES-256-GCM under a key derived from the
daemon's index key, so the spool holds no plaintext message content; files
moved in from the watched folder stay as the employee wrote them until they are
sealed into the archive and removed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import struct
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from twentyday.canonical import parse_iso
from twentyday.config import Config
from twentyday.crypto import secrets
from twentyday.errors import IntakeError, SpoolItemDamaged

log = logging.getLogger(__name__)

MAGIC = b"TDSP"
#: A file being written into ``files/`` by :meth:`Spool.put_written_file`, not yet an item.
PARTIAL_SUFFIX = ".partial"
SEGMENT_BYTES = 64 * 1024 * 1024
_COPY_BYTES = 1024 * 1024
_FRAME_HEAD = struct.Struct(">4sII")  # magic, header length, sealed payload length


@dataclass(frozen=True)
class SpoolItem:
    """One durable item: its metadata and either sealed bytes in a segment or a moved file."""

    id: str
    meta: SpoolMeta
    segment: Path
    payload_offset: int
    payload_length: int
    file: Path | None = None


@dataclass(frozen=True)
class SyncTicket:
    """How far a segment must be on disk for an item written to it to be durable."""

    writer: _Writer
    offset: int


@dataclass
class _Writer:
    fd: int  # written with os.write: a failed write leaves nothing in a buffer to come out later
    path: Path
    written: int = 0  # the end of the last whole frame
    durable: int = 0
    syncing: bool = False
    #: Written to no more: full, or a failed write could not be cut off (a frame after a
    #: torn one would be unreadable, and its segment collected with it unread).
    retired: bool = False
    #: An fsync failed: what it covered may be lost even if a later fsync succeeds.
    failed: bool = False
    closed: bool = False

@dataclass(frozen=True)
class SpoolMeta:
    """What a source records with an item: names and times, never content.

    Kept in the clear in the frame header (and a file's sidecar) as the JSON object of
    :meth:`to_json`, so its keys and their order on disk are those of every spool written
    before this class existed; :meth:`from_json` reads those too.
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


class Spool:
    @classmethod
    def open(cls, config: Config, *, writer: bool = True) -> Spool:
        """The spool of ``config``'s archive, its key derived from the daemon's secrets."""
        return cls(config.data_dir / "spool", secrets.load(config.data_dir).derived("spool"), writer=writer)

    def __init__(self, root: Path, key: bytes, *, writer: bool = True) -> None:
        """``writer=False``: the pipeline's view (read, mark done, collect), e.g. in the worker process."""
        self.root = root
        self.files = root / "files"
        self._aead = AESGCM(key)
        self._lock = threading.Condition()
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.files.mkdir(exist_ok=True, mode=0o700)
            self._done = os.fdopen(os.open(root / "done.log", os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600), "a+b")
            self._done_cache: set[str] = set()
            self._done_read = 0
            #: (segment, offset): every item before it is done (see :meth:`pending`).
            self._watermark: tuple[Path, int] | None = None
            self._writer = self._open_segment() if writer else None
        except OSError as error:
            raise IntakeError(f"{root}: spool is not writable: {error.strerror}") from None

    def close(self) -> None:
        with self._lock:
            if self._writer is not None and not self._writer.closed:
                self._writer.closed = True
                os.close(self._writer.fd)
            self._done.close()

    # -- writing ---------------------------------------------------------------------

    def _segments(self) -> list[Path]:
        return sorted(self.root.glob("seg-*.log"))

    def _open_segment(self) -> _Writer:
        existing = self._segments()
        number = int(existing[-1].stem[4:]) + 1 if existing else 1
        path = self.root / f"seg-{number:08d}.log"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            _fsync_dir(self.root)
        except OSError:
            os.close(fd)
            raise
        return _Writer(fd, path)

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

        def frames() -> Iterator[tuple[bytes, ...]]:
            # Sealed one at a time, as written: the message is held once more, not once per item.
            for item_id, meta in zip(ids, metas, strict=True):
                header = json.dumps({"id": item_id, "meta": meta.to_json()}, sort_keys=True).encode()
                nonce = os.urandom(12)
                sealed = self._aead.encrypt(nonce, data, item_id.encode())
                yield _FRAME_HEAD.pack(MAGIC, len(header), len(nonce) + len(sealed)) + header + nonce, sealed

        return ids, self._write(frames())

    def put_file(self, path: Path, meta: SpoolMeta) -> str:
        """Move a complete file into the spool (same file system: a rename) and record it.

        Order matters for crashes: the metadata sidecar is durable before the rename, and
        the rename before the frame; a file found without a frame at start-up is framed
        again from its sidecar (:meth:`recover`). So once the file is in ``files/`` its
        sidecar stays, whatever fails: without it the file would be in no one's hands.
        """
        item_id = uuid.uuid4().hex
        target = self.files / item_id
        sidecar = self.files / f"{item_id}.meta"
        try:
            _write_durable(sidecar, meta.encoded())
            _move(path, target)
            _refuse_unless_regular(target, path, sidecar)
        except OSError as error:
            if not os.path.lexists(target):  # still in the inbox: the watcher takes it again
                sidecar.unlink(missing_ok=True)
            if isinstance(error, _NotRegularFile):
                raise IntakeError(f"{path} was replaced by a {error.kind} while being taken; "
                                  "it was not opened") from None
            raise IntakeError(f"{path}: cannot move into the spool: {error.strerror}") from None
        try:
            _fsync_dir(self.files)
        except OSError as error:
            # The move may not be on disk, so the item must not be framed yet: the file and
            # its sidecar wait for recover() at the next start (or the file is back in the inbox).
            raise IntakeError(f"{path}: moved into the spool, but the spool could not be synced "
                              f"({error.strerror}); it is recorded at the next start") from None
        try:
            _fsync_dir(path.parent)
        except OSError as error:
            # The item is durable in the spool: frame it. Should the removal from the inbox be
            # lost in a crash, the file is taken again and, being the same bytes, makes the
            # same capture (ingest is idempotent), not a second one.
            log.warning("%s: moved into the spool, but its folder could not be synced: %s", path, error.strerror)
        self._frame_file(item_id, meta)
        return item_id

    def put_written_file(self, write: Callable[[BinaryIO], None], meta: SpoolMeta) -> str:
        """Make a file that ``write`` produces an item (e.g. a dropped folder, packed).

        The same order as :meth:`put_file`: the sidecar is durable first, the file is
        written under a temporary name, fsynced and renamed, then framed; a crash before
        the rename leaves nothing that :meth:`recover` would frame.
        """
        item_id = uuid.uuid4().hex
        partial = self.files / f"{item_id}{PARTIAL_SUFFIX}"
        try:
            _write_durable(self.files / f"{item_id}.meta", meta.encoded())
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(partial, self.files / item_id)
            _fsync_dir(self.files)
        except BaseException as error:
            partial.unlink(missing_ok=True)
            (self.files / f"{item_id}.meta").unlink(missing_ok=True)
            if isinstance(error, OSError):
                raise IntakeError(f"{meta.name}: cannot write into the spool: {error.strerror}") from None
            raise
        self._frame_file(item_id, meta)
        return item_id

    def _frame_file(self, item_id: str, meta: SpoolMeta) -> None:
        header = json.dumps({"id": item_id, "meta": meta.to_json(), "file": item_id}, sort_keys=True).encode()
        self.sync(self._write(iter([(_FRAME_HEAD.pack(MAGIC, len(header), 0), header)])))

    def recover(self) -> int:
        """Frame files that were moved in but not recorded before a crash; returns how many."""
        framed = {item.file.name for item in self.pending() if item.file is not None}
        for partial in self.files.glob(f"*{PARTIAL_SUFFIX}"):
            partial.unlink()  # a packing cut short: its source is still in the inbox
        count = 0
        for sidecar in sorted(self.files.glob("*.meta")):
            item_id = sidecar.stem
            if item_id in framed:
                continue
            try:
                _refuse_unless_regular(self.files / item_id, None, sidecar)
            except FileNotFoundError:
                sidecar.unlink()  # crashed before the rename: the file is still in the inbox
                continue
            except _NotRegularFile as error:  # swapped in the inbox, and the crash came before the look
                log.warning("spool: %s was a %s, not a regular file; it was not opened", item_id, error.kind)
                continue
            try:
                meta = SpoolMeta.from_json(json.loads(sidecar.read_bytes()))
            except ValueError as error:  # framed, it would stop the pipeline at an item it cannot read
                log.warning("spool: %s has unreadable metadata (%s); it was not framed", item_id, error)
                continue
            self._frame_file(item_id, meta)
            count += 1
        return count


    def _write(self, frames: Iterator[tuple[bytes, ...]]) -> SyncTicket:
        """Append whole frames, all or none: a failure cuts the segment back to where it was."""
        with self._lock:
            writer = self._current_writer()
            end = writer.written
            try:
                for frame in frames:
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
        writer = self._writer
        if writer is None:
            raise IntakeError("this spool was opened read-only")
        if writer.retired:
            self._close_retired(writer)
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
                os.fsync(writer.fd)
                writer.durable = writer.written
        except OSError:
            writer.failed = True  # its waiting tickets fail (see _sync_locked): their senders retry
        finally:
            writer.closed = True
            os.close(writer.fd)

    def sync(self, ticket: SyncTicket) -> None:
        """Return once everything up to ``ticket`` is on disk (group commit: one fsync serves
        every writer waiting at the time). Raises IntakeError if the disk refuses."""
        with self._lock:
            self._sync_locked(ticket)

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
        advancing = True
        for segment in self._segments():
            if mark is not None and segment.name < mark[0].name:
                continue
            start = mark[1] if mark is not None and segment == mark[0] else 0
            for item, end in _read_segment(segment, start):
                if item.id in done:
                    if advancing:
                        self._watermark = (segment, end)
                    continue
                advancing = False
                yield item

    def read(self, item: SpoolItem) -> bytes:
        sealed = self.read_sealed(item)
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], item.id.encode())
        except InvalidTag:
            raise SpoolItemDamaged(f"spool item {item.id} is damaged (its sealed bytes fail authentication)"
                                   ) from None

    def read_sealed(self, item: SpoolItem) -> bytes:
        """The item's payload as it is on disk, still sealed."""
        with item.segment.open("rb") as handle:
            handle.seek(item.payload_offset)
            return handle.read(item.payload_length)

    def mark_done(self, *items: SpoolItem) -> None:
        """The store durably committed these items: forget them (one fsync for all)."""
        with self._lock:
            self._done.write(b"".join(item.id.encode() + b"\n" for item in items))
            self._done.flush()
            os.fsync(self._done.fileno())
        for item in items:
            if item.file is not None:
                item.file.unlink(missing_ok=True)
                item.file.with_name(f"{item.file.name}.meta").unlink(missing_ok=True)

    def collect(self) -> None:
        """Drop segments whose items are all done (the worker calls this when it is idle)."""
        segments = self._segments()
        if len(segments) < 2 and self._watermark is not None:
            # Only the segment being written, and it still holds items: nothing to drop
            # (and done.log may only be emptied once no segment holds any item).
            return
        done = self._done_ids()
        current = segments[-1] if segments else None  # the one being written, in any process
        live: set[str] = set()
        for segment in segments:
            items = [item for item, _ in _read_segment(segment)]
            if segment != current and all(i.id in done for i in items):
                segment.unlink(missing_ok=True)
            else:
                live.update(i.id for i in items)
        if not live:
            with self._lock:
                self._done.seek(0)
                self._done.truncate()
                self._done_cache, self._done_read, self._watermark = set(), 0, None


def _read_segment(segment: Path, start: int = 0) -> Iterator[tuple[SpoolItem, int]]:
    """The items framed in a segment from offset ``start``, each with the offset after it."""
    files = segment.parent / "files"
    with segment.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size  # a frame past this is torn, or still being written
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
            try:
                meta = SpoolMeta.from_json(decoded["meta"])
            except ValueError as error:
                raise SpoolItemDamaged(f"spool item {decoded['id']} has unreadable metadata: {error}") from None
            file = files / decoded["file"] if decoded.get("file") else None
            yield SpoolItem(decoded["id"], meta, segment, payload_offset, payload_length, file), end
            offset = end


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _NotRegularFile(OSError):
    """What was to be taken is a link, FIFO, device, socket or folder: it was not opened."""

    def __init__(self, kind: str) -> None:
        super().__init__(errno.EINVAL, f"not a regular file but a {kind}")
        self.kind = kind


def _refuse_unless_regular(target: Path, source: Path | None, sidecar: Path) -> None:
    """Check that what was moved to ``target`` is a regular file, without opening it.

    The watcher looked at the inbox entry before the move, so it can have been swapped in
    between: a link moved into the spool would be followed by the worker, a FIFO would
    block it. Such an entry is removed with its sidecar; a folder is the employee's, so it
    goes back to ``source`` (or stays, if that is unknown) for the watcher to take as one.
    """
    mode = os.lstat(target).st_mode
    if stat.S_ISREG(mode):
        return
    if not stat.S_ISDIR(mode):
        target.unlink()
    elif source is not None:
        os.rename(target, source)
    else:
        raise _NotRegularFile(file_kind(mode))  # kept with its sidecar: never framed, but not lost
    sidecar.unlink()
    raise _NotRegularFile(file_kind(mode))


def _move(source: Path, target: Path) -> None:
    """Rename; across file systems, copy durably and then remove the original."""
    try:
        os.rename(source, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        _copy_durably(source, target)
        try:
            source.unlink()
        except OSError:
            target.unlink()  # the original stays: take back the copy, so it is taken once, later
            raise


def _copy_durably(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, whole or not at all.

    The copy is written under ``<target>.partial`` (which :meth:`Spool.recover` removes:
    a crash mid-copy leaves the original in the inbox and no truncated item) and renamed
    once on disk. The source is opened without following a link or blocking on a FIFO,
    and only a regular file is read; the copy is 0600, like the rest of the spool.
    """
    partial = target.with_name(f"{target.name}{PARTIAL_SUFFIX}")
    try:
        source_fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW's answer for a symbolic link
            raise _NotRegularFile("symbolic link") from None
        raise
    try:
        mode = os.fstat(source_fd).st_mode
        if not stat.S_ISREG(mode):
            raise _NotRegularFile(file_kind(mode))
        out = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(out, "wb") as handle:
                while piece := os.read(source_fd, _COPY_BYTES):
                    _write_all(handle.fileno(), piece)
                os.fsync(handle.fileno())
            os.rename(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    finally:
        os.close(source_fd)
    _fsync_dir(target.parent)


def _write_durable(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
