"""Until when each capture's objects in the bucket must stay locked, read from the index.

The writer locks a capture's segments as it writes them (``CaptureWriter._object_lock``): until
the latest of its records may be destroyed under each rule they carry
(:func:`~twentyday.store.objects.capture_retain_until`), the records it brought and those linked
to it, never before the capture's own time. Here the same thing is computed for every capture at
once, from the rows the archive holds: ``verify`` holds each segment's lock to it, and ``migrate
--to`` writes an embedded archive's captures into a bucket with it.

A tenure-based rule depends on when the custodian's tenure ended (``custodians.tenure_ended``),
which the config may learn after a capture was written; the writer counted a tenure still running
as ending on the capture's day. ``as_written=True`` (verify) reads a tenure that way: no later
than the capture's day, the least any writer locked for; ``as_written=False`` (migrate) takes the
tenure as the config knows it now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime

from twentyday.canonical import parse_iso
from twentyday.retention import Rule, parse_rule
from twentyday.store import db
from twentyday.store.objects import capture_retain_until

# Each capture's records (those it brought, then those linked to it), per rule: the latest date of
# the dated ones and the latest capture time of the undated ones, as the writer reads them.
_LATEST = """
SELECT c.id, c.custodian, c.received_at, h.retention, max(h.created_utc),
       max(CASE WHEN h.created_utc IS NULL THEN h.captured_at END)
FROM capture c LEFT JOIN (
    SELECT r.capture_id AS capture_id, r.retention, r.created_utc, r.captured_at FROM record r
    UNION ALL
    SELECT l.capture_id, r.retention, r.created_utc, r.captured_at
    FROM record_capture l JOIN record r ON r.id = l.record_id
) h ON h.capture_id = c.id
GROUP BY c.id, h.retention
"""


def capture_locks(conn: db.Connection, tenures: Mapping[str, date], *,
                  as_written: bool, unrecorded: Callable[[str], Rule] | None = None) -> dict[str, datetime]:
    """Every capture's lock end (UTC): the latest its records' rules require, never before its own time.

    ``tenures``: each custodian's last day (``custodians.tenure_ended``), absent while serving.
    ``unrecorded``: the rule of a custodian id ('' for none) that a capture holding no record is
    locked under from its own time, as the writer does with the custodian's schedule of the day;
    None (verify) asks nothing of such a capture: no row says which schedule that was."""
    locks: dict[str, datetime] = {}
    for capture_id, custodian, received_at, retention, latest_dated, latest_undated in conn.execute(_LATEST):
        captured = parse_iso(received_at).astimezone(UTC)
        until = max(locks.get(capture_id, captured), captured)
        tenure = tenures.get(custodian or "")
        if tenure is not None and as_written:
            tenure = min(tenure, captured.date())
        if retention is not None:
            latest = max(parse_iso(t) for t in (latest_dated, latest_undated) if t is not None)
            until = max(until, capture_retain_until(parse_rule(retention), latest, tenure, captured.date()))
        elif unrecorded is not None:
            until = max(until, capture_retain_until(unrecorded(custodian or ""), captured, tenure, captured.date()))
        locks[capture_id] = until
    return locks
