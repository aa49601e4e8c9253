"""Signal exports through `twentyday ingest`: the custodian's own messages are filed as sent.

sigtop names the exporting account "You", signal-export "Me" (and marks its bubbles "me" in HTML); no
custodian is configured under those words, so the parser gives such a message the custodian's own
identity (and keeps the word beside it).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from twentyday.cli import cli

SIGNAL = Path(__file__).resolve().parents[1] / "data" / "signal"
SIGTOP = SIGNAL / "sigtop"


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def ingested(archive_dir: Path, export: Path) -> list[dict[str, str]]:
    """Ingest ``export`` as jdoe's; every Signal record the archive then holds, as ``search --json`` gives it."""
    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))
    assert code == 0, output
    code, output = run(archive_dir, "search", "--json", "--platform", "signal", "--limit", "100")
    assert code == 0, output
    records: list[dict[str, str]] = json.loads(output)
    return records


@pytest.mark.parametrize(("sample", "outgoing"), [
    ("Alice Example.txt", 1),  # -f text: Type: outgoing
    ("Alice Example.json", 1),  # -f json: "type": "outgoing"
    ("text-short/Alice Example.txt", 3),  # -f text-short: "You:"
])
def test_outgoing_messages_are_the_custodians_and_filed_as_sent(archive_dir: Path, tmp_path: Path,
                                                                 sample: str, outgoing: int) -> None:
    export = tmp_path / Path(sample).name
    shutil.copy(SIGTOP / sample, export)
    records = ingested(archive_dir, export)
    sent = [r for r in records if r["direction"] == "sent"]
    assert len(sent) == outgoing
    assert {r["sender"] for r in sent} == {"+12025550100"}  # the custodian's own number, not "You"
    assert not any(r["sender"] == "You" for r in records)


@pytest.mark.parametrize(("folder", "outgoing"), [
    ("signal-export/AliceExample", 3),  # chat.md: "Me:"
    ("signal-export/ProjectTeam", 2),  # data.json: "sender": "Me"
    ("signal-export-html/3.9/Alice Example", 3),  # index.html: class="msg me"
])
def test_signal_export_messages_from_me_are_the_custodians(archive_dir: Path, tmp_path: Path, folder: str,
                                                            outgoing: int) -> None:
    root = SIGNAL / folder
    export = tmp_path / f"{root.name}.zip"
    with zipfile.ZipFile(export, "w") as archive:  # zipped, as the guide says to give a folder
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, f"{root.name}/{path.relative_to(root).as_posix()}")
    records = ingested(archive_dir, export)
    sent = [r for r in records if r["direction"] == "sent"]
    assert len(sent) == outgoing
    assert {r["sender"] for r in sent} == {"+12025550100"}
    assert not any(r["sender"] == "Me" for r in records)
