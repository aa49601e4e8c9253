"""The EML a recipient gets is byte for byte the DATA a real `serve` received over SMTP."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.conftest import make_mail
from tests.export.conftest import Officer, unzip
from tests.smtp_helpers import DaemonThread, configure


def smtp_conversation(port: int, data_lines: list[bytes]) -> None:
    """A plain SMTP client on a real socket: the DATA section exactly as given, already dot-stuffed."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")

        def expect(code: bytes) -> None:
            while True:
                line = reader.readline()
                assert line[:3] == code, line
                if line[3:4] != b"-":
                    return

        expect(b"220")
        for command, code in ((b"EHLO client.example", b"250"), (b"MAIL FROM:<jane.doe@gmail.com>", b"250"),
                              (b"RCPT TO:<records@agency.example>", b"250"), (b"DATA", b"354")):
            sock.sendall(command + b"\r\n")
            expect(code)
        sock.sendall(b"".join(data_lines) + b".\r\n")
        expect(b"250")
        sock.sendall(b"QUIT\r\n")
        expect(b"221")


def test_exported_eml_is_what_smtp_received_after_dot_unstuffing(archive_dir: Path, tmp_path: Path) -> None:
    config, port = configure(archive_dir)
    mail = make_mail(message_id="<wire@example.test>", subject="Wire bytes",
                     body=".leading dot survives\n..two dots\nTrailing spaces   \nend")
    lines = [line + b"\r\n" for line in mail.rstrip(b"\n").split(b"\n")]
    stuffed = [b"." + line if line.startswith(b".") else line for line in lines]
    assert stuffed != lines  # the wire form differs from what the server keeps
    running = DaemonThread(config).start()
    try:
        smtp_conversation(port, stuffed)
        officer = Officer(archive_dir, tmp_path)
        deadline = time.monotonic() + 30
        while not (found := officer.search("--platform", "email")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(found) == 1
    finally:
        running.stop()
    out = tmp_path / "wire.zip"
    result = officer.export("eml", out, "--record", found[0]["id"])
    assert result.exit_code == 0, result.output
    [eml] = (unzip(out, tmp_path / "opened") / "mail").glob("*.eml")
    assert eml.name == f"{found[0]['capture_id']}.eml"
    assert eml.read_bytes() == b"".join(lines)  # unstuffed, CRLF as sent: what the server received
