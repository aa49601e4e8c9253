"""Refuse key material and configuration that someone else could change or read (StrictModes).

Whoever can write the officer's ``.pub`` reads every future capture; whoever can
write the config can point it at their own key; whoever can read the daemon's
secrets can test guesses against the blind index. So, like OpenSSH's
``StrictModes``, the daemon and the CLI check before they trust a file:

- a *secret* (the daemon's secrets, an officer identity) must not be readable or
  writable by group or others;
- a *trusted* file (the config, a public key it names, the SMTP auth file) must not
  be writable by group or others;
- either must be owned by root or by the user running twentyday;
- every folder on the way to it, up to ``/``, must be owned by root or that user
  and not writable by group or others, unless it is sticky and root-owned (``/tmp``:
  nobody can replace an entry they do not own there).

A refusal is one line naming the file and the command that fixes it. Modes, not
``access(2)``: root can read anything, yet a 0666 file is as unsafe under root.
Nothing is checked where POSIX modes do not exist.

docs/ARCHITECTURE.md, "Security model".
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass, field
from pathlib import Path

from twentyday.errors import TwentydayError

_GROUP_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH
_GROUP_OTHER_ANY = stat.S_IRWXG | stat.S_IRWXO


@dataclass
class _Findings:
    reasons: list[str] = field(default_factory=list)
    chmod: dict[str, list[str]] = field(default_factory=dict)  # mode change -> paths
    chown: list[str] = field(default_factory=list)

    def add_mode(self, reason: str, change: str, path: Path) -> None:
        self.reasons.append(reason)
        self.chmod.setdefault(change, []).append(str(path))

    def add_owner(self, reason: str, path: Path) -> None:
        self.reasons.append(reason)
        self.chown.append(str(path))

    def commands(self) -> str:
        steps = [f"chmod {change} {' '.join(paths)}" for change, paths in self.chmod.items()]
        if self.chown:
            steps.insert(0, f"chown {_user_name(os.geteuid())} {' '.join(self.chown)}")
        return " && ".join(steps)


def require_secret(path: Path, what: str, error: type[TwentydayError]) -> None:
    """Refuse ``path`` if group or others may read or write it, or change the folders above it."""
    _require(path, what, error, secret=True, also_owner=None)


def require_trusted(path: Path, what: str, error: type[TwentydayError], *, also_owner: int | None = None) -> None:
    """Refuse ``path`` if group or others may write it or change the folders above it.

    ``also_owner``: one more user who may own the file and its folders, for a user who reads
    what another writes (the verify user reads the daemon's archive).
    """
    _require(path, what, error, secret=False, also_owner=also_owner)


def _require(path: Path, what: str, error: type[TwentydayError], *, secret: bool, also_owner: int | None) -> None:
    if os.name != "posix":
        return
    try:
        info = path.stat()
    except OSError:
        return  # a missing or unreadable file is the caller's error to report, in its own words
    me = os.geteuid()
    owners = {0, me} if also_owner is None else {0, me, also_owner}
    findings = _Findings()
    mode = stat.S_IMODE(info.st_mode)
    if secret and mode & _GROUP_OTHER_ANY:
        findings.add_mode(f"group or others may read or write it (mode {mode:04o})", "go-rwx", path)
    elif mode & _GROUP_OTHER_WRITE:
        findings.add_mode(f"group or others may write it (mode {mode:04o})", "go-w", path)
    if info.st_uid not in owners:
        findings.add_owner(f"owned by {_user_name(info.st_uid)}, not root or {_user_name(me)}", path)
    for folder in _folders(path):
        try:
            folder_info = folder.stat()
        except OSError:
            continue
        folder_mode = stat.S_IMODE(folder_info.st_mode)
        sticky_root = bool(folder_mode & stat.S_ISVTX) and folder_info.st_uid == 0
        if folder_mode & _GROUP_OTHER_WRITE and not sticky_root:
            findings.add_mode(f"its folder {folder} is writable by group or others (mode {folder_mode:04o})",
                              "go-w", folder)
        if folder_info.st_uid not in owners:
            findings.add_owner(f"its folder {folder} is owned by {_user_name(folder_info.st_uid)}", folder)
    if findings.reasons:
        raise error(f"{path}: unsafe permissions on {what}: {'; '.join(findings.reasons)}; "
                    f"run: {findings.commands()}")


def _folders(path: Path) -> list[Path]:
    """Every folder from ``/`` down to the file: where it really is, and where it was named.

    A symbolic link on the named way is judged by the folder that holds it (a link's own
    mode means nothing); its target is on the real way.
    """
    named = Path(os.path.abspath(path))
    found: list[Path] = []
    for folder in (*reversed(path.resolve().parents), *reversed(named.parents)):
        if folder not in found and not folder.is_symlink():
            found.append(folder)
    return found


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)
