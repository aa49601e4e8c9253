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

from twentyday.errors import ArchiveVersionError
from twentyday.store import db

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
    # 5: no schema change. Rows of the tables issue 12 put under the ledger (alerts, custodians,
    # escrow, each capture's blob rows, the blind-word index) written before that have no entry:
    # the writer that migrates across this step adopts them (store/adopt.py) in its transaction.
    """
    -- adoption: see store/adopt.py
    """,
    # 6: the alert outbox (store/outbox.py). The store writes an alert_event in the transaction
    # that changes the alert; notify fans it out into one delivery per sink and recipient and
    # drains those. Both are ledgered; next_attempt_at is scheduling only (not ledgered).
    """
    CREATE TABLE alert_event (
        id INTEGER PRIMARY KEY, alert_id INTEGER NOT NULL, event TEXT NOT NULL, at TEXT NOT NULL,
        fanned_out_at TEXT              -- NULL until notify has made its deliveries
    );
    CREATE INDEX alert_event_waiting ON alert_event (id) WHERE fanned_out_at IS NULL;
    CREATE TABLE delivery (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,       -- ev:<alert_event>:<sink>:<recipient> | digest:<day>:<recipient>
        alert_event INTEGER,            -- NULL for a digest
        alert_id INTEGER,
        event TEXT NOT NULL,            -- opened | escalated | resolved | reminder | digest
        sink TEXT NOT NULL,             -- email | journal | webhook
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,       -- stable across retries: webhook-id, Message-ID
        created_at TEXT NOT NULL,
        state TEXT NOT NULL,            -- pending | delivered | failed | disabled
        attempts INTEGER NOT NULL,
        last_attempt_at TEXT,
        last_error TEXT NOT NULL,       -- a stable code (http_500, timeout, smtp_451), '' if none
        settled_at TEXT,
        next_attempt_at TEXT
    );
    CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE state = 'pending';
    """,
    # 7: the compliance summary reads covering indexes, never the table (store/summary.py): counts
    # by custodian, status, direction and days late in index order, and where each conversation's
    # coverage ends. The second replaces record_conversation, a prefix of it.
    """
    CREATE INDEX record_summary ON record (custodian, status, direction, days_late, captured_at);
    CREATE INDEX record_conversation_end ON record (custodian, conversation, platform, created_utc, captured_at);
    DROP INDEX record_conversation;
    """,
    # 8: the alert lifecycle (store/alerts.py: reconcile, escalate, close) and what the clock reads:
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
    # 9: what each capture holds of each conversation (store/coverage.py), kept by the writer as each
    # capture is written, so the clock reads a row per (capture, conversation) instead of grouping every
    # record and link. Derived data, not evidence: recomputed from record and record_capture (as here,
    # which fills it for an upgraded archive), never ledgered; verify compares it with that recomputation.
    # Dated records only (undated ones hold no span). Keyed by platform too, so a read that leaves
    # forwarded mail out sees exactly the records the old grouped read saw.
    """
    CREATE TABLE capture_span (
        capture_id TEXT NOT NULL, custodian TEXT NOT NULL, conversation TEXT NOT NULL, platform TEXT NOT NULL,
        first_utc TEXT NOT NULL, last_utc TEXT NOT NULL, messages INTEGER NOT NULL,
        PRIMARY KEY (custodian, conversation, capture_id, platform)
    ) WITHOUT ROWID;
    INSERT INTO capture_span (capture_id, custodian, conversation, platform, first_utc, last_utc, messages)
    SELECT capture_id, custodian, conversation, platform, min(created_utc), max(created_utc), count(*) FROM (
        SELECT r.capture_id, r.custodian, r.conversation, r.platform, r.created_utc FROM record r
        WHERE r.created_utc IS NOT NULL
        UNION ALL
        SELECT l.capture_id, r.custodian, r.conversation, r.platform, r.created_utc
        FROM record_capture l JOIN record r ON r.id = l.record_id WHERE r.created_utc IS NOT NULL
    ) GROUP BY capture_id, custodian, conversation, platform;
    """,
    # 10: the recipient's address in the accounting of disclosures (5 U.S.C. 552a(c)(1): "the name
    # and address of the person or agency to whom the disclosure is made"); an export names it.
    # NULL on rows written before, and on a disclosure that names none (store/disclosures.py: such
    # a row's ledger payload and signed message are exactly what they were before this column).
    """
    ALTER TABLE disclosure ADD COLUMN recipient_address TEXT;
    """,
    # 11: records management (store/holds.py, store/disposition.py). Legal holds get the rest of their
    # filter (participant, blind-index tokens of --text: never the words), an expiry, who released
    # them and why, and the officer's signature; disposition plans, certificates of destruction, and
    # the tombstones of what a certificate destroyed (the record and capture rows stay: metadata).
    # Every row is ledgered whole and signed by the officer who wrote it (store/officer_rows.py).
    """
    ALTER TABLE hold ADD COLUMN participant TEXT;
    ALTER TABLE hold ADD COLUMN text_tokens TEXT;     -- JSON list of blind-index tokens, or NULL
    ALTER TABLE hold ADD COLUMN expires_at TEXT;
    ALTER TABLE hold ADD COLUMN released_by TEXT;
    ALTER TABLE hold ADD COLUMN release_reason TEXT;
    ALTER TABLE hold ADD COLUMN signer TEXT;
    ALTER TABLE hold ADD COLUMN signature TEXT;
    CREATE TABLE retention_plan (
        id TEXT PRIMARY KEY, at TEXT NOT NULL, as_of TEXT NOT NULL, state TEXT NOT NULL, -- planned|approved|disposed
        author TEXT NOT NULL, author_signer TEXT NOT NULL, approver TEXT, approver_signer TEXT, approved_at TEXT,
        body TEXT NOT NULL,                 -- canonical JSON: records, captures, deferred
        signer TEXT NOT NULL, signature TEXT NOT NULL
    );
    CREATE TABLE disposition (
        id TEXT PRIMARY KEY, plan_id TEXT NOT NULL UNIQUE, at TEXT NOT NULL, disposed_by TEXT NOT NULL,
        body TEXT NOT NULL,                 -- canonical JSON: the certificate of destruction
        signer TEXT NOT NULL, signature TEXT NOT NULL
    );
    CREATE TABLE disposed_record (
        record_id TEXT PRIMARY KEY, disposition_id TEXT NOT NULL, disposed_at TEXT NOT NULL
    );
    CREATE TABLE disposed_capture (
        capture_id TEXT PRIMARY KEY, disposition_id TEXT NOT NULL, disposed_at TEXT NOT NULL
    );
    """,
    # 12: search at scale (store/search.py): every filter has an index whose order is the results'
    # (creation time), so a search reads about as many rows as it shows (a status walks the time
    # index: four values, one in most records; an index of its own cost ingest more than it saved).
    # A sender is found through an index on lower(sender) (SQLite keeps it, like every index); a
    # recipient, in a list SQLite cannot index, through record_participant (each record's
    # recipients, lower-cased as SQLite's lower() does, '' for an undated record's time; kept by
    # triggers on record); record_terms_row is where each record's blind-word row is (by that row's
    # rowid, so verify reads it beside the rows in one pass, and by the record's time and id, which
    # grow as records come, so no index of it is written at random places; kept by
    # schema.insert_rows, and emptied of a record deleted), with which a search that walks records
    # in time order tests their words.
    # Both tables are derived, never ledgered, recomputed here for an upgraded archive and compared
    # with their sources by verify (store/search_index.py). Whatever deletes a record's blind-word
    # row alone deletes its row here. Safe to run again (IF NOT EXISTS, OR IGNORE/REPLACE).
    """
    CREATE INDEX IF NOT EXISTS record_time ON record (created_utc);
    CREATE INDEX IF NOT EXISTS record_conversation_time ON record (conversation, created_utc);
    CREATE INDEX IF NOT EXISTS record_platform_time ON record (platform, created_utc);
    CREATE INDEX IF NOT EXISTS record_sender_time ON record (lower(sender), created_utc);
    CREATE TABLE IF NOT EXISTS record_participant (
        participant TEXT NOT NULL, created_utc TEXT NOT NULL, record_id TEXT NOT NULL,
        PRIMARY KEY (participant, created_utc, record_id)
    ) WITHOUT ROWID;
    CREATE TRIGGER IF NOT EXISTS record_participant_insert AFTER INSERT ON record
    WHEN new.recipients != '[]' BEGIN
        INSERT OR IGNORE INTO record_participant (participant, created_utc, record_id)
        SELECT lower(value), coalesce(new.created_utc, ''), new.id FROM json_each(new.recipients) WHERE value != '';
    END;
    CREATE TRIGGER IF NOT EXISTS record_search_index_delete AFTER DELETE ON record BEGIN
        DELETE FROM record_participant WHERE created_utc = coalesce(old.created_utc, '') AND record_id = old.id
            AND participant IN (SELECT lower(value) FROM json_each(old.recipients));
        DELETE FROM record_terms_row WHERE created_utc = coalesce(old.created_utc, '') AND record_id = old.id;
    END;
    INSERT OR IGNORE INTO record_participant (participant, created_utc, record_id)
        SELECT lower(j.value), coalesce(r.created_utc, ''), r.id FROM record r, json_each(r.recipients) j
        WHERE r.recipients != '[]' AND j.value != '';
    CREATE TABLE IF NOT EXISTS record_terms_row (
        terms_rowid INTEGER PRIMARY KEY, created_utc TEXT NOT NULL, record_id TEXT NOT NULL
    );
    CREATE UNIQUE INDEX IF NOT EXISTS record_terms_row_record ON record_terms_row (created_utc, record_id);
    INSERT OR REPLACE INTO record_terms_row (terms_rowid, created_utc, record_id)
        SELECT t.rowid, coalesce(r.created_utc, ''), t.record_id
        FROM record_terms t JOIN record r ON r.id = t.record_id;
    """,
)

#: An archive migrated across this step needs the daemon's signing key (:func:`migrate`'s ``adopt``).
ADOPTION_MIGRATION = next(n for n, script in enumerate(MIGRATIONS, start=1) if "adoption: see store/adopt.py" in script)


def connect(path: str) -> sqlite_utils.Database:
    """Open the index with the settings the archive's guarantees rest on (SQLite's own: the file, its
    PRAGMAs, WAL; what the store does with it goes through :mod:`db`)."""
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


def insert_rows(conn: db.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                verb: str = "INSERT") -> None:
    """Insert ``rows`` with few multi-row ``INSERT ... VALUES (...), (...)`` statements.

    One statement binds many rows and then runs in one step: far less per-row work
    than ``executemany``, and SQLite's work runs without the GIL. Callers insert in
    batches of a steady size, so the connection's statement cache keeps them prepared.
    """
    if not rows:
        return
    if table != "record_terms":
        _insert_values(conn, table, columns, rows, verb)
        return
    # Blind-word rows, and where each is (record_terms_row, migration 12): derived in the same step.
    last = conn.execute("SELECT rowid FROM record_terms ORDER BY rowid DESC LIMIT 1").fetchone()
    _insert_values(conn, table, columns, rows, verb)
    derive_terms_rows(conn, last[0] if last else 0)


def derive_terms_rows(conn: db.Connection, after: int) -> None:
    """Where each blind-word row past rowid ``after`` is (``record_terms_row``, derived data)."""
    # SQLite's own REPLACE, kept on purpose: the table has two unique keys (terms_rowid, and
    # (created_utc, record_id)), and a record given a new word row must lose its old entry, found
    # by the second key, whichever key conflicts; a batch naming a record twice keeps its last row.
    # ON CONFLICT names one key, and PostgreSQL refuses to touch a row twice in one statement, so
    # its text is two statements: DELETE the entries either key of the new rows meets, then
    # INSERT ... SELECT DISTINCT ON (created_utc, record_id) ... ORDER BY created_utc, record_id,
    # t.rowid DESC (the last row of a record, as REPLACE keeps it).
    if db.dialect(conn) == "sqlite":
        conn.execute("INSERT OR REPLACE INTO record_terms_row (terms_rowid, created_utc, record_id) "
                     "SELECT t.rowid, coalesce(r.created_utc, ''), t.record_id FROM record_terms t "
                     "JOIN record r ON r.id = t.record_id WHERE t.rowid > ?", (after,))
        return
    conn.execute("DELETE FROM record_terms_row WHERE terms_rowid > ? OR (created_utc, record_id) IN ("
                 "SELECT coalesce(r.created_utc, ''), t.record_id FROM record_terms t "
                 "JOIN record r ON r.id = t.record_id WHERE t.rowid > ?)", (after, after))
    conn.execute("INSERT INTO record_terms_row (terms_rowid, created_utc, record_id) "
                 "SELECT DISTINCT ON (coalesce(r.created_utc, ''), t.record_id) "
                 "t.rowid, coalesce(r.created_utc, ''), t.record_id FROM record_terms t "
                 "JOIN record r ON r.id = t.record_id WHERE t.rowid > ? "
                 "ORDER BY coalesce(r.created_utc, ''), t.record_id, t.rowid DESC", (after,))


def _insert_values(conn: db.Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                   verb: str) -> None:
    width = len(columns)
    limit = min(MAX_BOUND_PARAMETERS, db.max_parameters(conn))
    per_statement = max(1, limit // width)
    head = f"{verb} INTO {table} ({', '.join(columns)}) VALUES "
    one = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), per_statement):
        part = rows[start:start + per_statement]
        conn.execute(head + ",".join([one] * len(part)), [value for row in part for value in row])


#: Adopts the unledgered rows of an archive migrated from ``version`` (before
#: :data:`ADOPTION_MIGRATION`), inside the migration's transaction.
Adopter = Callable[[db.Connection, int], None]


def version(conn: db.Connection) -> int:
    """The schema version the index is at (0: a new file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def check_current(conn: db.Connection) -> None:
    """Refuse an index at another schema version than this code's: one line that says what to run."""
    check_version(version(conn))


def check_version(found: int) -> None:
    """Refuse schema version ``found`` unless it is this code's (:func:`check_current`, on either database)."""
    if found < len(MIGRATIONS):
        raise ArchiveVersionError(f"the archive is at schema {found}, written by an earlier twentyday; this one "
                                  f"reads schema {len(MIGRATIONS)}: run 'twentyday migrate' (or start "
                                  "'twentyday serve') first")
    if found > len(MIGRATIONS):
        raise ArchiveVersionError(f"the archive is at schema {found}, written by a later twentyday; this one "
                                  f"reads schema {len(MIGRATIONS)} at most")


def migrate(index: sqlite_utils.Database, adopt: Adopter | None = None) -> int:
    """Apply every migration not yet applied, in one transaction; returns the schema version.

    Crossing :data:`ADOPTION_MIGRATION` on an archive that holds data calls ``adopt`` inside the
    same transaction, so the upgrade and the ledger entries that account for its old rows commit
    together or not at all. Without ``adopt`` (a side that holds no signing key: the officer's)
    an archive that needs migrating is refused (:func:`check_current`'s error).
    """
    conn = index.conn
    if version(conn) == len(MIGRATIONS):
        return len(MIGRATIONS)
    db.begin_write(conn)
    try:
        start = version(conn)  # again, under the write lock: another process may have migrated meanwhile
        if start > len(MIGRATIONS) or (start and start < len(MIGRATIONS) and adopt is None):
            check_current(conn)
        for number, script in enumerate(MIGRATIONS, start=1):
            if number <= start:
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
        if adopt is not None and 0 < start < ADOPTION_MIGRATION:
            adopt(conn, start)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (none of ours has ';' inside a literal or a comment)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    statements, current = [], ""
    for piece in "\n".join(lines).split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):  # a trigger's body holds ';' of its own: read on to its END
            if current.strip(" \n;"):
                statements.append(current.strip())
            current = ""
    return statements
