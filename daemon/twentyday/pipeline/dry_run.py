"""What ``twentyday ingest`` would read from a file, without ingesting it (``ingest --dry-run``).

:func:`read_file` makes the same choices as :func:`twentyday.pipeline.process.process` for a
file given to ``ingest`` — the parser chosen by content, the custodian (``--custodian``, or
routed by the item's own senders and recipients), that custodian's zone and locale as the
parse hints — and consumes the parse, counting. It opens no archive and needs no key: nothing
is captured, ledgered, spooled or alerted. So an officer can check an unusual export (its
layout, the day/month order and what decided it, the zone, how many lines are undated) before
it counts.

A :class:`DryRun` holds counts and readings only: no body, no sender, no conversation name.
The reason an item would be kept without records is the ParseError's, as the quarantine would
seal it (names a file, a line number, a layout; not the text).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from twentyday.config import Config, Custodian
from twentyday.errors import HeldForReview, ParseError
from twentyday.parsers import registry
from twentyday.pipeline.process import guarded_parse, hints_for, route_by_content, truncation
from twentyday.pipeline.progress import EVERY as PROGRESS_EVERY
from twentyday.pipeline.progress import ProgressCallback
from twentyday.records import ParsedMessage, Record

#: What ingest would do with the file: store its records, or keep it sealed without them.
READABLE = "readable"
UNREADABLE = frozenset({"quarantined", "held"})


@dataclass(frozen=True)
class ReadingCount:
    """How many message times were read one way: layout, day/month order and what decided it, zone."""

    layout: str
    day_first: bool | None
    decided_by: str
    zone: str
    count: int


@dataclass(frozen=True)
class DryRun:
    """What ingest would read from one file.

    ``outcome`` is ``readable`` (ingest would store its records), ``quarantined`` or ``held``
    (kept sealed without records, with ``code`` and ``reason``: exit 4, like ingest), or
    ``unrouted`` (no custodian given and none matches). Counts made before a parse failed are
    kept: they say how far the file was read.
    """

    source: str
    outcome: str
    parser: str | None = None
    custodian: str | None = None
    #: The custodian's zone and locale, the hints every zone-less time is read with.
    zone: str = ""
    locale: str = ""
    code: str = ""
    reason: str = ""
    records: int = 0
    events: dict[str, int] = field(default_factory=dict)
    undated: int = 0
    incomplete: int = 0
    deleted: int = 0
    edited: int = 0
    first: datetime | None = None
    last: datetime | None = None
    readings: tuple[ReadingCount, ...] = ()

    @property
    def readable(self) -> bool:
        return self.outcome not in UNREADABLE

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source, "outcome": self.outcome, "parser": self.parser, "custodian": self.custodian,
            "zone": self.zone, "locale": self.locale, "code": self.code, "reason": self.reason,
            "records": self.records, "events": dict(sorted(self.events.items())), "undated": self.undated,
            "incomplete": self.incomplete, "deleted": self.deleted, "edited": self.edited,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
            "readings": [{"layout": r.layout, "day_first": r.day_first, "decided_by": r.decided_by,
                          "zone": r.zone, "count": r.count} for r in self.readings],
        }


@dataclass
class _Counts:
    records: int = 0
    with_media: int = 0
    conversation: str = ""
    events: Counter[str] = field(default_factory=Counter)
    undated: int = 0
    incomplete: int = 0
    deleted: int = 0
    edited: int = 0
    first: datetime | None = None
    last: datetime | None = None
    readings: Counter[tuple[str, bool | None, str, str]] = field(default_factory=Counter)

    def add(self, record: Record) -> None:
        if not isinstance(record, ParsedMessage):
            self.events[record.kind] += 1
            return
        self.records += 1
        self.conversation = self.conversation or record.conversation
        if record.attachments:
            self.with_media += 1
        # As the store counts them (store/writer.py): an omitted attachment or the parser's flag.
        if "media_omitted" in record.flags or any(a.omitted for a in record.attachments):
            self.incomplete += 1
        self.deleted += "deleted" in record.flags
        self.edited += record.edited
        if record.time is not None:
            reading = record.time
            self.readings[(reading.layout, reading.day_first, reading.decided_by, reading.zone)] += 1
        at = record.created_at
        if at is None:
            self.undated += 1
            return
        if self.first is None or at < self.first:
            self.first = at
        if self.last is None or at > self.last:
            self.last = at

    def result(self, source: str, outcome: str, parser: str | None = None, custodian: Custodian | None = None,
               code: str = "", reason: str = "") -> DryRun:
        readings = tuple(ReadingCount(layout, day_first, decided_by, zone, count)
                         for (layout, day_first, decided_by, zone), count in self.readings.most_common())
        return DryRun(source, outcome, parser, custodian.id if custodian else None,
                      custodian.timezone if custodian else "", custodian.locale if custodian else "", code, reason,
                      self.records, dict(self.events), self.undated, self.incomplete, self.deleted, self.edited,
                      self.first, self.last, readings)


def read_file(config: Config, path: Path, custodian_id: str | None = None,
              progress: ProgressCallback | None = None) -> DryRun:
    """What ``twentyday ingest [--custodian ID] PATH`` would read from ``path``; writes nothing.

    ``custodian_id`` must name a configured custodian (the CLI checks, as ingest does).
    ``progress`` is called as :func:`~twentyday.pipeline.process.process` calls it.
    """
    name = path.name
    custodian = config.custodian(custodian_id) if custodian_id else None
    counts = _Counts()
    try:
        source = registry.open_source(path, None, name)
    except ParseError as error:
        return _kept(counts, name, error, custodian)
    try:
        try:
            parser = registry.choose(source)
        except ParseError as error:  # detection reads the item too: a damaged entry fails here
            return _kept(counts, name, error, custodian)
        if parser is None:
            return counts.result(name, "quarantined", None, custodian, "unrecognised_format",
                                 "no parser recognised it")
        try:
            if custodian is None:
                custodian, records = route_by_content(config, source, parser)
                if custodian is None:
                    return counts.result(name, "unrouted", parser.NAME, None, "no_custodian_matches",
                                         "no configured custodian matches its senders or recipients")
            else:
                records = guarded_parse(parser, source, hints_for(custodian, name))
            for record in records:
                counts.add(record)
                if progress is not None and isinstance(record, ParsedMessage) and not counts.records % PROGRESS_EVERY:
                    progress(counts.records)
        except (HeldForReview, ParseError) as error:
            return _kept(counts, name, error, custodian, parser.NAME)
    finally:
        registry.close_source(source)
    event = truncation(parser.NAME, counts.records, counts.with_media, counts.conversation)
    if event is not None:
        counts.events[event.kind] += 1
    return counts.result(name, READABLE, parser.NAME, custodian)


def _kept(counts: _Counts, name: str, error: ParseError, custodian: Custodian | None,
          parser: str | None = None) -> DryRun:
    outcome = "held" if isinstance(error, HeldForReview) else "quarantined"
    return counts.result(name, outcome, parser, custodian, error.code, str(error))
