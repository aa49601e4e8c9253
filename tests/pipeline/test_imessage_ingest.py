"""An imessage-exporter folder through `twentyday ingest`: records, directions, times and alerts."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from twentyday.cli import cli

DATA = Path(__file__).resolve().parents[1] / "data" / "imessage" / "txt-export"


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def test_a_text_export_is_ingested_with_sent_and_received_times_and_undated(archive_dir: Path,
                                                                           tmp_path: Path) -> None:
    export = tmp_path / "+15555550123.txt"
    shutil.copy(DATA / "+15555550123.txt", export)

    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))
    assert code == 0, output

    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--limit", "100")
    assert code == 0, output
    records = json.loads(output)
    assert len(records) == 12
    first = min((r for r in records if r["created_at"]), key=lambda r: r["created_at"])
    assert datetime.fromisoformat(first["created_at"]).astimezone(UTC) == datetime(2024, 3, 10, 4, 50, tzinfo=UTC)
    directions = {r["direction"] for r in records}
    assert directions == {"sent", "received"}
    sent = [r for r in records if r["direction"] == "sent"]
    assert {r["sender"] for r in sent} == {"+12025550100"}
    assert len(sent) == 4
    undated = [r for r in records if not r["created_at"]]
    assert len(undated) == 2 and all(r["status"] == "undated" for r in undated)

    code, output = run(archive_dir, "alerts", "--json")
    assert code == 0, output
    kinds = {alert["kind"] for alert in json.loads(output)}
    assert {"undated_record"} <= kinds
    assert not any("quarantine" in kind for kind in kinds)
