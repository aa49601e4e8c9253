"""The facts a report draws and an evidence pack lists, read from the index: metadata only.

What arrived (captures: when, by which channel, how many records, how many of them late), which
records were late (per conversation and day, with how late), and which deletions the exports
recorded (``event`` rows of kind ``deleted_message``; ``disappearing_messages`` too for the
evidence pack). Nothing here decrypts anything: event details and capture names stay sealed. Every
read takes ``as_of``: the archive as it stood then (captures received by then, records first
captured by then).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from twentyday.canonical import iso, parse_iso
from twentyday.store.coverage import FORWARDED_PLATFORMS

#: The events an evidence pack lists: a record possibly destroyed, or set to vanish (36 CFR 1230).
DELETION_KINDS = ("deleted_message", "disappearing_messages")


@dataclass(frozen=True, slots=True)
class LateMark:
    """Records of one conversation, created on one (UTC) day, that were captured late."""

    custodian: str
    conversation: str
    first_created: datetime
    count: int
    max_days_late: int


@dataclass(frozen=True, slots=True)
class EventMark:
    """A deletion (or disappearing messages) an export recorded; ``at`` None: the export gave no time."""

    custodian: str
    conversation: str
    kind: str
    at: datetime | None
    capture_id: str
    received_at: datetime
    #: The newest message of the capture: where an event without a time of its own is drawn.
    capture_last: datetime | None


@dataclass(frozen=True, slots=True)
class Arrival:
    """One capture of the custodian: what arrived, when, and how many of its records were late."""

    capture_id: str
    received_at: datetime
    channel: str
    parser: str
    state: str
    reason: str
    messages: int
    records: int
    late: int


@dataclass(frozen=True, slots=True)
class ConversationCounts:
    """One conversation's records (all platforms, mail threads too) and how late the late ones were."""

    conversation: str
    platform: str
    records: int
    late: int
    undated: int
    max_days_late: int | None
    first_late: datetime | None
    last_late: datetime | None


def _as_of(as_of: datetime) -> str:
    return iso(as_of.astimezone(UTC))  # stored capture times are ISO in UTC: they sort as text


def _custodian_clause(custodian: str | None, column: str) -> tuple[str, list[str]]:
    return ("", []) if custodian is None else (f" AND {column} = ?", [custodian])


def late_marks(conn: sqlite3.Connection, *, as_of: datetime, custodian: str | None = None) -> list[LateMark]:
    """Late chat records by custodian, conversation and day created (UTC): a timeline's ticks."""
    clause, params = _custodian_clause(custodian, "custodian")
    rows = conn.execute(
        "SELECT custodian, conversation, min(created_utc), count(*), max(days_late) FROM record "
        f"WHERE status = 'late' AND captured_at <= ?{clause} "
        f"AND platform NOT IN ({', '.join('?' for _ in FORWARDED_PLATFORMS)}) "
        "GROUP BY custodian, conversation, substr(created_utc, 1, 10) ORDER BY 1, 2, 3",
        [_as_of(as_of), *params, *FORWARDED_PLATFORMS])
    return [LateMark(c, conversation, parse_iso(first), count, days) for c, conversation, first, count, days in rows]


def event_marks(conn: sqlite3.Connection, *, as_of: datetime, custodian: str | None = None,
                kinds: Sequence[str] = ("deleted_message",)) -> list[EventMark]:
    """Events of ``kinds`` recorded by captures received by ``as_of``, oldest first."""
    clause, params = _custodian_clause(custodian, "e.custodian")
    rows = conn.execute(
        "SELECT e.custodian, e.conversation, e.kind, e.at, e.capture_id, c.received_at, c.last_at "
        "FROM event e JOIN capture c ON c.id = e.capture_id "
        f"WHERE e.kind IN ({', '.join('?' for _ in kinds)}) AND c.received_at <= ? AND e.custodian IS NOT NULL"
        f"{clause} ORDER BY e.custodian, e.conversation, c.received_at, e.id",
        [*kinds, _as_of(as_of), *params])
    return [EventMark(c, conversation, kind, parse_iso(at) if at else None, capture, parse_iso(received),
                      parse_iso(last) if last else None)
            for c, conversation, kind, at, capture, received, last in rows]


def arrivals(conn: sqlite3.Connection, custodian: str, *, as_of: datetime) -> list[Arrival]:
    """Every capture of ``custodian`` received by ``as_of``, in the order it arrived."""
    rows = conn.execute(
        "SELECT c.id, c.received_at, c.channel, c.parser, c.state, c.reason, c.message_count, "
        "count(r.id), count(r.id) FILTER (WHERE r.status = 'late') "
        "FROM capture c LEFT JOIN record r ON r.capture_id = c.id "
        "WHERE c.custodian = ? AND c.received_at <= ? GROUP BY c.id ORDER BY c.received_at, c.id",
        (custodian, _as_of(as_of)))
    return [Arrival(capture, parse_iso(received), channel, parser, state, reason, messages, records, late)
            for capture, received, channel, parser, state, reason, messages, records, late in rows]


def conversation_counts(conn: sqlite3.Connection, custodian: str, *, as_of: datetime) -> list[ConversationCounts]:
    """Each conversation of ``custodian`` with records first captured by ``as_of``."""
    rows = conn.execute(
        "SELECT conversation, max(platform), count(*), count(*) FILTER (WHERE status = 'late'), "
        "count(*) FILTER (WHERE status = 'undated'), max(days_late) FILTER (WHERE status = 'late'), "
        "min(created_utc) FILTER (WHERE status = 'late'), max(created_utc) FILTER (WHERE status = 'late') "
        "FROM record WHERE custodian = ? AND captured_at <= ? GROUP BY conversation ORDER BY conversation",
        (custodian, _as_of(as_of)))
    return [ConversationCounts(conversation, platform, records, late, undated, days,
                               parse_iso(first) if first else None, parse_iso(last) if last else None)
            for conversation, platform, records, late, undated, days, first, last in rows]
