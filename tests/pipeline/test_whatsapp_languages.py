"""A Spanish iPhone WhatsApp zip through `twentyday ingest`: every participant line is a record."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from twentyday.cli import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "whatsapp"
NEW_YORK = ZoneInfo("America/New_York")  # jdoe's zone in the archive init writes


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def test_a_spanish_iphone_export_is_ingested_with_its_placeholders_and_deletions_as_records(
    archive_dir: Path, tmp_path: Path
) -> None:
    export = tmp_path / "WhatsApp Chat - Equipo Proyecto.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.writestr("_chat.txt", (DATA / "ios_spanish_group.txt").read_bytes())

    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))
    assert code == 0, output

    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--limit", "100")
    assert code == 0, output
    records = sorted(json.loads(output), key=lambda r: r["created_at"])
    assert len(records) == 18  # 7 before this change: the rest were system events
    by_flag: dict[str, list[str]] = {}
    for record in records:
        for flag in record["flags"] or ["(none)"]:
            by_flag.setdefault(flag, []).append(record["sender"])
    # The photo named in the chat is not in this zip: referenced, and omitted from the copy.
    assert {flag: len(senders) for flag, senders in by_flag.items()} == {
        "(none)": 7, "media_omitted": 8, "deleted": 2, "unrecognised_line": 1, "media_referenced": 1,
    }
    first_omitted = next(r for r in records if "media_omitted" in r["flags"])
    assert (first_omitted["sender"], datetime.fromisoformat(first_omitted["created_at"])) == (
        "Ana Ruiz", datetime(2022, 3, 18, 14, 58, 3, tzinfo=NEW_YORK)
    )

    code, output = run(archive_dir, "alerts", "--json")
    assert code == 0, output
    assert "quarantined" not in " ".join(sorted(alert["kind"] for alert in json.loads(output)))


def test_a_portuguese_android_export_is_ingested_with_its_edit_location_and_view_once_as_records(
    archive_dir: Path, tmp_path: Path
) -> None:
    export = tmp_path / "WhatsApp Chat with Obra Itu.txt"
    export.write_bytes((DATA / "android_pt_br_group.txt").read_bytes())

    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))
    assert code == 0, output
    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--limit", "100")
    assert code == 0, output
    records = sorted(json.loads(output), key=lambda r: r["created_at"])
    assert len(records) == 10
    edited = next(r for r in records if r["created_at"].startswith("2023-01-13T09:02"))
    assert datetime.fromisoformat(edited["created_at"]) == datetime(2023, 1, 13, 9, 2, tzinfo=NEW_YORK)
    assert [r["flags"] for r in records].count(["media_omitted"]) == 2  # <Mídia oculta> and the view-once "null"
    assert not any("unrecognised_line" in r["flags"] for r in records)
