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
"""

from __future__ import annotations

import logging

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


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
