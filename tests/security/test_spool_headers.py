"""Issue 12, items 5 and 9 (the spool's half): a queued item's header is sealed and authenticated.

The attacker owns the disk (not the daemon's keys) while the pipeline is stopped. A
spooled mail's frame header shows no custodian, name or time to read or edit; grafting
the sealed metadata of another custodian's mail onto it must neither re-route nor
re-date it: it is kept sealed in quarantine, with an alert, and the other mail is
archived as it was.
"""

from __future__ import annotations

import json
import smtplib
import sqlite3
import time
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
from twentyday import spool as spool_module


def graft_metadata(donor: Path, target: Path) -> None:
    """Give the one frame in ``target`` the sealed metadata of the one frame in ``donor``."""
    [(donor_header, _, _, _)] = spool_module._frames(donor)
    [(header, _, payload_offset, end)] = spool_module._frames(target)
    data = target.read_bytes()
    header["sealed_meta"] = donor_header["sealed_meta"]
    encoded = json.dumps(header, sort_keys=True).encode()
    payload = data[payload_offset:end]
    target.write_bytes(data[:spool_module.SEGMENT_HEADER]
                       + spool_module._FRAME_HEAD.pack(spool_module.MAGIC, len(encoded), len(payload))
                       + encoded + payload)


def test_a_grafted_header_is_neither_re_routed_nor_re_dated(archive_dir: Path) -> None:
    add_custodian(archive_dir, "abcd")
    data_dir = archive_dir / "data"
    with serving(archive_dir) as (daemon, port):
        stopped = stop_pipeline(daemon)
        segments: list[Path] = []
        for custodian, address in (("abcd", "other.person@gmail.com"), ("jdoe", "jane.doe@gmail.com")):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                client.sendmail(address, [f"records+{custodian}@agency.example"],
                                make_mail(message_id=f"<{custodian}-header@spool.test>"))
            wait_for(lambda: len(list((data_dir / "spool").glob("seg-*.log"))) == len(segments) + 1)
            [new] = set((data_dir / "spool").glob("seg-*.log")) - set(segments)
            segments.append(new)
            time.sleep(2 * spool_module.ROLL_SECONDS)  # the next mail starts a segment of its own
        donor, target = segments
        for segment in segments:  # nothing of the routing is readable without the key
            for clear in (b"jdoe", b"abcd", b"gmail.com", b"127.0.0.1", b"smtp-"):
                assert clear not in segment.read_bytes()
        graft_metadata(donor, target)
        continue_pipeline(stopped)
        wait_for(lambda: len(captures(data_dir)) >= 2)
    by_state = {capture["state"]: capture for capture in captures(data_dir)}
    assert set(by_state) == {"ingested", "quarantined"}
    assert by_state["ingested"]["custodian"] == "abcd"
    damaged = by_state["quarantined"]
    assert damaged["custodian"] is None  # neither abcd (the graft) nor jdoe (unproven)
    assert "is damaged" in str(damaged["reason"])
    assert damaged["received_at"] > by_state["ingested"]["received_at"]  # when found, not a chosen time
    conn = sqlite3.connect(data_dir / "index.db")
    try:
        assert conn.execute("SELECT kind FROM alert WHERE kind = 'ingest_failed'").fetchall() == [("ingest_failed",)]
        assert conn.execute("SELECT count(DISTINCT custodian) FROM record").fetchone() == (1,)
    finally:
        conn.close()
