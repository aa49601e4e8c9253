"""What search reads beside the record rows (migration 12 in store/schema.py), and how verify checks it.

- A sender is found through the index ``record_sender_time`` on ``lower(sender)``: SQLite keeps it
  as it keeps every index.
- ``record_participant``: each record's recipients (a JSON list, which SQLite cannot index),
  lower-cased (SQLite's ``lower()``: ASCII letters), with its creation time ('' when undated), so a
  recipient's records are read in time order. Triggers on ``record`` keep it (on insert and on
  delete). A table, so verify compares it with the record rows (:func:`participant_differences`).
- ``record_terms_row``: where each record's row of the blind-word index is (keyed by that row's
  ``rowid``, with a unique index by the record's time and id: both grow as records arrive, so
  neither index is written at random places), so a search that walks records in time order tests
  a common word on each one instead of collecting every record that holds it.
  :func:`twentyday.store.schema.insert_rows` keeps it; verify reads it beside the blind-word rows,
  in the same pass that hashes them (``_term_rows`` in store/verify.py).

Neither table is ledgered: both are derived from rows that are, and a difference would make a
search miss or add records, so verify names one.
"""

from __future__ import annotations

from twentyday.store import db


def participant_match(record: str) -> str:
    """SQL that holds when a person is the sender or a recipient of the ``record`` row (its name or
    alias in the query), case-insensitively (ASCII letters): what ``--participant`` means everywhere
    (``search``, ``audit --participant``, holds). It binds two parameters, the person twice."""
    return (f"(lower({record}.sender) = lower(?) OR {record}.id IN "
            f"(SELECT record_id FROM record_participant WHERE participant = lower(?)))")


#: Per record with recipients: how many rows of ``record_participant`` it gives (its distinct
#: lower-cased recipients), and whether one of them is missing; a key lookup per recipient.
#: ``{recipients}``: the record's recipients as rows of ``j.value`` (:data:`_RECIPIENTS`).
_RECIPIENTS_PER_RECORD = (
    "SELECT r.id AS id, (SELECT count(DISTINCT lower(j.value)) FROM {recipients} "
    "WHERE j.value != '') AS gives, "
    "EXISTS (SELECT 1 FROM {recipients} WHERE j.value != '' AND NOT EXISTS "
    "(SELECT 1 FROM record_participant p WHERE p.participant = lower(j.value) "
    "AND p.created_utc = coalesce(r.created_utc, '') AND p.record_id = r.id)) AS missing "
    "FROM record r WHERE r.recipients != '[]'")
#: Rows ``record_participant`` has that no record gives: of no record, at another time, or a person
#: the record does not name as a recipient.
_EXTRA_PARTICIPANTS = (
    "SELECT p.record_id FROM record_participant p LEFT JOIN record r ON r.id = p.record_id WHERE r.id IS NULL "
    "OR coalesce(r.created_utc, '') != p.created_utc OR NOT EXISTS "
    "(SELECT 1 FROM {recipients} WHERE lower(j.value) = p.participant)")
#: A record's JSON list of recipients as rows (``j.value``), and the aggregate joining texts, per database.
_RECIPIENTS = {"sqlite": "json_each(r.recipients) j",
               "postgresql": "json_array_elements_text(r.recipients::json) AS j(value)"}
_JOINED = {"sqlite": "group_concat", "postgresql": "string_agg"}


def participant_differences(conn: db.Connection) -> list[str]:
    """The records whose rows of ``record_participant`` differ from what their recipients give
    (rows missing or added), by id.

    Key lookups from the rows they derive from, not a recomputation of both sides compared as sets
    (a third of the time), and only for records that have recipients (a chat message has none):
    the table holds no row too many when none is missing and it has as many rows as the records
    give (its key makes every row distinct); only then are its own rows read."""
    differ: set[str] = set()
    dialect = db.dialect(conn)
    per_record = _RECIPIENTS_PER_RECORD.format(recipients=_RECIPIENTS[dialect])
    expected, missing = conn.execute(
        f"SELECT coalesce(sum(gives), 0), {_JOINED[dialect]}(CASE WHEN missing THEN id END, ' ') "
        f"FROM ({per_record}) AS per_record").fetchone()
    differ.update((missing or "").split())
    # int(): PostgreSQL's sum() of bigints is a numeric (a Decimal here); a count() is a bigint.
    if conn.execute("SELECT count(*) FROM record_participant").fetchone()[0] != int(expected):
        differ.update(record_id for (record_id,) in conn.execute(
            _EXTRA_PARTICIPANTS.format(recipients=_RECIPIENTS[dialect])))
    return sorted(differ)


#: Every blind-word row in storage order with its record, its words, and the record and time
#: ``record_terms_row`` places there (a rowid lookup per row: the next one, in a table read in order).
TERM_ROWS_WITH_PLACES = (
    "SELECT t.record_id, t.terms, w.record_id, w.created_utc FROM record_terms t "
    "LEFT JOIN record_terms_row w ON w.terms_rowid = t.rowid ORDER BY t.rowid")


def misplaced_terms_rows(conn: db.Connection, unplaced: list[str]) -> list[str]:
    """The records whose ``record_terms_row`` entry is wrong, given ``unplaced`` (the records whose
    blind-word row the pass over :data:`TERM_ROWS_WITH_PLACES` found no right entry for: none, or
    one naming another record or time): with as many entries as rows and none unplaced, every
    entry is right (each row has one, and no two rows share one); otherwise the entries that point
    at no row of their record are named too."""
    differ = set(unplaced)
    entries, rows = conn.execute(
        "SELECT (SELECT count(*) FROM record_terms_row), (SELECT count(*) FROM record_terms)").fetchone()
    if differ or entries != rows:
        differ.update(str(record_id) for (record_id,) in conn.execute(
            "SELECT w.record_id FROM record_terms_row w LEFT JOIN record_terms t ON t.rowid = w.terms_rowid "
            "WHERE t.rowid IS NULL OR t.record_id IS DISTINCT FROM w.record_id"))
    return sorted(differ)
