"""``capture_span``, kept by the writer as each capture is written, is what grouping every record
and link by capture gives (the read the clock made before the table), through the real pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils

from tests.conftest import make_mail
from tests.store.conftest import not_on_postgresql
from tests.store.test_coverage import export, ingest
from twentyday.store import schema
from twentyday.store.archive import Archive
from twentyday.store.coverage import capture_spans, span_differences

#: What each capture holds, grouped from every record (its earliest capture) and every later link.
GROUPED = """
SELECT capture_id, custodian, conversation, platform, min(created_utc), max(created_utc), count(*) FROM (
    SELECT capture_id, custodian, conversation, platform, created_utc FROM record WHERE created_utc IS NOT NULL
    UNION ALL
    SELECT l.capture_id, r.custodian, r.conversation, r.platform, r.created_utc
    FROM record_capture l JOIN record r ON r.id = l.record_id WHERE r.created_utc IS NOT NULL
) AS dated GROUP BY capture_id, custodian, conversation, platform ORDER BY 1, 2, 3, 4
"""


def stored(archive: Archive) -> list[tuple[object, ...]]:
    return archive.conn.execute(
        "SELECT capture_id, custodian, conversation, platform, first_utc, last_utc, messages FROM capture_span "
        "ORDER BY 1, 2, 3, 4").fetchall()


def test_overlapping_exports_and_a_re_export_keep_the_same_spans_as_the_grouped_read(
        archive: Archive, tmp_path: Path) -> None:
    day = datetime(2026, 9, 1, 9, 0)
    september = [(day + timedelta(days=n), f"first {n}") for n in range(6)]
    october = [(day + timedelta(days=30 + n), f"second {n}") for n in range(4)]
    budget, parks = "WhatsApp Chat with Budget Team.txt", "WhatsApp Chat with Parks.txt"
    for folder in "abcde":
        (tmp_path / folder).mkdir()
    ingest(archive, export(tmp_path / "a" / budget, september), datetime(2026, 9, 8, 12, tzinfo=UTC))
    # Overlaps the first: its last three September messages are links to records archived already.
    ingest(archive, export(tmp_path / "b" / budget, [*september[3:], *october]), datetime(2026, 10, 6, 12, tzinfo=UTC))
    ingest(archive, export(tmp_path / "c" / parks, october), datetime(2026, 10, 7, 12, tzinfo=UTC))
    # A re-export of the whole Budget history: nothing new but one message, everything else linked.
    ingest(archive, export(tmp_path / "d" / budget, [*september, (day + timedelta(days=15), "middle"), *october]),
           datetime(2026, 10, 8, 12, tzinfo=UTC))
    mail = tmp_path / "e" / "m.eml"
    mail.write_bytes(make_mail(date=datetime(2026, 10, 8, 9, tzinfo=UTC)))
    ingest(archive, mail, datetime(2026, 10, 8, 13, tzinfo=UTC))

    assert stored(archive) == archive.conn.execute(GROUPED).fetchall()
    assert span_differences(archive.conn) == []
    budget_spans = [(s.messages, s.first.date().isoformat(), s.last.date().isoformat())
                    for s in capture_spans(archive.conn) if s.conversation == "Budget Team"]
    assert sorted(budget_spans) == [(6, "2026-09-01", "2026-09-06"), (7, "2026-09-04", "2026-10-04"),
                                    (11, "2026-09-01", "2026-10-04")]
    assert [s.platform for s in capture_spans(archive.conn, chat_only=False)].count("email") == 1
    # As the archive stood before the re-export: its links and its one new record held nothing yet.
    before = [s.messages for s in capture_spans(archive.conn, as_of=datetime(2026, 10, 7, 23, tzinfo=UTC))
              if s.conversation == "Budget Team"]
    assert sorted(before) == [6, 7]


@not_on_postgresql("an index in PostgreSQL is made whole by pg_schema.create, never migrated from an older "
                   "schema (store/pg_schema.py)")
def test_upgrading_an_archive_fills_the_table_from_its_records(archive: Archive, tmp_path: Path) -> None:
    day = datetime(2026, 9, 1, 9, 0)
    chat = "WhatsApp Chat with Budget Team.txt"
    for folder in "ab":
        (tmp_path / folder).mkdir()
    ingest(archive, export(tmp_path / "a" / chat, [(day + timedelta(days=n), f"m {n}") for n in range(5)]),
           datetime(2026, 9, 8, 12, tzinfo=UTC))
    ingest(archive, export(tmp_path / "b" / chat, [(day + timedelta(days=n), f"m {n}") for n in range(2, 8)]),
           datetime(2026, 9, 10, 12, tzinfo=UTC))
    written = stored(archive)
    # The archive as the schema before the table left it, then migrated.
    archive.conn.execute("DROP TABLE capture_span")
    # Up to the migration that made the table (later ones are not this test's).
    made = next(n for n, script in enumerate(schema.MIGRATIONS, start=1) if "CREATE TABLE capture_span" in script)
    archive.conn.execute(f"PRAGMA user_version = {made - 1}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:made])
        assert schema.migrate(sqlite_utils.Database(archive.conn), adopt=lambda conn, version: None) == made
    archive.conn.execute(f"PRAGMA user_version = {len(schema.MIGRATIONS)}")
    assert stored(archive) == written
    assert sorted(row[-1] for row in written) == [5, 6]  # five new; then three new and three linked
