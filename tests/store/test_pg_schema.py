"""The index schema on PostgreSQL (store/pg_schema.py) is the one SQLite's migrations build.

Each side is read from its own catalog (SQLite's PRAGMAs and sqlite_master; PostgreSQL's
information_schema and pg_catalog) into the same shape and compared whole, so a migration added
to schema.py without its PostgreSQL side fails here, naming the table and what differs. The
differences the two databases cannot avoid are mapped, each one said where it is mapped:
FTS5's shadow tables, ``rowid`` columns, identities, the GIN index of the blind words.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.pg import LocalPG
from twentyday.errors import ArchiveVersionError, ConfigError
from twentyday.store import pg_schema, schema

#: SQLite's declared types and what pg_schema declares for them ('': an FTS5 column, untyped).
TYPES = {"INTEGER": "bigint", "TEXT": "text", "BLOB": "bytea", "REAL": "double precision", "": "text"}
#: The tables FTS5 keeps beside a virtual table: its own storage, nothing of ours.
FTS5_SHADOWS = ("_data", "_idx", "_content", "_docsize", "_config")


@dataclass(frozen=True)
class Index:
    columns: tuple[str, ...]
    unique: bool
    where: str | None
    method: str = "btree"


@dataclass
class Table:
    columns: list[tuple[str, str, bool, str | None]] = field(default_factory=list)  # name, type, not null, default
    primary_key: tuple[str, ...] = ()
    unique: set[tuple[str, ...]] = field(default_factory=set)
    indexes: dict[str, Index] = field(default_factory=dict)
    foreign_keys: list[Any] = field(default_factory=list)
    identities: dict[str, str] = field(default_factory=dict)  # column -> ALWAYS | BY DEFAULT


@dataclass
class Schema:
    tables: dict[str, Table]
    triggers: dict[str, tuple[str, str]]  # name -> (table, event)


def _predicate(text: str | None) -> str | None:
    """A partial index's WHERE as both databases would print it: PostgreSQL's casts and brackets gone."""
    if text is None:
        return None
    text = text.replace("::text", "").replace("!=", "<>")
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    return " ".join(text.split())


def _index_terms(sql: str) -> list[str]:
    """The column list of a CREATE INDEX statement, expressions included, split at its top-level commas."""
    inside = sql[sql.index("(") + 1:]
    terms, depth, current = [], 0, ""
    for char in inside:
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        if char == "," and depth == 0:
            terms.append(current.strip())
            current = ""
        else:
            current += char
    return [*terms, current.strip()]


def read_sqlite(conn: sqlite3.Connection) -> Schema:
    master = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    virtual = {name: sql for kind, name, _, sql in master if kind == "table" and sql.startswith("CREATE VIRTUAL")}
    shadows = {name + suffix for name in virtual for suffix in FTS5_SHADOWS}
    tables: dict[str, Table] = {}
    for kind, name, _, _ in master:
        if kind != "table" or name.startswith("sqlite_") or name in shadows:
            continue
        table = tables[name] = Table()
        info = conn.execute(f"PRAGMA table_info({name})").fetchall()
        for _, column, declared, notnull, default, pk in info:
            # A primary key column is NOT NULL on PostgreSQL; SQLite's rowid tables would take a NULL
            # in a TEXT key (a compatibility quirk of SQLite's) that no statement of the store writes.
            table.columns.append((column, TYPES[declared], bool(notnull or pk), default))
        table.primary_key = tuple(column for _, column in sorted((c[5], c[1]) for c in info if c[5]))
        keys = [c for c in info if c[5]]
        if len(keys) == 1 and keys[0][2] == "INTEGER" and not virtual.get(name):
            table.identities[keys[0][1]] = "rowid alias"  # SQLite numbers it when the insert gives none
        for _, index_name, unique, origin, partial in conn.execute(f"PRAGMA index_list({name})").fetchall():
            columns = tuple(row[2] for row in conn.execute(f"PRAGMA index_info({index_name})"))
            if origin == "pk":
                continue
            if origin == "u":
                table.unique.add(columns)
                continue
            sql = next(s for k, n, _, s in master if k == "index" and n == index_name)
            terms = tuple(column if column is not None else term
                          for column, term in zip(columns, _index_terms(sql), strict=True))
            where = sql.split(" WHERE ", 1)[1] if partial else None
            table.indexes[index_name] = Index(terms, bool(unique), _predicate(where))
        table.foreign_keys = conn.execute(f"PRAGMA foreign_key_list({name})").fetchall()
    triggers = {}
    for kind, name, table_name, sql in master:
        if kind == "trigger":
            event = re.search(r"\b(INSERT|UPDATE|DELETE)\s+ON\b", sql)
            assert event, sql
            triggers[name] = (table_name, event.group(1))
    return Schema(tables, triggers)


def read_postgres(conn: psycopg.Connection[Any]) -> Schema:
    tables: dict[str, Table] = {}
    for (name,) in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                "current_schema() AND table_type = 'BASE TABLE'"):
        tables[name] = Table()
    for name, column, data_type, nullable, default, identity, generation in conn.execute(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity, "
            "identity_generation FROM information_schema.columns WHERE table_schema = current_schema() "
            "ORDER BY table_name, ordinal_position"):
        tables[name].columns.append((column, data_type, nullable == "NO", default))
        if identity == "YES":
            tables[name].identities[column] = generation
    for name, kind, columns in conn.execute(
            "SELECT t.relname, c.contype, array_agg(a.attname ORDER BY k.n) FROM pg_constraint c "
            "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace s ON s.oid = t.relnamespace "
            "CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
            "WHERE s.nspname = current_schema() GROUP BY t.relname, c.conname, c.contype"):
        if kind == "p":
            tables[name].primary_key = tuple(columns)
        elif kind == "u":
            tables[name].unique.add(tuple(columns))
        elif kind == "f":
            tables[name].foreign_keys.append(columns)
        else:  # a CHECK: only schema_version's one-row guard, which is not a table of SQLite's schema
            assert name == pg_schema.VERSION_TABLE, (name, kind, columns)
    for name, index_name, unique, where, method, columns in conn.execute(
            "SELECT t.relname, i.relname, x.indisunique, pg_get_expr(x.indpred, x.indrelid), m.amname, "
            "ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true) FROM generate_series(1, x.indnkeyatts) k) "
            "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            "JOIN pg_namespace s ON s.oid = t.relnamespace JOIN pg_am m ON m.oid = i.relam "
            "WHERE s.nspname = current_schema() "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"):
        tables[name].indexes[index_name] = Index(tuple(columns), unique, _predicate(where), method)
    triggers = {name: (table, event) for name, table, event in conn.execute(
        "SELECT trigger_name, event_object_table, event_manipulation FROM information_schema.triggers "
        "WHERE trigger_schema = current_schema()")}
    return Schema(tables, triggers)


def postgres_as_sqlite(found: Schema) -> Schema:
    """PostgreSQL's schema with what stands in for SQLite's own machinery taken out, each piece checked."""
    tables = dict(found.tables)
    version = tables.pop(pg_schema.VERSION_TABLE)  # PRAGMA user_version
    assert version.columns[0][0] == "version"
    for name in pg_schema.ROWID_TABLES:
        table = tables[name]
        # SQLite's implicit rowid: the last column, numbered by the database, unique, never given by the store.
        assert table.columns[-1] == ("rowid", "bigint", True, None), name
        assert table.identities.pop("rowid") == "ALWAYS", name
        table.columns = table.columns[:-1]
        table.unique.remove(("rowid",))
    for name, column in pg_schema.AUTO_IDS:
        assert tables[name].identities.pop(column) == "BY DEFAULT", (name, column)
    words = tables[pg_schema.FTS_TABLE].indexes.pop("record_terms_words")
    assert words == Index((f"string_to_array({pg_schema.FTS_WORDS}, ' '::text)",), False, None, "gin")
    for table in tables.values():
        assert not table.identities, table
    return Schema(tables, found.triggers)


def sqlite_as_postgres(found: Schema) -> Schema:
    """SQLite's schema with its rowid aliases left out of the comparison (checked apart: AUTO_IDS)."""
    for table in found.tables.values():
        table.identities.clear()
    return found


@pytest.fixture
def sqlite_index(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A new index file, every migration applied: the schema pg_schema must equal."""
    db = schema.connect(str(tmp_path / "index.db"))
    schema.migrate(db)
    yield db.conn
    db.conn.close()


@pytest.fixture
def pg(pg_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A new PostgreSQL database holding the index, pg_schema.create's."""
    with psycopg.connect(pg_dsn) as conn:
        assert pg_schema.create(conn) == len(schema.MIGRATIONS)
        yield conn


def test_the_postgresql_schema_is_the_one_sqlites_migrations_build(sqlite_index: sqlite3.Connection,
                                                                   pg: psycopg.Connection[Any]) -> None:
    assert len(schema.MIGRATIONS) == pg_schema.SCHEMA_VERSION, (
        "schema.py has a migration pg_schema.py does not: write its PostgreSQL side and raise SCHEMA_VERSION")
    lite = read_sqlite(sqlite_index)
    # The rowid aliases SQLite numbers itself are the ones the store leaves to the database, and
    # these are identities on PostgreSQL (BY DEFAULT: a given id is taken, as SQLite takes one).
    aliases = {(name, column) for name, table in lite.tables.items() for column in table.identities}
    assert set(pg_schema.AUTO_IDS) <= aliases
    postgres = postgres_as_sqlite(read_postgres(pg))
    lite = sqlite_as_postgres(lite)
    assert sorted(postgres.tables) == sorted(lite.tables)
    for name, table in lite.tables.items():
        assert postgres.tables[name] == table, name
    assert postgres.triggers == lite.triggers


def test_a_new_index_holds_the_same_rows_on_both(sqlite_index: sqlite3.Connection,
                                                 pg: psycopg.Connection[Any]) -> None:
    # What the migrations write into a new index (migration 4's mark), and nothing else.
    for name in read_sqlite(sqlite_index).tables:
        lite = sorted(sqlite_index.execute(f"SELECT * FROM {name}").fetchall())
        columns = ", ".join(c[1] for c in sqlite_index.execute(f"PRAGMA table_info({name})"))
        assert sorted(pg.execute(f"SELECT {columns} FROM {name}").fetchall()) == lite, name
    assert pg.execute("SELECT key, value FROM meta").fetchall() == [("disclosures_signed_from", "1")]


def _record(record_id: str, recipients: str, created_utc: str | None) -> dict[str, Any]:
    return {"id": record_id, "dedup_key": "d" + record_id, "custodian": "c1", "platform": "mail",
            "channel": "smtp", "conversation": "conv", "sender": "Jane@Example.test", "recipients": recipients,
            "direction": "out", "created_at": created_utc, "created_utc": created_utc, "time_reading": None,
            "captured_at": "2026-11-20T00:00:00Z", "deadline_at": None, "deadline_rule": "r", "status": "on_time",
            "days_late": None, "capture_id": "k1", "has_attachments": 0, "incomplete": 0, "edited": 0,
            "flags": "[]", "message_ref": "", "reply_ref": "", "content_blob": "b1", "schedule": "s",
            "retention": "t"}


#: Records whose recipients exercise the insert trigger: case (ASCII lowered, other letters kept, as
#: SQLite's lower() does), a name twice, an empty name, no recipients, an undated record.
RECORDS = (
    _record("r1", '["Bob@Example.test", "bob@example.test", "", "ÄNNE@Example.test"]', "2026-11-19T10:00:00Z"),
    _record("r2", '["carol@example.test"]', None),
    _record("r3", "[]", "2026-11-19T11:00:00Z"),
    _record("r4", '["Bob@Example.test", "dave@example.test"]', "2026-11-19T12:00:00Z"),
)


def _derived(run: Any) -> tuple[list[Any], list[Any]]:
    participants = run("SELECT participant, created_utc, record_id FROM record_participant").fetchall()
    terms_rows = run("SELECT terms_rowid, created_utc, record_id FROM record_terms_row").fetchall()
    return sorted(map(tuple, participants)), sorted(map(tuple, terms_rows))


def _values(table: str, columns: list[str], rows: int, mark: str) -> str:
    """One multi-row INSERT, as schema.insert_rows writes a batch (one statement: one trigger run on PostgreSQL)."""
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([one] * rows)


def test_the_search_tables_triggers_keep_the_same_rows_on_both(sqlite_index: sqlite3.Connection,
                                                              pg: psycopg.Connection[Any]) -> None:
    columns = list(RECORDS[0])
    rows = [tuple(record[c] for c in columns) for record in RECORDS]
    terms_rows = [(n, record["created_utc"] or "", record["id"]) for n, record in enumerate(RECORDS, start=1)]
    for run, mark in ((sqlite_index.execute, "?"), (pg.execute, "%s")):
        run(_values("record", columns, 1, mark), rows[0])  # one record, then a batch
        run(_values("record", columns, 3, mark), [value for row in rows[1:] for value in row])
        run(_values("record_terms_row", ["terms_rowid", "created_utc", "record_id"], 4, mark),
            [value for row in terms_rows for value in row])
    pg.commit()
    inserted = _derived(sqlite_index.execute)
    assert ("Änne@example.test", "2026-11-19T10:00:00Z", "r1") in inserted[0]  # ASCII lowered only
    assert ("bob@example.test", "2026-11-19T10:00:00Z", "r1") in inserted[0]  # once
    assert ("carol@example.test", "", "r2") in inserted[0]
    assert not [row for row in inserted[0] if row[2] == "r3" or row[0] == ""]
    assert _derived(pg.execute) == inserted

    for run, mark in ((sqlite_index.execute, "?"), (pg.execute, "%s")):
        run(f"DELETE FROM record WHERE id IN ({mark}, {mark})", ("r1", "r2"))
    pg.commit()
    deleted = _derived(sqlite_index.execute)
    assert {row[2] for row in deleted[0]} == {"r4"} and {row[2] for row in deleted[1]} == {"r3", "r4"}
    assert _derived(pg.execute) == deleted


def test_the_version_answers_as_sqlites_user_version_does(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert pg_schema.version(conn) == 0  # a new database, as a new SQLite file
        assert pg_schema.create(conn) == pg_schema.SCHEMA_VERSION
        assert pg_schema.version(conn) == len(schema.MIGRATIONS)
        pg_schema.check_current(conn)
        conn.execute(f"UPDATE {pg_schema.VERSION_TABLE} SET version = version - 1")
        with pytest.raises(ArchiveVersionError, match="run 'twentyday migrate'"):
            pg_schema.check_current(conn)
        with pytest.raises(psycopg.errors.UniqueViolation):  # one row, ever
            conn.execute(f"INSERT INTO {pg_schema.VERSION_TABLE} (version) VALUES (1)")


def test_create_refuses_a_database_that_holds_an_index_or_other_tables(pg_dsn: str,
                                                                      side_database: MakeDatabase) -> None:
    with psycopg.connect(pg_dsn) as conn:
        pg_schema.create(conn)
        before = read_postgres(conn)
        conn.rollback()
        with pytest.raises(ConfigError, match=f"already holds twentyday's index at schema {len(schema.MIGRATIONS)}"):
            pg_schema.create(conn)
        assert read_postgres(conn) == before
        assert conn.execute("SELECT count(*) FROM meta").fetchone() == (1,)  # not written twice
    with psycopg.connect(side_database("other", "LOCALE 'C'")) as conn:
        conn.execute("CREATE TABLE invoices (id bigint)")
        conn.commit()
        with pytest.raises(ConfigError, match=r"already holds 1 table\(s\) \(invoices\): the index is created only"):
            pg_schema.create(conn)
        assert pg_schema.version(conn) == 0
        assert conn.execute("SELECT to_regclass('meta')").fetchone() == (None,)  # nothing of the index left


MakeDatabase = Callable[[str, str], str]


@pytest.fixture
def side_database(pg_dsn: str, postgres: LocalPG) -> Iterator[MakeDatabase]:
    """Makes databases beside the test's own (``suffix``, ``options``: its locale); the dsn of each.
    Dropped after the test, as pg_dsn's is."""
    made: list[str] = []

    def make(suffix: str, options: str = "") -> str:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            name = f"{conn.info.dbname}_{suffix}"
            conn.execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' {options}")
        made.append(name)
        return psycopg.conninfo.make_conninfo(pg_dsn, dbname=name)

    yield make
    for name in made:
        postgres.drop_database(name)


@pytest.mark.parametrize(("options", "says"), [
    # an ICU collation under an LC_COLLATE of C: the catalog's locale alone would pass it
    ("LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'", r"\(icu provider, LC_COLLATE C, LC_CTYPE C\)"),
    # byte order, but lower() changes more than ASCII, where SQLite's does not
    ("LOCALE 'C.utf8' LOCALE_PROVIDER libc", r"\(libc provider, LC_COLLATE C.utf8, LC_CTYPE C.utf8\)"),
])
def test_create_refuses_a_database_that_does_not_compare_bytes(side_database: MakeDatabase, options: str,
                                                              says: str) -> None:
    with psycopg.connect(side_database("locale", options)) as conn:
        refusal = f"database {conn.info.dbname} compares text by its locale {says}, not byte by byte: .* collation C"
        with pytest.raises(ConfigError, match=refusal):
            pg_schema.create(conn)
        assert pg_schema.version(conn) == 0


def test_the_words_index_finds_hex_tokens_whole(pg: psycopg.Connection[Any]) -> None:
    # Blind-word tokens are hex: '12e4567890' must stay one word (to_tsvector reads it as a number).
    rows = [("r1", "12e4567890 ab01"), ("r2", "12e4567890"), ("r3", "ab01 ff")]
    pg.cursor().executemany("INSERT INTO record_terms (record_id, terms) VALUES (%s, %s)", rows)
    find = ("SELECT record_id FROM record_terms WHERE string_to_array(terms, ' ') @> %s::text[] "
            "ORDER BY rowid")
    assert [r for (r,) in pg.execute(find, (["12e4567890"],))] == ["r1", "r2"]
    assert [r for (r,) in pg.execute(find, (["12e4567890", "ab01"],))] == ["r1"]
    assert [r for (r,) in pg.execute(find, (["12e45"],))] == []
    assert [r for (r,) in pg.execute("SELECT rowid FROM record_terms ORDER BY rowid")] == [1, 2, 3]
    pg.execute("SET LOCAL enable_seqscan = off")  # three rows: make the planner show it can use the index
    plan = "\n".join(line for (line,) in pg.execute("EXPLAIN " + find, (["ab01"],)))
    assert "record_terms_words" in plan
