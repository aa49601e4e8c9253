"""The index schema, as numbered migrations applied in order (``PRAGMA user_version``).

Nothing here holds message content in clear: bodies, subjects and attachment
names live in sealed blobs (``blob``/``chunk``); keyword search goes through
HMAC'd tokens (``record_terms``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import sqlite_utils

MIGRATIONS: tuple[str, ...] = (
    # 1: the archive
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE custodian (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, timezone TEXT NOT NULL, schedule TEXT NOT NULL
    );
    CREATE TABLE capture (
        id TEXT PRIMARY KEY,
        custodian TEXT,                 -- NULL: no configured custodian (kept, alerted)
        channel TEXT NOT NULL,          -- smtp | folder | cli
        source_name TEXT NOT NULL,
        source_hash TEXT NOT NULL UNIQUE, -- keyed hash of custodian + raw bytes
        received_at TEXT NOT NULL,
        parser TEXT NOT NULL,
        size INTEGER NOT NULL,
        raw_blob TEXT NOT NULL,
        envelope_blob TEXT,
        state TEXT NOT NULL,            -- ingested | quarantined | held
        reason TEXT NOT NULL,
        first_at TEXT, last_at TEXT, exported_at TEXT,
        message_count INTEGER NOT NULL,
        parent_capture TEXT
    );
    CREATE TABLE keyslot (
        capture_id TEXT NOT NULL, recipient TEXT NOT NULL, sealed BLOB NOT NULL,
        PRIMARY KEY (capture_id, recipient)
    );
    CREATE TABLE blob (
        id TEXT PRIMARY KEY,            -- keyed hash of the plaintext
        capture_id TEXT NOT NULL,       -- whose data key sealed it
        owner TEXT NOT NULL, slot TEXT NOT NULL,
        size INTEGER NOT NULL, chunks INTEGER NOT NULL,
        digest TEXT NOT NULL            -- sha256 over the sealed chunks, in order
    );
    CREATE TABLE chunk (
        blob_id TEXT NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY (blob_id, seq)
    );
    CREATE TABLE record (
        id TEXT PRIMARY KEY,
        dedup_key TEXT NOT NULL UNIQUE,
        custodian TEXT NOT NULL,
        platform TEXT NOT NULL,
        channel TEXT NOT NULL,
        conversation TEXT NOT NULL,
        sender TEXT NOT NULL,
        recipients TEXT NOT NULL,       -- JSON list
        direction TEXT NOT NULL,
        created_at TEXT,                -- original time with its offset; NULL = undated
        created_utc TEXT,
        time_reading TEXT,              -- JSON: raw, layout, day_first, decided_by, zone
        captured_at TEXT NOT NULL,      -- earliest capture
        deadline_at TEXT,
        deadline_rule TEXT NOT NULL,
        status TEXT NOT NULL,
        days_late INTEGER,
        capture_id TEXT NOT NULL,       -- earliest capture
        has_attachments INTEGER NOT NULL,
        incomplete INTEGER NOT NULL,
        edited INTEGER NOT NULL,
        flags TEXT NOT NULL,            -- JSON list
        message_ref TEXT NOT NULL,      -- keyed hash of the platform's message id ('' if none)
        reply_ref TEXT NOT NULL,        -- keyed hash of the id it replies to ('' if none)
        content_blob TEXT NOT NULL,
        schedule TEXT NOT NULL,
        retention TEXT NOT NULL
    );
    CREATE INDEX record_custodian_time ON record (custodian, created_utc);
    CREATE INDEX record_conversation ON record (custodian, conversation);
    CREATE TABLE record_capture (
        record_id TEXT NOT NULL, capture_id TEXT NOT NULL, captured_at TEXT NOT NULL,
        PRIMARY KEY (record_id, capture_id)
    );
    CREATE INDEX record_capture_by_capture ON record_capture (capture_id);
    CREATE TABLE attachment (
        record_id TEXT NOT NULL, n INTEGER NOT NULL, blob_id TEXT, size INTEGER NOT NULL,
        content_type TEXT NOT NULL, omitted INTEGER NOT NULL,
        PRIMARY KEY (record_id, n)
    );
    CREATE TABLE event (
        id TEXT PRIMARY KEY, capture_id TEXT NOT NULL, custodian TEXT, conversation TEXT NOT NULL,
        kind TEXT NOT NULL, at TEXT, detail_blob TEXT NOT NULL
    );
    CREATE INDEX event_capture ON event (capture_id);
    CREATE TABLE alert (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, severity TEXT NOT NULL, custodian TEXT NOT NULL,
        conversation TEXT NOT NULL, opened_at TEXT NOT NULL, updated_at TEXT NOT NULL,
        resolved_at TEXT, count INTEGER NOT NULL, detail TEXT NOT NULL
    );
    CREATE UNIQUE INDEX alert_open ON alert (kind, custodian, conversation) WHERE resolved_at IS NULL;
    CREATE TABLE hold (
        id TEXT PRIMARY KEY, name TEXT NOT NULL, custodian TEXT, conversation TEXT,
        start_utc TEXT, end_utc TEXT, reason TEXT NOT NULL, placed_by TEXT NOT NULL,
        placed_at TEXT NOT NULL, released_at TEXT
    );
    CREATE TABLE disclosure (
        id TEXT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        purpose TEXT NOT NULL, recipient TEXT NOT NULL, subjects TEXT NOT NULL, identity TEXT NOT NULL
    );
    CREATE TABLE ledger (
        seq INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, subject TEXT NOT NULL,
        payload TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL
    );
    CREATE INDEX ledger_subject ON ledger (kind, subject);
    CREATE TABLE checkpoint (
        seq INTEGER PRIMARY KEY, head TEXT NOT NULL, at TEXT NOT NULL, signature TEXT NOT NULL
    );
    CREATE TABLE escrow (
        recipient TEXT PRIMARY KEY, label TEXT NOT NULL, sealed BLOB NOT NULL, at TEXT NOT NULL
    );
    -- Only whole-token AND queries are needed: no positions (detail=none), no column sizes.
    CREATE VIRTUAL TABLE record_terms USING fts5 (
        record_id UNINDEXED, terms, tokenize = 'ascii', detail = none, columnsize = 0
    );
    """,
    # 2: one ledger entry per content pack; verify and disposition find a pack's records by it
    """
    CREATE INDEX record_content ON record (content_blob);
    """,
    # 3: who delivered each capture and the mail's authentication results (NULL: captured before)
    """
    ALTER TABLE capture ADD COLUMN delivered_by TEXT;  -- auth:<user> | relay:<address> | folder | cli
    ALTER TABLE capture ADD COLUMN origin_auth TEXT;   -- e.g. dkim=pass header.d=...; arc=none
    """,
    # 4: disclosures signed by the officer's own key (store/disclosures.py); verify requires a
    # signature on every disclosure whose ledger entry is at or after the mark (an empty ledger: 1)
    """
    ALTER TABLE disclosure ADD COLUMN signer TEXT;
    ALTER TABLE disclosure ADD COLUMN signature TEXT;
    INSERT OR REPLACE INTO meta (key, value)
        SELECT 'disclosures_signed_from', coalesce(max(seq), 0) + 1 FROM ledger;
    """,
    # 5: the alert lifecycle (store/alerts.py: reconcile, escalate, close) and what the clock reads:
    # replies whose message is missing (partial indexes: most records reply to nothing, and chat
    # exports without message ids have no ref), and each custodian's newest capture
    """
    ALTER TABLE alert ADD COLUMN escalated_at TEXT;  -- sent on to the records officers
    ALTER TABLE alert ADD COLUMN facts TEXT;         -- JSON: ids, dates, counts that justify it
    ALTER TABLE alert ADD COLUMN closed_by TEXT;     -- an officer closed it (resolved_at set too)
    ALTER TABLE alert ADD COLUMN note TEXT;          -- the officer's note when closing
    CREATE INDEX record_replies ON record (custodian, conversation) WHERE reply_ref != '';
    CREATE INDEX record_message_ref ON record (custodian, message_ref) WHERE message_ref != '';
    CREATE INDEX capture_custodian ON capture (custodian, received_at);
    """,
)


def connect(path: str) -> sqlite_utils.Database:
    """Open the index with the settings the archive's guarantees rest on."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
    # Large pages keep a 1 MiB sealed chunk in few overflow pages: verify reads sealed
    # bytes at close to file speed. Only takes effect when the file is created.
    conn.execute("PRAGMA page_size = 65536")
    db = sqlite_utils.Database(conn)
    db.enable_wal()
    # FULL: a commit is on disk before ingest returns (the spool item is removed after it).
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = OFF")
    conn.execute("PRAGMA secure_delete = ON")
    # Index keys are keyed hashes, so inserts land all over the B-trees: a 64 MiB page
    # cache keeps a large ingest from turning into random reads.
    conn.execute("PRAGMA cache_size = -65536")
    return db


#: Writes rows into a table: ``(table, columns, rows)``.
Inserter = Callable[[str, Sequence[str], Sequence[Sequence[Any]]], None]
#: Parameters bound per multi-row INSERT (at most SQLite's own limit, see :func:`insert_rows`).
MAX_BOUND_PARAMETERS = 131_072


def insert_rows(conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                verb: str = "INSERT") -> None:
    """Insert ``rows`` with few multi-row ``INSERT ... VALUES (...), (...)`` statements.

    One statement binds many rows and then runs in one step: far less per-row work
    than ``executemany``, and SQLite's work runs without the GIL. Callers insert in
    batches of a steady size, so the connection's statement cache keeps them prepared.
    """
    if not rows:
        return
    width = len(columns)
    limit = min(MAX_BOUND_PARAMETERS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    per_statement = max(1, limit // width)
    head = f"{verb} INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per_statement):
        part = rows[start:start + per_statement]
        conn.execute(head + ",".join([one] * len(part)), [value for row in part for value in row])


def migrate(db: sqlite_utils.Database) -> int:
    """Apply every migration not yet applied; returns the schema version."""
    conn = db.conn
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, script in enumerate(MIGRATIONS, start=1):
        if number <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    return version


def _statements(script: str) -> list[str]:
    """Split a migration into statements (none of ours has ';' inside a literal)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
