"""From an item to sealed records: detect → parse → route → draft → store.

One function, :func:`process`, serves every source: the watched folder and
SMTP (through the spool worker) and ``twentyday ingest`` (directly). Whatever
happens, the item is kept: an unreadable item is sealed in quarantine with its
reason and an ``ingest_failed`` alert, an item no custodian claims is sealed
with ``unknown_custodian``, an export whose dates cannot be read without a
human decision is sealed as ``held`` with an alert. Only a failure of the
archive itself (disk full, index locked) propagates, so the caller keeps the
item and tries again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from twentyday.config import Config, Custodian, normalise_identity
from twentyday.errors import HeldForReview, NotFoundError, ParseError
from twentyday.parsers import registry
from twentyday.parsers.base import (
    DEFAULT_LIMITS,
    ZIP_MAGIC,
    ExportSource,
    FileSource,
    Limits,
    ParserModule,
    ZipSource,
)
from twentyday.parsers.mail import email as email_parser
from twentyday.pipeline.origin import Origin, origin_of, unchecked_origin
from twentyday.pipeline.progress import EVERY as PROGRESS_EVERY
from twentyday.pipeline.progress import ProgressCallback
from twentyday.records import Direction, ParsedEvent, ParsedMessage, ParseHints, Record, nul_replaced
from twentyday.spool import SealedFile
from twentyday.store import alerts, db
from twentyday.store.archive import Archive
from twentyday.store.words import search_words
from twentyday.store.writer import CaptureInput, IngestResult, RawBytes, RecordDraft

log = logging.getLogger(__name__)

#: WhatsApp keeps about the newest 40,000 messages (10,000 with media) in an export.
WHATSAPP_LIMIT = 39_000
WHATSAPP_MEDIA_LIMIT = 9_500
EVENT_ALERTS = {
    "deleted_message": "deleted_message",
    "disappearing_messages": "disappearing_messages",
    "incomplete_copy": "incomplete_copy",
    "truncated_export": "coverage_gap",
}


#: A capture's name in the index for an item whose own name is sealed, by channel.
UNNAMED = {"folder": "file from the watched folder", "cli": "file given to twentyday ingest"}


@dataclass(frozen=True)
class Item:
    """One thing to ingest: a file on disk or bytes in memory, and how it came."""

    name: str
    channel: str  # smtp | folder | cli
    received_at: datetime
    path: Path | None = None
    data: bytes | None = None
    custodian_id: str | None = None  # from --custodian, the inbox folder or the SMTP plus-address
    envelope: dict[str, str] | None = None
    parent_capture: str | None = None
    #: The capture's name in the index, when ``name`` is content: a mailed attachment's file
    #: name is sealed with its mail, and is only given to the parsers (a WhatsApp chat's name).
    label: str | None = None
    #: Who delivered it and what vouches for the mail (:mod:`origin`); set by :func:`with_origin`.
    origin: Origin | None = None
    #: A file taken into the spool: the daemon's sealed copy, read as often as needed (detection,
    #: parsing, hashing, sealing), never the employee's file (docs/ARCHITECTURE.md, "Security model").
    sealed: SealedFile | None = None

    @property
    def shown(self) -> str:
        """The name the caller knows the item by, for its report (``ingest`` prints the file's name)."""
        return self.label or self.name

    @property
    def indexed(self) -> str:
        """The capture's name in the index and the ledger: one twentyday made, never the item's own.

        A file's name is the employee's (and may name the chat, the person, the matter): it is
        sealed with the capture (:func:`_sealed_detail`). SMTP items are named by the SMTP intake.
        """
        if self.label:
            return self.label
        if self.channel == "smtp":
            return self.name
        return UNNAMED.get(self.channel, "item")


@dataclass(frozen=True)
class Outcome:
    """What happened to one item, for the CLI's per-file report."""

    source: str
    state: str  # ingested | duplicate | quarantined | held | unrouted
    capture_id: str
    detail: str
    result: IngestResult | None = None


@dataclass
class _Tally:
    """Counts gathered while the store consumes the parse, for the alerts."""

    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    messages: int = 0
    with_media: int = 0
    conversation: str = ""


def route_message(config: Config, message: ParsedMessage) -> Custodian | None:
    """The custodian a message belongs to, from its sender or recipients."""
    # A forward's original may not involve the custodian at all: the forwarder is theirs.
    parties = [message.sender, *message.recipients, message.extra.get("forwarded_by_address", "")]
    for custodian in config.custodians:
        own = custodian.own_identities
        if any(normalise_identity(p) in own for p in parties if p):
            return custodian
    return None


def draft(custodian: Custodian, message: ParsedMessage, words: frozenset[str] | None = None,
          flags: tuple[str, ...] = ()) -> RecordDraft:
    """``flags``: facts about how the item came (:attr:`Origin.flags`), added to the message's own."""
    if flags:
        message = dataclasses.replace(message, flags=(*message.flags, *flags))
    own = custodian.own_identities
    direction: Direction = "sent" if normalise_identity(message.sender) in own else "received"
    copied = any(normalise_identity(r) in custodian.official_identities for r in message.recipients)
    if message.message_key:
        identity: tuple[str, ...] = (custodian.id, message.platform, "key", message.message_key)
    else:
        created = message.created_at.isoformat() if message.created_at else (message.time.raw if message.time else "")
        body_hash = hashlib.sha256(message.body.encode("utf-8", "surrogatepass")).hexdigest()
        identity = (custodian.id, message.platform, message.conversation, message.sender, created, body_hash)
    return RecordDraft(message=message, direction=direction, copied=copied, identity=identity, words=words)


def hints_for(custodian: Custodian, source_name: str) -> ParseHints:
    return ParseHints(custodian.zone, custodian.timezone, custodian.day_first, custodian.own_identities,
                      source_name)


@dataclass(frozen=True)
class _Keep:
    """Keep the item sealed with no records, for this reason, raising this alert.

    ``code`` is the reason in clear (the capture row, its ledger entry, the alert, the log): a
    stable name such as ``zip_entry_unreadable``, never text from the item. ``detail`` is the
    reason for a person, which may quote the item (a member's name, a line): sealed with it.
    """

    custodian_id: str | None
    state: str  # quarantined | held | unrouted
    code: str
    detail: str
    alert: str


@dataclass(frozen=True)
class _Parse:
    """Store what this parser reads from the item, for this custodian.

    ``records`` is the parser's lazy stream when the item is stored as it is parsed
    (:func:`process`), or the whole parse when it was read ahead (:func:`prepare`).
    """

    custodian_id: str
    parser: str
    records: Iterable[Record]
    #: Read ahead: each record's search words (None for an event), so the store only blinds them.
    words: tuple[frozenset[str] | None, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """An item read ahead of the store, in another process: what :func:`store` needs of it.

    Only the item and what the config decides about it: no secrets were needed to make
    it, and nothing in it was written anywhere.
    """

    item: Item
    plan: _Keep | _Parse


ALREADY_ARCHIVED = "already archived (same bytes)"
#: Items at most this large are read ahead whole (a mail); larger ones are parsed as stored.
PREPARE_MAX_BYTES = 4 * 1024 * 1024


def with_origin(config: Config, item: Item) -> Item:
    """The item with its origin facts: who delivered it, and the mail's DKIM/ARC results.

    Checked before parsing, from the bytes as they arrived; may wait on DNS (bounded, see
    :mod:`origin`), so it runs here in the pipeline, never in the SMTP session.
    """
    if item.origin is not None:
        return item
    raw = b""
    if item.channel == "smtp":
        if item.data is not None:
            raw = item.data
        elif item.sealed is not None:  # a large message, sealed into the spool as it arrived
            raw = item.sealed.read_all()  # DKIM hashes the message whole (dkimpy takes bytes)
        elif item.path is not None:
            raw = item.path.read_bytes()
    return dataclasses.replace(item, origin=origin_of(config, item.channel, item.envelope, raw))


def process(archive: Archive, item: Item, progress: ProgressCallback | None = None) -> Outcome:
    """Ingest one item. Never raises for bad content: it quarantines, holds or keeps unrouted.

    ``progress``, if given, is called with the count of messages read so far, every
    :data:`~twentyday.pipeline.progress.EVERY` messages (``ingest`` on a terminal)."""
    config = archive.config
    item = with_origin(config, item)
    custodian = config.custodian(item.custodian_id) if item.custodian_id else None
    if item.custodian_id and custodian is None:
        return _store_plan(archive, item, _unknown_custodian(item))
    try:
        source, close = _open_source(item)
    except ParseError as error:
        return _store_plan(archive, item, _kept_after(error, item.custodian_id))
    try:
        return _store_plan(archive, item, _plan(config, item, custodian, source), progress=progress)
    finally:
        close()


def _open_source(item: Item) -> tuple[ExportSource, Callable[[], None]]:
    """The item as an export, and how to close it when done."""
    if item.sealed is None:
        source = registry.open_source(item.path, item.data, item.name)
        return source, lambda: registry.close_source(source)
    handle = item.sealed.open()
    try:
        magic = handle.read(4)
        if not magic:
            raise ParseError(f"{item.name}: empty file (0 bytes)", code="empty")
        if magic != ZIP_MAGIC:
            handle.close()
            return _SealedFileSource(item.sealed, item.name), lambda: None
        handle.seek(0)
        zipped = ZipSource(handle, item.name)
    except BaseException:
        handle.close()
        raise

    def close() -> None:
        registry.close_source(zipped)
        handle.close()

    return zipped, close


class _SealedFileSource(FileSource):
    """A single-file export taken into the spool: read through its key, never from its path."""

    def __init__(self, sealed: SealedFile, name: str, limits: Limits = DEFAULT_LIMITS) -> None:
        super().__init__(sealed.path, name, limits)
        self._sealed = sealed

    def open(self, member: str) -> BinaryIO:
        if member != self.name:
            raise ParseError(f"{self.name}: no member {member!r}", code="no_member")
        return self._sealed.open()

    def size(self, member: str) -> int:
        return self._sealed.size


def prepare(config: Config, item: Item) -> Prepared | None:
    """Detect, route and parse an item in memory, for :func:`store` to store later (elsewhere).

    The same decisions as :func:`process`, with the parse done now: meant for a helper
    process that reads mail ahead of the store. None when the item is not one to read
    ahead (a file, or larger than PREPARE_MAX_BYTES): store it with :func:`process`.
    """
    if item.data is None or len(item.data) > PREPARE_MAX_BYTES:
        return None
    item = with_origin(config, item)
    custodian = config.custodian(item.custodian_id) if item.custodian_id else None
    if item.custodian_id and custodian is None:
        return Prepared(item, _unknown_custodian(item))
    try:
        source = registry.open_source(None, item.data, item.name)
    except ParseError as error:
        return Prepared(item, _kept_after(error, item.custodian_id))
    try:
        plan = _plan(config, item, custodian, source)
        if isinstance(plan, _Parse):
            try:
                records = tuple(plan.records)
                words = tuple(search_words(r) if isinstance(r, ParsedMessage) else None for r in records)
                plan = _Parse(plan.custodian_id, plan.parser, records, words)
            except (HeldForReview, ParseError) as error:
                plan = _kept_after(error, plan.custodian_id)
        return Prepared(item, plan)
    finally:
        registry.close_source(source)


def store(archive: Archive, prepared: Prepared, *, savepoint: bool = True) -> Outcome:
    """Store an item :func:`prepare` read: the outcome :func:`process` would have had.

    Its records are parsed already, so inside a batch its capture may be written
    without a savepoint (``savepoint=False``, see :meth:`Archive.ingest`); mailed chat
    exports it carries are parsed while stored, so they keep theirs.
    """
    return _store_plan(archive, prepared.item, prepared.plan, savepoint)


def _unknown_custodian(item: Item) -> _Keep:
    return _unknown(item.custodian_id)


def _unknown(custodian_id: str | None) -> _Keep:
    # The id came with the item (an inbox folder's name, a plus-address): sealed, not in clear.
    return _Keep(None, "unrouted", "unknown_custodian", f"no custodian {custodian_id!r} is configured",
                 "unknown_custodian")


def _kept_after(error: HeldForReview | ParseError, custodian_id: str | None) -> _Keep:
    if isinstance(error, HeldForReview):
        return _Keep(custodian_id, "held", error.code, f"held for review: {error}", "ingest_failed")
    return _Keep(custodian_id, "quarantined", error.code, str(error), "ingest_failed")


def _plan(config: Config, item: Item, custodian: Custodian | None, source: ExportSource) -> _Keep | _Parse:
    """Which parser reads the item and for whom, or why it is kept without records."""
    custodian_id = custodian.id if custodian else None
    try:
        parser = registry.choose(source, email_parser if item.channel == "smtp" else None)
    except ParseError as error:  # detection reads the item too: a damaged entry fails here
        return _kept_after(error, custodian_id)
    if parser is None:
        return _Keep(custodian_id, "quarantined", "unrecognised_format",
                     "not a format twentyday reads (no parser recognised it)", "ingest_failed")
    try:
        if custodian is None:
            custodian, records = route_by_content(config, source, parser)
            if custodian is None:
                return _Keep(None, "unrouted", "no_custodian_matches",
                             "no configured custodian matches its senders or recipients", "unknown_custodian")
        else:
            records = guarded_parse(parser, source, hints_for(custodian, item.name))
    except (HeldForReview, ParseError) as error:
        return _kept_after(error, custodian_id)
    return _Parse(custodian.id, parser.NAME, records)


def _store_plan(archive: Archive, item: Item, plan: _Keep | _Parse, savepoint: bool = True,
                progress: ProgressCallback | None = None) -> Outcome:
    if isinstance(plan, _Keep):
        return _keep(archive, item, plan, savepoint)
    owner = archive.config.custodian(plan.custodian_id)
    if owner is None:  # the config changed between prepare and store
        return _keep(archive, item, _unknown(plan.custodian_id), savepoint)
    tally = _Tally()
    events: list[ParsedEvent] = []

    def raise_alerts(conn: db.Connection, result: IngestResult) -> None:
        _raise_alerts(conn, owner, result, tally, item.received_at)

    try:
        flags = item.origin.flags if item.origin is not None else ()
        thread = _thread_names(archive) if plan.parser in MAIL_PARSERS else None
        drafts = _drafts(owner, plan.records, events, tally, plan.parser, plan.words, flags, thread, progress)
        result = archive.ingest(_capture(item, owner.id, plan.parser), drafts, events, before_commit=raise_alerts,
                                savepoint=savepoint)
    except (HeldForReview, ParseError) as error:
        return _keep(archive, item, _kept_after(error, owner.id))
    children = _attached_exports(archive, item, owner, result.capture_id) if plan.parser == "email" else []
    if result.duplicate:
        return Outcome(item.shown, "duplicate", result.capture_id, ALREADY_ARCHIVED, result)
    detail = f"{plan.parser}: {result.new_count} new record(s), {result.linked_count} already archived"
    if result.events:
        detail += f", {result.events} event(s)"
    if children:
        detail += "; attached exports: " + ", ".join(f"{c.source} {c.state} ({c.capture_id})" for c in children)
    return Outcome(item.shown, "ingested", result.capture_id, detail, result)


def _attached_exports(archive: Archive, item: Item, custodian: Custodian, capture_id: str) -> list[Outcome]:
    """Chat exports mailed as attachments: each becomes a capture of its own, linked to the mail.

    Run even when the mail itself was a duplicate: a crash after the mail's commit
    replays the item, and the exports are then ingested (once) on the replay.
    """
    if item.data is not None:
        raw = item.data
    elif item.sealed is not None:
        raw = item.sealed.read_all()
    else:
        raw = item.path.read_bytes() if item.path is not None else b""
    try:
        exports = email_parser.chat_export_attachments(raw)
    except ParseError:
        return []  # the mail was readable enough to archive; its attachments are sealed with it
    return [process(archive, Item(name=name, channel=item.channel, received_at=item.received_at, data=data,
                                  custodian_id=custodian.id, parent_capture=capture_id,
                                  label=f"attachment {number} of {capture_id}", origin=item.origin))
            for number, (name, data) in enumerate(exports, start=1)]


def guarded_parse(parser: ParserModule, source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """A parser bug must not lose the item: its exceptions become a ParseError (quarantine).

    ``parse`` is called in here, not by the caller, because parsers check their input
    eagerly: a bug there must be caught too. Every record leaves here with U+0000 in its names
    and keys replaced (:func:`~twentyday.records.nul_replaced`): every path to the store passes
    here, so both databases are given the same text, and the sealed raw capture keeps the original.
    """
    try:
        for record in parser.parse(source, hints):
            yield nul_replaced(record)
    except ParseError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            UnicodeError, LookupError, OverflowError, AssertionError) as error:
        raise ParseError(f"{parser.NAME} parser failed: {type(error).__name__}", code="parser_failed") from None


def route_by_content(config: Config, source: ExportSource, parser: ParserModule
                      ) -> tuple[Custodian | None, Iterator[Record]]:
    """Mail carries its own addresses: route by the first message's sender or recipients."""
    # Only addresses are read from the probe; times are read again in the custodian's zone.
    probe = ParseHints(timezone=ZoneInfo("UTC"), zone_name="UTC", source_name=source.name)
    first = None
    for record in guarded_parse(parser, source, probe):
        if isinstance(record, ParsedMessage):
            first = record
            break
    custodian = route_message(config, first) if first is not None else None
    if custodian is None:
        return None, iter(())
    return custodian, guarded_parse(parser, source, hints_for(custodian, source.name))


def _drafts(custodian: Custodian, records: Iterable[Record], events: list[ParsedEvent],
            tally: _Tally, parser: str, words: tuple[frozenset[str] | None, ...] = (),
            flags: tuple[str, ...] = (), thread: Callable[[str], str] | None = None,
            progress: ProgressCallback | None = None) -> Iterator[RecordDraft]:
    """Messages become drafts; events are set aside for the store (it takes them after).

    ``words``, when the records were read ahead, holds each record's search words;
    ``flags``, the origin's facts every record of the item carries; ``thread``, the name a
    mail thread is kept under in clear (:func:`_thread_names`), given after the draft's
    identity is made, so a record's dedup key is what it always was.
    """
    for number, record in enumerate(records):
        if isinstance(record, ParsedEvent):
            if thread is not None:
                record = dataclasses.replace(record, conversation=thread(record.conversation))
            events.append(record)
            tally.events[(record.kind, record.conversation)] += 1
            continue
        made = draft(custodian, record, words[number] if words else None, flags)
        if thread is not None:
            record = dataclasses.replace(made.message, conversation=thread(record.conversation))
            made = dataclasses.replace(made, message=record)
        tally.messages += 1
        if progress is not None and not tally.messages % PROGRESS_EVERY:
            progress(tally.messages)
        tally.conversation = tally.conversation or record.conversation
        if record.attachments:
            tally.with_media += 1
        yield made
    event = truncation(parser, tally.messages, tally.with_media, tally.conversation)
    if event is not None:
        events.append(event)
        tally.events[(event.kind, event.conversation)] += 1


def truncation(parser: str, messages: int, with_media: int, conversation: str) -> ParsedEvent | None:
    """The ``truncated_export`` event an export this long gets (WhatsApp cuts older history), or None."""
    limit = WHATSAPP_MEDIA_LIMIT if with_media else WHATSAPP_LIMIT
    if parser == "whatsapp" and messages >= limit:
        return ParsedEvent("truncated_export", conversation, None,
                           f"{messages} messages: WhatsApp may have cut older history from this export")
    return None


#: Parsers whose conversation is a mail thread, named by its first Message-ID (:func:`_thread_names`).
MAIL_PARSERS = frozenset({"email", "mbox"})
NO_THREAD = "(no thread)"


def _thread_names(archive: Archive) -> Callable[[str], str]:
    """A mail thread's name in clear: a keyed hash of the Message-ID that names it.

    A Message-ID is the sender's text (it can carry a name, a matter, a canary) and an mbox's
    events are named by its file: neither is kept in clear. The hash still groups a thread's
    records as the rule needs, and is the ``message_ref`` of the thread's first message.
    """
    message_ref = archive.hashes.message_ref

    def name(conversation: str) -> str:
        return conversation if conversation in ("", NO_THREAD) else "thread:" + message_ref("email", conversation)

    return name


def _raise_alerts(conn: db.Connection, custodian: Custodian, result: IngestResult, tally: _Tally,
                  now: datetime) -> None:
    for (kind, conversation), count in sorted(tally.events.items()):
        alert_kind = EVENT_ALERTS.get(kind)
        if alert_kind:
            alerts.raise_alert(conn, alert_kind, custodian.id, conversation,
                               f"{count} {kind.replace('_', ' ')} event(s) in {result.capture_id}", now)
    if result.undated:
        alerts.raise_alert(conn, "undated_record", custodian.id, tally.conversation,
                           f"{result.undated} record(s) without an original time in {result.capture_id}", now)
    if result.late:
        alerts.raise_alert(conn, "late_capture", custodian.id, tally.conversation,
                           f"{result.late} record(s) captured after the deadline in {result.capture_id}", now)


def refuse(archive: Archive, item: Item, reason: str, detail: str = "") -> Outcome:
    """A source refused the item (a symlink, FIFO or device in the inbox): keep what it knows.

    ``reason`` is kept in clear, so the source makes it of codes and counts only (the watcher:
    ``not_regular_file: 3 entries skipped: 2 symbolic links, 1 FIFO``); ``detail``, sealed,
    may name what was refused (the watcher puts that in the item's own bytes instead).
    """
    if item.origin is None:  # its bytes are not looked at: they may be what broke the pipeline
        item = dataclasses.replace(item, origin=unchecked_origin(item.channel, item.envelope))
    custodian = archive.config.custodian(item.custodian_id or "")
    return _keep(archive, item, _Keep(custodian.id if custodian else None, "quarantined", reason, detail,
                                      "ingest_failed"))


def _capture(item: Item, custodian_id: str | None, parser: str, state: str = "ingested",
             reason: str = "", detail: str = "") -> CaptureInput:
    raw: RawBytes
    if item.sealed is not None:
        raw = item.sealed
    elif item.path is not None:
        raw = item.path
    elif item.data is not None:
        raw = item.data
    else:
        raise NotFoundError(f"{item.name}: item has no content")
    origin = item.origin
    return CaptureInput(custodian_id, item.channel, item.indexed, raw, parser, item.received_at,
                        envelope=item.envelope, state=state, reason=reason, parent_capture=item.parent_capture,
                        delivered_by=origin.delivered_by if origin else None,
                        origin_auth=origin.auth if origin else None, detail=_sealed_detail(item, detail))


def _sealed_detail(item: Item, reason: str) -> dict[str, str] | None:
    """What the index must not hold of the item: its own name, the full reason it was kept.

    Sealed with the capture (:attr:`CaptureInput.detail`), for an officer's ``show``."""
    detail = {}
    if item.name != item.indexed:
        detail["name"] = item.name
    if reason:
        detail["reason"] = reason
    return detail or None


def _keep(archive: Archive, item: Item, kept: _Keep, savepoint: bool = True) -> Outcome:
    """Seal the raw item with no records, and raise the alert that says why.

    The reason's code is what the index, the ledger, the alert, the log and the outcome say;
    its text is sealed with the capture (:func:`_sealed_detail`)."""
    custodian_id, code = kept.custodian_id, kept.code

    def raise_alert(conn: db.Connection, result: IngestResult) -> None:
        alerts.raise_alert(conn, kept.alert, custodian_id or "", "", f"{result.capture_id}: {code}",
                           item.received_at)

    result = archive.ingest(_capture(item, custodian_id, "none", kept.state, code, kept.detail),
                            before_commit=raise_alert, savepoint=savepoint)
    if result.duplicate:  # said when it was first kept; how far a parse got this time is no news
        return Outcome(item.shown, "duplicate", result.capture_id, ALREADY_ARCHIVED, result)
    log.warning("%s %s: %s", kept.state, result.capture_id, code)
    return Outcome(item.shown, kept.state, result.capture_id, code, result)
