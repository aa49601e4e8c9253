"""`twentyday report --unauthorized-disposition`: the draft notice under 36 CFR 1230.14, from real exports."""

from __future__ import annotations

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from markdown_it import MarkdownIt

from tests.scenario import ingest
from twentyday.cli import cli
from twentyday.store.archive import Archive

DATA = Path(__file__).resolve().parents[1] / "data"
#: A WhatsApp chat whose name is a stranger's: Markdown and HTML in it must stay text.
HOSTILE = "Site <img src=x onerror=alert(1)> *Crew* [x](javascript:y) | col"
AS_OF = "2026-11-30T12:00:00+00:00"


def report(archive_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "report",
                                    "--unauthorized-disposition", *args])


def configure(archive_dir: Path, *, agency: str, office: str) -> None:
    """The optional keys: the agency's name (top level) and the custodian's office (its entry, the last table)."""
    config = archive_dir / "twentyday.toml"
    rule = 'deadline_rule = "calendar"\n'
    text = config.read_text().replace(rule, f'{rule}agency = "{agency}"\n')
    config.write_text(text + f'office = "{office}"\n')


@pytest.fixture
def findings(archive: Archive, archive_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Two overlapping WhatsApp exports of one chat (two deleted-message placeholders, disappearing
    messages turned on once), and a Telegram export (a history cleared, disappearing messages set)."""
    first = tmp_path / "1" / f"WhatsApp Chat with {HOSTILE}.txt"
    first.parent.mkdir()
    shutil.copy(DATA / "whatsapp" / "android_media_deleted_edited.txt", first)
    second = tmp_path / "2" / first.name
    second.parent.mkdir()
    second.write_bytes(first.read_bytes() + b"11/19/22, 9:02 AM - Bob Jones: and one more\n")
    telegram = tmp_path / "result.json"
    shutil.copy(DATA / "telegram" / "full_export" / "result.json", telegram)
    return {"whatsapp_1": ingest(archive, first, datetime(2026, 11, 20, 15, tzinfo=UTC)),
            "whatsapp_2": ingest(archive, second, datetime(2026, 11, 25, 15, tzinfo=UTC)),
            "telegram": ingest(archive, telegram, datetime(2026, 11, 26, 15, tzinfo=UTC))}


def test_the_draft_states_the_five_elements_from_the_findings_and_ends_with_a_signature_block(
        findings: dict[str, str], archive_dir: Path) -> None:
    configure(archive_dir, agency="Department of Examples", office="Office of Field Operations")
    delivered = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "alerts", "deliver",
                                         "--as-of", "2026-11-27T08:00:00+00:00"])
    assert delivered.exit_code == 0, delivered.output
    result = report(archive_dir, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    text = result.stdout
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## (a) Description of the records, with volume and dates",
                        "## (b) Office maintaining the records",
                        "## (c) Circumstances of the alienation, defacing, or destruction",
                        "## (d) Safeguards established to prevent further loss",
                        "## (e) Actions taken to salvage, retrieve, or reconstruct the records",
                        "## Submitted by"]
    assert text.startswith("# DRAFT: report of unauthorized disposition of Federal records (36 CFR 1230.14)\n")
    chat = ("Site &lt;img src\\=x onerror\\=alert\\(1\\)&gt; \\*Crew\\* \\[x\\]\\(javascript\\:y\\) \\| col")
    # (a): the same two placeholders in both exports are two messages, not four.
    assert (f"- 2 message(s) in conversation “{chat}” on WhatsApp appear as deleted-message placeholders, dated "
            "between 2022-11-18 20:44 EST and 2022-11-18 20:45 EST; shown by 2 export(s).") in text
    assert (f"- 1 entr(ies) in conversation “{chat}” on WhatsApp appear as settings or notices of disappearing "
            "messages (messages set to vanish), dated 2022-11-18 20:48 EST; shown by 2 export(s).") in text
    # (b) from the config; (c) each export's own facts with its capture and when it arrived.
    assert "- Agency: Department of Examples\n- Jane Doe (custodian id jdoe): Office of Field Operations\n" in text
    assert (f"- The WhatsApp export received 2026-11-20 10:00 EST (capture {findings['whatsapp_1']}) showed 2 "
            f"message(s) in conversation “{chat}” as deleted-message placeholders, dated between 2022-11-18 "
            "20:44 EST and 2022-11-18 20:45 EST.") in text
    assert f"(capture {findings['whatsapp_2']}) showed 2 message(s)" in text
    assert (f"- The Telegram export received 2026-11-26 10:00 EST (capture {findings['telegram']}) showed 1 entr(ies) "
            "in conversation “Project Team” as notices that the chat history was cleared, dated 2023-11-14 17:14 "
            "EST.") in text
    assert ("Volume: 3 message(s) or entr(ies) showing deletion and 2 entr(ies) showing disappearing messages, "
            "in 3 conversation(s).") in text
    # (d) what twentyday did: the captures kept sealed, the alerts and where their notices went.
    assert (f"- Every export that showed these findings (3: {', '.join(sorted(findings.values()))}) is kept in the "
            "archive sealed as received") in text
    assert "  - opened notice by journal to journal: delivered 2026-11-27 03:00 EST\n" in text
    # Named in the preamble, then left for the circumstances, safeguards, actions and NARA's postal address.
    assert text.count("**[TO BE COMPLETED BY THE AGENCY]**") == 5
    assert ("Name: " + "\\_" * 32 + "  \nTitle: " + "\\_" * 32 + "  \nAgency: Department of Examples  \n"
            "Date: " + "\\_" * 32) in text
    assert "<UnauthorizedDisposition@nara.gov>" in text
    for verdict in ("violation", "intentional", "suspicious", "unlawful"):
        assert verdict not in text.lower()


def test_a_conversation_name_with_markdown_and_html_stays_text(findings: dict[str, str], archive_dir: Path) -> None:
    text = report(archive_dir, "--as-of", AS_OF).stdout
    page = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in page and "<em>" not in page
    # The only links are the two to NARA; the name's own is text.
    assert re.findall(r'href="([^"]*)"', page) == ["mailto:UnauthorizedDisposition@nara.gov"] * 2 + [
        "https://www.archives.gov/records-mgmt/resources/unauthorized-dispositions"]
    # Rendered, the name reads as it came, once per place it is named, and the tables keep their columns.
    assert page.count("Site &lt;img src=x onerror=alert(1)&gt; *Crew* [x](javascript:y) | col") >= 6
    assert all(row.count("<td") == 7 for row in page.split("<tr>")[1:] if "<td" in row)


def test_without_findings_it_says_so_and_exits_0(archive_dir: Path, tmp_path: Path) -> None:
    result = report(archive_dir, "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert ("No deleted-message or disappearing-messages findings in the archive as of "
            "2026-11-30T12:00:00+00:00: there is nothing for this report to describe.") in result.stdout
    assert "## (a)" not in result.stdout


def test_as_of_leaves_out_later_captures_and_custodian_and_out(findings: dict[str, str], archive_dir: Path,
                                                               tmp_path: Path) -> None:
    early = report(archive_dir, "--as-of", "2026-11-21T00:00:00+00:00").stdout
    assert "shown by 1 export(s)" in early and "Telegram" not in early and findings["whatsapp_2"] not in early
    out = tmp_path / "notice.md"
    out.write_text("old")
    os.chmod(out, 0o644)
    written = report(archive_dir, "--as-of", AS_OF, "--custodian", "jdoe", "--out", str(out))
    assert written.exit_code == 0 and written.stdout == f"report:    {out}\n"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert out.read_text() == report(archive_dir, "--as-of", AS_OF, "--custodian", "jdoe").stdout
    unknown = report(archive_dir, "--custodian", "nobody")
    assert unknown.exit_code == 7 and "no custodian 'nobody'" in unknown.output
    both = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "report", "--html",
                                    str(tmp_path / "r.html"), "--unauthorized-disposition"])
    assert both.exit_code == 2 and "choose one of --html PATH and --unauthorized-disposition" in both.output
