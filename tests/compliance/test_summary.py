"""The compliance summary's arithmetic: medians from a histogram, when a conversation is at risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from twentyday.compliance.coverage import CaptureSpan, coverage
from twentyday.compliance.summary import Person, at_risk, median, summarise

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(("histogram", "expected"), [
    ({}, None),
    ({5: 1}, 5.0),
    ({1: 1, 2: 1, 3: 1, 28: 1}, 2.5),
    ({1: 3, 40: 1}, 1.0),
    ({2: 2, 9: 2}, 5.5),
    ({7: 1000}, 7.0),
])
def test_median_of_a_histogram(histogram: dict[int, int], expected: float | None) -> None:
    assert median(histogram) == expected


def _budget(last: datetime) -> list[CaptureSpan]:
    return [CaptureSpan("jdoe", "Budget", "whatsapp", "cap-1", last - timedelta(days=3), last,
                        last + timedelta(days=1), 4)]


def test_a_conversation_is_at_risk_once_its_reminder_is_due_and_passed_after_its_export_by_date() -> None:
    [held] = coverage(_budget(datetime(2026, 10, 10, 9, tzinfo=NY)), {"jdoe": NY}, "calendar", 20)
    assert held.export_by == datetime(2026, 10, 30, 23, 59, 59, 999999, tzinfo=NY)
    # 14 days after the coverage ends, to the minute: not before.
    assert at_risk(held, datetime(2026, 10, 24, 8, 59, tzinfo=NY), 14) is None
    due = at_risk(held, datetime(2026, 10, 24, 9, 0, tzinfo=NY), 14)
    assert due is not None and not due.passed
    passed = at_risk(held, datetime(2026, 10, 31, 0, 0, tzinfo=NY), 14)
    assert passed is not None and passed.passed
    # A reminder window longer than the deadline: at risk from the export-by date anyway.
    assert at_risk(held, datetime(2026, 10, 30, 23, 59, tzinfo=NY), 30) is None
    late = at_risk(held, datetime(2026, 10, 31, 0, 0, tzinfo=NY), 30)
    assert late is not None and late.passed


def test_summaries_per_custodian_in_order_with_counts_and_risks_soonest_first() -> None:
    spans = [*_budget(datetime(2026, 10, 10, 9, tzinfo=NY)),
             CaptureSpan("jdoe", "Ops", "signal", "cap-2", datetime(2026, 9, 1, tzinfo=NY),
                         datetime(2026, 9, 10, 10, tzinfo=NY), datetime(2026, 9, 20, tzinfo=UTC), 2)]
    held = coverage(spans, {"jdoe": NY}, "calendar", 20)
    tallies = [("jdoe", "on_time", "sent", 5), ("jdoe", "late", "received", 3), ("jdoe", "late", "sent", 1),
               ("gone", "undated", "received", 2)]
    summaries = summarise([Person("jdoe", "Jane Doe", "America/New_York"), Person("asmith", "Al Smith")], tallies,
                          [("jdoe", 3, 1), ("jdoe", 2, 1), ("jdoe", 1, 1), ("jdoe", 28, 1)], {"jdoe": 4}, held,
                          as_of=datetime(2026, 10, 28, 12, tzinfo=UTC), remind_after_days=14)
    assert [(s.custodian, s.name, s.records) for s in summaries] == [
        ("asmith", "Al Smith", 0), ("gone", "gone", 2), ("jdoe", "Jane Doe", 9)]
    jdoe = summaries[2]
    assert jdoe.by_status == {"copied": 0, "on_time": 5, "late": 4, "undated": 0}
    assert jdoe.by_direction == {"sent": 6, "received": 3}
    assert (jdoe.max_days_late, jdoe.median_days_late, jdoe.open_alerts) == (28, 2.5, 4)
    assert [(r.conversation, r.passed) for r in jdoe.at_risk] == [("Ops", True), ("Budget", False)]
    assert jdoe.as_json()["at_risk"][1]["export_by"] == "2026-10-30T23:59:59.999999-04:00"
    assert summaries[0].max_days_late is None and summaries[0].median_days_late is None
