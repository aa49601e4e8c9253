"""Issue 12, item 1: once a capture is committed, nothing on the disk decrypts its spooled copy.

The attacker owns the daemon host's disk: every file under ``data_dir``, the daemon's
secrets included. A mail and a dropped file, each carrying a canary, go through a real
``twentyday serve``; once both are committed the spool must hold nothing that the
attacker can open, and no file may hold the canary in clear.
"""

from __future__ import annotations

import contextlib
import smtplib
import uuid
from pathlib import Path

from tests.conftest import make_mail
from tests.security.spool_attack import captures, serving, wait_for, what_the_disk_gives


def test_a_committed_mail_and_file_cannot_be_read_back_from_the_spool(archive_dir: Path) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    data_dir = archive_dir / "data"
    with serving(archive_dir) as (_, port):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                            # The body only: subjects and message ids in the index are item 5's.
                            make_mail(body=f"Body {canary}", message_id="<at-rest@spool.test>"))
        dropped = archive_dir / "inbox" / "jdoe" / "notes.txt"
        dropped.write_bytes(f"12/01/2025, 10:00 - Jane Doe: {canary}\n".encode())
        wait_for(lambda: len(captures(data_dir)) >= 2 and not dropped.exists())
        # Committed. The spool forgets within the worker's step after the commit; give it a
        # moment under load, then act as the disk's owner.
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not what_the_disk_gives(data_dir, canary.encode()), seconds=10)
        assert what_the_disk_gives(data_dir, canary.encode()) == []
    assert what_the_disk_gives(data_dir, canary.encode()) == []
