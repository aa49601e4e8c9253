"""The real daemon with its sealed blobs in the bucket (a real Ceph RGW): SIGKILL with mail in flight,
and the bucket refusing the archive's key for a while. Every 250 survives, none twice, verify passes."""

from __future__ import annotations

import json
import signal
import smtplib
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.rgw import LocalRGW
from tests.s3archive import make_s3_archive
from tests.smtp_helpers import configure
from tests.system.test_smtp_crash import conversations, serve, thread_names, wait_port
from twentyday.cli import cli


@pytest.fixture
def s3_archive_dir(tmp_path: Path, rgw: LocalRGW) -> Path:
    make_s3_archive(tmp_path / "arch", rgw, now=datetime.now(UTC))
    return tmp_path / "arch"


def send(port: int, message_ids: list[str], accepted: list[str], lock: threading.Lock) -> None:
    for message_id in message_ids:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                                make_mail(message_id=message_id, body=f"sealed into the bucket {message_id}"))
        except (smtplib.SMTPException, OSError):
            return  # the server died under us: this one never got its 250
        with lock:
            accepted.append(message_id)


def wait_for(config: Path, message_ids: list[str], seconds: float) -> list[str]:
    expected = set(thread_names(config, message_ids))
    deadline = time.monotonic() + seconds
    archived = conversations(config)
    while time.monotonic() < deadline and not expected <= set(archived):
        time.sleep(0.2)
        archived = conversations(config)
    return archived


def verify_ok(config: Path) -> str:
    result = CliRunner().invoke(cli, ["--config", str(config), "verify"])
    assert result.exit_code == 0, result.output
    return result.output


def test_sigkill_with_mail_in_flight_loses_and_duplicates_nothing_in_the_bucket(s3_archive_dir: Path) -> None:
    config, port = configure(s3_archive_dir)
    daemon = serve(config)
    wait_port(port)
    accepted: list[str] = []
    lock = threading.Lock()
    threads = [threading.Thread(target=send, args=(port, [f"<w{w}-m{n}@s3crash.test>" for n in range(10)],
                                                   accepted, lock)) for w in range(8)]
    for thread in threads:
        thread.start()
    while len(accepted) < 25:
        time.sleep(0.005)
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(30)
    for thread in threads:
        thread.join(30)
    assert 25 <= len(accepted) < 80

    daemon = serve(config)
    try:
        wait_port(port)
        archived = wait_for(config, accepted, 60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    assert set(thread_names(config, accepted)) <= set(archived)
    assert len(archived) == len(set(archived))  # none twice
    verify_ok(config)


def _admin(rgw: LocalRGW, *argv: str) -> str:
    done = subprocess.run(["radosgw-admin", "-c", str(rgw.folder / "ceph.conf"), *argv], capture_output=True,
                          text=True, timeout=60, check=True, stdin=subprocess.DEVNULL, cwd=rgw.folder)
    return done.stdout


@pytest.fixture
def own_user(rgw: LocalRGW, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A second RGW user with its own keys (uid, credentials file): suspended by the test, not the session's."""
    uid = f"outage-{time.monotonic_ns()}"
    made = json.loads(_admin(rgw, "user", "create", f"--uid={uid}", f"--display-name={uid}",
                             "--gen-access-key", "--gen-secret"))
    [keys] = made["keys"]
    credentials = tmp_path / "own.credentials"
    credentials.touch(mode=0o600)
    credentials.write_text(f"[default]\naws_access_key_id = {keys['access_key']}\n"
                           f"aws_secret_access_key = {keys['secret_key']}\n")
    yield uid, credentials
    _admin(rgw, "user", "enable", f"--uid={uid}")


@dataclass(frozen=True)
class OwnKeys:
    endpoint: str
    credentials_file: Path


def test_while_the_bucket_refuses_the_archive_mail_is_still_accepted_and_kept_until_it_can_be_sealed(
        tmp_path: Path, rgw: LocalRGW, own_user: tuple[str, Path]) -> None:
    uid, credentials = own_user
    archive_dir = tmp_path / "arch"
    make_s3_archive(archive_dir, OwnKeys(rgw.endpoint, credentials), now=datetime.now(UTC))
    config, port = configure(archive_dir)
    daemon = serve(config)
    try:
        wait_port(port)
        before = [f"<before-{n}@outage.test>" for n in range(5)]
        accepted: list[str] = []
        lock = threading.Lock()
        send(port, before, accepted, lock)
        assert wait_for(config, before, 30) and accepted == before

        _admin(rgw, "user", "suspend", f"--uid={uid}")  # the bucket now answers 403 to the archive's key
        during = [f"<during-{n}@outage.test>" for n in range(5)]
        send(port, during, accepted, lock)
        assert accepted == before + during  # 250: durable in the spool, whatever the bucket says
        time.sleep(3)
        assert not set(thread_names(config, during)) & set(conversations(config))  # nothing committed without it

        _admin(rgw, "user", "enable", f"--uid={uid}")
        archived = wait_for(config, during, 90)  # the worker retries the spooled batch
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(45) == 0
    assert set(thread_names(config, before + during)) <= set(archived)
    assert len(archived) == len(set(archived))
    verify_ok(config)
