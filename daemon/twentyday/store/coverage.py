"""What each capture holds of each conversation, read from the index for the coverage timeline
(:mod:`twentyday.compliance.coverage` turns these into spans, holes and export-by dates).

A capture holds a conversation from its first to its last dated message: every capture a
record arrived in counts (its earliest, ``record.capture_id``, and every later one,
``record_capture``), so a later export that repeats older messages spans them too. Undated
records hold no span. Mail is forwarded message by message, not exported: its threads have no
coverage to keep (thread gaps are found by reference instead), so ``chat_only`` leaves them out.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Collection, Iterator
from datetime import UTC, datetime

from twentyday.canonical import iso, parse_iso
from twentyday.compliance.coverage import CaptureSpan

#: Platforms whose records arrive one forwarded message at a time, not as exports of a conversation.
FORWARDED_PLATFORMS = ("email",)


def capture_spans(conn: sqlite3.Connection, *, custodian: str | None = None, as_of: datetime | None = None,
                  chat_only: bool = True, conversations: Collection[tuple[str, str]] | None = None
                  ) -> Iterator[CaptureSpan]:
    """Each (capture, conversation) with its first and last dated message; ``as_of``: only captures
    received by then (the archive as it stood at that time); ``conversations``: only these
    (custodian, conversation) pairs."""
    where = ["r.created_utc IS NOT NULL"]
    params: list[str] = []
    if custodian is not None:
        where.append("r.custodian = ?")
        params.append(custodian)
    if conversations is not None:
        if not conversations:
            return
        where.append(f"(r.custodian, r.conversation) IN (VALUES {', '.join('(?, ?)' for _ in conversations)})")
        params.extend(value for pair in sorted(conversations) for value in pair)
    if chat_only:
        where.append(f"r.platform NOT IN ({', '.join('?' for _ in FORWARDED_PLATFORMS)})")
        params.extend(FORWARDED_PLATFORMS)
    cutoff = [] if as_of is None else [iso(as_of.astimezone(UTC))]  # ISO in UTC as the writer keeps it: sorts as text
    # Two grouped reads merged here (a record's earliest capture, then its later ones): each walks the
    # record table by an index of its own, where one UNION of both would be materialised first.
    earliest = conn.execute(
        "SELECT r.custodian, r.conversation, max(r.platform), r.capture_id, min(r.created_utc), max(r.created_utc), "
        f"count(*) FROM record r WHERE {' AND '.join(where)}{' AND r.captured_at <= ?' if cutoff else ''} "
        "GROUP BY r.custodian, r.conversation, r.capture_id", [*params, *cutoff])
    later = conn.execute(
        "SELECT r.custodian, r.conversation, max(r.platform), l.capture_id, min(r.created_utc), max(r.created_utc), "
        f"count(*) FROM record_capture l JOIN record r ON r.id = l.record_id WHERE {' AND '.join(where)}"
        f"{' AND l.captured_at <= ?' if cutoff else ''} GROUP BY r.custodian, r.conversation, l.capture_id",
        [*params, *cutoff])
    merged: dict[tuple[str, str, str], list[str | int]] = {}
    for row in itertools.chain(earliest, later):
        key = (row[0], row[1], row[3])
        held = merged.get(key)
        if held is None:
            merged[key] = [row[2], row[4], row[5], row[6]]
        else:
            held[0] = max(str(held[0]), row[2])
            held[1] = min(str(held[1]), row[4])
            held[2] = max(str(held[2]), row[5])
            held[3] = int(held[3]) + row[6]
    if not merged:
        return
    captures = sorted({key[2] for key in merged})
    received: dict[str, str] = {}
    truncated: set[str] = set()
    for at in range(0, len(captures), 500):
        chunk = captures[at:at + 500]
        marks = ", ".join("?" * len(chunk))
        received.update(conn.execute(f"SELECT id, received_at FROM capture WHERE id IN ({marks})", chunk))
        truncated.update(c for (c,) in conn.execute(
            "SELECT DISTINCT capture_id FROM event WHERE kind = 'truncated_export' "
            f"AND capture_id IN ({marks})", chunk))
    for (custodian_id, conversation, capture_id), (platform, first, last, count) in sorted(merged.items()):
        yield CaptureSpan(custodian_id, conversation, str(platform), capture_id, parse_iso(str(first)),
                          parse_iso(str(last)), parse_iso(received[capture_id]), int(count), capture_id in truncated)
