"""The HTML transcript in a real browser, the bag validated by LoC's bagit-python, a disposed record."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
from collections import Counter
from datetime import UTC, datetime

import bagit

from tests.export.conftest import Officer, unzip
from tests.png import pixels
from tests.scenario import ingest, whatsapp
from tests.system.test_report_browser import chromium, close, screenshot
from twentyday import config as config_module
from twentyday.export.nara import METADATA_ELEMENTS
from twentyday.store.archive import Archive

HOSTILE = "<script>document.title='owned'</script><img src=x onerror=\"document.title='owned'\">"


def add_hostile_chat(officer: Officer) -> None:
    chat = whatsapp(officer.tmp / "h" / "WhatsApp Chat with Night Desk.txt", [
        (datetime(2026, 10, 2, 9, 0), "Counterpart", HOSTILE),
        (datetime(2026, 10, 2, 9, 5), "Jane Doe", "plain words after the markup"),
    ])
    with Archive(config_module.load(officer.config)) as archive:
        ingest(archive, chat, datetime(2026, 10, 3, 12, tzinfo=UTC))


def test_the_html_transcript_opens_in_chromium_escaped_with_the_messages_and_marks(officer: Officer) -> None:
    add_hostile_chat(officer)
    out = officer.tmp / "html.zip"
    result = officer.export("html", out, "--custodian", "jdoe", "--platform", "whatsapp")
    assert result.exit_code == 0, result.output
    folder = unzip(out, officer.tmp / "opened")
    pages = {p.name: p for p in (folder / "conversations").glob("*.html")}
    assert sorted(pages) == ["001_budget-team.html", "002_ops.html", "003_night-desk.html"]
    budget = pages["001_budget-team.html"].read_text()
    assert "Content-Security-Policy" in budget and "default-src &#x27;none&#x27;" not in budget
    assert "<script" not in budget.lower() and "<script" not in pages["003_night-desk.html"].read_text().lower()
    assert "deleted (the export showed a deletion placeholder)" in budget
    assert "2026-09-01T09:00:00-04:00" in budget and "in zone America/New_York" in budget

    page = pages["003_night-desk.html"]
    dom = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>Conversation: Night Desk</title>" in dom.stdout  # no script ran: the title is ours
    assert "plain words after the markup" in dom.stdout
    assert "&lt;script&gt;document.title='owned'&lt;/script&gt;" in dom.stdout
    assert "<img" not in dom.stdout and "<script" not in dom.stdout

    png = officer.tmp / "budget.png"
    screenshot(pages["001_budget-team.html"], png)
    width, height, seen = pixels(png)
    assert (width, height) == (1200, 900)
    colours = Counter(seen)
    assert len(colours) > 20  # text, the notice box, message bars: not a blank page
    assert colours.most_common(1)[0][1] < 0.95 * len(seen)
    assert any(close(c, (0xFD, 0xF0, 0xF0)) for c in colours)  # the notice box's background was drawn


def test_the_bag_validates_with_bagit_and_carries_eml_json_html_and_the_nara_metadata(officer: Officer) -> None:
    out = officer.tmp / "bag.zip"
    result = officer.export("bagit", out, "--custodian", "jdoe")
    assert result.exit_code == 0, result.output
    folder = unzip(out, officer.tmp / "opened")
    [root] = list(folder.iterdir())
    bag = bagit.Bag(str(root))
    bag.validate()  # raises BagValidationError on any difference
    assert bag.info["External-Identifier"] == root.name
    assert sorted(bag.algorithms) == ["sha256", "sha512"]
    payload = sorted(bag.payload_files())
    assert len([p for p in payload if p.startswith("data/mail/") and p.endswith(".eml")]) == 2
    assert "data/json/records.jsonl" in payload and "data/html/index.html" in payload
    chats = [json.loads(line) for line in (root / "data" / "json" / "records.jsonl").read_text().splitlines()]
    assert len(chats) == 17 and {c["platform"] for c in chats} == {"whatsapp"}
    assert (root / "NOTICE.txt").exists()
    rows = list(csv.reader(io.StringIO((root / "data" / "metadata.csv").read_text()), delimiter="|"))
    assert tuple(rows[0]) == METADATA_ELEMENTS
    described = {row[0] for row in rows[1:]}
    assert described == {p for p in payload if p != "data/metadata.csv" and p != "data/html/index.html"}
    mail_row = next(row for row in rows[1:] if row[0].endswith(".eml") and row[2] == "Meeting notes")
    assert mail_row[4] == "jane.doe@gmail.com" and mail_row[5] == "2026-09-10T12:00:00+00:00"


def test_a_record_whose_content_is_gone_is_left_out_named_and_accounted_as_failed(officer: Officer) -> None:
    ops = officer.search("--conversation", "Ops")
    with sqlite3.connect(officer.dir / "data" / "index.db") as conn:  # what disposal leaves: no content blob
        blob = conn.execute("SELECT content_blob FROM record WHERE id = ?", (ops[0]["id"],)).fetchone()[0]
        conn.execute("DELETE FROM chunk WHERE blob_id = ?", (blob,))
        conn.execute("DELETE FROM blob WHERE id = ?", (blob,))
    out = officer.tmp / "all.zip"
    result = officer.export("jsonl", out, "--custodian", "jdoe")
    assert result.exit_code == 0, result.output
    for record in ops:
        assert f"left out:   {record['id']}: content not in the archive (disposed of, or missing)" in result.output
    folder = unzip(out, officer.tmp / "opened")
    manifest = json.loads((folder / "EXPORT.json").read_text())
    assert (manifest["records"], manifest["exported"]) == (19, 17)
    assert sorted(x["id"] for x in manifest["left_out"]) == sorted(r["id"] for r in ops)
    exported, failed = officer.audit()
    assert (exported["action"], exported["record_count"]) == ("export", 19)
    assert (failed["action"], failed["record_count"], failed["recipient_address"]) == \
        ("failed", 2, "1 Example Plaza, Washington, DC 20001")
    assert failed["subjects"] == sorted(r["id"] for r in ops)
