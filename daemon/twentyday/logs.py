"""Logging set-up shared by the CLI and the pipeline process.

Logs go to stderr (journald under systemd). twentyday's own messages carry
ids, counts and reason codes, never message content or a name that came with
an item (an inbox entry is named by its inode). aiosmtpd logs every
command line at INFO and, at DEBUG, every DATA line — message content — so
its logger is held at WARNING whatever ``log_level`` says.

Every record's message is written on one line with its control characters
escaped (:class:`OneLineFormatter`): a file name, a zip member or an SMTP
argument is input, and a newline in it must not start a line of its own — the
daemon's log carries the signed ledger heads that ``verify --head`` reads.

**Under systemd** (stderr is the journal: ``$JOURNAL_STREAM`` names stderr's device and inode),
records go to journald in its native protocol instead (:class:`JournalHandler`, one datagram
each to ``/run/systemd/journal/socket``, the few lines of https://systemd.io/JOURNAL_NATIVE_PROTOCOL/
rather than a library), so each line carries fields a query can select on: ``PRIORITY`` (the
level), ``SYSLOG_IDENTIFIER=twentyday``, ``TWENTYDAY_LOGGER``, the code location, and the
twentyday fields a log call gives in ``extra=`` (:data:`JOURNAL_FIELDS`: an event word, a
capture id, a custodian id, a channel; never anything else a caller passes). ``MESSAGE`` is the
same escaped line as on stderr. Elsewhere, the stderr format above.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping

FORMAT = "%(levelname)s %(name)s: %(message)s"
#: Third-party loggers that would write message content or addresses at chatty levels.
QUIET = ("mail.log", "watchdog")

#: C0 and C1 controls, DEL, and the Unicode line and paragraph separators, as escapes.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_ESCAPES = str.maketrans({
    chr(code): _NAMED.get(chr(code), f"\\x{code:02x}")
    for code in (*range(0x00, 0x20), *range(0x7f, 0xa0))
} | {"\u2028": "\\u2028", "\u2029": "\\u2029"})


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a visible escape (``\\n``, ``\\x1b``)."""
    return text.translate(_ESCAPES)


class OneLineFormatter(logging.Formatter):
    """Escapes the formatted message (and so its arguments); a traceback keeps its lines, each indented
    so that none of them can pass for a log line of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: object) -> str:
        text = super().formatException(ei)  # type: ignore[arg-type]
        return "\n".join("    | " + escape_controls(line) for line in text.split("\n"))

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("    | " + escape_controls(line) for line in stack_info.split("\n"))


# -- the journal ---------------------------------------------------------------------------

#: journald's native socket: a fixed path (tests give :class:`JournalHandler` their own).
JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "twentyday"
#: The ``extra=`` names a log call may give, and the journal fields they become. Ids and words
#: twentyday makes, never an item's content or a secret; anything else in ``extra`` is not sent.
JOURNAL_FIELDS = {"event": "TWENTYDAY_EVENT", "capture_id": "TWENTYDAY_CAPTURE_ID",
                  "custodian": "TWENTYDAY_CUSTODIAN", "channel": "TWENTYDAY_CHANNEL"}
#: syslog priorities of the logging levels (sd-journal ``PRIORITY``).
_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6))


def journal_datagram(fields: Mapping[str, str]) -> bytes:
    """Fields in systemd's native journal protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/).

    ``KEY=value\\n`` per field; a value holding a newline is ``KEY\\n``, its length as a
    little-endian 64-bit integer, the value and ``\\n``. Keys are upper-case ASCII, digits
    and ``_``, not starting with ``_`` (ours are fixed names).
    """
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8")
        if b"\n" in data:
            out += key.encode("ascii") + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode("ascii") + b"=" + data + b"\n"
    return bytes(out)


def priority(level: int) -> int:
    return next((value for floor, value in _PRIORITY if level >= floor), 7)


class JournalHandler(logging.Handler):
    """Each record as one datagram of journal fields to ``path`` (journald's socket).

    A record that cannot be sent (no journal listening, a datagram too large for the socket) is
    written to stderr in the usual format instead: a log line is never dropped for the journal's sake."""

    def __init__(self, path: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._fallback = logging.StreamHandler()
        self._fallback.setFormatter(OneLineFormatter(FORMAT))
        self.setFormatter(OneLineFormatter("%(message)s"))

    def fields(self, record: logging.LogRecord) -> dict[str, str]:
        fields = {"MESSAGE": self.format(record), "PRIORITY": str(priority(record.levelno)),
                  "SYSLOG_IDENTIFIER": IDENTIFIER, "TWENTYDAY_LOGGER": record.name,
                  "CODE_FILE": record.pathname, "CODE_LINE": str(record.lineno), "CODE_FUNC": record.funcName}
        for name, field in JOURNAL_FIELDS.items():
            value = getattr(record, name, None)
            if value is not None and value != "":
                fields[field] = escape_controls(str(value))
        return fields

    def emit(self, record: logging.LogRecord) -> None:
        try:
            datagram = journal_datagram(self.fields(record))
        except Exception:
            self.handleError(record)
            return
        try:
            self._socket.sendto(datagram, self.path)
        except OSError:
            self._fallback.emit(record)

    def close(self) -> None:
        self._socket.close()
        self._fallback.close()
        super().close()


def stderr_is_journal(environ: Mapping[str, str] = os.environ) -> bool:
    """systemd's test: ``$JOURNAL_STREAM`` (``device:inode``) names the file stderr is. The variable
    alone is not enough: a child whose stderr was redirected inherits it too."""
    device, _, inode = environ.get("JOURNAL_STREAM", "").partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        found = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):  # no stderr, or one with no descriptor
        return False
    return (found.st_dev, found.st_ino) == (int(device), int(inode))


def handler(journal_socket: str = JOURNAL_SOCKET) -> logging.Handler:
    """The journal's handler when stderr is the journal, else the stderr format."""
    if stderr_is_journal():
        return JournalHandler(journal_socket)
    stream = logging.StreamHandler()
    stream.setFormatter(OneLineFormatter(FORMAT))
    return stream


def configure(level: str) -> None:
    logging.basicConfig(level=level.upper(), handlers=[handler()])
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
