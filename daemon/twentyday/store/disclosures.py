"""The accounting of disclosures (Privacy Act, 5 U.S.C. 552a(c)); see docs/ARCHITECTURE.md.

Every opening of a record is a disclosure, accounted for before anything is decrypted:
when, by whom, what was done, why, for whom, which records and with which officer key.
"By whom" is the operating-system account that ran the opening, with any name the person
gave beside it: the environment (``USER``, ``LOGNAME``) is the caller's to set, the account
is not. The purpose must not be blank.

This module is the row itself and its table; :meth:`Archive.record_disclosure` writes a
row together with its ledger entry, so ``verify`` finds a disclosure removed or altered,
and :func:`twentyday.store.search.open_record` is the one way to open a record.

Each disclosure is signed with the disclosing officer's own Ed25519 key (the identity's
third block), over who, when, what, to whom, why, the result (``action``), the officer
keys and the ledger hash the entry extends (:meth:`Disclosure.message`): neither the
daemon host's keys nor anyone who holds the disk can write or alter one that ``verify``
accepts. Rows written before signing (``signer`` and ``signature`` NULL) rest on the
daemon's checkpoints alone.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import canonical_json, iso
from twentyday.errors import InvalidArgument
from twentyday.store import db

#: The action of an opening, of an opening that could not open the record, and of an export.
SHOW = "show"
FAILED = "failed"
EXPORT = "export"


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
    #: Fingerprint of the officer's signing key, and the base64 Ed25519 signature of :meth:`message`
    #: ('' on a disclosure not signed yet, and on rows written before disclosures were signed).
    signer: str = ""
    signature: str = ""
    #: The recipient's address (552a(c)(1)); '' when none was given (``show``) and on rows written
    #: before the column existed. Only a non-empty address is stored, ledgered and signed, so the
    #: rows, entries and signatures of disclosures without one are byte for byte what they were.
    recipient_address: str = ""

    @classmethod
    def new(cls, *, at: datetime, actor: str, action: str, purpose: str, recipient: str,
            subjects: Sequence[str], identity: str, recipient_address: str = "") -> Disclosure:
        stamp = iso(at)
        disclosure_id = "dis-" + hashlib.sha256(
            canonical_json([stamp, actor, list(subjects), purpose])).hexdigest()[:20]
        return cls(disclosure_id, stamp, actor, action, purpose, recipient, tuple(subjects), identity,
                   recipient_address=recipient_address)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Disclosure:
        """A stored row (``subjects`` as JSON text; NULL ``signer``/``signature`` before signing)."""
        values: dict[str, Any] = {name: row.get(name) for name in COLUMNS}
        values["subjects"] = tuple(json.loads(values["subjects"] or "[]"))
        values["signer"] = values["signer"] or ""
        values["signature"] = values["signature"] or ""
        values["recipient_address"] = values["recipient_address"] or ""
        return cls(**values)

    def message(self, prev: str) -> bytes:
        """What the officer signs: every field but the signature, and ``prev``, the ledger hash the
        disclosure's entry extends (so a signed disclosure cannot be moved to another place in the chain)."""
        if self.recipient_address:  # v2 signs the address too; v1 (none given) is unchanged
            return canonical_json(["twentyday/v2/disclosure", prev, self.id, self.at, self.actor, self.action,
                                   self.purpose, self.recipient, self.recipient_address, list(self.subjects),
                                   self.identity, self.signer])
        return canonical_json(["twentyday/v1/disclosure", prev, self.id, self.at, self.actor, self.action,
                               self.purpose, self.recipient, list(self.subjects), self.identity, self.signer])

    def signed(self, signing_key: ed25519.Ed25519PrivateKey, signer: str, prev: str) -> Disclosure:
        """This disclosure signed by the officer key ``signer`` names, as the entry after ``prev``."""
        named = dataclasses.replace(self, signer=signer, signature="")
        signature = base64.b64encode(signing_key.sign(named.message(prev))).decode()
        return dataclasses.replace(named, signature=signature)

    def signature_ok(self, verify_key: ed25519.Ed25519PublicKey, prev: str) -> bool:
        try:
            verify_key.verify(base64.b64decode(self.signature, validate=True), self.message(prev))
        except (InvalidSignature, ValueError):
            return False
        return True

    def row(self) -> dict[str, str]:
        """The stored row (and the ledger entry's payload): ``subjects`` as a JSON list; without
        ``recipient_address`` when there is none (the column stays NULL)."""
        row = {**dataclasses.asdict(self), "subjects": json.dumps(list(self.subjects))}
        if not self.recipient_address:
            del row["recipient_address"]
        return row

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


def insert_disclosure(conn: db.Connection, disclosure: Disclosure) -> None:
    """Store one row, inside the caller's transaction (which ledgers it too)."""
    row = disclosure.row()
    conn.execute(f"INSERT INTO disclosure ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)


def accounting(conn: db.Connection) -> list[Disclosure]:
    """Every disclosure, oldest first (what ``twentyday audit`` lists)."""
    return [Disclosure.from_row(dict(zip(COLUMNS, row, strict=True)))
            for row in conn.execute(f"SELECT {', '.join(COLUMNS)} FROM disclosure ORDER BY at, id")]
