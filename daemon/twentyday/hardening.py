"""Keep the process's memory to itself: no core file, no dump, no same-user ``ptrace``.

``serve`` holds the daemon's secrets and each capture's data key and plaintext while it
is sealed; ``show`` holds an officer's decrypted identity. A core file (a crash, or
``gcore``) would write them to disk in clear, and any process of the same user could read
them through ``/proc/<pid>/mem``. So such processes set ``RLIMIT_CORE`` to 0 (inherited
by the processes they spawn) and, on Linux, ``PR_SET_DUMPABLE`` to 0, which also makes
``/proc/<pid>/`` root's and refuses ``ptrace`` to anyone without ``CAP_SYS_PTRACE``. The
dumpable flag is reset by ``exec``, so every process that holds such material (the
pipeline worker and its read-ahead helper) calls :func:`forbid_core_dumps` itself.

docs/ARCHITECTURE.md, "Security model".
"""

from __future__ import annotations

import ctypes
import logging
import resource
import sys

log = logging.getLogger(__name__)

PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


def forbid_core_dumps() -> None:
    """No core file (soft and hard limit 0) and, on Linux, not dumpable. Cannot be undone."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError) as error:  # a sandbox that forbids it: the unit's LimitCORE=0 still holds
        log.warning("could not set the core file size limit to 0: %s", error)
    if not sys.platform.startswith("linux"):
        log.debug("PR_SET_DUMPABLE does not exist on %s; only the core file limit applies", sys.platform)
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0
    except (OSError, AttributeError):
        failed = True
    if failed:
        log.warning("could not make the process non-dumpable (prctl PR_SET_DUMPABLE)")


def is_dumpable() -> bool | None:
    """The process's dumpable flag on Linux; None where it cannot be asked."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        value = int(ctypes.CDLL(None, use_errno=True).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))
    except (OSError, AttributeError):
        return None
    return None if value < 0 else value != 0
