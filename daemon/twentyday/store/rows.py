"""What the archive commits to, in canonical form.

The column order of its rows (one list, so the writer and ``verify`` agree) and the
rows as typed values whose fields are those columns (a test pins them), the
content document sealed for each record and how records share a pack, and the
ledger payloads of captures and content packs that ``verify`` recomputes from
the index.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from typing import Any, NamedTuple

from twentyday.canonical import canonical_json, json_string
from twentyday.errors import IntegrityError
from twentyday.records import ParsedMessage, TimeReading
from twentyday.store.blobstore import BlobRef

#: Record columns in ledger and verify order; one list so writer and verifier agree.
RECORD_COLUMNS = (
    "id", "dedup_key", "custodian", "platform", "channel", "conversation", "sender", "recipients",
    "direction", "created_at", "created_utc", "time_reading", "captured_at", "deadline_at",
    "deadline_rule", "status", "days_late", "capture_id", "has_attachments", "incomplete", "edited",
    "flags", "message_ref", "reply_ref", "content_blob", "schedule", "retention",
)
CAPTURE_COLUMNS = (
    "id", "custodian", "channel", "source_name", "source_hash", "received_at", "parser", "size",
    "raw_blob", "envelope_blob", "state", "reason", "first_at", "last_at", "exported_at",
    "message_count", "parent_capture", "delivered_by", "origin_auth",
)
#: Capture columns added later: NULL in captures written before them, whose ledger payloads
#: do not name them (:func:`capture_payload` leaves them out then, so verify still agrees).
LATER_CAPTURE_COLUMNS = frozenset({"delivered_by", "origin_auth"})
EVENT_COLUMNS = ("id", "capture_id", "custodian", "conversation", "kind", "at", "detail_blob")
ATTACHMENT_COLUMNS = ("record_id", "n", "blob_id", "size", "content_type", "omitted")
TERM_COLUMNS = ("record_id", "terms")
#: A blob row's columns as a capture's ledger entry commits to them (see :func:`blobs_digest`).
BLOB_COLUMNS = ("id", "owner", "slot", "size", "chunks", "digest")
#: The slot of a capture's sealed detail: its own name and the full reason it was kept, when the
#: index holds a name twentyday made and a reason's code instead (docs/ARCHITECTURE.md, "Security model").
DETAIL_SLOT = "capture-detail"


#: Media types an attachment's row names in clear: the standard library's own table (never the
#: host's /etc/mime.types, so every host writes the same row). Any other is the sender's text.
_LISTED_TYPES = frozenset(mimetypes.MimeTypes().types_map[True].values())
_TOP_LEVEL_TYPES = frozenset({"application", "audio", "font", "image", "message", "model", "multipart", "text",
                              "video"})


def clear_content_type(content_type: str) -> str:
    """An attachment's media type as its index row keeps it: a listed type as it is, any other as its
    top-level type (``application/unlisted``), since a mail's Content-Type is whatever the sender
    wrote. The type as sent is sealed with the content (:func:`content_document`)."""
    if content_type in _LISTED_TYPES:
        return content_type
    top = content_type.split("/", 1)[0]
    return f"{top}/unlisted" if top in _TOP_LEVEL_TYPES else "unlisted"


# The rows are NamedTuples, not dataclasses: a tuple goes to SQLite and canonical_json as it
# is, and a record row is built for every archived message. Their fields are the column
# lists above, in order (tests/store/test_rows.py), so a row is written by name, never by position.

class RecordRow(NamedTuple):
    """A record's row in the index; its canonical JSON is what the ledger commits to."""

    id: str
    dedup_key: str
    custodian: str
    platform: str
    channel: str
    conversation: str
    sender: str
    recipients: str
    direction: str
    created_at: str | None
    created_utc: str | None
    time_reading: str | None
    captured_at: str
    deadline_at: str | None
    deadline_rule: str
    status: str
    days_late: int | None
    capture_id: str
    has_attachments: int
    incomplete: int
    edited: int
    flags: str
    message_ref: str
    reply_ref: str
    content_blob: str
    schedule: str
    retention: str


class CaptureRow(NamedTuple):
    id: str
    custodian: str | None
    channel: str
    source_name: str
    source_hash: str
    received_at: str
    parser: str
    size: int
    raw_blob: str
    envelope_blob: str | None
    state: str
    reason: str
    first_at: str | None
    last_at: str | None
    exported_at: str | None
    message_count: int
    parent_capture: str | None
    delivered_by: str | None = None
    origin_auth: str | None = None


class EventRow(NamedTuple):
    id: str
    capture_id: str
    custodian: str | None
    conversation: str
    kind: str
    at: str | None
    detail_blob: str


class AttachmentRow(NamedTuple):
    record_id: str
    n: int
    blob_id: str | None
    size: int
    content_type: str
    omitted: int


class RowEncoder:
    """The JSON columns of a capture's record rows, each value encoded once.

    A chat's participants and its time-reading shape repeat on every message, so their
    canonical JSON is cached (bounded: a capture's own values, not the archive's).
    """

    def __init__(self) -> None:
        self._recipients: dict[tuple[str, ...], str] = {}
        self._readings: dict[tuple[tuple[str, Any], ...], str] = {}

    def recipients_json(self, recipients: tuple[str, ...]) -> str:
        cached = self._recipients.get(recipients)
        if cached is None:
            if len(self._recipients) > 10_000:
                self._recipients.clear()
            cached = self._recipients[recipients] = canonical_json(list(recipients)).decode()
        return cached

    def reading_json(self, reading: TimeReading) -> str:
        """How a record's time was read, without the text it was read from: layout, day/month
        order, zone, what decided. The text (``raw``) is the sender's, so it is sealed with the
        content (:func:`content_document`); a capture's messages share a few shapes, encoded once."""
        fields = reading.__dict__
        shape = tuple((k, v) for k, v in fields.items() if k != "raw")
        encoded = self._readings.get(shape)
        if encoded is None:
            if len(self._readings) > 1000:
                self._readings.clear()
            encoded = self._readings[shape] = canonical_json(dict(shape)).decode("utf-8")
        return encoded


def blob_payload(ref: BlobRef | None) -> dict[str, object] | None:
    return ref.as_payload() if ref else None



def content_document(record_id: str, message: ParsedMessage) -> dict[str, Any]:
    """What is sealed for a record: everything a reader needs that the index must not hold."""
    return {
        "record_id": record_id,
        "subject": message.subject,
        "body": message.body,
        "attachments": [
            {"name": a.name, "content_type": a.content_type, "omitted": a.omitted,
             "size": len(a.data) if a.data is not None else 0}
            for a in message.attachments
        ],
        "message_key": message.message_key,
        "reply_to": message.reply_to,
        "extra": message.extra,
        # The original time's text as it appeared: the index keeps only how it was read.
        "time_raw": message.time.raw if message.time else "",
    }


def content_json(record_id: str, message: ParsedMessage) -> bytes:
    """canonical_json(content_document(record_id, message)), written out for a message without
    attachments or extra fields (most chat messages)."""
    if message.attachments or message.extra:
        return canonical_json(content_document(record_id, message))
    raw = message.time.raw if message.time else ""
    return (f'{{"attachments":[],"body":{json_string(message.body)},"extra":{{}},'
            f'"message_key":{json_string(message.message_key)},"record_id":{json_string(record_id)},'
            f'"reply_to":{json_string(message.reply_to)},"subject":{json_string(message.subject)},'
            f'"time_raw":{json_string(raw)}}}').encode()


def record_payload(row: dict[str, Any], content: BlobRef,
                   attachments: list[tuple[dict[str, Any], BlobRef | None]]) -> dict[str, Any]:
    """The ledger payload of one record in archives written before packs had one entry each."""
    return {
        "record_sha256": row_digest(row),
        "content": content.as_payload(),
        "attachments": attachment_payloads(attachments),
    }


PackMember = tuple[str, bytes, list[tuple[dict[str, Any], BlobRef | None]]]


def pack_payload(content: BlobRef, members: list[PackMember], terms: list[str] | None = None) -> str:
    """The ledger payload of a content pack, as canonical JSON text.

    ``members`` are (record id, the record's row as canonical JSON, its attachments), in
    the pack's order. The payload names the sealed pack and, per record, the SHA-256 of
    its row and its attachments; ``rows_sha256`` hashes the rows themselves joined by
    newlines, so verify can check a whole pack with one digest computed inside SQLite
    and only look at single records when that digest differs.

    ``terms``: each record's row of the blind-word index (``record_terms.terms``), in the
    pack's order. ``terms_sha256`` commits to all of them (joined by newlines); each record
    carries a short digest of its own (``terms``), which only names the record that differs.
    """
    records: list[dict[str, Any]] = [
        {"attachments": attachment_payloads(attachments) if attachments else [],
         "id": record_id, "row_sha256": hashlib.sha256(row).hexdigest()}
        for record_id, row, attachments in members]
    document: dict[str, Any] = {"content": content.as_payload(), "records": records,
                                "rows_sha256": hashlib.sha256(b"\n".join(row for _, row, _ in members)).hexdigest()}
    if terms is not None:
        for record, text in zip(records, terms, strict=True):
            record["terms"] = terms_digest(text)
        document["terms_sha256"] = hashlib.sha256("\n".join(terms).encode("utf-8")).hexdigest()
    return canonical_json(document).decode("utf-8")


def terms_digest(text: str) -> str:
    """A record's short digest of its blind-word row: names the record; the pack's digest is the proof."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def blobs_digest(refs: list[BlobRef]) -> str:
    """SHA-256 of the blob rows a capture sealed (:data:`BLOB_COLUMNS`), one JSON list a line, by id.

    verify recomputes it inside SQLite (``json_array`` over the same columns), so a blob moved
    to another capture, owner or slot — which no longer opens — is named, not only a changed byte.
    """
    lines = sorted(canonical_json([ref.id, ref.owner, ref.slot, ref.size, ref.chunks, ref.digest]) for ref in refs)
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def attachment_payloads(attachments: list[tuple[dict[str, Any], BlobRef | None]]) -> list[dict[str, Any]]:
    return [{"row": {c: a[c] for c in ATTACHMENT_COLUMNS}, "blob": blob_payload(r)} for a, r in attachments]


def pack_slot(number: int, record_ids: list[str]) -> str:
    """The slot of a capture's ``number``-th content pack: bound to the ordered ids of its records."""
    return f"pack:{number}:" + hashlib.sha256("\n".join(record_ids).encode("utf-8")).hexdigest()


def unpack_content(plaintext: bytes, ref: BlobRef, record_id: str) -> dict[str, Any]:
    """One record's content document from its opened content blob (a pack, or an older single document).

    The blob's slot was bound into its associated data; a pack's slot names the ordered
    ids of the records it holds, so the documents found must be exactly those.
    """
    documents = [json.loads(line) for line in plaintext.split(b"\n")]
    if ref.slot.startswith("pack:"):
        number = ref.slot.split(":")[1]
        if not number.isdigit() or pack_slot(int(number), [d.get("record_id") for d in documents]) != ref.slot:
            raise IntegrityError(f"blob {ref.id}: the pack does not hold the records its slot names")
    for document in documents:
        if document.get("record_id") == record_id:
            return dict(document)
    raise IntegrityError(f"blob {ref.id} does not hold the content of {record_id}")


def row_digest(row: dict[str, Any]) -> str:
    """SHA-256 of the record row as a JSON list in RECORD_COLUMNS order.

    verify recomputes it inside SQLite as sha256(json_array(...)) over the same columns:
    SQLite's json_array renders strings, integers and nulls exactly as canonical_json does.
    The ledger keeps the digest, not a second copy of every row.
    """
    return hashlib.sha256(canonical_json([row[c] for c in RECORD_COLUMNS])).hexdigest()


def capture_payload(row: dict[str, Any], keyslots: list[tuple[str, bytes]], raw_ref: BlobRef,
                    envelope_ref: BlobRef | None, blobs_sha256: str | None = None) -> dict[str, Any]:
    """``blobs_sha256``: :func:`blobs_digest` of the blobs the capture sealed (absent in older archives)."""
    payload: dict[str, Any] = {
        "capture": {c: row[c] for c in CAPTURE_COLUMNS if row[c] is not None or c not in LATER_CAPTURE_COLUMNS},
        "keyslots": sorted([fp, hashlib.sha256(sealed).hexdigest()] for fp, sealed in keyslots),
        "raw": raw_ref.as_payload(),
        "envelope": blob_payload(envelope_ref),
    }
    if blobs_sha256 is not None:
        payload["blobs_sha256"] = blobs_sha256
    return payload


def escrow_payload(recipient: str, label: str, sealed: bytes, at: str) -> dict[str, Any]:
    """The ledger payload of an ``escrow`` row: who holds a sealed copy of the daemon's secrets, since when."""
    return {"escrow": {"recipient": recipient, "label": label, "at": at,
                       "sealed_sha256": hashlib.sha256(sealed).hexdigest()}}
