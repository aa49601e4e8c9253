"""Issue 12, item 9 (the spool's half): a queued item's header is authenticated.

The attacker edits a spooled mail's frame header on the disk while the pipeline is
stopped: its custodian and its receive time. The item must not be archived under the
edited custodian or time: it is kept sealed in quarantine, with an alert.
"""

from __future__ import annotations

import json
import smtplib
import sqlite3
from datetime import datetime
from pathlib import Path

from tests.conftest import make_mail
from tests.security.spool_attack import (
    add_custodian,
    captures,
    continue_pipeline,
    serving,
    stop_pipeline,
    wait_for,
)


def edit_header(segment: Path, custodian: str) -> str:
    """Re-route the segment's one frame to ``custodian`` and date it a year earlier, same length;
    returns the edited receive time."""
    data = bytearray(segment.read_bytes())
    start = data.index(b'{"id"')
    length = int.from_bytes(data[start - 8:start - 4], "big")
    header = json.loads(data[start:start + length])
    received = datetime.fromisoformat(header["meta"]["received_at"])
    earlier = received.replace(year=received.year - 1).isoformat()
    header["meta"]["custodian"] = custodian
    header["meta"]["received_at"] = earlier
    edited = json.dumps(header, sort_keys=True).encode()
    assert len(edited) == length
    data[start:start + length] = edited
    segment.write_bytes(bytes(data))
    return earlier


def test_an_edited_header_is_neither_re_routed_nor_re_dated(archive_dir: Path) -> None:
    add_custodian(archive_dir, "abcd")
    data_dir = archive_dir / "data"
    with serving(archive_dir) as (daemon, port):
        stopped = stop_pipeline(daemon)
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"],
                            make_mail(message_id="<edited-header@spool.test>"))
        segments = [s for s in (data_dir / "spool").glob("seg-*.log") if b"edited-header" not in s.read_bytes()
                    and b'"custodian": "jdoe"' in s.read_bytes()]
        [segment] = segments
        earlier = edit_header(segment, "abcd")
        continue_pipeline(stopped)
        wait_for(lambda: len(captures(data_dir)) >= 1)
    [capture] = captures(data_dir)
    assert capture["custodian"] != "abcd"
    assert not str(capture["received_at"]).startswith(earlier[:4])
    assert capture["state"] == "quarantined"
    assert "is damaged" in str(capture["reason"])
    conn = sqlite3.connect(data_dir / "index.db")
    try:
        assert conn.execute("SELECT kind FROM alert").fetchall() == [("ingest_failed",)]
        assert conn.execute("SELECT count(*) FROM record").fetchone() == (0,)
    finally:
        conn.close()
