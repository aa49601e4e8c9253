"""The coverage timeline read from a real archive: what each capture holds of each conversation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.conftest import make_mail
from twentyday.compliance.coverage import coverage
from twentyday.pipeline import process as pipeline
from twentyday.store.archive import Archive
from twentyday.store.coverage import capture_spans

NY = ZoneInfo("America/New_York")


def export(path: Path, lines: list[tuple[datetime, str]]) -> Path:
    path.write_text("".join(f"{t:%m/%d/%y}, {t:%H:%M} - Jane Doe: {text}\n" for t, text in lines))
    return path


def ingest(archive: Archive, path: Path, received: datetime) -> None:
    outcome = pipeline.process(archive, pipeline.Item(path.name, "cli", received, path=path, custodian_id="jdoe"))
    assert outcome.state == "ingested", outcome.detail


def test_two_exports_a_month_apart_with_a_gap_and_a_later_one_that_closes_it(archive: Archive, tmp_path: Path
                                                                            ) -> None:
    day = datetime(2026, 9, 1, 9, 0)
    march = [(day + timedelta(days=n), f"first {n}") for n in range(5)]
    april = [(day + timedelta(days=30 + n), f"second {n}") for n in range(5)]
    chat = "WhatsApp Chat with Budget Team.txt"
    for folder in "abc":
        (tmp_path / folder).mkdir()
    ingest(archive, export(tmp_path / "a" / chat, march), datetime(2026, 9, 6, 12, tzinfo=UTC))
    ingest(archive, export(tmp_path / "b" / chat, april), datetime(2026, 10, 6, 12, tzinfo=UTC))
    [budget] = coverage(capture_spans(archive.conn), {"jdoe": NY}, "calendar", 20)
    assert budget.conversation == "Budget Team"
    assert [(s.start.astimezone(NY).date().isoformat(), s.end.astimezone(NY).date().isoformat())
            for s in budget.spans] == [("2026-09-01", "2026-09-05"), ("2026-10-01", "2026-10-05")]
    assert len(budget.holes) == 1
    assert budget.export_by == datetime(2026, 10, 25, 23, 59, 59, 999999, tzinfo=NY)
    # As the archive stood before the second export arrived: one span, no hole.
    [before] = coverage(capture_spans(archive.conn, as_of=datetime(2026, 10, 1, tzinfo=UTC)), {"jdoe": NY},
                        "calendar", 20)
    assert (len(before.spans), before.holes) == (1, ())
    # A third export with the whole history closes the hole.
    ingest(archive, export(tmp_path / "c" / chat, [*march, (day + timedelta(days=15), "middle"), *april]),
           datetime(2026, 10, 7, 12, tzinfo=UTC))
    [budget] = coverage(capture_spans(archive.conn), {"jdoe": NY}, "calendar", 20)
    assert (len(budget.spans), budget.holes, budget.captures) == (1, (), 3)


def test_forwarded_mail_has_no_coverage(archive: Archive, tmp_path: Path) -> None:
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail())
    ingest(archive, mail, datetime(2026, 11, 22, 12, tzinfo=UTC))
    assert list(capture_spans(archive.conn)) == []
    assert [span.platform for span in capture_spans(archive.conn, chat_only=False)] == ["email"]


def test_each_span_carries_its_own_capture_time_and_one_per_capture_across_platforms(
        archive: Archive, tmp_path: Path) -> None:
    # The grouped read takes each span's receipt time from its capture: a span must never show
    # another capture's time, and a conversation seen on two platforms in one capture is one span.
    day = datetime(2026, 9, 1, 9, 0)
    chat = "WhatsApp Chat with Budget Team.txt"
    for folder in "ab":
        (tmp_path / folder).mkdir()
    first, second = datetime(2026, 9, 6, 12, tzinfo=UTC), datetime(2026, 10, 6, 12, tzinfo=UTC)
    ingest(archive, export(tmp_path / "a" / chat, [(day + timedelta(days=n), f"a {n}") for n in range(3)]), first)
    ingest(archive, export(tmp_path / "b" / chat, [(day + timedelta(days=30 + n), f"b {n}") for n in range(2)]),
           second)
    early = min(capture_spans(archive.conn), key=lambda span: span.received_at).capture_id
    # The same conversation on a second platform in the first capture (a row as the writer keeps it).
    archive.conn.execute("INSERT INTO capture_span (capture_id, custodian, conversation, platform, first_utc, "
                         "last_utc, messages) VALUES (?, 'jdoe', 'Budget Team', 'zz-other', "
                         "'2026-08-30T00:00:00Z', '2026-09-02T00:00:00Z', 4)", (early,))
    spans = [(s.capture_id == early, s.platform, s.received_at, s.messages, s.first.date().isoformat(),
              s.last.date().isoformat()) for s in capture_spans(archive.conn)]
    assert sorted(spans, key=lambda span: span[2]) == [
        (True, "zz-other", first, 7, "2026-08-30", "2026-09-03"),
        (False, "whatsapp", second, 2, "2026-10-01", "2026-10-02")]
