"""Attack: names that arrive with the input (a chat's name in an export, a custodian's name) try to
become markup or script in `twentyday report --html`, the page a records officer opens and hands on.

Defence: everything from input is HTML-escaped (text and attributes), the page carries no script
and a Content-Security-Policy that allows nothing but its own inline style (by hash). Checked with
Python's HTML parser and with the DOM a real browser (headless chromium) builds from the page.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from click.testing import CliRunner

from tests.scenario import AS_OF, ingest
from tests.system.test_report_browser import Timeline, chromium
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.store.archive import Archive

ATTACKS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>',
           "</title></text></svg><svg onload=alert(3)>", "' onmouseover='alert(4)")


def telegram(path: Path, name: str, chat_id: int) -> Path:
    path.write_text(json.dumps({"name": name, "type": "personal_chat", "id": chat_id, "messages": [
        {"id": 1, "type": "message", "date": "2026-09-01T09:00:00", "from": "Jane Doe", "from_id": 7, "text": "a"},
        {"id": 2, "type": "message", "date": "2026-09-03T09:00:00", "from": name, "from_id": 8, "text": "b"}]}))
    return path


def test_hostile_conversation_and_custodian_names_stay_text(archive_dir: Path, tmp_path: Path) -> None:
    config_path = archive_dir / "twentyday.toml"
    config_path.write_text(config_path.read_text().replace('name = "Jane Doe"',
                                                           "name = '\"><img src=x onerror=alert(5)>'"))
    with Archive(config_module.load(config_path)) as archive:
        for number, attack in enumerate(ATTACKS):
            ingest(archive, telegram(tmp_path / f"chat{number}.json", attack, 100 + number), AS_OF)
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--config", str(config_path), "report", "--html", str(page), "--as-of",
                                      AS_OF.isoformat(), "--evidence", "jdoe"])
    assert result.exit_code == 0, result.output
    text = page.read_text()

    parsed = Timeline()
    parsed.feed(text)
    assert (parsed.tags["script"], parsed.tags["img"], parsed.handlers) == (0, 0, [])
    assert parsed.tags["svg"] == 1  # the attack's "<svg" stayed text
    assert sorted(parsed.rows[0]) == sorted(ATTACKS)  # each name is there, whole, as an attribute's value
    for attack in ATTACKS:
        assert attack not in text
    assert "&quot;&gt;&lt;img src=x onerror=alert(5)&gt; (jdoe)" in text
    [policy] = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', text)
    assert policy.startswith("default-src 'none'; style-src 'sha256-") and "unsafe" not in policy

    # The DOM a browser builds from the page: no element or handler the names tried to make.
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    built = Timeline()
    built.feed(dom.stdout)
    assert (built.tags["script"], built.tags["img"], built.tags["svg"], built.handlers) == (0, 0, 1, [])
    assert len(built.rows[0]) == len(ATTACKS)
