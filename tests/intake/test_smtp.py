"""The forwarding address: a real aiosmtpd server on 127.0.0.1, spoken to with smtplib."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import smtplib
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.smtp_helpers import DaemonThread, configure, self_signed
from twentyday import config as config_module
from twentyday.canonical import iso
from twentyday.cli import cli
from twentyday.errors import ConfigError
from twentyday.intake.smtp import RateLimit, start_server
from twentyday.intake.smtp_auth import add_user, load_auth_file
from twentyday.pipeline.worker import Worker
from twentyday.spool import Spool
from twentyday.store.archive import Archive


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
        assert b"Not an archive address" in reply
        code, _ = client.rcpt("records+nobody@agency.example")  # no such custodian
        assert code == 550
    with socket.create_connection(("127.0.0.1", port)) as sock:  # an address that is not UTF-8
        reader = sock.makefile("rb")
        reader.readline()
        replies = []
        for command in (b"HELO probe\r\n", b"MAIL FROM:<a@evil.example>\r\n", b"RCPT TO:<\xff\xfe@evil.example>\r\n"):
            sock.sendall(command)
            replies.append(reader.readline()[:3])
        assert replies == [b"250", b"250", b"550"]  # refused for good, not "try again later"


def _reply(sock: socket.socket, reader: BinaryIO, command: bytes) -> bytes:
    sock.sendall(command)
    line = reader.readline()
    while line[3:4] == b"-":
        line = reader.readline()
    return line


def test_repeated_ehlo_does_not_raise_the_mail_command_limit(server: tuple[Path, int]) -> None:
    # aiosmtpd raises MAIL's line limit by 36 bytes on every EHLO, for every connection.
    _, port = server
    huge_mail = b"MAIL FROM:<" + b"a" * 60_000 + b"@gmail.com>\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        reader = sock.makefile("rb")
        reader.readline()
        sock.sendall(b"EHLO probe\r\n" * 2000)
        for _ in range(2000):
            _reply(sock, reader, b"")
        assert _reply(sock, reader, huge_mail).startswith(b"500")
        assert _reply(sock, reader, b"MAIL FROM:<jane.doe@gmail.com> SIZE=100 SMTPUTF8\r\n").startswith(b"250")


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
    # No relay network: every client must log in, loopback included.
    config, port = configure(archive_dir, tls_cert=str(cert), tls_key=str(key), auth_file=str(auth),
                             relay_networks=[])
    text = config.read_text()
    config.write_text(text.replace('id = "jdoe"\n', 'id = "jdoe"\nsmtp_users = ["jdoe-phone"]\n'))
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


def test_starttls_sessions_give_their_connection_slot_back(archive_dir: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config, port = configure(archive_dir, tls_cert=str(cert), tls_key=str(key), max_connections_per_client=2)
    running = DaemonThread(config).start()
    try:
        context = ssl.create_default_context(cafile=str(cert))
        for n in range(5):  # more sessions, one after the other, than the client may hold at once
            with smtplib.SMTP("localhost", port) as client:
                client.starttls(context=context)
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail(message_id=f"<t{n}@x>"))
            time.sleep(0.1)  # the server sees the close
        wait_records(config, 5)
    finally:
        running.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # plaintext AUTH on purpose
def test_password_guessing_is_cut_off_and_does_not_stall_other_sessions(archive_dir: Path, tmp_path: Path) -> None:
    auth = tmp_path / "smtp-users"
    add_user(auth, "jdoe-phone", "a long enough password")
    config, port = configure(archive_dir, auth_file=str(auth), allow_plaintext_auth=True)
    running = DaemonThread(config).start()
    guess = b"AUTH PLAIN " + base64.b64encode(b"\0jdoe-phone\0wrong-guess") + b"\r\n"
    right = b"AUTH PLAIN " + base64.b64encode(b"\0jdoe-phone\0a long enough password") + b"\r\n"
    guessers = []
    try:
        for _ in range(3):  # each pipelines 50 guesses at once: 9 failures in all, one short of the limit
            sock = socket.create_connection(("127.0.0.1", port))
            sock.makefile("rb").readline()
            sock.sendall(b"EHLO guesser\r\n" + guess * 50)
            guessers.append(sock)
        began = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            client.noop()
        assert time.monotonic() - began < 0.5  # scrypt runs off the event loop
        for sock in guessers:
            answers = sock.makefile("rb").read().splitlines()  # until the server closes it
            assert [a[:3] for a in answers if not a.startswith(b"250")] == [b"535", b"535", b"535", b"421"]
        # The tenth failure uses up the client address's allowance: even the right password waits.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            assert _reply(sock, reader, b"EHLO client\r\n").startswith(b"250")
            assert _reply(sock, reader, guess).startswith(b"535")
            assert _reply(sock, reader, right).startswith(b"454")
    finally:
        for sock in guessers:
            sock.close()
        running.stop()


def test_a_large_message_sent_steadily_may_take_longer_than_the_idle_timeout(archive_dir: Path) -> None:
    config, port = configure(archive_dir, timeout_seconds=1)
    running = DaemonThread(config).start()
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            reader = sock.makefile("rb")
            reader.readline()
            for command in (b"HELO t\r\n", b"MAIL FROM:<jane.doe@gmail.com>\r\n",
                            b"RCPT TO:<records@agency.example>\r\n", b"DATA\r\n"):
                assert _reply(sock, reader, command)[:1] in (b"2", b"3")
            body = make_mail(body="a line of the report\n" * 30_000).replace(b"\n", b"\r\n")
            piece = 128 * 1024
            for start in range(0, len(body), piece):  # about 2.5 s in all, never idle for 0.5 s
                sock.sendall(body[start:start + piece])
                time.sleep(0.5)
            assert _reply(sock, reader, b"\r\n.\r\n").startswith(b"250")
        wait_records(config, 1)
    finally:
        running.stop()


def test_spool_failure_answers_451_and_stores_nothing(archive_dir: Path) -> None:
    config, port = configure(archive_dir)
    running = DaemonThread(config).start()
    try:
        spool = _spool_of(running)
        spool._writer = spool._open_segment()  # segments open at the first write: open one now
        segment = spool._writer.path
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


def break_fsync(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """The disk's edge: the spool's writes are accepted, then fail to flush while ``["on"]``."""
    import errno

    from twentyday import spool as spool_module

    real_fsync = os.fsync
    broken = {"on": True}

    def fsync(fd: int) -> None:
        if broken["on"]:
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(spool_module.os, "fsync", fsync)
    return broken


def test_a_failed_fsync_answers_451_and_the_retry_is_archived_once(archive_dir: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    config, port = configure(archive_dir)
    running = DaemonThread(config).start()
    broken = break_fsync(monkeypatch)
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


def test_the_rate_limit_forgets_clients_whose_allowance_has_refilled() -> None:
    # Past 100,000 client addresses the limiter drops those back at a full allowance; it
    # must see the refill, or it keeps every address and scans them all on each MAIL.
    now = [0.0]
    limit = RateLimit(per_minute=3, clock=lambda: now[0])
    for n in range(100_000):
        assert limit.allow(f"2001:db8::{n:x}")
    now[0] = 3600.0
    assert limit.allow("2001:db8::ffff:1")
    assert len(limit._buckets) == 1


def test_the_smtp_clock_decides_the_receive_time(archive_dir: Path) -> None:
    # Receive time decides on time or late: the item's, its envelope's and the capture's are the clock's.
    received = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=UTC)
    config_path, port = configure(archive_dir)
    config = config_module.load(config_path)
    spool = Spool.open(config)

    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"], make_mail(message_id="<clock@x>"))

    async def serve_one() -> None:
        server = await start_server(config, spool, lambda: None, clock=lambda: received)
        try:
            await asyncio.to_thread(send)
        finally:
            server.close()
            await server.wait_closed()

    archive = Archive(config)
    try:
        asyncio.run(serve_one())
        [item] = spool.pending()
        assert (item.meta.name, item.meta.received_at) == ("smtp-20261101T093015123456.eml", received)
        assert item.meta.envelope is not None and item.meta.envelope["received_at"] == received.isoformat()
        Worker(archive, spool).run_once()
        assert archive.conn.execute("SELECT received_at FROM capture").fetchall() == [(iso(received),)]
    finally:
        spool.close()
        archive.close()


def crlf(mail: bytes) -> bytes:
    """Mail as it is sent (smtplib sends bytes as they are: a bare LF would make one long line)."""
    return mail.replace(b"\n", b"\r\n")


def test_a_message_past_spool_to_disk_bytes_is_written_as_it_arrives_and_refusals_leave_nothing(
        archive_dir: Path) -> None:
    config, port = configure(archive_dir, spool_to_disk_bytes=65536, max_message_bytes=400_000)
    running = DaemonThread(config).start()
    files = running.config.data_dir / "spool" / "files"
    try:
        too_big = crlf(make_mail(body="a line of the quarterly report\n" * 15_000, message_id="<big@x>"))  # 480 KB
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            client.mail("jane.doe@gmail.com")
            client.rcpt("records@agency.example")
            code, _ = client.data(too_big)
            assert code == 552  # it went to disk past 64 KiB; past 400 KB it is refused, and destroyed
            assert client.noop()[0] == 250
            assert list(files.iterdir()) == []
            # Lines that start with a dot are stuffed by smtplib and unstuffed block by block.
            body = ".leading dot\n" + "a line of the quarterly report\n" * 8_000 + ".\n..two\nLastwordzebra\n"
            mail = crlf(make_mail(body=body, message_id="<spooled@x>"))
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], mail)
        [row] = wait_records(config, 1)
        assert row["channel"] == "smtp" and row["custodian"] == "jdoe"
        found = CliRunner().invoke(cli, ["--config", str(config), "search", "--json", "--text", "lastwordzebra"])
        assert len(json.loads(found.output)) == 1
        shown = CliRunner().invoke(cli, ["--config", str(config), "show", str(row["id"]), "--identity",
                                         str(archive_dir / "officer.key"), "--purpose", "test"])
        assert shown.exit_code == 0, shown.output
        assert ".leading dot" in shown.output and "\n.\n..two\nLastwordzebra" in shown.output.replace("\r", "")
    finally:
        running.stop()


def test_a_failed_fsync_of_a_message_written_as_it_arrived_answers_451_and_keeps_nothing(
        archive_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, port = configure(archive_dir, spool_to_disk_bytes=65536)
    running = DaemonThread(config).start()
    files = running.config.data_dir / "spool" / "files"
    broken = break_fsync(monkeypatch)
    try:
        mail = crlf(make_mail(body="a line of the quarterly report\n" * 8_000, message_id="<large-fsync@x>"))
        with smtplib.SMTP("127.0.0.1", port) as client:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                client.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"], mail)
            assert refused.value.smtp_code == 451
            assert list(files.iterdir()) == []  # its file destroyed; no frame names it
            assert list(_spool_of(running).pending()) == []  # type: ignore[attr-defined]
            broken["on"] = False
            client.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"], mail)  # the sender retries
        assert len(wait_records(config, 1)) == 1
    finally:
        running.stop()


def test_an_auth_file_user_name_with_u0000_is_refused(tmp_path: Path) -> None:
    """A hand-edited auth file: the user's name would be a capture's delivered_by, in the index."""
    auth = tmp_path / "smtp-users"
    add_user(auth, "jdoe-phone", "a long enough password")
    auth.write_text(auth.read_text().replace("jdoe-phone", "jdoe\x00phone"))
    with pytest.raises(ConfigError, match="line 1: a user name cannot hold the character U\\+0000"):
        load_auth_file(auth)
