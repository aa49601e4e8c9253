"""The accounting of disclosures as an officer hands it out (``twentyday audit``).

The whole accounting, or its part in a window of time, or the part one person may ask for
under 5 U.S.C. 552a(c)(3): the disclosures of records about them. A record is about a person
when they are its sender or one of its recipients (:func:`twentyday.store.search_index.participant_match`,
the same test as ``search --participant``). Each disclosure in a person's accounting shows only
the ids and the count of THEIR records in it, never the other people's; its ``signature`` is
left blank there, because the officer signed the whole list of records, which is not the
person's to see (``audit`` without ``--participant`` and ``verify`` show and check it).

Finding a person's part walks the records each disclosure names and looks each one up by the
record's primary key: the cost follows the number of records ever disclosed, not the size of the
archive, and no new index is needed. Openings of a capture (``show CAPTURE-ID``) disclose a
capture's row, not records, and are not counted as disclosures of records about anyone.

Rows for output are made generically from :class:`Disclosure`'s fields, so a field added to it
appears in ``--json`` and ``--csv`` without a change here.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twentyday.canonical import parse_iso
from twentyday.store import db
from twentyday.store.disclosures import COLUMNS, Disclosure, accounting
from twentyday.store.search_index import participant_match

#: What ``audit --json`` and ``audit --csv`` give for each disclosure, in this order.
FIELDS = (*COLUMNS, "record_count")


@dataclass(frozen=True)
class Request:
    """Which part of the accounting: everything, a window (``since`` inclusive, ``until`` exclusive),
    and for ``participant`` only the disclosures of records about that person."""

    participant: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def _in_window(disclosure: Disclosure, request: Request) -> bool:
    at = parse_iso(disclosure.at)
    return (request.since is None or at >= request.since) and (request.until is None or at < request.until)


def about_participant(conn: db.Connection, participant: str) -> list[Disclosure]:
    """The disclosures of records about ``participant``, oldest first, each narrowed to that person's
    records (in the order the disclosure named them) and with its signature left blank."""
    if db.dialect(conn) == "sqlite":
        theirs = (f"SELECT json_group_array(named.value) FROM json_each(disclosure.subjects) AS named "
                  f"JOIN record ON record.id = named.value WHERE {participant_match('record')}")
    else:
        # In the order named (json_agg of no rows is NULL: read as "[]" below). Each record is read
        # in a subquery by its key, not joined: PostgreSQL's planner may turn a join around and read
        # the person's records whole first, which on a small table it does.
        theirs = ("SELECT json_agg(named.value ORDER BY named.n)::text FROM json_array_elements_text("
                  "disclosure.subjects::json) WITH ORDINALITY AS named(value, n) "
                  f"WHERE (SELECT {participant_match('record')} FROM record WHERE record.id = named.value)")
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)}, ({theirs}) FROM disclosure ORDER BY at, id",
                        (participant, participant))
    found = []
    for row in rows:
        records = tuple(json.loads(row[-1] or "[]"))
        if records:
            disclosure = Disclosure.from_row(dict(zip(COLUMNS, row[:-1], strict=True)))
            found.append(dataclasses.replace(disclosure, subjects=records, signature=""))
    return found


def listing(conn: db.Connection, request: Request) -> list[Disclosure]:
    """The part of the accounting ``request`` asks for, oldest first."""
    found = accounting(conn) if request.participant is None else about_participant(conn, request.participant)
    return [d for d in found if _in_window(d, request)]


def as_row(disclosure: Disclosure) -> dict[str, Any]:
    """One disclosure for ``--json``: every field of the row, ``subjects`` as a list, and its count."""
    return {**disclosure.as_json(), "record_count": len(disclosure.subjects)}


def csv_cells(disclosure: Disclosure) -> list[str]:
    """One disclosure as a CSV row in :data:`FIELDS` order; a list of ids is written space-separated
    (ids never hold a space)."""
    row = as_row(disclosure)
    return [" ".join(map(str, value)) if isinstance(value, list | tuple) else ("" if value is None else str(value))
            for value in (row[name] for name in FIELDS)]


def recipient_text(disclosure: Disclosure) -> str:
    """The recipient as a person reads it: the name, and the address when the disclosure has one."""
    address = str(getattr(disclosure, "recipient_address", "") or "")
    return f"{disclosure.recipient} <{address}>" if address else disclosure.recipient

