"""`twentyday ingest --dry-run` on real exports, and ingest's progress line on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import zipfile
from datetime import datetime
from io import StringIO
from pathlib import Path

from click.testing import CliRunner

from tests.chatgen import write_export
from twentyday.cli import cli
from twentyday.pipeline.progress import TerminalProgress

DATA = Path(__file__).resolve().parents[1] / "data"
IOS = DATA / "whatsapp" / "ios_crlf_marks.txt"
ANDROID = DATA / "whatsapp" / "android_media_deleted_edited.txt"
TELEGRAM = DATA / "telegram" / "full_export" / "result.json"
HOSTILE = DATA / "sms" / "billion_laughs.xml"


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``root``: its modification time and its bytes."""
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def dry_run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "ingest", "--dry-run", *args])
    return result.exit_code, result.output


def test_dry_run_counts_a_real_whatsapp_export_and_leaves_the_archive_untouched(archive_dir: Path) -> None:
    before = snapshot(archive_dir)
    exports = snapshot(DATA / "whatsapp")

    code, output = dry_run(archive_dir, "--custodian", "jdoe", str(IOS))

    assert code == 0, output
    assert output.splitlines() == [
        "readable     ios_crlf_marks.txt",
        "  parser:     whatsapp",
        "  custodian:  jdoe (zone America/New_York, locale en_US)",
        "  records:    9 (0 undated, 3 incomplete, 2 deleted, 1 edited)",
        "  events:     deleted_message 2, disappearing_messages 1, incomplete_copy 3, system 1",
        "  messages:   2022-03-18T14:57:12-04:00 to 2022-03-19T09:00:00-04:00",
        "  times read: 9 as whatsapp-ios %m/%d/%y, %H:%M:%S; month first, decided by file; zone America/New_York",
    ]
    # No capture, no ledger entry, no spool, no alert: not a byte of the archive changed.
    assert snapshot(archive_dir) == before
    assert snapshot(DATA / "whatsapp") == exports
    # No message content: no body, no sender.
    assert "Budget" not in output and "Alice" not in output


def test_dry_run_json_is_one_object_per_file(archive_dir: Path) -> None:
    code, output = dry_run(archive_dir, "--json", "--custodian", "jdoe", str(ANDROID), str(TELEGRAM))

    assert code == 0, output
    android, telegram = (json.loads(line) for line in output.splitlines())
    assert {k: android[k] for k in ("source", "outcome", "parser", "custodian", "zone", "locale")} == {
        "source": ANDROID.name, "outcome": "readable", "parser": "whatsapp", "custodian": "jdoe",
        "zone": "America/New_York", "locale": "en_US"}
    assert android["first"] == "2022-11-18T20:25:00-05:00"  # the earliest, not the first line
    assert [r["layout"] for r in android["readings"]] == ["whatsapp-android %m/%d/%y, %I:%M %p"]
    assert telegram["parser"] == "telegram"
    assert (telegram["records"], telegram["undated"], telegram["incomplete"], telegram["edited"]) == (11, 0, 3, 1)
    assert telegram["events"] == {"deleted_message": 1, "disappearing_messages": 1, "incomplete_copy": 4,
                                  "system": 2}
    assert telegram["readings"] == [{"layout": "telegram-unixtime", "day_first": None, "decided_by": "format",
                                     "zone": "UTC", "count": 11}]
    assert telegram["first"] == "2023-03-26T03:06:40+00:00" and telegram["last"] == "2023-11-14T22:16:40+00:00"


def test_dry_run_of_an_unreadable_file_says_why_and_exits_as_ingest_would(archive_dir: Path) -> None:
    not_an_export = DATA / "mbox" / "SOURCES.md"
    code, output = dry_run(archive_dir, "--custodian", "jdoe", str(IOS), str(HOSTILE), str(not_an_export))

    assert code == 4, output
    lines = output.splitlines()
    assert "readable     ios_crlf_marks.txt" in lines
    assert "quarantined  billion_laughs.xml" in lines
    assert any(line.startswith("  reason:     xml_entities: ") for line in lines)
    assert "quarantined  SOURCES.md" in lines
    assert "  reason:     unrecognised_format: no parser recognised it" in lines


def test_an_export_folder_is_named_as_a_folder_with_how_to_give_it(archive_dir: Path, tmp_path: Path) -> None:
    """Telegram's HTML export, signal-export and imessage-exporter write folders: ingest takes one sealed item."""
    folder = DATA / "telegram" / "html_export"
    code, output = dry_run(archive_dir, "--custodian", "jdoe", str(folder))
    assert code != 0
    assert "a folder; zip it first" in output and "watched folder" in output

    # Zipped, as the message says, the dry run reads it: the new HTML parser, its times and what is missing.
    zipped = tmp_path / "telegram_html.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    code, output = dry_run(archive_dir, "--json", "--custodian", "jdoe", str(zipped))
    assert code == 0, output
    summary = json.loads(output)
    assert summary["parser"] == "telegram_html"
    assert summary["records"] > 0 and summary["incomplete"] >= 1
    assert {r["decided_by"] for r in summary["readings"]} <= {"format", "custodian_zone"}


def test_dry_run_needs_no_archive_and_no_keys(archive_dir: Path, tmp_path: Path) -> None:
    """Only the config's custodians are read: a config whose data directory and keys do not exist will do."""
    config = tmp_path / "elsewhere.toml"
    text = (archive_dir / "twentyday.toml").read_text().replace(str(archive_dir), str(tmp_path / "nowhere"))
    config.write_text(text)
    config.chmod(0o600)

    result = CliRunner().invoke(cli, ["--config", str(config), "ingest", "--dry-run", "--custodian", "jdoe", str(IOS)])

    assert result.exit_code == 0, result.output
    assert "  records:    9 (0 undated, 3 incomplete, 2 deleted, 1 edited)" in result.output
    assert not (tmp_path / "nowhere").exists()


def test_dry_run_without_custodian_routes_as_ingest_does(archive_dir: Path) -> None:
    code, output = dry_run(archive_dir, str(IOS))  # no participant of this chat is jdoe's

    assert code == 0, output
    assert output.splitlines()[0] == "unrouted     ios_crlf_marks.txt"
    assert "  reason:     no_custodian_matches: no configured custodian matches its senders or recipients" in output


# --- progress on a terminal -----------------------------------------------------------------------


def test_progress_shows_after_a_second_at_most_four_times_a_second_and_clears_its_line() -> None:
    now = [100.0]
    stream = StringIO()
    progress = TerminalProgress(stream, "chat\n.txt", clock=lambda: now[0])

    for count, at in ((1024, 100.5), (2048, 100.99), (3072, 101.0), (4096, 101.1), (5120, 101.26)):
        now[0] = at
        progress(count)
    progress.finish()

    assert stream.getvalue() == ("\r\x1b[Kchat?.txt: 3,072 messages read, 3,072/s"
                                 "\r\x1b[Kchat?.txt: 5,120 messages read, 4,063/s"
                                 "\r\x1b[K")


def ingest_command(archive_dir: Path, export: Path) -> list[str]:
    return [sys.executable, "-m", "twentyday", "--config", str(archive_dir / "twentyday.toml"), "ingest",
            "--custodian", "jdoe", str(export)]


def test_ingest_on_a_terminal_shows_messages_read_and_the_rate(archive_dir: Path, tmp_path: Path) -> None:
    # About 4 s of ingest here: well past the one second before progress shows.
    export = write_export(tmp_path / "WhatsApp Chat with Counterpart.txt", 60_000, datetime(2026, 10, 13, 8, 0))
    leader, follower = pty.openpty()
    try:
        child = subprocess.Popen(ingest_command(archive_dir, export), stdout=subprocess.PIPE, stderr=follower)
        os.close(follower)
        shown = b""
        while True:
            ready, _, _ = select.select([leader], [], [], 120)
            if not ready:
                break
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        stdout = child.communicate(timeout=120)[0].decode()
    finally:
        os.close(leader)

    assert child.returncode == 0, shown
    assert stdout.startswith("ingested ") and "60000 new record(s)" in stdout
    terminal = shown.decode()
    assert "WhatsApp Chat with Counterpart.txt: " in terminal and " messages read, " in terminal
    assert terminal.endswith("\r\x1b[K")  # the line is cleared before the report


def test_ingest_not_on_a_terminal_prints_only_its_report(archive_dir: Path, tmp_path: Path) -> None:
    export = write_export(tmp_path / "WhatsApp Chat with Counterpart.txt", 60_000, datetime(2026, 10, 13, 8, 0))

    done = subprocess.run(ingest_command(archive_dir, export), capture_output=True, text=True, timeout=120,
                          check=False)

    assert done.returncode == 0, done.stderr
    # Today's output: the report on stdout, the log lines on stderr; no progress, no control characters.
    assert "messages read" not in done.stderr and "\r" not in done.stderr and "\x1b" not in done.stderr
    assert all(line.startswith("INFO ") for line in done.stderr.splitlines())
    assert done.stdout.startswith("ingested ") and len(done.stdout.splitlines()) == 1
