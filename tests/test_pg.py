"""What the PostgreSQL index will rely on, shown against the local cluster the tests start (tests/pg.py).

PostgreSQL 15's answers, recorded here: the cluster sorts text in byte order (C collation), as SQLite
does, so keyed hashes and ISO times come back in the same order from either; it is reached through a
unix socket only, by the one trusted role; each test gets a database of its own.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from tests import localproc
from tests import pg as local_pg

ROOT = Path(__file__).resolve().parents[1]


def running(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie, left to be reaped, is not)."""
    return [pid for pid in pids if localproc.started(pid) is not None]


def test_a_test_database_is_reached_with_psycopg_over_the_unix_socket(postgres: local_pg.LocalPG,
                                                                      pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        assert conn.info.host == str(postgres.socket_dir)
        # inet_server_addr() is NULL for a unix-socket session
        assert conn.execute("SELECT inet_server_addr(), current_user").fetchone() == (None, "twentyday")
        assert conn.execute("SELECT 1 FROM pg_tables WHERE schemaname = 'public'").fetchall() == []  # empty


def test_no_other_role_gets_in(postgres: local_pg.LocalPG) -> None:
    with pytest.raises(psycopg.OperationalError, match=r"no pg_hba\.conf entry"):
        psycopg.connect(postgres.dsn().replace("user=twentyday", "user=postgres")).close()


def test_the_database_sorts_in_byte_order_as_sqlite_does_and_holds_utf8(pg_dsn: str) -> None:
    words = ["B", "a", "_", "é", "z", "Z", "2026-11-22T12:00:00Z", "2026-11-22 12:00:00"]
    with psycopg.connect(pg_dsn) as conn:
        assert conn.execute("SELECT datcollate, datctype, pg_encoding_to_char(encoding) FROM pg_database "
                            "WHERE datname = current_database()").fetchone() == ("C", "C", "UTF8")
        conn.execute("CREATE TABLE t (x text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s)", [(word,) for word in words])
        in_postgres = [row[0] for row in conn.execute("SELECT x FROM t ORDER BY x")]
        assert [row[0] for row in conn.execute(
            "SELECT x FROM (VALUES ('B'), ('a'), ('_')) AS v(x) ORDER BY x")] == ["B", "_", "a"]
    lite = sqlite3.connect(":memory:")
    lite.execute("CREATE TABLE t (x TEXT)")
    lite.executemany("INSERT INTO t VALUES (?)", [(word,) for word in words])
    assert in_postgres == [row[0] for row in lite.execute("SELECT x FROM t ORDER BY x")]
    assert in_postgres == sorted(words, key=lambda word: word.encode())


def socket_inodes(pids: list[int]) -> set[str]:
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink()
            except OSError:
                continue
            if str(target).startswith("socket:["):
                inodes.add(str(target)[len("socket:["):-1])
    return inodes


def test_no_tcp_port_is_listening(postgres: local_pg.LocalPG) -> None:
    assert postgres.psql("SHOW listen_addresses") == "\n"
    server = local_pg.server_processes(postgres.folder)
    assert server
    inodes = socket_inodes(server)
    assert inodes  # the unix socket at least
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            assert line.split()[9] not in inodes, f"a postgres process holds a TCP socket: {line}"
    socket_dir = postgres.socket_dir
    assert (socket_dir / f".s.PGSQL.{postgres.port}").is_socket()
    assert socket_dir.stat().st_mode & 0o777 == 0o700  # who reaches the socket is superuser: the dir guards it
    assert len(str(socket_dir / f".s.PGSQL.{postgres.port}")) <= 107


def test_two_test_databases_are_separate_and_dropped_even_when_still_connected(postgres: local_pg.LocalPG,
                                                                                pg_dsn: str) -> None:
    other_name = "other_" + pg_dsn.rsplit("dbname=", 1)[1][:40]
    other_dsn = postgres.create_database(other_name)
    assert other_dsn != pg_dsn
    with psycopg.connect(pg_dsn, autocommit=True) as conn, psycopg.connect(other_dsn, autocommit=True) as other:
        conn.execute("CREATE TABLE only_here (x integer)")
        conn.execute("INSERT INTO only_here VALUES (1)")
        assert other.execute("SELECT to_regclass('only_here')").fetchone() == (None,)
        other.execute("CREATE TABLE only_here (x integer)")  # the same name, another database
        assert other.execute("SELECT count(*) FROM only_here").fetchone() == (0,)
        # pg_dsn's teardown drops a database a test left a session open to
        postgres.drop_database(other_name)
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (other_name,)).fetchone() == (0,)


def test_a_database_name_that_would_need_quoting_is_refused(postgres: local_pg.LocalPG) -> None:
    for name in ('x"; DROP DATABASE postgres; --', "Upper", "1st", "", "x" * 64):
        with pytest.raises(local_pg.PGError, match="a test database's name"):
            postgres.create_database(name)


def test_missing_postgresql_is_named_with_the_package_to_install(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_pg, "BINARIES", ("initdb-of-no-release",))
    with pytest.raises(local_pg.PGError, match=r"apt-get install --no-install-recommends postgresql$"):
        local_pg.start(tmp_path / "pg")
    assert not (tmp_path / "pg").exists()


def test_a_cluster_starts_quickly_and_stop_leaves_no_process_and_no_socket_dir(tmp_path: Path) -> None:
    began = time.monotonic()
    handle = local_pg.start(tmp_path / "pg")
    started_in = time.monotonic() - began
    print(f"local PostgreSQL started in {started_in:.2f} s")
    try:
        conn = psycopg.connect(handle.dsn())
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        server = local_pg.server_processes(handle.folder)
        assert backend is not None and backend[0] in server
        with pytest.raises(local_pg.PGError, match="started here already"):
            local_pg.start(handle.folder)
        handle.stop()  # a fast shutdown ends the session still open
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
        assert local_pg.server_processes(handle.folder) == []
        assert running(server) == []
        assert not handle.socket_dir.exists()
        assert "database system is shut down" in handle.log_file.read_text()
    finally:
        handle.stop()
    assert started_in < 15, f"the local PostgreSQL took {started_in:.1f} s to start"


def test_local_pg_starts_a_server_that_outlives_it_and_stops_it(tmp_path: Path) -> None:
    folder = tmp_path / "pg"
    started = subprocess.run([str(ROOT / "scripts" / "local-pg"), "start", str(folder)], capture_output=True,
                             text=True, timeout=90, check=False)
    try:
        assert started.returncode == 0, started.stderr
        handle = local_pg.load(folder)
        assert f"dsn: {handle.dsn()}\n" in started.stdout
        with psycopg.connect(handle.dsn()) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("twentyday",)
    finally:
        stopped = subprocess.run([str(ROOT / "scripts" / "local-pg"), "stop", str(folder)], capture_output=True,
                                 text=True, timeout=90, check=False)
    assert stopped.returncode == 0, stopped.stderr
    assert local_pg.server_processes(folder) == []
    assert not handle.socket_dir.exists()
    refused = subprocess.run([str(ROOT / "scripts" / "local-pg"), "begin", str(folder)], capture_output=True,
                             text=True, timeout=30, check=False)
    assert refused.returncode == 2
    assert "usage: " in refused.stderr


def test_the_server_dies_with_a_test_process_that_is_killed(tmp_path: Path) -> None:
    folder = tmp_path / "pg"
    script = ("import sys, time; from pathlib import Path; from tests import pg; "
              "pg.start(Path(sys.argv[1])); print('up', flush=True); time.sleep(600)")
    owner = subprocess.Popen([sys.executable, "-c", script, str(folder)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True)
    try:
        assert owner.stdout is not None and owner.stdout.readline() == "up\n"
        server = local_pg.server_processes(folder)
        assert server
        # no atexit, no finally: only the kernel's parent-death signal (set after the switch to the
        # postgres user, which would clear it)
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while running(server) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running(server) == []
        data = local_pg.load(folder).socket_dir / "data"
        segment = local_pg.shared_memory(data)
        assert segment is not None and segment[2] == 0  # what a killed server leaves behind
        local_pg.stop(folder)
        assert [row for row in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
                if row.split()[:2] == [str(segment[0]), str(segment[1])]] == []
        assert not data.exists()
    finally:
        owner.kill()
        local_pg.stop(folder)
