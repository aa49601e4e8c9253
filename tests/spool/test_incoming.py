"""Items written as their bytes arrive (a large SMTP message): sealed as written, framed all or none."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from twentyday import spool as spool_module
from twentyday.errors import IntakeError
from twentyday.spool import FILE_CHUNK, FILE_MAGIC, PARTIAL_SUFFIX, Spool, SpoolMeta

KEY = bytes(range(32))
STARTED = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
ENDED = STARTED + timedelta(seconds=41, microseconds=5)
CANARY = b"CANARY-7f3a9c-pelican-schedule"
ENVELOPE = {"mail_from": "jane.doe@gmail.com", "rcpt_tos": "records+jdoe@agency.example", "peer": "127.0.0.1"}


def smtp_meta(at: datetime, custodian: str | None = "jdoe") -> SpoolMeta:
    return SpoolMeta(f"smtp-{at:%Y%m%dT%H%M%S%f}.eml", "smtp", at, custodian,
                     envelope={**ENVELOPE, "received_at": at.isoformat()})


def message(size: int) -> bytes:
    """``size`` bytes of mail, the canary on every line."""
    line = b"Body line with " + CANARY + b" in it, padded to a fixed width.......\r\n"
    return (b"Subject: big\r\n\r\n" + line * (size // len(line) + 1))[:size]


def files_on_disk(spool_root: Path) -> list[str]:
    return sorted(p.name for p in (spool_root / "files").iterdir())


@pytest.mark.parametrize("size", [0, 1, FILE_CHUNK, FILE_CHUNK + 1, 3 * FILE_CHUNK - 17])
def test_written_in_pieces_it_reads_back_exactly_with_its_final_metadata(tmp_path: Path, size: int) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    data = message(size)
    incoming = spool.receive_file([smtp_meta(STARTED)])
    for at in range(0, size, 65_000):
        incoming.write(data[at:at + 65_000])
        assert incoming.buffered <= FILE_CHUNK  # no more than a chunk is held in memory
    [name] = files_on_disk(tmp_path / "spool")
    assert name.endswith(PARTIAL_SUFFIX)
    ids, ticket = incoming.commit([smtp_meta(ENDED)])
    spool.sync(ticket)

    assert files_on_disk(tmp_path / "spool") == ids
    [item] = spool.pending()
    assert item.id == ids[0] and item.file is not None
    assert item.meta == smtp_meta(ENDED)  # the receive time known when the message ended
    sealed = spool.sealed_file(item)
    assert sealed.size == size
    assert sealed.read_all() == data


def test_no_clear_byte_of_the_message_is_on_disk_while_it_arrives_or_after(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    data = message(3 * FILE_CHUNK)
    incoming = spool.receive_file([smtp_meta(STARTED)])
    incoming.write(data[:2 * FILE_CHUNK + 10])
    [partial] = (tmp_path / "spool" / "files").iterdir()
    on_disk = partial.read_bytes()
    assert len(on_disk) > 2 * FILE_CHUNK  # two chunks are sealed and written already
    for clear in (CANARY, b"jane.doe@gmail.com", b"records+jdoe", b"2026-11-22"):
        assert clear not in on_disk
    incoming.write(data[2 * FILE_CHUNK + 10:])
    spool.sync(incoming.commit([smtp_meta(ENDED)])[1])
    everything = b"".join(p.read_bytes() for p in (tmp_path / "spool").rglob("*") if p.is_file())
    for clear in (CANARY, b"jane.doe@gmail.com", b"records+jdoe", b"2026-11-22"):
        assert clear not in everything


def test_a_message_for_two_custodians_is_two_items_each_with_a_file_of_its_own(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    data = message(2 * FILE_CHUNK + 5)
    incoming = spool.receive_file([smtp_meta(STARTED, "jdoe"), smtp_meta(STARTED, "asmith")])
    incoming.write(data)
    ids, ticket = incoming.commit([smtp_meta(ENDED, "jdoe"), smtp_meta(ENDED, "asmith")])
    spool.sync(ticket)

    items = list(spool.pending())
    assert [i.id for i in items] == ids and len(set(ids)) == 2
    assert [i.meta.custodian for i in items] == ["jdoe", "asmith"]
    assert [spool.sealed_file(i).read_all() for i in items] == [data, data]
    # Done one at a time: each file is destroyed with its own item, the other still reads.
    spool.mark_done(items[0])
    assert files_on_disk(tmp_path / "spool") == [ids[1]]
    assert spool.sealed_file(items[1]).read_all() == data
    spool.mark_done(items[1])
    assert files_on_disk(tmp_path / "spool") == []


def test_discarded_its_keys_are_zeroed_and_its_files_unlinked(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    incoming = spool.receive_file([smtp_meta(STARTED, "jdoe"), smtp_meta(STARTED, "asmith")])
    incoming.write(message(FILE_CHUNK + 100))
    # Descriptors held open keep the unlinked files readable: their keys must be zeros by then.
    held = [os.open(p, os.O_RDONLY) for p in (tmp_path / "spool" / "files").iterdir()]
    try:
        incoming.discard()
        assert files_on_disk(tmp_path / "spool") == []
        for fd in held:
            head = os.pread(fd, len(FILE_MAGIC) + spool_module._SEALED_KEY, 0)
            assert head == bytes(len(head))
    finally:
        for fd in held:
            os.close(fd)
    assert list(spool.pending()) == []
    with pytest.raises(IntakeError):
        incoming.write(b"more")


def test_items_that_do_not_match_the_files_written_frame_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    incoming = spool.receive_file([smtp_meta(STARTED, "jdoe"), smtp_meta(STARTED, "asmith")])
    incoming.write(message(FILE_CHUNK + 100))
    with pytest.raises(IntakeError, match="do not match"):
        incoming.commit([smtp_meta(ENDED, "jdoe")])
    assert files_on_disk(tmp_path / "spool") == []
    assert list(spool.pending()) == []


def test_metadata_that_outgrew_its_room_frames_nothing(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    incoming = spool.receive_file([smtp_meta(STARTED)])
    incoming.write(message(1000))
    grown = SpoolMeta("x.eml", "smtp", ENDED, "jdoe", envelope={"helo": "h" * 5000})
    with pytest.raises(IntakeError, match="outgrew"):
        incoming.commit([grown])
    assert files_on_disk(tmp_path / "spool") == []
    assert list(spool.pending()) == []


def test_a_crash_before_the_end_leaves_a_partial_that_recover_destroys(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    incoming = spool.receive_file([smtp_meta(STARTED)])
    incoming.write(message(2 * FILE_CHUNK + 1))
    [partial] = (tmp_path / "spool" / "files").iterdir()
    held = os.open(partial, os.O_RDONLY)
    try:
        # The process dies here: nothing committed, no 250 sent. The next start:
        reopened = Spool(tmp_path / "spool", KEY, roll_seconds=0)
        assert reopened.recover() == 0
        assert files_on_disk(tmp_path / "spool") == []
        assert list(reopened.pending()) == []
        head = os.pread(held, len(FILE_MAGIC) + spool_module._SEALED_KEY, 0)
        assert head == bytes(len(head))  # its key is gone, not only its name
    finally:
        os.close(held)


def test_a_read_only_spool_starts_no_incoming_file(tmp_path: Path) -> None:
    Spool(tmp_path / "spool", KEY).close()
    reader = Spool(tmp_path / "spool", KEY, writer=False)
    with pytest.raises(IntakeError, match="read-only"):
        reader.receive_file([smtp_meta(STARTED)])
