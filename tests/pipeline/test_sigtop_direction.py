"""sigtop's three formats through `twentyday ingest`: the custodian's outgoing messages are filed as sent.

sigtop names the exporting account "You"; no custodian is configured under that word, so the parser
gives an outgoing message the custodian's own identity (and keeps "You" beside it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from twentyday.cli import cli

SIGTOP = Path(__file__).resolve().parents[1] / "data" / "signal" / "sigtop"


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(("sample", "outgoing"), [
    ("Alice Example.txt", 1),  # -f text: Type: outgoing
    ("Alice Example.json", 1),  # -f json: "type": "outgoing"
    ("text-short/Alice Example.txt", 3),  # -f text-short: "You:"
])
def test_outgoing_messages_are_the_custodians_and_filed_as_sent(archive_dir: Path, tmp_path: Path,
                                                                 sample: str, outgoing: int) -> None:
    export = tmp_path / Path(sample).name
    shutil.copy(SIGTOP / sample, export)
    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(export))
    assert code == 0, output

    code, output = run(archive_dir, "search", "--json", "--platform", "signal", "--limit", "100")
    assert code == 0, output
    records = json.loads(output)
    sent = [r for r in records if r["direction"] == "sent"]
    assert len(sent) == outgoing
    assert {r["sender"] for r in sent} == {"+12025550100"}  # the custodian's own number, not "You"
    assert not any(r["sender"] == "You" for r in records)
