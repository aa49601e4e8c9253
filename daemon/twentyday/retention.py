"""Retention rules (pure; config imports them): when a record's own fixed rule lets it be destroyed.

A record carries its rule from ingest (``record.retention``, committed by the ledger): since
schema 10 the canonical JSON of the whole rule (:meth:`Rule.text`), before that the schedule's
one-line description (``Schedule.describe()`` of the time), which :func:`parse_rule` still
reads. A text it cannot read is taken as permanent: a rule not understood never makes a record
eligible sooner than it would be. Nothing here reads the configuration's current schedules: a
config changed later cannot shorten what a record carries (docs/ARCHITECTURE.md, "Records
management").

Cutoffs (when the retention period starts):

- ``calendar_year``: the end of the calendar year of the record's date;
- ``fiscal_year``: the end of the US federal fiscal year (30 September) that holds it;
- ``tenure``: the end of the custodian's tenure (``custodians.tenure_ended``); none yet: not cut off;
- ``creation``: the record's own date (an age-based rule, "destroy when N days old").

The record's date is its creation time in its own offset, or its capture time when undated
(never earlier than the record can be shown to exist).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta

CUTOFFS = ("calendar_year", "fiscal_year", "tenure", "creation")
#: Rule texts are versioned: a later form must not be read as this one.
RULE_VERSION = 1
_LEGACY = re.compile(r"^(?P<id>\S+) \((?P<authority>.*)\): (?:(?P<permanent>permanent)|"
                     r"temporary, destroy (?P<years>\d+) years after cutoff)$")


@dataclass(frozen=True)
class Rule:
    """One record's retention: which schedule, on what authority, how long after which cutoff."""

    schedule: str
    authority: str
    permanent: bool
    retain_years: int
    retain_days: int
    cutoff: str
    #: Permanent records: years after cutoff they are transferred to NARA (0: not given).
    transfer_years: int = 0
    #: How the rule was read: 'rule' (the JSON form), 'legacy' (a description), 'unread' (taken as permanent).
    source: str = "rule"

    def text(self) -> str:
        """What a record's ``retention`` column holds: the whole rule as canonical JSON."""
        fields = {k: v for k, v in asdict(self).items() if k != "source"}
        # canonical JSON (twentyday.canonical's form, which this layer sits below): sorted keys, no spaces
        return json.dumps({"v": RULE_VERSION, **fields}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    def period(self) -> str:
        """The rule in words, e.g. '7 years after cutoff (calendar_year)'."""
        if self.permanent:
            transfer = f", transfer to NARA {self.transfer_years} years after cutoff" if self.transfer_years else ""
            return f"permanent{transfer} (cutoff {self.cutoff})"
        parts = [f"{self.retain_years} years"] if self.retain_years else []
        parts += [f"{self.retain_days} days"] if self.retain_days else []
        return f"destroy {' '.join(parts) or '0 days'} after cutoff ({self.cutoff})"


def parse_rule(text: str) -> Rule:
    """The rule a ``retention`` column holds; an unreadable one is permanent (``source='unread'``)."""
    if text.startswith("{"):
        try:
            data = json.loads(text)
            if data.get("v") != RULE_VERSION or data.get("cutoff") not in CUTOFFS:
                raise ValueError("unknown form")
            rule = Rule(schedule=str(data["schedule"]), authority=str(data["authority"]),
                        permanent=bool(data["permanent"]), retain_years=int(data["retain_years"]),
                        retain_days=int(data["retain_days"]), cutoff=str(data["cutoff"]),
                        transfer_years=int(data.get("transfer_years", 0)))
            if rule.retain_years < 0 or rule.retain_days < 0 or (
                    not rule.permanent and rule.retain_years == 0 and rule.retain_days == 0):
                raise ValueError("no period")
            return rule
        except (ValueError, KeyError, TypeError, AttributeError):
            return _unread(text)
    found = _LEGACY.match(text)
    if found is None:
        return _unread(text)
    # Before schedules named their cutoff, every temporary schedule was kept after the calendar-year cutoff.
    permanent = found["permanent"] is not None
    return Rule(found["id"], found["authority"], permanent, 0 if permanent else int(found["years"]), 0,
                "calendar_year", source="legacy")


def _unread(text: str) -> Rule:
    return Rule(text[:40], "", True, 0, 0, "calendar_year", source="unread")


def record_date(created_at: str | None, captured_at: str) -> datetime:
    """The moment a record's retention counts from: its creation time, else its capture time."""
    return datetime.fromisoformat((created_at or captured_at).replace("Z", "+00:00"))


def cutoff_at(rule: Rule, dated: datetime, tenure_ended: date | None = None) -> datetime | None:
    """When the record is cut off (the retention period starts), in the record's own offset; None: not yet
    knowable (a tenure that has not ended)."""
    zone = dated.tzinfo
    day = dated.date()
    if rule.cutoff == "creation":
        return dated
    if rule.cutoff == "calendar_year":
        return datetime.combine(date(day.year + 1, 1, 1), time(), zone)
    if rule.cutoff == "fiscal_year":  # the federal fiscal year ends on 30 September
        end_year = day.year + 1 if day.month >= 10 else day.year
        return datetime.combine(date(end_year, 10, 1), time(), zone)
    if rule.cutoff == "tenure":
        if tenure_ended is None:
            return None
        return datetime.combine(max(tenure_ended, day) + timedelta(days=1), time(), zone)
    return None  # an unknown cutoff never cuts a record off


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February: the period ends a day later, never earlier
        return moment.replace(year=moment.year + years, month=3, day=1)


def eligible_since(rule: Rule, dated: datetime, tenure_ended: date | None = None) -> datetime | None:
    """From when a temporary record may be destroyed under its rule; None for a permanent one, a rule
    not read, or a cutoff still to come."""
    if rule.permanent or rule.source == "unread":
        return None
    start = cutoff_at(rule, dated, tenure_ended)
    if start is None:
        return None
    return _add_years(start, rule.retain_years) + timedelta(days=rule.retain_days)


def transfer_due(rule: Rule, dated: datetime, tenure_ended: date | None = None) -> datetime | None:
    """When a permanent record is due for transfer to NARA (None: not permanent, or no cutoff yet)."""
    if not rule.permanent or not rule.transfer_years:
        return None
    start = cutoff_at(rule, dated, tenure_ended)
    return None if start is None else _add_years(start, rule.transfer_years)


def shorter_than(rule: Rule, floor: Rule) -> str | None:
    """What makes ``rule`` keep records less long than ``floor`` (a GRS item's own), or None.

    Compared on what the two rules promise: permanence, the period, and for permanent records the
    transfer delay. A cutoff is the agency's to choose, as the GRS items allow."""
    if floor.permanent and not rule.permanent:
        return "permanent"
    if floor.permanent:
        return "transfer_years" if rule.transfer_years < floor.transfer_years else None
    if rule.permanent:
        return None
    if rule.retain_years * 365 + rule.retain_days < floor.retain_years * 365 + floor.retain_days:
        return "retain_years" if rule.retain_years < floor.retain_years else "retain_days"
    return None
