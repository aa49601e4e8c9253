"""Coverage: which spans of a conversation's time the archive holds, where the holes are, and
by when the next export is due. Pure: captures in, timelines out; no I/O, no clock.

A capture of a chat (an export) covers the span from its first to its last dated message: an
export holds the whole history the phone still has, so a later export of the same conversation
that starts after an earlier one ended leaves a hole in between (DESIGN §2, ``coverage_gap``:
messages in between may be missing; nobody can tell from the archive whether any were written).
A later capture that spans the hole closes it. Where the coverage ends, the archive knows nothing
newer: the first message that could follow is due by ``export_by``, the date a reminder names.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from twentyday.compliance.deadlines import deadline

#: The smallest step of time the index keeps (microseconds): "just after" the end of coverage.
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class CaptureSpan:
    """What one capture holds of one conversation: its first and last dated message."""

    custodian: str
    conversation: str
    platform: str
    capture_id: str
    first: datetime
    last: datetime
    received_at: datetime
    messages: int = 0
    #: The export is at a platform's size limit (WhatsApp keeps only the newest messages): older
    #: history may have been cut from it.
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Span:
    """A stretch of time held without a break, and the captures that hold it."""

    start: datetime
    end: datetime
    capture_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hole:
    """Time between two spans that no capture holds: messages in it may be missing."""

    start: datetime  # the last message held before it
    end: datetime  # the first message held after it
    before: tuple[str, ...]  # the captures that end at ``start``'s span
    after: tuple[str, ...]  # the captures of the span that starts at ``end``


@dataclass(frozen=True, slots=True)
class Coverage:
    """One custodian's conversation: its spans, holes, where it ends and when the next export is due."""

    custodian: str
    conversation: str
    platform: str
    spans: tuple[Span, ...]
    holes: tuple[Hole, ...]
    #: The newest message the archive holds.
    covered_until: datetime
    #: The deadline of a message sent just after ``covered_until``: the date by which to export.
    export_by: datetime
    #: How ``export_by`` was computed: the deadline rule and days (recorded with the result).
    rule: str
    days: int
    #: The newest capture (the export that ends the coverage, or the latest one received).
    last_received: datetime
    truncated: tuple[str, ...] = ()

    @property
    def captures(self) -> int:
        return sum(len(span.capture_ids) for span in self.spans)


def coverage(spans: Iterable[CaptureSpan], zones: dict[str, ZoneInfo], rule: str, days: int) -> list[Coverage]:
    """The coverage of every (custodian, conversation) the spans name, in a stable order.

    ``zones`` maps a custodian to the time zone its deadlines are counted in (a ``calendar``
    deadline ends at the end of a local day); a custodian missing from it gets UTC.
    """
    grouped: dict[tuple[str, str], list[CaptureSpan]] = defaultdict(list)
    for span in spans:
        grouped[(span.custodian, span.conversation)].append(span)
    return [_one(held, zones.get(key[0], ZoneInfo("UTC")), rule, days) for key, held in sorted(grouped.items())]


def _one(held: list[CaptureSpan], zone: ZoneInfo, rule: str, days: int) -> Coverage:
    held.sort(key=lambda span: (span.first, span.last, span.capture_id))
    merged: list[tuple[datetime, datetime, list[str]]] = []
    for span in held:
        if merged and span.first <= merged[-1][1]:
            start, end, ids = merged[-1]
            merged[-1] = (start, max(end, span.last), [*ids, span.capture_id])
        else:
            merged.append((span.first, span.last, [span.capture_id]))
    spans = tuple(Span(start, end, tuple(ids)) for start, end, ids in merged)
    holes = tuple(Hole(before.end, after.start, before.capture_ids, after.capture_ids)
                  for before, after in itertools.pairwise(spans))
    covered_until = spans[-1].end
    first = held[0]
    return Coverage(
        custodian=first.custodian,
        conversation=first.conversation,
        platform=max(held, key=lambda span: span.received_at).platform,
        spans=spans,
        holes=holes,
        covered_until=covered_until,
        export_by=export_by(covered_until, zone, rule, days),
        rule=rule,
        days=days,
        last_received=max(span.received_at for span in held),
        truncated=tuple(span.capture_id for span in held if span.truncated),
    )


def export_by(covered_until: datetime, zone: ZoneInfo, rule: str, days: int) -> datetime:
    """The deadline of the first message that could follow the end of coverage.

    Under ``calendar`` that is the end of the 20th day after the local day coverage ends on
    (unless it ends at the day's last microsecond: then the next day counts); under ``elapsed``,
    ``days`` x 24 h after it.
    """
    return deadline(covered_until + _TICK, zone, rule, days)
