from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from twentyday.compliance.deadlines import Assessment, assess, deadline, status

NY = ZoneInfo("America/New_York")


def test_calendar_deadline_is_end_of_twentieth_local_day() -> None:
    created = datetime(2026, 3, 1, 14, 5, tzinfo=NY)
    due = deadline(created, NY, "calendar", 20)
    assert due == datetime(2026, 3, 21, 23, 59, 59, 999999, tzinfo=NY)
    assert due.utcoffset() == timedelta(hours=-4)  # DST began on 8 March: the zone, not a fixed offset


def test_calendar_deadline_uses_the_custodians_day_not_utc() -> None:
    # 02:00 UTC on 2 March is still 1 March in New York.
    created = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert deadline(created, NY, "calendar", 20).date().isoformat() == "2026-03-21"


def test_elapsed_deadline_is_exactly_twenty_days() -> None:
    created = datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    assert deadline(created, NY, "elapsed", 20) == created + timedelta(days=20)


def test_status_on_time_late_copied_undated() -> None:
    created = datetime(2026, 3, 1, 14, 5, tzinfo=NY)
    due = deadline(created, NY, "calendar", 20)
    assert status(copied=False, created_at=created, captured_at=due, deadline_at=due) == ("on_time", 0)
    one_minute_late = due + timedelta(minutes=1)
    assert status(copied=False, created_at=created, captured_at=one_minute_late, deadline_at=due) == ("late", 1)
    assert status(copied=False, created_at=created, captured_at=due + timedelta(days=3, seconds=1),
                  deadline_at=due) == ("late", 4)
    assert status(copied=True, created_at=created, captured_at=due + timedelta(days=30), deadline_at=due) == (
        "copied", 0)
    assert status(copied=False, created_at=None, captured_at=due, deadline_at=None) == ("undated", None)


def test_assess_gives_the_deadline_and_status_of_one_record() -> None:
    created = datetime(2026, 3, 1, 14, 5, tzinfo=NY)
    due = deadline(created, NY, "calendar", 20)
    assert assess(created, due, NY, "calendar", 20, copied=False) == Assessment(due, "on_time", 0)
    assert assess(created, due + timedelta(hours=1), NY, "calendar", 20, copied=False) == Assessment(due, "late", 1)
    # A copy the custodian forwarded keeps its deadline, and is never late.
    assert assess(created, due + timedelta(days=9), NY, "calendar", 20, copied=True) == Assessment(due, "copied", 0)
    # Without a creation time or a custodian's zone there is no deadline.
    assert assess(None, due, NY, "calendar", 20, copied=False) == Assessment(None, "undated", None)
    assert assess(created, due, None, "calendar", 20, copied=False) == Assessment(None, "undated", None)
    assert assess(created, due, None, "elapsed", 20, copied=True) == Assessment(None, "copied", 0)
