"""The facts a report draws and an evidence pack lists, read from the index: metadata only.

What arrived (captures: when, by which channel, how many records, how many of them late), which
records were late (per conversation and day, with how late), and which deletions the exports
recorded (``event`` rows of kind ``deleted_message``; ``disappearing_messages`` too for the
evidence pack). Nothing here decrypts anything: event details and capture names stay sealed. Every
read takes ``as_of``: the archive as it stood then (captures received by then, records first
captured by then).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from twentyday.canonical import iso, parse_iso
from twentyday.store import db
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


def late_marks(conn: db.Connection, *, as_of: datetime, custodian: str | None = None) -> list[LateMark]:
    """Late chat records by custodian, conversation and day created (UTC): a timeline's ticks."""
    clause, params = _custodian_clause(custodian, "custodian")
    rows = conn.execute(
        "SELECT custodian, conversation, min(created_utc), count(*), max(days_late) FROM record "
        f"WHERE status = 'late' AND captured_at <= ?{clause} "
        f"AND platform NOT IN ({', '.join('?' for _ in FORWARDED_PLATFORMS)}) "
        "GROUP BY custodian, conversation, substr(created_utc, 1, 10) ORDER BY 1, 2, 3",
        [_as_of(as_of), *params, *FORWARDED_PLATFORMS])
    return [LateMark(c, conversation, parse_iso(first), count, days) for c, conversation, first, count, days in rows]


def event_marks(conn: db.Connection, *, as_of: datetime, custodian: str | None = None,
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


def arrivals(conn: db.Connection, custodian: str, *, as_of: datetime) -> list[Arrival]:
    """Every capture of ``custodian`` received by ``as_of``, in the order it arrived."""
    rows = conn.execute(
        "SELECT c.id, c.received_at, c.channel, c.parser, c.state, c.reason, c.message_count, "
        "count(r.id), count(r.id) FILTER (WHERE r.status = 'late') "
        "FROM capture c LEFT JOIN record r ON r.capture_id = c.id "
        "WHERE c.custodian = ? AND c.received_at <= ? GROUP BY c.id ORDER BY c.received_at, c.id",
        (custodian, _as_of(as_of)))
    return [Arrival(capture, parse_iso(received), channel, parser, state, reason, messages, records, late)
            for capture, received, channel, parser, state, reason, messages, records, late in rows]


def conversation_counts(conn: db.Connection, custodian: str, *, as_of: datetime) -> list[ConversationCounts]:
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


# -- what a report of unauthorized disposition (36 CFR 1230.14) draws on: the deletion events, the
# captures that showed them, the alerts they raised and where those alerts' notices went


@dataclass(frozen=True, slots=True)
class Showing:
    """One capture that showed events of one kind in one conversation."""

    capture_id: str
    received_at: datetime
    parser: str
    events: int
    first_at: datetime | None
    last_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeletionFinding:
    """The events of one kind in one conversation of one custodian, over every capture received by then.

    ``count``: how many the exports showed, an event seen by two overlapping exports counted once (an
    event is matched by its time; at each time the most any one capture showed; undated ones, the most
    any one capture showed). ``undated``: how many of them carry no time of their own."""

    custodian: str
    conversation: str
    kind: str
    #: The format of the exports (a conversation's name may recur on another platform: a finding of its own).
    parser: str
    count: int
    undated: int
    first_at: datetime | None
    last_at: datetime | None
    showings: tuple[Showing, ...]


@dataclass(frozen=True, slots=True)
class Notice:
    """One delivery of an alert's notice: which event, by which sink, to whom, and how it stood then."""

    event: str
    sink: str
    recipient: str
    state: str
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeletionAlert:
    """An alert of a deletion kind as it stood at ``as_of`` (a later escalation or closing left out)."""

    id: int
    kind: str
    custodian: str
    conversation: str
    opened_at: datetime
    escalated_at: datetime | None
    resolved_at: datetime | None
    closed_by: str | None
    notices: tuple[Notice, ...]
    #: Its notices queued by then and not yet handed to the sinks (``serve`` or ``alerts deliver`` does that).
    queued: int


def _by(moment: str | None, as_of: datetime) -> datetime | None:
    """A stored time if it was reached by ``as_of``, else None (not yet, then)."""
    if not moment:
        return None
    parsed = parse_iso(moment)
    return parsed if parsed <= as_of else None


def deletion_findings(conn: db.Connection, *, as_of: datetime,
                      custodian: str | None = None) -> list[DeletionFinding]:
    """The ``deleted_message`` and ``disappearing_messages`` events of captures received by ``as_of``,
    by custodian, conversation, kind and export format (in that order)."""
    clause, params = _custodian_clause(custodian, "e.custodian")
    rows = conn.execute(
        "SELECT e.custodian, e.conversation, e.kind, e.at, e.capture_id, c.received_at, c.parser "
        "FROM event e JOIN capture c ON c.id = e.capture_id "
        f"WHERE e.kind IN ({', '.join('?' for _ in DELETION_KINDS)}) AND c.received_at <= ? "
        f"AND e.custodian IS NOT NULL{clause} "
        "ORDER BY e.custodian, e.conversation, e.kind, c.parser, c.received_at, e.id",
        [*DELETION_KINDS, _as_of(as_of), *params])
    grouped: dict[tuple[str, str, str, str], dict[str, tuple[datetime, str, list[datetime | None]]]] = {}
    for owner, conversation, kind, at, capture, received, parser in rows:
        captures = grouped.setdefault((owner, conversation, kind, parser), {})
        captures.setdefault(capture, (parse_iso(received), parser, []))[2].append(parse_iso(at) if at else None)
    findings = []
    for (owner, conversation, kind, format_name), captures in grouped.items():
        most: dict[datetime, int] = {}
        undated = 0
        showings = []
        for capture, (received, parser, times) in captures.items():
            dated = [t for t in times if t is not None]
            for moment in set(dated):
                most[moment] = max(most.get(moment, 0), dated.count(moment))
            undated = max(undated, len(times) - len(dated))
            showings.append(Showing(capture, received, parser, len(times), min(dated, default=None),
                                    max(dated, default=None)))
        findings.append(DeletionFinding(owner, conversation, kind, format_name, sum(most.values()) + undated, undated,
                                        min(most, default=None), max(most, default=None), tuple(showings)))
    return findings


def deletion_alerts(conn: db.Connection, *, as_of: datetime, custodian: str | None = None) -> list[DeletionAlert]:
    """The alerts of a deletion kind opened by ``as_of``, oldest first, each with the notices queued for
    it by then."""
    clause, params = _custodian_clause(custodian, "custodian")
    alerts = list(conn.execute(
        "SELECT id, kind, custodian, conversation, opened_at, escalated_at, resolved_at, closed_by FROM alert "
        f"WHERE kind IN ({', '.join('?' for _ in DELETION_KINDS)}) AND opened_at <= ?{clause} ORDER BY opened_at, id",
        [*DELETION_KINDS, _as_of(as_of), *params]))
    notices: dict[int, list[Notice]] = {}
    queued: dict[int, int] = {}
    if alerts:
        marks = ", ".join("?" for _ in alerts)
        for alert_id, waiting in conn.execute(
                f"SELECT alert_id, count(*) FROM alert_event WHERE alert_id IN ({marks}) AND at <= ? "
                "AND (fanned_out_at IS NULL OR fanned_out_at > ?) GROUP BY alert_id",
                [row[0] for row in alerts] + [_as_of(as_of)] * 2):
            queued[alert_id] = waiting
        for alert_id, event, sink, recipient, state, settled in conn.execute(
                "SELECT alert_id, event, sink, recipient, state, settled_at FROM delivery "
                f"WHERE alert_id IN ({marks}) AND created_at <= ? ORDER BY id",
                [row[0] for row in alerts] + [_as_of(as_of)]):
            settled_then = _by(settled, as_of)
            notices.setdefault(alert_id, []).append(
                Notice(event, sink, recipient, state if settled_then is not None else "pending", settled_then))
    found = []
    for alert_id, kind, owner, conversation, opened, escalated, resolved, closed_by in alerts:
        resolved_then = _by(resolved, as_of)
        found.append(DeletionAlert(alert_id, kind, owner, conversation, parse_iso(opened), _by(escalated, as_of),
                                   resolved_then, closed_by if resolved_then is not None else None,
                                   tuple(notices.get(alert_id, ())), queued.get(alert_id, 0)))
    return found
