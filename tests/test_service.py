"""The notify protocol's environment, the datagrams on a real socket, and the worker's heartbeat pipe."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from twentyday.pipeline.heartbeat import Heartbeat, HeartbeatPipe
from twentyday.service import Status, Systemd


def test_no_notify_socket_means_nothing_is_sent_and_no_heartbeat() -> None:
    systemd = Systemd.from_environment({})
    assert not systemd.enabled
    assert systemd.beat_seconds is None
    assert systemd.send("READY=1") is False


def test_a_path_socket_receives_the_lines_as_one_datagram(tmp_path: Path) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(path))
        systemd = Systemd.from_environment({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "30000000"})
        assert systemd.watchdog_seconds == 30.0
        assert systemd.beat_seconds == 7.5
        assert systemd.send("READY=1", "STATUS=0 item(s) in the spool")
        assert receiver.recv(4096) == b"READY=1\nSTATUS=0 item(s) in the spool"
        systemd.close()


def test_an_abstract_socket_is_named_with_an_at_sign() -> None:
    name = f"twentyday-unit-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind("\0" + name)
        systemd = Systemd.from_environment({"NOTIFY_SOCKET": "@" + name})
        assert systemd.watchdog_seconds is None
        assert systemd.beat_seconds == 5.0  # read for STATUS= only
        assert systemd.send("WATCHDOG=1")
        assert receiver.recv(4096) == b"WATCHDOG=1"
        systemd.close()


def test_the_watchdog_is_for_the_pid_systemd_names_only() -> None:
    environment = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "4242"}
    assert Systemd.from_environment(environment, pid=4242).watchdog_seconds == 2.0
    assert Systemd.from_environment(environment, pid=4243).watchdog_seconds is None
    assert Systemd.from_environment({**environment, "WATCHDOG_USEC": "soon"}, pid=4242).watchdog_seconds is None
    assert Systemd.from_environment({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled is False


def test_a_gone_socket_is_logged_once_and_never_raises(caplog: pytest.LogCaptureFixture) -> None:
    systemd = Systemd.from_environment({"NOTIFY_SOCKET": "/nonexistent/notify.sock"})
    assert systemd.send("READY=1") is False
    assert systemd.send("WATCHDOG=1") is False
    assert [r.getMessage() for r in caplog.records] == ["cannot notify systemd: No such file or directory"]
    systemd.close()


def test_the_status_line() -> None:
    assert Status(3, 2, "2026-03-01T10:00:00+00:00").line() == \
        "3 item(s) in the spool, 2 open alert(s), last capture 2026-03-01T10:00:00+00:00"
    assert Status(-1, -1, None, stalled_seconds=12.4).line() == \
        "? item(s) in the spool, ? open alert(s), last capture none yet; " \
        "pipeline: no progress for 12 s"


def test_the_heartbeat_reaches_the_daemon_at_most_once_per_interval() -> None:
    pipe = HeartbeatPipe()
    now = [100.0]
    child = pipe.for_child()
    beats = Heartbeat(child.fileno(), every=1.0, clock=lambda: now[0])
    assert not pipe.arrived()
    beats.beat()
    beats.beat()  # within the interval: no write
    assert pipe.arrived()
    assert not pipe.arrived()  # read: emptied
    now[0] += 1.0
    beats.beat()
    assert pipe.arrived()
    for _ in range(100_000):  # more beats than a pipe holds: the writer never blocks
        now[0] += 1.0
        beats.beat()
    assert pipe.arrived()
    assert not pipe.arrived()
    child.close()
    pipe.close()
    Heartbeat(None, every=1.0).beat()  # no daemon listening: nothing to do
