"""One custodian's autumn, ingested through the real pipeline with the times it arrived at.

Jane Doe (jdoe, America/New_York, calendar rule, 20 days):

- "Budget Team" (WhatsApp): export A, 2026-09-01..05 at 09:00 local, one message deleted, received
  2026-09-06 12:00 UTC: all on time. Export B, 2026-10-01..10, received 2026-10-24 12:00 UTC: the
  first three late by 3, 2 and 1 days, the rest on time. A hole from 09-05 09:00 to 10-01 09:00;
  coverage ends 10-10 09:00, so the next export is due by 2026-10-30 23:59:59.999999 EDT.
- "Ops" (WhatsApp): 2026-09-10 at 09:00 and 10:00, received 2026-09-20 12:00 UTC: on time; due
  by 2026-09-30 23:59:59.999999 EDT.
- a forwarded mail written 2026-09-10 12:00 UTC, received 2026-10-28 10:00 UTC: 28 days late;
- a forwarded mail without a date, received 2026-10-28 10:30 UTC: undated.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import make_mail
from twentyday.pipeline import process as pipeline
from twentyday.store.archive import Archive

AS_OF = datetime(2026, 10, 28, 12, 0, tzinfo=UTC)


def whatsapp(path: Path, lines: list[tuple[datetime, str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{t:%m/%d/%y}, {t:%H:%M} - {who}: {text}\n" for t, who, text in lines))
    return path


def ingest(archive: Archive, path: Path, received: datetime, name: str | None = None) -> str:
    outcome = pipeline.process(archive, pipeline.Item(name or path.name, "cli", received, path=path,
                                                      custodian_id="jdoe"))
    assert outcome.state == "ingested", outcome.detail
    return outcome.capture_id


def autumn(archive: Archive, folder: Path) -> dict[str, str]:
    """Ingest the scenario; returns the capture ids by name (a, b, ops, late_mail, undated_mail)."""
    chat = "WhatsApp Chat with Budget Team.txt"
    nine = datetime(2026, 9, 1, 9, 0)
    first = [(nine + timedelta(days=n), "Jane Doe" if n % 2 else "Counterpart", f"september {n}") for n in range(5)]
    first[2] = (first[2][0], "Counterpart", "This message was deleted")
    second = [(nine + timedelta(days=30 + n), "Jane Doe" if n % 2 else "Counterpart", f"october {n}")
              for n in range(10)]
    ops = [(datetime(2026, 9, 10, 9, 0), "Jane Doe", "ops one"), (datetime(2026, 9, 10, 10, 0), "Counterpart", "two")]
    captures = {
        "a": ingest(archive, whatsapp(folder / "a" / chat, first), datetime(2026, 9, 6, 12, tzinfo=UTC)),
        "ops": ingest(archive, whatsapp(folder / "o" / "WhatsApp Chat with Ops.txt", ops),
                      datetime(2026, 9, 20, 12, tzinfo=UTC)),
        "b": ingest(archive, whatsapp(folder / "b" / chat, second), datetime(2026, 10, 24, 12, tzinfo=UTC)),
    }
    late = folder / "late.eml"
    late.write_bytes(make_mail(date=datetime(2026, 9, 10, 12, tzinfo=UTC), message_id="<late@example.test>"))
    captures["late_mail"] = ingest(archive, late, datetime(2026, 10, 28, 10, tzinfo=UTC))
    undated = folder / "undated.eml"
    undated.write_bytes(make_mail(date=None, message_id="<undated@example.test>", subject="no date"))
    captures["undated_mail"] = ingest(archive, undated, datetime(2026, 10, 28, 10, 30, tzinfo=UTC))
    return captures
