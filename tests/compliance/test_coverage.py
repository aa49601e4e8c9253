"""Coverage of a conversation: spans, holes, the end of coverage and the export-by date."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from twentyday.compliance.coverage import CaptureSpan, Hole, Span, coverage, export_by

NEW_YORK = ZoneInfo("America/New_York")
ZONES = {"jdoe": NEW_YORK, "asmith": ZoneInfo("Europe/Berlin")}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def span(capture: str, first: str, last: str, conversation: str = "Budget", custodian: str = "jdoe",
         received: str = "2026-06-01T12:00:00+00:00", truncated: bool = False) -> CaptureSpan:
    return CaptureSpan(custodian, conversation, "whatsapp", capture, at(first), at(last), at(received),
                       truncated=truncated)


def test_overlapping_exports_make_one_span_and_no_hole() -> None:
    [budget] = coverage([
        span("cap-2", "2026-03-10T09:00:00-04:00", "2026-04-20T18:00:00-04:00"),
        span("cap-1", "2026-03-01T09:00:00-05:00", "2026-03-31T18:00:00-04:00"),
    ], ZONES, "calendar", 20)
    assert budget.spans == (Span(at("2026-03-01T09:00:00-05:00"), at("2026-04-20T18:00:00-04:00"), ("cap-1", "cap-2")),)
    assert budget.holes == ()
    assert budget.covered_until == at("2026-04-20T18:00:00-04:00")
    assert budget.captures == 2


def test_an_export_that_starts_after_the_last_one_ended_leaves_a_hole_a_later_one_closes() -> None:
    march = span("cap-1", "2026-03-01T09:00:00-05:00", "2026-03-31T18:00:00-04:00")
    may = span("cap-2", "2026-05-04T08:00:00-04:00", "2026-05-20T18:00:00-04:00")
    [budget] = coverage([march, may], ZONES, "calendar", 20)
    assert budget.holes == (Hole(march.last, may.first, ("cap-1",), ("cap-2",)),)
    # A third export holding the whole history closes it.
    whole = span("cap-3", "2026-03-01T09:00:00-05:00", "2026-05-25T10:00:00-04:00")
    [budget] = coverage([march, may, whole], ZONES, "calendar", 20)
    assert budget.holes == ()
    assert budget.covered_until == whole.last
    # Touching (the next export starts at the very message the last one ended on) is no hole.
    [budget] = coverage([march, span("cap-4", "2026-03-31T18:00:00-04:00", "2026-04-02T10:00:00-04:00")],
                        ZONES, "calendar", 20)
    assert budget.holes == ()


def test_conversations_and_custodians_are_kept_apart_in_a_stable_order() -> None:
    found = coverage([
        span("cap-2", "2026-03-01T09:00:00+01:00", "2026-03-02T09:00:00+01:00", custodian="asmith"),
        span("cap-1", "2026-03-01T09:00:00-05:00", "2026-03-02T09:00:00-05:00", conversation="Travel"),
        span("cap-1", "2026-03-05T09:00:00-05:00", "2026-03-06T09:00:00-05:00", conversation="Budget"),
    ], ZONES, "calendar", 20)
    assert [(c.custodian, c.conversation) for c in found] == [("asmith", "Budget"), ("jdoe", "Budget"),
                                                              ("jdoe", "Travel")]


def test_export_by_is_the_deadline_of_the_first_message_after_coverage() -> None:
    # Calendar: the day coverage ends on is not counted; due at the end of the 20th local day.
    [budget] = coverage([span("cap-1", "2026-03-01T09:00:00-05:00", "2026-03-01T23:30:00-05:00")],
                        ZONES, "calendar", 20)
    assert budget.export_by == datetime(2026, 3, 21, 23, 59, 59, 999999, tzinfo=NEW_YORK)
    assert (budget.rule, budget.days) == ("calendar", 20)
    # In the custodian's zone: 23:30 in New York is already the next day in Berlin.
    [berlin] = coverage([span("cap-1", "2026-03-01T23:30:00-05:00", "2026-03-01T23:30:00-05:00",
                              custodian="asmith")], ZONES, "calendar", 20)
    assert berlin.export_by.astimezone(ZONES["asmith"]).date().isoformat() == "2026-03-22"
    # Elapsed: exactly days x 24 h after the last message held.
    [elapsed] = coverage([span("cap-1", "2026-03-01T09:00:00-05:00", "2026-03-01T23:30:00-05:00")],
                         ZONES, "elapsed", 20)
    assert elapsed.export_by == at("2026-03-21T23:30:00.000001-05:00")


def test_export_by_across_daylight_saving_time_in_new_york() -> None:
    # Coverage ends on 2026-03-01 (EST); 20 days later New York is on EDT: the deadline is the end
    # of that local day, 03:59:59.999999 UTC, not 04:59.
    due = export_by(at("2026-03-01T12:00:00-05:00"), NEW_YORK, "calendar", 20)
    assert due.astimezone(UTC) == datetime(2026, 3, 22, 3, 59, 59, 999999, tzinfo=UTC)
    # Coverage ending at the last microsecond of a day: the first message after it is on the next day.
    assert export_by(datetime(2026, 6, 1, 23, 59, 59, 999999, tzinfo=NEW_YORK), NEW_YORK, "calendar", 20).date() \
        == datetime(2026, 6, 22).date()


def test_truncated_exports_and_the_newest_capture_are_named() -> None:
    [budget] = coverage([
        span("cap-1", "2026-03-01T09:00:00-05:00", "2026-03-31T18:00:00-04:00", received="2026-04-02T12:00:00+00:00"),
        span("cap-2", "2026-04-01T09:00:00-04:00", "2026-05-31T18:00:00-04:00", received="2026-06-02T12:00:00+00:00",
             truncated=True),
    ], ZONES, "calendar", 20)
    assert budget.truncated == ("cap-2",)
    assert budget.last_received == at("2026-06-02T12:00:00+00:00")
    assert budget.holes == (Hole(at("2026-03-31T18:00:00-04:00"), at("2026-04-01T09:00:00-04:00"), ("cap-1",),
                                 ("cap-2",)),)
