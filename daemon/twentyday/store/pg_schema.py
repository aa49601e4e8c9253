"""The index schema on PostgreSQL: the end state of :data:`twentyday.store.schema.MIGRATIONS`, created at once.

A PostgreSQL index starts at the current schema (no upgrade path from earlier numbers: nothing has
ever been written there at one), so this is one script, not a list of steps. It is kept equal to
what SQLite's migrations build, table by table, column by column, key by key and index by index, by
``tests/store/test_pg_schema.py``: a new migration in ``schema.py`` fails that test until its
PostgreSQL side is written here and :data:`SCHEMA_VERSION` follows it.

Where the two databases cannot say the same thing:

- Types: INTEGER is ``bigint`` (SQLite's integers are 64-bit), TEXT ``text``, BLOB ``bytea``.
- ``rowid``: the tables whose rows the code reads in the order they were written, or finds by that
  number (:data:`ROWID_TABLES`), carry it as an explicit identity column, last, with a unique index
  (SQLite keeps every such table in a B-tree by it). A copy from SQLite keeps the numbers with
  ``OVERRIDING SYSTEM VALUE`` and then moves the identity past them.
- ``INTEGER PRIMARY KEY`` columns the code leaves to the database (:data:`AUTO_IDS`) are identities
  ``BY DEFAULT`` (a given value is taken, as SQLite takes one); the others (ledger and checkpoint
  ``seq``, ``record_terms_row.terms_rowid``) are always given, and a missing one is refused.
- The FTS5 table of blind words (``record_terms``) is a plain table, its words found with a GIN index
  on ``string_to_array(terms, ' ')`` and ``@>`` (``to_tsvector`` would take a hex token such as
  ``12e4567890`` for a number and change it).
- Triggers: the two on ``record`` that keep the derived search tables (migration 12) are PL/pgSQL,
  one run per statement over its rows (a batch of records is one multi-row INSERT).
- ``PRAGMA user_version`` is the one row of ``schema_version``: not a ``meta`` row, because ``meta``
  holds the archive's own facts (``disclosures_signed_from``, read by verify), which a copy of an
  archive carries over, while the version says what this database's tables are; a table of its own
  is also one no statement of the store writes by accident.

The database must compare text byte by byte (collation and character classes ``C``), in UTF-8:
the store orders keyed hashes and ISO times and lower-cases addresses exactly as SQLite does
(:func:`check_database`).
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import psycopg
from psycopg import pq

from twentyday.errors import ConfigError, NotFoundError, TwentydayError
from twentyday.store import db, schema

#: The SQLite schema version (``len(schema.MIGRATIONS)``) this script builds.
SCHEMA_VERSION = 12

#: Tables whose ``rowid`` the code reads (``ORDER BY rowid``, ``t.rowid = ...``): an identity column here.
ROWID_TABLES = ("capture", "chunk", "escrow", "record", "record_terms")
#: ``INTEGER PRIMARY KEY`` columns the code inserts without a value (``RETURNING id``).
AUTO_IDS = (("alert", "id"), ("alert_event", "id"), ("delivery", "id"))
#: The FTS5 table and the column its words are in (the other one is UNINDEXED).
FTS_TABLE, FTS_WORDS = "record_terms", "terms"
#: PostgreSQL's stand-in for ``PRAGMA user_version``: not a table of the SQLite schema.
VERSION_TABLE = "schema_version"

# Serializes two create() calls on one empty database: the second waits, then finds the tables.
_CREATE_LOCK = 0x7464_5f73_6368_656D  # "td_schem"

_DDL = f"""
CREATE TABLE {VERSION_TABLE} (
    version bigint NOT NULL,
    one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row)
);
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE custodian (
    id text PRIMARY KEY, name text NOT NULL, timezone text NOT NULL, schedule text NOT NULL
);
CREATE TABLE capture (
    id text PRIMARY KEY,
    custodian text,
    channel text NOT NULL,
    source_name text NOT NULL,
    source_hash text NOT NULL UNIQUE,
    received_at text NOT NULL,
    parser text NOT NULL,
    size bigint NOT NULL,
    raw_blob text NOT NULL,
    envelope_blob text,
    state text NOT NULL,
    reason text NOT NULL,
    first_at text, last_at text, exported_at text,
    message_count bigint NOT NULL,
    parent_capture text,
    delivered_by text,
    origin_auth text,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX capture_custodian ON capture (custodian, received_at);
CREATE TABLE keyslot (
    capture_id text NOT NULL, recipient text NOT NULL, sealed bytea NOT NULL,
    PRIMARY KEY (capture_id, recipient)
);
CREATE TABLE blob (
    id text PRIMARY KEY,
    capture_id text NOT NULL,
    owner text NOT NULL, slot text NOT NULL,
    size bigint NOT NULL, chunks bigint NOT NULL,
    digest text NOT NULL
);
CREATE TABLE chunk (
    blob_id text NOT NULL, seq bigint NOT NULL, data bytea NOT NULL,
    PRIMARY KEY (blob_id, seq),
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE TABLE record (
    id text PRIMARY KEY,
    dedup_key text NOT NULL UNIQUE,
    custodian text NOT NULL,
    platform text NOT NULL,
    channel text NOT NULL,
    conversation text NOT NULL,
    sender text NOT NULL,
    recipients text NOT NULL,
    direction text NOT NULL,
    created_at text,
    created_utc text,
    time_reading text,
    captured_at text NOT NULL,
    deadline_at text,
    deadline_rule text NOT NULL,
    status text NOT NULL,
    days_late bigint,
    capture_id text NOT NULL,
    has_attachments bigint NOT NULL,
    incomplete bigint NOT NULL,
    edited bigint NOT NULL,
    flags text NOT NULL,
    message_ref text NOT NULL,
    reply_ref text NOT NULL,
    content_blob text NOT NULL,
    schedule text NOT NULL,
    retention text NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX record_custodian_time ON record (custodian, created_utc);
CREATE INDEX record_content ON record (content_blob);
CREATE INDEX record_summary ON record (custodian, status, direction, days_late, captured_at);
CREATE INDEX record_conversation_end ON record (custodian, conversation, platform, created_utc, captured_at);
CREATE INDEX record_replies ON record (custodian, conversation) WHERE reply_ref <> '';
CREATE INDEX record_message_ref ON record (custodian, message_ref) WHERE message_ref <> '';
CREATE INDEX record_time ON record (created_utc);
CREATE INDEX record_conversation_time ON record (conversation, created_utc);
CREATE INDEX record_platform_time ON record (platform, created_utc);
CREATE INDEX record_sender_time ON record (lower(sender), created_utc);
CREATE TABLE record_capture (
    record_id text NOT NULL, capture_id text NOT NULL, captured_at text NOT NULL,
    PRIMARY KEY (record_id, capture_id)
);
CREATE INDEX record_capture_by_capture ON record_capture (capture_id);
CREATE TABLE attachment (
    record_id text NOT NULL, n bigint NOT NULL, blob_id text, size bigint NOT NULL,
    content_type text NOT NULL, omitted bigint NOT NULL,
    PRIMARY KEY (record_id, n)
);
CREATE TABLE event (
    id text PRIMARY KEY, capture_id text NOT NULL, custodian text, conversation text NOT NULL,
    kind text NOT NULL, at text, detail_blob text NOT NULL
);
CREATE INDEX event_capture ON event (capture_id);
CREATE TABLE alert (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, kind text NOT NULL, severity text NOT NULL,
    custodian text NOT NULL, conversation text NOT NULL, opened_at text NOT NULL, updated_at text NOT NULL,
    resolved_at text, count bigint NOT NULL, detail text NOT NULL,
    escalated_at text, facts text, closed_by text, note text
);
CREATE UNIQUE INDEX alert_open ON alert (kind, custodian, conversation) WHERE resolved_at IS NULL;
CREATE TABLE hold (
    id text PRIMARY KEY, name text NOT NULL, custodian text, conversation text,
    start_utc text, end_utc text, reason text NOT NULL, placed_by text NOT NULL,
    placed_at text NOT NULL, released_at text,
    participant text, text_tokens text, expires_at text, released_by text, release_reason text,
    signer text, signature text
);
CREATE TABLE disclosure (
    id text PRIMARY KEY, at text NOT NULL, actor text NOT NULL, action text NOT NULL,
    purpose text NOT NULL, recipient text NOT NULL, subjects text NOT NULL, identity text NOT NULL,
    signer text, signature text, recipient_address text
);
CREATE TABLE ledger (
    seq bigint PRIMARY KEY, at text NOT NULL, kind text NOT NULL, subject text NOT NULL,
    payload text NOT NULL, prev text NOT NULL, hash text NOT NULL
);
CREATE INDEX ledger_subject ON ledger (kind, subject);
CREATE TABLE checkpoint (
    seq bigint PRIMARY KEY, head text NOT NULL, at text NOT NULL, signature text NOT NULL
);
CREATE TABLE escrow (
    recipient text PRIMARY KEY, label text NOT NULL, sealed bytea NOT NULL, at text NOT NULL,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
-- FTS5's columns carry no type and take NULL: so do these.
CREATE TABLE {FTS_TABLE} (
    record_id text, {FTS_WORDS} text,
    rowid bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX record_terms_words ON {FTS_TABLE} USING gin (string_to_array({FTS_WORDS}, ' '));
CREATE TABLE alert_event (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, alert_id bigint NOT NULL, event text NOT NULL,
    at text NOT NULL, fanned_out_at text
);
CREATE INDEX alert_event_waiting ON alert_event (id) WHERE fanned_out_at IS NULL;
CREATE TABLE delivery (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE,
    alert_event bigint,
    alert_id bigint,
    event text NOT NULL,
    sink text NOT NULL,
    recipient text NOT NULL,
    message_id text NOT NULL,
    created_at text NOT NULL,
    state text NOT NULL,
    attempts bigint NOT NULL,
    last_attempt_at text,
    last_error text NOT NULL,
    settled_at text,
    next_attempt_at text
);
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE state = 'pending';
CREATE TABLE capture_span (
    capture_id text NOT NULL, custodian text NOT NULL, conversation text NOT NULL, platform text NOT NULL,
    first_utc text NOT NULL, last_utc text NOT NULL, messages bigint NOT NULL,
    PRIMARY KEY (custodian, conversation, capture_id, platform)
);
CREATE TABLE retention_plan (
    id text PRIMARY KEY, at text NOT NULL, as_of text NOT NULL, state text NOT NULL,
    author text NOT NULL, author_signer text NOT NULL, approver text, approver_signer text, approved_at text,
    body text NOT NULL,
    signer text NOT NULL, signature text NOT NULL
);
CREATE TABLE disposition (
    id text PRIMARY KEY, plan_id text NOT NULL UNIQUE, at text NOT NULL, disposed_by text NOT NULL,
    body text NOT NULL,
    signer text NOT NULL, signature text NOT NULL
);
CREATE TABLE disposed_record (
    record_id text PRIMARY KEY, disposition_id text NOT NULL, disposed_at text NOT NULL
);
CREATE TABLE disposed_capture (
    capture_id text PRIMARY KEY, disposition_id text NOT NULL, disposed_at text NOT NULL
);
CREATE TABLE record_participant (
    participant text NOT NULL, created_utc text NOT NULL, record_id text NOT NULL,
    PRIMARY KEY (participant, created_utc, record_id)
);
CREATE TABLE record_terms_row (
    terms_rowid bigint PRIMARY KEY, created_utc text NOT NULL, record_id text NOT NULL
);
CREATE UNIQUE INDEX record_terms_row_record ON record_terms_row (created_utc, record_id);

-- Migration 12's triggers. lower() changes ASCII letters only, as SQLite's does, because the
-- database's character classes are C (check_database).
CREATE FUNCTION record_participant_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_participant (participant, created_utc, record_id)
    SELECT lower(j.value), coalesce(n.created_utc, ''), n.id
    FROM inserted n CROSS JOIN LATERAL json_array_elements_text(n.recipients::json) AS j(value)
    WHERE n.recipients <> '[]' AND j.value <> ''
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER record_participant_insert AFTER INSERT ON record
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION record_participant_insert();
CREATE FUNCTION record_search_index_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM record_participant p USING deleted o
    WHERE p.created_utc = coalesce(o.created_utc, '') AND p.record_id = o.id
      AND p.participant IN (SELECT lower(j.value) FROM json_array_elements_text(o.recipients::json) AS j(value));
    DELETE FROM record_terms_row w USING deleted o
    WHERE w.created_utc = coalesce(o.created_utc, '') AND w.record_id = o.id;
    RETURN NULL;
END $$;
CREATE TRIGGER record_search_index_delete AFTER DELETE ON record
    REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION record_search_index_delete();

-- What the migrations write into a new index (migration 4: an empty ledger signs disclosures from 1).
INSERT INTO meta (key, value)
    SELECT 'disclosures_signed_from', (coalesce(max(seq), 0) + 1)::text FROM ledger;
INSERT INTO {VERSION_TABLE} (version) VALUES ({SCHEMA_VERSION});
"""


def create(conn: psycopg.Connection[Any]) -> int:
    """Create the index in the empty database ``conn`` is open on, in one transaction; returns its version.

    Refuses (:class:`ConfigError`, nothing written) a database that does not compare text byte by
    byte (:func:`check_database`) or whose schema already holds a table, a twentyday index or not.
    """
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise ValueError("pg_schema.create runs its own transaction: call it outside one")
    with conn.transaction():
        return create_within(conn)


def create_within(conn: psycopg.Connection[Any]) -> int:
    """:func:`create`, inside the caller's open transaction: what it writes next (a copy of an archive's
    rows, store/pg_copy.py) commits with the tables or, if it fails, leaves the database empty."""
    if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise ValueError("pg_schema.create_within runs in the caller's transaction: open one first")
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
    check_database(conn)
    where = conn.execute("SELECT current_schema()").fetchone()
    if where is None or where[0] is None:
        raise ConfigError("the PostgreSQL search_path names no schema that exists: the index has nowhere to go")
    found = [str(name) for (name,) in conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY c.relname")]
    if found:
        held = version(conn)
        what = (f"twentyday's index at schema {held}" if held else
                f"{len(found)} table(s) ({', '.join(found[:5])}{', ...' if len(found) > 5 else ''})")
        raise ConfigError(f"the PostgreSQL schema {where[0]} already holds {what}: the index is created "
                          "only in an empty one")
    conn.execute(_DDL)
    return SCHEMA_VERSION


def version(conn: psycopg.Connection[Any]) -> int:
    """The schema version the index is at (0: a new database), as ``schema.version`` reads SQLite's."""
    if conn.execute("SELECT to_regclass(%s)", (VERSION_TABLE,)).fetchone() in (None, (None,)):
        return 0
    row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
    return int(row[0]) if row else 0


def describe(uri: str) -> str:
    """Names an index in PostgreSQL for a message: its database and host, nothing else of the URI."""
    parts = urllib.parse.urlsplit(uri)
    host = parts.hostname or urllib.parse.parse_qs(parts.query).get("host", ["the local socket"])[0]
    return f"PostgreSQL database {parts.path.strip('/')!r} on {host}"


def open_index(uri: str) -> db.Connection:
    """The index in the PostgreSQL database ``uri`` names, refused unless it is at this code's schema
    version (a database in which 'twentyday create' made no index: not found; there is no upgrade
    path yet, none is needed before the next migration)."""
    from twentyday.store import postgres

    where = describe(uri)
    try:
        conn = postgres.connect(uri)
    except db.ERRORS as error:
        raise TwentydayError(f"{where}: cannot open the index: {str(error).splitlines()[0]}") from None
    try:
        found = version_on(conn)
        if not found:
            raise NotFoundError(f"{where}: no archive here (run 'twentyday create' first)")
        schema.check_version(found)
    except BaseException:
        conn.close()
        raise
    return conn


def version_on(conn: db.Connection) -> int:
    """:func:`version`, read through the store's own connection (:mod:`twentyday.store.postgres`)."""
    if conn.execute("SELECT to_regclass(?)", (VERSION_TABLE,)).fetchone() in (None, (None,)):
        return 0
    row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()
    return int(row[0]) if row else 0


def check_current(conn: psycopg.Connection[Any]) -> None:
    """Refuse an index at another schema version than this code's, as ``schema.check_current`` does."""
    schema.check_version(version(conn))


def check_database(conn: psycopg.Connection[Any]) -> None:
    """Refuse a database whose text is not UTF-8 compared and lower-cased byte by byte (collation C).

    The store's keys are keyed hashes (hex) and ISO times whose order is SQLite's byte order, and
    the participant index lower-cases ASCII only, as SQLite's ``lower()`` does. The catalog names
    the locale; asking the database itself also catches an ICU default collation under an ``LC_COLLATE``
    of C and a C.UTF-8 whose ``lower()`` changes more than ASCII.
    """
    provider_column = "datlocprovider" if conn.info.server_version >= 150000 else "'c'"  # ICU defaults came in 15
    row = conn.execute(
        f"SELECT current_database(), pg_encoding_to_char(encoding), datcollate, datctype, {provider_column}, "
        "'B' < 'a' AND 'z' < 'é' AND lower('ÄB') = 'Äb' FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    if row is None:  # the catalog always lists the current database
        raise ConfigError("PostgreSQL does not list the database the index was opened on")
    name, encoding, collate, ctype, provider, byte_order = row
    providers = {"c": "libc", "i": "icu", "b": "builtin"}
    if encoding != "UTF8":
        raise ConfigError(f"the PostgreSQL database {name} is encoded in {encoding}: the index needs UTF8 "
                          f"(CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C')")
    if not byte_order or collate not in ("C", "POSIX") or ctype not in ("C", "POSIX"):
        locale = f"{providers.get(provider, provider)} provider, LC_COLLATE {collate}, LC_CTYPE {ctype}"
        raise ConfigError(f"the PostgreSQL database {name} compares text by its locale ({locale}), not byte by "
                          "byte: the index orders keyed hashes and ISO times as SQLite does and needs "
                          f"collation C (CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' "
                          "LOCALE_PROVIDER libc)")
