"""A real, local PostgreSQL for tests: a private cluster reached only through a unix socket.

Debian's own package (``apt-get install --no-install-recommends postgresql``) run as a plain process,
no systemd, no cluster of the system's: ``initdb`` makes a cluster with the C locale and UTF8 (the
index relies on byte-order sorting, as SQLite's), whose one role ``twentyday`` is trusted on the unix
socket and nowhere else (``listen_addresses=''``: no TCP port at all). fsync is off: a test's cluster
need not survive a power cut. Stdlib only: ``scripts/local-pg`` runs it with the system's Python.

    handle = start(folder)               # returns when the server accepts connections
    handle.dsn()                         # "host=/tmp/tdpg-... port=5432 user=twentyday dbname=postgres"
    dsn = handle.create_database("x")    # a new, empty database; its dsn
    handle.stop()                        # fast shutdown; the socket dir and the cluster's files go

Where things are: ``folder`` keeps the state file and the logs (the server's and initdb's); the
cluster's files and its socket live in a short, private runtime dir ``/tmp/tdpg-XXXXXXXX`` (mode 0700,
owned by the server's user): a unix socket path is at most 107 bytes, and when run as root the server
runs as the ``postgres`` user (it refuses to run as root), which cannot enter pytest's root-only tmp
folders. Anyone who can reach the socket is the cluster's superuser, so that dir's mode is the guard.

From a script: ``python -m tests.pg start FOLDER`` (prints the dsn and leaves the server running) and
``python -m tests.pg stop FOLDER``.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests import localproc

PACKAGES = ("postgresql",)
BINARIES = ("initdb", "postgres", "psql")
USER = "twentyday"  # the cluster's one role, its superuser (initdb -U)
SERVER_USER = "postgres"  # who runs the server when this process is root: postgres refuses to run as root
# With no TCP listener the port only names the socket file (.s.PGSQL.5432) in a dir no one else uses.
PORT = 5432
SERVICE = "local PostgreSQL"  # what messages call it
STATE = "pg.json"
SERVER_LOG = "postgres.log"
INITDB_LOG = "initdb.log"
STOP_GRACE = 15.0  # seconds for a fast shutdown (SIGINT) before an immediate one (SIGQUIT), then SIGKILL
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")  # needs no quoting; PostgreSQL's 63-byte limit


class PGError(RuntimeError):
    """The local PostgreSQL did not start, stop or make a database; the message names the log to read."""


@dataclass(frozen=True)
class LocalPG:
    """A running local PostgreSQL: where its socket is and the binaries that run it."""

    folder: Path
    socket_dir: Path
    bindir: Path
    port: int = PORT
    user: str = USER

    @property
    def log_file(self) -> Path:
        """The server's own log: start-up, errors, shutdown."""
        return self.folder / SERVER_LOG

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq key=value connection string for ``dbname`` over the unix socket (psycopg takes it)."""
        return f"host={self.socket_dir} port={self.port} user={self.user} dbname={dbname}"

    def create_database(self, name: str) -> str:
        """Make a new, empty database ``name`` (C collation, UTF8) and return its dsn."""
        _check_name(name)
        # template0: empty whatever template1 holds; the locale and encoding said, not inherited
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` if it exists, ending the sessions still connected to it."""
        _check_name(name)
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` with psql (-X: no ~/.psqlrc; ON_ERROR_STOP) and return its unaligned output."""
        argv = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-d", self.dsn(dbname), "-c", sql]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise PGError(f"psql did not finish in 60 s; see {self.log_file}") from None
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise PGError(f"psql exited {done.returncode}: {tail[:300]}; see {self.log_file}")
        return done.stdout

    def stop(self) -> None:
        stop(self.folder)


def start(folder: Path, *, timeout: float = 60.0, owned: bool = True) -> LocalPG:
    """Make a cluster for ``folder`` (new or empty), start its server and return once it accepts connections.

    ``owned`` (the default, for tests): the server dies with this process, by atexit and, for a SIGKILL
    of it, by the kernel's parent-death signal (which follows the thread that calls start: call it from
    a thread that lives as long as the server should, as pytest's main thread does). ``owned=False``
    (the CLI) leaves it running for ``stop(folder)``.
    """
    bindir = find_bindir()
    folder = folder.absolute()
    localproc.check_new_folder(folder, STATE, SERVICE, PGError)
    folder.mkdir(parents=True, exist_ok=True)
    server_user = _server_user()
    runtime = Path(tempfile.mkdtemp(prefix="tdpg-", dir="/tmp"))
    state: dict[str, object] = {"runtime_dir": str(runtime), "bindir": str(bindir), "port": PORT, "pid": None}
    localproc.save_state(folder, STATE, state)
    if owned:
        localproc.stop_with_this_process(stop, folder)
    try:
        if server_user is not None:
            os.chown(runtime, server_user.pw_uid, server_user.pw_gid)
        data = runtime / "data"
        _as_server(server_user, folder / INITDB_LOG, runtime, [
            str(bindir / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8", "--locale=C", "--no-sync",
            "--no-instructions", "--auth=reject"])
        # Only the one role, only on the socket: nothing of initdb's default rules for other users or hosts.
        (data / "pg_hba.conf").write_text(f"local all {USER} trust\n")
        run_as = _run_as(server_user)
        out = (folder / SERVER_LOG).open("ab")
        try:
            process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-k", str(runtime), "-p", str(PORT),
                 "-c", "listen_addresses=", "-c", "unix_socket_permissions=0700",
                 # a test cluster need not survive a crash of the machine
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 # a result never depends on the machine's zone
                 "-c", "TimeZone=UTC"],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=runtime,
                process_group=0, preexec_fn=localproc.die_with_parent if owned else None,
                user=run_as.user, group=run_as.group, extra_groups=run_as.extra_groups, env=run_as.env)
        finally:
            out.close()
        state["pid"] = process.pid
        localproc.save_state(folder, STATE, state)
        _wait_ready(folder, data, process, timeout)
    except BaseException:
        localproc.stop_quietly(stop, folder)
        raise
    return load(folder)


def load(folder: Path) -> LocalPG:
    """The handle of the local PostgreSQL started for ``folder`` (by this process or another)."""
    folder = folder.absolute()
    state = localproc.started_state(folder, STATE, SERVICE, PGError)
    return LocalPG(folder=folder, socket_dir=Path(state["runtime_dir"]), bindir=Path(state["bindir"]),
                   port=int(state["port"]))


def stop(folder: Path) -> None:
    """Fast shutdown of the server (its sessions ended, no checkpoint wait), then remove its runtime dir.

    Only the server of this folder is signalled: its recorded pid is checked to be a postgres running
    on this folder's data dir, so a pid the kernel has since given to another process is left alone.
    Stopping twice, or after a start that failed half way, is fine.
    """
    folder = folder.absolute()
    try:
        state = localproc.load_state(folder, STATE)
    except (OSError, ValueError):
        return
    runtime = Path(state["runtime_dir"])
    data = str(runtime / "data")
    pid = state.get("pid")
    if isinstance(pid, int) and _is_ours(pid, data):
        children = {child: localproc.started(child) for child in localproc.children(pid)}
        started = localproc.started(pid)
        for signum in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
            localproc.send(pid, signum)
            if localproc.wait_gone(pid, started, STOP_GRACE if signum != signal.SIGKILL else 5.0):
                break
        # A postmaster's children exit when it does (they watch it); wait for them, and kill a straggler.
        for child, child_started in children.items():
            if not localproc.wait_gone(child, child_started, 5.0):
                localproc.send(child, signal.SIGKILL)
                localproc.wait_gone(child, child_started, 5.0)
    _remove_shared_memory(runtime / "data")
    if runtime.name.startswith("tdpg-"):  # never a path the state file was edited to name
        shutil.rmtree(runtime, ignore_errors=True)


def shared_memory(data: Path) -> tuple[int, int, int] | None:
    """The server's System V segment, as (key, id, processes attached), while it exists.

    A server shut down removes its own; one killed (SIGKILL: its owner died) leaves it behind, 56 bytes,
    until the machine restarts. postmaster.pid's 7th line names it, beside the server's pid (1st line).
    """
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
        key, shmid = (int(field) for field in lines[6].split())
        creator = int(lines[0])
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    except (OSError, ValueError, IndexError):
        return None
    for row in rows:
        fields = row.split()
        if int(fields[0]) == key and int(fields[1]) == shmid and int(fields[4]) == creator:
            return key, shmid, int(fields[6])
    return None


def _remove_shared_memory(data: Path) -> None:
    segment = shared_memory(data)
    if segment is not None and segment[2] == 0:  # none of its processes left attached
        ipc_rmid = 0
        ctypes.CDLL(None, use_errno=True).shmctl(segment[1], ipc_rmid, None)


def server_processes(folder: Path) -> list[int]:
    """The pids of the folder's server and its children (backends, checkpointer ...) still running."""
    try:
        state = localproc.load_state(folder.absolute(), STATE)
    except (OSError, ValueError):
        return []
    pid = state.get("pid")
    if not isinstance(pid, int) or not _is_ours(pid, str(Path(state["runtime_dir"]) / "data")):
        return []
    return [pid, *localproc.children(pid)]


def find_bindir() -> Path:
    """The folder of initdb, postgres and psql: ``pg_config --bindir`` when pg_config is on the PATH and
    names one holding them, else the newest /usr/lib/postgresql/<version>/bin (Debian's layout)."""
    candidates: list[Path] = []
    if shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10,
                                  check=False, stdin=subprocess.DEVNULL)
            if done.returncode == 0 and done.stdout.strip():
                candidates.append(Path(done.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda path: [int(part) for part in re.findall(r"\d+", Path(path).parent.name)],
                      reverse=True)
    candidates.extend(Path(path) for path in versions)
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in BINARIES):
            return bindir
    raise PGError(f"PostgreSQL's {', '.join(BINARIES)} not found (neither in pg_config --bindir nor in "
                  f"/usr/lib/postgresql/*/bin); install them: apt-get install --no-install-recommends "
                  f"{' '.join(PACKAGES)}")


def _check_name(name: str) -> None:
    if not _DATABASE_NAME.match(name):
        raise PGError(f"{name!r}: a test database's name is lower-case letters, digits and _, at most 63, "
                      "not starting with a digit")


def _server_user() -> pwd.struct_passwd | None:
    """Who runs initdb and the server: ``postgres`` when this process is root, else this process's user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PGError(f"running as root and there is no {SERVER_USER!r} user to run the server as (postgres "
                      f"refuses root); Debian's package makes it: apt-get install --no-install-recommends "
                      f"{' '.join(PACKAGES)}") from None


@dataclass(frozen=True)
class _RunAs:
    """subprocess's arguments that make a child run as ``user`` (all None: as this process's user)."""

    user: int | None = None
    group: int | None = None
    extra_groups: list[int] | None = None
    env: dict[str, str] | None = None


def _run_as(user: pwd.struct_passwd | None) -> _RunAs:
    if user is None:
        return _RunAs()
    # HOME and USER follow, or initdb and postgres would look in root's home
    return _RunAs(user=user.pw_uid, group=user.pw_gid, extra_groups=[],
                  env={**os.environ, "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name})


def _as_server(user: pwd.struct_passwd | None, log: Path, cwd: Path, argv: list[str]) -> None:
    run_as = _run_as(user)
    with log.open("ab") as out:
        try:
            done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=cwd,
                                  timeout=120, check=False, user=run_as.user, group=run_as.group,
                                  extra_groups=run_as.extra_groups, env=run_as.env)
        except subprocess.TimeoutExpired:
            raise PGError(f"{Path(argv[0]).name} did not finish in 120 s; see {log}") from None
    if done.returncode != 0:
        lines = log.read_text(errors="replace").strip().splitlines() or ["no output"]
        raise PGError(f"{Path(argv[0]).name} exited {done.returncode}: {lines[-1][:300]}; see {log}")


def _wait_ready(folder: Path, data: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Until postmaster.pid says "ready" (its 8th line: what pg_ctl waits for), the server accepts connections."""
    deadline = time.monotonic() + timeout
    pid_file = data / "postmaster.pid"
    while True:
        with contextlib.suppress(OSError):
            lines = pid_file.read_text().splitlines()
            if len(lines) >= 8 and lines[0].strip() == str(process.pid) and lines[7].strip() == "ready":
                return
        if process.poll() is not None:
            raise PGError(f"postgres exited {process.returncode} while starting; see {folder / SERVER_LOG}")
        if time.monotonic() > deadline:
            raise PGError(f"postgres did not accept connections within {timeout:.0f} s; see {folder / SERVER_LOG}")
        time.sleep(0.01)


def _is_ours(pid: int, data: str) -> bool:
    """A running postmaster (not a zombie) on this data dir."""
    argv = localproc.cmdline(pid)
    return localproc.started(pid) is not None and "-D" in argv and data in argv


def main(argv: list[str]) -> int:
    def start_running(folder: Path) -> list[str]:
        handle = start(folder, owned=False)
        return [f"dsn: {handle.dsn()}", f"socket dir: {handle.socket_dir}", f"log: {handle.log_file}"]

    def stop_it(folder: Path) -> str:
        stop(folder)
        return f"stopped the {SERVICE} of {folder.absolute()}"

    return localproc.command(argv, usage="usage: python -m tests.pg start FOLDER | stop FOLDER", service=SERVICE,
                             error=PGError, start=start_running, stop=stop_it)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
