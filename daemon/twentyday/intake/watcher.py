"""The watched export folder: ``<folder.path>/<custodian-id>/<file>``.

watchdog reports that something changed; a file is taken only once it is
complete and stable (same size and modification time for ``settle_seconds``,
so a copy over a slow network share is not read half-written) and, when the
daemon saw it being written, once its writer has closed it: a writer that
pauses for longer than the settle time is still writing (a file still open
after :data:`OPEN_WRITER_GRACE_SECONDS` of stillness is taken anyway, in case
the close was missed). Taking it means moving it into the spool (durable) and
waking the pipeline; the inbox is left empty. Files already there when the
daemon starts are taken too. A file the daemon cannot read (another user's,
mode 0600) is recorded once and left in the inbox for an administrator; it is
never moved into the spool, where it would stop the pipeline.

The inbox is writable by employees and so is untrusted: a symlink, FIFO,
device or socket is never opened; it is removed and recorded (sealed, with an
``ingest_failed`` alert) so the attempt is visible. Names in the inbox are the
employees' too, and may say what a file holds: a refusal's record keeps them in
its sealed bytes, while its reason in clear (the index, the alert, the log) is a
code and counts (``not_regular_files: 3 entries skipped: 2 symbolic links, 1
FIFO``); the daemon's log names an entry by its inode, never by its name. Names that look like
downloads in progress (``.part``, ``.crdownload``, ``.tmp``, dot-files) wait.

A folder dropped in a custodian folder (a signal-export chat, a Telegram Desktop
export) is taken whole once its tree is stable: packed into one zip in the spool
(:mod:`folders`), then removed. What in it is not a regular file is never opened;
it is named in a record of its own, as above. A folder past the bounds (entries,
depth) is recorded once and left where it is.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from twentyday.errors import IntakeError, ParseError
from twentyday.intake import folders, utc_now
from twentyday.spool import Spool, SpoolMeta, file_kind

log = logging.getLogger(__name__)
IN_PROGRESS_SUFFIXES = (".part", ".crdownload", ".tmp", ".partial", ".download")
#: A file seen written but never seen closed is taken after this long unchanged: its close was
#: missed, or what was seen was a change of its attributes (watchdog reports chmod and touch as
#: modifications, and no close follows them).
OPEN_WRITER_GRACE_SECONDS = 300.0


def shown_name(path: Path) -> str:
    """The file's name as text that always encodes: bytes that are not UTF-8 as ``\\xff``."""
    return os.fsencode(path.name).decode("utf-8", "backslashreplace")


#: The name a refusal's record is spooled under: what was refused is named in its sealed bytes.
REFUSAL_NAME = "refusal.txt"
#: Plurals of the kinds of entries a folder's survey skips (:func:`spool.file_kind`, :mod:`folders`).
_PLURALS = {"symbolic link": "symbolic links", "FIFO": "FIFOs", "device": "devices", "socket": "sockets",
            "folder": "folders", folders.UNDECODABLE: "names not valid UTF-8",
            folders.SWAPPED: "not regular files when read"}


def entry_label(path: Path) -> str:
    """An inbox entry as the log names it: by its inode (``find -inum``), never by its name."""
    try:
        return f"inbox entry (inode {path.lstat().st_ino})"
    except OSError:
        return "an inbox entry (gone)"


def skipped_summary(skipped: list[tuple[str, str]]) -> str:
    """``3 entries skipped: 2 symbolic links, 1 FIFO``: counts and kinds, no names."""
    kinds: dict[str, int] = {}
    for _, kind in skipped:
        kinds[kind] = kinds.get(kind, 0) + 1
    counted = ", ".join(f"{n} {_PLURALS.get(kind, kind) if n > 1 else kind}" for kind, n in sorted(kinds.items()))
    return f"{len(skipped)} {'entries' if len(skipped) > 1 else 'entry'} skipped: {counted}"


def _why(error: BaseException, path: Path) -> str:
    """An error's text for the log, without the entry's name (an OSError's filename, a spool error's item)."""
    if isinstance(error, OSError) and not isinstance(error, IntakeError):
        return error.strerror or type(error).__name__
    return str(error).replace(shown_name(path), "…").replace(str(path), "…")


@dataclass
class _Seen:
    state: object  # (size, mtime) of a file, the survey signature of a folder
    since: float


class InboxWatcher:
    def __init__(self, inbox: Path, spool: Spool, on_item: Callable[[], None], *,
                 settle_seconds: float = 2.0, limits: folders.FolderLimits = folders.DEFAULT_LIMITS,
                 clock: Callable[[], datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``clock`` gives the receive time of what is taken (it decides on time or late);
        ``monotonic`` times the settling and the rescans."""
        self.inbox = inbox
        self.spool = spool
        self.on_item = on_item
        self.settle_seconds = settle_seconds
        self.limits = limits
        self._clock = clock
        self._monotonic = monotonic
        self._candidates: dict[Path, _Seen | None] = {}
        #: Folders refused as too large, and files the daemon cannot read, by (inode, mtime):
        #: recorded once, not walked or tried again while unchanged.
        self._refused: dict[Path, tuple[int, int]] = {}
        #: Files seen being written and not yet closed by their writer.
        self._writing: set[Path] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._thread: threading.Thread | None = None
        self.taken = 0

    # -- discovery

    def note(self, path: Path, writing: bool | None = None) -> None:
        """Something happened at ``path``: look at it again until it settles.

        ``writing``: a writer changed the file (True) or closed it (False). A change deep
        inside a dropped folder is a change of that folder."""
        try:
            parts = path.relative_to(self.inbox).parts
        except ValueError:
            return
        if writing is not None:
            with self._lock:
                if writing:
                    self._writing.add(path)
                else:
                    self._writing.discard(path)
        if len(parts) > 2:
            path = self.inbox.joinpath(*parts[:2])
        if self._wanted(path):
            with self._lock:
                self._candidates.setdefault(path, None)

    def scan(self) -> None:
        """Everything now in the inbox (at start-up, and as a safety net for missed events).

        A folder that cannot be listed is logged and skipped: it must not keep the daemon
        (and every other custodian's folder, and the mail address) from running."""
        for entry in _listing(self.inbox):
            if not entry.is_dir() or entry.is_symlink():
                self.note(entry)  # a file at the top: no custodian folder
                continue
            for inner in _listing(entry):  # a custodian folder: its files and dropped folders
                self.note(inner)

    def _wanted(self, path: Path) -> bool:
        try:
            relative = path.relative_to(self.inbox)
        except ValueError:
            return False
        name = relative.name
        return (0 < len(relative.parts) <= 2 and not name.startswith(".")
                and not name.lower().endswith(IN_PROGRESS_SUFFIXES))

    # -- settling and taking

    def check(self) -> int:
        """Take every candidate that is complete and stable; returns how many were taken."""
        now = self._monotonic()
        with self._lock:
            paths = list(self._candidates)
        taken = 0
        for path in paths:
            try:
                info = path.lstat()
            except FileNotFoundError:
                self._forget(path)
                continue
            if self._refused.get(path) == (info.st_ino, info.st_mtime_ns):
                self._forget(path)  # refused already, unchanged: not walked or tried again
                continue
            tree = None
            if stat.S_ISDIR(info.st_mode):
                if len(path.relative_to(self.inbox).parts) < 2:
                    self._forget(path)  # a custodian folder itself
                    continue
                try:
                    tree = folders.survey(path, self.limits)
                except ParseError as error:
                    taken += self._refuse_folder(path, info, error)
                    continue
                except OSError as error:  # e.g. still being moved in, or unreadable: look again later
                    log.warning("cannot read folder %s yet: %s", entry_label(path), _why(error, path))
                    self._forget(path)
                    continue
                state: object = tree.signature
            elif stat.S_ISREG(info.st_mode):
                state = (info.st_size, info.st_mtime_ns)
            else:
                self._refuse(path, info)
                taken += 1
                continue
            seen = self._candidates.get(path)
            if seen is None or seen.state != state:
                with self._lock:
                    self._candidates[path] = _Seen(state, now)
                continue
            if now - seen.since >= self.settle_seconds and not self._still_open(path, now - seen.since):
                taken += self._take(path, info) if tree is None else self._take_folder(path, tree)
        if taken:
            self.on_item()
        return taken

    def _still_open(self, path: Path, unchanged_for: float) -> bool:
        """Is a file (or one in a dropped folder) still open for writing by whoever wrote it?"""
        with self._lock:
            open_files = [p for p in self._writing if p == path or path in p.parents]
        if not open_files:
            return False
        if unchanged_for < OPEN_WRITER_GRACE_SECONDS:
            return True
        log.warning("%s: unchanged for %.0f s but never seen closed; taking it", entry_label(path), unchanged_for)
        with self._lock:
            self._writing.difference_update(open_files)
        return False

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._candidates.pop(path, None)

    def _meta(self, path: Path, name: str | None = None, refused: str = "") -> SpoolMeta:
        # ``name`` is the file's own: the parsers read it (a WhatsApp chat's name), and it is sealed
        # with the capture; the index keeps a name twentyday made (pipeline ``Item.indexed``).
        """What is recorded with an item taken from (or refused at) ``path``, received now."""
        relative = path.relative_to(self.inbox)
        custodian = relative.parts[0] if len(relative.parts) == 2 else None
        return SpoolMeta(name if name is not None else shown_name(path), "folder", self._clock(), custodian,
                         refused=refused)

    def _take(self, path: Path, info: os.stat_result) -> int:
        problem = _unreadable(path)
        if problem:
            # Moved into the spool, it would stop the pipeline at an item it cannot read.
            if self._record_refusal(path, f"unreadable_by_daemon: {problem}",
                                    f"refused: {shown_name(path)} cannot be read by the daemon "
                                    f"({problem}); it was not taken and stays in the inbox"):
                self._refused[path] = (info.st_ino, info.st_mtime_ns)
                self._forget(path)
                return 1
            return 0
        try:
            self.spool.put_file(path, self._meta(path))
        except IntakeError as error:
            log.error("cannot take %s yet: %s", entry_label(path), _why(error, path))
            return 0
        self._forget(path)
        self.taken += 1
        return 1

    def _take_folder(self, path: Path, tree: folders.Tree) -> int:
        meta = self._meta(path, f"{shown_name(path)}.zip")
        try:
            self.spool.put_written_file(lambda out: folders.pack(path, tree, out, self.limits), meta)
        except (IntakeError, OSError) as error:
            log.error("cannot take folder %s yet: %s", entry_label(path), _why(error, path))
            return 0
        if tree.skipped:
            names = ", ".join(f"{name} ({kind})" for name, kind in tree.skipped[:20])
            more = f" and {len(tree.skipped) - 20} more" if len(tree.skipped) > 20 else ""
            self._record_refusal(path, f"not_regular_files: {skipped_summary(tree.skipped)}",
                                 f"refused: in folder {shown_name(path)}, {names}{more}: not regular files; "
                                 "they were not opened (the folder's files were taken)")
        self._remove_folder(path, tree)
        self.taken += 1
        return 1

    def _refuse_folder(self, path: Path, info: os.stat_result, error: ParseError) -> int:
        """Record a folder too large to take, once; it stays in the inbox for a person to deal with."""
        if not self._record_refusal(path, f"folder_refused: {error.code}",
                                    f"refused: folder {shown_name(path)}: {error}; it was not taken "
                                    "and stays in the inbox (zip it, or split it)"):
            return 0
        self._refused[path] = (info.st_ino, info.st_mtime_ns)
        self._forget(path)
        return 1

    def _record_refusal(self, path: Path, code: str, text: str) -> bool:
        """Spool a record of a refusal: ``text`` (which names what was refused) as its sealed bytes,
        ``code`` (codes and counts, no names) as its reason in clear."""
        label = entry_label(path)
        try:
            self.spool.put_bytes(text.encode(), self._meta(path, REFUSAL_NAME, refused=code))
        except IntakeError as error:
            log.error("cannot record refused %s: %s", label, _why(error, path))
            return False
        log.warning("refused %s: %s", label, code)
        return True

    def _remove_folder(self, path: Path, tree: folders.Tree) -> None:
        """Remove what was packed; what changed or arrived since stays, to be taken as a drop of its own."""
        if folders.remove_surveyed(path, tree):
            self._forget(path)
            return
        log.warning("%s: taken, but what changed in it since stays in the inbox, to be taken once it settles",
                    entry_label(path))
        with self._lock:
            self._candidates[path] = None  # looked at again from the start

    def _refuse(self, path: Path, info: os.stat_result) -> None:
        """Never open it: record what it was, then remove it from the inbox."""
        kind = file_kind(info.st_mode)
        code = f"not_regular_file: a {kind}"
        text = f"refused: {shown_name(path)} in the inbox is a {kind}, not a regular file; it was not opened"
        label = entry_label(path)
        try:
            self.spool.put_bytes(text.encode(), self._meta(path, REFUSAL_NAME, refused=code))
            path.unlink()
        except (IntakeError, OSError) as error:
            log.error("cannot record refused %s: %s", label, _why(error, path))
            return
        self._forget(path)
        log.warning("refused %s: %s", label, code)

    # -- as threads of the daemon

    def start(self, poll_seconds: float = 0.5) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        handler = _Handler(self)
        observer = Observer()
        observer.schedule(handler, str(self.inbox), recursive=True)
        observer.start()
        self._observer = observer
        self.scan()

        def loop() -> None:
            rescan_at = self._monotonic() + 60
            while not self._stop.wait(poll_seconds):
                try:
                    self.check()
                    if self._monotonic() >= rescan_at:
                        self.scan()
                        rescan_at = self._monotonic() + 60
                except Exception:  # a bug must not end the watching: log it and look again
                    log.exception("inbox watcher failed; retrying")

        self._thread = threading.Thread(target=loop, name="twentyday-inbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(10)
        if self._thread is not None:
            self._thread.join(10)


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: InboxWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # Only writes count: the daemon's own reads open and close files too. A file moved in
        # (alone, or inside a folder: watchdog then reports it "created") is written already;
        # a file just created empty is about to be written.
        writing = None
        if not event.is_directory:
            if isinstance(event, FileModifiedEvent):
                writing = True
            elif isinstance(event, FileCreatedEvent):
                writing = _empty(os.fsdecode(event.src_path)) or None
            elif isinstance(event, (FileClosedEvent, FileDeletedEvent, FileMovedEvent)):
                writing = False  # closed, or gone from this name
        for attribute in ("src_path", "dest_path"):
            value = getattr(event, attribute, "")
            if value:
                self.watcher.note(Path(os.fsdecode(value)), writing if attribute == "src_path" else None)


def _empty(path: str) -> bool:
    """An empty regular file: about to be written. (A FIFO or socket is empty too, and never written:
    counted as being written, it would hold its folder back for the whole grace period.)"""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_size == 0


def _listing(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as error:
        log.error("cannot list %s: %s", entry_label(folder), error.strerror)
        return []


def _unreadable(path: Path) -> str:
    """Why the daemon cannot open ``path`` for reading ("" if it can). Never follows a link
    and never waits on a FIFO: what is there now is checked, as it will be moved."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        return error.strerror or type(error).__name__
    os.close(fd)
    return ""
