"""The proof from outside (issue 16): ``twentyday serve`` as a real process with a temporary config.

Mail over a real SMTP socket and an export dropped in the watched folder both come out of
``search --json``. Then a stream of 200 mails and 5 exports, SIGKILL in the middle of it, a
restart, the mails that got no 250 sent again (as an MTA retries): every mail and every export
is in the archive exactly once, and ``verify`` is clean.
"""

from __future__ import annotations

import os
import signal
import smtplib
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from tests.chatgen import write_export
from tests.conftest import make_mail
from tests.smtp_helpers import configure
from tests.system.serve_process import Serve, records, wait_until
from tests.system.test_smtp_crash import pipeline_children, thread_names
from twentyday.cli import cli
from twentyday.config import load
from twentyday.daemon import STOP_SECONDS

MAILS = 200
SENDERS = 8
EXPORTS = 5
EXPORT_MESSAGES = 1_500


def send(port: int, message_id: str) -> bool:
    """One delivery on a connection of its own; whether it got its 250."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=20) as client:
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                            make_mail(message_id=message_id, body=f"stream item {message_id}"))
    except (smtplib.SMTPException, OSError):
        return False
    return True


def drop(inbox: Path, n: int) -> Path:
    """An export as a phone's share sheet leaves it: written under a hidden name, then renamed."""
    hidden = write_export(inbox / f".incoming-{n}", EXPORT_MESSAGES, start=datetime(2026, 10, 13 + n, 8, 0))
    final = inbox / f"WhatsApp Chat with Stream {n}.txt"
    hidden.rename(final)
    return final


def test_serve_end_to_end_with_sigkill_and_restart(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    inbox = load(config).folder_path / "jdoe"
    log = archive_dir / "serve.log"
    daemon = Serve(config, log)
    try:
        daemon.wait_ready()
        # -- one of each, through the front doors
        assert send(port, "<first@e2e.test>")
        write_export(inbox / "WhatsApp Chat with First Export.txt", 40)
        [first_mail] = thread_names(config, ["<first@e2e.test>"])
        wait_until(lambda: {first_mail, "First Export"} <= {r["conversation"] for r in records(config)}, 60,
                   "the mail and the export in search --json")
        found = records(config)
        assert [r["platform"] for r in found if r["conversation"] == first_mail] == ["email"]
        assert Counter(r["platform"] for r in found if r["conversation"] == "First Export") == {"whatsapp": 40}
        assert {r["custodian"] for r in found} == {"jdoe"}

        # -- a stream of mails and exports, and SIGKILL in the middle of it
        message_ids = [f"<s{n}@e2e.test>" for n in range(MAILS)]
        accepted: set[str] = set()
        lock = threading.Lock()
        dead = threading.Event()

        def sender(start: int) -> None:
            for message_id in message_ids[start::SENDERS]:
                if dead.is_set() or not send(port, message_id):
                    return
                with lock:
                    accepted.add(message_id)
                time.sleep(0.1)  # a steady stream, so the kill comes in its middle

        exports = []
        for n in range(EXPORTS):
            exports.append(drop(inbox, n))
            time.sleep(0.2)
        threads = [threading.Thread(target=sender, args=(s,)) for s in range(SENDERS)]
        for thread in threads:
            thread.start()
        wait_until(lambda: len(accepted) >= MAILS // 5 and not exports[0].exists(), 60,
                   "a fifth of the stream accepted and an export taken")
        taken_before_kill = [e for e in exports if not e.exists()]
        pipeline = pipeline_children(daemon.pid)
        os.kill(daemon.pid, signal.SIGKILL)
        dead.set()
        daemon.process.wait(30)
        for thread in threads:
            thread.join(30)
        with lock:
            accepted_before_kill = set(accepted)
        assert MAILS // 5 <= len(accepted_before_kill) < MAILS
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pipeline), 10,
                   "the pipeline process dies with the daemon")
    finally:
        daemon.kill()

    # -- restart; the sender retries what got no 250; the exports not yet taken are still in the folder
    daemon = Serve(config, log)
    try:
        daemon.wait_ready()
        for message_id in message_ids:
            if message_id not in accepted_before_kill:
                assert send(port, message_id)
        names = dict(zip(message_ids, thread_names(config, message_ids), strict=True))
        wait_until(lambda: len(records(config)) >= 1 + 40 + MAILS + EXPORTS * EXPORT_MESSAGES, 90,
                   "everything archived after the restart")
        time.sleep(1.0)  # anything left to be added twice would have been by now
        code, took = daemon.terminate(STOP_SECONDS)
    finally:
        daemon.kill()
    assert code == 0
    assert took < STOP_SECONDS

    found = records(config)
    per_conversation = Counter(r["conversation"] for r in found)
    assert all(per_conversation[names[m]] == 1 for m in message_ids), "every mail exactly once"
    assert all(per_conversation[f"Stream {n}"] == EXPORT_MESSAGES for n in range(EXPORTS)), "every export once"
    assert len(found) == 1 + 40 + MAILS + EXPORTS * EXPORT_MESSAGES
    assert taken_before_kill, "the kill should have come after an export was taken"
    assert not [e for e in inbox.iterdir()], "every export taken"
    assert "Traceback" not in daemon.text()
    result = CliRunner().invoke(cli, ["--config", str(config), "verify", "--json"])
    assert result.exit_code == 0, result.output
