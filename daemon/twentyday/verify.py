"""``verify``: prove that blobs, index and ledger agree, and name every difference.

Checks, none of which needs an officer key:

1. the ledger chain: consecutive sequence numbers, each entry's hash over its
   predecessor and its own payload (streamed: memory does not grow with the archive);
2. checkpoints: each signature valid under the archive's ledger key, each head
   equal to the chain at that point, and the last checkpoint at the chain's end;
3. index ↔ ledger: every capture, record, link, event, disclosure and hold row
   equals the payload of its ledger entry (canonical JSON), and every entry has
   its row;
4. blobs: every sealed chunk hashes to the digest the ledger recorded; no blob
   or chunk exists that no entry accounts for.

The per-record comparisons run inside SQLite (the SHA-256 of ``json_array``
over the row's columns against the digest in the ledger entry), so verify keeps pace with a plain
SHA-256 pass over the same files; only differences come back to Python,
which then names the fields that changed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from .blobstore import BlobRef
from .canonical import canonical_json
from .ledger import GENESIS, entry_hash, signature_ok
from .store import (
    ATTACHMENT_COLUMNS,
    CAPTURE_COLUMNS,
    EVENT_COLUMNS,
    RECORD_COLUMNS,
    blob_payload,
    capture_payload,
    record_payload,
)


@dataclass(frozen=True)
class Problem:
    kind: str  # altered | missing | unaccounted | chain | signature
    object: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.object}: {self.detail}"


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    ledger_entries: int = 0
    records: int = 0
    captures: int = 0
    blobs: int = 0
    sealed_bytes: int = 0
    head: str = GENESIS

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ledger_entries": self.ledger_entries,
            "captures": self.captures,
            "records": self.records,
            "blobs": self.blobs,
            "sealed_bytes": self.sealed_bytes,
            "head": self.head,
            "problems": [p.__dict__ for p in self.problems],
        }


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> Iterator[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    for values in cursor:
        yield dict(zip(names, values, strict=True))


def verify(conn: sqlite3.Connection, verify_key: ed25519.Ed25519PublicKey) -> VerifyReport:
    report = VerifyReport()
    conn.create_function("sha256", 1, _sha256_text, deterministic=True)
    try:
        _check_chain(conn, verify_key, report)
        _check_captures(conn, report)
        _check_records(conn, report)
        _check_small_tables(conn, report)
        _check_orphan_entries(conn, report)
        _check_blobs(conn, report)
    except sqlite3.DatabaseError as error:
        report.problems.append(Problem("altered", "index.db", f"database is damaged: {error}"))
    return report


def _sha256_text(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_chain(conn: sqlite3.Connection, verify_key: ed25519.Ed25519PublicKey, report: VerifyReport) -> None:
    checkpoints = {row["seq"]: row for row in _rows(conn, "SELECT * FROM checkpoint")}
    prev, expected_seq, last_checkpoint = GENESIS, 1, 0
    for seq, at, kind, subject, payload, stored_prev, stored_hash in conn.execute(
        "SELECT seq, at, kind, subject, payload, prev, hash FROM ledger ORDER BY seq"
    ):
        if seq != expected_seq:
            report.problems.append(Problem("chain", f"ledger entry {expected_seq}", f"missing (next is {seq})"))
        if stored_prev != prev or entry_hash(stored_prev, seq, at, kind, subject, payload) != stored_hash:
            report.problems.append(Problem("altered", f"ledger entry {seq}", f"{kind} {subject}: hash chain broken"))
        checkpoint = checkpoints.pop(seq, None)
        if checkpoint is not None:
            if checkpoint["head"] != stored_hash:
                report.problems.append(Problem("altered", f"checkpoint {seq}", "head differs from the ledger"))
            if not signature_ok(verify_key, seq, checkpoint["head"], checkpoint["at"], checkpoint["signature"]):
                report.problems.append(Problem("signature", f"checkpoint {seq}", "signature does not verify"))
            last_checkpoint = seq
        prev, expected_seq = stored_hash, seq + 1
        report.ledger_entries += 1
    report.head = prev
    for seq in checkpoints:
        report.problems.append(Problem("unaccounted", f"checkpoint {seq}", "no ledger entry at that point"))
    if report.ledger_entries and last_checkpoint != expected_seq - 1:
        report.problems.append(Problem("unaccounted", f"ledger entry {expected_seq - 1}",
                                       "entries after the last signed checkpoint"))


def _latest_payload(conn: sqlite3.Connection, kind: str, subject: str) -> str | None:
    row = conn.execute("SELECT payload FROM ledger WHERE kind = ? AND subject = ? ORDER BY seq DESC LIMIT 1",
                       (kind, subject)).fetchone()
    return str(row[0]) if row else None


def _compare(conn: sqlite3.Connection, report: VerifyReport, kind: str, subject: str,
             payload: dict[str, Any], label: str) -> None:
    stored = _latest_payload(conn, kind, subject)
    if stored is None:
        report.problems.append(Problem("unaccounted", label, "in the index but not in the ledger"))
    elif canonical_json(payload).decode("utf-8") != stored:
        report.problems.append(Problem("altered", label, _difference(stored, payload)))


def _difference(stored: str, payload: dict[str, Any]) -> str:
    """Name the fields that differ, so the officer knows where to look."""
    try:
        original = json.loads(stored)
    except ValueError:
        return "index row differs from the ledger"
    current = json.loads(canonical_json(payload))
    changed = []
    for part, values in current.items():
        before = original.get(part)
        if isinstance(values, dict) and isinstance(before, dict):
            changed += [f"{part}.{k}" for k in values if values.get(k) != before.get(k)]
        elif values != before:
            changed.append(part)
    return "index row differs from the ledger" + (f" ({', '.join(changed)})" if changed else "")


def _blob_ref(conn: sqlite3.Connection, blob_id: str | None) -> BlobRef | None:
    if not blob_id:
        return None
    row = conn.execute("SELECT id, capture_id, owner, slot, size, chunks, digest FROM blob WHERE id = ?",
                       (blob_id,)).fetchone()
    return BlobRef(*row) if row else None


def _ref(conn: sqlite3.Connection, blob_id: str) -> BlobRef:
    """A blob row, or a stand-in that cannot match the ledger (so a missing blob is named)."""
    return _blob_ref(conn, blob_id) or BlobRef(blob_id, "", "", "", -1, -1, "missing")


def _record_payload_from_db(conn: sqlite3.Connection, record_id: str) -> dict[str, Any]:
    row = next(_rows(conn, f"SELECT {', '.join(RECORD_COLUMNS)} FROM record WHERE id = ?", (record_id,)))
    attachments = [(a, _blob_ref(conn, a["blob_id"])) for a in _rows(
        conn, f"SELECT {', '.join(ATTACHMENT_COLUMNS)} FROM attachment WHERE record_id = ? ORDER BY n", (record_id,))]
    return record_payload(row, _ref(conn, row["content_blob"]), attachments)


def _check_captures(conn: sqlite3.Connection, report: VerifyReport) -> None:
    for row in _rows(conn, f"SELECT {', '.join(CAPTURE_COLUMNS)} FROM capture"):
        report.captures += 1
        slots = [(r, bytes(s)) for r, s in conn.execute(
            "SELECT recipient, sealed FROM keyslot WHERE capture_id = ?", (row["id"],))]
        payload = capture_payload(row, slots, _ref(conn, row["raw_blob"]), _blob_ref(conn, row["envelope_blob"]))
        _compare(conn, report, "capture", row["id"], payload, f"capture {row['id']}")
    for (capture_id,) in conn.execute(
            "SELECT DISTINCT capture_id FROM keyslot WHERE capture_id NOT IN (SELECT id FROM capture)"):
        report.problems.append(Problem("unaccounted", f"keyslot {capture_id}", "no capture owns it"))


# Records whose row, content blob or attachment list differs from their ledger entry, found
# inside SQLite. json_array over the columns renders exactly what canonical_json wrote.
_RECORD_MISMATCH = f"""
SELECT r.id, l.seq IS NULL FROM record r
LEFT JOIN ledger l ON l.kind = 'record' AND l.subject = r.id
LEFT JOIN blob b ON b.id = r.content_blob
WHERE l.seq IS NULL
   OR sha256(json_array({", ".join("r." + c for c in RECORD_COLUMNS)}))
      IS NOT json_extract(l.payload, '$.record_sha256')
   OR json_object('chunks', b.chunks, 'digest', b.digest, 'id', b.id, 'size', b.size)
      IS NOT json_extract(l.payload, '$.content')
   OR (SELECT count(*) FROM attachment a WHERE a.record_id = r.id)
      != json_array_length(l.payload, '$.attachments')
"""


def _check_records(conn: sqlite3.Connection, report: VerifyReport) -> None:
    report.records = conn.execute("SELECT count(*) FROM record").fetchone()[0]
    for record_id, unledgered in conn.execute(_RECORD_MISMATCH).fetchall():
        label = f"record {record_id}"
        if unledgered:
            report.problems.append(Problem("unaccounted", label, "in the index but not in the ledger"))
        else:
            _compare(conn, report, "record", record_id, _record_payload_from_db(conn, record_id), label)
    # Attachment rows and blobs are compared in full for the records that have any.
    for (record_id,) in conn.execute("SELECT DISTINCT record_id FROM attachment").fetchall():
        if conn.execute("SELECT 1 FROM record WHERE id = ?", (record_id,)).fetchone() is None:
            report.problems.append(Problem("unaccounted", f"attachment of {record_id}", "no record owns it"))
            continue
        label = f"record {record_id}"
        if not any(p.object == label for p in report.problems):
            _compare(conn, report, "record", record_id, _record_payload_from_db(conn, record_id), label)
    # Links to later captures: one ledger entry each (the first capture is in the record's own entry).
    for record_id, capture_id in conn.execute("""
        SELECT rc.record_id, rc.capture_id FROM record_capture rc
        LEFT JOIN record r ON r.id = rc.record_id
        LEFT JOIN ledger l ON l.kind = 'link' AND l.subject = rc.record_id || '/' || rc.capture_id
        WHERE r.capture_id IS NOT rc.capture_id
          AND (l.seq IS NULL OR json_object('capture_id', rc.capture_id, 'captured_at', rc.captured_at,
                                            'record_id', rc.record_id) IS NOT l.payload)
    """).fetchall():
        report.problems.append(Problem("altered", f"link {record_id}/{capture_id}",
                                       "link differs from the ledger, or has no entry"))


def _check_small_tables(conn: sqlite3.Connection, report: VerifyReport) -> None:
    for row in _rows(conn, f"SELECT {', '.join(EVENT_COLUMNS)} FROM event"):
        payload = {"event": row, "detail": blob_payload(_blob_ref(conn, row["detail_blob"]))}
        _compare(conn, report, "event", row["id"], payload, f"event {row['id']}")
    for row in _rows(conn, "SELECT * FROM disclosure"):
        _compare(conn, report, "disclosure", row["id"], {"disclosure": row}, f"disclosure {row['id']}")
    for row in _rows(conn, "SELECT * FROM hold"):
        _compare(conn, report, "hold", row["id"], {"hold": row}, f"hold {row['id']}")


_ORPHAN_ENTRIES = """
SELECT DISTINCT l.kind, l.subject FROM ledger l WHERE
   (l.kind = 'capture' AND l.subject NOT IN (SELECT id FROM capture))
OR (l.kind = 'record' AND l.subject NOT IN (SELECT id FROM record))
OR (l.kind = 'event' AND l.subject NOT IN (SELECT id FROM event))
OR (l.kind = 'disclosure' AND l.subject NOT IN (SELECT id FROM disclosure))
OR (l.kind = 'hold' AND l.subject NOT IN (SELECT id FROM hold))
OR (l.kind = 'link' AND l.subject NOT IN (SELECT record_id || '/' || capture_id FROM record_capture))
"""


def _check_orphan_entries(conn: sqlite3.Connection, report: VerifyReport) -> None:
    for kind, subject in conn.execute(_ORPHAN_ENTRIES):
        report.problems.append(Problem("missing", f"{kind} {subject}", "in the ledger but not in the index"))


_UNREFERENCED_BLOBS = """
SELECT id, owner, slot FROM blob WHERE id NOT IN (
    SELECT raw_blob FROM capture UNION SELECT envelope_blob FROM capture WHERE envelope_blob IS NOT NULL
    UNION SELECT content_blob FROM record UNION SELECT blob_id FROM attachment WHERE blob_id IS NOT NULL
    UNION SELECT detail_blob FROM event)
"""


def _check_blobs(conn: sqlite3.Connection, report: VerifyReport) -> None:
    for blob_id, owner, slot in conn.execute(_UNREFERENCED_BLOBS):
        report.problems.append(Problem("unaccounted", f"blob {blob_id}", f"{owner}/{slot}: nothing uses it"))
    for (blob_id,) in conn.execute("SELECT DISTINCT blob_id FROM chunk WHERE blob_id NOT IN (SELECT id FROM blob)"):
        report.problems.append(Problem("unaccounted", f"blob {blob_id}", "chunks with no blob row"))
    for blob_id, owner, slot in conn.execute(
            "SELECT id, owner, slot FROM blob WHERE id NOT IN (SELECT blob_id FROM chunk)"):
        report.problems.append(Problem("missing", f"blob {blob_id}", f"{owner}/{slot}: no sealed data"))
    report.blobs = conn.execute("SELECT count(*) FROM blob").fetchone()[0]
    # One pass over every sealed byte in storage order (a blob's chunks are written
    # together, so they are adjacent): each blob's digest is what the ledger committed to.
    current: tuple[str, str, str, int, str] | None = None
    digest = hashlib.sha256()
    count = 0
    for blob_id, owner, slot, chunks, expected, data in conn.execute(
        "SELECT c.blob_id, b.owner, b.slot, b.chunks, b.digest, c.data FROM chunk c "
        "JOIN blob b ON b.id = c.blob_id ORDER BY c.rowid"
    ):
        if current is None or current[0] != blob_id:
            _finish_blob(report, current, digest, count)
            current, digest, count = (blob_id, owner, slot, chunks, expected), hashlib.sha256(), 0
        digest.update(data)
        count += 1
        report.sealed_bytes += len(data)
    _finish_blob(report, current, digest, count)


def _finish_blob(report: VerifyReport, blob: tuple[str, str, str, int, str] | None,
                 digest: Any, count: int) -> None:
    if blob is None:
        return
    blob_id, owner, slot, chunks, expected = blob
    if digest.hexdigest() != expected or count != chunks:
        report.problems.append(Problem("altered", f"blob {blob_id}",
                                       f"{owner}/{slot}: sealed bytes differ from the ledger"))
