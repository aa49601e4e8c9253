"""Reading records: metadata queries (``search``) and the opening of one record (``show``).

Searching shows metadata only and decrypts nothing. Opening a record is a disclosure:
:func:`open_record` accounts for it (see :mod:`twentyday.store.disclosures`) before it
decrypts anything, and accounts for an attempt that could not open the record too.
Opening needs the officer's identity and the archive's index alone: it works on an
archive opened for an officer (``Archive(config, officer=True)``), which never reads
the daemon's secrets. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from twentyday.canonical import utc_key
from twentyday.crypto import keys
from twentyday.errors import KeyMaterialError, NotFoundError, RecordDestroyed, TwentydayError
from twentyday.store import db
from twentyday.store.archive import NO_SIGNING_KEY, Archive
from twentyday.store.disclosures import FAILED, SHOW, Disclosure, disclosing_actor, require_purpose
from twentyday.store.disposition import destroyed, mark_destroyed
from twentyday.store.rows import CAPTURE_COLUMNS, DETAIL_SLOT, RECORD_COLUMNS
from twentyday.store.search_index import participant_match

#: What ``search --json`` prints for each record, in this order.
SEARCH_FIELDS = (
    "id", "custodian", "platform", "channel", "conversation", "sender", "recipients", "direction",
    "created_at", "captured_at", "deadline_at", "status", "days_late", "capture_id", "has_attachments",
    "flags",
)


@dataclass(frozen=True)
class Filters:
    custodian: str | None = None
    conversation: str | None = None
    participant: str | None = None
    platform: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None
    limit: int = 1000


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = {name: row[name] for name in SEARCH_FIELDS}
    out["recipients"] = json.loads(row["recipients"])
    out["has_attachments"] = bool(row["has_attachments"])
    out["flags"] = json.loads(row["flags"])  # facts such as origin_unauthenticated, media_omitted
    return out


#: How a text search finds its records, by how many hold all its words (counted up to MANY_MATCHES + 1):
#: at most FEW_MATCHES: collect them (by id) and sort them; at most MANY_MATCHES: walk the records in time
#: order and look each one's row of words up in the set of rows that hold them (made once: numbers only);
#: more: walk and test each one's row of words itself (a match comes every few records). Each way gives
#: the same rows; the bounds are where one way's cost meets the next (bench/search.py, 1,000,000 records).
FEW_MATCHES = 3_000
MANY_MATCHES = 100_000


def search(archive: Archive, filters: Filters, *, few_matches: int = FEW_MATCHES,
           many_matches: int = MANY_MATCHES) -> Iterator[dict[str, Any]]:
    """The records that match every filter, at most ``filters.limit`` of them, as an iterator:
    by creation time (then id), undated records last (by id). Rows come as SQLite finds them, so
    the first is there long before the last; the archive must stay open until the last is read.

    Every filter has an index in the results' order (migration 12 in store/schema.py), so a
    search reads about as many index entries as it yields: see docs/ARCHITECTURE.md, "Search".
    The words of ``text`` are blinded with the daemon's keyed hash and must all be present;
    ``few_matches``, ``many_matches``: how the records that hold them are found (see
    :data:`FEW_MATCHES`; every way gives the same rows).
    """
    rows = _stream(archive, statements(archive, filters, few_matches=few_matches, many_matches=many_matches),
                   filters.limit)
    if archive.conn.execute("SELECT 1 FROM disposed_record LIMIT 1").fetchone() is None:
        return rows  # nothing was ever destroyed: no tombstone to mark
    return (mark_destroyed(archive.conn, row) for row in rows)


Statement = tuple[str, list[Any]]


def statements(archive: Archive, filters: Filters, *, few_matches: int = FEW_MATCHES,
               many_matches: int = MANY_MATCHES) -> list[list[Statement]]:
    """The statements a search runs: phases in order (dated records, then undated ones), each one
    statement, or two whose rows are merged in the phase's order (a participant: as the sender,
    through the index on lower(sender), and as a recipient, through ``record_participant``). Each
    ends in ``LIMIT ?`` (how many rows are still wanted is bound when it runs); an empty list when
    nothing can match."""
    where: list[str] = []
    params: list[Any] = []
    for column in ("custodian", "conversation", "platform", "status"):
        value = getattr(filters, column)
        if value:
            where.append(f"record.{column} = ?")
            params.append(value)
    if filters.since:
        where.append("record.created_utc >= ?")
        params.append(utc_key(filters.since))
    if filters.until:
        where.append("record.created_utc < ?")
        params.append(utc_key(filters.until))
    dated_only = bool(filters.since or filters.until)  # an undated record is in no time window
    if filters.text:
        terms = archive.term_tokens(filters.text)
        if not terms:
            return []
        sqlite = db.dialect(archive.conn) == "sqlite"
        # The words, as each database's full-text lookup takes them: an FTS5 query (SQLite), an array
        # the GIN index on the row's words contains (PostgreSQL, store/pg_schema.py).
        match: Any = " AND ".join(f'"{t}"' for t in terms) if sqlite else terms
        holding = "record_terms MATCH ?" if sqlite else "string_to_array(terms, ' ') @> ?::text[]"
        held = archive.conn.execute(f"SELECT count(*) FROM (SELECT 1 FROM record_terms WHERE {holding} "
                                    "LIMIT ?) AS held", (match, max(few_matches, many_matches) + 1)).fetchone()[0]
        if held <= few_matches:
            # Few records hold the words: start from them (found by id), test the other filters, sort.
            if filters.participant:
                where.append(participant_match("record"))
                params += [filters.participant, filters.participant]
            source = (f"(SELECT record_id FROM record_terms WHERE {holding}) AS m "
                      f"{_FIRST_JOIN[sqlite]} record ON record.id = m.record_id")
            return [[(_select(source, where, "record.created_utc IS NULL, record.created_utc, record.id"),
                      [match, *params])]]
        # More do: walk the records in time order; each one's row of words is found through
        # record_terms_row (the full-text index finds rows by word, not by record).
        if held <= many_matches:
            where.append("EXISTS (SELECT 1 FROM record_terms_row w WHERE w.created_utc = "
                         "coalesce(record.created_utc, '') AND w.record_id = record.id AND w.terms_rowid IN "
                         f"(SELECT rowid FROM record_terms WHERE {holding}))")
            params.append(match)
        else:
            has_word = " AND instr(' ' || t.terms || ' ', ?) > 0" if sqlite else \
                " AND strpos(' ' || t.terms || ' ', ?) > 0"
            where.append("EXISTS (SELECT 1 FROM record_terms_row w, record_terms t WHERE w.created_utc = "
                         "coalesce(record.created_utc, '') AND w.record_id = record.id AND "
                         "t.rowid = w.terms_rowid" + has_word * len(terms) + ")")
            params += [f" {t} " for t in terms]
    # Dated records by time, then (unless a time bound leaves them out) undated ones by id: two
    # phases, each reading an index in its own order instead of sorting every match.
    dated, undated = "record.created_utc IS NOT NULL", "record.created_utc IS NULL"
    if filters.participant:
        # As the sender (the index on lower(sender) is in time order) and as a recipient
        # (record_participant's key is in time order): two streams, merged.
        sqlite = db.dialect(archive.conn) == "sqlite"
        # PostgreSQL takes no index hint; its planner finds the same index (record_sender_time).
        sender = "record INDEXED BY record_sender_time" if sqlite else "record"
        recipient = f"record_participant p {_FIRST_JOIN[sqlite]} record ON record.id = p.record_id"
        as_sender, as_recipient = "lower(record.sender) = lower(?)", "p.participant = lower(?)"
        bound = [filters.participant, *params]
        phases = [[(_select(sender, [as_sender, *where, dated], "record.created_utc, record.id"), bound),
                   (_select(recipient, [as_recipient, *where, "p.created_utc != ''"], "p.created_utc, p.record_id"),
                    bound)],
                  [(_select(sender, [as_sender, *where, undated], "record.id"), bound),
                   (_select(recipient, [as_recipient, *where, "p.created_utc = ''"], "p.record_id"), bound)]]
    else:
        phases = [[(_select("record", [*where, dated], "record.created_utc, record.id"), params)],
                  [(_select("record", [*where, undated], "record.id"), params)]]
    if filters.status == "undated":
        phases = phases[1:]  # the status of every record without a time, and of no other
    elif dated_only or filters.status:
        phases = phases[:1]
    return phases


#: The join that reads its left side first: SQLite's CROSS JOIN keeps the order written; PostgreSQL
#: has no CROSS JOIN with ON, and its planner orders a plain JOIN by cost.
_FIRST_JOIN = {True: "CROSS JOIN", False: "JOIN"}

#: Every column of a record, named (not ``record.*``: the PostgreSQL table has a ``rowid`` of its own).
_RECORD_FIELDS = ", ".join(f"record.{column}" for column in RECORD_COLUMNS)


def _select(source: str, where: list[str], order: str) -> str:
    return (f"SELECT {_RECORD_FIELDS} FROM {source}" + (" WHERE " + " AND ".join(where) if where else "")
            + f" ORDER BY {order} LIMIT ?")


def _stream(archive: Archive, phases: list[list[Statement]], limit: int) -> Iterator[dict[str, Any]]:
    left = limit
    for phase in phases:
        if left <= 0:
            return
        streams = [_rows(archive, sql, [*params, left]) for sql, params in phase]
        # Two streams of one phase are in the same order (time then id, or id): merged, a record in
        # both (its sender is also among its recipients) given once.
        rows = streams[0] if len(streams) == 1 else heapq.merge(
            *streams, key=lambda row: (row["created_utc"] or "", row["id"]))
        previous = None
        for row in rows:
            if row["id"] == previous:
                continue
            previous = row["id"]
            left -= 1
            yield _public(row)
            if left <= 0:
                return


def _rows(archive: Archive, sql: str, params: list[Any]) -> Iterator[dict[str, Any]]:
    cursor = archive.conn.execute(sql, params)
    names = [column[0] for column in cursor.description]
    for values in cursor:
        yield dict(zip(names, values, strict=True))


def _utc_now() -> datetime:
    return datetime.now(UTC)


def open_record(archive: Archive, record_id: str, identity: keys.Identity, *, purpose: str,
                recipient: str = "self", actor: str | None = None,
                clock: Callable[[], datetime] = _utc_now) -> dict[str, Any]:
    """Metadata plus the decrypted content of one record, disclosed to ``recipient`` for ``purpose``.

    A blank purpose is refused (:class:`InvalidArgument`), an identity that cannot sign a
    disclosure the config's officers would accept is refused (:class:`KeyMaterialError`: no
    signing key, or one no public key in ``keys.recipients`` carries) and an unknown record is
    not found (:class:`NotFoundError`), with nothing accounted: nothing was disclosed. Otherwise the
    disclosure is recorded and ledgered before anything is decrypted, by the operating-system
    account with ``actor`` (a name the person gives) beside it; when the record then cannot be
    opened (a key it was not sealed to, an altered or missing blob), the attempt is recorded
    again as ``failed``, with the reason, and the error raised.
    """
    require_purpose(purpose)
    who = disclosing_actor(actor)
    require_configured_signer(archive, identity)
    row = archive.record_row(record_id)
    refuse_destroyed(archive, record_id)
    archive.record_disclosure(actor=who, action=SHOW, purpose=purpose, recipient=recipient,
                              subjects=[record_id], identity=identity, at=clock())
    try:
        return _decrypted(archive, row, identity)
    except TwentydayError as error:
        archive.record_disclosure(actor=who, action=FAILED, purpose=f"{purpose} (not opened: {error})",
                                  recipient=recipient, subjects=[record_id], identity=identity, at=clock())
        raise


#: What ``show CAPTURE-ID`` prints of a capture's row, in this order (all of it is in clear already).
CAPTURE_FIELDS = ("id", "custodian", "channel", "source_name", "received_at", "parser", "size", "state",
                  "reason", "message_count", "parent_capture", "delivered_by", "origin_auth")


def open_capture(archive: Archive, capture_id: str, identity: keys.Identity, *, purpose: str,
                 recipient: str = "self", actor: str | None = None,
                 clock: Callable[[], datetime] = _utc_now) -> dict[str, Any]:
    """A capture's row plus what is sealed about it: its ``detail`` (the item's own name, the full
    reason it was kept, when the index holds a code) and its SMTP ``envelope``.

    The raw item itself is not opened. A disclosure like :func:`open_record`'s, of the capture."""
    require_purpose(purpose)
    who = disclosing_actor(actor)
    require_configured_signer(archive, identity)
    rows = db.query(archive.conn, f"SELECT {', '.join(CAPTURE_COLUMNS)} FROM capture WHERE id = ?", (capture_id,))
    if not rows:
        raise NotFoundError(f"no capture {capture_id!r}")
    row = rows[0]
    refuse_destroyed(archive, capture_id)
    archive.record_disclosure(actor=who, action=SHOW, purpose=purpose, recipient=recipient,
                              subjects=[capture_id], identity=identity, at=clock())
    try:
        document: dict[str, Any] = {name: row[name] for name in CAPTURE_FIELDS}
        found = archive.conn.execute("SELECT id FROM blob WHERE owner = ? AND slot = ?",
                                     (capture_id, DETAIL_SLOT)).fetchone()
        detail = json.loads(archive.open_blob(archive.blob_ref(found[0]), identity)) if found else {}
        detail.pop("capture_id", None)
        document["detail"] = detail
        envelope = row["envelope_blob"]
        document["envelope"] = json.loads(archive.open_blob(archive.blob_ref(envelope), identity)) \
            if envelope else None
        return document
    except TwentydayError as error:
        archive.record_disclosure(actor=who, action=FAILED, purpose=f"{purpose} (not opened: {error})",
                                  recipient=recipient, subjects=[capture_id], identity=identity, at=clock())
        raise


class Disclosed:
    """Records one accounted disclosure covers (:func:`disclose_records`): each opened only through it.

    Everything opened here was named in :attr:`disclosure` before this object existed: the
    records' content and attachments, and the raw bytes of captures of those records.
    """

    def __init__(self, archive: Archive, identity: keys.Identity, disclosure: Disclosure,
                 rows: list[dict[str, Any]], clock: Callable[[], datetime], destroyed: dict[str, str]) -> None:
        self._archive = archive
        self._identity = identity
        self.disclosure = disclosure
        #: The disclosed records' index rows, in the order given.
        self.rows = rows
        #: Records asked for but destroyed under a disposition (id -> when and under what): not
        #: disclosed, since nothing of their content is left to disclose.
        self.destroyed = destroyed
        self._clock = clock
        self._ids = {row["id"] for row in rows}

    def document(self, row: dict[str, Any]) -> dict[str, Any]:
        """What ``show`` prints of one disclosed record: metadata, time reading, origin, captures, content."""
        self._require(row["id"])
        return _decrypted(self._archive, row, self._identity)

    def attachment(self, record_id: str, n: int) -> bytes | None:
        """The bytes of a disclosed record's attachment ``n`` (None: the export omitted it)."""
        self._require(record_id)
        found = self._archive.conn.execute("SELECT blob_id FROM attachment WHERE record_id = ? AND n = ?",
                                           (record_id, n)).fetchone()
        if found is None:
            raise NotFoundError(f"record {record_id} has no attachment {n}")
        if found[0] is None:
            return None
        return self._archive.open_blob(self._archive.blob_ref(found[0]), self._identity)

    def capture_records(self, capture_id: str) -> set[str]:
        """Every record a capture holds (its own and those it linked): metadata only."""
        return {record_id for (record_id,) in self._archive.conn.execute(
            "SELECT id FROM record WHERE capture_id = ? UNION SELECT record_id FROM record_capture "
            "WHERE capture_id = ?", (capture_id, capture_id))}

    def capture(self, capture_id: str) -> dict[str, Any]:
        """A capture's row as ``show CAPTURE-ID`` prints it (all of it in clear already)."""
        rows = db.query(self._archive.conn, f"SELECT {', '.join(CAPTURE_FIELDS)} FROM capture WHERE id = ?",
                        (capture_id,))
        if not rows:
            raise NotFoundError(f"no capture {capture_id!r}")
        return rows[0]

    def events(self, custodian: str, conversation: str) -> list[tuple[str, str | None]]:
        """The parser events (kind, time) of a conversation, in clear in the index: deletions seen, disappearing
        messages turned on, media omitted, exports cut short."""
        return [(kind, at) for kind, at in self._archive.conn.execute(
            "SELECT kind, at FROM event WHERE custodian = ? AND conversation = ? ORDER BY at IS NULL, at, id",
            (custodian, conversation))]

    def raw_capture(self, capture_id: str) -> bytes:
        """The raw bytes of a capture, as received: only a capture all of whose records are disclosed
        (a capture holding others, an mbox or a forward of several originals, would disclose them too)."""
        held = self.capture_records(capture_id)
        if not held or not held <= self._ids:
            raise NotFoundError(f"capture {capture_id} holds records this disclosure does not name")
        found = self._archive.conn.execute("SELECT raw_blob FROM capture WHERE id = ?", (capture_id,)).fetchone()
        if found is None:
            raise NotFoundError(f"no capture {capture_id!r}")
        return self._archive.open_blob(self._archive.blob_ref(found[0]), self._identity)

    def account_failure(self, record_ids: list[str], reason: str) -> Disclosure:
        """Record again, as ``failed``, the disclosed records that could not be opened, and why."""
        d = self.disclosure
        return self._archive.record_disclosure(
            actor=d.actor, action=FAILED, purpose=f"{d.purpose} (not opened: {reason})", recipient=d.recipient,
            recipient_address=d.recipient_address, subjects=record_ids, identity=self._identity, at=self._clock())

    def _require(self, record_id: str) -> None:
        if record_id not in self._ids:
            raise NotFoundError(f"record {record_id} is not among the records this disclosure names")


def disclose_records(archive: Archive, record_ids: list[str], identity: keys.Identity, *, action: str,
                     purpose: str, recipient: str, recipient_address: str = "", actor: str | None = None,
                     clock: Callable[[], datetime] = _utc_now) -> Disclosed:
    """Account for ONE disclosure of many records (an export) before anything of them is decrypted.

    Refused with nothing accounted, as :func:`open_record` refuses: a blank purpose, an identity
    whose signature ``verify`` would not accept, an unknown record (:class:`NotFoundError`, naming
    the first), an empty list, a list whose every record was destroyed (:class:`RecordDestroyed`).
    A destroyed record among others is left out of the disclosure (:attr:`Disclosed.destroyed`).
    The returned :class:`Disclosed` opens what the disclosure names."""
    require_purpose(purpose)
    if not record_ids:
        raise NotFoundError("no records to disclose")
    who = disclosing_actor(actor)
    require_configured_signer(archive, identity)
    rows: list[dict[str, Any]] = []
    gone: dict[str, str] = {}
    for record_id in dict.fromkeys(record_ids):
        row = archive.record_row(record_id)
        try:
            refuse_destroyed(archive, record_id)
        except RecordDestroyed as error:
            gone[record_id] = str(error)
            continue
        rows.append(row)
    if not rows:
        raise RecordDestroyed(f"every record asked for was destroyed; {next(iter(gone.values()))}")
    disclosure = archive.record_disclosure(actor=who, action=action, purpose=purpose, recipient=recipient,
                                           recipient_address=recipient_address, subjects=[r["id"] for r in rows],
                                           identity=identity, at=clock())
    return Disclosed(archive, identity, disclosure, rows, clock, gone)
def refuse_destroyed(archive: Archive, object_id: str) -> None:
    """A destroyed record or capture is not opened (nothing is left that opens): say so, and when."""
    tombstone = destroyed(archive.conn, object_id)
    if tombstone is not None:
        what = "capture" if object_id.startswith("cap-") else "record"
        raise RecordDestroyed(f"{what} {object_id} was destroyed on {tombstone['destroyed_at']} under plan "
                              f"{tombstone['plan']} (certificate {tombstone['disposition']}); its metadata remains")


def require_configured_signer(archive: Archive, identity: keys.Identity) -> None:
    """Refuse an identity whose disclosures ``verify`` would not accept: one without a signing
    key, or whose signing key is in no public key the config names (``verify`` checks against those)."""
    if identity.signing_key is None:
        raise KeyMaterialError(NO_SIGNING_KEY)
    if identity.recipient.signer not in keys.signers(archive.recipients):
        raise KeyMaterialError(
            f"signing key {identity.recipient.signer} is in no public key keys.recipients names "
            f"({archive.config.path}); only a configured officer can disclose (name this identity's .pub there)")


def _decrypted(archive: Archive, row: dict[str, Any], identity: keys.Identity) -> dict[str, Any]:
    record_id = row["id"]
    content = archive.open_content(record_id, row["content_blob"], identity)
    document = _public(row)
    document["time_reading"] = json.loads(row["time_reading"]) if row["time_reading"] else None
    if document["time_reading"] is not None and "raw" not in document["time_reading"]:
        # Sealed with the content since the index keeps only how the time was read.
        document["time_reading"]["raw"] = content.pop("time_raw", "")
    document["retention"] = row["retention"]
    # Who delivered the record's first capture, and what vouched for the mail (NULL: not recorded then).
    origin = archive.conn.execute("SELECT delivered_by, origin_auth FROM capture WHERE id = ?",
                                  (row["capture_id"],)).fetchone()
    document["origin"] = {"delivered_by": origin[0], "origin_auth": origin[1]} if origin else None
    # The first capture is the record's own; record_capture lists the later ones.
    document["captures"] = [{"capture_id": row["capture_id"], "captured_at": row["captured_at"]}] + [
        {"capture_id": c, "captured_at": t}
        for c, t in archive.conn.execute(
            "SELECT capture_id, captured_at FROM record_capture WHERE record_id = ? ORDER BY captured_at", (record_id,)
        )
    ]
    content.pop("time_raw", None)
    document["content"] = content
    return document
