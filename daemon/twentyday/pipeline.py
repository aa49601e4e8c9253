"""From an item to sealed records: detect → parse → route → draft → store.

This first pipeline knows one format, a single e-mail message (``.eml``);
the chat and mail intake grow it. Whatever happens, the item is kept: a
parse failure is sealed in quarantine with its reason and an ``ingest_failed``
alert, an item no custodian claims is sealed with ``unknown_custodian``.
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import alerts
from .config import Config, Custodian, normalise_identity
from .errors import NotFoundError, ParseError
from .parsers import mailfile
from .records import Direction, ParsedMessage
from .store import Archive, CaptureInput, IngestResult, RecordDraft

log = logging.getLogger(__name__)
MAX_ITEM_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Outcome:
    """What happened to one item, for the CLI's per-file report."""

    source: str
    state: str  # ingested | duplicate | quarantined | unrouted
    capture_id: str
    detail: str
    result: IngestResult | None = None


def route_message(config: Config, message: ParsedMessage) -> Custodian | None:
    """The custodian a message belongs to, from its sender or recipients."""
    parties = [message.sender, *message.recipients]
    for custodian in config.custodians:
        own = custodian.own_identities()
        if any(normalise_identity(p) in own for p in parties if p):
            return custodian
    return None


def draft(custodian: Custodian, message: ParsedMessage) -> RecordDraft:
    own = custodian.own_identities()
    direction: Direction = "sent" if normalise_identity(message.sender) in own else "received"
    copied = any(normalise_identity(r) in custodian.official for r in message.recipients)
    if message.message_key:
        identity: tuple[str, ...] = (custodian.id, message.platform, "key", message.message_key)
    else:
        created = message.created_at.isoformat() if message.created_at else (message.time.raw if message.time else "")
        body_hash = hashlib.sha256(message.body.encode("utf-8", "surrogatepass")).hexdigest()
        identity = (custodian.id, message.platform, message.conversation, message.sender, created, body_hash)
    return RecordDraft(message=message, direction=direction, copied=copied, identity=identity)


def drafts(custodian: Custodian, messages: Iterable[ParsedMessage]) -> Iterator[RecordDraft]:
    for message in messages:
        yield draft(custodian, message)


def ingest_file(archive: Archive, path: Path, *, custodian_id: str | None, channel: str,
                now: datetime) -> Outcome:
    """Ingest one file through the pipeline. Never raises for bad content: it quarantines."""
    config = archive.config
    if custodian_id is not None and config.custodian(custodian_id) is None:
        raise NotFoundError(f"no custodian {custodian_id!r} in {config.path}")
    if not path.is_file():
        raise NotFoundError(f"{path}: not a regular file")
    if path.stat().st_size > MAX_ITEM_BYTES:
        return _quarantine(archive, path, custodian_id, channel, now,
                           f"larger than {MAX_ITEM_BYTES} bytes for the e-mail reader")
    raw = path.read_bytes()
    try:
        message = mailfile.read_message(raw)
    except ParseError as error:
        return _quarantine(archive, path, custodian_id, channel, now, str(error))
    custodian = config.custodian(custodian_id) if custodian_id else route_message(config, message)
    if custodian is None:
        capture = CaptureInput(None, channel, path.name, raw, "email", now, state="unrouted",
                               reason="no configured custodian matches the sender or recipients")

        def unrouted(conn: sqlite3.Connection, result: IngestResult) -> None:
            alerts.raise_alert(conn, "unknown_custodian", "", "", f"capture {result.capture_id} ({channel})", now)

        result = archive.ingest(capture, before_commit=unrouted)
        return Outcome(path.name, "duplicate" if result.duplicate else "unrouted", result.capture_id,
                       "kept sealed: no custodian matches; see 'twentyday alerts'", result)
    capture = CaptureInput(custodian.id, channel, path.name, raw, "email", now)

    def raise_alerts(conn: sqlite3.Connection, result: IngestResult) -> None:
        _alerts_for(conn, custodian, message, result, now)

    result = archive.ingest(capture, [draft(custodian, message)], before_commit=raise_alerts)
    if result.duplicate:
        return Outcome(path.name, "duplicate", result.capture_id, "already archived (same bytes)", result)
    detail = f"{result.new_count} new record(s), {result.linked_count} already archived"
    return Outcome(path.name, "ingested", result.capture_id, detail, result)


def _alerts_for(conn: sqlite3.Connection, custodian: Custodian, message: ParsedMessage, result: IngestResult,
                now: datetime) -> None:
    if result.undated:
        alerts.raise_alert(conn, "undated_record", custodian.id, message.conversation,
                           f"{result.undated} record(s) without an original time in {result.capture_id}", now)
    if result.late:
        alerts.raise_alert(conn, "late_capture", custodian.id, message.conversation,
                           f"{result.late} record(s) captured after the deadline in {result.capture_id}", now)


def _quarantine(archive: Archive, path: Path, custodian_id: str | None, channel: str, now: datetime,
                reason: str) -> Outcome:
    capture = CaptureInput(custodian_id, channel, path.name, path, "email", now, state="quarantined",
                           reason=reason)

    def failed(conn: sqlite3.Connection, result: IngestResult) -> None:
        alerts.raise_alert(conn, "ingest_failed", custodian_id or "", "", f"{result.capture_id}: {reason}", now)

    result = archive.ingest(capture, before_commit=failed)
    log.warning("quarantined %s: %s", result.capture_id, reason)
    return Outcome(path.name, "quarantined", result.capture_id, reason, result)
