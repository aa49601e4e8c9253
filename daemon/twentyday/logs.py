"""Logging set-up shared by the CLI and the pipeline process.

Logs go to stderr (journald under systemd). twentyday's own messages carry
ids, counts, names and reasons, never message content. aiosmtpd logs every
command line at INFO and, at DEBUG, every DATA line — message content — so
its logger is held at WARNING whatever ``log_level`` says.
"""

from __future__ import annotations

import logging

FORMAT = "%(levelname)s %(name)s: %(message)s"
#: Third-party loggers that would write message content or addresses at chatty levels.
QUIET = ("mail.log", "watchdog")


def configure(level: str) -> None:
    logging.basicConfig(level=level.upper(), format=FORMAT)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
