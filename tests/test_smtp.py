"""The forwarding address: a real aiosmtpd server on 127.0.0.1, spoken to with smtplib."""

from __future__ import annotations

import json
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from twentyday.cli import cli
from twentyday.smtp import add_user

from .conftest import make_mail
from .smtp_helpers import DaemonThread, configure, self_signed


def wait_records(config: Path, count: int, timeout: float = 20.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        result = CliRunner().invoke(cli, ["--config", str(config), "search", "--json"])
        rows = json.loads(result.output) if result.exit_code == 0 else []
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"expected {count} records, found {len(rows)}")


@pytest.fixture
def server(archive_dir: Path) -> Iterator[tuple[Path, int]]:
    config, port = configure(archive_dir, max_message_bytes=20000)
    running = DaemonThread(config).start()
    yield config, port
    running.stop()


def test_accepted_recipients_are_archived_with_the_bytes_as_received(server: tuple[Path, int]) -> None:
    config, port = server
    raw = make_mail(message_id="<one@x>")
    with smtplib.SMTP("127.0.0.1", port) as client:
        code, _ = client.ehlo()
        assert code == 250
        client.sendmail("jane.doe@gmail.com", ["records@agency.example"], raw)
        client.sendmail("someone@else.example", ["records+jdoe@agency.example"],
                        make_mail(sender="someone@else.example", message_id="<two@x>"))
    rows = wait_records(config, 2)
    assert {r["custodian"] for r in rows} == {"jdoe"}
    assert {r["channel"] for r in rows} == {"smtp"}
    result = CliRunner().invoke(cli, ["--config", str(config), "verify"])
    assert result.exit_code == 0, result.output


def test_other_recipients_get_550_not_relay(server: tuple[Path, int]) -> None:
    _, port = server
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.ehlo()
        client.mail("attacker@evil.example")
        code, reply = client.rcpt("victim@gmail.com")
        assert code == 550
        assert b"not an archive address" in reply
        code, _ = client.rcpt("records+nobody@agency.example")  # no such custodian
        assert code == 550


def test_oversized_message_gets_552_at_mail_or_data(server: tuple[Path, int]) -> None:
    _, port = server
    big = make_mail(body="x" * 30000)
    with smtplib.SMTP("127.0.0.1", port) as client, pytest.raises(smtplib.SMTPSenderRefused) as refused:
        client.sendmail("jane.doe@gmail.com", ["records@agency.example"], big)  # declares SIZE=
    assert refused.value.smtp_code == 552
    with smtplib.SMTP("127.0.0.1", port) as client:  # a client that does not declare it
        client.ehlo()
        client.mail("jane.doe@gmail.com")
        client.rcpt("records@agency.example")
        code, _ = client.data(big)
        assert code == 552
        assert client.noop()[0] == 250


def test_one_megabyte_command_line_gets_500_and_session_continues(server: tuple[Path, int]) -> None:
    _, port = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        sock.sendall(b"HELO " + b"a" * (1024 * 1024) + b"\r\n")
        assert reader.readline().startswith(b"500")
        sock.sendall(b"NOOP\r\n")
        assert reader.readline().startswith(b"250")


def test_bare_lf_dot_lf_does_not_smuggle_a_second_message(server: tuple[Path, int]) -> None:
    config, port = server
    smuggled = (b"From: jane.doe@gmail.com\r\nTo: x@y.example\r\nSubject: first\r\nMessage-ID: <s1@x>\r\n"
                b"Date: Sat, 21 Nov 2026 10:00:00 +0000\r\n\r\nbody\n.\nMAIL FROM:<jane.doe@gmail.com>\n"
                b"RCPT TO:<records@agency.example>\nDATA\nFrom: jane.doe@gmail.com\nMessage-ID: <s2@x>\n\nsmuggled\n")
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        for command in (b"EHLO t\r\n", b"MAIL FROM:<jane.doe@gmail.com>\r\n", b"RCPT TO:<records@agency.example>\r\n",
                        b"DATA\r\n"):
            sock.sendall(command)
            line = reader.readline()
            while line[3:4] == b"-":
                line = reader.readline()
        sock.sendall(smuggled + b"\r\n.\r\n")
        assert reader.readline().startswith(b"250")
        sock.sendall(b"QUIT\r\n")
    rows = wait_records(config, 1)
    time.sleep(0.5)
    assert len(wait_records(config, 1)) == 1 == len(rows)


def test_talking_before_the_greeting_does_not_desynchronise(server: tuple[Path, int]) -> None:
    _, port = server
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"EHLO early\r\nNOOP\r\n")
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"220")
        line = reader.readline()
        while line[3:4] == b"-":
            line = reader.readline()
        assert line.startswith(b"250")
        assert reader.readline().startswith(b"250")  # the NOOP, answered in order


def test_starttls_and_auth(archive_dir: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    auth = tmp_path / "smtp-users"
    add_user(auth, "jdoe-phone", "a long enough password")
    config, port = configure(archive_dir, tls_cert=str(cert), tls_key=str(key), auth_file=str(auth))
    running = DaemonThread(config).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as client:
            client.ehlo()
            assert client.has_extn("starttls")
            with pytest.raises(smtplib.SMTPException):  # no AUTH over plaintext
                client.login("jdoe-phone", "a long enough password")
        with smtplib.SMTP("localhost", port) as client:
            client.starttls(context=context)
            client.ehlo()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                client.login("jdoe-phone", "wrong password!!")
        with smtplib.SMTP("localhost", port) as client:
            client.starttls(context=context)
            client.ehlo()
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:  # AUTH required
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail())
            assert refused.value.smtp_code == 530
        with smtplib.SMTP("localhost", port) as client:
            client.starttls(context=context)
            client.login("jdoe-phone", "a long enough password")
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail())
        wait_records(config, 1)
    finally:
        running.stop()


def test_spool_failure_answers_451_and_stores_nothing(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    running = DaemonThread(config).start()
    try:
        segment = next((archive_dir / "data" / "spool").glob("seg-*.log"))
        spool = _spool_of(running)
        os.close(spool._writer.fd)
        spool._writer.fd = os.open(segment, os.O_RDONLY)  # the disk refuses writes from now on
        with smtplib.SMTP("127.0.0.1", port) as client, pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail())
        assert refused.value.smtp_code == 451
        assert list(spool.pending()) == []
    finally:
        running.stop()
    result = CliRunner().invoke(cli, ["--config", str(config), "search", "--json"])
    assert json.loads(result.output) == []


def test_a_failed_fsync_answers_451_and_the_retry_is_archived_once(archive_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    from twentyday import spool as spool_module

    config, port = configure(archive_dir)
    running = DaemonThread(config).start()
    real_fsync = os.fsync
    broken = {"on": True}

    def fsync(fd: int) -> None:  # the disk's edge: it accepts the write, then fails to flush it
        if broken["on"]:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", fsync)
    try:
        mail = make_mail(message_id="<fsync@x>")
        with smtplib.SMTP("127.0.0.1", port) as client:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"], mail)
            assert refused.value.smtp_code == 451
            broken["on"] = False
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], mail)  # the sender retries
        assert len(wait_records(config, 1)) == 1
        time.sleep(0.5)  # the unacknowledged first copy, if the pipeline takes it, is the same message
        assert len(wait_records(config, 1)) == 1
    finally:
        running.stop()


def _spool_of(running: DaemonThread) -> object:
    import gc

    from twentyday.spool import Spool

    spools = [o for o in gc.get_objects() if isinstance(o, Spool) and o.root.parent == running.config.data_dir]
    assert spools
    return spools[-1]


def test_two_thousand_idle_connections_do_not_slow_a_delivery(archive_dir: Path) -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 5000:
        pytest.skip(f"needs 5000 file descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 5000), hard))
    config, port = configure(archive_dir, max_connections=2100, max_connections_per_client=2050, timeout_seconds=60)
    running = DaemonThread(config).start()
    idle: list[socket.socket] = []
    try:
        def deliver(n: int) -> float:
            began = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as client:
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail(message_id=f"<d{n}@x>"))
            return time.perf_counter() - began

        for _ in range(2000):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)
        timings = sorted(deliver(n) for n in range(5))
        assert timings[2] < 0.1, timings
        # Past the cap, a new client is told to come back rather than left hanging.
        for _ in range(60):
            idle.append(socket.create_connection(("127.0.0.1", port)))
        refused = idle[-1].makefile("rb").readline()
        assert refused.startswith(b"421")
    finally:
        for sock in idle:
            sock.close()
        running.stop()


def test_a_client_over_its_message_rate_is_told_to_retry(archive_dir: Path) -> None:
    config, port = configure(archive_dir, max_messages_per_minute=3)
    running = DaemonThread(config).start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            for n in range(3):
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail(message_id=f"<r{n}@x>"))
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail(message_id="<r3@x>"))
            assert refused.value.smtp_code == 451
        wait_records(config, 3)
    finally:
        running.stop()
