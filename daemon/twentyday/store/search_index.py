"""What search reads beside the record rows: two tables derived from the index (migration 12 in
store/schema.py), never ledgered, kept as rows are written and compared with their recomputation
by ``verify``.

- ``record_participant``: each record's sender and recipients, lower-cased (SQLite's ``lower()``:
  ASCII letters), with its creation time ('' when undated), so a participant's records are read
  in time order. Triggers on ``record`` keep it (on insert and on delete).
- ``record_terms_row``: where each record's row of the blind-word index is (its ``rowid``), so
  a search that walks records in time order tests a common word on each one instead of collecting
  every record that holds it. :func:`twentyday.store.schema.insert_rows` keeps it.
"""

from __future__ import annotations

import sqlite3

#: Per record: how many rows of ``record_participant`` it gives (its distinct lower-cased names), and
#: whether one of them is missing; one pass over the records, a key lookup per name.
_PARTICIPANTS_PER_RECORD = (
    "SELECT r.id AS id, (r.sender != '') + CASE WHEN r.recipients = '[]' THEN 0 ELSE "
    "(SELECT count(DISTINCT lower(j.value)) FROM json_each(r.recipients) j "
    "WHERE j.value != '' AND lower(j.value) != lower(r.sender)) END AS gives, "
    "(r.sender != '' AND NOT EXISTS (SELECT 1 FROM record_participant p WHERE p.participant = lower(r.sender) "
    "AND p.created_utc = coalesce(r.created_utc, '') AND p.record_id = r.id)) OR (r.recipients != '[]' AND EXISTS "
    "(SELECT 1 FROM json_each(r.recipients) j WHERE j.value != '' AND NOT EXISTS (SELECT 1 FROM record_participant p "
    "WHERE p.participant = lower(j.value) AND p.created_utc = coalesce(r.created_utc, '') AND p.record_id = r.id))) "
    "AS missing FROM record r")
#: Rows ``record_participant`` has that no record gives: of no record, at another time, or a participant
#: the record does not name.
_EXTRA_PARTICIPANTS = (
    "SELECT p.record_id FROM record_participant p LEFT JOIN record r ON r.id = p.record_id WHERE r.id IS NULL "
    "OR coalesce(r.created_utc, '') != p.created_utc OR (lower(r.sender) != p.participant AND NOT EXISTS "
    "(SELECT 1 FROM json_each(r.recipients) j WHERE lower(j.value) = p.participant))")
#: Blind-word rows whose place ``record_terms_row`` does not hold (it has one row per record).
_MISSING_TERMS_ROWS = (
    "SELECT t.record_id FROM record_terms t WHERE NOT EXISTS "
    "(SELECT 1 FROM record_terms_row w WHERE w.record_id = t.record_id AND w.terms_rowid = t.rowid)")


def search_index_differences(conn: sqlite3.Connection) -> list[str]:
    """The records whose rows of ``record_participant`` or ``record_terms_row`` differ from what the
    record rows and the blind-word rows give (rows missing or added), by id.

    Key lookups from the rows they derive from, not a recomputation of both sides compared as sets
    (a third of the time): a table holds no row too many when none is missing and it has as many
    rows as its sources give (its key makes every row distinct); only then are its own rows read."""
    differ: set[str] = set()
    expected, missing = conn.execute(
        f"SELECT coalesce(sum(gives), 0), group_concat(CASE WHEN missing THEN id END, ' ') "
        f"FROM ({_PARTICIPANTS_PER_RECORD})").fetchone()
    differ.update((missing or "").split())
    if conn.execute("SELECT count(*) FROM record_participant").fetchone()[0] != expected:
        differ.update(record_id for (record_id,) in conn.execute(_EXTRA_PARTICIPANTS))
    differ.update(record_id for (record_id,) in conn.execute(_MISSING_TERMS_ROWS))
    stored, written = conn.execute(
        "SELECT (SELECT count(*) FROM record_terms_row), (SELECT count(*) FROM record_terms)").fetchone()
    if stored != written:
        differ.update(record_id for (record_id,) in conn.execute(
            "SELECT w.record_id FROM record_terms_row w WHERE NOT EXISTS (SELECT 1 FROM record_terms t "
            "WHERE t.rowid = w.terms_rowid AND t.record_id = w.record_id)"))
    return sorted(differ)
