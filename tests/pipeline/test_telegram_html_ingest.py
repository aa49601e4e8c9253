"""A Telegram Desktop HTML export (folder zipped) through `twentyday ingest`, `search` and `alerts`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from tests.parsers.conftest import zip_dir
from twentyday.cli import cli

EXPORT = Path(__file__).resolve().parents[1] / "data" / "telegram" / "html_export"


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def test_html_export_zip_is_ingested_once_with_times_flags_and_alerts(archive_dir: Path, tmp_path: Path) -> None:
    export = zip_dir(EXPORT, tmp_path / "ChatExport_2023-08-06.zip")

    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))
    assert code == 0, output
    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--limit", "100")
    assert code == 0, output
    records = sorted(json.loads(output), key=lambda r: r["created_at"])
    assert [r["sender"] for r in records] == ["Dana Reyes"] * 3 + ["Eli Park"] * 2
    assert {r["platform"] for r in records} == {"telegram"} and {r["conversation"] for r in records} == {"Budget"}
    # 09:14 EDT on 5 August 2023 (the page says UTC-05:00, New York's standard offset).
    first = datetime.fromisoformat(records[0]["created_at"])
    assert first.astimezone(UTC).replace(second=0) == datetime(2023, 8, 5, 13, 14, tzinfo=UTC)
    assert records[3]["flags"] == ["media_omitted"] and records[4]["flags"] == ["forwarded"]
    assert not any(r["status"] == "undated" for r in records)

    code, output = run(archive_dir, "alerts", "--json")
    assert code == 0, output
    kinds = {alert["kind"] for alert in json.loads(output)}
    assert "incomplete_copy" in kinds and "deleted_message" in kinds
    assert not any("quarantine" in kind for kind in kinds) and "thread_gap" not in kinds

    # The same export dropped again adds nothing.
    again = zip_dir(EXPORT, tmp_path / "again.zip")
    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(again))
    assert code == 0, output
    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--limit", "100")
    assert len(json.loads(output)) == 5
