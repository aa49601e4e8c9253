"""The compliance summary of each custodian: what the records officer reads first. Pure: counts,
coverage and the clock in (``as_of``), summaries out; no I/O, no clock of its own.

Per custodian: records by status (DESIGN §1) and by direction, the most and the median days late,
the open alerts, and the chat conversations at risk, each with the date by which it must be
exported (:func:`twentyday.compliance.coverage.export_by`). A conversation is at risk from the
moment a ``deadline_approaching`` reminder is due (its coverage ends ``remind_after_days`` ago,
DESIGN §2) or once its export-by date has passed; the soonest due comes first. Facts, not
verdicts: "passed" says only that a message written just after the coverage ends would now be
late, not that one was written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from twentyday.compliance.coverage import export_by

STATUSES = ("copied", "on_time", "late", "undated")
DIRECTIONS = ("sent", "received")


class Ending(Protocol):
    """Where a conversation's coverage ends and when its next export is due: a
    :class:`~twentyday.compliance.coverage.Coverage`, or just its end (:class:`ConversationEnd`)."""

    @property
    def custodian(self) -> str: ...
    @property
    def conversation(self) -> str: ...
    @property
    def platform(self) -> str: ...
    @property
    def covered_until(self) -> datetime: ...
    @property
    def export_by(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class ConversationEnd:
    """The end of a conversation's coverage: all the summary needs of it (the newest message held)."""

    custodian: str
    conversation: str
    platform: str
    covered_until: datetime
    export_by: datetime

    @classmethod
    def at(cls, custodian: str, conversation: str, platform: str, covered_until: datetime, zone: ZoneInfo,
           rule: str, days: int) -> ConversationEnd:
        return cls(custodian, conversation, platform, covered_until, export_by(covered_until, zone, rule, days))


@dataclass(frozen=True, slots=True)
class AtRisk:
    """A chat conversation whose next export is due (or overdue)."""

    conversation: str
    platform: str
    covered_until: datetime
    export_by: datetime
    #: The export-by date is behind ``as_of``: a message written just after the coverage is late.
    passed: bool

    def as_json(self, zone: ZoneInfo) -> dict[str, Any]:
        return {"conversation": self.conversation, "platform": self.platform,
                "covered_until": self.covered_until.astimezone(zone).isoformat(),
                "export_by": self.export_by.astimezone(zone).isoformat(), "passed": self.passed}


@dataclass(frozen=True, slots=True)
class CustodianSummary:
    custodian: str
    name: str
    timezone: str
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    by_direction: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRECTIONS, 0))
    max_days_late: int | None = None
    median_days_late: float | None = None
    open_alerts: int = 0
    at_risk: tuple[AtRisk, ...] = ()

    @property
    def records(self) -> int:
        return sum(self.by_status.values())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def as_json(self) -> dict[str, Any]:
        return {"custodian": self.custodian, "name": self.name, "timezone": self.timezone,
                "records": self.records, "by_status": dict(self.by_status),
                "by_direction": dict(self.by_direction), "max_days_late": self.max_days_late,
                "median_days_late": self.median_days_late, "open_alerts": self.open_alerts,
                "at_risk": [risk.as_json(self.zone) for risk in self.at_risk]}


@dataclass(frozen=True, slots=True)
class Person:
    """Who a custodian is, as the configuration names them (or an id the index alone knows)."""

    id: str
    name: str
    timezone: str = "UTC"


def summarise(people: Iterable[Person], tallies: Iterable[tuple[str, str, str, int]],
              lateness: Iterable[tuple[str, int, int]], open_alerts: Mapping[str, int],
              ends: Iterable[Ending], *, as_of: datetime, remind_after_days: int) -> list[CustodianSummary]:
    """One summary per custodian, ordered by id.

    ``tallies``: (custodian, status, direction, records); ``lateness``: (custodian, days late,
    records) of the late records; ``open_alerts``: open alerts by custodian; ``ends``: where each
    chat conversation's coverage ends. A custodian the
    tallies name but ``people`` does not (no longer configured) is summarised under its id.
    """
    known = {person.id: person for person in people}
    status: dict[str, dict[str, int]] = {}
    direction: dict[str, dict[str, int]] = {}
    for custodian, state, way, count in tallies:
        known.setdefault(custodian, Person(custodian, custodian))
        row = status.setdefault(custodian, dict.fromkeys(STATUSES, 0))
        row[state] = row.get(state, 0) + count
        ways = direction.setdefault(custodian, dict.fromkeys(DIRECTIONS, 0))
        ways[way] = ways.get(way, 0) + count
    late: dict[str, dict[int, int]] = {}
    for custodian, days_late, count in lateness:
        histogram = late.setdefault(custodian, {})
        histogram[days_late] = histogram.get(days_late, 0) + count
    risks: dict[str, list[AtRisk]] = {}
    for held in ends:
        risk = at_risk(held, as_of, remind_after_days)
        if risk is not None:
            risks.setdefault(held.custodian, []).append(risk)
    summaries = []
    for custodian in sorted(known):
        person = known[custodian]
        histogram = late.get(custodian, {})
        summaries.append(CustodianSummary(
            custodian=custodian, name=person.name, timezone=person.timezone,
            by_status=status.get(custodian, dict.fromkeys(STATUSES, 0)),
            by_direction=direction.get(custodian, dict.fromkeys(DIRECTIONS, 0)),
            max_days_late=max(histogram) if histogram else None,
            median_days_late=median(histogram),
            open_alerts=open_alerts.get(custodian, 0),
            at_risk=tuple(sorted(risks.get(custodian, []), key=lambda r: (r.export_by, r.conversation))),
        ))
    return summaries


def at_risk(held: Ending, as_of: datetime, remind_after_days: int) -> AtRisk | None:
    """The conversation as at risk at ``as_of``, or None while its reminder is not yet due."""
    remind_from = held.covered_until + timedelta(days=remind_after_days)
    if as_of < min(remind_from, held.export_by):
        return None
    return AtRisk(held.conversation, held.platform, held.covered_until, held.export_by, as_of > held.export_by)


def median(histogram: Mapping[int, int]) -> float | None:
    """The median of values given as {value: how many}; None when there are none."""
    total = sum(histogram.values())
    if total == 0:
        return None
    ranks = ((total + 1) // 2, (total + 2) // 2)  # 1-based; the same rank when total is odd
    found: list[int] = []
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        found.extend(value for rank in ranks[len(found):] if seen >= rank)
        if len(found) == len(ranks):
            break
    return sum(found) / len(found)
