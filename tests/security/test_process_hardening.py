"""Item 9 of issue 12: the daemon's memory stays its own.

``serve`` holds the daemon's secrets, each capture's data key and the plaintext it seals.
The attacker is a process of the same user (anything the daemon's account runs, or
whatever took over one of its helpers) or a crash that writes a core file: a real
``serve`` must have a core file limit of 0 and, on Linux, not be dumpable, in the
daemon and in the pipeline process it spawns (``exec`` resets the flag).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from twentyday.initialise import init_archive
from twentyday.store.verify import open_read_only

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
linux = pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc (Linux)")
SETPRIV = shutil.which("setpriv")
NOBODY = 65534
nobody_can_run = pytest.mark.skipif(os.geteuid() != 0 or SETPRIV is None,
                                    reason="needs root and setpriv to run serve as nobody")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_archive(directory: Path) -> Path:
    init_archive(directory, passphrase=None, demo=False, now=NOW)
    config = directory / "twentyday.toml"
    config.write_text(config.read_text().replace("127.0.0.1:2525", f"127.0.0.1:{free_port()}"))
    return config


def as_nobody(*command: str) -> list[str]:
    return [str(SETPRIV), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


#: Our packages without this interpreter's own library (which may be where nobody cannot read).
NOBODY_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in sys.path if p and not p.startswith((sys.base_prefix, sys.base_exec_prefix)))}


def interpreter_for_nobody() -> str | None:
    """A Python of this version that nobody can run and re-run (multiprocessing spawns with it):
    this one, unless it lives where nobody may not go (a pyenv under /root), else the system's."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/python{version}"):
        probe = subprocess.run(as_nobody(candidate, "-c", (
            "import subprocess, sys; sys.exit(subprocess.call([sys.executable, '-c', 'import twentyday.cli']) "
            f"or sys.version_info[:2] != ({version.replace('.', ', ')}))")),
            capture_output=True, env=NOBODY_ENV, timeout=60, cwd="/")
        if probe.returncode == 0:
            return candidate
    return None


def start_serve(config: Path, *, as_user: int | None = None) -> subprocess.Popen[str]:
    """A real ``serve``, up once it has logged the ledger head."""
    if as_user is None:
        command, env = [sys.executable], ENV
    else:
        interpreter = interpreter_for_nobody()
        if interpreter is None:
            pytest.skip("no Python that the unprivileged user can run")
        command, env = as_nobody(interpreter), NOBODY_ENV
    process = subprocess.Popen([*command, "-m", "twentyday", "--config", str(config), "serve"],
                               stderr=subprocess.PIPE, text=True, env=env, cwd="/")
    assert process.stderr is not None
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        seen.append(line)
        if "ledger head" in line or not line:
            break
    assert "ledger head" in "".join(seen), "".join(seen)
    return process


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0


def pipeline_pids(pid: int) -> list[int]:
    """The pipeline process serve spawned, once it is up (multiprocessing's resource tracker,
    which holds nothing of ours, is not one)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        found = [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        if found:
            return found
        time.sleep(0.2)
    pytest.fail("serve started no pipeline process")


def eventually(check: Callable[[], bool], seconds: float = 20.0) -> bool:
    """``check()`` within ``seconds``: a spawned process hardens itself in its first lines, which a
    loaded machine reaches late (a fixed wait made this test flaky); one that never does still fails."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def not_dumpable(pid: int) -> bool:
    """A process that is not dumpable has its /proc entries owned by root, whoever runs it."""
    return Path(f"/proc/{pid}/environ").stat().st_uid == 0


def no_core_file(pid: int) -> bool:
    return core_limit(pid) == ("0", "0")


def core_limit(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError("no core limit line")


@linux
def test_serve_and_its_pipeline_process_write_no_core_file(tmp_path: Path) -> None:
    process = start_serve(make_archive(tmp_path / "a"))
    try:
        for pid in (process.pid, *pipeline_pids(process.pid)):
            assert eventually(functools.partial(no_core_file, pid)), f"process {pid} may write a core file"
    finally:
        stop(process)


@pytest.fixture
def nobodys_archive() -> Iterator[Path]:
    """An archive owned by an unprivileged user, where that user can reach it (not under pytest's 0700 tmp)."""
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    config = make_archive(folder / "a")
    for path in (folder, *folder.rglob("*")):
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    yield config
    shutil.rmtree(folder)


@linux
@nobody_can_run
def test_a_process_of_the_daemons_own_user_cannot_read_its_memory(nobodys_archive: Path) -> None:
    process = start_serve(nobodys_archive, as_user=NOBODY)
    try:
        for pid in (process.pid, *pipeline_pids(process.pid)):
            # Not dumpable: /proc/<pid> is root's, not the daemon user's ...
            assert eventually(functools.partial(not_dumpable, pid)), f"process {pid} is dumpable"
            # ... and another process of the same user, the attacker, cannot read it.
            for entry in ("environ", "mem"):
                attempt = subprocess.run(as_nobody("/bin/dd", f"if=/proc/{pid}/{entry}", "of=/dev/null", "count=1"),
                                         capture_output=True, text=True, timeout=30)
                assert attempt.returncode != 0 and "Permission denied" in attempt.stderr, (pid, entry, attempt)
    finally:
        stop(process)


# The verify timer (systemd/twentyday-verify.service) runs as a user that may read the
# archive but not write it, and without the daemon's secrets.

@pytest.fixture
def read_only_archive() -> Iterator[Path]:
    """An archive with records, as the verify user sees it: nothing writable, the secrets root's."""
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    folder.chmod(0o755)
    init_archive(folder / "a", passphrase=None, demo=True, now=NOW)
    data = folder / "a" / "data"
    for path in (folder / "a", data):
        path.chmod(0o555)
    (data / "index.db").chmod(0o444)
    (data / "secrets").chmod(0o711)  # the verification key may be read, the secrets may not
    (data / "secrets" / "ledger-signing.pub").chmod(0o444)
    yield folder / "a" / "twentyday.toml"
    for path in (folder / "a", data):
        path.chmod(0o755)
    shutil.rmtree(folder)


@nobody_can_run
def test_verify_runs_as_a_user_that_can_read_but_not_write_the_archive(read_only_archive: Path) -> None:
    interpreter = interpreter_for_nobody()
    if interpreter is None:
        pytest.skip("no Python that the unprivileged user can run")
    data = read_only_archive.parent / "data"
    before = sorted(p.name for p in data.iterdir())
    result = subprocess.run(as_nobody(interpreter, "-m", "twentyday", "--config", str(read_only_archive),
                                      "verify", "--json"),
                            capture_output=True, text=True, env=NOBODY_ENV, timeout=120, cwd="/")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["records"] == 3
    assert sorted(p.name for p in data.iterdir()) == before


def test_verify_reads_the_index_through_a_connection_that_cannot_write(tmp_path: Path) -> None:
    # root ignores file modes: the connection itself must refuse writes.
    init_archive(tmp_path / "a", passphrase=None, demo=True, now=NOW)
    conn = open_read_only(tmp_path / "a" / "data" / "index.db")
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM alert")
    finally:
        conn.close()


# The units: what the daemon does to itself, systemd does too, so a missed call in one
# process is not the only line of defence.

UNITS = Path(__file__).resolve().parents[2] / "systemd"


def unit_settings(name: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit (keys may repeat), comments and sections aside."""
    found: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if line.strip() and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_daemons_unit_forbids_core_files_and_bounds_its_memory() -> None:
    daemon = unit_settings("twentyday.service")
    assert daemon["LimitCORE"] == ["0"]
    assert daemon["MemoryMax"] and daemon["MemoryHigh"]
    assert daemon["NoNewPrivileges"] == ["yes"] and daemon["CapabilityBoundingSet"] == [""]


def test_the_verify_unit_runs_as_another_user_that_cannot_write_the_archive() -> None:
    daemon, verify = unit_settings("twentyday.service"), unit_settings("twentyday-verify.service")
    assert verify.get("User", ["(dynamic)"]) != daemon["User"]
    assert verify["DynamicUser"] == ["yes"] and verify["SupplementaryGroups"] == daemon["Group"]
    assert "/var/lib/twentyday" in " ".join(verify["ReadOnlyPaths"]).split()
    assert "ReadWritePaths" not in verify
    assert verify["LimitCORE"] == ["0"] and verify["PrivateNetwork"] == ["yes"]
    assert verify["ExecStart"][0].endswith("twentyday verify")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    units = [path for path in UNITS.iterdir() if path.suffix in {".service", ".timer"}]  # not port25.conf, a drop-in
    for unit in units:  # ExecStart names where twentyday is installed, which it is not here
        (tmp_path / unit.name).write_text(unit.read_text().replace("/usr/local/bin/twentyday", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
