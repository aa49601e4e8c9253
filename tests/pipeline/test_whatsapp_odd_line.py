"""One odd WhatsApp header through `twentyday ingest`: the export is ingested, that message undated."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from click.testing import CliRunner

from tests.chatgen import us_twelve_hour_export
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.store.archive import Archive

START = datetime(2018, 1, 29, 23, 29)  # message 30 falls at 23:59
NEW_YORK = ZoneInfo("America/New_York")  # jdoe's zone in the archive init writes


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def test_an_export_with_one_odd_header_is_ingested_with_that_message_undated(
    archive_dir: Path, tmp_path: Path
) -> None:
    export = tmp_path / "WhatsApp Chat with Counterpart.txt"
    export.write_text(us_twelve_hour_export(50, START, odd={30: "1/29/18, 23:59 PM"}), encoding="utf-8")

    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))

    assert code == 0, output
    assert output.startswith("ingested ")
    archive = Archive(config_module.load(archive_dir / "twentyday.toml"))
    try:
        [(state, count)] = archive.conn.execute("SELECT state, message_count FROM capture").fetchall()
    finally:
        archive.close()
    assert (state, count) == ("ingested", 50)

    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--limit", "100")
    assert code == 0, output
    records = json.loads(output)
    assert len(records) == 50
    dated = sorted(datetime.fromisoformat(r["created_at"]) for r in records if r["created_at"])
    expected = [(START + timedelta(minutes=n)).replace(tzinfo=NEW_YORK) for n in range(50) if n != 30]
    assert dated == expected
    [undated] = [r for r in records if not r["created_at"]]
    assert (undated["status"], undated["sender"], undated["flags"]) == ("undated", "Counterpart", ["undated"])
    # The index holds how the time was (not) read; the text as written is sealed with the body.
    code, output = run(archive_dir, "show", str(undated["id"]), "--json", "--identity",
                       str(archive_dir / "officer.key"), "--purpose", "test")
    assert code == 0, output
    reading = json.loads(output)["time_reading"]
    assert reading["raw"] == "1/29/18, 23:59 PM"
    assert reading["layout"] == "whatsapp-android %m/%d/%y, %I:%M %p (not read: hour above 12 on a 12-hour clock)"
    assert {r["status"] for r in records if r["created_at"]} == {"late"}

    code, output = run(archive_dir, "alerts", "--json")
    assert code == 0, output
    kinds = {alert["kind"] for alert in json.loads(output)}
    assert "undated_record" in kinds
    assert "quarantined" not in " ".join(sorted(kinds))
