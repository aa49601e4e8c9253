"""Flip one byte in each kind of object: verify must fail and name it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.indexdb import open_index
from twentyday.cli import cli
from twentyday.store import db
from twentyday.store.objects import pointer, read_pointer


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


@pytest.fixture
def filled(archive_dir: Path, tmp_path: Path) -> Path:
    for n in range(3):
        path = tmp_path / f"m{n}.eml"
        path.write_bytes(make_mail(body=f"message number {n}", message_id=f"<m{n}@x>",
                                   attachment=("a.bin", bytes(range(256)) * (n + 1))))
        assert run(archive_dir, "ingest", str(path))[0] == 0
    return archive_dir


def tamper(archive_dir: Path, change: Callable[[db.Connection], str]) -> str:
    conn = open_index(archive_dir)
    try:
        return change(conn)
    finally:
        conn.close()


def flip(value: bytes | str, at: int = 20) -> bytes | str:
    if isinstance(value, str):
        return value[:at] + chr(ord(value[at]) ^ 1) + value[at + 1:]
    return value[:at] + bytes([value[at] ^ 1]) + value[at + 1:]


def flip_chunk(conn: db.Connection) -> str:
    """A blob's sealed bytes altered where the index keeps them: one byte of its chunk row flipped, or
    (S3: the bytes are in a locked segment, the row holds where) its pointer moved one byte back."""
    rows = conn.execute("SELECT blob_id, seq, data FROM chunk ORDER BY blob_id").fetchall()
    for blob_id, seq, data in rows:
        found = read_pointer(bytes(data))
        if found is None:
            changed = flip(bytes(data))
        elif found.offset > 0:  # the chunk's length of bytes still read from its segment: other bytes
            changed = pointer(found.key, found.offset - 1, found.length)
        else:
            continue
        conn.execute("UPDATE chunk SET data = ? WHERE blob_id = ? AND seq = ?", (changed, blob_id, seq))
        return f"blob {blob_id}"
    raise AssertionError("no chunk to alter")


def swap_chunks(conn: db.Connection) -> str:
    """Two captures' raw blobs swap what their first chunk rows hold: the sealed bytes, or (S3) the
    pointers, each then naming a segment of the other capture."""
    (first, first_data), (second, second_data) = conn.execute(
        "SELECT blob_id, data FROM chunk WHERE seq = 0 AND blob_id IN (SELECT raw_blob FROM capture) "
        "ORDER BY blob_id LIMIT 2").fetchall()
    assert (read_pointer(bytes(first_data)) or first_data) != (read_pointer(bytes(second_data)) or second_data)
    conn.execute("UPDATE chunk SET data = ? WHERE blob_id = ? AND seq = 0", (second_data, first))
    conn.execute("UPDATE chunk SET data = ? WHERE blob_id = ? AND seq = 0", (first_data, second))
    return f"blob {first}"


def flip_record_row(conn: db.Connection) -> str:
    record_id, sender = conn.execute("SELECT id, sender FROM record ORDER BY id LIMIT 1").fetchone()
    conn.execute("UPDATE record SET sender = ? WHERE id = ?", (flip(sender, 2), record_id))
    return f"record {record_id}"


def backdate_capture(conn: db.Connection) -> str:
    record_id, captured = conn.execute("SELECT id, captured_at FROM record ORDER BY id LIMIT 1").fetchone()
    conn.execute("UPDATE record SET captured_at = ?, status = 'on_time' WHERE id = ?",
                 ("2020" + captured[4:], record_id))
    return f"record {record_id}"


def flip_ledger_entry(conn: db.Connection) -> str:
    seq, payload = conn.execute("SELECT seq, payload FROM ledger WHERE kind = 'pack' LIMIT 1").fetchone()
    conn.execute("UPDATE ledger SET payload = ? WHERE seq = ?", (flip(payload, 30), seq))
    return f"ledger entry {seq}"


def delete_chunk(conn: db.Connection) -> str:
    blob_id = conn.execute("SELECT blob_id FROM chunk ORDER BY blob_id DESC LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM chunk WHERE blob_id = ?", (blob_id,))
    return f"blob {blob_id}"


def delete_record(conn: db.Connection) -> str:
    record_id = conn.execute("SELECT id FROM record ORDER BY id LIMIT 1").fetchone()[0]
    conn.execute("DELETE FROM record WHERE id = ?", (record_id,))
    return f"record {record_id}"


def unaccounted_blob(conn: db.Connection) -> str:
    conn.execute("INSERT INTO blob VALUES ('bforged', 'cap-x', 'rec-x', 'content', 1, 1, 'x')")
    conn.execute("INSERT INTO chunk (blob_id, seq, data) VALUES ('bforged', 0, ?)", (b"\x00",))
    return "blob bforged"


def forged_checkpoint(conn: db.Connection) -> str:
    seq = conn.execute("SELECT max(seq) FROM checkpoint").fetchone()[0]
    conn.execute("UPDATE checkpoint SET signature = ? WHERE seq = ?", ("A" * 88, seq))
    return f"checkpoint {seq}"


@pytest.mark.parametrize("change", [flip_chunk, swap_chunks, flip_record_row, backdate_capture, flip_ledger_entry,
                                    delete_chunk, delete_record, unaccounted_blob, forged_checkpoint])
def test_verify_names_the_altered_object(filled: Path, change: Callable[[db.Connection], str]) -> None:
    assert run(filled, "verify")[0] == 0
    named = tamper(filled, change)
    code, output = run(filled, "verify", "--json")
    assert code == 5
    report = json.loads(output)
    assert report["ok"] is False
    assert named in [p["object"] for p in report["problems"]], report["problems"]
    if change in (flip_chunk, swap_chunks):  # bytes read, on either backend, that are not the blob's
        assert {"kind": "altered", "object": named} in [
            {"kind": p["kind"], "object": p["object"]} for p in report["problems"]], report["problems"]


def test_verify_text_output_names_problem_and_fails(filled: Path) -> None:
    named = tamper(filled, flip_chunk)
    code, output = run(filled, "verify")
    assert code == 5
    assert named in output
    assert "FAILED" in output


def test_links_from_later_captures_verify_and_tampering_is_named(archive_dir: Path, tmp_path: Path) -> None:
    raw = make_mail(message_id="<same@x>")
    (tmp_path / "a.eml").write_bytes(raw)
    (tmp_path / "b.eml").write_bytes(b"X-Relay: again\r\n" + raw)
    assert run(archive_dir, "ingest", str(tmp_path / "a.eml"), str(tmp_path / "b.eml"))[0] == 0
    assert run(archive_dir, "verify")[0] == 0

    def move_link(conn: db.Connection) -> str:
        record_id, capture_id = conn.execute(
            "SELECT rc.record_id, rc.capture_id FROM record_capture rc JOIN record r ON r.id = rc.record_id "
            "WHERE rc.capture_id != r.capture_id").fetchone()
        conn.execute("UPDATE record_capture SET captured_at = '2020-01-01T00:00:00+00:00' WHERE capture_id = ?",
                     (capture_id,))
        return f"link {record_id}/{capture_id}"

    named = tamper(archive_dir, move_link)
    code, output = run(archive_dir, "verify", "--json")
    assert code == 5
    assert named in [p["object"] for p in json.loads(output)["problems"]]


def test_an_index_missing_a_table_is_named_damaged_in_one_line(filled: Path) -> None:
    tamper(filled, lambda conn: str(conn.execute("DROP TABLE record_capture").rowcount))
    code, output = run(filled, "verify", "--json")
    assert code == 5
    [problem] = [p for p in json.loads(output)["problems"] if p["detail"].startswith("database is damaged: ")]
    assert problem["object"] in ("index.db", "index")  # SQLite's file, or the database in PostgreSQL
    assert "record_capture" in problem["detail"] and "\n" not in problem["detail"]
