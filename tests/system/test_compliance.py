"""`twentyday compliance` and the tables of every human listing, on a real archive, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.scenario import AS_OF, autumn
from twentyday.cli import cli
from twentyday.store.archive import Archive


@pytest.fixture
def autumn_dir(archive: Archive, archive_dir: Path, tmp_path: Path) -> Path:
    autumn(archive, tmp_path / "exports")
    return archive_dir


def run(archive_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def summary(archive_dir: Path, *args: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(run(archive_dir, "compliance", "--json", *args))
    return found


def test_compliance_json_counts_days_late_alerts_and_conversations_at_risk(autumn_dir: Path) -> None:
    found = summary(autumn_dir, "--as-of", AS_OF.isoformat())
    assert (found["as_of"], found["deadline_rule"]) == ("2026-10-28T12:00:00+00:00", "calendar/20d")
    [jdoe] = found["custodians"]
    assert jdoe["by_status"] == {"copied": 0, "on_time": 14, "late": 4, "undated": 1}
    assert jdoe["by_direction"] == {"sent": 10, "received": 9}
    assert (jdoe["records"], jdoe["max_days_late"], jdoe["median_days_late"], jdoe["open_alerts"]) == (19, 28, 2.5, 4)
    assert jdoe["at_risk"] == [
        {"conversation": "Ops", "platform": "whatsapp", "covered_until": "2026-09-10T10:00:00-04:00",
         "export_by": "2026-09-30T23:59:59.999999-04:00", "passed": True},
        {"conversation": "Budget Team", "platform": "whatsapp", "covered_until": "2026-10-10T09:00:00-04:00",
         "export_by": "2026-10-30T23:59:59.999999-04:00", "passed": False},
    ]


def test_compliance_as_of_is_the_archive_as_it_stood_then(autumn_dir: Path) -> None:
    # 2026-10-01: exports A and Ops only; Ops is past its export-by date, Budget Team is at risk
    # (its coverage ended 09-05, 14 days before 09-19), the late export B and the mails not yet there.
    [then] = summary(autumn_dir, "--as-of", "2026-10-01T12:00:00-04:00")["custodians"]
    assert then["by_status"] == {"copied": 0, "on_time": 7, "late": 0, "undated": 0}
    assert (then["max_days_late"], then["median_days_late"], then["open_alerts"]) == (None, None, 1)
    assert [(r["conversation"], r["export_by"], r["passed"]) for r in then["at_risk"]] == [
        ("Budget Team", "2026-09-25T23:59:59.999999-04:00", True),
        ("Ops", "2026-09-30T23:59:59.999999-04:00", True)]
    # Before any reminder is due: nothing at risk.
    [early] = summary(autumn_dir, "--as-of", "2026-09-07T00:00:00+00:00")["custodians"]
    assert (early["records"], early["at_risk"]) == (5, [])


def test_compliance_since_and_until_count_records_by_their_created_time(autumn_dir: Path) -> None:
    [october] = summary(autumn_dir, "--as-of", AS_OF.isoformat(), "--since", "2026-10-01T00:00:00-04:00",
                        "--until", "2026-10-04T00:00:00-04:00")["custodians"]
    assert october["by_status"] == {"copied": 0, "on_time": 0, "late": 3, "undated": 0}
    assert (october["max_days_late"], october["median_days_late"]) == (3, 2.0)


def test_compliance_table_has_a_header_and_its_counts_on_lines_of_their_own(autumn_dir: Path) -> None:
    lines = run(autumn_dir, "compliance", "--as-of", AS_OF.isoformat()).splitlines()
    assert lines[0] == "As of 2026-10-28T12:00:00+00:00; deadline rule calendar/20d."
    assert lines[1].split() == ["CUSTODIAN", "NAME", "RECORDS", "COPIED", "ON", "TIME", "LATE", "UNDATED", "SENT",
                                "RECEIVED", "MAX", "LATE", "MEDIAN", "LATE", "OPEN", "ALERTS", "AT", "RISK"]
    assert lines[2].split() == ["jdoe", "Jane", "Doe", "19", "0", "14", "4", "1", "10", "9", "28d", "2.5d", "4", "2"]
    assert lines[3] == "1 custodian(s)"
    assert lines[5].split()[:3] == ["CUSTODIAN", "CONVERSATION", "PLATFORM"]
    # Times in the custodian's zone, to the minute.
    assert lines[6].split() == ["jdoe", "Ops", "whatsapp", "2026-09-10", "10:00", "EDT", "2026-09-30", "23:59", "EDT",
                                "passed"]
    assert lines[7].split() == ["jdoe", "Budget", "Team", "whatsapp", "2026-10-10", "09:00", "EDT", "2026-10-30",
                                "23:59", "EDT", "due"]
    assert lines[8] == "2 conversation(s) at risk"
    # Aligned: every row of the first table is as wide as its header's columns reach.
    assert lines[2].index("19") + 2 == lines[1].index("RECORDS") + len("RECORDS")


def test_an_unknown_custodian_is_not_found(autumn_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["--config", str(autumn_dir / "twentyday.toml"), "compliance",
                                      "--custodian", "nobody"])
    assert (result.exit_code, result.output) == (7, f"twentyday: no custodian 'nobody' in "
                                                    f"{autumn_dir / 'twentyday.toml'}\n")


def test_search_alerts_and_audit_print_a_header_row_and_the_count_on_its_own_line(autumn_dir: Path) -> None:
    found = run(autumn_dir, "search").splitlines()
    assert found[0].split() == ["ID", "CUSTODIAN", "PLATFORM", "CONVERSATION", "CREATED", "STATUS", "DAYS", "LATE",
                                "DIRECTION", "SENDER"]
    assert len(found) == 1 + 19 + 1 and found[-1] == "19 record(s)"
    late = next(line for line in found if "2026-10-01T09:00:00-04:00" in line)
    assert late.split()[6:9] == ["late", "3", "received"]  # "Budget Team" is two words
    columns = {name: found[0].index(name) for name in ("CREATED", "STATUS", "DIRECTION")}
    assert all(line[columns["STATUS"]:].split()[0] in {"on_time", "late", "undated"} for line in found[1:-1])
    listed = run(autumn_dir, "alerts").splitlines()
    assert listed[0].split()[:5] == ["ID", "SEVERITY", "KIND", "CUSTODIAN", "CONVERSATION"]
    assert [line.split()[2] for line in listed[1:-1]] == ["deleted_message", "late_capture", "late_capture",
                                                          "undated_record"]
    assert listed[-1] == "4 open alert(s)"
    assert run(autumn_dir, "audit").splitlines() == ["AT  ACTION  ACTOR  RECIPIENT  PURPOSE  RECORDS",
                                                     "0 disclosure(s)"]


def test_a_control_character_in_a_name_is_shown_escaped_and_cannot_break_a_row(archive: Archive, archive_dir: Path,
                                                                                tmp_path: Path) -> None:
    from tests.scenario import ingest

    export = tmp_path / "x.json"
    export.write_text(json.dumps({"name": "Team\nfake 0 record(s)", "type": "personal_chat", "id": 9, "messages": [
        {"id": 1, "type": "message", "date": "2026-09-01T09:00:00", "from": "Jane Doe", "from_id": 7,
         "text": "hello"}]}))
    ingest(archive, export, AS_OF)
    found = run(archive_dir, "search").splitlines()
    assert len(found) == 3 and "Team\\nfake 0 record(s)" in found[1] and found[2] == "1 record(s)"


def test_the_evidence_pack_states_what_arrived_how_late_the_holes_and_deletions(archive: Archive,
                                                                                archive_dir: Path,
                                                                                tmp_path: Path) -> None:
    import html
    import re

    from twentyday import errors
    from twentyday.report import NOT_A_FINDING

    captures = autumn(archive, tmp_path / "exports")
    page = tmp_path / "evidence.html"
    run(archive_dir, "report", "--html", str(page), "--as-of", AS_OF.isoformat(), "--evidence", "jdoe")
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.read_text()))
    words = " ".join(text.split())
    assert words.count(NOT_A_FINDING) == 2  # under the title and in the evidence pack
    # What arrived, in the order it arrived: id, received, channel, format, state, reason, messages, new, late.
    assert f"{captures['b']} 2026-10-24 08:00 EDT cli whatsapp ingested – 10 10 3" in words
    assert f"{captures['late_mail']} 2026-10-28 06:00 EDT cli email ingested – 1 1 1" in words
    # How late, by conversation; the hole; the deletion recorded by export A.
    assert "Budget Team whatsapp 15 3 0 3 2026-10-01 09:00 EDT 2026-10-03 09:00 EDT" in words
    assert (f"Budget Team 2026-09-05 09:00 EDT 2026-10-01 09:00 EDT {captures['a']} {captures['b']}") in words
    assert f"Budget Team deleted message 2026-09-03 09:00 EDT {captures['a']} 2026-09-06 08:00 EDT" in words
    for verdict in ("violation", "intentional", "suspicious", "guilty"):
        assert verdict not in words.lower()

    def code(*args: str) -> int:
        return CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "report", "--html",
                                        str(tmp_path / "x.html"), *args]).exit_code

    assert code("--evidence", "nobody") == errors.NotFoundError.exit_code
    assert code("--custodian", "jdoe", "--evidence", "other") == errors.InvalidArgument.exit_code
    assert not (tmp_path / "x.html").exists()
