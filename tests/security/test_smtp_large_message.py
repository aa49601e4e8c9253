"""Large messages are sealed into the spool as they arrive: memory stays bounded, nothing is in clear.

Before, a message was held in memory until its DATA ended (eight 6 MiB messages arriving at
once grew the daemon by their whole size). Now a message past ``smtp.spool_to_disk_bytes``
(1 MiB by default) is written chunk by chunk into a sealed spool file of its own while it
arrives; 250 is still answered only once it is durable. Against a real ``twentyday serve``,
measured from /proc.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from click.testing import CliRunner

from tests.security.spool_attack import add_custodian, captures, serving, wait_for, what_the_disk_gives
from tests.security.test_smtp_memory import converse, read_reply, resident_mib
from twentyday.cli import cli

MIB = 1024 * 1024
SENDERS = 8
SIZE = 6 * MIB


def large_message(number: int, canary: bytes, size: int = SIZE) -> tuple[bytes, bytes]:
    """A ``size``-byte mail, dot-stuffed for the wire, with the canary on every line; returns
    (everything but its last line, its last line and the end of DATA). The last line holds
    a word that only a message read to its end is found by."""
    date = format_datetime(datetime.now(UTC) - timedelta(days=1))
    head = (f"From: Jane Doe <jane.doe@gmail.com>\r\nTo: counterpart@partner.example\r\nDate: {date}\r\n"
            f"Subject: Quarterly figures {number}\r\nMessage-ID: <large-{number}-{uuid.uuid4().hex}@big.test>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n").encode()
    # Every fourth line starts with a dot: the client doubles it, the server must undo that.
    lines = [b"Figures for the visit, " + canary + b", as agreed in the meeting on Tuesday.\r\n",
             b".Dotted line " + canary + b" kept exactly as written, dot and all.....\r\n"]
    body = bytearray()
    n = 0
    while len(head) + len(body) < size - 200:
        line = lines[1] if n % 4 == 3 else lines[0]
        body += b"." + line if line.startswith(b".") else line
        n += 1
    tail = f"Closingword{number}x end of the figures.\r\n".encode() + b".\r\n"
    return head + bytes(body), tail


def start_data(port: int, recipients: list[str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    assert read_reply(sock).startswith(b"220")
    assert converse(sock, b"EHLO relay.agency.example").startswith(b"250")
    assert converse(sock, b"MAIL FROM:<jane.doe@gmail.com>").startswith(b"250")
    for recipient in recipients:
        assert converse(sock, f"RCPT TO:<{recipient}>".encode()).startswith(b"250")
    assert converse(sock, b"DATA").startswith(b"354")
    return sock


def spool_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "spool" / "files").iterdir())


def in_clear_under(data_dir: Path, canary: bytes) -> list[str]:
    found = []
    for path in data_dir.rglob("*"):
        try:
            if path.is_file() and canary in path.read_bytes():
                found.append(str(path))
        except FileNotFoundError:  # destroyed while we looked
            pass
    return found


def search(archive_dir: Path, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "search", "--json", *args])
    assert result.exit_code == 0, result.output
    found: list[dict[str, object]] = json.loads(result.output)
    return found


def test_large_messages_arriving_together_are_held_on_disk_sealed_not_in_memory(archive_dir: Path) -> None:
    canary = f"CANARY{uuid.uuid4().hex}".encode()
    data_dir = archive_dir / "data"
    messages = [large_message(n, canary) for n in range(SENDERS)]
    with serving(archive_dir) as (daemon, port):
        time.sleep(1)  # the pipeline process and its imports settle
        before = resident_mib(daemon.pid)
        senders = []
        for body, _ in messages:
            sock = start_data(port, ["records+jdoe@agency.example"])
            sock.sendall(body)  # all but the last line: the message has not ended
            senders.append(sock)
        # Until the daemon has read what was sent (its sealed chunks are on disk), or 20 s.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sum(p.stat().st_size for p in spool_files(data_dir)) < SENDERS * 5 * MIB:
            time.sleep(0.1)
        time.sleep(0.5)
        grown = resident_mib(daemon.pid) - before

        # 48 MiB are arriving: each message holds about a chunk (1 MiB) in memory, not its size.
        assert grown < SENDERS * SIZE / MIB / 2, f"the daemon grew by {grown:.0f} MiB holding {SENDERS} large messages"
        partials = spool_files(data_dir)
        assert len(partials) == SENDERS and all(p.name.endswith(".partial") for p in partials)
        assert in_clear_under(data_dir, canary) == []  # sealed as it arrives

        replies = []
        for sock, (_, tail) in zip(senders, messages, strict=True):
            sock.sendall(tail)
            replies.append(read_reply(sock))
            sock.sendall(b"QUIT\r\n")
            sock.close()
        assert all(reply.startswith(b"250 2.0.0 OK: archived as ") for reply in replies), replies

        wait_for(lambda: len(captures(data_dir)) == SENDERS, seconds=180)
        archived = {(c["channel"], c["state"], c["custodian"]) for c in captures(data_dir)}
        assert archived == {("smtp", "ingested", "jdoe")}
        # Read to its end: each message's last line is in the index (blind), found by its word.
        for number in range(SENDERS):
            assert len(search(archive_dir, "--text", f"Closingword{number}x")) == 1
        # Committed: its spool files are destroyed, and nothing on the disk opens to the canary.
        wait_for(lambda: spool_files(data_dir) == [], seconds=30)
        assert what_the_disk_gives(data_dir, canary) == []


def test_a_large_message_cut_off_by_its_client_leaves_nothing_in_the_spool(archive_dir: Path) -> None:
    canary = f"CANARY{uuid.uuid4().hex}".encode()
    data_dir = archive_dir / "data"
    body, _ = large_message(0, canary, size=4 * MIB)
    with serving(archive_dir) as (_, port):
        sock = start_data(port, ["records+jdoe@agency.example"])
        sock.sendall(body[:3 * MIB])
        wait_for(lambda: sum(p.stat().st_size for p in spool_files(data_dir)) >= 2 * MIB, seconds=30)
        [partial] = spool_files(data_dir)
        assert partial.name.endswith(".partial")
        sock.close()  # the connection drops mid-DATA: no 250, so the sender retries later

        wait_for(lambda: spool_files(data_dir) == [], seconds=30)
        time.sleep(1)  # the worker had nothing to take
        assert captures(data_dir) == []
        assert [p.name for p in (data_dir / "spool").iterdir() if p.name.startswith("seg-")] == []
        assert what_the_disk_gives(data_dir, canary) == []


def test_a_large_message_for_two_custodians_is_archived_for_both(archive_dir: Path) -> None:
    add_custodian(archive_dir, "osmith")
    canary = f"CANARY{uuid.uuid4().hex}".encode()
    data_dir = archive_dir / "data"
    body, tail = large_message(7, canary, size=3 * MIB)
    with serving(archive_dir) as (_, port):
        sock = start_data(port, ["records+jdoe@agency.example", "records+osmith@agency.example"])
        sock.sendall(body + tail)
        reply = read_reply(sock)
        sock.close()
        assert reply.startswith(b"250 2.0.0 OK: archived as "), reply
        assert len(reply.split(b"archived as ")[1].split()) == 2  # one item per custodian

        wait_for(lambda: len(captures(data_dir)) == 2, seconds=120)
        assert sorted((c["custodian"], c["state"]) for c in captures(data_dir)) == [
            ("jdoe", "ingested"), ("osmith", "ingested")]
        for custodian in ("jdoe", "osmith"):
            [record] = search(archive_dir, "--custodian", custodian, "--text", "Closingword7x")
            assert record["custodian"] == custodian
        wait_for(lambda: spool_files(data_dir) == [], seconds=30)
        assert what_the_disk_gives(data_dir, canary) == []
