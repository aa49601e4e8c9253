"""Proof from outside: what a running ``serve`` shows of itself.

Nothing leaked: the real ``twentyday serve`` runs as a process of its own at log_level = debug
(SMTP intake, spool, pipeline process and its read-ahead helper all write to its stdout/stderr);
mail goes in over real SMTP (one with AUTH, one with an attachment) and a chat export through the
watched folder, and once all is archived the daemon's whole output is searched for their words,
names and the secrets it holds: none is there. ``twentyday status`` sees it running (and a second
``serve`` is refused), its integrity check kept, and the sockets it holds (``/proc/<pid>/net``,
matched to its descriptors) are the SMTP port and nothing else. Each runs on the embedded store and
with the sealed blobs in an S3 bucket (the local Ceph RGW), whose keys are secrets like the others.
"""

from __future__ import annotations

import base64
import json
import os
import re
import smtplib
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import NOW, make_mail
from tests.s3archive import make_s3_archive
from tests.security.verify_attacks import start_serve as serve
from tests.security.verify_attacks import stop_serve as stop
from tests.smtp_helpers import configure
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.initialise import init_archive
from twentyday.intake.smtp_auth import add_user

#: Generous: the machine running the suite may be loaded.
START_SECONDS = 60
ARCHIVE_SECONDS = 120
#: Words of the mail that only its content holds: subject, body and the display names.
SECRET_WORDS = ("Quillmarsh", "Vexbrook", "Ostrelline", "Dunmorrow", "Tarnquist", "Wexhollow",
                # the second mail's attachment name and contents, the AUTH user's mail
                "Harrowgate", "Brisslemere", "Corvantis",
                # the chat export: its file name (the chat's name), the participants' words
                "Yarrowby", "Zenthorpe", "Quenmoor")
SMTP_PASSWORD = "plover-Kestrunal-7719-passphrase"


@pytest.fixture(params=["embedded", "s3"])
def archive_dir(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The archive as 'twentyday init' makes it; the "s3" one keeps its sealed blobs in a bucket."""
    if request.param == "s3":
        make_s3_archive(tmp_path / "arch", request.getfixturevalue("rgw"), now=NOW)
    else:
        init_archive(tmp_path / "arch", passphrase=None, demo=False, now=NOW)
    return tmp_path / "arch"


def wait_for_smtp(daemon: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"twentyday serve exited with {daemon.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"twentyday serve did not listen on port {port} within {START_SECONDS} s")


def wait_until(what: str, daemon: subprocess.Popen[bytes], condition: Any) -> None:
    deadline = time.monotonic() + ARCHIVE_SECONDS
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"twentyday serve exited with {daemon.returncode} before {what}")
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"not within {ARCHIVE_SECONDS} s: {what}")


def records(config: Path) -> list[dict[str, Any]]:
    found = CliRunner().invoke(cli, ["--config", str(config), "search", "--json"])
    assert found.exit_code == 0, found.output
    return list(json.loads(found.stdout))


def status(config: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def debug_archive(archive_dir: Path) -> tuple[Path, int]:
    """SMTP with an AUTH user for jdoe (plaintext allowed on loopback, for the test), debug logging,
    and serve's integrity check every few seconds."""
    auth = archive_dir / "smtp-users"
    add_user(auth, "jdoe-phone", SMTP_PASSWORD)
    config, port = configure(archive_dir, auth_file=str(auth), allow_plaintext_auth=True)
    text = config.read_text().replace('deadline_rule = "calendar"', 'deadline_rule = "calendar"\nlog_level = "debug"')
    text = text.replace("[alerts]\n", "[alerts]\nverify_every_hours = 0.001\n")
    text = text.replace('id = "jdoe"\n', 'id = "jdoe"\nsmtp_users = ["jdoe-phone"]\n')
    config.write_text(text)
    assert 'log_level = "debug"' in text and "verify_every_hours = 0.001" in text and "smtp_users" in text
    return config, port


def secrets_of(data_dir: Path) -> list[str]:
    """The daemon's own secrets as they could appear in a log: the index key in hex and base64, and
    every line of the ledger signing key's PEM body."""
    index_key = (data_dir / "secrets" / "index.key").read_bytes()
    pem_body = [line for line in (data_dir / "secrets" / "ledger-signing.pem").read_text().splitlines()
                if line and not line.startswith("-----")]
    found = [SMTP_PASSWORD, index_key.hex(), base64.b64encode(index_key).decode().rstrip("="), *pem_body]
    blobs = config_module.load(data_dir.parent / "twentyday.toml").blobs
    if blobs is not None:  # the bucket's access key id and secret key
        found += [line.split("=", 1)[1].strip() for line in blobs.credentials.read_text().splitlines() if "=" in line]
    return found


def test_debug_logging_does_not_log_content_or_secrets(archive_dir: Path, tmp_path: Path) -> None:
    config, port = debug_archive(archive_dir)
    output_path = tmp_path / "serve.out"
    daemon = serve(config, output_path)
    try:
        wait_for_smtp(daemon, port)
        first = make_mail(sender="Jane Quillmarsh <jane.doe@gmail.com>",
                          to="Vexbrook Ostrelline <counterpart@partner.example>",
                          subject="Operation Dunmorrow", message_id="<first@logs.test>",
                          body="The Tarnquist budget is 4 million; tell Wexhollow.")
        second = make_mail(subject="Corvantis timing", message_id="<second@logs.test>", body="See attached.",
                           attachment=("Harrowgate-forecast.pdf", b"%PDF-1.4 Brisslemere figures"))
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            assert client.sendmail("jane.doe@gmail.com", ["records@agency.example"], first) == {}
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.login("jdoe-phone", SMTP_PASSWORD)
            assert client.sendmail("jane.doe@gmail.com", ["records@agency.example"], second) == {}
        day = datetime.now(UTC) - timedelta(days=2)
        export = archive_dir / "inbox" / "jdoe" / "WhatsApp Chat with Pellucid Yarrowby.txt"
        export.write_text(f"{day:%m/%d/%y}, 09:15 - Jane Doe: Zenthorpe closes on Friday\n"
                          f"{day:%m/%d/%y}, 09:16 - Pellucid Yarrowby: Quenmoor agrees\n")
        wait_until("both mails and the export archived", daemon,
                   lambda: len(records(config)) == 4 and not export.exists())
        wait_until("serve's integrity check kept", daemon, lambda: status(config)["last_verify"] is not None)
        running = status(config)
    finally:
        returncode = stop(daemon)
    output = output_path.read_text(errors="replace")

    assert returncode == 0, output
    assert "Traceback" not in output
    assert "DEBUG " in output, output
    # The daemon did log every capture it committed: by its id and channel, never its words.
    captures = {r["capture_id"] for r in records(config)}
    assert len(captures) == 3
    for capture_id in captures:
        assert re.search(rf"ingested {capture_id} \((smtp|folder)\)", output), output
    leaked = [word for word in SECRET_WORDS if word.lower() in output.lower()]
    assert not leaked, f"content in the daemon's output: {leaked}\n{output}"
    secrets = [secret for secret in secrets_of(archive_dir / "data") if secret in output]
    assert not secrets, f"a secret in the daemon's output\n{output}"

    # status, read while it ran: the daemon, each channel's capture, the integrity check's result.
    assert running["daemon"] == {"running": True, "pid": daemon.pid}
    [jdoe] = running["custodians"]
    assert (jdoe["custodian"], jdoe["channel"]) == ("jdoe", "folder")
    assert running["spool"]["items"] == 0
    assert running["last_verify"]["result"] == "ok"
    assert status(config)["daemon"] == {"running": False, "pid": None}


def descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *descendants(int(child))]
    return found


def socket_inodes(pids: list[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except FileNotFoundError:  # closed meanwhile
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:["):-1]))
    return inodes


def sockets(pid: int, table: str, inodes: set[int], *, remote: int | None = None) -> list[tuple[int, str]]:
    """(local port, state) of the sockets in ``/proc/<pid>/net/<table>`` (the process's network
    namespace: every process's) that belong to ``inodes``; those connected to port ``remote`` left out."""
    found = []
    for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[9]) in inodes and (remote is None or int(fields[2].rsplit(":", 1)[1], 16) != remote):
            found.append((int(fields[1].rsplit(":", 1)[1], 16), fields[3]))
    return found


LISTEN = "0A"


def test_serve_listens_on_its_smtp_port_and_nothing_else(archive_dir: Path, tmp_path: Path) -> None:
    config, port = configure(archive_dir)
    output_path = tmp_path / "serve.out"
    daemon = serve(config, output_path)
    try:
        wait_for_smtp(daemon, port)
        wait_until("the pipeline process started", daemon,
                   lambda: any(b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()
                               for c in descendants(daemon.pid)))
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:  # the worker has run once too
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail())
        wait_until("the mail archived", daemon, lambda: len(records(config)) == 1)
        processes = [daemon.pid, *descendants(daemon.pid)]
        inodes = socket_inodes(processes)
        # With the blobs in a bucket, the connections it opened to the S3 service (and only those).
        blobs = config_module.load(config).blobs
        bucket_port = int(blobs.endpoint.rsplit(":", 1)[1]) if blobs is not None else None
        tcp = sockets(daemon.pid, "tcp", inodes, remote=bucket_port) + sockets(daemon.pid, "tcp6", inodes,
                                                                                remote=bucket_port)
        udp = sockets(daemon.pid, "udp", inodes) + sockets(daemon.pid, "udp6", inodes)
        # A second serve on the same archive is refused before it binds anything.
        second = subprocess.run([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                                capture_output=True, text=True, timeout=60,
                                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    finally:
        returncode = stop(daemon)
    assert returncode == 0, output_path.read_text(errors="replace")
    assert [(p, state) for p, state in tcp if state == LISTEN] == [(port, LISTEN)]
    assert all(p == port for p, _ in tcp)  # no other TCP socket, connected or not (but to the bucket)
    assert udp == []
    assert second.returncode == 6
    assert second.stderr == (f"twentyday: {archive_dir / 'data'}: another twentyday serve is running on this "
                             f"archive (pid {daemon.pid}); stop it first\n")
