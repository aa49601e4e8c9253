"""The scale-out backends for the benches: a local Ceph RGW and an archive whose blobs are in one of its
buckets, a local PostgreSQL and an archive whose index is in one of its databases, and counters of what
the archive's ObjectStore did.

- :func:`local_s3`: starts a one-node Ceph cluster with its RADOS Gateway as a person would,
  ``scripts/local-s3 start DIR`` in a subprocess (its printed endpoint and credentials file
  parsed), and ``scripts/local-s3 stop DIR`` after. Its OSD keeps objects in memory (memstore):
  a PUT here costs a network round trip to a local process, not a disk's write nor a replica's.
- :func:`make_s3_archive`: ``init``, then a ``[store]`` section naming a new bucket, then
  ``create`` -- the steps of tests/s3archive.py, copied (a bench does not import tests).
- :func:`local_pg`: starts a private PostgreSQL cluster as a person would, ``scripts/local-pg start
  DIR`` (its printed dsn parsed; fsync off, reached only through a unix socket), and ``scripts/local-pg
  stop DIR`` after. :meth:`LocalPG.cpu_seconds` and :meth:`LocalPG.database_size` say what the server
  spent and what the index takes there.
- :func:`make_pg_archive`: ``init``, then ``[store] index`` naming a new database (and, for the full
  scale-out, the ``blobs`` lines of an S3 bucket), then ``create`` -- tests/pgarchive.py's steps, copied.
- :func:`instrument`: wraps :class:`twentyday.store.objects.ObjectStore` in the bench's own
  process (or, through :func:`stats_env`, in the processes of a ``serve`` it starts) to count
  PUTs, their bytes and latency, and the wall time the writer spends blocked on them: in
  ``put_segment`` (hashing the segment, waiting under the in-flight bound) and in ``wait``
  (before each commit). Nothing of the product changes; nothing of any content is recorded.

Stdlib only at the top level: bench/ingest_chat.py's chat-miner child imports nothing of twentyday.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCAL_S3 = REPO / "scripts" / "local-s3"
LOCAL_PG = REPO / "scripts" / "local-pg"
#: Environment variable naming where an instrumented process writes its counters (``.<pid>`` appended).
STATS_ENV = "TWENTYDAY_BENCH_S3_STATS"


#: The backends the --scale-out benches run, in their default order: SQLite (blobs in it); SQLite,
#: blobs in a bucket of the local RGW; the index in a local PostgreSQL (blobs in it); both.
BACKENDS = ("embedded", "s3", "pg", "pg+s3")


def backend_list(text: str) -> tuple[str, ...]:
    """``--backends``: a comma-separated choice among :data:`BACKENDS`, in the order given."""
    import argparse

    chosen = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in chosen if name not in BACKENDS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{','.join(unknown) or text!r}: not a backend; choose from "
                                         f"{', '.join(BACKENDS)}")
    return chosen


# --- the local RGW ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalS3:
    folder: Path
    endpoint: str
    credentials: Path

    def _pids(self) -> list[int]:
        """The cluster's processes: those run with the folder's ceph.conf."""
        conf = str(self.folder / "ceph.conf")
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if conf in (entry / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                        found.append(int(entry.name))
        return found

    def cpu_seconds(self) -> float:
        """CPU time (user + system) its monitor, OSD and radosgw have used so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self._pids():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / ticks

    def rss_mb(self) -> float:
        total = 0
        for pid in self._pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used so far by ``pid`` and its descendants still running."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry.name)] = int(fields[1])
                times[int(entry.name)] = int(fields[11]) + int(fields[12])
    tree, grown = {pid}, True
    while grown:
        more = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= more
        grown = bool(more)
    return sum(times.get(member, 0) for member in tree) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def local_s3(store_bytes: int | None = None) -> Iterator[LocalS3]:
    """A local RGW in a new temporary folder, stopped (and the folder removed) after."""
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as scratch:
        folder = Path(scratch) / "rgw"
        argv = [str(LOCAL_S3), "start", str(folder)]
        if store_bytes is not None:
            argv += ["--store-bytes", str(store_bytes)]
        started = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
        try:
            if started.returncode != 0:
                tail = (started.stderr.strip().splitlines() or [f"exit {started.returncode}"])[-1]
                raise SystemExit(f"scripts/local-s3 start failed: {tail}")
            printed = dict(line.split(": ", 1) for line in started.stdout.splitlines() if ": " in line)
            yield LocalS3(folder, printed["endpoint"].strip(), Path(printed["credentials"].strip()))
        finally:
            subprocess.run([str(LOCAL_S3), "stop", str(folder)], capture_output=True, check=False, cwd=REPO)


def new_bucket_name() -> str:
    return "bench-" + uuid.uuid4().hex[:16]


def s3_store_lines(endpoint: str, credentials: Path, bucket: str) -> str:
    """The ``[store]`` keys that put an archive's sealed blobs in ``bucket`` (retention left to the test)."""
    return (f'blobs = "s3://{bucket}"\ns3_endpoint = "{endpoint}"\ns3_credentials = "{credentials}"\n'
            f"s3_min_retention_days = 0\n")


def make_s3_archive(directory: Path, endpoint: str, credentials: Path, bucket: str, *, now: datetime) -> Path:
    """A new archive in ``directory`` with its sealed blobs in ``bucket`` (made now); its config path.

    tests/s3archive.py's steps: init for the config and the officer's key, the embedded store it
    made removed, ``[store]`` appended, create (bucket with Object Lock), the ledger key pinned."""
    return _make_archive(directory, "\n[store]\n" + s3_store_lines(endpoint, credentials, bucket), now=now)


def make_pg_archive(directory: Path, index_uri: str, *, now: datetime, extra_store: str = "") -> Path:
    """A new archive in ``directory`` with its index at ``index_uri`` (an empty database: :meth:`LocalPG.
    create_database`) and ``extra_store`` added to its ``[store]``; its config path.

    tests/pgarchive.py's steps: as :func:`make_s3_archive`, with ``[store] index``; no blobs lines: the
    sealed blobs go into the index (chunk.data, bytea)."""
    return _make_archive(directory, f'\n[store]\nindex = "{index_uri}"\n' + extra_store, now=now)


def _make_archive(directory: Path, store_section: str, *, now: datetime) -> Path:
    import shutil

    from twentyday import config as config_module
    from twentyday.crypto import keys
    from twentyday.initialise import archive_ledger_key, init_archive, pin_ledger_key
    from twentyday.store.archive import Archive

    init_archive(directory, passphrase=None, demo=False, now=now)
    config_path = directory / "twentyday.toml"
    shutil.rmtree(config_module.load(config_path).data_dir)
    config_path.write_text(config_path.read_text() + store_section)
    config = config_module.load(config_path)
    recipients = tuple(keys.load_recipient(path) for path in config.recipients)
    Archive.create(config, recipients).close()
    pin_ledger_key(config_path, archive_ledger_key(config), replace=True)
    return config_path


def bucket_usage(config_path: Path) -> tuple[int, int]:
    """(objects, bytes) in the archive's bucket, every version counted."""
    from twentyday import config as config_module
    from twentyday.store.objects import ObjectStore

    config = config_module.load(config_path)
    assert config.blobs is not None
    store = ObjectStore(config.blobs)
    try:
        objects = size = 0
        for page in store.client.get_paginator("list_object_versions").paginate(Bucket=store.bucket):
            for version in page.get("Versions", []):
                objects += 1
                size += int(version["Size"])
        return objects, size
    finally:
        store.close()


# --- the local PostgreSQL --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalPG:
    """A private cluster started by ``scripts/local-pg start folder`` (its state in ``folder/pg.json``)."""

    folder: Path
    socket_dir: Path
    port: int
    user: str
    bindir: Path
    pid: int  # the postmaster

    def index_uri(self, database: str) -> str:
        """The ``[store] index`` URI of ``database`` (the unix socket; no password, no TCP)."""
        query = urllib.parse.urlencode({"host": str(self.socket_dir), "port": self.port})
        return f"postgresql://{self.user}@/{database}?{query}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        argv = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                f"host={self.socket_dir} port={self.port} user={self.user} dbname={database}", "-c", sql]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise SystemExit(f"psql failed: {tail}; see {self.folder / 'postgres.log'}")
        return done.stdout.strip()

    def create_database(self, name: str) -> str:
        """A new, empty database (C collation, as the index needs); its ``[store] index`` URI."""
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'")
        return self.index_uri(name)

    def database_size(self, name: str) -> int:
        """pg_database_size: the database's files (tables, indexes, TOAST), in bytes."""
        return int(self.psql(f"SELECT pg_database_size('{name}')"))

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server has used so far: the postmaster, its children still
        running (checkpointer, WAL writer, open sessions) and those it has reaped (sessions closed:
        the kernel adds a reaped child's time to its parent's cutime/cstime)."""
        ticks = os.sysconf("SC_CLK_TCK")
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            reaped = (int(fields[13]) + int(fields[14])) / ticks
            return tree_cpu_seconds(self.pid) + reaped
        return 0.0

    def rss_mb(self) -> float:
        """Resident memory of the server's processes now (shared buffers counted once per process)."""
        total = 0
        for pid in [self.pid, *_children(self.pid)]:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        return total / 1024


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


@contextlib.contextmanager
def local_pg() -> Iterator[LocalPG]:
    """A local PostgreSQL in a new temporary folder (``scripts/local-pg``), stopped (its databases and the
    folder removed) after."""
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as scratch:
        folder = Path(scratch) / "pg"
        started = subprocess.run([str(LOCAL_PG), "start", str(folder)], capture_output=True, text=True, check=False,
                                 cwd=REPO)
        try:
            if started.returncode != 0:
                tail = (started.stderr.strip().splitlines() or [f"exit {started.returncode}"])[-1]
                raise SystemExit(f"scripts/local-pg start failed: {tail}")
            printed = dict(line.split(": ", 1) for line in started.stdout.splitlines() if ": " in line)
            dsn = dict(pair.split("=", 1) for pair in printed["dsn"].split())
            state = json.loads((folder / "pg.json").read_text())
            yield LocalPG(folder, Path(dsn["host"]), int(dsn["port"]), dsn["user"], Path(state["bindir"]),
                          int(state["pid"]))
        finally:
            subprocess.run([str(LOCAL_PG), "stop", str(folder)], capture_output=True, check=False, cwd=REPO)


# --- counters around ObjectStore --------------------------------------------------------------------------------


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.put_latencies: list[float] = []  # seconds per PUT of a segment (on a pool thread)
        self.put_cpu_seconds = 0.0  # CPU those threads used for them: hashing, signing, HTTP (boto3)
        self.put_bytes = 0
        self.segment_calls_seconds = 0.0  # writer's thread in put_segment: sha256 + blocked on the in-flight bound
        self.wait_calls = 0
        self.wait_seconds = 0.0  # writer's thread blocked in wait() before a commit
        self.relocks = 0  # lock extensions/holds after the fact (segments written before the capture's end)
        self.heads = 0
        self.head_seconds = 0.0

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            return {"put_latencies": list(self.put_latencies), "put_bytes": self.put_bytes,
                    "put_cpu_seconds": self.put_cpu_seconds,
                    "segment_calls_seconds": self.segment_calls_seconds, "wait_calls": self.wait_calls,
                    "wait_seconds": self.wait_seconds, "relocks": self.relocks, "heads": self.heads,
                    "head_seconds": self.head_seconds}


COUNTERS = Counters()


def instrument(dump_to: Path | None = None) -> Counters:
    """Wrap ObjectStore's writing methods with counters (this process only); with ``dump_to``, a
    thread writes them there as JSON every half second (for a process the bench does not own)."""
    from twentyday.store import objects

    cls = objects.ObjectStore
    counters = COUNTERS

    def timed(name: str, record: Callable[[float, float, tuple[Any, ...]], None]) -> None:
        original = getattr(cls, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            began, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(self, *args, **kwargs)
            finally:
                seconds, cpu = time.perf_counter() - began, time.thread_time() - cpu
                with counters.lock:
                    record(seconds, cpu, args)

        setattr(cls, name, wrapper)

    def on_put(seconds: float, cpu: float, args: tuple[Any, ...]) -> None:  # _put(key, data, until, legal_hold)
        counters.put_latencies.append(seconds)
        counters.put_cpu_seconds += cpu
        counters.put_bytes += len(args[1])

    def on_segment(seconds: float, cpu: float, args: tuple[Any, ...]) -> None:
        counters.segment_calls_seconds += seconds

    def on_wait(seconds: float, cpu: float, args: tuple[Any, ...]) -> None:
        counters.wait_calls += 1
        counters.wait_seconds += seconds

    def on_relock(seconds: float, cpu: float, args: tuple[Any, ...]) -> None:
        counters.relocks += 1

    def on_head(seconds: float, cpu: float, args: tuple[Any, ...]) -> None:
        counters.heads += 1
        counters.head_seconds += seconds

    timed("_put", on_put)
    timed("put_segment", on_segment)
    timed("wait", on_wait)
    timed("relock", on_relock)
    timed("publish_head", on_head)
    if dump_to is not None:
        def dump() -> None:
            last = ""
            while True:
                text = json.dumps(counters.as_dict())
                if text != last:
                    tmp = dump_to.with_name(dump_to.name + ".tmp")
                    tmp.write_text(text)
                    tmp.replace(dump_to)
                    last = text
                time.sleep(0.5)

        threading.Thread(target=dump, name="bench-s3-stats", daemon=True).start()
    return counters


SITECUSTOMIZE = f"""\
# Written by bench/scaleout.py: count ObjectStore's work in every process of the serve it starts.
import os, sys
if os.environ.get({STATS_ENV!r}):
    sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
    import pathlib, scaleout
    scaleout.instrument(pathlib.Path(os.environ[{STATS_ENV!r}] + "." + str(os.getpid())))
"""


def stats_env(scratch: Path) -> tuple[dict[str, str], Path]:
    """Environment for a child whose processes (and their spawned children) count ObjectStore's
    work into ``<prefix>.<pid>`` files; the prefix, for :func:`read_stats`."""
    hook = scratch / "bench-sitecustomize"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(SITECUSTOMIZE)
    prefix = scratch / "s3-stats"
    path = os.environ.get("PYTHONPATH")
    return {STATS_ENV: str(prefix), "PYTHONPATH": str(hook) + (os.pathsep + path if path else "")}, prefix


def read_stats(prefix: Path) -> dict[str, Any]:
    """The counters of every process that wrote under ``prefix``, added up."""
    total = Counters().as_dict()
    for path in prefix.parent.glob(prefix.name + ".*"):
        if path.name.endswith(".tmp"):
            continue
        found = json.loads(path.read_text())
        for key, value in found.items():
            total[key] = total[key] + value
    return total


def summary(stats: dict[str, Any], seconds: float, indent: str = "    ") -> str:
    """Where the time of a run of ``seconds`` went on the s3 side: PUTs, their latency and client CPU,
    and the writer's wall time blocked on them."""
    latencies = stats["put_latencies"]
    puts = len(latencies)
    if not puts:
        return indent + "no PUTs counted"
    ms = sorted(x * 1000 for x in latencies)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    lines = [
        f"{puts:,} segment PUTs, {stats['put_bytes'] / 1e6:,.1f} MB "
        f"(mean {stats['put_bytes'] / puts / 1024:,.0f} KiB); "
        f"latency median {statistics.median(ms):.1f} ms, p90 {p90:.1f} ms, max {ms[-1]:.0f} ms, "
        f"sum {sum(latencies):.1f} s on the pool's threads",
        f"client CPU for them (hash, sign, HTTP: boto3) {stats['put_cpu_seconds']:.1f} s, "
        f"{1000 * stats['put_cpu_seconds'] / puts:.2f} ms a PUT",
        f"writer blocked: in put_segment {stats['segment_calls_seconds']:.2f} s "
        f"({100 * stats['segment_calls_seconds'] / seconds:.1f}%; its sha256, the in-flight bound), "
        f"in wait() before {stats['wait_calls']:,} commits {stats['wait_seconds']:.2f} s "
        f"({100 * stats['wait_seconds'] / seconds:.1f}%)",
    ]
    extra = []
    if stats["relocks"]:
        extra.append(f"{stats['relocks']:,} locks extended after the capture ended")
    if stats["heads"]:
        extra.append(f"{stats['heads']:,} ledger heads published ({stats['head_seconds']:.2f} s)")
    if extra:
        lines.append("; ".join(extra))
    return "\n".join(indent + line for line in lines)
