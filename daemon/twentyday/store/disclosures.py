"""The accounting of disclosures (Privacy Act, 5 U.S.C. 552a(c)); see docs/ARCHITECTURE.md.

Every opening of a record is a disclosure, accounted for before anything is decrypted:
when, by whom, what was done, why, for whom, which records and with which officer key.
"By whom" is the operating-system account that ran the opening, with any name the person
gave beside it: the environment (``USER``, ``LOGNAME``) is the caller's to set, the account
is not. The purpose must not be blank.

This module is the row itself and its table; :meth:`Archive.record_disclosure` writes a
row together with its ledger entry, so ``verify`` finds a disclosure removed or altered,
and :func:`twentyday.store.search.open_record` is the one way to open a record.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pwd
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from twentyday.canonical import canonical_json, iso
from twentyday.errors import InvalidArgument

#: The action of an opening, and of an opening that could not open the record.
SHOW = "show"
FAILED = "failed"


@dataclass(frozen=True)
class Disclosure:
    """One entry of the accounting; the fields are the ``disclosure`` table's columns, in order."""

    id: str
    at: str
    actor: str
    action: str
    purpose: str
    recipient: str
    subjects: tuple[str, ...]
    identity: str

    @classmethod
    def new(cls, *, at: datetime, actor: str, action: str, purpose: str, recipient: str,
            subjects: Sequence[str], identity: str) -> Disclosure:
        stamp = iso(at)
        disclosure_id = "dis-" + hashlib.sha256(
            canonical_json([stamp, actor, list(subjects), purpose])).hexdigest()[:20]
        return cls(disclosure_id, stamp, actor, action, purpose, recipient, tuple(subjects), identity)

    def row(self) -> dict[str, str]:
        """The stored row (and the ledger entry's payload): ``subjects`` as a JSON list."""
        return {**dataclasses.asdict(self), "subjects": json.dumps(list(self.subjects))}

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "subjects": list(self.subjects)}


COLUMNS = tuple(field.name for field in dataclasses.fields(Disclosure))


def require_purpose(purpose: str) -> str:
    """The purpose as given, refused when blank: an opening must say why."""
    if not purpose.strip():
        raise InvalidArgument("say why the record is opened", argument="purpose")
    return purpose


def disclosing_actor(named: str | None) -> str:
    """Who discloses: the operating-system account, and the name given (``--actor``) beside it."""
    account = pwd.getpwuid(os.getuid()).pw_name
    return account if not named or named == account else f"{named} (account {account})"


def insert_disclosure(conn: sqlite3.Connection, disclosure: Disclosure) -> None:
    """Store one row, inside the caller's transaction (which ledgers it too)."""
    conn.execute(f"INSERT INTO disclosure ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})",
                 disclosure.row())


def accounting(conn: sqlite3.Connection) -> list[Disclosure]:
    """Every disclosure, oldest first (what ``twentyday audit`` lists)."""
    found = []
    for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM disclosure ORDER BY at, id"):
        values: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
        values["subjects"] = tuple(json.loads(values["subjects"]))
        found.append(Disclosure(**values))
    return found
