"""The compliance summary read from the index (:mod:`twentyday.compliance.summary` makes it).

Counts are SQL aggregates over the index, never a read of every record: records by custodian,
status and direction in one ``GROUP BY``, and the late records' days late as a histogram (one row
per custodian and distinct days late), from which the median is taken. ``since``/``until`` bound
the records by their original (created) time, so undated records fall outside any such window.
``as_of`` is the archive as it stood then: records first captured by then, captures received by
then (coverage), alerts opened by then; a record's status is the one recorded at its first capture,
which no later capture changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from twentyday.canonical import iso, parse_iso, utc_key
from twentyday.compliance.coverage import Coverage, coverage
from twentyday.compliance.summary import ConversationEnd, CustodianSummary, Ending, Person, summarise
from twentyday.config import Config
from twentyday.store import db
from twentyday.store.alerts import open_alerts
from twentyday.store.coverage import FORWARDED_PLATFORMS, capture_spans

UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Window:
    """Which records a summary counts: created in [since, until), captured by ``as_of``."""

    as_of: datetime
    since: datetime | None = None
    until: datetime | None = None
    custodian: str | None = None

    def where(self) -> tuple[str, list[str]]:
        """The SQL condition on ``record`` and its parameters."""
        clauses = ["captured_at <= ?"]  # ISO in UTC, as the writer keeps it: sorts as text
        params = [iso(self.as_of.astimezone(UTC))]
        if self.custodian is not None:
            clauses.append("custodian = ?")
            params.append(self.custodian)
        if self.since is not None:
            clauses.append("created_utc >= ?")
            params.append(utc_key(self.since))
        if self.until is not None:
            clauses.append("created_utc < ?")
            params.append(utc_key(self.until))
        return " AND ".join(clauses), params


def people(config: Config, custodian: str | None = None) -> list[Person]:
    return [Person(c.id, c.name, c.timezone) for c in config.custodians if custodian in (None, c.id)]


def coverages(conn: db.Connection, config: Config, *, as_of: datetime,
              custodian: str | None = None) -> list[Coverage]:
    """Every chat conversation's coverage as the archive stood at ``as_of``."""
    zones = {c.id: c.zone for c in config.custodians}
    return coverage(capture_spans(conn, custodian=custodian, as_of=as_of), zones, config.deadline_rule,
                    config.deadline_days)


def conversation_ends(conn: db.Connection, config: Config, window: Window) -> list[ConversationEnd]:
    """Where each chat conversation's coverage ends as the archive stood at ``as_of``.

    The newest dated message of the records first captured by then: every capture received by then
    holds only such records (a later capture of an older message links to a record captured before),
    so this is the end of :func:`coverages` without reading every capture's span.
    """
    zones = {c.id: c.zone for c in config.custodians}
    clauses = ["captured_at <= ?", "created_utc IS NOT NULL",
               f"platform NOT IN ({', '.join('?' for _ in FORWARDED_PLATFORMS)})"]
    params = [iso(window.as_of.astimezone(UTC)), *FORWARDED_PLATFORMS]
    if window.custodian is not None:
        clauses.append("custodian = ?")
        params.append(window.custodian)
    rows = conn.execute(
        "SELECT custodian, conversation, max(platform), max(created_utc) FROM record "
        f"WHERE {' AND '.join(clauses)} GROUP BY custodian, conversation", params)
    return [ConversationEnd.at(custodian, conversation, platform, parse_iso(last), zones.get(custodian, UTC_ZONE),
                               config.deadline_rule, config.deadline_days)
            for custodian, conversation, platform, last in rows]


def compliance_summary(conn: db.Connection, config: Config, window: Window,
                       ends: Sequence[Ending] | None = None) -> list[CustodianSummary]:
    """Per custodian: records by status and direction, days late, open alerts, conversations at risk.

    ``ends``: where each conversation's coverage ends, when the caller has read the coverage already
    (the report draws it too).
    """
    where, params = window.where()
    # One pass over the covering index record_summary, in its order: no sort, no table read.
    counted = conn.execute(
        f"SELECT custodian, status, direction, days_late, count(*) FROM record WHERE {where} "
        "GROUP BY custodian, status, direction, days_late", params).fetchall()
    tallies = [(custodian, status, direction, count) for custodian, status, direction, _, count in counted]
    lateness = [(custodian, days, count) for custodian, status, _, days, count in counted if status == "late"]
    if ends is None:
        ends = conversation_ends(conn, config, window)
    return summarise(people(config, window.custodian), tallies, lateness, open_alert_counts(conn, window),
                     ends, as_of=window.as_of, remind_after_days=config.remind_after_days)


def open_alert_counts(conn: db.Connection, window: Window) -> dict[str, int]:
    """Open alerts by custodian, opened by ``as_of``.

    Read through :func:`twentyday.store.alerts.open_alerts` (the alert table's owner); an alert
    open today that was opened by ``as_of`` counts. One resolved since ``as_of`` does not.
    """
    counts: dict[str, int] = {}
    for alert in open_alerts(conn, window.custodian):
        if parse_iso(alert.opened_at) <= window.as_of:
            counts[alert.custodian] = counts.get(alert.custodian, 0) + 1
    return counts
