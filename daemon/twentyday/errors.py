"""One rooted error hierarchy; each branch has a stable exit code.

::

    TwentydayError                 exit 1
     ├─ ConfigError                exit 2   (names the file and the key)
     ├─ InvalidArgument            exit 2   (a request asked wrongly: names the argument)
     ├─ KeyMaterialError           exit 3   (wrong passphrase, wrong key, unreadable key file)
     ├─ ParseError                 exit 4   (the item is quarantined, never dropped)
     │   └─ HeldForReview          exit 4   (day/month order undecidable: held, alert raised)
     ├─ IntegrityError             exit 5   (verify found a difference)
     │   └─ SpoolItemDamaged       exit 5   (a spooled item fails authentication: kept as it is)
     ├─ IntakeError                exit 6   (spool not writable: SMTP answers 451)
     │   └─ BatchRolledBack        exit 6   (a batch lost all its captures: store them again)
     ├─ NotFoundError              exit 7   (no such record, capture or file)
     ├─ ArchiveVersionError        exit 8   (the index is at another schema: migrate it first)
     └─ RecordDestroyed            exit 9   (destroyed under a disposition: its tombstone remains)

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``;
nothing in this tree is ever shown as a traceback.
"""

from __future__ import annotations


class TwentydayError(Exception):
    """Something twentyday expected could go wrong, went wrong."""

    exit_code = 1


class ConfigError(TwentydayError):
    """The configuration file is missing, malformed or names an impossible value."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.key = key


class InvalidArgument(TwentydayError):
    """A library call was asked with a value its rules refuse (a blank purpose for a disclosure).

    Exit 2, like a command-line usage error: the CLI reports it against its option.
    """

    exit_code = 2

    def __init__(self, message: str, *, argument: str) -> None:
        super().__init__(message)
        self.argument = argument


class KeyMaterialError(TwentydayError):
    """A key could not be read, decrypted or used (wrong passphrase, wrong identity)."""

    exit_code = 3


class ParseError(TwentydayError):
    """An item could not be parsed; it is kept sealed in quarantine with this reason.

    The message is for a person and may quote the item (a zip member's name, a line of a
    chat): it is sealed with the capture. ``code`` is a stable name for what went wrong
    (``zip_entry_unreadable``, ``bad_json``, ``too_large``): it is what the index, the
    ledger, alerts and logs keep in clear (docs/ARCHITECTURE.md, "Security model"), so it
    never holds anything taken from the item.
    """

    exit_code = 4
    default_code = "parse_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code


class HeldForReview(ParseError):
    """The item is readable but cannot be interpreted without a human decision.

    Example: a WhatsApp export whose dates never exceed 12 in either field, for
    a custodian with no configured locale. Never resolved by guessing.
    """

    default_code = "held_for_review"


class IntegrityError(TwentydayError):
    """The archive's blobs, index and ledger disagree."""

    exit_code = 5


class SpoolItemDamaged(IntegrityError):
    """A spooled item's sealed bytes fail authentication (bit rot, an overwrite): its content is lost.

    Not an :class:`IntakeError`: the archive is fine and retrying cannot help. The worker
    keeps the damaged bytes as they are, in a quarantined capture, and goes on with the
    items behind it.
    """


class IntakeError(TwentydayError):
    """An item could not be made durable; the source must not acknowledge it."""

    exit_code = 6


class BatchRolledBack(IntakeError):
    """A capture written without a savepoint of its own failed: the whole batch was rolled back.

    None of the batch's captures is stored; the caller (the pipeline worker) still holds
    every item and stores them again, each in a savepoint, where the failure meets its
    usual handling.
    """


class NotFoundError(TwentydayError):
    """No record, capture or file by that name."""

    exit_code = 7


class ArchiveVersionError(TwentydayError):
    """The index was written at another schema version than this code reads.

    An earlier one: ``twentyday migrate`` (or ``serve``) upgrades it and adopts its rows into the
    ledger, which needs the daemon's key, so a reader (``verify``, the officer's ``show``) says so
    instead of reading it. A later one: this code cannot read it.
    """

    exit_code = 8


class RecordDestroyed(TwentydayError):
    """The record (or capture) was destroyed under a disposition plan: only its tombstone remains."""

    exit_code = 9
