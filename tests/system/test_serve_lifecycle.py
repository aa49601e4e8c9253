"""serve's lifecycle from outside: SIGTERM with work in flight, SIGHUP reload, start-up errors.

Each test runs the real ``twentyday serve`` as a process of its own and talks to it over real
sockets on 127.0.0.1, like an MTA and an administrator would.
"""

from __future__ import annotations

import os
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner

from tests.chatgen import write_export
from tests.conftest import make_mail
from tests.smtp_helpers import configure, free_port
from tests.system.serve_process import Serve, records, wait_until
from tests.system.test_smtp_crash import thread_names
from twentyday.cli import cli
from twentyday.config import load
from twentyday.daemon import DRAIN_SECONDS, STOP_SECONDS
from twentyday.store.archive import Archive

#: Large enough that the worker is still storing it when SIGTERM comes.
EXPORT_MESSAGES = 30_000

NEW_CUSTODIAN = """
[[custodians]]
id = "asmith"
name = "Alex Smith"
timezone = "America/Chicago"
official = ["alex.smith@agency.example"]
personal = ["alex.smith@example.net"]
"""


def dot_stuffed(mail: bytes) -> bytes:
    """The DATA section of ``mail`` as a client sends it (CRLF lines, dots doubled), without the end."""
    return smtplib.quotedata(mail.decode("ascii")).encode("ascii") + b"\r\n"


def open_session(port: int) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", port, timeout=60)
    client.ehlo("mta.agency.example")
    return client


def begin_data(client: smtplib.SMTP, recipient: str = "records+jdoe@agency.example") -> None:
    assert client.mail("jane.doe@gmail.com")[0] == 250
    assert client.rcpt(recipient)[0] == 250
    client.putcmd("data")
    assert client.getreply()[0] == 354


def capture_counts(config: Path) -> dict[str, int]:
    """How many captures and records the archive holds, and how many distinct records."""
    archive = Archive(load(config))
    try:
        one = archive.conn.execute
        return {"captures": one("SELECT count(*) FROM capture").fetchone()[0],
                "records": one("SELECT count(*) FROM record").fetchone()[0],
                "distinct": one("SELECT count(DISTINCT dedup_key) FROM record").fetchone()[0],
                "quarantined": one("SELECT count(*) FROM capture WHERE state != 'ingested'").fetchone()[0]}
    finally:
        archive.close()


def test_sigterm_finishes_a_message_being_received_and_the_workers_item_and_exits_0(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    log = archive_dir / "serve.log"
    export = write_export(load(config).folder_path / "jdoe" / "WhatsApp Chat with Field Team.txt", EXPORT_MESSAGES)
    daemon = Serve(config, log)
    try:
        daemon.wait_ready()
        wait_until(lambda: not export.exists(), 60, "the export taken into the spool")
        idle = open_session(port)
        finishing = open_session(port)
        stalled = open_session(port)
        finished_mail = dot_stuffed(make_mail(message_id="<finished@sigterm.test>", body="half before, half after"))
        begin_data(finishing)
        finishing.send(finished_mail[: len(finished_mail) // 2])
        begin_data(stalled)
        stalled.send(dot_stuffed(make_mail(message_id="<stalled@sigterm.test>"))[:200])
        time.sleep(0.5)  # the worker is well inside the export, and the server has read both halves
        assert capture_counts(config)["captures"] == 0  # taken, not yet committed: the worker's item

        daemon.process.send_signal(15)
        began = time.monotonic()
        time.sleep(0.5)  # SIGTERM taken: the listener is closed while the message is half sent
        with socket.socket() as late:  # nothing new is accepted
            late.settimeout(5)
            assert late.connect_ex(("127.0.0.1", port)) != 0
        assert idle.getreply()[0] == 421  # an idle session is told, not left hanging
        finishing.send(finished_mail[len(finished_mail) // 2:] + b".\r\n")
        code, reply = finishing.getreply()
        assert code == 250, reply  # durable in the spool: finished, then the session is closed
        assert finishing.getreply()[0] == 421
        code, reply = stalled.getreply()  # never finished: cut off when the drain time is over
        assert code == 451, reply
        assert time.monotonic() - began >= DRAIN_SECONDS - 1
        exit_code = daemon.process.wait(STOP_SECONDS + 5)
        elapsed = time.monotonic() - began
    finally:
        daemon.kill()
    assert exit_code == 0, daemon.text()
    assert elapsed < STOP_SECONDS, f"serve took {elapsed:.1f} s to stop"
    assert "twentyday stopped" in daemon.text()
    assert "Traceback" not in daemon.text()

    # Restart: the export and the mail that got its 250 are there exactly once; the cut-off one is not.
    daemon = Serve(config, log)
    try:
        daemon.wait_ready()
        [finished, stalled_thread] = thread_names(config, ["<finished@sigterm.test>", "<stalled@sigterm.test>"])
        wait_until(lambda: capture_counts(config)["records"] >= EXPORT_MESSAGES + 1, 120, "everything archived")
        time.sleep(1.0)  # anything left to add twice would have been added by now
        assert daemon.terminate(STOP_SECONDS)[0] == 0
    finally:
        daemon.kill()
    assert capture_counts(config) == {"captures": 2, "records": EXPORT_MESSAGES + 1,
                                      "distinct": EXPORT_MESSAGES + 1, "quarantined": 0}
    conversations = [r["conversation"] for r in records(config)]
    assert conversations.count(finished) == 1
    assert stalled_thread not in conversations
    assert not list((archive_dir / "data" / "spool" / "files").glob("*"))
    result = CliRunner().invoke(cli, ["--config", str(config), "verify"])
    assert result.exit_code == 0, result.output


def test_sighup_adds_a_custodian_while_a_client_stays_connected(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    daemon = Serve(config, archive_dir / "serve.log")
    try:
        daemon.wait_ready()
        client = open_session(port)
        assert client.mail("alex.smith@example.net")[0] == 250
        assert client.rcpt("records+asmith@agency.example")[0] == 550  # not a custodian yet
        client.rset()

        config.write_text(config.read_text() + NEW_CUSTODIAN)
        daemon.process.send_signal(1)
        daemon.wait_for_log("configuration reloaded")
        assert "added asmith" in daemon.text()

        # The same session, opened before the reload: a mail for the new custodian is taken ...
        mail = make_mail(sender="Alex Smith <alex.smith@example.net>", to="partner@partner.example",
                         message_id="<after-reload@sighup.test>")
        assert client.sendmail("alex.smith@example.net", ["records+asmith@agency.example"], mail) == {}
        # ... and so is one routed by its sender alone, through the shared address.
        shared = make_mail(sender="Alex Smith <alex.smith@example.net>", message_id="<shared@sighup.test>")
        assert client.sendmail("alex.smith@example.net", ["records@agency.example"], shared) == {}
        client.quit()
        # ... and filed under that custodian by the pipeline process (restarted with the new config).
        wait_until(lambda: len(records(config, "--custodian", "asmith")) == 2, 60, "both mails filed for asmith")
        assert daemon.terminate(STOP_SECONDS)[0] == 0
    finally:
        daemon.kill()
    [filed, routed] = thread_names(config, ["<after-reload@sighup.test>", "<shared@sighup.test>"])
    assert {r["conversation"] for r in records(config, "--custodian", "asmith")} == {filed, routed}
    assert "pipeline process restarted with the reloaded configuration" in daemon.text()
    assert "unknown_custodian" not in daemon.text()


def test_sighup_refuses_a_bad_config_and_keeps_what_cannot_change_live(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    good = config.read_text()
    daemon = Serve(config, archive_dir / "serve.log")
    try:
        daemon.wait_ready()
        client = open_session(port)

        config.write_text(good.replace("deadline_days = 20", "deadline_days = 20\ndeadline_dayz = 30"))
        daemon.process.send_signal(1)
        daemon.wait_for_log("reload refused")
        [refusal] = [line for line in daemon.text().splitlines() if "reload refused" in line]
        assert refusal.startswith("ERROR ")
        assert f"{config}: deadline_dayz: unknown key" in refusal

        other_port = free_port()
        config.write_text(good.replace(f"127.0.0.1:{port}", f"127.0.0.1:{other_port}").replace(
            'data_dir = "data"', 'data_dir = "elsewhere"') + NEW_CUSTODIAN)
        daemon.process.send_signal(1)
        daemon.wait_for_log("configuration reloaded")
        [warning] = [line for line in daemon.text().splitlines() if "cannot change while serve runs" in line]
        assert warning.startswith("WARNING ")
        assert "data_dir" in warning and "smtp.listen" in warning
        assert not (archive_dir / "elsewhere").exists()

        # Still on the old port, the session still open; the rest of the new config is in force.
        assert client.sendmail("alex.smith@example.net", ["records+asmith@agency.example"],
                               make_mail(message_id="<kept@sighup.test>")) == {}
        client.quit()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", other_port)) != 0
        assert daemon.process.poll() is None
        assert daemon.terminate(STOP_SECONDS)[0] == 0
    finally:
        daemon.kill()


# -- start-up errors: one line naming what and where, a stable exit code, no traceback ---------------


def start_failing(config: Path) -> tuple[int, list[str]]:
    """Run serve expecting it to refuse to start; its exit code and its stderr lines."""
    result = subprocess.run([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert "Traceback" not in result.stderr
    return result.returncode, result.stderr.splitlines()


def test_a_port_in_use_is_one_line_naming_the_address_and_the_config(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code, lines = start_failing(config)
    assert code == 6
    assert lines == [f"twentyday: cannot listen on 127.0.0.1:{port} (smtp.listen in {config}): "
                     "address already in use"]
    assert not list((archive_dir / "data" / "spool").glob("*.partial"))


def test_a_missing_or_unreadable_key_is_one_line_naming_the_file(archive_dir: Path) -> None:
    config, _ = configure(archive_dir)
    public = archive_dir / "officer.key.pub"
    saved = public.read_bytes()

    public.unlink()
    code, lines = start_failing(config)
    assert (code, lines) == (3, [f"twentyday: {public}: cannot read key file: No such file or directory"])

    public.mkdir()  # there, but not a file that can be read
    code, lines = start_failing(config)
    assert (code, lines) == (3, [f"twentyday: {public}: cannot read key file: Is a directory"])
    public.rmdir()

    public.write_bytes(saved[: len(saved) // 2])  # cut short: not a key
    code, lines = start_failing(config)
    assert code == 3 and len(lines) == 1 and lines[0].startswith(f"twentyday: {public}: ")

    public.write_bytes(saved)
    secret = archive_dir / "data" / "secrets" / "index.key"
    secret.rename(archive_dir / "index.key.moved")
    code, lines = start_failing(config)
    assert code == 3 and len(lines) == 1 and lines[0].startswith(f"twentyday: {secret}: missing daemon secret")


def test_a_bad_config_is_one_line_naming_the_file_and_the_key(archive_dir: Path) -> None:
    config, _ = configure(archive_dir)
    text = config.read_text()

    config.write_text(text.replace("deadline_days = 20", 'deadline_days = "twenty"'))
    code, lines = start_failing(config)
    assert (code, lines) == (2, [f"twentyday: {config}: deadline_days: expected an integer, got 'twenty'"])

    config.write_text(text.replace("[smtp]", "[smtp\n"))
    code, lines = start_failing(config)
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"twentyday: {config}: not valid TOML")

    missing = archive_dir / "nowhere.toml"
    code, lines = start_failing(missing)
    assert (code, lines) == (2, [f"twentyday: {missing}: no such configuration file"])


def test_the_units_stop_timeout_is_above_serves_stop_bound() -> None:
    unit = (Path(__file__).parents[2] / "systemd" / "twentyday.service").read_text()
    [timeout] = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("TimeoutStopSec=")]
    assert int(timeout) > STOP_SECONDS
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
