"""A stranger who can reach port 25 cannot exhaust the daemon's memory with DATA that never ends.

Each unfinished DATA section used to be held in memory up to ``smtp.max_message_bytes``: twenty
connections sending 48 MiB each and never finishing took the daemon from 48 MiB to 991 MiB resident.
Now all connections together hold at most ``smtp.max_bytes_in_flight``; past it a message is
answered ``451 4.3.1`` (its sender keeps it and retries) and its bytes are read and dropped.
The attack runs against a real ``twentyday serve`` process, measured from /proc.

Messages past ``smtp.spool_to_disk_bytes`` are written to the spool as they arrive and hold
only a chunk in memory (tests/security/test_smtp_large_message.py); here that threshold is
set to the largest message, so every byte of the attack is held in memory, against the budget.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.smtp_helpers import configure
from tests.system.test_logs import wait_for_smtp

MIB = 1024 * 1024
ATTACKERS = 10
#: Each attacker sends this much of a message and never ends it.
SENT_EACH = 7 * MIB


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc")


def converse(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line + b"\r\n")
    return read_reply(sock)


def read_reply(sock: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\r\n") or reply.split(b"\r\n")[-2][3:4] == b"-":
        chunk = sock.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def start_data(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    assert read_reply(sock).startswith(b"220")
    assert converse(sock, b"EHLO attacker.example").startswith(b"250")
    assert converse(sock, b"MAIL FROM:<x@attacker.example>").startswith(b"250")
    assert converse(sock, b"RCPT TO:<records+jdoe@agency.example>").startswith(b"250")
    assert converse(sock, b"DATA").startswith(b"354")
    return sock


def test_unfinished_data_from_many_connections_cannot_exhaust_memory(archive_dir: Path) -> None:
    config, port = configure(archive_dir, max_message_bytes=8 * MIB, max_bytes_in_flight=16 * MIB,
                             spool_to_disk_bytes=8 * MIB, max_connections_per_client=50)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    daemon = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    attackers: list[socket.socket] = []
    try:
        wait_for_smtp(daemon, port)
        time.sleep(1)  # the pipeline process and its imports settle
        before = resident_mib(daemon.pid)
        line = b"A" * 1022 + b"\r\n"
        for _ in range(ATTACKERS):
            sock = start_data(port)
            sock.sendall(line * (SENT_EACH // len(line)))  # and never the end of DATA
            attackers.append(sock)
        time.sleep(2)  # the daemon has read what the kernel held for it
        grown = resident_mib(daemon.pid) - before

        # A finished message that would pass the budget is refused for now, not taken into memory.
        late = start_data(port)
        late.sendall(line * (3 * MIB // len(line)) + b".\r\n")
        reply = read_reply(late)
        late.close()

        # 70 MiB were sent; the budget is 16 MiB (a message is briefly held twice while unstuffed).
        assert grown < 40, f"the daemon grew by {grown:.0f} MiB holding unfinished DATA"
        assert reply.startswith(b"451 4.3.1"), reply

        # Once the attackers go, their share is given back: an ordinary mail is taken again.
        for sock in attackers:
            sock.close()
        attackers.clear()
        time.sleep(1)
        sock = start_data(port)
        sock.sendall(b"From: a@example.org\r\nSubject: hello\r\n\r\nhi\r\n.\r\n")
        assert read_reply(sock).startswith(b"250"), "a normal message after the attack"
        sock.close()
    finally:
        for sock in attackers:
            sock.close()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
