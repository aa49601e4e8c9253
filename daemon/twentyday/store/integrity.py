"""``serve``'s own ``verify``: run it on a timer, and raise ``integrity_failure`` when it finds problems.

``twentyday verify`` is read-only by design (the verify timer's user may read the archive but not
write it), so on its own it cannot open an alert. ``serve`` therefore runs the same checks
(:func:`verify_archive`: its own read-only connection, the key pinned in the config) in a
thread of its own, every ``alerts.verify_every_hours``, and once :data:`FIRST_DELAY_SECONDS`
after start. When the report names problems it raises ONE ``integrity_failure`` alert (no
custodian, no conversation: officers get it, notify/outbox.py) in a short write transaction of
its own with a signed checkpoint, like any alert change; a repeat bumps its count.

What the alert says is twentyday's own words: counts of problems by a stable code
(``<object>_<kind>``, e.g. ``record_altered``) and the head verified. Never an object's id, a
difference's text or a name: those are in ``twentyday verify``'s output, for an officer to run.
A run that fails (the index locked or unreadable, a bug) is logged by its error's type and tried
again at the next interval; it never stops ``serve``.

**The last run is kept** in ``<data_dir>/integrity.json`` (:data:`LAST_RUN_FILE`, written whole and
renamed into place): when it started and ended, ``ok`` / ``problems`` / ``error``, the counts and the
head it verified. ``twentyday status`` reads it. A file and not an index row: a row would be a ledger
entry and a signed checkpoint per run, and what it says (counts, a head already published in the
journal) is no record; the durable result of a run that found problems is its alert, which is ledgered.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import iso, parse_iso
from twentyday.config import Config
from twentyday.store import outbox
from twentyday.store.alerts import raise_alert
from twentyday.store.archive import Archive
from twentyday.store.verify import Problem, VerifyReport, verify_archive

log = logging.getLogger(__name__)

#: The first run, this long after start: soon enough that a tampered archive is noticed at once
#: (not a day later), late enough that ``serve`` is taking mail and the pipeline has recovered the
#: spool before a full pass over every sealed byte competes with them for the disk and the CPU.
FIRST_DELAY_SECONDS = 60.0
KIND = "integrity_failure"
#: The last run's outcome, in the data directory (see the module's docstring).
LAST_RUN_FILE = "integrity.json"

#: What verify's problems are about, by the words that open their ``object`` (the longest first).
_OBJECT_CLASSES = (
    ("published head ", "published_head"),
    ("ledger entry ", "ledger_entry"),
    ("search terms of ", "search_terms"),
    ("attachment of ", "attachment"),
    ("alert event ", "alert_event"),
    ("alert_event ", "alert_event"),
    ("secrets/", "ledger_key"),
)
_ONE_WORD_CLASSES = frozenset({"alert", "blob", "capture", "checkpoint", "custodian", "delivery", "disclosure",
                               "escrow", "event", "hold", "keyslot", "link", "record", "segment", "bucket"})


def object_class(problem: Problem) -> str:
    """What a problem is about, as a stable word with no id in it (``record``, ``ledger_entry``, ...)."""
    label = problem.object
    if label in ("index.db", "index"):  # the index in SQLite (its file) or in PostgreSQL
        return "index"
    for prefix, name in _OBJECT_CLASSES:
        if label.startswith(prefix):
            return name
    first = label.split(" ", 1)[0]
    return first if first in _ONE_WORD_CLASSES else "other"


def problem_code(problem: Problem) -> str:
    """``<object>_<kind>``: ``blob_missing``, ``record_altered``, ``ledger_entry_altered``, ..."""
    kind = problem.kind if problem.kind.isidentifier() else "other"
    return f"{object_class(problem)}_{kind}"


@dataclass(frozen=True)
class IntegrityFinding:
    detail: str
    facts: dict[str, Any]


def summarise(report: VerifyReport) -> IntegrityFinding:
    """The alert's detail and facts from a report with problems: counts by code, the head verified."""
    counts = Counter(problem_code(p) for p in report.problems)
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    detail = (f"verify: {len(report.problems)} problem(s): "
              + ", ".join(f"{count} {code}" for code, count in ordered))
    facts: dict[str, Any] = {"problems": len(report.problems), "counts": dict(sorted(counts.items())),
                             "head": report.head, "ledger_entries": report.ledger_entries}
    return IntegrityFinding(detail, facts)


def raise_integrity_failure(archive: Archive, report: VerifyReport, now: datetime) -> IntegrityFinding:
    """Open (or bump) the one ``integrity_failure`` alert: its own transaction, then a signed checkpoint."""
    finding = summarise(report)
    with outbox.change(archive.conn, archive.secrets.signing_key, iso(now)):
        raise_alert(archive.conn, KIND, "", "", finding.detail, now, facts=finding.facts)
    return finding


@dataclass(frozen=True)
class IntegrityRun:
    """One run of the check, as :data:`LAST_RUN_FILE` keeps it. ``result``: ``ok``, ``problems`` (an
    ``integrity_failure`` alert was raised; ``detail`` is its detail) or ``error`` (the run did not
    finish; ``detail`` is the error's type)."""

    started_at: datetime
    finished_at: datetime
    result: str
    detail: str
    problems: int
    ledger_entries: int
    head: str

    def as_json(self) -> dict[str, Any]:
        return {"started_at": iso(self.started_at), "finished_at": iso(self.finished_at), "result": self.result,
                "detail": self.detail, "problems": self.problems, "ledger_entries": self.ledger_entries,
                "head": self.head}


def record_run(data_dir: Path, run: IntegrityRun) -> None:
    """Keep ``run`` as the last one: a new file written, fsynced and renamed over the old one, so a
    reader sees the whole of one run or the whole of the one before."""
    path = data_dir / LAST_RUN_FILE
    partial = path.with_name(path.name + ".partial")
    # 0644: counts and a head already published in the journal; a status reader need not be the daemon.
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, json.dumps(run.as_json(), sort_keys=True).encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)


def last_run(data_dir: Path) -> IntegrityRun | None:
    """The last run ``serve`` kept, or None when it kept none (never ran here, or the file is unreadable
    or not one of ours: status says so rather than failing)."""
    try:
        value = json.loads((data_dir / LAST_RUN_FILE).read_bytes())
        return IntegrityRun(parse_iso(str(value["started_at"])), parse_iso(str(value["finished_at"])),
                            str(value["result"]), str(value["detail"]), int(value["problems"]),
                            int(value["ledger_entries"]), str(value["head"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class IntegrityCheck:
    """``verify`` on a timer inside ``serve``. ``archive``: a write connection of this thread's own,
    used only to raise the alert (the check itself opens the index read-only each run)."""

    def __init__(self, config: Config, archive: Archive,
                 signers: Mapping[str, ed25519.Ed25519PublicKey] | None = None, *,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.config = config
        self._archive = archive
        self._signers = dict(signers or {})
        self._clock = clock
        #: The last signed checkpoint a run proved: the next run must still find it in the chain,
        #: so a ledger cut back (truncated, rolled back) between two runs is named too.
        self.last_checkpoint = ""

    def run_once(self) -> VerifyReport:
        started, began = self._clock(), time.monotonic()
        try:
            report = self._check()
        except Exception as error:
            self._keep(started, began, "error", type(error).__name__, None)
            raise
        self._keep(started, began, "ok" if report.ok else "problems",
                   "" if report.ok else summarise(report).detail, report)
        return report

    def _check(self) -> VerifyReport:
        report = verify_archive(self.config, self.last_checkpoint or None, self._signers)
        if report.ok and report.checkpoint:
            self.last_checkpoint = report.checkpoint
        if report.ok:
            log.info("integrity check: ok, %d ledger entries, head %s", report.ledger_entries,
                     report.head or "(none yet)", extra={"event": "integrity_ok"})
            return report
        finding = raise_integrity_failure(self._archive, report, self._clock())
        log.error("integrity check: %s; integrity_failure alert raised (run 'twentyday verify' for each object)",
                  finding.detail, extra={"event": KIND})
        return report

    def _keep(self, started: datetime, began: float, result: str, detail: str, report: VerifyReport | None) -> None:
        """Keep this run as the last (for ``twentyday status``); a failure to is logged, never fatal."""
        finished = started + timedelta(seconds=time.monotonic() - began)
        run = IntegrityRun(started, finished, result, detail, len(report.problems) if report else 0,
                           report.ledger_entries if report else 0, report.head if report else "")
        try:
            record_run(self.config.data_dir, run)
        except OSError as error:
            log.warning("integrity check: could not keep its result in %s (%s)", LAST_RUN_FILE,
                        error.strerror or type(error).__name__)

    def run(self, stop: threading.Event, interval: float, first_delay: float = FIRST_DELAY_SECONDS) -> None:
        """Runs until ``stop`` is set: the first after ``first_delay`` seconds, then every ``interval``."""
        if stop.wait(first_delay):
            return
        while True:
            try:
                self.run_once()
            except Exception as error:  # a locked or unreadable index, a bug: logged, tried again next time
                log.error("integrity check failed (%s); next in %.0f s", type(error).__name__, interval)
            if stop.wait(interval):
                return
