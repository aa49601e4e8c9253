"""Rows an officer writes (holds, disposition plans, certificates), signed with the officer's own key.

Each such row is ledgered whole (``{kind: row}``) in the transaction that writes it, and signed
with the officer's Ed25519 key over the row and the ledger hash its entry extends, as a
disclosure is (:mod:`disclosures`): neither the daemon's key nor the disk can write or alter
one that ``verify`` accepts, nor move it in the chain. ``verify`` checks every such entry,
not only the latest of a row, so a plan keeps its author's signature after a second officer
approved it.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday.canonical import canonical_json, iso
from twentyday.crypto import keys
from twentyday.errors import KeyMaterialError
from twentyday.store import db
from twentyday.store.ledger import Ledger

#: The ledger kinds (and tables) of officer-signed rows, beside ``disclosure``.
OFFICER_KINDS = {"hold": "hold", "plan": "retention_plan", "disposition": "disposition"}
NO_SIGNING_KEY = ("this identity has no signing key, so it cannot sign: run 'twentyday keys add-signing KEY', "
                  "then give the config the .pub it rewrites")


def message(kind: str, row: Mapping[str, Any], prev: str) -> bytes:
    """What the officer signs: the row without its signature, and the ledger hash its entry extends."""
    return canonical_json([f"twentyday/v1/{kind}", prev, {k: v for k, v in row.items() if k != "signature"}])


def signed(kind: str, row: dict[str, Any], identity: keys.Identity, prev: str) -> dict[str, Any]:
    if identity.signing_key is None:
        raise KeyMaterialError(NO_SIGNING_KEY)
    named = {**row, "signer": identity.recipient.signer, "signature": ""}
    signature = base64.b64encode(identity.signing_key.sign(message(kind, named, prev))).decode()
    return {**named, "signature": signature}


def signature_ok(kind: str, row: Mapping[str, Any], verify_key: ed25519.Ed25519PublicKey, prev: str) -> bool:
    try:
        verify_key.verify(base64.b64decode(str(row.get("signature") or ""), validate=True), message(kind, row, prev))
    except (InvalidSignature, ValueError):
        return False
    return True


def write(conn: db.Connection, kind: str, row: dict[str, Any], identity: keys.Identity, at: datetime,
          *, replace: bool) -> dict[str, Any]:
    """Sign ``row`` as the entry after the head, store it (insert, or ``replace`` the row of that id) and
    ledger it, inside the caller's :func:`db.begin_write` transaction. Returns the stored row."""
    ledger = Ledger(conn)
    ledger.begin()
    stored = signed(kind, row, identity, ledger.head.hash)
    table = OFFICER_KINDS[kind]
    columns = list(stored)
    # Replacing sets every column but the key: ``stored`` is the whole row (read by row_of, then changed),
    # and the tables replaced in (hold, retention_plan) have no unique key but ``id``.
    upsert = (" ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
              if replace else "")
    conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}){upsert}",
                 [stored[c] for c in columns])
    ledger.append(iso(at), kind, str(stored["id"]), {kind: stored})
    ledger.flush()
    return stored


@contextlib.contextmanager
def transaction(conn: db.Connection) -> Iterator[None]:
    """:func:`db.begin_write`: the head read, the checks and the writes in one snapshot no one else writes."""
    db.begin_write(conn)
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def row_of(conn: db.Connection, table: str, row_id: str) -> dict[str, Any] | None:
    cursor = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (row_id,))
    found = cursor.fetchone()
    if found is None:
        return None
    return dict(zip([d[0] for d in cursor.description], found, strict=True))


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None
