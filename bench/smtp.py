"""Benchmark: the forwarding address beside a null aiosmtpd handler, in one run.

Sends 10 KB messages over 16 concurrent connections (2 client processes x 8
threads, persistent sessions; each client builds its messages before the clock
starts) and prints accepted messages/s for:

- null:      aiosmtpd with a handler that answers 250 and keeps nothing;
- the same null handler on twentyday's protocol class (its block DATA reader,
  see ``twentyday.intake.smtp_data``): what intake would cost without durability;
- intake:    ``twentyday serve`` answering 250 only once the message is durable
             in the spool (fsync, group-committed);
- end-to-end: the same run, until every message is parsed, sealed, indexed and
             committed by the pipeline worker;
- Postfix, when ``postfix`` is installed (skipped otherwise; this bench installs
  nothing): a private, throwaway instance with its own configuration, queue and
  data directories in the bench's temporary directory, listening on a free
  loopback port, never the system's instance nor /etc/postfix. Two rows: intake
  (250 = queued, fsynced into its queue) and delivery, until every message is a
  file in a Maildir's ``new/`` (the ``virtual`` delivery agent). Starting that
  instance needs root; otherwise the bench says so and measures the rest.

Targets (issue 4): intake >= 80% of null; end-to-end >= 50% of null.
Usage: python bench/smtp.py [--messages N] [--scale-out [--rounds N] [--backends LIST]]

Scale-out (issue 17): ``--scale-out`` measures twentyday's two rows (intake, end-to-end) on each
backend alternately within each round, ``--rounds`` (2) runs of each, each with a fresh archive:
``embedded`` (SQLite index, blobs in it); ``s3`` (the sealed blobs in a bucket of a local Ceph RGW,
``[store] blobs = "s3://…"``, a fresh RGW started with ``scripts/local-s3``: Debian's ceph-mon,
ceph-osd, radosgw; its OSD keeps objects in memory); ``pg`` (the index, blobs included, in a local
PostgreSQL, ``[store] index = "postgresql://…"``, a fresh cluster started with ``scripts/local-pg``
in a new folder and stopped after); ``pg+s3`` (the index in PostgreSQL, the blobs in the bucket).
``--backends`` chooses which, comma-separated (default all four). For each run it prints serve's
CPU, for s3 the CPU the local Ceph daemons used and where the time goes: PUTs (count, bytes,
latency), the pipeline's wall time blocked in ``ObjectStore.wait()`` before its commits and in
``put_segment``, the bucket's objects and bytes; for pg the CPU the PostgreSQL server used (the
bench's own count(*) polling included) and the database's size after (pg_database_size). The
servers share the machine's cores with serve. The null and Postfix rows are measured once, as
without it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import scaleout  # bench/scaleout.py, beside this file (stdlib only at its top level)
from scaleout import LocalPG, LocalS3

CONNECTIONS = 16
PROCESSES = 2

NULL_SERVER_PROGRAM = """
import asyncio, sys
{imports}

class Null:
    # What IntakeServer asks its handler besides DATA: its open sessions and whether serve is
    # stopping (serve's drain on SIGTERM).
    sessions = set()
    closing = False

    async def handle_DATA(self, server, session, envelope):
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: {protocol}, "127.0.0.1", int(sys.argv[1]))
    await asyncio.Event().wait()

asyncio.run(main())
"""
NULL_SERVER = NULL_SERVER_PROGRAM.format(
    imports="from aiosmtpd.smtp import SMTP", protocol="SMTP(Null(), data_size_limit=None, enable_SMTPUTF8=True)")
# The same null handler on twentyday's protocol class (IntakeServer: its block DATA reader
# and limits). Against this row, intake shows what durability costs; against the row
# above, what the whole server costs beside stock aiosmtpd.
NULL_ON_INTAKE_SERVER = NULL_SERVER_PROGRAM.format(
    imports="from twentyday.intake.smtp import ConnectionLimits, IntakeServer\n"
            "from twentyday.intake.smtp_data import InFlight",
    protocol="IntakeServer(Null(), ConnectionLimits(1000, 1000), InFlight(1 << 40), data_size_limit=None, "
             "enable_SMTPUTF8=True)")


# A private Postfix instance. Everything a stock main.cf would take from the system
# (aliases, DNS, syslog, chroot jails) is turned off or pointed into ``{root}``: the
# instance writes nothing outside the bench's directory, and only reads the installed
# programs and, through postfix-script, /etc/postfix's postfix-files and main.cf.
POSTFIX_MAIN_CF = """\
compatibility_level = {compatibility_level}
queue_directory = {root}/queue
data_directory = {root}/data
# No syslog daemon in a sandbox, and the log is where start-up errors go: keep it here.
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
# A fixed name and no DNS at all: no lookups of our own name nor of 127.0.0.1.
myhostname = bench.twentyday.invalid
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_dns_support_level = disabled
smtpd_peername_lookup = no
# Accept from the loopback client only, and only for the virtual domain below.
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
mydestination =
alias_maps =
alias_database =
# Every recipient of agency.example goes into one Maildir (the trailing slash).
virtual_mailbox_domains = agency.example
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = static:records/
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_mailbox_limit = 0
# One client address opens all 16 sessions: no per-client caps, room for every process.
default_process_limit = 100
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_client_recipient_rate_limit = 0
"""

# Only the services this path uses, none chrooted (the jail would need a copy of the
# system's files in the queue directory). The SMTP server listens on {port} only.
POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
virtual    unix  - n n - - virtual
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
postlog    unix-dgram n - n - 1 postlogd
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def wait_ready(notify: socket.socket, port: int, seconds: float = 120.0) -> None:
    """Until serve says READY=1 on ``notify`` (its NOTIFY_SOCKET), then its port answers."""
    notify.settimeout(seconds)
    try:
        while b"READY=1" not in notify.recv(4096).split(b"\n"):
            pass
    except TimeoutError:
        raise SystemExit(f"serve did not say READY=1 within {seconds:.0f} s") from None
    wait_port(port)


def message(n: int, tag: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Jane Doe <jane.doe@gmail.com>"
    mail["To"] = "counterpart@partner.example"
    mail["Date"] = format_datetime(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    mail["Subject"] = f"Benchmark {n}"
    mail["Message-ID"] = f"<{tag}-{n}@bench.twentyday>"
    line = "The quarterly figures and the draft agenda for the visit are below. " * 1 + "\n"
    mail.set_content(line * (10_000 // len(line)))
    return mail.as_bytes(policy=policy.SMTP)  # CRLF line ends, as a mail client sends


def client_process(port: int, start: int, count: int, threads: int, tag: str,
                   ready: threading.Barrier) -> None:
    """Send ``count`` messages over ``threads`` sessions, once every client is ready.

    The messages are built before the start: building one (``EmailMessage``) costs about
    0.5 ms of CPU, most of what a client spends per message, and a load generator that
    builds them on the clock takes CPU from the server it measures on a small machine.
    """
    per_thread = count // threads
    failures: list[str] = []
    batches = [[message(n, tag) for n in range(start + t * per_thread, start + (t + 1) * per_thread)]
               for t in range(threads)]

    def run(batch: list[bytes]) -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
                for mail in batch:
                    client.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"], mail)
        except (smtplib.SMTPException, OSError) as error:
            failures.append(f"{type(error).__name__}: {error}")

    workers = [threading.Thread(target=run, args=(batch,)) for batch in batches]
    ready.wait()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if failures:  # a refused message would make the rate meaningless: say so and stop
        print(f"client failures: {failures[:3]}", file=sys.stderr)
        sys.exit(1)


def send_all(port: int, total: int, tag: str) -> tuple[float, float]:
    """When the clients started sending (every one with its messages built: ``perf_counter``),
    and how many seconds passed until the last message was accepted."""
    per_process = total // PROCESSES
    ready = multiprocessing.Barrier(PROCESSES + 1)
    processes = [multiprocessing.Process(target=client_process,
                                         args=(port, p * per_process, per_process, CONNECTIONS // PROCESSES, tag,
                                               ready))
                 for p in range(PROCESSES)]
    for process in processes:
        process.start()
    ready.wait(timeout=600)
    began = time.perf_counter()
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit("a client failed")
    return began, time.perf_counter() - began


def bench_null(total: int, program: str = NULL_SERVER) -> float:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", program, str(port)])
    try:
        wait_port(port)
        _, seconds = send_all(port, total, "null")
    finally:
        server.terminate()
        server.wait(10)
    return total / seconds


@dataclass
class Run:
    """One twentyday serve run: its rates, and with the blobs in a bucket, what the ObjectStore did."""

    intake: float
    end_to_end: float
    seconds: float  # from the first message sent to the last committed
    s3: dict[str, Any] | None = None  # bench/scaleout.py's counters, added up over serve's processes
    cpu_seconds: float = 0.0  # serve and its pipeline processes, from the first message sent to the last committed
    ceph_cpu_seconds: float = 0.0
    bucket_objects: int = 0
    bucket_bytes: int = 0
    pg_cpu_seconds: float | None = None  # pg backends: the local PostgreSQL server, same span as cpu_seconds
    pg_database_bytes: int = 0  # pg backends: pg_database_size of the index after
    pg_empty_bytes: int = 0  # pg_database_size when the database was made (its catalogs), before any table


#: The database a pg run's index is in (a fresh cluster each run: the name never collides).
PG_DATABASE = "bench_smtp"
#: The --scale-out backends: where the index is (SQLite or PostgreSQL) and where the sealed blobs are.
BACKENDS = scaleout.BACKENDS


def bench_twentyday(total: int, scratch: Path, s3: LocalS3 | None = None, pg: LocalPG | None = None) -> Run:
    """serve's intake and end-to-end rates; with ``s3``, the archive's blobs in a new bucket there; with
    ``pg``, its index (and, without ``s3``, its blobs) in a new database there."""
    from twentyday.config import load
    from twentyday.initialise import init_archive
    from twentyday.store.archive import Archive

    root = scratch / "archive"
    extra_env: dict[str, str] = {}
    stats = None
    now = datetime.now(UTC)
    if pg is not None:
        blobs = "" if s3 is None else scaleout.s3_store_lines(s3.endpoint, s3.credentials, scaleout.new_bucket_name())
        index_uri = pg.create_database(PG_DATABASE)
        empty_bytes = pg.database_size(PG_DATABASE)
        config_path = scaleout.make_pg_archive(root, index_uri, now=now, extra_store=blobs)
    elif s3 is not None:
        config_path = scaleout.make_s3_archive(root, s3.endpoint, s3.credentials, scaleout.new_bucket_name(), now=now)
    else:
        init_archive(root, passphrase=None, demo=False, now=now)
        config_path = root / "twentyday.toml"
    if s3 is not None:
        extra_env, stats = scaleout.stats_env(scratch)  # counts PUTs in serve and its pipeline process
    port = free_port()
    text = config_path.read_text().replace('listen = "127.0.0.1:2525"', f'listen = "127.0.0.1:{port}"')
    # One client address sends everything here: lift the per-client caps for the benchmark.
    config_path.write_text(text.replace(
        "[smtp]", "[smtp]\nmax_connections_per_client = 64\nmax_messages_per_minute = 10000000", 1))
    # serve binds its port first (a port in use stops it before anything starts), so an open port is
    # not a daemon that is up: the clock starts at READY=1, as systemd's does (service.py).
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_name = f"twentyday-bench-{os.getpid()}-{port}"
    notify.bind("\0" + notify_name)
    server = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config_path), "serve"],
                              stderr=subprocess.DEVNULL,
                              env={**os.environ, **extra_env, "NOTIFY_SOCKET": "@" + notify_name})
    try:
        wait_ready(notify, port)
        ceph_cpu = s3.cpu_seconds() if s3 is not None else 0.0
        pg_cpu = pg.cpu_seconds() if pg is not None else 0.0
        cpu = scaleout.tree_cpu_seconds(server.pid)
        began, intake_seconds = send_all(port, total, "td")
        archive = Archive(load(config_path))
        deadline = time.monotonic() + 600
        while archive.conn.execute("SELECT count(*) FROM record").fetchone()[0] < total:
            if time.monotonic() > deadline:
                raise SystemExit("the pipeline did not commit every accepted message within 10 minutes")
            time.sleep(0.05)
        end_to_end = time.perf_counter() - began
        run = Run(total / intake_seconds, total / end_to_end, end_to_end,
                  cpu_seconds=scaleout.tree_cpu_seconds(server.pid) - cpu)
        if pg is not None:  # the bench's own polling session counts too: one count(*) every 50 ms
            run.pg_cpu_seconds = pg.cpu_seconds() - pg_cpu
        archive.close()
        if pg is not None:
            run.pg_database_bytes, run.pg_empty_bytes = pg.database_size(PG_DATABASE), empty_bytes
        if s3 is not None and stats is not None:
            run.ceph_cpu_seconds = s3.cpu_seconds() - ceph_cpu
            time.sleep(1.0)  # the counters are written every half second
            run.s3 = scaleout.read_stats(stats)
            run.bucket_objects, run.bucket_bytes = scaleout.bucket_usage(config_path)
    finally:
        server.terminate()
        server.wait(30)
        notify.close()
    return run


def find_postfix() -> str | None:
    # /usr/sbin is often missing from a non-root PATH.
    found = shutil.which("postfix")
    if found is None and Path("/usr/sbin/postfix").is_file():
        found = "/usr/sbin/postfix"
    return found


def postfix_run(postfix: str, config: Path, command: str) -> subprocess.CompletedProcess[str]:
    # The postfix command reports to stderr only on a terminal, to the maillog otherwise.
    return subprocess.run([postfix, "-c", str(config), command], capture_output=True, text=True, timeout=120,
                          check=False)


def log_tail(root: Path, lines: int = 15) -> str:
    log = root / "maillog"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no maillog)"


def write_postfix_instance(postfix: str, root: Path, port: int) -> Path:
    """Lay out a private instance under root; return its configuration directory."""
    postconf = [str(Path(postfix).with_name("postconf")), "-dh", "mail_owner", "mail_version"]
    defaults = subprocess.run(postconf, capture_output=True, text=True, timeout=30, check=True)
    mail_owner, version = defaults.stdout.split()
    # The newest level this Postfix knows, so it logs no backwards-compatibility notices
    # (3.6 is the latest; 2 is the newest before 3.6 gave levels a minor number).
    major, minor = (int(part) for part in re.findall(r"\d+", version)[:2])
    compatibility_level = "3.6" if (major, minor) >= (3, 6) else "2"
    owner = pwd.getpwnam(mail_owner)
    config = root / "config"
    config.mkdir(parents=True)
    # The postfix command chdirs here first; `postfix start` creates the rest with the right owners.
    (root / "queue").mkdir(mode=0o755)
    # Deliver as the mail owner (virtual_minimum_uid refuses root): it must own the Maildir's parent.
    (root / "mail").mkdir()
    os.chown(root / "mail", owner.pw_uid, owner.pw_gid)
    (config / "main.cf").write_text(POSTFIX_MAIN_CF.format(
        root=root, uid=owner.pw_uid, gid=owner.pw_gid, compatibility_level=compatibility_level))
    (config / "master.cf").write_text(POSTFIX_MASTER_CF.format(port=port))
    return config


def stop_postfix(postfix: str, config: Path, root: Path) -> None:
    master_pid = root / "queue" / "pid" / "master.pid"
    pid = int(master_pid.read_text().split()[0]) if master_pid.exists() else None
    try:
        postfix_run(postfix, config, "stop")  # waits 5 s, then kills the process group
    finally:
        if pid is not None:  # the master leads its own process group: kill whatever it left
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def count_files(directory: Path) -> int:
    try:
        with os.scandir(directory) as entries:
            return sum(1 for _ in entries)
    except FileNotFoundError:  # created with the first delivery
        return 0


def bench_postfix(postfix: str, total: int, scratch: Path) -> tuple[float, float]:
    # Its processes drop root, and a temporary directory is 0700 root: let them pass through.
    scratch.chmod(scratch.stat().st_mode | 0o011)
    root = scratch.resolve() / "postfix"
    port = free_port()
    config = write_postfix_instance(postfix, root, port)
    try:
        started = postfix_run(postfix, config, "start")
        if started.returncode != 0:
            raise SystemExit(f"private Postfix did not start:\n{started.stderr}{log_tail(root)}")
        wait_port(port)
        maildir_new = root / "mail" / "records" / "new"
        began, intake_seconds = send_all(port, total, "pf")
        # Bound the wait twice: overall, and by progress, so a bounce does not cost 10 minutes.
        deadline = time.monotonic() + 600
        delivered, progressed = 0, time.monotonic()
        while (count := count_files(maildir_new)) < total:
            now = time.monotonic()
            if count > delivered:
                delivered, progressed = count, now
            if now > deadline or now - progressed > 30:
                raise SystemExit(f"Postfix delivered {count} of {total} messages, then stalled:\n{log_tail(root)}")
            time.sleep(0.05)
        end_to_end = time.perf_counter() - began
    finally:
        stop_postfix(postfix, config, root)
    return total / intake_seconds, total / end_to_end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--scale-out", action="store_true",
                        help="twentyday's rows with the embedded store and with the blobs in a local Ceph RGW, "
                             "alternately")
    parser.add_argument("--rounds", type=int, default=2, help="with --scale-out: runs of each backend")
    parser.add_argument("--backends", type=scaleout.backend_list, default=BACKENDS,
                        help=f"with --scale-out: which, comma-separated, in this order (default {','.join(BACKENDS)}):"
                             " embedded = SQLite; s3 = blobs in a local Ceph RGW's bucket; pg = index (blobs"
                             " too) in a local PostgreSQL; pg+s3 = index in PostgreSQL, blobs in the bucket")
    args = parser.parse_args()
    total = args.messages - args.messages % CONNECTIONS
    postfix = find_postfix()
    postfix_rates: tuple[float, float] | None = None
    runs: list[tuple[str, int, Run]] = []
    with tempfile.TemporaryDirectory() as scratch:
        null_rate = bench_null(total)
        null_block_rate = bench_null(total, NULL_ON_INTAKE_SERVER)
        if not args.scale_out:
            runs.append(("embedded", 1, bench_twentyday(total, Path(scratch))))
        else:
            for round_ in range(1, args.rounds + 1):
                for backend in args.backends:
                    print(f"round {round_}: {backend} ...", flush=True)
                    # Fresh services each run: a locked object cannot be deleted, and a cluster per run
                    # starts every index alike (scripts/local-s3, scripts/local-pg; stopped after).
                    with tempfile.TemporaryDirectory(dir=scratch) as run_scratch, contextlib.ExitStack() as services:
                        rgw = services.enter_context(scaleout.local_s3()) if "s3" in backend else None
                        pg = services.enter_context(scaleout.local_pg()) if "pg" in backend else None
                        runs.append((backend, round_, bench_twentyday(total, Path(run_scratch), rgw, pg)))
        if postfix is not None and os.geteuid() == 0:
            postfix_rates = bench_postfix(postfix, total, Path(scratch))
    print(f"{total} messages of ~10 KB over {CONNECTIONS} connections")
    print(f"{'':<34}{'messages/s':>12}{'vs null':>9}")
    print(f"{'null aiosmtpd handler':<34}{null_rate:>12,.0f}{1:>9.2f}")
    intake_rate, end_to_end_rate = runs[0][2].intake, runs[0][2].end_to_end
    print(f"{'null handler, twentyday protocol':<34}{null_block_rate:>12,.0f}{null_block_rate / null_rate:>9.2f}"
          f"   (intake/this: {intake_rate / null_block_rate:.2f})")
    if not args.scale_out:
        print(f"{'twentyday intake (250 = durable)':<34}{intake_rate:>12,.0f}{intake_rate / null_rate:>9.2f}"
              f"   target >= 0.80 {'met' if intake_rate >= 0.8 * null_rate else 'NOT met'}")
        print(f"{'twentyday end-to-end (committed)':<34}{end_to_end_rate:>12,.0f}{end_to_end_rate / null_rate:>9.2f}"
              f"   target >= 0.50 {'met' if end_to_end_rate >= 0.5 * null_rate else 'NOT met'}")
    if postfix is None:
        print("Postfix: not installed, not measured (issue 4 quotes about 800 messages/s to a Maildir here)")
    elif postfix_rates is None:
        print("Postfix: installed, but starting a private instance needs root; not measured")
    else:
        queued, delivered = postfix_rates
        print(f"{'postfix intake (queued)':<34}{queued:>12,.0f}{queued / null_rate:>9.2f}")
        print(f"{'postfix → Maildir (delivered)':<34}{delivered:>12,.0f}{delivered / null_rate:>9.2f}")
    if args.scale_out:
        report_scale_out(runs, null_rate)


def report_scale_out(runs: list[tuple[str, int, Run]], null_rate: float) -> None:
    print()
    print("twentyday on each backend alternately (intake: 250 = durable; end-to-end: committed; "
          "CPU over the end-to-end time; PG MB: pg_database_size after)")
    print(f"{'run':<14}{'intake/s':>10}{'vs null':>9}{'end-to-end/s':>14}{'vs null':>9}{'seconds':>9}"
          f"{'serve CPU s':>13}{'Ceph CPU s':>12}{'PG CPU s':>10}{'PG MB':>8}")
    for backend, round_, run in runs:
        ceph = f"{run.ceph_cpu_seconds:>12.1f}" if run.s3 is not None else f"{'-':>12}"
        pg = (f"{run.pg_cpu_seconds:>10.1f}{run.pg_database_bytes / 1e6:>8,.1f}" if run.pg_cpu_seconds is not None
              else f"{'-':>10}{'-':>8}")
        print(f"{backend + ' #' + str(round_):<14}{run.intake:>10,.0f}{run.intake / null_rate:>9.2f}"
              f"{run.end_to_end:>14,.0f}{run.end_to_end / null_rate:>9.2f}{run.seconds:>9.1f}"
              f"{run.cpu_seconds:>13.1f}{ceph}{pg}")
    print("targets: intake >= 0.80 of null, end-to-end >= 0.50 of null")
    empty = {run.pg_empty_bytes for _, _, run in runs if run.pg_cpu_seconds is not None}
    if empty:
        print(f"PG MB includes the empty database's catalogs: {', '.join(f'{size / 1e6:.1f}' for size in empty)} MB")
    if any(run.s3 is not None for _, _, run in runs):
        print()
        print("where the s3 time goes (writer = the pipeline worker; PUTs run on ObjectStore's pool):")
    for backend, round_, run in runs:
        if run.s3 is not None:
            print(f"  {backend} #{round_}: bucket {run.bucket_objects:,} objects, {run.bucket_bytes / 1e6:,.1f} MB")
            print(scaleout.summary(run.s3, run.seconds))


if __name__ == "__main__":
    main()
