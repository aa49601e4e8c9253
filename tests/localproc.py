"""What tests/pg.py and tests/rgw.py share to run a local service's processes, in a folder, by pid.

A service's state file (its pids, ports, paths) lives in its folder and is replaced whole, so another
process (``python -m tests.pg stop``) always reads a complete one. A pid is told from the pid the kernel
may later give another process by its start time (/proc/PID/stat), so a stop never signals a stranger.
Stdlib only: scripts/local-pg and scripts/local-s3 run the services with the system's Python.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def check_new_folder(folder: Path, name: str, service: str, error: type[Exception]) -> None:
    """Refuse a folder a service was started in (its state file ``name``), or one holding anything else."""
    if (folder / name).exists():
        raise error(f"{folder}: a {service} was started here already; stop it and start one in a new folder")
    if folder.exists() and any(folder.iterdir()):
        raise error(f"{folder} is not empty; a {service} starts in a new or empty folder")


def save_state(folder: Path, name: str, state: dict[str, object]) -> None:
    """Write ``folder/name`` as JSON, whole or not at all (a temporary file renamed over it)."""
    tmp = folder / f".{name}.tmp"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    tmp.replace(folder / name)


def load_state(folder: Path, name: str) -> Any:
    """``folder/name`` as saved; OSError when there is none, ValueError when it is not JSON."""
    return json.loads((folder / name).read_text())


def started_state(folder: Path, name: str, service: str, error: type[Exception]) -> Any:
    """``folder/name`` as saved, or ``error`` saying no ``service`` was started there."""
    try:
        return load_state(folder, name)
    except (OSError, ValueError) as exc:
        raise error(f"{folder}: no {service} was started here ({name}: {exc})") from None


def stop_with_this_process(stop: Callable[[Path], None], folder: Path) -> None:
    """At this process's normal exit, ``stop(folder)`` (quietly: an exit has no one to tell)."""
    atexit.register(stop_quietly, stop, folder)


def stop_quietly(stop: Callable[[Path], None], folder: Path) -> None:
    with contextlib.suppress(Exception):
        stop(folder)


def die_with_parent() -> None:
    """In the child (a Popen's preexec_fn): SIGKILL when the process that started it dies, even by
    SIGKILL (Linux prctl). A change of user clears it, and preexec_fn runs after subprocess's setuid."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def cmdline(pid: int) -> list[str]:
    """The process's argv ([] once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name (which may hold spaces and parentheses): state first."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()


def started(pid: int) -> str | None:
    """The process's start time in clock ticks (with its pid, who it is); None once it is gone or a zombie."""
    try:
        fields = _stat(pid)
    except OSError:
        return None
    if fields[0] in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)  # ours to reap when this process started it
        return None
    return fields[19]


def group(pid: int) -> int | None:
    """The process's group id; None once it is gone."""
    try:
        return int(_stat(pid)[2])
    except (OSError, ValueError, IndexError):
        return None


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(_stat(int(entry.name))[1]) == pid:
                found.append(int(entry.name))
    return found


def send(pid: int, signum: int) -> None:
    """Signal ``pid``, if it is still there to be signalled."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def wait_gone(pid: int, started_at: str | None, timeout: float) -> bool:
    """Wait until the process that had ``pid`` and ``started_at`` has exited; False if it outlives ``timeout``.
    (Its memory, and so its command line, goes before its threads do: the command line alone would say
    gone too early.)"""
    deadline = time.monotonic() + timeout
    while started_at is not None and started(pid) == started_at:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def command(argv: list[str], *, usage: str, service: str, error: type[Exception],
            start: Callable[[Path], list[str]], stop: Callable[[Path], str]) -> int:
    """``python -m tests.<service> start FOLDER | stop FOLDER``: ``start`` leaves the service running and
    returns the lines that tell how to reach it, ``stop`` returns what it stopped. Exit 2 and ``usage``
    on a wrong use, 1 and a one-line ``error`` on a failure."""
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(usage, file=sys.stderr)
        return 2
    folder = Path(argv[1])
    try:
        if argv[0] == "stop":
            print(stop(folder))
            return 0
        began = time.monotonic()
        lines = start(folder)
    except error as exc:
        print(f"{service}: {exc}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    print(f"started in {time.monotonic() - began:.1f} s")
    return 0
