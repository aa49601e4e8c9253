"""Adoption: the ledger entries that account for rows written before their table was ledgered.

Issue 12 put more of the index under the ledger: alerts (each change of a row), custodians,
escrow holders, the rows of the blobs each capture sealed (owner, slot, capture: what the AEAD
binds) and each content pack's rows of the blind-word index (``record_terms``). An archive
written before has such rows and no entries for them. When the writer side migrates it across
:data:`schema.ADOPTION_MIGRATION`, :func:`adopt_unledgered` appends one ``adopt`` entry per row
(per capture for blob rows, per pack for search terms) that has none, in the migration's own
transaction, and signs the head: from then on ``verify`` holds those rows to these entries and
names any later change. Nothing vouches for them before that moment, and ``verify`` says so
(:func:`adoption_summary`): how many rows were adopted, and when.

An adopted entry's subject is ``<table> <key>``; its payload is the one a live entry of that
table carries (``alert``, ``custodian``, ``escrow``), or, for the parts of older capture and pack
entries that did not exist yet, ``{"blobs": n, "blobs_sha256": ...}`` (:func:`rows.blobs_digest`)
and ``{"records": {id: digest}, "terms_sha256": ...}`` (the pack's term rows in storage order,
each record's :func:`rows.terms_digest`). Tables ledgered before issue 12 (captures, records,
links, events, holds, disclosures) are never adopted: a row of theirs with no entry is named by
``verify`` as it always was.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.store import db
from twentyday.store.alerts import ALERT_COLUMNS, alert_payload
from twentyday.store.blobstore import BlobRef
from twentyday.store.ledger import Ledger
from twentyday.store.rows import blobs_digest, escrow_payload, terms_digest

#: The ledger kind of an adopted entry.
ADOPT = "adopt"
#: Tables whose rows are adopted with their own live payload (subject ``<table> <key>``).
WHOLE_ROW_TABLES = ("alert", "custodian", "escrow")
#: A capture's blob rows (subject ``blobs <capture id>``) and a pack's search terms (``terms <pack>``).
BLOBS, TERMS = "blobs", "terms"
#: How the summary names what each kind of adopted entry covers.
_TABLE_OF = {"alert": "alert", "custodian": "custodian", "escrow": "escrow", BLOBS: "blob", TERMS: "record_terms"}

# The pack entries that already commit to their search terms (rows.pack_payload ends with it).
_PACKS_WITH_TERMS = """
SELECT subject FROM ledger WHERE kind = 'pack' AND length(payload) >= 82
  AND substr(payload, length(payload) - 81, 16) = '"terms_sha256":"'
"""


def subject(table: str, key: str) -> str:
    return f"{table} {key}"


@dataclass
class Adoption:
    """What an upgrade adopted: rows per table (see :data:`_TABLE_OF`), the entries and when."""

    at: str = ""
    entries: int = 0
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "entries": self.entries, "rows": self.total, "tables": dict(sorted(self.rows.items()))}

    def text(self) -> str:
        tables = ", ".join(f"{table} {count}" for table, count in sorted(self.rows.items()))
        return (f"{self.total} row(s) written before their tables were ledgered were adopted at {self.at} "
                f"({tables}): the ledger vouches for them from then on, not before")


def adopt_unledgered(conn: db.Connection, signing_key: ed25519.Ed25519PrivateKey, at: str) -> Adoption:
    """Append an ``adopt`` entry for every unledgered row of the tables issue 12 ledgered, then sign
    the head; inside the caller's transaction (the migration's)."""
    ledger = Ledger(conn)
    ledger.begin()
    adoption = Adoption(at=at)

    def append(table: str, key: str, payload: dict[str, Any], rows: int) -> None:
        ledger.append(at, ADOPT, subject(table, key), payload)
        adoption.entries += 1
        name = _TABLE_OF[table]
        adoption.rows[name] = adoption.rows.get(name, 0) + rows

    for row in _dicts(conn, f"SELECT {', '.join(ALERT_COLUMNS)} FROM alert WHERE CAST(id AS TEXT) NOT IN "
                            "(SELECT subject FROM ledger WHERE kind = 'alert') ORDER BY id"):
        append("alert", str(row["id"]), alert_payload(row), 1)
    for row in _dicts(conn, "SELECT id, name, timezone, schedule FROM custodian WHERE id NOT IN "
                            "(SELECT subject FROM ledger WHERE kind = 'custodian') ORDER BY id"):
        append("custodian", row["id"], {"custodian": row}, 1)
    for recipient, label, sealed, when in conn.execute(
            "SELECT recipient, label, sealed, at FROM escrow WHERE recipient NOT IN "
            "(SELECT subject FROM ledger WHERE kind = 'escrow') ORDER BY rowid").fetchall():
        append("escrow", recipient, escrow_payload(recipient, label, bytes(sealed), when), 1)
    # Captures whose entry predates blobs_sha256 (rows.capture_payload): their blob rows.
    for (capture_id,) in conn.execute(
            "SELECT id FROM capture WHERE id IN (SELECT subject FROM ledger WHERE kind = 'capture') "
            "AND id NOT IN (SELECT subject FROM ledger WHERE kind = 'capture' AND payload LIKE '%\"blobs_sha256\":%') "
            "ORDER BY rowid").fetchall():
        refs = [BlobRef(*row) for row in conn.execute(
            "SELECT id, capture_id, owner, slot, size, chunks, digest FROM blob WHERE capture_id = ?", (capture_id,))]
        append(BLOBS, capture_id, {"blobs": len(refs), "blobs_sha256": blobs_digest(refs)}, len(refs))
    # Packs (or single-record contents, before packs) whose entry predates terms_sha256.
    for content_blob, terms in _unledgered_terms(conn).items():
        digest = hashlib.sha256("\n".join(text for _, text in terms).encode("utf-8")).hexdigest()
        append(TERMS, content_blob, {"records": {record_id: terms_digest(text) for record_id, text in terms},
                                     "terms_sha256": digest}, len(terms))
    if adoption.entries:
        ledger.checkpoint(at, signing_key)
    return adoption


def _unledgered_terms(conn: db.Connection) -> dict[str, list[tuple[str, str]]]:
    """The term rows of records whose content's entry does not commit to them, by content blob,
    in storage order (the order verify hashes a pack's run of rows in)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for content_blob, record_id, terms in conn.execute(
            "SELECT r.content_blob, t.record_id, t.terms FROM record_terms t JOIN record r ON r.id = t.record_id "
            f"WHERE r.content_blob NOT IN ({_PACKS_WITH_TERMS}) ORDER BY t.rowid"):
        found.setdefault(str(content_blob), []).append((str(record_id), str(terms)))
    return found


def adoption_summary(conn: db.Connection) -> Adoption | None:
    """The adoption the ledger holds (None: nothing was ever adopted), counted from its entries."""
    adoption: Adoption | None = None
    for at, subject_text, payload in conn.execute(
            "SELECT at, subject, payload FROM ledger WHERE kind = ? ORDER BY seq", (ADOPT,)):
        table = str(subject_text).partition(" ")[0]
        if table not in _TABLE_OF:
            continue
        if adoption is None:
            adoption = Adoption(at=str(at))
        adoption.entries += 1
        name = _TABLE_OF[table]
        adoption.rows[name] = adoption.rows.get(name, 0) + _rows_of(table, str(payload))
    return adoption


def _rows_of(table: str, payload: str) -> int:
    if table not in (BLOBS, TERMS):
        return 1
    try:
        document = json.loads(payload)
    except ValueError:
        return 0  # an unreadable entry: the chain check names it
    if table == BLOBS:
        count = document.get("blobs") if isinstance(document, dict) else None
        return count if isinstance(count, int) else 0
    records = document.get("records") if isinstance(document, dict) else None
    return len(records) if isinstance(records, dict) else 0


def _dicts(conn: db.Connection, sql: str) -> list[dict[str, Any]]:
    cursor = conn.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
