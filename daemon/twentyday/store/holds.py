"""Legal holds: a named matter's filter that freezes the disposition of every record it matches.

A hold is a filter, not a list: it is evaluated whenever disposition asks (plan and dispose), so
it holds records that arrive after it was placed too. ``--text`` is kept only as blind-index
tokens (the keyed hashes ``search --text`` matches), never as words. A hold with a time window
holds undated records too: nobody can show they fall outside it.

Every change (placed, released) is the whole row ledgered and signed by the officer
(:mod:`officer_rows`). Nothing here reaches a custodian: alerts, the notify outbox and reminders
never read this table, so no hold is revealed to the people whose records it keeps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twentyday.canonical import canonical_json, iso, parse_iso, utc_key
from twentyday.crypto import keys
from twentyday.errors import InvalidArgument, NotFoundError
from twentyday.store import db, officer_rows
from twentyday.store.search_index import participant_match


@dataclass(frozen=True)
class HoldFilter:
    custodian: str | None = None
    conversation: str | None = None
    participant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    #: Blind-index tokens of the words (Archive.term_tokens); None: no word filter.
    text_tokens: tuple[str, ...] | None = None

    def is_empty(self) -> bool:
        return not any((self.custodian, self.conversation, self.participant, self.since, self.until,
                        self.text_tokens))


def place_hold(conn: db.Connection, *, name: str, reason: str, scope: HoldFilter, expires: datetime | None,
               placed_by: str, identity: keys.Identity, at: datetime) -> dict[str, Any]:
    """Place a hold (its row and signed ledger entry, in one transaction). A hold must say why."""
    if not name.strip():
        raise InvalidArgument("a hold needs a name (the matter)", argument="--name")
    if not reason.strip():
        raise InvalidArgument("a hold needs a reason", argument="--reason")
    if scope.text_tokens is not None and not scope.text_tokens:
        raise InvalidArgument("no whole word to hold on (the blind index matches whole words)", argument="--text")
    if expires is not None and expires <= at:
        raise InvalidArgument("the expiry is not after now", argument="--expires")
    stamp = iso(at)
    hold_id = "hold-" + hashlib.sha256(canonical_json([stamp, name, reason, placed_by])).hexdigest()[:16]
    row: dict[str, Any] = {
        "id": hold_id, "name": name, "custodian": scope.custodian, "conversation": scope.conversation,
        "start_utc": utc_key(scope.since) if scope.since else None,
        "end_utc": utc_key(scope.until) if scope.until else None,
        "reason": reason, "placed_by": placed_by, "placed_at": stamp, "released_at": None,
        "participant": scope.participant,
        "text_tokens": json.dumps(list(scope.text_tokens)) if scope.text_tokens is not None else None,
        "expires_at": iso(expires) if expires else None, "released_by": None, "release_reason": None,
    }
    with officer_rows.transaction(conn):
        stored = officer_rows.write(conn, "hold", row, identity, at, replace=False)
    return stored


def release_hold(conn: db.Connection, hold_id: str, *, reason: str, released_by: str,
                 identity: keys.Identity, at: datetime) -> dict[str, Any]:
    if not reason.strip():
        raise InvalidArgument("say why the hold is released", argument="--reason")
    with officer_rows.transaction(conn):
        row = officer_rows.row_of(conn, "hold", hold_id)
        if row is None:
            raise NotFoundError(f"no hold {hold_id!r}")
        if row["released_at"] is not None:
            raise InvalidArgument(f"hold {hold_id} was released on {row['released_at']}", argument="ID")
        row.update(released_at=iso(at), released_by=released_by, release_reason=reason)
        stored = officer_rows.write(conn, "hold", row, identity, at, replace=True)
    return stored


def holds(conn: db.Connection) -> list[dict[str, Any]]:
    cursor = conn.execute("SELECT * FROM hold ORDER BY placed_at, id")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def hold(conn: db.Connection, hold_id: str) -> dict[str, Any]:
    row = officer_rows.row_of(conn, "hold", hold_id)
    if row is None:
        raise NotFoundError(f"no hold {hold_id!r}")
    return row


def active(row: dict[str, Any], at: datetime) -> bool:
    """Whether a hold freezes disposition at ``at``: not released, not expired."""
    if row["released_at"] is not None:
        return False
    return row["expires_at"] is None or parse_iso(row["expires_at"]) > at


def state(row: dict[str, Any], at: datetime) -> str:
    if row["released_at"] is not None:
        return "released"
    return "active" if active(row, at) else "expired"


def _where(row: dict[str, Any], *, sqlite: bool, words: bool = True) -> tuple[str, list[Any]]:
    """The hold's filter as SQL over ``record``; ``words=False`` leaves out its ``--text`` (matching more)."""
    where: list[str] = []
    params: list[Any] = []
    for column in ("custodian", "conversation"):
        if row[column]:
            where.append(f"record.{column} = ?")
            params.append(row[column])
    if row["participant"]:
        where.append(participant_match("record"))  # as search matches one
        params += [row["participant"], row["participant"]]
    # Undated records are held by a window: nothing shows they fall outside it.
    if row["start_utc"]:
        where.append("(record.created_utc IS NULL OR record.created_utc >= ?)")
        params.append(row["start_utc"])
    if row["end_utc"]:
        where.append("(record.created_utc IS NULL OR record.created_utc < ?)")
        params.append(row["end_utc"])
    if row["text_tokens"] is not None and words:
        tokens = json.loads(row["text_tokens"])
        if sqlite:
            where.append("record.id IN (SELECT record_id FROM record_terms WHERE record_terms MATCH ?)")
            params.append(" AND ".join(f'"{t}"' for t in tokens))
        else:  # the GIN index on the row's words (store/pg_schema.py), as search finds them
            where.append("record.id IN (SELECT record_id FROM record_terms "
                         "WHERE string_to_array(terms, ' ') @> ?::text[])")
            params.append(tokens)
    return (" AND ".join(where) or "1=1"), params


def matching(conn: db.Connection, row: dict[str, Any]) -> set[str]:
    """The ids of every record the hold's filter matches now (those that arrived after it included)."""
    where, params = _where(row, sqlite=db.dialect(conn) == "sqlite")
    return {r for (r,) in conn.execute(f"SELECT record.id FROM record WHERE {where}", params)}


def count_matching(conn: db.Connection, row: dict[str, Any]) -> int:
    where, params = _where(row, sqlite=db.dialect(conn) == "sqlite")
    return int(conn.execute(f"SELECT count(*) FROM record WHERE {where}", params).fetchone()[0])


def held(conn: db.Connection, record_ids: Iterable[str], at: datetime) -> dict[str, list[str]]:
    """Of ``record_ids``, those an active hold matches at ``at``, with the ids of the holds."""
    wanted = set(record_ids)
    found: dict[str, list[str]] = {}
    for row in holds(conn):
        if not active(row, at):
            continue
        for record_id in matching(conn, row) & wanted:
            found.setdefault(record_id, []).append(row["id"])
    return found


def capture_held(conn: db.Connection, capture_id: str, custodian: str, span: tuple[str, str] | None,
                 at: datetime) -> bool:
    """Whether an active hold may match a record of the capture being written (its objects are then
    written legally held): one it brought (the custodian's, created within ``span`` — UTC keys of its
    first and last — or undated) or one it links to.

    Asked before the capture's search words are in the index (a batch adds them at its commit): a
    hold's ``--text`` is left out here, so this errs on holding; :func:`captures_held` says exactly,
    later (placing or releasing a hold, disposition)."""
    for row in holds(conn):
        if not active(row, at):
            continue
        where, params = _where(row, sqlite=db.dialect(conn) == "sqlite", words=False)
        dated = "record.created_utc BETWEEN ? AND ? OR " if span is not None else ""
        brought = conn.execute(
            f"SELECT 1 FROM record WHERE record.custodian = ? AND ({dated}record.created_utc IS NULL) "
            f"AND record.capture_id = ? AND {where} LIMIT 1", [custodian, *(span or ()), capture_id, *params])
        linked = conn.execute(
            f"SELECT 1 FROM record_capture l JOIN record ON record.id = l.record_id WHERE l.capture_id = ? "
            f"AND {where} LIMIT 1", [capture_id, *params])
        if brought.fetchone() or linked.fetchone():
            return True
    return False


def captures_matched(conn: db.Connection, row: dict[str, Any], *, words: bool = True) -> set[str]:
    """Every capture holding a record the hold's filter matches now (the one that brought it, and those it is
    linked to: :func:`captures_held`), whatever the hold's state; ``words=False`` leaves out its ``--text``
    (the captures :func:`capture_held` may have written held)."""
    where, params = _where(row, sqlite=db.dialect(conn) == "sqlite", words=words)
    found = {c for (c,) in conn.execute(f"SELECT DISTINCT record.capture_id FROM record WHERE {where}", params)}
    found.update(c for (c,) in conn.execute(
        f"SELECT DISTINCT l.capture_id FROM record_capture l JOIN record ON record.id = l.record_id WHERE {where}",
        params))
    return found


def captures_held(conn: db.Connection, at: datetime) -> set[str]:
    """Every capture holding a record an active hold matches at ``at`` (their objects are legally held)."""
    found: set[str] = set()
    for row in holds(conn):
        if active(row, at):
            found |= captures_matched(conn, row)
    return found


def public(row: dict[str, Any], at: datetime, count: int | None = None) -> dict[str, Any]:
    """A hold as ``hold list/show --json`` print it: the scope in clear, except ``--text`` (tokens only)."""
    tokens = json.loads(row["text_tokens"]) if row["text_tokens"] else None
    out = {
        "id": row["id"], "name": row["name"], "reason": row["reason"], "state": state(row, at),
        "placed_by": row["placed_by"], "placed_at": row["placed_at"], "signer": row["signer"],
        "scope": {"custodian": row["custodian"], "conversation": row["conversation"],
                  "participant": row["participant"], "since": row["start_utc"], "until": row["end_utc"],
                  "text": f"{len(tokens)} word(s), kept as blind-index tokens only" if tokens else None},
        "expires_at": row["expires_at"], "released_at": row["released_at"], "released_by": row["released_by"],
        "release_reason": row["release_reason"],
    }
    if count is not None:
        out["records"] = count
    return out
