"""Structured journal fields under systemd (logs.JournalHandler), and the stderr format elsewhere.

journald is stood in for by a real unix datagram socket the test binds; the handler is given its
path (the product's is journald's fixed one). Datagrams are read back with the protocol's own rules.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from twentyday import logs


def parse_datagram(data: bytes) -> dict[str, str]:
    """journald's native protocol read back: ``KEY=value\\n``, or ``KEY\\n``, a little-endian length, value, ``\\n``."""
    fields: dict[str, str] = {}
    while data:
        line_end = data.index(b"\n")
        equals = data.find(b"=", 0, line_end)
        if equals >= 0:
            fields[data[:equals].decode()] = data[equals + 1:line_end].decode()
            data = data[line_end + 1:]
        else:
            key = data[:line_end].decode()
            (length,) = struct.unpack("<Q", data[line_end + 1:line_end + 9])
            value = data[line_end + 9:line_end + 9 + length]
            assert data[line_end + 9 + length:line_end + 10 + length] == b"\n"
            fields[key] = value.decode()
            data = data[line_end + 10 + length:]
    return fields


@pytest.fixture
def journal() -> Iterator[tuple[str, socket.socket]]:
    """A bound datagram socket standing in for journald (a short path: sun_path holds 108 bytes)."""
    folder = tempfile.mkdtemp(prefix="tdj", dir="/tmp")
    path = os.path.join(folder, "socket")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(10)
    try:
        yield path, server
    finally:
        server.close()
        os.unlink(path)
        os.rmdir(folder)


def logger_with(handler: logging.Handler) -> logging.Logger:
    logger = logging.getLogger("twentyday.test_journal")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger


def test_a_record_becomes_journal_fields_with_twentydays_ids_and_nothing_else(
        journal: tuple[str, socket.socket]) -> None:
    path, server = journal
    handler = logs.JournalHandler(path)
    try:
        logger_with(handler).info("ingested %s (smtp): 3 messages", "cap-1", extra={
            "event": "ingested", "capture_id": "cap-1", "custodian": "jdoe", "channel": "smtp",
            "subject": "Operation Dunmorrow"})  # not a journal field: never sent
    finally:
        handler.close()
    fields = parse_datagram(server.recv(65536))
    assert {k: v for k, v in fields.items() if not k.startswith("CODE_")} == {
        "MESSAGE": "ingested cap-1 (smtp): 3 messages", "PRIORITY": "6", "SYSLOG_IDENTIFIER": "twentyday",
        "TWENTYDAY_LOGGER": "twentyday.test_journal", "TWENTYDAY_EVENT": "ingested",
        "TWENTYDAY_CAPTURE_ID": "cap-1", "TWENTYDAY_CUSTODIAN": "jdoe", "TWENTYDAY_CHANNEL": "smtp"}
    assert fields["CODE_FILE"] == __file__ and fields["CODE_FUNC"] == (
        "test_a_record_becomes_journal_fields_with_twentydays_ids_and_nothing_else")
    assert "Dunmorrow" not in str(fields)


@pytest.mark.parametrize(("level", "priority"), [(logging.DEBUG, "7"), (logging.INFO, "6"),
                                                 (logging.WARNING, "4"), (logging.ERROR, "3"),
                                                 (logging.CRITICAL, "2")])
def test_levels_are_syslog_priorities(journal: tuple[str, socket.socket], level: int, priority: str) -> None:
    path, server = journal
    handler = logs.JournalHandler(path)
    try:
        logger_with(handler).log(level, "a line")
    finally:
        handler.close()
    assert parse_datagram(server.recv(65536))["PRIORITY"] == priority


def test_a_message_stays_one_escaped_line_and_a_traceback_is_indented(journal: tuple[str, socket.socket]) -> None:
    path, server = journal
    handler = logs.JournalHandler(path)
    logger = logger_with(handler)
    try:
        logger.warning("refused %s: link", "notes\nINFO twentyday.pipeline.worker: ledger head 9:ab")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error("internal error on item %s", "sp-1", exc_info=True)
    finally:
        handler.close()
    forged = parse_datagram(server.recv(65536))["MESSAGE"]
    assert forged == "refused notes\\nINFO twentyday.pipeline.worker: ledger head 9:ab: link"
    message = parse_datagram(server.recv(65536))["MESSAGE"].split("\n")
    assert message[0] == "internal error on item sp-1"
    assert message[1] == "    | Traceback (most recent call last):"
    assert message[-1] == "    | ValueError: boom" and all(line.startswith("    | ") for line in message[1:])


def test_without_a_journal_listening_the_line_goes_to_stderr(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    handler = logs.JournalHandler(str(tmp_path / "no-journal-here"))
    try:
        logger_with(handler).warning("quarantined %s: bad_json", "cap-2")
    finally:
        handler.close()
    assert capsys.readouterr().err == "WARNING twentyday.test_journal: quarantined cap-2: bad_json\n"


CHILD = """
import logging, sys
from twentyday import logs
logging.basicConfig(level="INFO", handlers=[logs.handler(sys.argv[1])])
logging.getLogger("twentyday.daemon").info("twentyday serving", extra={"event": "started"})
"""


def run_child(socket_path: str, stderr_path: Path, journal_stream: str | None) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("JOURNAL_STREAM", None)
    if journal_stream is not None:
        env["JOURNAL_STREAM"] = journal_stream
    with stderr_path.open("wb") as stderr:
        subprocess.run([sys.executable, "-c", CHILD, socket_path], stderr=stderr, env=env, check=True, timeout=60)
    return stderr_path.read_text()


def test_the_journal_is_used_only_when_stderr_is_the_stream_journal_stream_names(
        journal: tuple[str, socket.socket], tmp_path: Path) -> None:
    path, server = journal
    stderr_path = tmp_path / "stderr"
    stderr_path.touch()
    found = os.stat(stderr_path)
    # systemd's case: stderr is the stream $JOURNAL_STREAM names.
    assert run_child(path, stderr_path, f"{found.st_dev}:{found.st_ino}") == ""
    fields = parse_datagram(server.recv(65536))
    assert (fields["MESSAGE"], fields["TWENTYDAY_EVENT"], fields["PRIORITY"]) == ("twentyday serving", "started", "6")
    # A child whose stderr was redirected inherits the variable, but its stderr is another file.
    other = tmp_path / "other"
    other.touch()
    inode = os.stat(other).st_ino
    assert run_child(path, stderr_path, f"{found.st_dev}:{inode}") == "INFO twentyday.daemon: twentyday serving\n"
    assert run_child(path, stderr_path, None) == "INFO twentyday.daemon: twentyday serving\n"
    assert run_child(path, stderr_path, "not-a-stream") == "INFO twentyday.daemon: twentyday serving\n"
    server.settimeout(0.2)
    with pytest.raises(TimeoutError):
        server.recv(65536)  # nothing reached the journal in the three cases without it
