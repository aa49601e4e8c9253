"""The 20-day clock of 44 U.S.C. 2911(a): pure functions, no I/O, no clock of their own.

See docs/ARCHITECTURE.md ("The rule"): the clock starts at the original message's time; ``calendar``
does not count the creation day and ends at the end of the last day in the
custodian's zone; ``elapsed`` is exactly ``days`` x 24 h.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Status = Literal["copied", "on_time", "late", "undated"]
_END_OF_DAY = time(23, 59, 59, 999999)


def deadline(created_at: datetime, zone: ZoneInfo, rule: str, days: int) -> datetime:
    """When the statutory copy is due, for a message created at ``created_at``."""
    if rule == "elapsed":
        return created_at + timedelta(days=days)
    if rule != "calendar":
        raise ValueError(f"unknown deadline rule {rule!r}")
    local_day = created_at.astimezone(zone).date()
    return datetime.combine(local_day + timedelta(days=days), _END_OF_DAY, tzinfo=zone)


def status(
    *, copied: bool, created_at: datetime | None, captured_at: datetime, deadline_at: datetime | None
) -> tuple[Status, int | None]:
    """The record's status and whole days late (rounded up); None where it cannot be known."""
    if copied:
        return "copied", 0
    if created_at is None or deadline_at is None:
        return "undated", None
    if captured_at <= deadline_at:
        return "on_time", 0
    return "late", math.ceil((captured_at - deadline_at) / timedelta(days=1))


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the rule says of one record: when its copy was due, and whether it came in time."""

    deadline: datetime | None
    status: Status
    days_late: int | None


def assess(created_at: datetime | None, captured_at: datetime, zone: ZoneInfo | None, rule: str, days: int,
           copied: bool) -> Assessment:
    """The deadline and status of a record created at ``created_at`` and captured at ``captured_at``.

    ``zone`` is the custodian's; without a custodian (None) or a creation time there is
    no deadline, and the record is undated unless it was a copy the custodian forwarded.
    """
    deadline_at = deadline(created_at, zone, rule, days) if created_at is not None and zone is not None else None
    found, days_late = status(copied=copied, created_at=created_at, captured_at=captured_at, deadline_at=deadline_at)
    return Assessment(deadline_at, found, days_late)
