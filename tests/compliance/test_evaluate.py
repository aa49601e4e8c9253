"""Which condition alerts hold at a moment: the reminder's day, silence, gaps and thread gaps."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from twentyday.compliance.coverage import CaptureSpan
from twentyday.compliance.evaluate import CustodianFacts, Policy, ThreadGap, evaluate

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
POLICY = Policy(remind_after_days=14, silent_after_days=30, escalate_after_days=7, rule="calendar", days=20,
                zones={"jdoe": NEW_YORK, "ktanaka": TOKYO})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def export(capture: str, first: str, last: str, custodian: str = "jdoe", conversation: str = "Budget",
           received: str = "2026-06-01T12:00:00+00:00") -> CaptureSpan:
    return CaptureSpan(custodian, conversation, "whatsapp", capture, at(first), at(last), at(received))


def kinds(spans: list[CaptureSpan], now: str, custodians: tuple[CustodianFacts, ...] = (),
          gaps: tuple[ThreadGap, ...] = ()) -> list[tuple[str, str, str]]:
    return [f.key for f in evaluate(spans, custodians, gaps, POLICY, at(now))]


def test_the_reminder_opens_at_the_start_of_the_local_day_after_the_14th_across_dst() -> None:
    # Coverage ends 2026-03-01 12:00 EST. Day 14 is 2026-03-15, after DST began (EDT, UTC-4): the
    # reminder opens at 2026-03-16 00:00 EDT = 04:00 UTC, not at 05:00 UTC as EST would have it.
    spans = [export("cap-1", "2026-02-20T09:00:00-05:00", "2026-03-01T12:00:00-05:00")]
    assert kinds(spans, "2026-03-15T23:59:00-04:00") == []
    assert kinds(spans, "2026-03-16T00:01:00-04:00") == [("deadline_approaching", "jdoe", "Budget")]
    [reminder] = evaluate(spans, (), (), POLICY, at("2026-03-16T00:01:00-04:00"))
    assert reminder.facts == {
        "platform": "whatsapp", "covered_until": "2026-03-01T17:00:00+00:00",
        "export_by": "2026-03-21T23:59:59.999999-04:00", "remind_from": "2026-03-16T00:00:00-04:00",
        "last_capture": "cap-1", "rule": "calendar/20d"}
    assert reminder.since == at("2026-03-16T00:00:00-04:00")
    assert reminder.export_by == at("2026-03-21T23:59:59.999999-04:00")
    assert reminder.detail == ("coverage ends 2026-03-01T12:00-05:00 (cap-1); export by 2026-03-21T23:59-04:00 "
                               "(calendar/20d)")


def test_custodians_in_different_zones_get_their_reminder_on_their_own_day() -> None:
    # Both conversations end at the same instant, 2026-05-01 14:00 UTC: 10:00 in New York, 23:00 in Tokyo.
    spans = [export("cap-1", "2026-04-20T00:00:00+00:00", "2026-05-01T14:00:00+00:00"),
             export("cap-2", "2026-04-20T00:00:00+00:00", "2026-05-01T14:00:00+00:00", custodian="ktanaka")]
    # Tokyo's 14th day ends 2026-05-15 24:00 JST = 15:00 UTC; New York's 2026-05-16 04:00 UTC.
    assert kinds(spans, "2026-05-15T14:59:00+00:00") == []
    assert kinds(spans, "2026-05-15T15:01:00+00:00") == [("deadline_approaching", "ktanaka", "Budget")]
    assert kinds(spans, "2026-05-16T03:59:00+00:00") == [("deadline_approaching", "ktanaka", "Budget")]
    assert kinds(spans, "2026-05-16T04:01:00+00:00") == [("deadline_approaching", "jdoe", "Budget"),
                                                         ("deadline_approaching", "ktanaka", "Budget")]


def test_elapsed_rule_reminds_exactly_14_times_24_hours_after_coverage_ends() -> None:
    policy = Policy(14, 30, 7, "elapsed", 20, {"jdoe": NEW_YORK})
    spans = [export("cap-1", "2026-06-01T09:00:00-04:00", "2026-06-02T10:00:00-04:00")]
    assert evaluate(spans, (), (), policy, at("2026-06-16T10:00:00-04:00")) == []
    [reminder] = evaluate(spans, (), (), policy, at("2026-06-16T10:00:00.000002-04:00"))
    assert reminder.kind == "deadline_approaching"


def test_a_hole_between_exports_is_a_coverage_gap_until_an_export_spans_it() -> None:
    march = export("cap-1", "2026-03-01T09:00:00-05:00", "2026-03-31T18:00:00-04:00",
                   received="2026-04-01T12:00:00+00:00")
    may = export("cap-2", "2026-05-04T08:00:00-04:00", "2026-05-20T18:00:00-04:00",
                 received="2026-05-21T12:00:00+00:00")
    [gap] = [f for f in evaluate([march, may], (), (), POLICY, at("2026-05-22T00:00:00+00:00"))
             if f.kind == "coverage_gap"]
    assert gap.facts["holes"] == [{"from": "2026-03-31T22:00:00+00:00", "to": "2026-05-04T12:00:00+00:00",
                                   "before": ["cap-1"], "after": ["cap-2"]}]
    assert (gap.count, gap.since) == (1, at("2026-05-21T12:00:00+00:00"))
    whole = export("cap-3", "2026-03-01T09:00:00-05:00", "2026-05-21T10:00:00-04:00")
    assert kinds([march, may, whole], "2026-05-22T00:00:00+00:00") == []


def test_silent_custodian_after_30_days_and_never_one_without_personal_accounts() -> None:
    last = at("2026-04-01T15:00:00-04:00")
    jdoe = CustodianFacts("jdoe", 2, 5, last, "cap-9", at("2026-01-01T00:00:00+00:00"))
    nobody = CustodianFacts("ktanaka", 0, 0, None, None, at("2026-01-01T00:00:00+00:00"))
    # 30 days counted like the deadline: silent from 2026-05-02 00:00 in New York.
    assert kinds([], "2026-05-01T23:59:00-04:00", (jdoe, nobody)) == []
    [silent] = evaluate([], (jdoe, nobody), (), POLICY, at("2026-05-02T00:01:00-04:00"))
    assert silent.key == ("custodian_silent", "jdoe", "")
    assert silent.detail == "newest capture cap-9 received 2026-04-01T15:00-04:00; 2 personal account(s) registered"
    # Never heard from since the custodian was configured: silent 30 days after that.
    new = CustodianFacts("jdoe", 1, 0, None, None, at("2026-04-01T15:00:00-04:00"))
    assert kinds([], "2026-05-02T00:01:00-04:00", (new,)) == [("custodian_silent", "jdoe", "")]


def test_thread_gaps_become_findings_with_their_records() -> None:
    gap = ThreadGap("jdoe", "thread:ab12", "email", 2, ("rec-1", "rec-2"), ("cap-1",), at("2026-04-01T12:00:00+00:00"))
    [finding] = evaluate([], (), (gap,), POLICY, at("2026-04-02T00:00:00+00:00"))
    assert finding.key == ("thread_gap", "jdoe", "thread:ab12")
    assert finding.facts == {"platform": "email", "records": 2, "record_ids": ["rec-1", "rec-2"], "captures": ["cap-1"]}
    assert finding.detail == "2 record(s) reply to a message that is not in the archive (first rec-1)"


def test_escalation_after_seven_days_or_when_export_by_passes() -> None:
    opened = at("2026-03-16T04:00:00+00:00")
    assert POLICY.escalates_at(opened, None) == at("2026-03-23T04:00:00+00:00")
    export_by = at("2026-03-21T23:59:59.999999-04:00")
    assert POLICY.escalates_at(opened, export_by) == at("2026-03-22T00:00:00-04:00")
