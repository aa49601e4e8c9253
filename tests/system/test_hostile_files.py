"""Hostile files through the real ``twentyday ingest``: kept in quarantine, never a crash, a hang or an escape.

Every case builds a real file in ``tmp_path`` and ingests it with the command a
records officer runs. Each must end the same way: exit code 4, an output line
starting ``quarantined``, a sealed capture in state ``quarantined`` whose reason
names the problem, an ``ingest_failed`` alert, nothing written outside the
archive's data directory, and ``twentyday verify`` still passing.

The working directory is moved inside ``tmp_path`` for each test, so a relative
escape (``../evil.txt``) would land where the test can see it.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import BinaryIO

import pytest
from click.testing import CliRunner

from tests.chatgen import android_line
from tests.sealed_detail import sealed_detail
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.parsers import base, registry
from twentyday.parsers.base import DEFAULT_LIMITS, ParserModule, ZipSource
from twentyday.store.archive import Archive

#: No single case may take longer than this; a hang fails the test instead of the run.
CASE_SECONDS = 60
#: Absolute places a zip-slip entry aims at; none may exist after any case.
ABSOLUTE_TARGETS = (Path("/etc/evil"), Path("/evil"), Path("/tmp/evil"))
DEPTH = 100_000


def chat(count: int = 5) -> bytes:
    """A small valid Android export (day 13 settles the date order), so only the hostile part is wrong."""
    start = datetime(2026, 10, 13, 8, 0)
    return "".join(android_line(n, start) for n in range(count)).encode()


# --- harness -----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """Turn a hang into a failure: SIGALRM raises in the test (pytest runs it on the main thread)."""

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"a hostile file took longer than {CASE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(CASE_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def inside_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run two levels down in tmp_path, so '../evil.txt' and 'a/../../evil' resolve to checkable places."""
    deep = tmp_path / "cwd" / "deep"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    return deep


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # CliRunner swallows exceptions; a crash must fail loudly with its traceback.
        raise result.exception
    return result.exit_code, result.output


def snapshot(root: Path, data_dir: Path) -> set[Path]:
    """Every path under root except the archive's data directory (the one place ingest may write)."""
    return {p for p in root.rglob("*") if data_dir not in p.parents and p != data_dir}


def quarantined(archive_dir: Path, path: Path) -> str:
    """Ingest ``path`` as jdoe; check the whole quarantine contract; return the capture's reason:
    its code (the index's), then the full text only the officer reads (sealed), ``code: text``."""
    tmp_root = archive_dir.parent
    data_dir = archive_dir / "data"
    before = snapshot(tmp_root, data_dir)

    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(path))

    assert code == 4, output
    assert "Traceback" not in output
    # "quarantined  NAME  CAPTURE-ID  REASON"; the name may hold spaces, the columns are two apart.
    # Searched by line: the runner's output may carry log lines from stderr too.
    line = re.search(rf"^quarantined +{re.escape(path.name)}  (?P<id>\S+)  (?P<reason>.+)$", output, re.MULTILINE)
    assert line is not None, output
    capture_id = line["id"]
    archive = Archive(config_module.load(archive_dir / "twentyday.toml"))
    try:
        row = archive.conn.execute(
            "SELECT state, reason, custodian, size, raw_blob FROM capture WHERE id = ?", (capture_id,)
        ).fetchone()
        detail = sealed_detail(archive, archive_dir, capture_id)
    finally:
        archive.close()
    assert row is not None, f"no capture {capture_id}"
    state, reason, custodian, size, raw_blob = row
    assert (state, custodian) == ("quarantined", "jdoe")
    assert reason and reason in output  # the officer sees the same reason the archive keeps
    # In clear, a code only (the item's names are in the text, sealed with it, with its own name).
    assert re.fullmatch(r"[a-z0-9_]+", reason), reason
    assert detail["name"] == path.name and detail["reason"], detail
    assert size == path.stat().st_size and raw_blob  # the item itself is sealed, whatever it is

    code, alerts_json = run(archive_dir, "alerts", "--json")
    assert code == 0, alerts_json
    assert any(a["kind"] == "ingest_failed" and capture_id in a["detail"] for a in json.loads(alerts_json))

    code, verified = run(archive_dir, "verify")
    assert code == 0, verified

    # Nothing new outside the data directory (the ingested file itself was written before 'before').
    assert snapshot(tmp_root, data_dir) == before
    for target in ABSOLUTE_TARGETS:
        assert not target.exists(), target
    return f"{reason}: {detail['reason']}"


def write_zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


# --- zip slip and symlinks ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "C:\\evil", "a/../../evil"])
def test_zip_slip_entry_is_quarantined(archive_dir: Path, tmp_path: Path, name: str) -> None:
    # A real WhatsApp export with one extra entry aimed outside: without the guard it would parse.
    path = write_zip(tmp_path / "WhatsApp Chat with Bob.zip", [("_chat.txt", chat()), (name, b"pwned\n")])
    reason = quarantined(archive_dir, path)
    assert reason.startswith("zip_slip: ") and "zip slip" in reason
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "cwd" / "evil.txt").exists()
    assert not (tmp_path / "evil").exists()


def test_symlink_entry_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    link = zipfile.ZipInfo("IMG-0001.jpg")
    link.create_system = 3  # Unix, so the mode bits in external_attr count
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = write_zip(tmp_path / "WhatsApp Chat with Bob.zip", [("_chat.txt", chat()), (link, b"/etc/passwd")])
    reason = quarantined(archive_dir, path)
    assert reason.startswith("zip_entry_symlink: ") and "symbolic link" in reason


# --- zip bombs ----------------------------------------------------------------------------------


def test_high_ratio_entry_is_quarantined_as_a_bomb(archive_dir: Path, tmp_path: Path) -> None:
    # 1 GiB of blank 1 MiB lines after one header, streamed into the zip (~1 MB compressed, ~1000:1).
    # Lines, not one run of zeros: a single long line would stop at the line limit first, and this
    # must reach the ratio guard. The header's date is ambiguous (1/2), so the layout pass keeps
    # reading in search of a day above 12 -- straight into the bomb.
    path = tmp_path / "WhatsApp Chat with Bob.zip"
    blank = b" " * (1024 * 1024 - 1) + b"\n"
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open("_chat.txt", "w", force_zip64=True) as entry,
    ):
        entry.write(b"01/02/2026, 10:00 - Jane Doe: see below\n")
        for _ in range(1024):
            entry.write(blank)
    assert path.stat().st_size * base.MAX_RATIO < 1024**3  # the ratio really is past the guard
    reason = quarantined(archive_dir, path)
    assert "zip bomb" in reason


#: Version 2.0, no flags, deflate, DOS time 00:00 and date 1980-01-01 (0x21): every field a header needs.
_COMMON = (20, 0, zipfile.ZIP_DEFLATED, 0, 0x21)


def _local_header(name: bytes, crc: int, compressed: int, size: int) -> bytes:
    return struct.pack("<4s5H3L2H", b"PK\x03\x04", *_COMMON, crc, compressed, size, len(name), 0) + name


def _central_entry(name: bytes, crc: int, compressed: int, size: int, offset: int) -> bytes:
    # Made by version 20; no extra, comment, disk number or attributes.
    fields = (crc, compressed, size, len(name), 0, 0, 0, 0, 0, offset)
    return struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, *_COMMON, *fields) + name


def _end_record(count: int, cd_size: int, cd_offset: int) -> bytes:
    return struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, 0)


def fifield_bomb(path: Path, files: int, kernel_bytes: int) -> list[str]:
    """David Fifield's overlapping zip bomb (https://www.bamsoftware.com/hacks/zipbomb/), quoted variant.

    One deflate kernel at the end; each file's data is a stored (non-compressed) deflate block
    quoting the next file's local header, then runs on into that file's data. So file i expands to
    every later local header plus the kernel: N files, N x kernel bytes, from one kernel.
    """
    names = [f"doc{i:04d}.txt".encode() for i in range(files)]
    kernel_out = b"\n" * kernel_bytes
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    kernel = packer.compress(kernel_out) + packer.flush()
    # From the last file back: a file's CRC and sizes cover every later header, so build those first.
    headers: list[bytes] = [b""] * files
    sizes: list[tuple[int, int, int]] = [(0, 0, 0)] * files  # crc, compressed, uncompressed
    tail_out = kernel_out  # what file i decompresses to, grown header by header
    tail_in = kernel  # file i's compressed data
    for i in reversed(range(files)):
        crc = zlib.crc32(tail_out)
        sizes[i] = (crc, len(tail_in), len(tail_out))
        headers[i] = _local_header(names[i], crc, len(tail_in), len(tail_out))
        if i:
            quote = struct.pack("<BHH", 0x00, len(headers[i]), len(headers[i]) ^ 0xFFFF)  # BFINAL=0, stored
            tail_out = headers[i] + tail_out
            tail_in = quote + headers[i] + tail_in
    body = headers[0] + tail_in
    offsets = []
    position = 0
    for header in headers:
        offsets.append(position)
        position += len(header) + 5  # each header is followed by the next quote (the last by the kernel)
    directory = b"".join(_central_entry(names[i], *sizes[i], offsets[i]) for i in range(files))
    path.write_bytes(body + directory + _end_record(files, len(directory), len(body)))
    return [n.decode() for n in names]


def test_overlapping_entries_bomb_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "export.zip"
    names = fifield_bomb(path, files=200, kernel_bytes=1024 * 1024)
    # The construction is sound: the stdlib reads file 0 with a good CRC (3.11.7 has no overlap check;
    # later zipfile versions refuse it themselves, which is fine too).
    try:
        with zipfile.ZipFile(path) as opened:
            expanded = len(opened.read(names[0]))
        assert expanded > 1024 * 1024
    except zipfile.BadZipFile as error:
        assert "verlap" in str(error)
    reason = quarantined(archive_dir, path)
    assert "overlap" in reason


def test_many_directory_entries_for_one_local_header_are_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    # The plain form: 1,000 central-directory entries, one local file (same name, so zipfile's
    # header/name check passes) -- 1,000 x the data from one copy of it.
    data = b"\n" * (1024 * 1024)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    packed = packer.compress(data) + packer.flush()
    crc, name = zlib.crc32(data), b"_chat.txt"
    local = _local_header(name, crc, len(packed), len(data)) + packed
    directory = _central_entry(name, crc, len(packed), len(data), 0) * 1000
    path = tmp_path / "WhatsApp Chat with Bob.zip"
    path.write_bytes(local + directory + _end_record(1000, len(directory), len(local)))
    reason = quarantined(archive_dir, path)
    assert "overlap" in reason


def test_too_many_directory_entries_are_refused_before_zipfile_builds_them(archive_dir: Path, tmp_path: Path) -> None:
    # The real limit (Limits.zip_entries, 200,000; tests/parsers/test_formats.py refuses 51 entries
    # against a lowered one): 400,000 bare central-directory entries (22 MB). zipfile alone would build
    # every ZipInfo (~250 MB) before the limit could be checked; the pre-count stops at
    # the limit + 1 without building any. All entries name one local header, so a count that
    # let them through would still be refused as overlap -- the reason tells which guard fired.
    entries = 400_000
    name = b"IMG-0001.jpg"
    local = _local_header(name, 0, 2, 0) + b"\x03\x00"  # an empty deflate stream
    directory = _central_entry(name, 0, 2, 0, 0) * entries
    path = tmp_path / "WhatsApp Chat with Bob.zip"
    path.write_bytes(local + directory + _end_record(0xFFFF, len(directory), len(local)))
    del directory
    tracemalloc.start()
    try:
        reason = quarantined(archive_dir, path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert f"more than {DEFAULT_LIMITS.zip_entries} zip entries" in reason
    assert peak < 100 * 1024 * 1024, f"{peak / 1e6:.0f} MB traced while refusing it"


def _with_zip64_end(raw: bytes) -> bytes:
    """The same zip with a zip64 end record and locator, and a classic end record saying 'see zip64'."""
    end = raw.rindex(b"PK\x05\x06")
    _, _, _, count, _, size, offset, _ = struct.unpack_from("<4s4H2LH", raw, end)
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    classic = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return raw[:end] + record + locator + classic


@pytest.mark.parametrize("shape", ["plain", "comment", "prefixed", "zip64-end"])
def test_entry_pre_count_agrees_with_zipfile(tmp_path: Path, shape: str) -> None:
    path = write_zip(tmp_path / "export.zip", [(f"IMG-{n:04d}.jpg", b"\xff\xd8") for n in range(300)])
    raw = path.read_bytes()
    if shape == "comment":
        with zipfile.ZipFile(path, "a") as archive:
            archive.comment = b"exported by a phone " * 2000  # the end record is no longer the last 22 bytes
    elif shape == "prefixed":  # a self-extractor's stub before the zip
        path.write_bytes(b"MZ" + b"\0" * 5000 + raw)
    elif shape == "zip64-end":
        path.write_bytes(_with_zip64_end(raw))
    with zipfile.ZipFile(path) as archive:
        assert len(archive.infolist()) == 300
    with path.open("rb") as handle:
        assert base._directory_entries(handle, 1000) == 300
        assert base._directory_entries(handle, 100) == 101  # stops one past the limit


# --- damaged zips: read errors surface while a parser is choosing or reading -----------------------


def _single_entry(tmp_path: Path, data: bytes) -> tuple[Path, bytearray]:
    path = write_zip(tmp_path / "WhatsApp Chat with Bob.zip", [("_chat.txt", data)])
    return path, bytearray(path.read_bytes())


# Small chats fail while a parser is being chosen (detection reads the whole 8 KiB head, and the
# CRC is checked at the entry's end); large ones fail later, while the parser reads them.
WHEN = pytest.mark.parametrize("lines", [5, 3000], ids=["while-choosing", "while-parsing"])


@WHEN
def test_entry_with_a_wrong_crc_is_quarantined(archive_dir: Path, tmp_path: Path, lines: int) -> None:
    data = chat(lines)
    path, raw = _single_entry(tmp_path, data)
    good = struct.pack("<L", zlib.crc32(data))
    assert raw.count(good) == 2  # local header and central directory
    path.write_bytes(bytes(raw).replace(good, struct.pack("<L", zlib.crc32(data) ^ 1)))
    reason = quarantined(archive_dir, path)
    assert reason.startswith("zip_entry_unreadable: ") and "Bad CRC-32" in reason


@WHEN
def test_entry_with_corrupt_deflate_data_is_quarantined(archive_dir: Path, tmp_path: Path, lines: int) -> None:
    path, raw = _single_entry(tmp_path, chat(lines))
    central = raw.index(b"PK\x01\x02")
    # Garble 16 bytes near the end of the compressed data (for a small entry, that is its start too).
    raw[central - 40 : central - 24] = b"\xff" * 16
    path.write_bytes(bytes(raw))
    reason = quarantined(archive_dir, path)
    assert re.search(r"cannot be read \((Error -3 while decompressing|Bad CRC-32)", reason), reason


def test_encrypted_entry_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    path, raw = _single_entry(tmp_path, chat())
    # Set the "encrypted" flag bit in the local header (offset 6) and the central entry (offset 8).
    raw[6] |= 1
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 1
    path.write_bytes(bytes(raw))
    reason = quarantined(archive_dir, path)
    assert reason.startswith("zip_entry_encrypted: ") and "encrypt" in reason


# --- WhatsApp text, and single files with nothing readable in them --------------------------------


def test_whatsapp_line_of_two_mib_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Bob.txt"
    path.write_bytes(chat(3) + b"13/10/2026, 09:00 - Jane Doe: " + b"x" * (2 * 1024 * 1024) + b"\n" + chat(2))
    reason = quarantined(archive_dir, path)
    assert re.search(r"line 4: longer than \d+ bytes", reason), reason


def test_whatsapp_invalid_utf8_in_the_middle_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    lines = chat(1000).splitlines(keepends=True)
    lines[499] = lines[499].replace(b"message", b"mess\xc3\x28ge")  # a lead byte with no continuation
    path = tmp_path / "WhatsApp Chat with Bob.txt"
    path.write_bytes(b"".join(lines))
    reason = quarantined(archive_dir, path)
    assert reason.startswith("not_utf8: ") and "line 500: not valid UTF-8" in reason


def test_file_of_nul_bytes_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Bob.txt"
    path.write_bytes(b"\x00" * (1024 * 1024))
    reason = quarantined(archive_dir, path)
    assert reason.startswith("unrecognised_format: ") and "not a format twentyday reads" in reason


def test_zero_byte_file_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "WhatsApp Chat with Bob.txt"
    path.write_bytes(b"")
    reason = quarantined(archive_dir, path)
    assert "empty" in reason


def _laughs() -> bytes:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">' for n in range(1, 10)
    ]
    return ("<!DOCTYPE smses [\n  " + "\n  ".join(entities) + "\n]>\n").encode()


SMS = (
    b'<smses count="1">\n<sms protocol="0" address="+15555550100" date="1760342400000" type="1" '
    b'body="&lol9;" read="1" status="-1" contact_name="Bob" />\n</smses>\n'
)


def test_billion_laughs_sms_backup_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "sms-20261013.xml"
    path.write_bytes(b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n" + _laughs() + SMS)
    reason = quarantined(archive_dir, path)
    assert "entity declarations are not allowed" in reason


def test_billion_laughs_past_the_head_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    # A 16 KiB comment (mentioning <smses> so detection still says yes) pushes the DTD past the
    # 8 KiB head check; the streaming check must still refuse it before expat reads it.
    padding = b"<!-- <smses> " + b"x" * 16384 + b" -->\n"
    path = tmp_path / "sms-20261013.xml"
    path.write_bytes(b"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n" + padding + _laughs() + SMS)
    reason = quarantined(archive_dir, path)
    assert "entity declarations are not allowed" in reason


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_deeply_nested_messenger_json_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    # The head carries the keys Messenger detection looks for, so the parser itself meets the nesting.
    document = (
        '{"participants": [{"name": "Jane Doe"}], "messages": [{"sender_name": "Jane Doe", '
        '"timestamp_ms": 1760342400000, "content": "hi", "x": ' + nested(DEPTH) + "}]}"
    )
    path = tmp_path / "message_1.json"
    path.write_text(document)
    reason = quarantined(archive_dir, path)
    assert re.search(r"recursion|nest|depth", reason), reason


def telegram_nested() -> str:
    return (
        '{"name": "Bob", "type": "personal_chat", "id": 1, "messages": [{"id": 1, "type": "message", '
        '"date": "2026-10-13T08:00:00", "date_unixtime": "1760342400", "from": "Bob", "text": ' + nested(DEPTH) + "}]}"
    )


def test_deeply_nested_telegram_json_is_quarantined(archive_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text(telegram_nested())
    reason = quarantined(archive_dir, path)
    assert "nested too deeply" in reason


# --- the overlap check must not refuse honest zips ---------------------------------------------------


def test_cp437_names_are_not_mistaken_for_overlap(tmp_path: Path) -> None:
    # Zips from Windows' built-in tool name entries in the OEM code page without the UTF-8 flag.
    # 'caf\x82.jpg' is 'café.jpg' in cp437: 8 bytes on disk, 9 once re-encoded as UTF-8. The entries
    # follow each other with no gap, so reckoning the name in UTF-8 puts one inside the next.
    path = write_zip(tmp_path / "export.zip", [("cafX.jpg", b"\xff\xd8" * 10), ("_chat.txt", chat())])
    path.write_bytes(path.read_bytes().replace(b"cafX.jpg", b"caf\x82.jpg"))
    source = ZipSource(path)
    try:
        assert sorted(source.members()) == ["_chat.txt", "café.jpg"]
        with source.open("café.jpg") as stream:
            assert stream.read() == b"\xff\xd8" * 10
    finally:
        source.close()


def test_a_parser_bug_quarantines_the_item_instead_of_crashing(archive_dir: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from twentyday.parsers import whatsapp

    def broken(source: object, hints: object) -> object:
        raise KeyError("a bug in the parser, raised before the first record")

    monkeypatch.setattr(whatsapp, "parse", broken)
    path = tmp_path / "WhatsApp Chat with Team.txt"
    path.write_text("13/10/2026, 08:00 - Jane Doe: hello\n")
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "ingest",
                                      "--custodian", "jdoe", str(path)])
    assert result.exit_code == 4, result.output
    assert "parser_failed" in result.output
    assert "Traceback" not in result.output


def test_the_worker_seals_an_item_it_cannot_process(archive_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from twentyday.config import load
    from twentyday.pipeline import process as pipeline
    from twentyday.pipeline.worker import Worker
    from twentyday.spool import Spool, SpoolMeta
    from twentyday.store.archive import Archive

    config = load(archive_dir / "twentyday.toml")
    archive = Archive(config)
    spool = Spool.open(config)
    spool.put_bytes(b"anything", SpoolMeta("x.txt", "smtp", datetime.now(UTC), "jdoe"))

    def bug(archive: object, item: object) -> object:
        raise TypeError("a bug outside the parsers")

    monkeypatch.setattr(pipeline, "process", bug)
    try:
        [outcome] = Worker(archive, spool).run_once()
        assert outcome.state == "quarantined"
        assert "internal error (TypeError)" in outcome.detail
        assert list(spool.pending()) == []
    finally:
        spool.close()
        archive.close()


class _Unreadable(base.BytesSource):
    """A source whose every member fails to open, as a damaged or vanished export does."""

    def open(self, member: str) -> BinaryIO:
        raise OSError("gone")


@pytest.mark.parametrize("parser", registry.PARSERS, ids=lambda p: p.NAME)
@pytest.mark.parametrize("name", ["chat.md", "result.json", "chat.txt", "message_1.json", "channels.json",
                                  "sms.xml", "m.eml", "a.mbox"])
def test_detection_never_raises_on_a_source_that_cannot_be_read(parser: ParserModule, name: str) -> None:
    assert not parser.detect(_Unreadable(name, b"x"), b"")
