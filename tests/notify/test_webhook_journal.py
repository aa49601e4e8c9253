"""The webhook against a real HTTP server that checks the signature; the journal through a real socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from standardwebhooks import Webhook

from tests.notify.conftest import Clock, open_alert, secret_file
from twentyday.cli import cli
from twentyday.notify.deliver import Deliverer
from twentyday.notify.sinks import journal_datagram
from twentyday.store import outbox
from twentyday.store.archive import Archive

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


class Receiver:
    """Answers each POST with the next status of ``statuses``; keeps (headers, body, signature_ok)."""

    def __init__(self, statuses: list[int], port: int = 0) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes, bool]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append((headers, body, signature_ok(headers, body)))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/t0k3n-in-path"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def signature_ok(headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check, written out here: HMAC-SHA256 of "id.timestamp.body", base64, "v1,"."""
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, headers["webhook-signature"])


@pytest.fixture
def receiver_for() -> Iterator[Callable[[list[int]], Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int]) -> Receiver:
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for receiver in made:
        receiver.server.shutdown()
        receiver.server.server_close()


def webhook_config(tmp_path: Path, url: str) -> str:
    secret = secret_file(tmp_path / "webhook.secret", SECRET)
    return f"""
[alerts.journal]
enabled = false

[alerts.webhook]
url = "{url}"
secret_file = "{secret}"
timeout_seconds = 5
"""


def test_the_spec_example_signs_as_published() -> None:
    """Standard Webhooks' published example (spec, "Signature scheme"): the library signs it the same way."""
    signature = Webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").sign(
        "msg_p5jXN8AQM9LWM0D4loKWxJek", datetime.fromtimestamp(1614265330, UTC), '{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_webhook_signed_retried_after_500_then_delivered_once(
        tmp_path: Path, opened: Callable[[str], Archive], receiver_for: Callable[[list[int]], Receiver],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = receiver_for([500, 200])
    archive = opened(webhook_config(tmp_path, receiver.url))
    alert_id = open_alert(archive, "deleted_message", "jdoe", "Budget team", "1 deleted message event(s) in cap-01")
    clock = Clock()
    deliverer = Deliverer(archive, clock=clock)
    assert deliverer.drain().retried == 1
    [row] = outbox.deliveries(archive.conn)
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "http_500")
    clock.at += timedelta(minutes=5)
    assert deliverer.drain().delivered == 1
    assert deliverer.drain().attempted == 0
    assert len(receiver.requests) == 2
    (first, body, first_ok), (second, _, second_ok) = receiver.requests
    assert first_ok and second_ok
    assert first["webhook-id"] == second["webhook-id"] == row["message_id"]  # one message, tried twice
    assert int(second["webhook-timestamp"]) - int(first["webhook-timestamp"]) == 300
    document = json.loads(body)
    assert document["type"] == "alert.opened"
    assert document["data"]["alert"]["id"] == alert_id
    assert document["data"]["alert"]["kind"] == "deleted_message"
    [row] = outbox.deliveries(archive.conn)
    assert (row["state"], row["attempts"], row["last_error"]) == ("delivered", 2, "")
    assert row["recipient"].startswith("127.0.0.1#") and "t0k3n" not in row["recipient"]
    assert SECRET not in caplog.text and SECRET.removeprefix("whsec_") not in caplog.text
    assert "t0k3n" not in caplog.text


def test_webhook_410_disables_the_endpoint_and_alerts_say_so(
        tmp_path: Path, opened: Callable[[str], Archive], receiver_for: Callable[[list[int]], Receiver]) -> None:
    receiver = receiver_for([410])
    archive = opened(webhook_config(tmp_path, receiver.url))
    open_alert(archive, "late_capture", "jdoe", "Budget team", "1 record(s) captured after the deadline")
    deliverer = Deliverer(archive, clock=Clock())
    assert deliverer.drain().disabled == 1
    open_alert(archive, "undated_record", "jdoe", "Budget team", "1 record(s) without an original time")
    done = deliverer.drain()
    assert done.attempted == 0 and len(receiver.requests) == 1  # a gone endpoint is not called again
    states = [(r["event"], r["state"], r["last_error"]) for r in reversed(outbox.deliveries(archive.conn))]
    assert states == [("opened", "disabled", "http_410"), ("opened", "disabled", "endpoint_disabled")]
    result = CliRunner().invoke(cli, ["--config", str(archive.config.path), "alerts", "--json"])
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 2
    assert "webhook endpoint 127.0.0.1#" in result.stderr and "answered HTTP 410" in result.stderr
    listing = CliRunner().invoke(cli, ["--config", str(archive.config.path), "alerts", "deliveries"])
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "ALERT", "EVENT", "SINK", "RECIPIENT", "STATE", "TRIES", "LAST", "ERROR",
                                "CREATED", "SETTLED"]
    assert lines[-1] == "2 deliveries"
    verified = CliRunner().invoke(cli, ["--config", str(archive.config.path), "verify"])
    assert verified.exit_code == 0, verified.output


def parse_datagram(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    while data:
        line, _, rest = data.partition(b"\n")
        if b"=" in line:
            key, _, value = line.partition(b"=")
            fields[key.decode()] = value.decode()
            data = rest
        else:
            (size,) = struct.unpack("<Q", rest[:8])
            fields[line.decode()] = rest[8:8 + size].decode()
            data = rest[8 + size + 1:]
    return fields


def test_journal_gets_structured_fields_over_the_native_protocol(
        tmp_path: Path, opened: Callable[[str], Archive]) -> None:
    path = tmp_path / "journal.sock"
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(path))
    journal.settimeout(5)
    try:
        archive = opened(f'[alerts.journal]\nsocket = "{path}"\n')
        alert_id = open_alert(archive, "late_capture", "jdoe", "Budget\nteam",
                              "3 record(s) captured after the deadline")
        assert Deliverer(archive, clock=Clock()).drain().delivered == 1
        fields = parse_datagram(journal.recv(65536))
    finally:
        journal.close()
    assert fields["SYSLOG_IDENTIFIER"] == "twentyday"
    assert fields["ALERT_KIND"] == "late_capture"
    assert fields["ALERT_ID"] == str(alert_id)
    assert fields["ALERT_EVENT"] == "opened"
    assert fields["CUSTODIAN"] == "jdoe"
    assert fields["PRIORITY"] == "4"
    assert fields["MESSAGE"] == (f"twentyday alert {alert_id} opened: late_capture custodian=jdoe: "
                                 "3 record(s) captured after the deadline")
    # The journal is the system log: a chat's name (its export's file name) is not in it.
    assert "CONVERSATION" not in fields
    assert not [value for value in fields.values() if "Budget" in value]


def test_no_journal_socket_falls_back_to_one_line_on_stderr(
        tmp_path: Path, opened: Callable[[str], Archive], caplog: pytest.LogCaptureFixture) -> None:
    archive = opened(f'[alerts.journal]\nsocket = "{tmp_path / "none.sock"}"\n')
    open_alert(archive, "ingest_failed", "", "", "cap-0123: bad_json")
    with caplog.at_level(logging.INFO, logger="twentyday.alert"):
        assert Deliverer(archive, clock=Clock()).drain().delivered == 1
    [record] = [r for r in caplog.records if r.name == "twentyday.alert"]
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "twentyday alert 1 opened: ingest_failed custodian=-: cap-0123: bad_json"
    [row] = outbox.deliveries(archive.conn)
    assert (row["state"], row["last_error"]) == ("delivered", "stderr")


def test_the_stderr_line_of_a_chats_alert_names_the_alert_not_the_chat(
        tmp_path: Path, opened: Callable[[str], Archive], caplog: pytest.LogCaptureFixture) -> None:
    archive = opened(f'[alerts.journal]\nsocket = "{tmp_path / "none.sock"}"\n')
    alert_id = open_alert(archive, "late_capture", "jdoe", "Merger with Acme",
                          "3 record(s) captured after the deadline in cap-0123")
    with caplog.at_level(logging.INFO, logger="twentyday.alert"):
        assert Deliverer(archive, clock=Clock()).drain().delivered == 1
    [record] = [r for r in caplog.records if r.name == "twentyday.alert"]
    assert record.getMessage() == (f"twentyday alert {alert_id} opened: late_capture custodian=jdoe: "
                                   "3 record(s) captured after the deadline in cap-0123")
    # The officer reads the conversation by the alert's id.
    listed = CliRunner().invoke(cli, ["--config", str(archive.config.path), "alerts"])
    assert listed.exit_code == 0, listed.output
    assert any(line.split()[0] == str(alert_id) and "Merger with Acme" in line for line in listed.output.splitlines()
               if line.strip())


def test_journal_datagram_form() -> None:
    assert journal_datagram({"A": "x", "B": "y\nz"}) == b"A=x\nB\n" + struct.pack("<Q", 3) + b"y\nz\n"
