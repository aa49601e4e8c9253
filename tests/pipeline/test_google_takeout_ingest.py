"""A Google Takeout with Google Voice and Google Chat through `twentyday ingest`: both are archived."""

from __future__ import annotations

import json
import zipfile
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from click.testing import CliRunner

from twentyday.cli import cli

DATA = Path(__file__).resolve().parents[1] / "data"
JDOE_PHONE = "+12025550100"  # jdoe's personal number in the archive init writes


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def takeout_zip(out: Path) -> Path:
    with zipfile.ZipFile(out, "w") as archive:
        for root in (DATA / "google_chat", DATA / "google_voice"):
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.name != "SOURCES.md":
                    archive.write(path, path.relative_to(root).as_posix())
    return out


def test_a_takeout_with_voice_and_chat_is_ingested_whole(archive_dir: Path, tmp_path: Path) -> None:
    export = takeout_zip(tmp_path / "takeout-20240401T000000Z-001.zip")

    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))
    assert code == 0, output
    assert output.startswith("ingested "), output
    assert "google_takeout:" in output

    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--platform", "google_voice",
                       "--limit", "1000")
    assert code == 0, output
    voice = json.loads(output)
    # 66 texts, two voicemails and a recorded call; placed, received and missed calls are not records.
    assert len(voice) == 69
    code, output = run(archive_dir, "search", "--json", "--custodian", "jdoe", "--platform", "google_chat",
                       "--limit", "1000")
    assert code == 0, output
    assert len(json.loads(output)) > 0  # the Chat half of the same Takeout was not passed over

    # "Me" in Voice is the custodian: sent; everyone else's texts and voicemails: received.
    assert Counter(r["direction"] for r in voice) == Counter(sent=len([r for r in voice
                                                                       if r["sender"] == JDOE_PHONE]),
                                                             received=len([r for r in voice
                                                                           if r["sender"] != JDOE_PHONE]))
    calls = DATA / "google_voice" / "Takeout" / "Voice" / "Calls"
    owner_lines = sum(p.read_text(encoding="utf-8").count('<abbr class="fn"') for p in calls.glob("*.html"))
    assert sum(r["direction"] == "sent" for r in voice) == owner_lines + 1  # and the recorded call
    edson = [r for r in voice if r["conversation"] == "Edson Arantes do Nascimento"]
    assert [(r["sender"], r["direction"]) for r in edson[:2]] == [("+12123214444", "received"),
                                                                   ("+15703214444", "received")]  # voicemails
    pacific = timezone(timedelta(hours=-7))
    first_text = next(r for r in edson if r["direction"] == "sent")
    assert datetime.fromisoformat(first_text["created_at"]) == datetime(2023, 9, 19, 17, 54, 54, 915000,
                                                                        tzinfo=pacific)
    assert {r["status"] for r in voice} == {"late"}  # years before the archive's day; none undated

    code, output = run(archive_dir, "alerts", "--json")
    assert code == 0, output
    kinds = Counter(alert["kind"] for alert in json.loads(output))
    assert kinds["incomplete_copy"] >= 1  # the images and the recording the copy lacks
    assert "ingest_failed" not in kinds
