"""Search at scale (issue 14): every filter reads an index in the results' order, never the whole
record table, and the filters give the same rows whichever way a search is run, on a small real archive.

What a user notices of the first part is speed: at 1,000,000 records a search that scans the table
takes a tenth of a second or more per filter (bench/search.py); the query plans are the check that
can fail here.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import make_mail
from tests.pgplan import plan_nodes, whole_reads
from tests.store.test_coverage import export, ingest
from tests.store.test_store import run
from twentyday.store import db
from twentyday.store.archive import Archive
from twentyday.store.postgres import PgConnection
from twentyday.store.search import Filters, search, statements
from twentyday.store.verify import verify_archive

DAY = datetime(2026, 9, 1, 9, 0)
MAIL_AT = datetime(2026, 9, 3, 12, 0, tzinfo=UTC)


@pytest.fixture
def filled(archive: Archive, tmp_path: Path) -> Archive:
    """A WhatsApp export of six days (words 'budget' in every line, 'pelican' in two), a mail to
    Counterpart that mentions both, and an undated mail."""
    lines = [(DAY + timedelta(days=n), f"budget line {n}" + (" pelican" if n in (1, 4) else "")) for n in range(6)]
    (tmp_path / "a").mkdir()
    ingest(archive, export(tmp_path / "a" / "WhatsApp Chat with Budget Team.txt", lines),
           datetime(2026, 9, 8, 12, tzinfo=UTC))
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(date=MAIL_AT, body="The pelican budget is final.", to="Counterpart@Partner.example",
                               message_id="<a@x>"))
    ingest(archive, mail, datetime(2026, 9, 8, 13, tzinfo=UTC))
    undated = tmp_path / "u.eml"
    undated.write_bytes(make_mail(date=None, body="No date on this budget.", message_id="<u@x>"))
    ingest(archive, undated, datetime(2026, 9, 8, 14, tzinfo=UTC))
    return archive


KINDS = {
    "no filter": Filters(),
    "custodian": Filters(custodian="jdoe"),
    "conversation": Filters(conversation="Budget Team"),
    "participant": Filters(participant="jane doe"),
    "platform": Filters(platform="whatsapp"),
    "status": Filters(status="late"),
    "since/until": Filters(since=DAY.replace(tzinfo=UTC), until=DAY.replace(tzinfo=UTC) + timedelta(days=3)),
    "custodian + conversation": Filters(custodian="jdoe", conversation="Budget Team"),
    "participant + since": Filters(participant="jane doe", since=DAY.replace(tzinfo=UTC)),
    "text": Filters(text="pelican"),
    "text + custodian": Filters(text="budget", custodian="jdoe"),
    "text + participant": Filters(text="budget", participant="COUNTERPART@partner.example"),
}


#: The three ways a text search finds its records (few_matches, many_matches): every record that
#: holds the words collected; records walked in time order, looked up in the set of rows that hold
#: them; walked, each one's row of words tested.
WAYS = {"collect": (10_000, 10_000), "walk-set": (0, 10_000), "walk-test": (0, 0)}


def plan(archive: Archive, filters: Filters, way: str) -> list[list[list[str]]]:
    """The query plan of each statement (its steps), by phase (dated records first)."""
    few, many = WAYS[way]
    return [[[row[3] for row in archive.conn.execute("EXPLAIN QUERY PLAN " + sql, [*params, 10])]
             for sql, params in phase]
            for phase in statements(archive, filters, few_matches=few, many_matches=many)]


def check_pg_plans(archive: Archive, filters: Filters, way: str) -> None:
    """PostgreSQL's side of the check below: each statement's plan with whole-table scans priced out
    (and for the dated rows, sorts), so that what is left in it is what no index can avoid
    (tests/pgplan.py): no table of records read whole, and the dated rows in an index's order (an
    Incremental Sort orders ties within that order, as SQLite's 'RIGHT PART OF ORDER BY')."""
    assert isinstance(archive.conn, PgConnection)
    few, many = WAYS[way]
    phases = statements(archive, filters, few_matches=few, many_matches=many)
    assert phases
    in_order = not (filters.text and way == "collect")
    for n, phase in enumerate(phases):
        for sql, params in phase:
            nodes = plan_nodes(archive.conn, sql, [*params, 10], sorts_too=in_order and n == 0, lookups=True)
            assert not whole_reads(nodes, ["record", "record_participant", "record_terms_row"]), (sql, nodes)
            if in_order and n == 0:
                assert "Sort" not in [node["Node Type"] for node in nodes], (sql, nodes)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("way", WAYS)
def test_every_filter_reads_an_index_and_the_dated_rows_come_in_its_order(
        filled: Archive, kind: str, way: str) -> None:
    if db.dialect(filled.conn) == "postgresql":
        check_pg_plans(filled, KINDS[kind], way)
        return
    phases = plan(filled, KINDS[kind], way)
    assert phases
    for steps in (steps for phase in phases for steps in phase):
        # "SCAN record" alone is the whole table; "SCAN record USING INDEX" would be a whole index.
        assert not [step for step in steps if re.match(r"SCAN (record|p|w)\b", step)], (kind, steps)
    if not (KINDS[kind].text and way == "collect"):
        # The dated rows: read in the index's time order (ties by id may be sorted, nothing more).
        for steps in phases[0]:
            assert "USE TEMP B-TREE FOR ORDER BY" not in steps, (kind, steps)


def found(archive: Archive, filters: Filters, way: str = "collect") -> list[tuple[str, str | None]]:
    few, many = WAYS[way]
    return [(row["sender"], row["created_at"]) for row in search(archive, filters, few_matches=few, many_matches=many)]


def test_results_are_in_time_order_undated_last_and_the_limit_spans_both(filled: Archive) -> None:
    rows = list(search(filled, Filters()))
    assert [row["created_at"] is None for row in rows] == [False] * 7 + [True]
    dated = [row["created_at"] for row in rows[:7]]
    assert dated == sorted(dated, key=lambda at: datetime.fromisoformat(at))
    assert [row["id"] for row in search(filled, Filters(limit=3))] == [row["id"] for row in rows[:3]]
    assert len(list(search(filled, Filters(text="budget", limit=8)))) == 8


def test_participant_is_case_insensitive_for_sender_and_recipients(filled: Archive) -> None:
    assert len(found(filled, Filters(participant="JANE DOE"))) == 6  # the chat's sender, as the export names her
    # The mail's recipient, stored as written ("Counterpart@Partner.example"), asked in other cases.
    assert found(filled, Filters(participant="counterpart@PARTNER.example")) == \
        found(filled, Filters(participant="Counterpart@Partner.example"))
    assert len(found(filled, Filters(participant="counterpart@partner.example"))) == 2
    assert found(filled, Filters(participant="counterpart@partner.example", since=MAIL_AT)) == \
        [("jane.doe@gmail.com", MAIL_AT.isoformat())]
    assert found(filled, Filters(participant="nobody@partner.example")) == []


@pytest.mark.parametrize("way", WAYS)
def test_text_needs_every_word_whichever_way_it_is_run(filled: Archive, way: str) -> None:
    both = found(filled, Filters(text="PELICAN budget"), way)
    assert [at for _, at in both] == sorted((at for _, at in both), key=lambda at: datetime.fromisoformat(at or ""))
    assert len(both) == 3  # two chat lines and the mail
    assert found(filled, Filters(text="pelican lunch"), way) == []
    assert len(found(filled, Filters(text="budget"), way)) == 8
    assert found(filled, Filters(text="budget", status="undated"), way) == [("jane.doe@gmail.com", None)]
    assert found(filled, Filters(text="budget", participant="counterpart@partner.example"), way) == \
        found(filled, Filters(participant="counterpart@partner.example"), way)


def test_since_is_inclusive_and_until_exclusive(filled: Archive) -> None:
    every = found(filled, Filters(platform="whatsapp"))
    second, fourth = (datetime.fromisoformat(every[n][1] or "") for n in (1, 3))
    window = found(filled, Filters(platform="whatsapp", since=second, until=fourth))
    assert window == every[1:3]
    assert found(filled, Filters(since=second, until=second)) == []
    # A window leaves undated records out.
    assert all(at is not None for _, at in found(filled, Filters(since=datetime(2000, 1, 1, tzinfo=UTC))))


TAMPERING = {
    "a recipient's row removed": "DELETE FROM record_participant WHERE participant = 'counterpart@partner.example' "
                                 "AND created_utc != ''",
    "a recipient's row added": "INSERT INTO record_participant SELECT 'someone else', created_utc, record_id "
                               "FROM record_participant WHERE participant = 'counterpart@partner.example' LIMIT 1",
    "a recipient's row moved in time": "UPDATE record_participant SET created_utc = '2000-01-01T00:00:00Z' "
                                       "WHERE participant = 'counterpart@partner.example' AND created_utc != ''",
    "a word row pointed elsewhere": "UPDATE record_terms_row SET terms_rowid = "
                                    "(SELECT max(terms_rowid) + 100 FROM record_terms_row) "
                                    "WHERE terms_rowid = (SELECT min(terms_rowid) FROM record_terms_row)",
    "a word row's place removed": "DELETE FROM record_terms_row WHERE terms_rowid = "
                                  "(SELECT max(terms_rowid) FROM record_terms_row)",
    "a word row's place moved in time": "UPDATE record_terms_row SET created_utc = '2000-01-01T00:00:00Z' "
                                        "WHERE terms_rowid = (SELECT min(terms_rowid) FROM record_terms_row)",
    "a word row's place given to another record": "UPDATE record_terms_row SET record_id = 'rec-not-this-one' "
                                                  "WHERE terms_rowid = (SELECT min(terms_rowid) FROM record_terms_row)",
}


@pytest.mark.parametrize("change", TAMPERING)
def test_verify_names_an_altered_search_index(filled: Archive, change: str) -> None:
    assert verify_archive(filled.config).problems == []
    assert filled.conn.execute(TAMPERING[change]).rowcount == 1
    problems = [str(p) for p in verify_archive(filled.config).problems]
    assert len(problems) == 1 and "search index" in problems[0], problems


def test_deleting_a_record_removes_its_search_index_rows(filled: Archive) -> None:
    record_id = next(search(filled, Filters(participant="counterpart@partner.example")))["id"]
    filled.conn.execute("DELETE FROM record_terms WHERE record_id = ?", (record_id,))
    filled.conn.execute("DELETE FROM record WHERE id = ?", (record_id,))
    for table in ("record_participant", "record_terms_row"):
        assert filled.conn.execute(f"SELECT count(*) FROM {table} WHERE record_id = ?", (record_id,)).fetchone() == (0,)
    assert found(filled, Filters(participant="counterpart@partner.example")) == [("jane.doe@gmail.com", None)]


def test_the_cli_prints_the_same_json_as_before_and_a_table_with_its_count(filled: Archive) -> None:
    directory = filled.config.path.parent
    rows = list(search(filled, Filters(text="budget")))
    code, output = run(directory, "search", "--json", "--text", "budget")
    assert code == 0 and output == json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    assert run(directory, "search", "--json", "--text", "nothing-like-it") == (0, "[]\n")
    code, output = run(directory, "search", "--participant", "JANE DOE", "--limit", "4")
    lines = output.splitlines()
    assert lines[0].split() == ["ID", "CUSTODIAN", "PLATFORM", "CONVERSATION", "CREATED", "STATUS", "DAYS",
                                "LATE", "DIRECTION", "SENDER"]
    assert len(lines) == 6 and all("Budget Team" in line and line.endswith("Jane Doe") for line in lines[1:5])
    assert lines[-1] == "4 record(s)"
