"""The 20-day clock of 44 U.S.C. 2911(a): pure functions, no I/O, no clock of their own.

See DESIGN §1: the clock starts at the original message's time; ``calendar``
does not count the creation day and ends at the end of the last day in the
custodian's zone; ``elapsed`` is exactly ``days`` x 24 h.
"""

from __future__ import annotations

import math
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
