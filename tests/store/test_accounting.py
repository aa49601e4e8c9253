"""`twentyday audit`: the accounting of disclosures as a table, JSON and CSV, for a window and for one person."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import NOW, make_mail
from tests.pgplan import plan_nodes, whole_reads
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.store import accounting, postgres
from twentyday.store.archive import Archive
from twentyday.store.postgres import PgConnection


def run(archive_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def two_shown(archive_dir: Path, tmp_path: Path) -> dict[str, str]:
    """Two mails of Jane's, one to Alice and one to Bob, each opened once with ``show``; then one
    disclosure of both (as an export makes), dated the first of January."""
    ids = {}
    for person in ("alice", "bob"):
        path = tmp_path / f"{person}.eml"
        path.write_bytes(make_mail(to=f"{person.title()} <{person}@partner.example>", message_id=f"<{person}@x>",
                                   date=NOW - timedelta(days=2)))
        run(archive_dir, "ingest", str(path))
        [found] = json.loads(run(archive_dir, "search", "--json", "--participant", f"{person}@partner.example"))
        ids[person] = found["id"]
        run(archive_dir, "show", found["id"], "--identity", str(archive_dir / "officer.key"),
            "--purpose", f'FOIA 2026-07, "{person}", part 1', "--recipient", "FOIA office")
    with Archive(config_module.load(archive_dir / "twentyday.toml"), officer=True) as archive:
        archive.record_disclosure(actor="rofficer", action="export", purpose="litigation, matter 12",
                                  recipient="Counsel", subjects=[ids["bob"], ids["alice"]],
                                  identity=keys.load_identity(archive_dir / "officer.key", None),
                                  at=datetime(2026, 1, 1, 9, tzinfo=UTC))
    return ids


def test_a_person_s_accounting_lists_only_disclosures_of_their_records_with_only_their_records(
        archive_dir: Path, two_shown: dict[str, str]) -> None:
    everything = json.loads(run(archive_dir, "audit", "--json"))
    assert [(d["action"], d["record_count"]) for d in everything] == [("export", 2), ("show", 1), ("show", 1)]
    alices: list[dict[str, Any]] = json.loads(run(archive_dir, "audit", "--json", "--participant",
                                                  "ALICE@partner.example"))
    assert [(d["action"], d["subjects"], d["record_count"]) for d in alices] == [
        ("export", [two_shown["alice"]], 1), ("show", [two_shown["alice"]], 1)]
    # Nothing of Bob's disclosure, nor of Bob's record in the export both were in; the officer's
    # signature covers the whole list, which is not Alice's to see.
    assert two_shown["bob"] not in json.dumps(alices)
    assert all(d["signature"] == "" for d in alices)
    assert alices[1]["purpose"] == 'FOIA 2026-07, "alice", part 1'
    table = run(archive_dir, "audit", "--participant", "alice@partner.example").splitlines()
    assert table[0].split() == ["AT", "ACTION", "ACTOR", "RECIPIENT", "PURPOSE", "RECORDS"]
    assert table[1].split() == ["2026-01-01T09:00:00+00:00", "export", "rofficer", "Counsel", "litigation,", "matter",
                                "12", "1"]
    assert table[-1] == "2 disclosure(s) of records about alice@partner.example"
    # Jane is in both records: her accounting has all three disclosures, the export with both records.
    janes = json.loads(run(archive_dir, "audit", "--json", "--participant", "jane.doe@gmail.com"))
    assert [d["record_count"] for d in janes] == [2, 1, 1]
    assert json.loads(run(archive_dir, "audit", "--json", "--participant", "nobody@partner.example")) == []


def test_csv_has_a_header_and_one_row_per_disclosure_and_reads_back(archive_dir: Path,
                                                                   two_shown: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "audit", "--csv"])
    text = result.stdout_bytes.decode()  # as written: Result.stdout would turn CRLF into LF
    assert text.startswith(",".join(accounting.FIELDS) + "\r\n")  # RFC 4180: CRLF
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [(r["action"], r["subjects"], r["record_count"]) for r in rows] == [
        ("export", f"{two_shown['bob']} {two_shown['alice']}", "2"), ("show", two_shown["alice"], "1"),
        ("show", two_shown["bob"], "1")]
    assert rows[1]["purpose"] == 'FOIA 2026-07, "alice", part 1'
    assert rows[1]["recipient"] == "FOIA office" and rows[1]["signature"]
    # Every field of the disclosure row is a column, whatever fields it has.
    assert set(rows[0]) == {*config_disclosure_fields(), "record_count"}
    bobs = list(csv.DictReader(io.StringIO(run(archive_dir, "audit", "--csv", "--participant", "bob@partner.example"),
                                           newline="")))
    assert [(r["action"], r["subjects"], r["record_count"]) for r in bobs] == [
        ("export", two_shown["bob"], "1"), ("show", two_shown["bob"], "1")]


def config_disclosure_fields() -> set[str]:
    import dataclasses

    from twentyday.store.disclosures import Disclosure

    return {field.name for field in dataclasses.fields(Disclosure)}


def test_since_and_until_bound_the_accounting(archive_dir: Path, two_shown: dict[str, str]) -> None:
    january = json.loads(run(archive_dir, "audit", "--json", "--until", "2026-01-02T00:00:00-05:00"))
    assert [d["action"] for d in january] == ["export"]
    later = json.loads(run(archive_dir, "audit", "--json", "--since", "2026-01-01T09:00:00.000001+00:00",
                           "--participant", "alice@partner.example"))
    assert [d["action"] for d in later] == ["show"]
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "audit", "--csv", "--json"])
    assert result.exit_code == 2 and "choose one of --json and --csv" in result.output
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "audit", "--since", "May"])
    assert result.exit_code == 2 and "ISO 8601" in result.output


def test_a_person_s_accounting_looks_records_up_by_key_never_scans_them(
        archive_dir: Path, two_shown: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    if config.index is not None:  # PostgreSQL: its own plan (tests/pgplan.py)
        statements: list[tuple[str, Any]] = []
        run_statement = PgConnection.execute

        def recorded(self: PgConnection, sql: str, parameters: Any = ()) -> Any:
            statements.append((sql, parameters))
            return run_statement(self, sql, parameters)

        pg = postgres.connect(config.index)
        try:
            monkeypatch.setattr(PgConnection, "execute", recorded)
            assert len(accounting.listing(pg, accounting.Request(participant="alice@partner.example"))) == 2
            monkeypatch.undo()
            [(query, params)] = [s for s in statements if "disclosure.subjects" in s[0]]
            nodes = plan_nodes(pg, query, params)
        finally:
            pg.close()
        assert [(n["Index Name"], n["Index Cond"]) for n in nodes if n.get("Relation Name") == "record"] == [
            ("record_pkey", "(id = named.value)")], nodes
        assert not whole_reads(nodes, ["record"]), nodes
        return
    conn = sqlite3.connect(archive_dir / "data" / "index.db")
    statements_run: list[str] = []
    conn.set_trace_callback(statements_run.append)
    assert len(accounting.listing(conn, accounting.Request(participant="alice@partner.example"))) == 2
    [query] = [s for s in statements_run if "json_each(disclosure.subjects)" in s]
    conn.set_trace_callback(None)
    plan = " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + query))
    assert "SEARCH record USING INDEX sqlite_autoindex_record_1 (id=?)" in plan, plan
    assert "SCAN record" not in plan, plan

