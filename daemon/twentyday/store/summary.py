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

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from twentyday.canonical import iso, parse_iso, utc_key
from twentyday.compliance.coverage import Coverage, coverage
from twentyday.compliance.summary import CustodianSummary, Person, summarise
from twentyday.config import Config
from twentyday.store.alerts import open_alerts
from twentyday.store.coverage import capture_spans


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


def coverages(conn: sqlite3.Connection, config: Config, *, as_of: datetime,
              custodian: str | None = None) -> list[Coverage]:
    """Every chat conversation's coverage as the archive stood at ``as_of``."""
    zones = {c.id: c.zone for c in config.custodians}
    return coverage(capture_spans(conn, custodian=custodian, as_of=as_of), zones, config.deadline_rule,
                    config.deadline_days)


def compliance_summary(conn: sqlite3.Connection, config: Config, window: Window,
                       held: list[Coverage] | None = None) -> list[CustodianSummary]:
    """Per custodian: records by status and direction, days late, open alerts, conversations at risk.

    ``held``: the coverages, when the caller has read them already (the report draws them too).
    """
    where, params = window.where()
    tallies = conn.execute(
        f"SELECT custodian, status, direction, count(*) FROM record WHERE {where} "
        "GROUP BY custodian, status, direction", params).fetchall()
    lateness = conn.execute(
        f"SELECT custodian, days_late, count(*) FROM record WHERE status = 'late' AND {where} "
        "GROUP BY custodian, days_late", params).fetchall()
    if held is None:
        held = coverages(conn, config, as_of=window.as_of, custodian=window.custodian)
    return summarise(people(config, window.custodian), tallies, lateness, open_alert_counts(conn, window),
                     held, as_of=window.as_of, remind_after_days=config.remind_after_days)


def open_alert_counts(conn: sqlite3.Connection, window: Window) -> dict[str, int]:
    """Open alerts by custodian, opened by ``as_of``.

    Read through :func:`twentyday.store.alerts.open_alerts` (the alert table's owner); an alert
    open today that was opened by ``as_of`` counts. One resolved since ``as_of`` does not.
    """
    counts: dict[str, int] = {}
    for alert in open_alerts(conn, window.custodian):
        if parse_iso(alert.opened_at) <= window.as_of:
            counts[alert.custodian] = counts.get(alert.custodian, 0) + 1
    return counts
