"""Issue 12, item 2: nothing derived from input reaches a log line with its control characters.

The daemon's log is where the signed ledger heads live outside the archive. An employee
drops a link into the watched folder (refused, and named in the log) whose name holds a
newline followed by a line that looks like the pipeline publishing a head. Before this issue the name reached the log as
it was, and the forged "ledger head" stood on a line of its own. Now every record's message
is escaped: the forged text stays inside the line that quotes the name, and ``verify
--head`` on the log passes over it (its signature is not the pinned key's).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from tests.security.verify_attacks import last_checkpoint, published_seqs, run, start_serve, stop_serve, wait_for
from tests.smtp_helpers import configure
from twentyday import logs
from twentyday.initialise import init_archive

FORGED = ("INFO twentyday.pipeline.worker: ledger head 999:" + "ab" * 32 + ":2026-01-01T00:00:00+00:00:"
          + "A" * 86 + "==")


def test_a_file_name_with_a_newline_cannot_forge_a_log_line(tmp_path: Path) -> None:
    init_archive(tmp_path / "arch", passphrase=None, demo=False, now=datetime.now(UTC))
    config, _ = configure(tmp_path / "arch", enabled=False)
    log = tmp_path / "serve.log"
    daemon = start_serve(config, log)
    try:
        started = last_checkpoint(tmp_path / "arch")
        wait_for(lambda: "watching" in log.read_text(errors="replace"), "the inbox watched", daemon)
        inbox = tmp_path / "arch" / "inbox" / "jdoe"
        # A link is refused, never opened, and the refusal names it (an export file's name is sealed).
        (inbox / f"notes\n{FORGED}").symlink_to("/etc/hostname")
        wait_for(lambda: last_checkpoint(tmp_path / "arch") > started
                 and "quarantined cap-" in log.read_text(errors="replace"), "the refusal archived", daemon)
    finally:
        assert stop_serve(daemon) == 0, log.read_text(errors="replace")
    lines = log.read_text(errors="replace").splitlines()
    assert not any(line.startswith("INFO twentyday.pipeline.worker: ledger head 999:") for line in lines), lines
    assert 999 not in published_seqs(log)
    quoted = [line for line in lines if "notes" in line]
    assert all("notes\\nINFO" in line for line in quoted), quoted
    # The log still proves the archive; the forged head, were it to end a line, is not signed.
    code, output = run(config, "verify", "--head", str(log))
    assert code == 0, output


def test_every_control_character_of_a_message_and_its_arguments_is_escaped() -> None:
    record = logging.LogRecord("twentyday.intake.watcher", logging.WARNING, __file__, 1,
                               "cannot take %s yet\r", ("a\nb\x1b[2Jc\x85d\u2028e\x00",), None)
    line = logs.OneLineFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING twentyday.intake.watcher: cannot take a\\nb\\x1b[2Jc\\x85d\\u2028e\\x00 yet\\r"
