"""Issue 13: whoever owns the disk edits the archive while ``serve`` runs, and the officers hear of it.

``twentyday verify`` is read-only (its timer's user cannot write the archive), so until now a
tampered archive raised nothing: DESIGN §2's ``integrity_failure`` was never opened. Now a
real ``twentyday serve`` runs verify itself every ``alerts.verify_every_hours`` (here 1.8 s).
An untouched archive passes run after run and raises nothing; then the attacker, with the
index file and no key, deletes a capture's sealed chunks and turns an on-time record into a
'copied' one. The next run opens one ``integrity_failure`` alert for the officers with counts
by problem kind (never an id or content), the run after bumps its count, and its delivery is queued.
Before this change ``serve`` refused the config key, and nothing ever raised the alert.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import make_mail
from tests.security.verify_attacks import run, start_serve, stop_serve, wait_for
from tests.smtp_helpers import configure
from twentyday.initialise import init_archive

OK_LINE = "integrity check: ok"


def alerts(config: Path, *args: str) -> list[dict[str, Any]]:
    code, output = run(config, "alerts", "--json", *args)
    assert code == 0, output
    found: list[dict[str, Any]] = json.loads(output)
    return [a for a in found if a["kind"] == "integrity_failure"]


def deliveries(config: Path, alert_id: int) -> set[tuple[str, str]]:
    code, output = run(config, "alerts", "deliveries", "--json")
    assert code == 0, output
    return {(d["sink"], d["event"]) for d in json.loads(output) if d["alert_id"] == alert_id}


def test_serve_raises_integrity_failure_when_the_archive_is_edited_on_disk(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    init_archive(tmp_path / "arch", passphrase=None, demo=False, now=now)
    config, _ = configure(tmp_path / "arch")
    config.write_text(config.read_text().replace("[alerts]\n", "[alerts]\nverify_every_hours = 0.0005\n"))
    mail = tmp_path / "on-time.eml"
    mail.write_bytes(make_mail(date=now - timedelta(days=1), message_id="<on-time@x>"))
    code, output = run(config, "ingest", "--custodian", "jdoe", str(mail))
    assert code == 0, output

    log = tmp_path / "serve.log"
    daemon = start_serve(config, log)
    try:
        # Untouched: two runs pass, and nothing is raised.
        wait_for(lambda: log.read_text(errors="replace").count(OK_LINE) >= 2, "two passing integrity checks", daemon)
        assert alerts(config) == []

        index = sqlite3.connect(tmp_path / "arch" / "data" / "index.db", isolation_level=None)
        try:
            index.execute("DELETE FROM chunk WHERE blob_id = (SELECT raw_blob FROM capture LIMIT 1)")
            index.execute("UPDATE record SET status = 'copied'")
            record_id = str(index.execute("SELECT id FROM record").fetchone()[0])
        finally:
            index.close()

        wait_for(lambda: bool(alerts(config)), "the integrity_failure alert", daemon)
        [alert] = alerts(config)
        assert (alert["severity"], alert["custodian"], alert["conversation"]) == ("critical", "", "")
        assert alert["detail"] == "verify: 2 problem(s): 1 blob_missing, 1 record_altered"
        wait_for(lambda: alerts(config)[0]["count"] >= 2, "the next run bumping the alert's count", daemon)
        assert len(alerts(config)) == 1  # one alert, not one per run
        wait_for(lambda: ("journal", "opened") in deliveries(config, alert["id"]),
                 "the alert's notice fanned out to its sinks", daemon)
    finally:
        assert stop_serve(daemon) == 0

    [kept] = alerts(config, "--all")
    assert kept["facts"]["counts"] == {"blob_missing": 1, "record_altered": 1}
    assert kept["facts"]["problems"] == 2 and kept["facts"]["head"]
    text = log.read_text(errors="replace")
    assert "integrity check: verify: 2 problem(s): 1 blob_missing, 1 record_altered; integrity_failure alert " \
           "raised" in text
    assert record_id not in text and "Traceback" not in text
    # The alert's own changes are ledgered: verify names the attack, nothing more.
    code, output = run(config, "verify")
    assert code == 5
    assert sorted(line.split(":")[0] for line in output.splitlines()[:-1]) == ["altered", "missing"]
