"""The clock's reading of the index: the facts :func:`twentyday.compliance.evaluate.evaluate` needs.

What each capture holds of each conversation (:func:`capture_spans`), each configured custodian's
newest capture and since when it is expected, and the replies whose message is not archived — all
metadata, so the daemon (which cannot read sealed content) evaluates every alert itself. ``as_of``
reads the archive as it stood then (captures received by then); ``scope`` limits the reading to
what a batch touched.
"""

from __future__ import annotations

from datetime import UTC, datetime

from twentyday.canonical import iso, parse_iso
from twentyday.compliance.evaluate import CustodianFacts, Finding, Policy, ThreadGap, evaluate
from twentyday.config import Config
from twentyday.store import db
from twentyday.store.alerts import Scope
from twentyday.store.coverage import capture_spans


def findings(conn: db.Connection, config: Config, now: datetime, *, as_of: datetime | None = None,
             scope: Scope | None = None, custodian: str | None = None) -> list[Finding]:
    """The condition findings that hold at ``now`` (for ``as_of``: in the archive as it stood then)."""
    policy = Policy.from_config(config)
    spans = capture_spans(conn, custodian=custodian, as_of=as_of,
                          conversations=scope.conversations if scope is not None else None)
    custodians = custodian_facts(conn, config, as_of=as_of,
                                 only=scope.custodians if scope is not None else None, custodian=custodian)
    gaps = thread_gaps(conn, as_of=as_of, conversations=scope.conversations if scope is not None else None,
                       custodian=custodian)
    return evaluate(spans, custodians, gaps, policy, now)


def custodian_facts(conn: db.Connection, config: Config, *, as_of: datetime | None = None,
                    only: frozenset[str] | None = None, custodian: str | None = None) -> list[CustodianFacts]:
    """Each configured custodian's captures: how many, the newest, and since when they are expected
    (the first ledger entry of the custodian, else the archive's first entry)."""
    cutoff = iso(as_of.astimezone(UTC)) if as_of is not None else None
    facts = []
    archive_began = conn.execute("SELECT at FROM ledger ORDER BY seq LIMIT 1").fetchone()
    for entry in config.custodians:
        if (only is not None and entry.id not in only) or (custodian is not None and entry.id != custodian):
            continue
        where, params = "custodian = ?", [entry.id]
        if cutoff is not None:
            where += " AND received_at <= ?"
            params.append(cutoff)
        count, newest = conn.execute(f"SELECT count(*), max(received_at) FROM capture WHERE {where}", params).fetchone()
        newest_id = conn.execute(f"SELECT id FROM capture WHERE {where} AND received_at = ? LIMIT 1",
                                 [*params, newest]).fetchone() if newest else None
        began = conn.execute("SELECT min(at) FROM ledger WHERE kind = 'custodian' AND subject = ?",
                             (entry.id,)).fetchone()[0] or (archive_began[0] if archive_began else None)
        facts.append(CustodianFacts(entry.id, len(entry.personal), count, parse_iso(newest) if newest else None,
                                    newest_id[0] if newest_id else None, parse_iso(began) if began else None))
    return facts


def thread_gaps(conn: db.Connection, *, as_of: datetime | None = None,
                conversations: frozenset[tuple[str, str]] | None = None, custodian: str | None = None
                ) -> list[ThreadGap]:
    """Per conversation, the records replying to a message no record of the custodian is (message refs
    are keyed hashes of the platform's ids: mail In-Reply-To, Telegram replies, Slack threads)."""
    where = ["r.reply_ref != ''"]
    inner = ""
    params: list[str] = []
    if as_of is not None:
        cutoff = iso(as_of.astimezone(UTC))
        where.append("r.captured_at <= ?")
        inner = " AND m.captured_at <= ?"
        params.append(cutoff)
    if custodian is not None:
        where.append("r.custodian = ?")
        params.append(custodian)
    if conversations is not None:
        if not conversations:
            return []
        where.append(f"(r.custodian, r.conversation) IN (VALUES {', '.join('(?, ?)' for _ in conversations)})")
        params.extend(value for pair in sorted(conversations) for value in pair)
    if as_of is not None:
        params.append(params[0])  # the inner cutoff, bound last
    # SQLite before 3.44 has no string_agg; PostgreSQL has no group_concat (both: ',' between).
    ids, captures = (("group_concat(r.id)", "group_concat(DISTINCT r.capture_id)") if db.dialect(conn) == "sqlite"
                     else ("string_agg(r.id, ',')", "string_agg(DISTINCT r.capture_id, ',')"))
    sql = (
        f"SELECT r.custodian, r.conversation, max(r.platform), count(*), {ids}, "
        f"{captures}, min(r.captured_at) FROM record r "
        f"WHERE {' AND '.join(where)} AND NOT EXISTS (SELECT 1 FROM record m WHERE m.custodian = r.custodian "
        f"AND m.message_ref = r.reply_ref AND m.message_ref != ''{inner}) "
        "GROUP BY r.custodian, r.conversation ORDER BY r.custodian, r.conversation"
    )
    return [ThreadGap(cust, conv, platform, count, tuple(sorted(ids.split(",")))[:20],
                      tuple(sorted(captures.split(",")))[:20], parse_iso(first))
            for cust, conv, platform, count, ids, captures, first in conn.execute(sql, params)]
