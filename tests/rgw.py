"""A real, local S3 service with Object Lock: a one-node Ceph cluster and its RADOS Gateway, in a folder.

Debian's own packages (``apt-get install --no-install-recommends ceph-mon ceph-osd radosgw ceph-common``)
run as plain processes, no systemd: one monitor, one OSD keeping its objects in memory (memstore), and
radosgw serving S3 on a free port of 127.0.0.1. Everything the cluster writes (its config, the monitor's
data, the OSD's folder, logs, admin sockets, pid files, the credentials file) stays under the folder
given, so two test runs, or a test and a person's setup, never meet. Stdlib only: ``scripts/local-s3``
runs it with the system's Python.

    handle = start(folder)          # returns when the S3 endpoint answers
    handle.endpoint                 # "http://127.0.0.1:<port>"
    handle.credentials_file         # AWS shared-credentials format, mode 0600, profile "default"
    handle.stop()                   # radosgw, then the OSD, then the monitor

From a script: ``python -m tests.rgw start FOLDER`` (prints the endpoint and the credentials file and
leaves the cluster running) and ``python -m tests.rgw stop FOLDER``.

What made it work on Ceph 16.2 (issue 17): cephx off, and then ``ms mon client mode = crc`` or radosgw
loops on an auth error; ``paxos propose interval = 0.05``, else each pool radosgw creates costs about 2 s;
the beast frontend with ``tcp_nodelay=1``, else about 45 ms a request; keys made with ``radosgw-admin
user create``.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests import localproc

PACKAGES = ("ceph-mon", "ceph-osd", "radosgw", "ceph-common")
BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool")
REGION = "us-east-1"  # what RGW's default zonegroup answers to; an S3 client must name some region
SERVICE = "local RGW"  # what messages call it
STATE = "rgw.json"
CONFIG = "ceph.conf"
CREDENTIALS = "s3.credentials"
# The order to stop them in: radosgw first (it needs the OSD to shut down cleanly), the monitor last.
DAEMONS = ("client.rgw", "osd.0", "mon.a")
STOP_GRACE = 15.0  # seconds a daemon gets after SIGTERM before SIGKILL
_SAFE_PATH = re.compile(r"^[A-Za-z0-9/._+=@,-]+$")  # what a ceph.conf value can hold without quoting
_SOCKET_PATH_MAX = 107  # sun_path, less the NUL


class RGWError(RuntimeError):
    """The local cluster did not start or stop; the message names the log to read."""


@dataclass(frozen=True)
class LocalRGW:
    """A running local RGW: where it answers and the keys of its one user."""

    folder: Path
    endpoint: str
    access_key: str
    secret_key: str
    credentials_file: Path
    region: str = REGION

    @property
    def log_file(self) -> Path:
        """radosgw's own log: requests, errors, start-up."""
        return self.folder / "log" / "client.rgw.log"

    def stop(self) -> None:
        stop(self.folder)


def start(folder: Path, *, timeout: float = 60.0, store_bytes: int = 1 << 30, owned: bool = True) -> LocalRGW:
    """Make a one-node Ceph cluster with RGW in ``folder`` (new or empty) and return once S3 answers.

    ``owned`` (the default, for tests): the daemons die with this process, by atexit and, for a
    SIGKILL of it, by the kernel's parent-death signal (which follows the thread that calls start:
    call it from a thread that lives as long as the cluster should, as pytest's main thread does).
    ``owned=False`` (the CLI) leaves them running for ``stop(folder)``. ``store_bytes`` is the OSD's
    capacity; memstore keeps every object in memory.
    """
    _check_installed()
    folder = folder.absolute()
    localproc.check_new_folder(folder, STATE, SERVICE, RGWError)
    if not _SAFE_PATH.match(str(folder)):
        raise RGWError(f"{folder}: a local RGW's folder path may hold only letters, digits and /._+=@,-")
    if len(str(folder / "run" / "client.rgw.asok")) > _SOCKET_PATH_MAX:
        raise RGWError(f"{folder}: too long for the admin sockets under it (a UNIX socket path is at most "
                       f"{_SOCKET_PATH_MAX} bytes); choose a shorter folder")
    if owned:
        localproc.stop_with_this_process(stop, folder)
    for attempt in range(3):
        try:
            _start_in(folder, timeout=timeout, store_bytes=store_bytes, owned=owned)
            break
        except RGWError:
            # A port chosen free was taken before a daemon bound it: start again, on other ports.
            if attempt == 2 or not any(b"Address already in use" in path.read_bytes()
                                       for path in (folder / "log").glob("*.log")):
                raise
            for entry in folder.iterdir():  # all made by this call: the folder was empty
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
    return load(folder)


def _start_in(folder: Path, *, timeout: float, store_bytes: int, owned: bool) -> None:
    for sub in ("run", "log", "mon/mon.a", "osd/osd.0", "rgw", "crash"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    mon_port, rgw_port = _free_ports(2)
    fsid = str(uuid.uuid4())
    conf = folder / CONFIG
    conf.write_text(_config(folder, fsid, mon_port, rgw_port, store_bytes))
    state: dict[str, object] = {"endpoint": f"http://127.0.0.1:{rgw_port}", "mon_port": mon_port,
                                "credentials_file": str(folder / CREDENTIALS), "pids": {}, "pgid": None}
    localproc.save_state(folder, STATE, state)
    try:
        _run(folder, "monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", "--fsid", fsid,
             str(folder / "monmap"))
        _run(folder, "ceph-mon", "-c", str(conf), "-i", "a", "--mkfs", "--monmap", str(folder / "monmap"))
        _spawn(folder, state, "mon.a", ["ceph-mon", "-c", str(conf), "-i", "a", "-f"], owned)
        osd_uuid = str(uuid.uuid4())
        # The ceph CLI waits for the monitor to answer (up to --connect-timeout), so no polling here.
        osd_id = _run(folder, "ceph", "-c", str(conf), "--connect-timeout", str(int(timeout)),
                      "osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise RGWError(f"the monitor gave the OSD id {osd_id!r}, not 0; see {folder / 'log' / 'mon.a.log'}")
        _run(folder, "ceph-osd", "-c", str(conf), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        _spawn(folder, state, "osd.0", ["ceph-osd", "-c", str(conf), "-i", "0", "-f"], owned)
        # radosgw waits for the OSD itself, then makes its pools.
        _spawn(folder, state, "client.rgw", ["radosgw", "-c", str(conf), "-n", "client.rgw", "-f"], owned)
        _wait_for_s3(folder, state, timeout)
        # radosgw-admin makes the keys (not passed on its command line, which any local user can read)
        user = json.loads(_run(folder, "radosgw-admin", "-c", str(conf), "user", "create", "--uid=twentyday",
                               "--display-name=twentyday tests", "--gen-access-key", "--gen-secret"))
        key = user["keys"][0]
        _write_credentials(folder / CREDENTIALS, key["access_key"], key["secret_key"])
    except BaseException:
        localproc.stop_quietly(stop, folder)
        raise


def load(folder: Path) -> LocalRGW:
    """The handle of the local RGW started in ``folder`` (by this process or another)."""
    folder = folder.absolute()
    state = localproc.started_state(folder, STATE, SERVICE, RGWError)
    credentials_file = Path(state["credentials_file"])
    parser = configparser.ConfigParser()
    if not parser.read(credentials_file):
        raise RGWError(f"{credentials_file}: missing; the local RGW in {folder} did not finish starting")
    return LocalRGW(folder=folder, endpoint=state["endpoint"],
                    access_key=parser["default"]["aws_access_key_id"],
                    secret_key=parser["default"]["aws_secret_access_key"],
                    credentials_file=credentials_file)


def stop(folder: Path) -> None:
    """Stop radosgw, then the OSD, then the monitor; SIGKILL what outlives its grace, then the group.

    Only processes of this folder are signalled: each recorded pid is checked to be running with this
    folder's ceph.conf before it is signalled, so a pid the kernel has since given to another process is
    left alone. Stopping a folder twice, or one whose start failed half way, is fine.
    """
    folder = folder.absolute()
    try:
        state = localproc.load_state(folder, STATE)
    except (OSError, ValueError):
        return
    conf = str(folder / CONFIG)
    pids: dict[str, int] = state.get("pids", {})
    for name in DAEMONS:
        pid = pids.get(name)
        if pid is None or not _is_ours(pid, conf):
            continue
        started = localproc.started(pid)
        localproc.send(pid, signal.SIGTERM)
        if not localproc.wait_gone(pid, started, STOP_GRACE):
            localproc.send(pid, signal.SIGKILL)
            localproc.wait_gone(pid, started, 5.0)
    # Whatever else still runs with this folder's config (a radosgw-admin cut short, a daemon whose pid
    # was never recorded): its process group first, then each one.
    pgid = state.get("pgid")
    strays = {pid: localproc.started(pid) for pid in _pids_with(conf)}
    if pgid is not None and any(localproc.group(pid) == pgid for pid in strays):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for pid in strays:
        localproc.send(pid, signal.SIGKILL)
    for pid, started in strays.items():
        localproc.wait_gone(pid, started, 5.0)


def rss_bytes(folder: Path) -> int:
    """The resident memory of the folder's ceph processes, added up."""
    total = 0
    for pid in _pids_with(str(folder.absolute() / CONFIG)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def _check_installed() -> None:
    missing = missing_binaries()
    if missing:
        raise RGWError(f"{', '.join(missing)} not found; install Ceph's daemons: "
                       f"apt-get install --no-install-recommends {' '.join(PACKAGES)}")


def _config(folder: Path, fsid: str, mon_port: int, rgw_port: int, store_bytes: int) -> str:
    return f"""\
# A one-node Ceph cluster for tests (tests/rgw.py); everything it writes stays under {folder}.
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
# cephx off; radosgw then loops on an auth error unless the monitor client mode is crc
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
keyring = {folder}/keyring
run dir = {folder}/run
admin socket = {folder}/run/$name.asok
pid file = {folder}/run/$name.pid
log file = {folder}/log/$name.log
mon cluster log file = {folder}/log/cluster.log
crash dir = {folder}/crash
# one OSD: every pool has one copy
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 1
# else each pool radosgw creates at start costs about 2 s
paxos propose interval = 0.05

[mon]
mon data = {folder}/mon/$name

[osd]
osd data = {folder}/osd/$name
osd objectstore = memstore
memstore device bytes = {store_bytes}

[client.rgw]
rgw data = {folder}/rgw
# tcp_nodelay: else about 45 ms a request
rgw frontends = beast endpoint=127.0.0.1:{rgw_port} tcp_nodelay=1
"""


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run(folder: Path, *argv: str, timeout: float = 60.0) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, cwd=folder)
    except subprocess.TimeoutExpired:
        raise RGWError(f"{argv[0]} did not finish in {timeout:.0f} s; see the logs in {folder / 'log'}") from None
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RGWError(f"{argv[0]} exited {done.returncode}: {tail[:300]}; see the logs in {folder / 'log'}")
    return done.stdout


def _spawn(folder: Path, state: dict[str, object], name: str, argv: list[str], owned: bool) -> None:
    pgid = state["pgid"]
    out = (folder / "log" / f"{name}.out").open("ab")
    try:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
            # one process group for the cluster, led by the monitor: one killpg reaches every daemon
            process_group=0 if pgid is None else int(str(pgid)),
            preexec_fn=localproc.die_with_parent if owned else None,
        )
    finally:
        out.close()
    pids = state["pids"]
    assert isinstance(pids, dict)
    pids[name] = process.pid
    if pgid is None:
        state["pgid"] = process.pid
    localproc.save_state(folder, STATE, state)


def _wait_for_s3(folder: Path, state: dict[str, object], timeout: float) -> None:
    endpoint = str(state["endpoint"])
    pids = state["pids"]
    assert isinstance(pids, dict)
    conf = str(folder / CONFIG)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=2) as response:  # anonymous ListBuckets
                # RGW's answer, not another server's that took the port between choosing and binding it
                if response.status == 200 and b"ListAllMyBucketsResult" in response.read(4096):
                    return
        except (urllib.error.URLError, OSError):
            pass
        for name, pid in pids.items():
            if not _is_ours(pid, conf):
                raise RGWError(f"{name} exited while the local RGW was starting; see {folder / 'log' / name}.log "
                               f"and {name}.out beside it")
        if time.monotonic() > deadline:
            raise RGWError(f"the local RGW did not answer at {endpoint} within {timeout:.0f} s; "
                           f"see {folder / 'log' / 'client.rgw.log'}")
        time.sleep(0.05)


def _write_credentials(path: Path, access_key: str, secret_key: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n")
    os.chmod(path, 0o600)  # whatever the umask


def _is_ours(pid: int, conf: str) -> bool:
    """Running (not a zombie) with this folder's ceph.conf."""
    return localproc.started(pid) is not None and conf in localproc.cmdline(pid)


def _pids_with(conf: str) -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and int(entry.name) != os.getpid() and _is_ours(int(entry.name), conf)]


def main(argv: list[str]) -> int:
    store_bytes = 1 << 30
    if len(argv) == 4 and argv[0] == "start" and argv[2] == "--store-bytes" and argv[3].isdigit():
        store_bytes, argv = int(argv[3]), argv[:2]  # the OSD's capacity; memstore holds it in memory

    def start_running(folder: Path) -> list[str]:
        handle = start(folder, owned=False, store_bytes=store_bytes)
        return [f"endpoint: {handle.endpoint}", f"credentials: {handle.credentials_file}",
                f"region: {handle.region}", f"logs: {folder.absolute() / 'log'}"]

    def stop_it(folder: Path) -> str:
        stop(folder)
        return f"stopped the {SERVICE} in {folder.absolute()}"

    return localproc.command(argv, usage="usage: python -m tests.rgw start FOLDER [--store-bytes N] | stop FOLDER",
                             service=SERVICE, error=RGWError, start=start_running, stop=stop_it)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
