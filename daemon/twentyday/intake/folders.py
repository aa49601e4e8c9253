"""Folders dropped in the watched inbox: a signal-export chat, a Telegram Desktop export.

Some apps export a folder (the chat file beside its media), and employees drop
it as it is. Once its tree has stayed the same for the settle time, the watcher
packs it into one zip that becomes the capture, so every parser that reads a
zipped export reads it: entries stored (not compressed), in name order, named
``<folder>/<path>``, dated by modification time in UTC, so the same folder packs
to the same bytes (and a second drop of it is a duplicate, not a new capture).
A folder that changes while it is packed is not taken yet, and once taken only
what was packed is removed (:func:`remove_surveyed`): a late file is never lost.

The folder is the employee's and so untrusted. Only regular files are read, and
each is opened one path component at a time without following links, so a link
swapped in after the survey still cannot lead outside the folder. Anything else
(a symbolic link, FIFO, device, socket) is never opened: it is named in
:attr:`Tree.skipped` for the caller to record. Entries and depth are bounded.
"""

from __future__ import annotations

import calendar
import hashlib
import os
import shutil
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from twentyday.errors import IntakeError, ParseError
from twentyday.spool import file_kind

_COPY_BYTES = 1024 * 1024
#: Kinds of skipped entries besides :func:`spool.file_kind`'s.
UNDECODABLE = "name not valid UTF-8"
SWAPPED = "not a regular file when read"
#: Zip can date entries from 1980 to 2107 only; times outside are clamped (UTC).
_ZIP_FIRST = calendar.timegm((1980, 1, 1, 0, 0, 0))
_ZIP_LAST = calendar.timegm((2107, 12, 31, 23, 59, 58))


@dataclass(frozen=True)
class FolderLimits:
    """How large a dropped folder may be: past these it is refused, not walked further."""

    max_entries: int = 100_000
    max_depth: int = 32


DEFAULT_LIMITS = FolderLimits()


@dataclass(frozen=True)
class Entry:
    """One entry as the survey saw it: removing it after the packing needs it unchanged."""

    path: str  # relative posix path; bytes not valid UTF-8 as surrogate escapes
    mode: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int  # set by the kernel on any change: a file rewritten and re-dated still differs

    def unchanged(self, info: os.stat_result) -> bool:
        return ((stat.S_IFMT(info.st_mode), info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
                == (stat.S_IFMT(self.mode), self.inode, self.size, self.mtime_ns, self.ctime_ns))


@dataclass
class Tree:
    """What a survey of a folder found: its regular files, what it will not open, a signature."""

    files: list[tuple[str, int]] = field(default_factory=list)  # (relative posix path, size)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative posix path, kind)
    signature: str = ""  # changes whenever a name, size, type or modification time changes
    entries: list[Entry] = field(default_factory=list)  # everything surveyed, for remove_surveyed()


def survey(folder: Path, limits: FolderLimits = DEFAULT_LIMITS) -> Tree:
    """Walk ``folder`` without following links. Raises ParseError past ``limits``."""
    if not _encodable(folder.name):
        raise ParseError(f"{folder.name!r}: the folder's name is not valid UTF-8", code="name_not_utf8")
    tree = Tree()
    digest = hashlib.sha256()
    pending: list[tuple[str, int]] = [("", 0)]
    entries = 0
    while pending:
        relative, depth = pending.pop()
        if depth > limits.max_depth:
            raise ParseError(f"{folder.name}: folders nested more than {limits.max_depth} deep",
                             code="nested_too_deep")
        with os.scandir(folder / relative if relative else folder) as listing:
            found = sorted(listing, key=lambda entry: entry.name)
        for entry in found:
            entries += 1
            if entries > limits.max_entries:
                raise ParseError(f"{folder.name}: more than {limits.max_entries} entries", code="too_many_entries")
            path = f"{relative}/{entry.name}" if relative else entry.name
            info = entry.stat(follow_symlinks=False)
            tree.entries.append(Entry(path, info.st_mode, info.st_ino, info.st_size, info.st_mtime_ns,
                                      info.st_ctime_ns))
            digest.update(f"{path}\0{info.st_mode}\0{info.st_size}\0{info.st_mtime_ns}\n".encode("utf-8",
                                                                                              "surrogateescape"))
            if not _encodable(entry.name):  # a zip entry name must be text
                tree.skipped.append((path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                                     UNDECODABLE))
            elif stat.S_ISDIR(info.st_mode):
                pending.append((path, depth + 1))
            elif stat.S_ISREG(info.st_mode):
                tree.files.append((path, info.st_size))
            else:
                tree.skipped.append((path, file_kind(info.st_mode)))
    tree.files.sort()
    tree.signature = digest.hexdigest()
    return tree


def _encodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the name (surrogate escapes)
        return False
    return True




def pack(folder: Path, tree: Tree, out: BinaryIO, limits: FolderLimits = DEFAULT_LIMITS) -> None:
    """Write the surveyed regular files of ``folder`` as a zip to ``out`` (``limits``: the
    survey's, for the look after packing).

    A file that is no longer a regular file when opened (swapped after the survey) is
    skipped and added to ``tree.skipped``. Raises IntakeError if the folder changed while
    it was packed (the caller abandons the zip and packs it again once it has settled):
    the zip would miss the change, and the folder is removed once taken.
    """
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path, _ in tree.files:
                fd = _open_beneath(root, path)
                if fd is None:
                    tree.skipped.append((path, SWAPPED))
                    continue
                with os.fdopen(fd, "rb") as handle:
                    info = os.fstat(handle.fileno())
                    when = min(max(info.st_mtime, _ZIP_FIRST), _ZIP_LAST)
                    entry = zipfile.ZipInfo(f"{folder.name}/{path}", date_time=time.gmtime(when)[:6])
                    entry.external_attr = 0o100644 << 16
                    entry.file_size = info.st_size
                    with archive.open(entry, "w", force_zip64=info.st_size > zipfile.ZIP64_LIMIT) as target:
                        while piece := handle.read(_COPY_BYTES):
                            target.write(piece)
    finally:
        os.close(root)
    _check_unchanged(folder, tree, limits)


def _check_unchanged(folder: Path, tree: Tree, limits: FolderLimits) -> None:
    try:
        signature = survey(folder, limits).signature
    except ParseError:  # grown past the bounds meanwhile: the next survey refuses it
        signature = ""
    if signature != tree.signature:
        raise IntakeError(f"{folder.name}: changed while it was being packed; it is taken once it has "
                          "settled again")


def remove_surveyed(folder: Path, tree: Tree) -> bool:
    """Remove from the inbox what ``tree`` surveyed of ``folder``, then the folder, once taken;
    returns whether all of it went.

    Only entries still as surveyed go (a folder only once empty), so a file added or changed
    after the packing stays, with the folders that hold it, to be taken as a drop of its own:
    removing the whole tree would lose it. Links are removed, never followed; a folder whose
    name is not valid UTF-8 was never walked (and was recorded as refused): it goes whole.
    """
    try:
        root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return False
    removed = True
    try:
        # Deepest first: each folder is reached once what it held is gone.
        for entry in sorted(tree.entries, key=lambda entry: entry.path.count("/"), reverse=True):
            removed = _remove_entry(root, entry) and removed
    finally:
        os.close(root)
    try:
        os.rmdir(folder)
    except OSError:
        return False
    return removed


def _remove_entry(root: int, entry: Entry) -> bool:
    *parents, name = entry.path.split("/")
    try:
        directory = _open_directory(root, parents)
    except FileNotFoundError:
        return True  # gone with its folder already
    except OSError:
        return False  # e.g. a folder swapped for a link: not followed
    try:
        if stat.S_ISDIR(entry.mode) and not _encodable(name):
            shutil.rmtree(name, dir_fd=directory)
        elif stat.S_ISDIR(entry.mode):
            os.rmdir(name, dir_fd=directory)  # only if empty: what was added to it stays
        elif entry.unchanged(os.stat(name, dir_fd=directory, follow_symlinks=False)):
            os.unlink(name, dir_fd=directory)
        else:
            return False
    except FileNotFoundError:
        return True
    except OSError:
        return False
    finally:
        if directory != root:
            os.close(directory)
    return True


def _open_directory(root: int, parts: list[str]) -> int:
    """Open the folder ``parts`` under the directory ``root``, refusing a link at every component."""
    directory = root
    try:
        for part in parts:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            if directory != root:
                os.close(directory)
            directory = child
    except BaseException:
        if directory != root:
            os.close(directory)
        raise
    return directory


def _open_beneath(root: int, path: str) -> int | None:
    """Open ``path`` under the directory ``root``, refusing a link at every component."""
    *parents, name = path.split("/")
    try:
        directory = _open_directory(root, parents)
    except OSError:
        return None
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError:
        return None
    finally:
        if directory != root:
            os.close(directory)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
