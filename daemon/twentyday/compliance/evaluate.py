"""Which alerts should be open at a given moment: the forward-looking half of DESIGN §2. Pure.

Facts in (what each capture holds of each conversation, each custodian's newest capture,
replies whose message is not archived), the policy and ``now`` passed in; out, the set of
*condition* findings that hold at ``now``, each with the facts that justify it (ids, dates,
counts — never content). The store opens an alert for each, updates it while it holds and
resolves it once it no longer does (:func:`twentyday.store.alerts.reconcile`):

- ``deadline_approaching``: a chat conversation's coverage ended ``remind_after_days`` ago,
  counted like the deadline itself (``calendar``: from the start of the local day after the
  ``remind_after_days``-th day in the custodian's zone); the messages that may follow it are
  nearing their deadline, ``export_by``. A new export that extends the coverage clears it.
- ``coverage_gap``: holes between a conversation's captures, and exports that look truncated.
  A later capture that spans a hole clears it (a truncated export stays: its history is cut).
- ``thread_gap``: records that reply to a message not in the archive; cleared by its arrival.
- ``custodian_silent``: a custodian with registered personal accounts whose newest capture is
  ``silent_after_days`` old (or who has sent nothing since the custodian was configured).

The *event* kinds (``late_capture``, ``deleted_message``, ...) are raised at ingest by the
pipeline: they are facts about what arrived, and do not clear by themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from twentyday.canonical import iso
from twentyday.compliance.coverage import CaptureSpan, coverage
from twentyday.compliance.deadlines import deadline
from twentyday.config import Config

#: Kinds whose alerts this module decides (open while the condition holds, resolved after).
CONDITION_KINDS = ("deadline_approaching", "coverage_gap", "thread_gap", "custodian_silent")
#: At most this many holes or record ids are listed in an alert's facts (the count says how many).
FACTS_LISTED = 20
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Policy:
    """What the evaluation needs of the configuration."""

    remind_after_days: int
    silent_after_days: int
    escalate_after_days: int
    rule: str
    days: int
    zones: dict[str, ZoneInfo] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        return cls(config.remind_after_days, config.silent_after_days, config.escalate_after_days,
                   config.deadline_rule, config.deadline_days,
                   {c.id: ZoneInfo(c.timezone) for c in config.custodians})

    def zone(self, custodian: str) -> ZoneInfo:
        return self.zones.get(custodian, ZoneInfo("UTC"))

    def after(self, moment: datetime, custodian: str, days: int) -> datetime:
        """The first instant at which ``moment`` is more than ``days`` old, counted by the deadline rule
        (``calendar``: the start of the local day after the ``days``-th; ``elapsed``: days x 24 h)."""
        return deadline(moment + _TICK, self.zone(custodian), self.rule, days) + _TICK

    def escalates_at(self, opened_at: datetime, export_by: datetime | None) -> datetime:
        """When an alert opened at ``opened_at`` goes to the records officers: after
        ``escalate_after_days`` (24 h each), or once its export-by date has passed, whichever comes first."""
        due = opened_at + timedelta(days=self.escalate_after_days)
        return min(due, export_by + _TICK) if export_by is not None else due


@dataclass(frozen=True)
class CustodianFacts:
    """What the index knows of one configured custodian's captures."""

    custodian: str
    personal_accounts: int
    captures: int
    last_capture: datetime | None
    last_capture_id: str | None
    #: When the archive began to expect captures from them (the custodian was configured).
    since: datetime | None


@dataclass(frozen=True)
class ThreadGap:
    """Records of one conversation that reply to messages the archive does not hold."""

    custodian: str
    conversation: str
    platform: str
    records: int
    record_ids: tuple[str, ...]
    capture_ids: tuple[str, ...]
    #: When the first of them was captured (the gap has been known since).
    first_captured: datetime


@dataclass(frozen=True)
class Finding:
    """A condition that holds: the alert that should be open, with the facts that justify it."""

    kind: str
    custodian: str
    conversation: str
    detail: str
    facts: dict[str, Any]
    #: How many holes, records or captures the finding counts (the alert's ``count``).
    count: int
    #: Since when it holds (a reminder's due time, the capture that revealed a hole).
    since: datetime
    #: The date by which the next export is due, where there is one: escalates once passed.
    export_by: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.kind, self.custodian, self.conversation

    #: A fact whose change ends this alert and opens another (the reminder names where coverage
    #: ended: a new export that moves it is a new reminder, the old one resolved by it).
    @property
    def identity(self) -> Any:
        return self.facts.get("covered_until") if self.kind == "deadline_approaching" else None


def evaluate(spans: Iterable[CaptureSpan], custodians: Iterable[CustodianFacts], thread_gaps: Iterable[ThreadGap],
             policy: Policy, now: datetime) -> list[Finding]:
    """Every condition finding that holds at ``now``, in a stable order."""
    held = list(spans)
    received = {span.capture_id: span.received_at for span in held}
    found: list[Finding] = []
    for timeline in coverage(held, policy.zones, policy.rule, policy.days):
        last_capture = timeline.spans[-1].capture_ids[-1]
        remind_from = policy.after(timeline.covered_until, timeline.custodian, policy.remind_after_days)
        if now >= remind_from:
            found.append(Finding(
                "deadline_approaching", timeline.custodian, timeline.conversation,
                f"coverage ends {_day(timeline.covered_until, policy.zone(timeline.custodian))} ({last_capture}); "
                f"export by {_day(timeline.export_by, policy.zone(timeline.custodian))} ({timeline.rule}/"
                f"{timeline.days}d)",
                {"platform": timeline.platform, "covered_until": iso(timeline.covered_until.astimezone(UTC)),
                 "export_by": iso(timeline.export_by), "remind_from": iso(remind_from),
                 "last_capture": last_capture, "rule": f"{timeline.rule}/{timeline.days}d"},
                1, remind_from, timeline.export_by))
        if timeline.holes or timeline.truncated:
            after = [received[c] for hole in timeline.holes for c in hole.after if c in received]
            after += [received[c] for c in timeline.truncated if c in received]
            holes = [{"from": iso(h.start.astimezone(UTC)), "to": iso(h.end.astimezone(UTC)),
                      "before": list(h.before), "after": list(h.after)} for h in timeline.holes]
            parts = [f"{len(holes)} hole(s) between captures"] if holes else []
            if timeline.truncated:
                parts.append(f"{len(timeline.truncated)} export(s) at the platform's size limit "
                             f"({', '.join(timeline.truncated[:3])})")
            found.append(Finding(
                "coverage_gap", timeline.custodian, timeline.conversation,
                "; ".join(parts) + ": messages in between may be missing",
                {"platform": timeline.platform, "holes": holes[:FACTS_LISTED], "truncated": list(timeline.truncated)},
                len(holes) + len(timeline.truncated), min(after) if after else timeline.last_received))
    for gap in thread_gaps:
        found.append(Finding(
            "thread_gap", gap.custodian, gap.conversation,
            f"{gap.records} record(s) reply to a message that is not in the archive "
            f"(first {gap.record_ids[0] if gap.record_ids else '-'})",
            {"platform": gap.platform, "records": gap.records, "record_ids": list(gap.record_ids[:FACTS_LISTED]),
             "captures": list(gap.capture_ids[:FACTS_LISTED])},
            gap.records, gap.first_captured))
    for custodian in custodians:
        if custodian.personal_accounts == 0:
            continue  # nothing registered to send from: silence says nothing
        start = custodian.last_capture or custodian.since
        if start is None:
            continue
        silent_from = policy.after(start, custodian.custodian, policy.silent_after_days)
        if now >= silent_from:
            last = (f"newest capture {custodian.last_capture_id} received "
                    f"{_day(custodian.last_capture, policy.zone(custodian.custodian))}"
                    if custodian.last_capture is not None else
                    f"no capture since {_day(start, policy.zone(custodian.custodian))}")
            found.append(Finding(
                "custodian_silent", custodian.custodian, "",
                f"{last}; {custodian.personal_accounts} personal account(s) registered",
                {"last_capture": custodian.last_capture_id,
                 "last_received": iso(custodian.last_capture.astimezone(UTC)) if custodian.last_capture else None,
                 "since": iso(start.astimezone(UTC)), "captures": custodian.captures,
                 "personal_accounts": custodian.personal_accounts, "silent_from": iso(silent_from)},
                1, silent_from))
    return sorted(found, key=lambda f: f.key)


def _day(moment: datetime, zone: ZoneInfo) -> str:
    """A date as a tired reader wants it: the custodian's local day and time, with its offset."""
    return moment.astimezone(zone).isoformat(timespec="minutes")
