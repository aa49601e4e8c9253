"""Benchmark: full WhatsApp ingest beside chat-miner's parser and a bare regex loop, in one run.

Generates an Android WhatsApp export of ``--messages`` messages (streamed to
disk, same line format as ``tests/chatgen.py``), then runs three phases, each
in a fresh subprocess so that its peak RSS (``ru_maxrss`` read in the child)
is its own:

- twentyday: ``pipeline.process`` on the file into a fresh
  ``init --no-passphrase`` archive -- detect, parse, seal, index, commit;
- twentyday's WhatsApp parser alone (records built and dropped), to show
  how the ingest's time splits between parsing and the archive;
- chat-miner (PyPI ``chat-miner``): ``WhatsAppParser(file).parse_file()``, parse
  only, in its own virtualenv (it is not a twentyday dependency);
- regex: one compiled header regex over the file's lines: a floor, not a parser.

Targets: full ingest at least as fast as chat-miner's parse; twentyday's peak
RSS under 300 MB (the export is streamed, so memory must not grow with it).

Usage: python bench/ingest_chat.py [--messages N] [--chat-miner-python PATH]

Scale-out (issue 17): ``python bench/ingest_chat.py --scale-out [--rounds N] [--backends LIST]``
runs, instead of the phases above, the full ingest into each backend alternately within each round,
``--rounds`` (2) of each, every one in a fresh archive:

- ``embedded``: the SQLite index, the sealed blobs in it;
- ``s3``: the SQLite index, the sealed blobs in a bucket of a local Ceph RGW (``[store] blobs =
  "s3://…"``), a fresh RGW each run (``scripts/local-s3 start DIR --store-bytes N``, stopped after:
  its OSD keeps objects in memory, and a locked object cannot be deleted). Needs Debian's ceph-mon,
  ceph-osd, radosgw and ceph-common;
- ``pg``: the index in a local PostgreSQL (``[store] index = "postgresql://…"``), the sealed blobs
  in it too (chunk.data, bytea), a fresh cluster each run (``scripts/local-pg start DIR`` in a new
  folder, fsync off, a unix socket only; stopped after). Needs Debian's postgresql;
- ``pg+s3``: the full scale-out, the index in PostgreSQL and the blobs in the bucket.

``--backends`` chooses which, comma-separated (default all four, in that order). It prints, per run:
seconds, the ingest's CPU seconds, messages/s, the child's peak RSS (target < 300 MB: the twentyday
process, not the servers), the index's size (the data_dir's files; on PostgreSQL pg_database_size
after), for s3 the bucket's objects and bytes (listed after) and the CPU the local Ceph daemons used,
for pg the CPU the PostgreSQL server used (its sessions included) and its processes' RSS after; then
where the s3 time goes (bench/scaleout.py's counters around ObjectStore: PUTs, bytes, latency, the
client CPU they cost, the writer's time blocked on them). The parser alone runs once beside them.

This file is also the children's entry point (``--phase NAME FILE``), so its
top level imports the standard library only: the chat-miner child runs under
another interpreter that has no twentyday.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

DEFAULT_MESSAGES = 1_000_000
RSS_TARGET_MB = 300
DEFAULT_CHAT_MINER_PYTHON = Path("/tmp/cm/bin/python")
#: The name a real export has, so the conversation is named as in production.
EXPORT_NAME = "WhatsApp Chat with Counterpart.txt"

# Copied from tests/chatgen.py (bench must not import tests): keep the two in step.
WORDS = ("budget", "meeting", "draft", "agenda", "minister", "call", "notes", "tomorrow", "report", "visit")
START = datetime(2026, 10, 13, 8, 0)  # day 13 settles the day-first order on line 1


class PhaseResult(TypedDict):
    items: int
    seconds: float
    peak_rss_mb: float


class ArchiveResult(PhaseResult, total=False):
    cpu_seconds: float  # the ingest's CPU time (user + system, all the child's threads): steadier than wall time
    index_mb: float  # what the archive's data_dir holds after the ingest (the SQLite index, its WAL); on
    # PostgreSQL, measured by the parent: pg_database_size of the index's database
    bucket_objects: int  # s3 only: versions in the bucket, listed after the ingest
    bucket_bytes: int
    s3: dict[str, Any]  # s3 only: bench/scaleout.py's counters of the ObjectStore
    ceph_cpu_seconds: float  # s3 only, measured by the parent: CPU the local Ceph daemons used meanwhile
    ceph_rss_mb: float
    pg_cpu_seconds: float  # pg backends only, measured by the parent: CPU the local PostgreSQL server used
    pg_rss_mb: float  # the server's processes' resident memory after (shared buffers counted in each)
    pg_empty_mb: float  # pg_database_size of the database when it was made, before the archive's tables


def android_line(n: int, start: datetime = START) -> str:
    at = start + timedelta(minutes=n)
    sender = "Jane Doe" if n % 3 else "Counterpart"
    words = " ".join(WORDS[(n * 7 + k) % len(WORDS)] for k in range(8))
    return f"{at:%d/%m/%Y, %H:%M} - {sender}: message {n} {words}\n"


def write_export(path: Path, count: int) -> int:
    """Stream ``count`` messages to ``path``; returns its size in bytes."""
    with path.open("w", encoding="utf-8", buffering=1024 * 1024) as handle:
        for n in range(count):
            handle.write(android_line(n))
    return path.stat().st_size


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    # Linux reports ru_maxrss in KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the phases (each runs in its own child process) -----------------------------------------


def phase_twentyday(export: Path) -> PhaseResult:
    return ingest_into(export)


def phase_twentyday_s3(export: Path) -> PhaseResult:
    """The same ingest into an archive whose sealed blobs go to a new bucket of the local RGW
    (the parent names it in ``BENCH_S3_ENDPOINT``/``BENCH_S3_CREDENTIALS``), ObjectStore's work counted."""
    return ingest_into(export, s3=s3_from_env())


def phase_twentyday_pg(export: Path) -> PhaseResult:
    """The same ingest into an archive whose index (sealed blobs included: chunk.data) is in the empty
    database of the local PostgreSQL the parent names in ``BENCH_PG_INDEX``."""
    return ingest_into(export, pg_index=os.environ["BENCH_PG_INDEX"])


def phase_twentyday_pg_s3(export: Path) -> PhaseResult:
    """The full scale-out: the index in the local PostgreSQL, the sealed blobs in a bucket of the local RGW."""
    return ingest_into(export, s3=s3_from_env(), pg_index=os.environ["BENCH_PG_INDEX"])


def s3_from_env() -> tuple[str, Path]:
    return os.environ["BENCH_S3_ENDPOINT"], Path(os.environ["BENCH_S3_CREDENTIALS"])


def ingest_into(export: Path, s3: tuple[str, Path] | None = None, pg_index: str | None = None) -> ArchiveResult:
    # Imported here: the chat-miner child runs this file without twentyday installed.
    from datetime import UTC

    import scaleout  # bench/scaleout.py, beside this file
    from twentyday import config as config_module
    from twentyday.initialise import init_archive
    from twentyday.pipeline import process as pipeline
    from twentyday.store.archive import Archive

    logging.disable(logging.WARNING)  # the truncated-export warning is expected at this size
    with tempfile.TemporaryDirectory(prefix="twentyday-bench-", dir=export.parent) as scratch:
        root = Path(scratch) / "archive"
        now = datetime.now(UTC)
        counters = None
        if pg_index is not None:
            blobs = "" if s3 is None else scaleout.s3_store_lines(*s3, scaleout.new_bucket_name())
            config_path = scaleout.make_pg_archive(root, pg_index, now=now, extra_store=blobs)
        elif s3 is not None:
            config_path = scaleout.make_s3_archive(root, *s3, scaleout.new_bucket_name(), now=now)
        else:
            init_archive(root, passphrase=None, demo=False, now=now)
            config_path = root / "twentyday.toml"
        if s3 is not None:
            counters = scaleout.instrument()
        config = config_module.load(config_path)
        archive = Archive(config)
        try:
            item = pipeline.Item(export.name, "cli", datetime.now(UTC), path=export, custodian_id="jdoe")
            cpu, began = cpu_seconds(), time.perf_counter()
            outcome = pipeline.process(archive, item)
            seconds, cpu = time.perf_counter() - began, cpu_seconds() - cpu
        finally:
            archive.close()
        peak = peak_rss_mb()
        if outcome.state != "ingested" or outcome.result is None:
            raise SystemExit(f"twentyday did not ingest the export: {outcome.state}: {outcome.detail}")
        result: ArchiveResult = {"items": outcome.result.new_count, "seconds": seconds, "peak_rss_mb": peak,
                                 "cpu_seconds": cpu}
        if pg_index is None:  # on PostgreSQL the parent measures the database (pg_database_size)
            result["index_mb"] = sum(path.stat().st_size for path in config.data_dir.rglob("*")
                                     if path.is_file()) / 1e6
        if counters is not None:
            result["bucket_objects"], result["bucket_bytes"] = scaleout.bucket_usage(config_path)
            result["s3"] = counters.as_dict()
    return result


def phase_twentyday_parse(export: Path) -> PhaseResult:
    """twentyday's WhatsApp parser alone, records consumed and dropped: where the ingest time goes."""
    from twentyday import config as config_module
    from twentyday.initialise import init_archive
    from twentyday.parsers import registry, whatsapp
    from twentyday.pipeline.process import hints_for
    from twentyday.records import ParsedMessage

    with tempfile.TemporaryDirectory(prefix="twentyday-bench-", dir=export.parent) as scratch:
        # Only for the custodian's parse hints (zone, day order, own names), as the ingest uses.
        root = Path(scratch) / "archive"
        init_archive(root, passphrase=None, demo=False, now=datetime.now())
        custodian = config_module.load(root / "twentyday.toml").custodian("jdoe")
    assert custodian is not None
    source = registry.open_source(export, None, export.name)
    messages = 0
    began = time.perf_counter()
    for record in whatsapp.parse(source, hints_for(custodian, export.name)):
        messages += isinstance(record, ParsedMessage)
    seconds = time.perf_counter() - began
    return {"items": messages, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def phase_chat_miner(export: Path) -> PhaseResult:
    logging.disable(logging.CRITICAL)  # chat-miner logs every system line at INFO
    from chatminer.chatparsers import WhatsAppParser  # type: ignore[import-not-found]

    parser = WhatsAppParser(str(export))
    began = time.perf_counter()
    parser.parse_file()
    seconds = time.perf_counter() - began
    # The collection has no public length; its list is the parsed messages themselves.
    items = len(parser.parsed_messages._parsed_messages)
    return {"items": items, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


#: Roughly what any parser must at least do per line: match the header, split out the fields.
_HEADER = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4}), (\d{1,2}):(\d{2}) - ([^:]+): ")


def phase_regex(export: Path) -> PhaseResult:
    matched = 0
    began = time.perf_counter()
    with export.open(encoding="utf-8") as handle:
        match = _HEADER.match
        for line in handle:
            if match(line) is not None:
                matched += 1
    seconds = time.perf_counter() - began
    return {"items": matched, "seconds": seconds, "peak_rss_mb": peak_rss_mb()}


PHASES = {
    "twentyday": phase_twentyday,
    "twentyday-s3": phase_twentyday_s3,
    "twentyday-pg": phase_twentyday_pg,
    "twentyday-pg+s3": phase_twentyday_pg_s3,
    "twentyday-parse": phase_twentyday_parse,
    "chat-miner": phase_chat_miner,
    "regex": phase_regex,
}


# --- the parent: generate, run each phase in a child, print ------------------------------------


def run_phase(python: Path | str, phase: str, export: Path, extra_env: dict[str, str] | None = None
              ) -> ArchiveResult | str:
    """The child's result, or why it failed (its last stderr line)."""
    env = {**os.environ, "TQDM_DISABLE": "1", **(extra_env or {})}  # TQDM: chat-miner's per-message progress bar
    done = subprocess.run(
        [str(python), __file__, "--phase", phase, str(export)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
        return lines[-1]
    result: ArchiveResult = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def chat_miner_python(given: Path | None, scratch: Path) -> Path | None:
    """An interpreter that has chat-miner: the one given, /tmp/cm, or a new venv under scratch."""
    if given is not None:
        return given
    if DEFAULT_CHAT_MINER_PYTHON.exists():
        return DEFAULT_CHAT_MINER_PYTHON
    venv = scratch / "chat-miner-venv"
    print(
        f"chat-miner: no interpreter given and none at {DEFAULT_CHAT_MINER_PYTHON}; "
        f"installing it into {venv} (pip install chat-miner)",
        flush=True,
    )
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "chat-miner"],
            check=True,
            capture_output=True,
        )
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"chat-miner: install failed ({error})", flush=True)
        return None
    return venv / "bin" / "python"


def main() -> None:
    parser = argparse.ArgumentParser(description="Full WhatsApp ingest beside chat-miner and a regex loop.")
    parser.add_argument("--messages", type=int, default=DEFAULT_MESSAGES)
    parser.add_argument("--chat-miner-python", type=Path, help="an interpreter with chat-miner installed")
    parser.add_argument("--scale-out", action="store_true",
                        help="the ingest into each backend (--backends) alternately, each in a fresh archive")
    parser.add_argument("--rounds", type=int, default=2, help="with --scale-out: rounds of each backend")
    import scaleout  # bench/scaleout.py, beside this file (stdlib only at its top level)

    parser.add_argument("--backends", type=scaleout.backend_list, default=BACKENDS,
                        help=f"with --scale-out: which, comma-separated, in this order (default {','.join(BACKENDS)}):"
                             " embedded = SQLite; s3 = blobs in a local Ceph RGW's bucket; pg = index (blobs"
                             " too) in a local PostgreSQL; pg+s3 = index in PostgreSQL, blobs in the bucket")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("export", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase is not None:  # a child: run one phase, print its result as one JSON line
        print(json.dumps(PHASES[args.phase](args.export)))
        return

    with tempfile.TemporaryDirectory(prefix="ingest-chat-bench-") as scratch_name:
        scratch = Path(scratch_name)
        export = scratch / EXPORT_NAME
        began = time.perf_counter()
        size = write_export(export, args.messages)
        print(
            f"export: {args.messages:,} messages, {size / 1e6:.1f} MB, written in {time.perf_counter() - began:.1f} s",
            flush=True,
        )
        if args.scale_out:
            scale_out(export, args.messages, args.rounds, args.backends)
            return

        results: dict[str, PhaseResult | str] = {
            "twentyday": run_phase(sys.executable, "twentyday", export),
            "twentyday-parse": run_phase(sys.executable, "twentyday-parse", export),
        }
        miner = chat_miner_python(args.chat_miner_python, scratch)
        results["chat-miner"] = run_phase(miner, "chat-miner", export) if miner else "unavailable (install failed)"
        results["regex"] = run_phase(sys.executable, "regex", export)
    report(args.messages, results)


#: The --scale-out backends and the child phase of each: where the index is, where the sealed blobs are.
BACKEND_PHASES = {
    "embedded": "twentyday",  # SQLite index, blobs in it
    "s3": "twentyday-s3",  # SQLite index, blobs in a bucket of the local RGW
    "pg": "twentyday-pg",  # index in the local PostgreSQL, blobs in it (chunk.data)
    "pg+s3": "twentyday-pg+s3",  # the full scale-out: index in PostgreSQL, blobs in the bucket
}
BACKENDS = tuple(BACKEND_PHASES)  # scaleout.BACKENDS, each with its child phase


def scale_out(export: Path, messages: int, rounds: int, backends: tuple[str, ...] = BACKENDS) -> None:
    """The ingest into each backend alternately, each in a fresh archive and with fresh services: for
    s3 a fresh local RGW (its OSD keeps objects in memory and a locked one cannot be deleted), for pg a
    fresh local PostgreSQL (scripts/local-pg, in a new folder; stopped after, its databases gone)."""
    import scaleout  # bench/scaleout.py, beside this file

    parse = run_phase(sys.executable, "twentyday-parse", export)
    runs: list[tuple[str, int, ArchiveResult | str]] = []
    # The OSD holds every object in memory: room for the export's sealed bytes several times over.
    store_bytes = max(1 << 30, 8 * export.stat().st_size)
    for round_ in range(1, rounds + 1):
        for backend in backends:
            print(f"round {round_}: {backend} ...", flush=True)
            with contextlib.ExitStack() as services:
                env: dict[str, str] = {}
                rgw = pg = None
                if backend in ("s3", "pg+s3"):
                    rgw = services.enter_context(scaleout.local_s3(store_bytes))
                    env |= {"BENCH_S3_ENDPOINT": rgw.endpoint, "BENCH_S3_CREDENTIALS": str(rgw.credentials)}
                if backend in ("pg", "pg+s3"):
                    pg = services.enter_context(scaleout.local_pg())
                    env["BENCH_PG_INDEX"] = pg.create_database(PG_DATABASE)
                    empty_mb = pg.database_size(PG_DATABASE) / 1e6  # its catalogs, before any table
                ceph_cpu = rgw.cpu_seconds() if rgw is not None else 0.0
                pg_cpu = pg.cpu_seconds() if pg is not None else 0.0
                result = run_phase(sys.executable, BACKEND_PHASES[backend], export, env)
                if not isinstance(result, str):
                    if rgw is not None:
                        result["ceph_cpu_seconds"] = rgw.cpu_seconds() - ceph_cpu
                        result["ceph_rss_mb"] = rgw.rss_mb()
                    if pg is not None:
                        result["pg_cpu_seconds"] = pg.cpu_seconds() - pg_cpu
                        result["pg_rss_mb"] = pg.rss_mb()
                        result["index_mb"] = pg.database_size(PG_DATABASE) / 1e6
                        result["pg_empty_mb"] = empty_mb
            runs.append((backend, round_, result))
    report_scale_out(messages, parse, runs)


#: The database the pg runs' index is in (a fresh cluster each run: the name never collides).
PG_DATABASE = "bench_ingest"


def report_scale_out(messages: int, parse: PhaseResult | str, runs: list[tuple[str, int, ArchiveResult | str]]) -> None:
    import scaleout

    print()
    print(f"{messages:,} messages, one export, one capture; each run a fresh archive (index: the data_dir's"
          f" files; on pg, pg_database_size)")
    print(f"{'run':<16}{'records':>10}{'seconds':>9}{'CPU s':>7}{'msg/s':>9}{'peak RSS':>10}{'index':>10}"
          f"{'bucket objects':>16}{'bucket MB':>11}{'Ceph CPU s':>12}{'PG CPU s':>10}")
    for backend, round_, result in runs:
        label = f"{backend} #{round_}"
        if isinstance(result, str):
            print(f"{label:<16}failed: {result}")
            continue
        found = result
        bucket = (f"{found['bucket_objects']:>16,}{found['bucket_bytes'] / 1e6:>11,.1f}"
                  f"{found['ceph_cpu_seconds']:>12.1f}") if "s3" in found else f"{'-':>16}{'-':>11}{'-':>12}"
        pg = f"{found['pg_cpu_seconds']:>10.1f}" if "pg_cpu_seconds" in found else f"{'-':>10}"
        print(f"{label:<16}{found['items']:>10,}{found['seconds']:>9.1f}{found.get('cpu_seconds', 0.0):>7.1f}"
              f"{found['items'] / found['seconds']:>9,.0f}"
              f"{found['peak_rss_mb']:>7.0f} MB{found.get('index_mb', 0.0):>7.0f} MB{bucket}{pg}")
    if not isinstance(parse, str):
        print(f"{'parser alone':<16}{parse['items']:>10,}{parse['seconds']:>9.1f}{'':>7}"
              f"{parse['items'] / parse['seconds']:>9,.0f}{parse['peak_rss_mb']:>7.0f} MB")
    for backend, round_, result in runs:
        if "pg" in backend and not isinstance(result, str):
            print(f"  {backend} #{round_}: local PostgreSQL CPU {result['pg_cpu_seconds']:.1f} s, its processes "
                  f"{result['pg_rss_mb']:.0f} MB RSS after, database {result['index_mb']:,.1f} MB "
                  f"({result['pg_empty_mb']:,.1f} MB of it there when empty: its catalogs)")
    if any("s3" in found for _, _, found in runs if not isinstance(found, str)):
        print()
        print("where the s3 time goes (writer = the ingest's own thread; PUTs run on ObjectStore's pool):")
    for backend, round_, result in runs:
        if "s3" in backend and not isinstance(result, str):
            found = result
            print(f"  {backend} #{round_}: {found['seconds']:.1f} s, ingest CPU {found['cpu_seconds']:.1f} s, "
                  f"local Ceph CPU {found['ceph_cpu_seconds']:.1f} s ({found['ceph_rss_mb']:.0f} MB RSS after)")
            print(scaleout.summary(found["s3"], found["seconds"]))
    measured = [r for _, _, r in runs if not isinstance(r, str)]
    worst = max((r["peak_rss_mb"] for r in measured), default=0.0)
    verdict = "met" if measured and len(measured) == len(runs) and worst < RSS_TARGET_MB else "NOT met"
    print(f"target peak RSS < {RSS_TARGET_MB} MB (the twentyday process) on every backend: {verdict} "
          f"(highest {worst:.0f} MB)")
    for backend, round_, result in runs:
        if not isinstance(result, str) and result["items"] != messages:
            print(f"note: {backend} #{round_} stored {result['items']:,} records for {messages:,} messages")


def report(messages: int, results: dict[str, PhaseResult | str]) -> None:
    labels = {
        "twentyday": "twentyday full ingest (parse+seal+index+commit)",
        "twentyday-parse": "  of which: twentyday WhatsApp parser alone",
        "chat-miner": "chat-miner WhatsAppParser.parse_file (parse only)",
        "regex": "compiled-regex loop over lines (floor)",
    }
    unit = {"twentyday": "msg/s", "twentyday-parse": "msg/s", "chat-miner": "msg/s", "regex": "lines/s"}
    width = max(len(label) for label in labels.values())
    print()
    print(f"{'phase':<{width}}  {'items':>10}  {'seconds':>8}  {'rate':>16}  {'peak RSS':>9}")
    for key, label in labels.items():
        result = results[key]
        if isinstance(result, str):
            print(f"{label:<{width}}  {'-':>10}  {'-':>8}  {'-':>16}  {'-':>9}   {result}")
            continue
        rate = result["items"] / result["seconds"] if result["seconds"] else 0.0
        print(
            f"{label:<{width}}  {result['items']:>10,}  {result['seconds']:>8.2f}  "
            f"{rate:>10,.0f} {unit[key]:<5}  {result['peak_rss_mb']:>6.0f} MB"
        )
    print()
    ours, theirs = results["twentyday"], results["chat-miner"]
    if isinstance(ours, str):
        print(f"targets: not measured, the twentyday phase failed: {ours}")
        return
    our_rate = ours["items"] / ours["seconds"]
    if isinstance(theirs, str):
        print(f"target full ingest >= chat-miner parse rate: baseline unavailable ({theirs})")
    else:
        their_rate = theirs["items"] / theirs["seconds"]
        verdict = "met" if our_rate >= their_rate else "NOT met"
        print(
            f"target full ingest >= chat-miner parse rate: {verdict} "
            f"({our_rate:,.0f} vs {their_rate:,.0f} msg/s, {our_rate / their_rate:.2f}x)"
        )
    verdict = "met" if ours["peak_rss_mb"] < RSS_TARGET_MB else "NOT met"
    print(f"target peak RSS < {RSS_TARGET_MB} MB: {verdict} ({ours['peak_rss_mb']:.0f} MB)")
    if ours["items"] != messages:
        print(f"note: twentyday stored {ours['items']:,} records for {messages:,} messages")


if __name__ == "__main__":
    main()
