"""The alert table and its lifecycle: open, update, resolve, escalate, close — each change ledgered.

Kinds and their severities are :mod:`twentyday.compliance.alerts`; which condition alerts should
be open at a moment is :mod:`twentyday.compliance.evaluate`. Alert details are written by
twentyday itself from metadata (counts, capture ids, dates, reason codes): never message
content, nor a name that came with an item (a file's, a zip member's: sealed with its capture).

One open alert per (kind, custodian, conversation) (a unique index). Two families:

- *event* alerts (``late_capture``, ``deleted_message``, ...) are raised at ingest
  (:func:`raise_alert`; a repeat raises the count) and stay open until an officer closes one
  with a note (:func:`close_alert`): a late record stays late;
- *condition* alerts (``deadline_approaching``, ``coverage_gap``, ``thread_gap``,
  ``custodian_silent``) follow the evaluation (:func:`reconcile`): opened when the condition
  starts to hold, their facts updated while it holds, resolved when it clears.

Any open alert is escalated (``escalated_at``) once open ``alerts.escalate_after_days``, or
once the export-by date in its facts has passed.

An alert is evidence: each change of its row goes through :func:`_changed`, which appends a
ledger entry (kind ``alert``, subject its id, payload the whole row) in the caller's transaction
before its checkpoint, so ``verify`` names an alert deleted, edited or added by hand, and the
entries are its history. Opening, escalating, resolving and closing one also queues its notice in
the outbox (:func:`twentyday.store.outbox.note_alert_event`, same transaction, same ledger):
nothing is lost to a crash between the change and its delivery.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from twentyday.canonical import canonical_json, iso, parse_iso
from twentyday.compliance.alerts import SEVERITY
from twentyday.compliance.evaluate import CONDITION_KINDS, Finding, Policy
from twentyday.errors import InvalidArgument, NotFoundError
from twentyday.store import db
from twentyday.store.ledger import Ledger
from twentyday.store.outbox import note_alert_event

#: An alert row's columns, in the order its ledger payload lists them.
ALERT_COLUMNS = ("id", "kind", "severity", "custodian", "conversation", "opened_at", "updated_at",
                 "resolved_at", "count", "detail", "escalated_at", "facts", "closed_by", "note")
#: Columns added by migration 5: in a payload only once set, so the entries of alerts written
#: before it still match their rows.
_LATER_COLUMNS = frozenset({"escalated_at", "facts", "closed_by", "note"})
log = logging.getLogger(__name__)

_SELECT = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alert"
_RETURNING = f" RETURNING {', '.join(ALERT_COLUMNS)}"


@dataclass(frozen=True)
class Alert:
    id: int | None  # None: a finding shown by --as-of that no row holds
    kind: str
    severity: str
    custodian: str
    conversation: str
    opened_at: str
    detail: str
    count: int
    facts: dict[str, Any] | None = None
    escalated_at: str | None = None
    resolved_at: str | None = None
    closed_by: str | None = None

    def as_json(self, full: bool = False) -> dict[str, Any]:
        """DESIGN §6's fields (and ``count``); with ``full``, the facts and the lifecycle too."""
        shown: dict[str, Any] = {k: getattr(self, k) for k in ("id", "kind", "severity", "custodian",
                                                               "conversation", "opened_at", "detail", "count")}
        if full:
            shown.update(facts=self.facts or {}, escalated=self.escalated_at is not None,
                         escalated_at=self.escalated_at, resolved_at=self.resolved_at, closed_by=self.closed_by)
        return shown

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Alert:
        return cls(row["id"], row["kind"], row["severity"], row["custodian"], row["conversation"], row["opened_at"],
                   row["detail"], row["count"], json.loads(row["facts"]) if row["facts"] else None,
                   row["escalated_at"], row["resolved_at"], row["closed_by"])


@dataclass
class Changes:
    """What one reconciliation changed (the scheduler logs the counts)."""

    opened: int = 0
    updated: int = 0
    resolved: int = 0
    escalated: int = 0

    @property
    def any(self) -> bool:
        return bool(self.opened or self.updated or self.resolved or self.escalated)

    def summary(self) -> str:
        return (f"{self.opened} opened, {self.updated} updated, {self.resolved} resolved, "
                f"{self.escalated} escalated")


class Touched(Protocol):
    """What a capture touched (the store's ``IngestResult``)."""

    @property
    def custodian(self) -> str | None: ...
    @property
    def duplicate(self) -> bool: ...
    @property
    def conversations(self) -> set[str]: ...


@dataclass(frozen=True)
class Scope:
    """Which alerts one evaluation answers for: after a batch, the custodians and conversations it
    touched; None everywhere means every alert (the timer's full evaluation)."""

    custodians: frozenset[str]
    conversations: frozenset[tuple[str, str]]

    @classmethod
    def touched(cls, results: Iterable[Touched | None]) -> Scope:
        """What these captures may have changed: their custodians, and their conversations."""
        custodians: set[str] = set()
        conversations: set[tuple[str, str]] = set()
        for result in results:
            if result is None or result.duplicate or result.custodian is None:
                continue
            custodians.add(result.custodian)
            conversations.update((result.custodian, conversation) for conversation in result.conversations)
        return cls(frozenset(custodians), frozenset(conversations))

    def covers(self, custodian: str, conversation: str) -> bool:
        return (custodian, conversation) in self.conversations or (conversation == "" and custodian in self.custodians)


def _row(values: Iterable[Any]) -> dict[str, Any]:
    return dict(zip(ALERT_COLUMNS, values, strict=True))


def _changed(conn: db.Connection, ledger: Ledger, row: dict[str, Any], event: str, now: datetime,
             before: dict[str, Any] | None = None) -> None:
    """Every change of an alert row comes here: ``event`` is opened, raised (a repeat), updated,
    resolved, escalated or closed; ``before``, the row as it was (None for a new one). The row's
    ledger entry is its evidence.

    A row that no longer matches its own newest entry was changed outside twentyday (an edited
    count, a planted open alert): its change is not ledgered, so the entry would not launder the
    edit — ``verify`` keeps naming it — and people are told of the alert as if it opened now,
    since nobody was told of the planted one."""
    notice = _NOTICES.get(event)
    if before is not None and _ledgered_text(ledger, str(before["id"])) != _payload_text(before):
        log.error("alert %s differs from its own ledger entry (changed outside twentyday): this %s is not "
                  "ledgered, so 'twentyday verify' keeps naming it", before["id"], event)
        notice = notice or "opened"
    else:
        ledger.append(iso(now), "alert", str(row["id"]), alert_payload(row))
    if notice is not None:  # people hear of a change of state, not of each repeat (its count says how often)
        note_alert_event(conn, ledger, int(row["id"]), notice, iso(now))


def _ledgered_text(ledger: Ledger, alert_id: str) -> str | None:
    """The row its newest entry commits to: its own, else the one an upgrade adopted it with
    (store/adopt.py: kind ``adopt``, subject ``alert <id>``; adopted only when it had none)."""
    own = ledger.latest("alert", alert_id)
    return own if own is not None else ledger.latest("adopt", f"alert {alert_id}")


def _payload_text(row: dict[str, Any]) -> str:
    return canonical_json(alert_payload(row)).decode("utf-8")


#: The lifecycle events people are told of, as the outbox names them (an officer's close resolves it).
_NOTICES = {"opened": "opened", "escalated": "escalated", "resolved": "resolved", "closed": "resolved"}


def raise_alert(conn: db.Connection, kind: str, custodian: str, conversation: str, detail: str,
                at: datetime, facts: dict[str, Any] | None = None) -> None:
    """Open the alert, or bump the one already open for the same kind, custodian and conversation.

    ``facts``: the latest occurrence's facts (JSON in the row); None keeps those it has."""
    stamp = iso(at)
    text = _facts_text(facts) if facts is not None else None
    found = conn.execute(f"{_SELECT} WHERE kind = ? AND custodian = ? AND conversation = ? AND resolved_at IS NULL",
                         (kind, custodian, conversation)).fetchone()
    before = None if found is None else _row(found)
    values = None if before is None else conn.execute(
        "UPDATE alert SET count = count + 1, updated_at = ?, detail = ?, facts = coalesce(?, facts) WHERE id = ?"
        + _RETURNING, (stamp, detail, text, before["id"])).fetchone()
    event = "raised"
    if values is None:
        event = "opened"
        values = conn.execute(
            "INSERT INTO alert (kind, severity, custodian, conversation, opened_at, updated_at, count, detail, "
            "facts) VALUES (?,?,?,?,?,?,1,?,?)" + _RETURNING,
            (kind, SEVERITY[kind], custodian, conversation, stamp, stamp, detail, text),
        ).fetchone()
    ledger = Ledger(conn)
    ledger.begin()
    _changed(conn, ledger, _row(values), event, at, before)
    ledger.flush()


def reconcile(conn: db.Connection, findings: Iterable[Finding], now: datetime, policy: Policy,
              scope: Scope | None = None) -> Changes:
    """Make the open condition alerts (in ``scope``) be ``findings``, and escalate what is due.

    Runs inside the caller's transaction (ledger entries included; the caller signs the checkpoint).
    """
    stamp = iso(now)
    changes = Changes()
    ledger = Ledger(conn)
    ledger.begin()
    wanted = {finding.key: finding for finding in findings}
    marks = ", ".join("?" * len(CONDITION_KINDS))
    open_rows = [_row(values) for values in conn.execute(
        f"{_SELECT} WHERE resolved_at IS NULL AND kind IN ({marks})", CONDITION_KINDS)]
    for row in open_rows:
        key = (row["kind"], row["custodian"], row["conversation"])
        if scope is not None and not scope.covers(row["custodian"], row["conversation"]):
            continue
        finding = wanted.get(key)
        facts = json.loads(row["facts"]) if row["facts"] else {}
        if finding is not None and (finding.identity is None or finding.identity == facts.get("covered_until")):
            text = _facts_text(finding.facts)
            if (row["facts"], row["detail"], row["count"]) != (text, finding.detail, finding.count):
                updated = conn.execute(
                    "UPDATE alert SET facts = ?, detail = ?, count = ?, updated_at = ? WHERE id = ?" + _RETURNING,
                    (text, finding.detail, finding.count, stamp, row["id"])).fetchone()
                _changed(conn, ledger, _row(updated), "updated", now, row)
                changes.updated += 1
            continue
        resolved = conn.execute("UPDATE alert SET resolved_at = ?, updated_at = ? WHERE id = ?" + _RETURNING,
                                (stamp, stamp, row["id"])).fetchone()
        _changed(conn, ledger, _row(resolved), "resolved", now, row)
        changes.resolved += 1
    still_open = {(kind, custodian, conversation) for kind, custodian, conversation in conn.execute(
        f"SELECT kind, custodian, conversation FROM alert WHERE resolved_at IS NULL AND kind IN ({marks})",
        CONDITION_KINDS)}
    for key, finding in wanted.items():
        if key in still_open or (scope is not None and not scope.covers(finding.custodian, finding.conversation)):
            continue
        opened = conn.execute(
            "INSERT INTO alert (kind, severity, custodian, conversation, opened_at, updated_at, count, detail, facts) "
            "VALUES (?,?,?,?,?,?,?,?,?)" + _RETURNING,
            (finding.kind, SEVERITY[finding.kind], finding.custodian, finding.conversation, stamp, stamp,
             finding.count, finding.detail, _facts_text(finding.facts))).fetchone()
        _changed(conn, ledger, _row(opened), "opened", now)
        changes.opened += 1
    changes.escalated = _escalate(conn, ledger, now, policy, scope)
    ledger.flush()
    return changes


def _escalate(conn: db.Connection, ledger: Ledger, now: datetime, policy: Policy, scope: Scope | None) -> int:
    stamp = iso(now)
    count = 0
    for values in list(conn.execute(f"{_SELECT} WHERE resolved_at IS NULL AND escalated_at IS NULL")):
        row = _row(values)
        if scope is not None and not scope.covers(row["custodian"], row["conversation"]):
            continue
        if now < policy.escalates_at(parse_iso(row["opened_at"]), _export_by(row["facts"])):
            continue
        escalated = conn.execute("UPDATE alert SET escalated_at = ?, updated_at = ? WHERE id = ?" + _RETURNING,
                                 (stamp, stamp, row["id"])).fetchone()
        _changed(conn, ledger, _row(escalated), "escalated", now, row)
        count += 1
    return count


def close_alert(conn: db.Connection, alert_id: int, note: str, closed_by: str, now: datetime) -> Alert:
    """An officer closes an event alert with a note of their own (ledgered, with who closed it)."""
    values = conn.execute(f"{_SELECT} WHERE id = ?", (alert_id,)).fetchone()
    if values is None:
        raise NotFoundError(f"no alert {alert_id}")
    row = _row(values)
    if row["resolved_at"] is not None:
        raise InvalidArgument(f"alert {alert_id} is already {'closed' if row['closed_by'] else 'resolved'} "
                              f"({row['resolved_at']})", argument="ID")
    if row["kind"] in CONDITION_KINDS:
        raise InvalidArgument(f"alert {alert_id} is a {row['kind']} alert: it resolves itself when its condition "
                              "clears (a new export, the missing message), so it cannot be closed by hand",
                              argument="ID")
    if not note.strip():
        raise InvalidArgument("say why it is closed: --note TEXT", argument="--note")
    stamp = iso(now)
    closed = conn.execute("UPDATE alert SET resolved_at = ?, updated_at = ?, closed_by = ?, note = ? WHERE id = ?"
                          + _RETURNING, (stamp, stamp, closed_by, note, alert_id)).fetchone()
    ledger = Ledger(conn)
    ledger.begin()
    _changed(conn, ledger, _row(closed), "closed", now, row)
    ledger.flush()
    return Alert.from_row(_row(closed))


def alert_payload(row: dict[str, Any]) -> dict[str, Any]:
    """What an alert's ledger entry commits to: the whole row (verify recomputes it from the index)."""
    return {"alert": {c: row[c] for c in ALERT_COLUMNS if c not in _LATER_COLUMNS or row[c] is not None}}


def open_alerts(conn: db.Connection, custodian: str | None = None, *, include_resolved: bool = False
                ) -> list[Alert]:
    """The open alerts (with ``include_resolved``, every alert), oldest first."""
    where = [] if include_resolved else ["resolved_at IS NULL"]
    params: list[str] = []
    if custodian:
        where.append("custodian = ?")
        params.append(custodian)
    sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY opened_at, id"
    return [Alert.from_row(_row(values)) for values in conn.execute(sql, params)]


def alerts_as_of(conn: db.Connection, findings: Iterable[Finding], at: datetime, policy: Policy,
                 custodian: str | None = None) -> list[Alert]:
    """What was (or will be) open at ``at``: event alerts opened by then and not resolved by then, and
    the condition ``findings`` evaluated at ``at`` (with the id of the row that held one then, if any).
    Read-only."""
    stamp = at
    shown: list[Alert] = []
    rows = [_row(values) for values in conn.execute(_SELECT + " ORDER BY opened_at, id")]
    held_then: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        if custodian and row["custodian"] != custodian:
            continue
        opened = parse_iso(row["opened_at"])
        resolved = parse_iso(row["resolved_at"]) if row["resolved_at"] else None
        if opened > stamp or (resolved is not None and resolved <= stamp):
            continue
        if row["kind"] in CONDITION_KINDS:
            held_then[(row["kind"], row["custodian"], row["conversation"])] = row
            continue
        escalated = row["escalated_at"] if row["escalated_at"] and parse_iso(row["escalated_at"]) <= stamp else None
        if escalated is None and stamp >= policy.escalates_at(opened, _export_by(row["facts"])):
            escalated = iso(policy.escalates_at(opened, _export_by(row["facts"])))
        shown.append(Alert(row["id"], row["kind"], row["severity"], row["custodian"], row["conversation"],
                           row["opened_at"], row["detail"], row["count"],
                           json.loads(row["facts"]) if row["facts"] else None, escalated, None, None))
    for finding in findings:
        if custodian and finding.custodian != custodian:
            continue
        held = held_then.get(finding.key)
        opened_at = parse_iso(held["opened_at"]) if held is not None else finding.since
        escalates = policy.escalates_at(opened_at, finding.export_by)
        shown.append(Alert(held["id"] if held is not None else None, finding.kind, SEVERITY[finding.kind],
                           finding.custodian, finding.conversation, iso(opened_at), finding.detail, finding.count,
                           finding.facts, iso(escalates) if stamp >= escalates else None, None, None))
    return sorted(shown, key=lambda a: (parse_iso(a.opened_at), a.id or 0, a.kind, a.custodian, a.conversation))


def _facts_text(facts: dict[str, Any]) -> str:
    return canonical_json(facts).decode("utf-8")


def _export_by(facts: str | None) -> datetime | None:
    if not facts:
        return None
    value = json.loads(facts).get("export_by")
    return parse_iso(value) if isinstance(value, str) else None
