"""Benchmark: ``twentyday search`` over a 1,000,000-message index, each kind of search beside a bare SELECT.

Builds a real archive (``init``, its config, keys, index) and fills its index with SQL
(``index_builder``: the writer's columns and formats, nothing sealed or ledgered): 40 custodians,
each with 8 chats on WhatsApp, Signal, Telegram and SMS (2-10 members each from a pool of 3,000
people) and forwarded mail in threads of a few messages (sender and 1-3 recipients by address),
five years of dates (2021-2025), some late, copied and undated records, and every record's row of
the blind-word index: 6-20 words drawn from a Zipf-shaped vocabulary of 20,000 words, blinded with
the archive's own keyed hash, so ``--text`` runs as in production. The index is not ANALYZEd:
twentyday never runs ANALYZE, so the planner sees what it sees in production.

For each kind of search (each filter alone, combinations, ``--text`` with a rare word, a common
word, two words, text with a custodian) it prints p50/p95 over ``--runs`` runs of:

- bare: ``SELECT rowid FROM record WHERE <the same filter> LIMIT n`` (for text, the same
  ``MATCH`` on ``record_terms``): the cheapest read of n matching rows, the floor;
- search: :func:`twentyday.store.search.search` to its last row (the rows in order: by creation
  time, undated last), ``--limit`` rows;
- first row: the time until the search yields its first row (when results stream);

then ``twentyday search ... --json --limit n`` end to end in a new process, once per kind.
Target (issue 14): p50 under 50 ms for the filtered and the text searches.

Usage: python bench/search.py [--records N] [--keep DIR] [--runs N] [--limit N]
(``--keep``: build the archive there, or measure the one this bench built there before.)
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from index_builder import CAPTURE_COLUMNS, RECORD_COLUMNS, built_or_kept, new_archive
from twentyday import config as config_module
from twentyday.canonical import iso, utc_key
from twentyday.store import schema
from twentyday.store.archive import Archive
from twentyday.store.coverage import rebuild_capture_spans
from twentyday.store.search import Filters, search
from twentyday.store.words import tokens

CUSTODIANS = 40
CHAT_PLATFORMS = ("whatsapp", "signal", "telegram", "sms", "whatsapp", "whatsapp", "signal", "telegram")
PEOPLE = 3000
VOCABULARY = 20_000
START = datetime(2021, 1, 1, tzinfo=UTC)
YEARS = 5
MAIL_SHARE = 0.1
#: Appears in exactly this many records: the rare word of ``--text``.
RARE_WORD, RARE_COUNT = "zanzibar", 25
SYLLABLES = ("ba", "ko", "ri", "tu", "me", "sa", "lo", "ni", "da", "ve", "xu", "pe", "go", "fi", "ha", "zu")


def _vocabulary() -> list[str]:
    words = []
    for n in range(VOCABULARY):
        # Four syllables from n's digits in base 16, so every word is distinct and a real \w{2,} word.
        digits = [(n >> shift) & 15 for shift in (12, 8, 4, 0)]
        words.append("".join(SYLLABLES[d] for d in digits) + "n")
    return words


WORDS = _vocabulary()
#: Zipf-shaped (weight 1/rank): the first word is in about three of four records, the 20,000th in very few.
CUMULATIVE = list(itertools.accumulate(1 / rank for rank in range(1, VOCABULARY + 1)))
#: In about three of four records; with the second, in about 2%; the middling word alone in about 0.2%.
COMMON_WORD, SECOND_WORD, MIDDLING_WORD = WORDS[0], WORDS[40], WORDS[600]


def _person(n: int) -> str:
    return f"Person {n:04d}"


def _address(n: int) -> str:
    return f"p{n:04d}@example.org"


Terms = tuple[str, str]


def build_index(path: Path, records: int, seed: int = 14) -> Path:
    """A real archive at ``path`` whose index holds ``records`` records and their blind-word rows (SQL)."""
    config_path = new_archive(path, CUSTODIANS, START)
    config = config_module.load(config_path)
    custodians = [c.id for c in config.custodians]
    rng = random.Random(seed)
    with Archive(config) as archive:  # the daemon's side: its keyed hash blinds the words
        token_of = {word: archive.hashes.blind(tokens(word))[0] for word in [*WORDS, RARE_WORD]}
    rare_at = set(rng.sample(range(records), RARE_COUNT))
    captures: list[tuple[Any, ...]] = []
    serial = 0

    def record(custodian: str, platform: str, conversation: str, sender: str, recipients: list[str], direction: str,
               created: datetime | None, capture_id: str, received: datetime) -> tuple[tuple[Any, ...], Terms]:
        nonlocal serial
        record_id = f"rec-{rng.getrandbits(96):024x}"  # keyed hashes in production: no relation to time
        roll = rng.random()
        status = ("undated" if created is None else "late" if roll < 0.12 else "copied" if roll < 0.18
                  else "on_time")
        deadline = None if created is None else created + timedelta(days=20)
        days_late = None if deadline is None else (rng.randrange(1, 90) if status == "late" else 0)
        captured = received if deadline is None or status != "late" else deadline + timedelta(days=days_late or 0)
        count = rng.randrange(6, 21)
        words = {WORDS[bisect.bisect_left(CUMULATIVE, rng.random() * CUMULATIVE[-1])] for _ in range(count)}
        if serial in rare_at:
            words.add(RARE_WORD)
        serial += 1
        row = (record_id, f"dk-{record_id}", custodian, platform, "folder" if platform != "email" else "smtp",
               conversation, sender, json.dumps(recipients), direction, None if created is None else iso(created),
               None if created is None else utc_key(created), None, iso(captured),
               None if deadline is None else iso(deadline), "calendar/20d", status, days_late, capture_id, 0, 0, 0,
               "[]", "", "", f"pack-{capture_id}", "grs-6.1-011", "7y")
        return row, (record_id, " ".join(sorted(token_of[w] for w in words)))

    span = timedelta(days=365 * YEARS)
    chats = [(c, n) for c in custodians for n in range(len(CHAT_PLATFORMS))]
    per_chat = int(records * (1 - MAIL_SHARE)) // len(chats)
    mails = records - per_chat * len(chats)

    def rows() -> Iterator[tuple[tuple[Any, ...], Terms]]:
        for custodian, number in chats:
            platform = CHAT_PLATFORMS[number]
            name = f"Chat {number} of {custodian}"
            members = [_person(rng.randrange(PEOPLE)) for _ in range(rng.randrange(2, 11))]
            quarters = YEARS * 4
            for quarter in range(quarters):
                # One export a quarter, received 1-40 days after the quarter ends.
                begin = START + span * quarter / quarters
                end = START + span * (quarter + 1) / quarters
                received = end + timedelta(days=rng.randrange(1, 41))
                capture_id = f"cap-{rng.getrandbits(96):024x}"
                count = per_chat // quarters + (1 if quarter < per_chat % quarters else 0)
                times = sorted(begin + (end - begin) * rng.random() for _ in range(count))
                for created in times:
                    mine = rng.random() < 0.4
                    yield record(custodian, platform, name, f"Custodian {custodian}" if mine else rng.choice(members),
                                 [], "sent" if mine else "received", created, capture_id, received)
                captures.append((capture_id, custodian, "folder", "file from the watched folder",
                                 f"sh-{capture_id}", iso(received), platform, 1000, f"raw-{capture_id}", None,
                                 "ingested", "", utc_key(times[0]) if times else None,
                                 utc_key(times[-1]) if times else None, None, count, None, "folder", None))
        made = 0
        while made < mails:
            custodian = rng.choice(custodians)
            thread = f"thread:{rng.getrandbits(128):032x}"
            people = [_address(rng.randrange(PEOPLE)) for _ in range(rng.randrange(2, 5))]
            at = START + span * rng.random()
            for _ in range(min(mails - made, rng.randrange(1, 12))):
                at += timedelta(hours=rng.randrange(1, 72))
                sender, *recipients = rng.sample(people, len(people))
                received = at + timedelta(days=rng.randrange(0, 40))
                capture_id = f"cap-{rng.getrandbits(96):024x}"
                undated = rng.random() < 0.02
                yield record(custodian, "email", thread, sender, recipients[:3], "received",
                             None if undated else at, capture_id, received)
                captures.append((capture_id, custodian, "smtp", "message forwarded by mail", f"sh-{capture_id}",
                                 iso(received), "email", 5000, f"raw-{capture_id}", None, "ingested", "",
                                 None if undated else utc_key(at), None if undated else utc_key(at), None, 1, None,
                                 "relay:127.0.0.1", None))
                made += 1

    conn = schema.connect(str(config.data_dir / "index.db")).conn
    conn.execute("BEGIN")
    made = rows()
    while batch := list(itertools.islice(made, 20_000)):
        schema.insert_rows(conn, "record", RECORD_COLUMNS, [row for row, _ in batch])
        schema.insert_rows(conn, "record_terms", ("record_id", "terms"), [terms for _, terms in batch])
    schema.insert_rows(conn, "capture", CAPTURE_COLUMNS, captures)
    rebuild_capture_spans(conn)  # what the writer keeps as each capture is written
    conn.execute("COMMIT")
    conn.close()
    return config_path


@dataclass(frozen=True)
class Kind:
    label: str
    filters: Filters
    #: The bare read of n matching rows: a WHERE clause on record (or a MATCH on record_terms).
    bare: str
    params: tuple[Any, ...] = ()
    text: bool = False


def kinds(limit: int) -> list[Kind]:
    window = (datetime(2023, 3, 1, tzinfo=UTC), datetime(2023, 4, 1, tzinfo=UTC))
    since, until = utc_key(window[0]), utc_key(window[1])

    def kind(label: str, bare: str, params: tuple[Any, ...] = (), **chosen: Any) -> Kind:
        return Kind(label, Filters(limit=limit, **chosen), bare, params, "text" in chosen)

    participant = _person(42)
    return [
        kind("no filter", "1"),
        kind("custodian", "custodian = ?", ("c007",), custodian="c007"),
        kind("conversation", "conversation = ?", ("Chat 3 of c012",), conversation="Chat 3 of c012"),
        kind("participant (chat name)", "lower(sender) = lower(?)", (participant,), participant=participant.upper()),
        kind("participant (mail address)", "lower(sender) = lower(?) OR EXISTS (SELECT 1 FROM json_each(recipients) "
             "WHERE lower(value) = lower(?))",
             (_address(7), _address(7)), participant=_address(7)),
        kind("platform signal", "platform = ?", ("signal",), platform="signal"),
        kind("platform email", "platform = ?", ("email",), platform="email"),
        kind("status late", "status = ?", ("late",), status="late"),
        kind("status undated", "status = ?", ("undated",), status="undated"),
        kind("since/until (a month)", "created_utc >= ? AND created_utc < ?", (since, until),
             since=window[0], until=window[1]),
        kind("custodian + status", "custodian = ? AND status = ?", ("c007", "copied"), custodian="c007",
             status="copied"),
        kind("custodian + since/until", "custodian = ? AND created_utc >= ? AND created_utc < ?",
             ("c007", since, until), custodian="c007", since=window[0], until=window[1]),
        kind("custodian + conversation", "custodian = ? AND conversation = ?", ("c012", "Chat 3 of c012"),
             custodian="c012", conversation="Chat 3 of c012"),
        kind("platform + participant", "platform = ? AND lower(sender) = lower(?)", ("email", _address(7)),
             platform="email", participant=_address(7)),
        kind("text: rare word", RARE_WORD, text=RARE_WORD),
        kind("text: common word", COMMON_WORD, text=COMMON_WORD),
        kind("text: a middling word", MIDDLING_WORD, text=MIDDLING_WORD),
        kind("text: two words", f"{COMMON_WORD} {SECOND_WORD}", text=f"{COMMON_WORD} {SECOND_WORD}"),
        kind("text + custodian", COMMON_WORD, text=COMMON_WORD, custodian="c007"),
    ]


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def measure(action: Callable[[], object], runs: int) -> tuple[float, float]:
    action()  # warm-up: the pages it reads are in the page cache, as for an officer's second search
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return percentiles(times)


def cli_arguments(filters: Filters) -> list[str]:
    out = []
    for field in fields(filters):
        value = getattr(filters, field.name)
        if value is None or field.name == "limit":
            continue
        out += [f"--{field.name}", value.isoformat() if isinstance(value, datetime) else str(value)]
    return [*out, "--limit", str(filters.limit)]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="Build the archive here and keep it (default: a temporary folder); "
                                                  "an archive this bench built there before is measured again.")
    parser.add_argument("--runs", type=int, default=20, help="Runs per kind (p50/p95 over them).")
    parser.add_argument("--limit", type=int, default=100, help="Rows per search (the CLI's --limit).")
    parser.add_argument("--no-cli", action="store_true", help="Skip the end-to-end CLI runs.")
    parser.add_argument("--kinds", help="Only the kinds whose label contains this text (e.g. 'text').")
    options = parser.parse_args()
    config_path = built_or_kept(options.keep, "search", options.records, build_index)
    config = config_module.load(config_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    results = []
    with Archive(config) as archive:  # search blinds --text with the daemon's keyed hash
        held = archive.conn.execute("SELECT count(*) FROM record").fetchone()[0]
        # Since migration 10 a participant is read from record_participant (before: the record rows).
        participants = archive.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'record_participant'").fetchone() is not None
        print(f"{held:,} records; {options.runs} runs per kind, --limit {options.limit}; times in ms")
        print(f"{'kind':<28}{'bare p50':>9}{'p95':>8}{'search p50':>11}{'p95':>8}{'first p50':>10}{'p95':>8}"
              f"{'rows':>6}{'CLI':>7}")
        for kind in kinds(options.limit):
            if options.kinds and options.kinds not in kind.label:
                continue
            if kind.text:
                sql = "SELECT rowid FROM record_terms WHERE record_terms MATCH ? LIMIT ?"
                bare_params: tuple[Any, ...] = (" AND ".join(f'"{t}"' for t in archive.term_tokens(kind.bare)),
                                                options.limit)
            elif "sender" in kind.bare and participants:  # the same index the search reads
                platform = " AND r.platform = ?" if kind.filters.platform else ""
                sql = ("SELECT r.rowid FROM record_participant p CROSS JOIN record r ON r.id = p.record_id "
                       f"WHERE p.participant = lower(?){platform} LIMIT ?")
                bare_params = (kind.filters.participant, *((kind.filters.platform,) if platform else ()),
                               options.limit)
            else:
                sql = f"SELECT rowid FROM record WHERE {kind.bare} LIMIT ?"
                bare_params = (*kind.params, options.limit)
            bare = measure(lambda sql=sql, p=bare_params: archive.conn.execute(sql, p).fetchall(), options.runs)
            full = measure(lambda kind=kind: list(search(archive, kind.filters)), options.runs)
            found = list(search(archive, kind.filters))
            first = measure(lambda kind=kind: next(iter(search(archive, kind.filters)), None), options.runs)
            cli = float("nan")
            if not options.no_cli:
                command = [sys.executable, "-m", "twentyday", "--config", str(config_path), "search", "--json",
                           *cli_arguments(kind.filters)]
                began = time.perf_counter()
                output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
                cli = time.perf_counter() - began
                if len(json.loads(output)) != len(found):
                    raise SystemExit(f"{kind.label}: the CLI printed another number of rows than the library found")
            results.append((kind, full))
            print(f"{kind.label:<28}{bare[0] * 1000:>9.1f}{bare[1] * 1000:>8.1f}{full[0] * 1000:>11.1f}"
                  f"{full[1] * 1000:>8.1f}{first[0] * 1000:>10.1f}{first[1] * 1000:>8.1f}{len(found):>6}"
                  f"{cli * 1000:>7.0f}")
    slow = [kind.label for kind, (p50, _) in results if p50 >= 0.05]
    print("target p50 under 50 ms: " + ("met" if not slow else "NOT met for " + ", ".join(slow)))


if __name__ == "__main__":
    main()
