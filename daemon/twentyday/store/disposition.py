"""Disposition: plan what the retention rules allow to destroy, approve it, destroy it, certify it.

Three officer actions, each a signed row and ledger entry (:mod:`officer_rows`):

``plan``
    The records eligible at ``as_of`` under their OWN fixed rule (``record.retention``, never the
    config's current schedule: :mod:`twentyday.retention`), never a permanent one, never one an
    active hold matches (:mod:`holds`), never one whose row differs from what the ledger committed
    to (a retention edited in the index is refused, and ``verify`` names it). Stored with its id.
``approve``
    A second officer, whose signing key is not the author's, approves the plan
    (``retention.two_person_approval``).
``dispose``
    Destroys only what the plan listed, re-checking at that moment every record's rule, row and
    holds (a hold placed after the plan keeps its records: skipped and reported).

The unit of destruction is the capture: its content is sealed under one data key (``keyslot``)
and its raw bytes hold every record it brought, and a record may be in several captures
(``record_capture``). A capture is destroyed only when every record it holds is destroyed with it
(or was before); a record only when every capture holding it is. Eligible records that a
capture shares with records not yet eligible are *deferred*, with the capture and the count that
keep them. Destroying a capture deletes its keyslots (no key opens anything left of it), the
sealed chunks of every blob it sealed (raw, envelope, sealed detail, record packs, attachments,
event details) and its records' rows of the blind-word index, with ``secure_delete`` on, the
word index merged and the write-ahead log checkpointed and truncated, so the bytes are gone
from the files (an index in PostgreSQL: the rows deleted and their space vacuumed; copies of the
pages stay in the server's write-ahead log, replicas and backups until they are recycled, which
``retention dispose`` says). What stays is the tombstone: the record, capture, blob and event rows (metadata)
and, in ``disposed_record``/``disposed_capture``, the certificate each went under. The
certificate of destruction (kind ``disposition``) names the plan, its author and approver, who
disposed, when, each record with its authority, the captures with their keyslot digests and the
blobs with their digests; ``verify`` holds the tombstones and the missing bytes to it.

With the sealed bytes in an S3 bucket (``[store] blobs``), a capture also goes only when none of
its object versions is still locked or legally held, checked before the transaction; the
certificate lists the versions it destroys, deleted by version id after the commit
(:mod:`object_disposal`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twentyday.canonical import canonical_json, iso, parse_iso
from twentyday.config import Config
from twentyday.crypto import keys
from twentyday.errors import InvalidArgument, NotFoundError
from twentyday.retention import Rule, eligible_since, parse_rule, record_date
from twentyday.store import db, holds, object_disposal, officer_rows
from twentyday.store.objects import ObjectStore
from twentyday.store.rows import BLOB_COLUMNS, RECORD_COLUMNS, row_digest


@dataclass(frozen=True)
class Candidate:
    id: str
    custodian: str
    schedule: str
    rule: Rule
    eligible_since: datetime


def _records(conn: db.Connection, ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    columns = ", ".join(RECORD_COLUMNS)
    sql = f"SELECT {columns} FROM record WHERE id NOT IN (SELECT record_id FROM disposed_record)"
    if ids is None:
        cursor = conn.execute(sql + " ORDER BY created_utc IS NULL, created_utc, id")
        return [dict(zip(RECORD_COLUMNS, row, strict=True)) for row in cursor]
    found = []
    for record_id in ids:
        row = conn.execute(f"SELECT {columns} FROM record WHERE id = ? AND id NOT IN "
                           "(SELECT record_id FROM disposed_record)", (record_id,)).fetchone()
        if row is not None:
            found.append(dict(zip(RECORD_COLUMNS, row, strict=True)))
    return found


def _committed(conn: db.Connection, row: dict[str, Any], packs: dict[str, dict[str, str]]) -> bool:
    """Whether the record's row is the one the ledger committed to (its pack's entry, or its own)."""
    pack = row["content_blob"]
    if pack not in packs:
        found = conn.execute("SELECT payload FROM ledger WHERE kind = 'pack' AND subject = ? ORDER BY seq DESC "
                             "LIMIT 1", (pack,)).fetchone()
        members: dict[str, str] = {}
        if found is not None:
            members = {str(m.get("id")): str(m.get("row_sha256")) for m in json.loads(found[0]).get("records", [])}
        packs[pack] = members
    digest = row_digest(row)
    if row["id"] in packs[pack]:
        return packs[pack][row["id"]] == digest
    legacy = conn.execute("SELECT payload FROM ledger WHERE kind = 'record' AND subject = ? ORDER BY seq DESC "
                          "LIMIT 1", (row["id"],)).fetchone()
    return legacy is not None and json.loads(legacy[0]).get("record_sha256") == digest


def _judge(conn: db.Connection, config: Config, rows: list[dict[str, Any]], as_of: datetime
           ) -> tuple[list[Candidate], list[dict[str, Any]], dict[str, int]]:
    """The records eligible at ``as_of`` by their own rules; the ones refused (with the fact); counts."""
    eligible: list[Candidate] = []
    refused: list[dict[str, Any]] = []
    counts = {"considered": 0, "permanent": 0, "not_yet": 0, "rule_not_read": 0}
    packs: dict[str, dict[str, str]] = {}
    for row in rows:
        counts["considered"] += 1
        rule = parse_rule(row["retention"])
        if rule.source == "unread":
            counts["rule_not_read"] += 1  # taken as permanent: never shorter than what it may have said
            continue
        if rule.permanent:
            counts["permanent"] += 1
            continue
        custodian = config.custodian(row["custodian"])
        since = eligible_since(rule, record_date(row["created_at"], row["captured_at"]),
                               custodian.tenure_ended if custodian else None)
        if since is None or since > as_of:
            counts["not_yet"] += 1
            continue
        if rule.schedule != row["schedule"] or not _committed(conn, row, packs):
            refused.append({"id": row["id"], "reason": "its row (schedule or retention) differs from the ledger "
                                                       "entry it was committed with: run 'twentyday verify'"})
            continue
        eligible.append(Candidate(row["id"], row["custodian"], row["schedule"], rule, since))
    return eligible, refused, counts


def _captures_of(conn: db.Connection, record_ids: Iterable[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for record_id in record_ids:
        first = conn.execute("SELECT capture_id FROM record WHERE id = ?", (record_id,)).fetchone()
        captures = {first[0]} if first else set()
        captures |= {c for (c,) in conn.execute("SELECT capture_id FROM record_capture WHERE record_id = ?",
                                                (record_id,))}
        found[record_id] = captures
    return found


def _holdings(conn: db.Connection, capture_id: str) -> set[str]:
    """Every record a capture holds: those it brought first, and those linked to it."""
    return {r for (r,) in conn.execute("SELECT id FROM record WHERE capture_id = ? UNION "
                                       "SELECT record_id FROM record_capture WHERE capture_id = ?",
                                       (capture_id, capture_id))}


def _whole_captures(conn: db.Connection, wanted: set[str]) -> tuple[set[str], set[str], list[dict[str, Any]]]:
    """The records of ``wanted`` that can go with every capture holding them, those captures, and the
    records deferred because a capture also holds records that cannot go (with the facts)."""
    disposed = {r for (r,) in conn.execute("SELECT record_id FROM disposed_record")}
    captures_of = _captures_of(conn, wanted)
    holdings: dict[str, set[str]] = {}
    for captures in captures_of.values():
        for capture_id in captures:
            if capture_id not in holdings:
                holdings[capture_id] = _holdings(conn, capture_id)
    keep = set(wanted)
    while True:
        whole = {c for c, held in holdings.items() if held <= keep | disposed}
        remaining = {r for r in keep if captures_of[r] <= whole}
        if remaining == keep:
            break
        keep = remaining
    deferred = []
    for record_id in sorted(wanted - keep):
        # The captures that hold records outside the disposition (else: those kept by such a capture's records).
        blocking = sorted(c for c in captures_of[record_id] if not holdings[c] <= wanted | disposed) or \
            sorted(c for c in captures_of[record_id] if c not in whole)
        others = len(set().union(*(holdings[c] for c in blocking)) - keep - disposed - {record_id})
        deferred.append({"id": record_id, "captures": blocking,
                         "reason": f"{', '.join(blocking)} also hold(s) {others} record(s) not in this disposition"})
    return keep, whole & set().union(*(captures_of[r] for r in keep)) if keep else set(), deferred


def _plan_id(stamp: str, author: str, ids: list[str]) -> str:
    return "plan-" + hashlib.sha256(canonical_json([stamp, author, ids])).hexdigest()[:16]


def make_plan(conn: db.Connection, config: Config, *, as_of: datetime, identity: keys.Identity, author: str,
              at: datetime) -> dict[str, Any]:
    """Compute what may be destroyed at ``as_of`` and store the plan, signed by ``identity``."""
    with officer_rows.transaction(conn):  # one snapshot: nothing arrives between the judgement and the row
        eligible, refused, counts = _judge(conn, config, _records(conn), as_of)
        held = holds.held(conn, (c.id for c in eligible), at)
        free = {c.id for c in eligible if c.id not in held}
        keep, captures, deferred = _whole_captures(conn, free)
        captures_of = _captures_of(conn, keep)
        records: list[dict[str, Any]] = [
            {"id": c.id, "custodian": c.custodian, "schedule": c.schedule, "authority": c.rule.authority,
             "rule": c.rule.period(), "eligible_since": iso(c.eligible_since), "captures": sorted(captures_of[c.id])}
            for c in eligible if c.id in keep]
        body = {"records": records, "captures": sorted(captures), "deferred": deferred,
                "held": [{"id": r, "holds": sorted(h)} for r, h in sorted(held.items())],
                "refused": refused, "counts": counts}
        stamp = iso(at)
        row = {"id": _plan_id(stamp, identity.recipient.signer, [r["id"] for r in records]), "at": stamp,
               "as_of": iso(as_of), "state": "planned", "author": author,
               "author_signer": identity.recipient.signer, "approver": None, "approver_signer": None,
               "approved_at": None, "body": canonical_json(body).decode("utf-8")}
        stored = officer_rows.write(conn, "plan", row, identity, at, replace=False)
    return stored


def plan(conn: db.Connection, plan_id: str) -> dict[str, Any]:
    row = officer_rows.row_of(conn, "retention_plan", plan_id)
    if row is None:
        raise NotFoundError(f"no disposition plan {plan_id!r}")
    return row


def plans(conn: db.Connection) -> list[dict[str, Any]]:
    return [plan(conn, p) for (p,) in conn.execute("SELECT id FROM retention_plan ORDER BY at, id")]


def approve(conn: db.Connection, plan_id: str, *, identity: keys.Identity, approver: str,
            at: datetime) -> dict[str, Any]:
    """A second officer approves a plan: refused to the plan's own author (the same signing key)."""
    with officer_rows.transaction(conn):
        row = plan(conn, plan_id)
        if row["state"] != "planned":
            raise InvalidArgument(f"plan {plan_id} is {row['state']} already", argument="PLAN-ID")
        if identity.recipient.signer == row["author_signer"]:
            raise InvalidArgument(f"plan {plan_id} was made with this signing key ({row['author_signer']}): a "
                                  "second officer, with another key, must approve it", argument="--identity")
        row.update(state="approved", approver=approver, approver_signer=identity.recipient.signer,
                   approved_at=iso(at))
        stored = officer_rows.write(conn, "plan", row, identity, at, replace=True)
    return stored


@dataclass(frozen=True)
class Disposal:
    certificate: dict[str, Any]
    checkpoint: tuple[int, int, int]
    #: With the bucket: the versions the certificate destroyed that the bucket refused to delete, each with
    #: its error code (``verify`` names them; ``dispose`` run again for the plan deletes them).
    objects_refused: list[dict[str, Any]] = field(default_factory=list)
    #: Run again for a plan disposed of already: True, and how many versions of its certificate were deleted now.
    finishing: bool = False
    objects_finished: int = 0


def _check_plan(config: Config, row: dict[str, Any], at: datetime) -> None:
    plan_id = row["id"]
    if row["state"] == "disposed":
        raise InvalidArgument(f"plan {plan_id} was disposed of already", argument="--plan")
    if config.two_person_approval and row["state"] != "approved":
        raise InvalidArgument(f"plan {plan_id} is not approved: retention.two_person_approval asks a second "
                              "officer to run 'twentyday retention approve' first", argument="--plan")
    if parse_iso(row["as_of"]) > at:
        raise InvalidArgument(f"plan {plan_id} is for {row['as_of']}: its records are not eligible before then",
                              argument="--plan")


def dispose(conn: db.Connection, config: Config, plan_id: str, *, identity: keys.Identity, disposed_by: str,
            at: datetime, objects: ObjectStore | None = None) -> Disposal:
    """Destroy what plan ``plan_id`` listed and may still go now; write the certificate of destruction.

    With the bucket (``objects``): before the transaction, each planned capture's versions are
    listed and checked (:func:`object_disposal.inspect`): one still locked or legally held keeps
    its capture, whose records are skipped with the reason; after the commit, exactly the versions
    the certificate lists are deleted (the refusals returned). A plan disposed of already whose
    certificate's versions the bucket still holds: those are deleted now, nothing else done."""
    inspection: object_disposal.Inspection | None = None
    if objects is not None:
        row = plan(conn, plan_id)
        if row["state"] == "disposed":
            return _finish(conn, objects, row)
        _check_plan(config, row, at)
        disposed = {c for (c,) in conn.execute("SELECT capture_id FROM disposed_capture")}
        inspection = object_disposal.inspect(objects, set(json.loads(row["body"])["captures"]) - disposed, at)
    with officer_rows.transaction(conn):
        row = plan(conn, plan_id)
        _check_plan(config, row, at)
        body = json.loads(row["body"])
        planned = {r["id"]: r for r in body["records"]}
        # Everything again, now: the rule, the row against the ledger, the holds.
        eligible, refused, _ = _judge(conn, config, _records(conn, planned), at)
        skipped = [{"id": r["id"], "reason": r["reason"]} for r in refused]
        gone = set(planned) - {r["id"] for r in _records(conn, planned)}
        skipped += [{"id": r, "reason": "destroyed already"} for r in sorted(gone)]
        judged = {c.id for c in eligible} | {r["id"] for r in refused} | gone
        skipped += [{"id": r, "reason": "not eligible now under its own rule"} for r in sorted(set(planned) - judged)]
        held = holds.held(conn, (c.id for c in eligible), at)
        skipped += [{"id": r, "reason": f"held by {', '.join(sorted(h))}"} for r, h in sorted(held.items())]
        free = {c.id for c in eligible if c.id not in held}
        # Only the captures the plan listed are destroyed: a record captured again since is kept whole.
        now_in = _captures_of(conn, free)
        again = {r for r in free if not now_in[r] <= set(body["captures"])}
        for r in sorted(again):
            later = ", ".join(sorted(now_in[r] - set(body["captures"])))
            skipped.append({"id": r, "reason": f"captured again since the plan (in {later})"})
        free -= again
        if inspection is not None:  # a capture whose objects are locked or held keeps every record it holds
            for capture_id, reason in sorted(inspection.blocked.items()):
                kept = sorted(_holdings(conn, capture_id) & free)
                skipped += [{"id": r, "reason": reason} for r in kept]
                free -= set(kept)
        keep, captures, deferred = _whole_captures(conn, free)
        skipped += [{"id": d["id"], "reason": d["reason"]} for d in deferred]
        certificate = _destroy(conn, row, body, planned, keep, captures, skipped, disposed_by, identity, at,
                               inspection)
    if db.dialect(conn) == "sqlite":
        # The deleted pages were zeroed (secure_delete); copy them over the database file and empty the log.
        busy, log_frames, copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    else:
        # PostgreSQL has no secure_delete: a deleted row stays in its page until VACUUM frees the space
        # and a later write reuses it, and the server's WAL and its backups are the operator's. VACUUM
        # (outside a transaction) at least frees it now; no log is left for this connection to empty.
        conn.execute("VACUUM keyslot, chunk, record_terms, record_terms_row")
        busy, log_frames, copied = 0, 0, 0
    refusals = object_disposal.delete(objects, certificate) if objects is not None else []
    return Disposal(certificate, (busy, log_frames, copied), refusals)


def _finish(conn: db.Connection, objects: ObjectStore, row: dict[str, Any]) -> Disposal:
    """A plan disposed of already: delete the versions its certificate destroyed that the bucket still holds."""
    found = conn.execute("SELECT id, body FROM disposition WHERE plan_id = ?", (row["id"],)).fetchone()
    left = object_disposal.remaining(objects, object_disposal.certified_versions(conn, found[0])) if found else []
    if not left:
        raise InvalidArgument(f"plan {row['id']} was disposed of already", argument="--plan")
    refusals = object_disposal.delete_versions(objects, left)
    certificate = {"id": found[0], **json.loads(found[1])}
    return Disposal(certificate, (0, 0, 0), refusals, finishing=True, objects_finished=len(left) - len(refusals))


def _destroy(conn: db.Connection, plan_row: dict[str, Any], body: dict[str, Any],
             planned: dict[str, dict[str, Any]], keep: set[str], captures: set[str], skipped: list[dict[str, Any]],
             disposed_by: str, identity: keys.Identity, at: datetime,
             inspection: object_disposal.Inspection | None = None) -> dict[str, Any]:
    stamp = iso(at)
    disposition_id = "disp-" + hashlib.sha256(canonical_json([plan_row["id"], stamp])).hexdigest()[:16]
    destroyed: list[dict[str, Any]] = []
    for capture_id in sorted(captures):
        slots = sorted([r, hashlib.sha256(bytes(s)).hexdigest()] for r, s in conn.execute(
            "SELECT recipient, sealed FROM keyslot WHERE capture_id = ?", (capture_id,)))
        blobs = [dict(zip(BLOB_COLUMNS, b, strict=True)) for b in conn.execute(
            f"SELECT {', '.join(BLOB_COLUMNS)} FROM blob WHERE capture_id = ? ORDER BY id", (capture_id,))]
        destroyed.append({"id": capture_id, "keyslots": slots, "blobs": blobs}
                         | ({"objects": inspection.objects(capture_id)} if inspection is not None else {}))
    records = [{"id": r, "custodian": planned[r]["custodian"], "schedule": planned[r]["schedule"],
                "authority": planned[r]["authority"], "rule": planned[r]["rule"],
                "eligible_since": planned[r]["eligible_since"]} for r in sorted(keep)]
    certificate = {
        "plan": plan_row["id"], "plan_author": plan_row["author"], "plan_author_signer": plan_row["author_signer"],
        "approver": plan_row["approver"], "approver_signer": plan_row["approver_signer"],
        "disposed_by": disposed_by, "at": stamp, "records": records, "record_count": len(records),
        "captures": destroyed, "skipped": skipped,
    }
    sqlite = db.dialect(conn) == "sqlite"
    if sqlite:
        conn.execute("PRAGMA secure_delete = ON")  # the connection's setting already; said again where it matters
    for capture in destroyed:
        conn.execute("DELETE FROM keyslot WHERE capture_id = ?", (capture["id"],))
        for blob in capture["blobs"]:
            conn.execute("DELETE FROM chunk WHERE blob_id = ?", (blob["id"],))
        conn.execute("INSERT INTO disposed_capture (capture_id, disposition_id, disposed_at) VALUES (?,?,?)",
                     (capture["id"], disposition_id, stamp))
    for record in records:
        conn.execute("DELETE FROM record_terms WHERE record_id = ?", (record["id"],))
        conn.execute("DELETE FROM record_terms_row WHERE created_utc = (SELECT coalesce(created_utc, '') FROM record "
                     "WHERE id = ?) AND record_id = ?", (record["id"], record["id"]))  # where that row was
        conn.execute("INSERT INTO disposed_record (record_id, disposition_id, disposed_at) VALUES (?,?,?)",
                     (record["id"], disposition_id, stamp))
    if records and sqlite:  # (PostgreSQL's record_terms is a plain table: its rows are gone)
        # FTS5 keeps a deleted row's tokens in older segments until they are merged: merge them all.
        conn.execute("INSERT INTO record_terms (record_terms) VALUES ('optimize')")
    officer_rows.write(conn, "disposition", {"id": disposition_id, "plan_id": plan_row["id"], "at": stamp,
                                             "disposed_by": disposed_by,
                                             "body": canonical_json(certificate).decode("utf-8")},
                       identity, at, replace=False)
    officer_rows.write(conn, "plan", {**plan_row, "state": "disposed"}, identity, at, replace=True)
    return {"id": disposition_id, **certificate}


def destroyed(conn: db.Connection, object_id: str) -> dict[str, Any] | None:
    """The tombstone of a destroyed record (or ``cap-`` capture): when, under which certificate and plan;
    None if it was not destroyed."""
    table, column = ("disposed_capture", "capture_id") if object_id.startswith("cap-") else \
        ("disposed_record", "record_id")
    found = conn.execute(f"SELECT d.disposition_id, d.disposed_at, p.plan_id FROM {table} d "
                         f"LEFT JOIN disposition p ON p.id = d.disposition_id WHERE d.{column} = ?",
                         (object_id,)).fetchone()
    if found is None:
        return None
    return {"id": object_id, "disposition": found[0], "destroyed_at": found[1], "plan": found[2]}


def mark_destroyed(conn: db.Connection, row: dict[str, Any]) -> dict[str, Any]:
    """A search result with a ``destroyed`` flag when its record was destroyed (its metadata is the tombstone)."""
    if destroyed(conn, row["id"]) is not None:
        row["flags"] = [*row["flags"], "destroyed"]
    return row
