"""Legal holds on the bucket's objects, following the archive's holds (:mod:`holds`).

The index is the record of the holds (signed rows); the bucket follows it. S3's legal hold is ON
on every version under ``captures/<id>/`` of each capture holding a record an active hold
matches (:func:`holds.captures_held`: the capture that brought the record and those it is
linked to), OFF on the others. S3 keeps one flag a version, not a count: a capture two holds
match is taken off only when neither is active any more.

When it is set:

- at ingest, a capture's objects are written held when an active hold may match it
  (:func:`holds.capture_held`, which leaves a hold's ``--text`` out and so errs on holding);
- after ``hold add`` commits, on the captures the new hold matches (:func:`after_place`);
- after ``hold release`` commits, on the captures the released hold may have held (its
  ``--text`` left out, as at ingest) and those of every expired hold (:func:`after_release`):
  each set as the holds still active say;
- ``twentyday hold sync`` (:func:`sync`): every capture any hold, in whatever state, may have
  held, set as the active holds say. It is the run that finishes what a failure left, and the
  one that takes off what an expired hold held: an expiry commits nothing, so nothing runs when
  one passes (run it from a timer to bound that delay).

Disposition never takes a legal hold off: ``retention dispose`` skips a capture whose objects are
held in the bucket, whatever the index says (:mod:`object_disposal`).

Every run is idempotent: each version's flag is read and written only when it differs. The index
commits first; should the bucket then be unreachable or refuse, the result names what was not
set (the CLI prints it and exits with :class:`~twentyday.errors.IntegrityError`'s code) and the
next ``hold sync`` sets it: the signed hold row is the fact, the bucket's flag follows it. One
request a version is read; 8 run at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import botocore.exceptions

from twentyday.errors import TwentydayError
from twentyday.store import db, holds
from twentyday.store.objects import ObjectStore, capture_prefix, error_code

#: Captures reconciled at a time (each one request a version, two when its flag changes).
WORKERS = 8
NOT_TRIED = "not tried: the bucket could not be reached"


@dataclass
class HoldSync:
    """What one reconcile did: versions set ON and taken OFF (by capture), those already right, failures."""

    on: dict[str, int] = field(default_factory=dict)
    off: dict[str, int] = field(default_factory=dict)
    unchanged: int = 0
    captures: int = 0
    #: Each: capture, key (the capture's prefix when it could not be listed), version_id or None, error.
    failed: list[dict[str, Any]] = field(default_factory=list)

    def text(self) -> str:
        said = f"legal hold set on {sum(self.on.values())} object(s) of {len(self.on)} capture(s)"
        if self.off:
            said += f", taken off {sum(self.off.values())} object(s) of {len(self.off)} capture(s)"
        return said + f"; {self.unchanged} object(s) of {self.captures} capture(s) looked at were already so"

    def failure(self) -> str:
        """The one line a failure is reported in (no credentials: the bucket, the codes, the counts)."""
        captures = sorted({f["capture"] for f in self.failed})
        return (f"the bucket's legal holds do not follow the archive's holds yet: {len(self.failed)} object(s) or "
                f"listing(s) of {len(captures)} capture(s) failed ({self.failed[0]['error']}); the index is "
                "committed: run 'twentyday hold sync' to finish")

    def as_json(self) -> dict[str, Any]:
        return {"set_on": self.on, "taken_off": self.off, "unchanged": self.unchanged, "captures": self.captures,
                "failed": self.failed}


def after_place(conn: db.Connection, objects: ObjectStore, row: dict[str, Any], at: datetime) -> HoldSync:
    """After a hold is placed (committed): legal hold on the objects of every capture it matches."""
    return reconcile(conn, objects, holds.captures_matched(conn, row), at)


def after_release(conn: db.Connection, objects: ObjectStore, row: dict[str, Any], at: datetime) -> HoldSync:
    """After a hold is released (committed): the captures it may have held, and those of expired
    holds, set as the active holds say (off where none matches any more)."""
    captures = holds.captures_matched(conn, row, words=False)
    for other in holds.holds(conn):
        if holds.state(other, at) == "expired":
            captures |= holds.captures_matched(conn, other)
    return reconcile(conn, objects, captures, at)


def sync(conn: db.Connection, objects: ObjectStore, at: datetime) -> HoldSync:
    """Every capture any hold may have held (placed, released or expired), set as the active holds say."""
    captures: set[str] = set()
    for row in holds.holds(conn):
        captures |= holds.captures_matched(conn, row, words=False)
    return reconcile(conn, objects, captures, at)


def reconcile(conn: db.Connection, objects: ObjectStore, captures: Iterable[str], at: datetime) -> HoldSync:
    """Set the legal hold of every version of ``captures`` as the holds active at ``at`` say.

    Destroyed captures are left alone (what a certificate destroyed is not held again)."""
    held = holds.captures_held(conn, at)
    disposed = {c for (c,) in conn.execute("SELECT capture_id FROM disposed_capture")}
    wanted = sorted(set(captures) - disposed)
    result = HoldSync(captures=len(wanted))
    unreachable = threading.Event()
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="twentyday-hold") as pool:
        outcomes = list(pool.map(lambda c: _capture(objects, c, c in held, unreachable), wanted))
    for capture_id, changed, unchanged, failed in outcomes:
        if changed:
            (result.on if capture_id in held else result.off)[capture_id] = changed
        result.unchanged += unchanged
        result.failed += failed
    return result


def _capture(objects: ObjectStore, capture_id: str, want: bool, unreachable: threading.Event) -> tuple[
        str, int, int, list[dict[str, Any]]]:
    prefix = capture_prefix(capture_id)
    if unreachable.is_set():
        return capture_id, 0, 0, [_failed(capture_id, prefix, None, NOT_TRIED)]
    try:
        versions = [v for v in objects.listing(prefix) if not v.marker]  # a delete marker holds nothing
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        unreachable.set()  # a listing refused or not answered: the next ones would be too
        return capture_id, 0, 0, [_failed(capture_id, prefix, None, f"cannot list it ({error_code(error)})")]
    changed = unchanged = 0
    failed: list[dict[str, Any]] = []
    for version in versions:
        if unreachable.is_set():
            failed.append(_failed(capture_id, version.key, version.version_id, NOT_TRIED))
            continue
        try:
            if objects.legal_hold(version.key, version.version_id) == want:
                unchanged += 1
                continue
            objects.set_legal_hold(version.key, version.version_id, on=want)
            changed += 1
        except botocore.exceptions.BotoCoreError as error:
            unreachable.set()
            failed.append(_failed(capture_id, version.key, version.version_id, f"not answered ({error_code(error)})"))
        except botocore.exceptions.ClientError as error:
            failed.append(_failed(capture_id, version.key, version.version_id,
                                  f"cannot read its legal hold ({error_code(error)})"))
        except TwentydayError as error:  # set_legal_hold's refusal, named with its code
            failed.append(_failed(capture_id, version.key, version.version_id, str(error)))
    return capture_id, changed, unchanged, failed


def _failed(capture_id: str, key: str, version_id: str | None, error: str) -> dict[str, Any]:
    return {"capture": capture_id, "key": key, "version_id": version_id, "error": error}
