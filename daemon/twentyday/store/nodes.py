"""Several intake nodes on one archive (its index in PostgreSQL): a node serves with the archive's secrets only.

Each node runs ``serve`` with a ``data_dir`` of its own (its spool, its serve lock, its
``integrity.json``) and a copy of the daemon secrets of the node that made the archive (README,
"Beyond one machine"). Both secrets must be the archive's. A node with another ledger key signs
checkpoints no pinned key checks; a node with another index key makes other keyed hashes, so the same
mail is not seen as a duplicate, its records' blind words are found by no other node's search, and
its captures' names differ.

The ledger key is checked against the archive's last signed checkpoint. The index key cannot be
checked against any keyed value of the index without knowing what it hashed, so the archive keeps
one made for the purpose (:data:`SECRETS_CHECK` in ``meta``): an HMAC of a fixed text under a key
derived for this purpose alone, which says nothing about any other keyed value. ``create`` writes it;
an archive made before it gets it from the first node that serves, after that node's ledger key was
found to be the archive's.
"""

from __future__ import annotations

from twentyday.crypto.secrets import DaemonSecrets
from twentyday.errors import IntegrityError
from twentyday.store import db
from twentyday.store.ledger import ledger_key_text, signed_head

#: The ``meta`` row that holds :func:`secrets_check` of the archive's index key.
SECRETS_CHECK = "daemon_secrets_check"
#: What a node whose secrets are not the archive's is told to do.
JOIN_HINT = ("copy data_dir/secrets from a node of this archive (README, 'Beyond one machine'), "
             "or give this node the config of its own archive")


def secrets_check(secrets: DaemonSecrets) -> str:
    """A value of the index key alone, to compare nodes by: ``HMAC(derived key, fixed text)``."""
    return secrets.derived("node-secrets-check").hex()


def record_secrets_check(conn: db.Connection, secrets: DaemonSecrets) -> None:
    """Keep :func:`secrets_check` in the archive, unless it holds one already (the first node's stays)."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                 (SECRETS_CHECK, secrets_check(secrets)))


def check_node(conn: db.Connection, secrets: DaemonSecrets, where: str) -> None:
    """Refuse (:class:`IntegrityError`) unless ``secrets`` are the archive's: its last checkpoint is
    signed by their ledger key, and its secrets check is their index key's. ``where``: the secrets'
    folder, for the message."""
    own_key = ledger_key_text(secrets.verify_key)
    head = signed_head(conn)
    if head is not None and not head.signed_by(secrets.verify_key):
        raise IntegrityError(f"{where}: the ledger signing key ({own_key}) did not sign the archive's last "
                             f"checkpoint (seq {head.seq}): these are not the archive's daemon secrets; "
                             + JOIN_HINT)
    record_secrets_check(conn, secrets)
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (SECRETS_CHECK,)).fetchone()
    if row is None or row[0] != secrets_check(secrets):
        raise IntegrityError(f"{where}: the index key is not the archive's (its keyed hashes would not match "
                             "the other nodes'): these are not the archive's daemon secrets; " + JOIN_HINT)


def holds_archive(uri: str) -> bool:
    """Whether the PostgreSQL database ``uri`` names holds an index already (``create`` must not make one:
    a node joins that archive by a copy of its secrets instead)."""
    from twentyday.store import pg_schema, postgres  # psycopg: imported only for an index in PostgreSQL

    conn = postgres.connect(uri)
    try:
        return pg_schema.version_on(conn) > 0
    finally:
        conn.close()
