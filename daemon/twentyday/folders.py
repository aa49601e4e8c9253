"""Folders dropped in the watched inbox: a signal-export chat, a Telegram Desktop export.

Some apps export a folder (the chat file beside its media), and employees drop
it as it is. Once its tree has stayed the same for the settle time, the watcher
packs it into one zip that becomes the capture, so every parser that reads a
zipped export reads it: entries stored (not compressed), in name order, named
``<folder>/<path>``, dated by modification time in UTC, so the same folder packs
to the same bytes (and a second drop of it is a duplicate, not a new capture).

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
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .errors import ParseError

MAX_ENTRIES = 100_000
MAX_DEPTH = 32
_COPY_BYTES = 1024 * 1024
#: Zip can date entries from 1980 to 2107 only; times outside are clamped (UTC).
_ZIP_FIRST = calendar.timegm((1980, 1, 1, 0, 0, 0))
_ZIP_LAST = calendar.timegm((2107, 12, 31, 23, 59, 58))


@dataclass
class Tree:
    """What a survey of a folder found: its regular files, what it will not open, a signature."""

    files: list[tuple[str, int]] = field(default_factory=list)  # (relative posix path, size)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative posix path, kind)
    signature: str = ""  # changes whenever a name, size, type or modification time changes


def survey(folder: Path) -> Tree:
    """Walk ``folder`` without following links. Raises ParseError past the bounds."""
    if not _encodable(folder.name):
        raise ParseError(f"{folder.name!r}: the folder's name is not valid UTF-8")
    tree = Tree()
    digest = hashlib.sha256()
    pending: list[tuple[str, int]] = [("", 0)]
    entries = 0
    while pending:
        relative, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"{folder.name}: folders nested more than {MAX_DEPTH} deep")
        with os.scandir(folder / relative if relative else folder) as listing:
            found = sorted(listing, key=lambda entry: entry.name)
        for entry in found:
            entries += 1
            if entries > MAX_ENTRIES:
                raise ParseError(f"{folder.name}: more than {MAX_ENTRIES} entries")
            path = f"{relative}/{entry.name}" if relative else entry.name
            info = entry.stat(follow_symlinks=False)
            digest.update(f"{path}\0{info.st_mode}\0{info.st_size}\0{info.st_mtime_ns}\n".encode("utf-8",
                                                                                              "surrogateescape"))
            if not _encodable(entry.name):  # a zip entry name must be text
                tree.skipped.append((path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
                                     "name not valid UTF-8"))
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


def pack(folder: Path, tree: Tree, out: BinaryIO) -> None:
    """Write the surveyed regular files of ``folder`` as a zip to ``out``.

    A file that is no longer a regular file when opened (swapped after the survey) is
    skipped and added to ``tree.skipped``.
    """
    root = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for path, _ in tree.files:
                fd = _open_beneath(root, path)
                if fd is None:
                    tree.skipped.append((path, "not a regular file when read"))
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


def _open_beneath(root: int, path: str) -> int | None:
    """Open ``path`` under the directory ``root``, refusing a link at every component."""
    parts = path.split("/")
    directory = root
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=directory)
            if directory != root:
                os.close(directory)
            directory = child
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except OSError:
        return None
    finally:
        if directory != root:
            os.close(directory)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
