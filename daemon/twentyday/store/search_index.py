"""What search reads beside the record rows: two tables derived from the index (migration 10 in
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

#: ``record_participant`` recomputed from the record rows.
PARTICIPANTS_FROM_RECORDS = (
    "SELECT DISTINCT lower(value), coalesce(created_utc, ''), id FROM ("
    "SELECT r.sender AS value, r.created_utc, r.id FROM record r "
    "UNION ALL SELECT j.value, r.created_utc, r.id FROM record r, json_each(r.recipients) j) WHERE value != ''")
#: ``record_terms_row`` recomputed from the blind-word rows.
TERMS_ROWS_FROM_TERMS = "SELECT record_id, rowid FROM record_terms"


def search_index_differences(conn: sqlite3.Connection) -> list[str]:
    """The records whose rows of ``record_participant`` or ``record_terms_row`` differ from their
    recomputation (rows on either side), by id."""
    return [record_id for (record_id,) in conn.execute(
        f"WITH computed AS MATERIALIZED ({PARTICIPANTS_FROM_RECORDS}), "
        "stored AS (SELECT participant, created_utc, record_id FROM record_participant), "
        f"terms AS MATERIALIZED ({TERMS_ROWS_FROM_TERMS}), "
        "rows AS (SELECT record_id, terms_rowid FROM record_terms_row) "
        "SELECT id FROM (SELECT * FROM computed EXCEPT SELECT * FROM stored) UNION "
        "SELECT record_id FROM (SELECT * FROM stored EXCEPT SELECT * FROM computed) UNION "
        "SELECT record_id FROM (SELECT * FROM terms EXCEPT SELECT * FROM rows) UNION "
        "SELECT record_id FROM (SELECT * FROM rows EXCEPT SELECT * FROM terms) ORDER BY 1")]
