"""The spool: durable before acknowledged, group-committed, crash-safe, no plaintext."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest

from twentyday import spool as spool_module
from twentyday.errors import IntakeError, SpoolItemDamaged
from twentyday.spool import Spool, SpoolItem, SpoolMeta

KEY = bytes(range(32))
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def meta(name: str, custodian: str | None = None) -> SpoolMeta:
    return SpoolMeta(name, "folder", NOW, custodian)


def recovered_once(root: Path) -> tuple[Spool, SpoolItem]:
    """The spool reopened as after a crash: recover() frames the one file moved in, chat.txt."""
    reopened = Spool(root, KEY, roll_seconds=0)
    assert reopened.recover() == 1
    [item] = reopened.pending()
    assert item.meta == meta("chat.txt")
    assert item.file is not None and reopened.sealed_file(item).read_all() == b"chat"
    return reopened, item


def test_item_metadata_is_sealed_and_frames_of_the_previous_format_still_read(tmp_path: Path) -> None:
    # A frame's header shows only its id: the names, custodian, envelope and times are sealed
    # under the segment's key, which is destroyed with the segment.
    envelope = {"mail_from": "jane.doe@gmail.com", "peer": "127.0.0.1"}
    written = SpoolMeta("smtp-1.eml", "smtp", NOW, "jdoe", envelope=envelope)
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    item_id = spool.put_bytes(b"mail", written)
    [segment] = (tmp_path / "spool").glob("seg-*.log")
    for clear in (b"smtp-1.eml", b"jdoe", b"jane.doe@gmail.com", b"127.0.0.1", b"2026-11-22"):
        assert clear not in segment.read_bytes()
    # A frame the previous version wrote (the same JSON object, in clear) in a pending segment
    # still reads after an upgrade.
    old_id, aead = "0" * 32, spool._segment_key(segment)
    old_header = json.dumps({"id": old_id, "meta": {
        "name": "smtp-0.eml", "channel": "smtp", "received_at": "2026-11-22T12:00:00+00:00", "custodian": "jdoe",
        "envelope": envelope, "refused": ""}}, sort_keys=True).encode()
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, b"old mail", spool_module._AD + b"frame\0" + old_header)
    spool.close()
    with segment.open("ab") as handle:
        handle.write(spool_module._FRAME_HEAD.pack(spool_module.MAGIC, len(old_header), 12 + len(sealed))
                     + old_header + nonce + sealed)
    reopened = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    new, old = reopened.pending()
    assert (new.id, new.meta, reopened.read(new)) == (item_id, written, b"mail")
    assert (old.id, old.meta.name, old.meta.custodian) == (old_id, "smtp-0.eml", "jdoe")
    assert reopened.read(old) == b"old mail"
    # The worker always read the optional keys with a default: so does SpoolMeta.
    assert SpoolMeta.from_json({"name": "a", "channel": "folder", "received_at": "2026-11-22T12:00:00Z"}) == meta("a")
    with pytest.raises(ValueError, match="not spool item metadata"):
        SpoolMeta.from_json({"name": "a", "channel": "folder", "received_at": "yesterday"})


def test_items_survive_reopen_in_order_and_leave_when_done(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    first = spool.put_bytes(b"message one", meta("a"))
    second = spool.put_bytes(b"message two", meta("b"))
    spool.close()

    reopened = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    items = list(reopened.pending())
    assert [i.id for i in items] == [first, second]
    assert reopened.read(items[0]) == b"message one"
    reopened.mark_done(items[0])
    assert [i.id for i in reopened.pending()] == [second]


def test_no_plaintext_in_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    spool.put_bytes(b"the secret pelican plan", meta("a"))
    spool.close()
    # Nor is anything of it open to other local users.
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in (tmp_path / "spool").rglob("*")} | {
        "spool": oct((tmp_path / "spool").stat().st_mode & 0o777)} == {
        "spool": "0o700", "files": "0o700", "done.log": "0o600", "seg-00000001.log": "0o600"}
    for path in (tmp_path / "spool").rglob("*"):
        if path.is_file():
            assert b"pelican" not in path.read_bytes()


def test_a_torn_last_frame_is_ignored(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    kept, _ = spool.write_bytes(b"complete", meta("a"))
    spool.sync(spool.write_bytes(b"x" * 1000, meta("b"))[1])  # one group commit: one segment
    [segment] = (tmp_path / "spool").glob("seg-*.log")
    spool.close()
    with segment.open("r+b") as handle:  # the crash cut the second frame short
        handle.truncate(segment.stat().st_size - 100)
    assert [i.id for i in Spool(tmp_path / "spool", KEY, roll_seconds=0).pending()] == [kept]


def test_concurrent_puts_share_fsyncs(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    calls = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    with mock.patch("twentyday.spool.os.fsync", counting_fsync):
        threads = [threading.Thread(target=lambda: [spool.put_bytes(b"m" * 100, meta("m")) for _ in range(25)])
                   for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(list(spool.pending())) == 400
    assert len(calls) < 400  # grouped: fewer fsyncs than items


def test_put_file_seals_a_copy_and_recovers_after_a_crash_between_copy_and_record(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    export = inbox / "chat.txt"
    export.write_bytes(b"chat")
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    with mock.patch.object(Spool, "_frame_file", side_effect=KeyboardInterrupt), pytest.raises(KeyboardInterrupt):
        spool.put_file(export, meta("chat.txt"))
    assert not export.exists()
    assert list(spool.pending()) == []
    spool.close()

    reopened, item = recovered_once(tmp_path / "spool")
    reopened.mark_done(item)
    assert not item.file.exists()


def failing_fsync_dir(monkeypatch: pytest.MonkeyPatch, failing: Path) -> None:
    """Make syncing the directory ``failing`` fail with EIO, as a failing disk does."""
    real = spool_module._fsync_dir

    def fsync_dir(path: Path) -> None:
        if path == failing:
            raise OSError(5, "Input/output error")
        real(path)

    monkeypatch.setattr(spool_module, "_fsync_dir", fsync_dir)


def test_a_file_taken_is_recorded_though_its_inbox_folder_cannot_be_synced(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # The copy is durable in the spool: the item must not be orphaned in files/ (the watcher
    # no longer sees it in the inbox, so nobody would take it again).
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "chat.txt").write_bytes(b"chat")
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    failing_fsync_dir(monkeypatch, inbox)
    item_id = spool.put_file(inbox / "chat.txt", meta("chat.txt"))
    assert not (inbox / "chat.txt").exists()
    assert spool.recover() == 0
    [item] = spool.pending()
    assert item.id == item_id and spool.sealed_file(item).read_all() == b"chat"


def test_a_file_whose_spool_folder_cannot_be_synced_stays_in_the_inbox_and_its_copy_is_framed_at_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "chat.txt").write_bytes(b"chat")
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    failing_fsync_dir(monkeypatch, spool.files)
    with pytest.raises(IntakeError, match="Input/output error"):
        spool.put_file(inbox / "chat.txt", meta("chat.txt"))
    monkeypatch.undo()
    # Taken again by the watcher: the same bytes make the same capture.
    assert (inbox / "chat.txt").read_bytes() == b"chat" and list(spool.pending()) == []
    spool.close()

    recovered_once(tmp_path / "spool")


def test_a_large_file_is_sealed_in_chunks_and_read_back_whole_and_at_any_offset(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    content = os.urandom(3 * 1024 * 1024 + 5)
    (inbox / "chat.txt").write_bytes(content)
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    item_id = spool.put_file(inbox / "chat.txt", meta("chat.txt"))
    assert sorted(p.name for p in spool.files.iterdir()) == [item_id]  # no sidecar, no partial copy
    [item] = spool.pending()
    assert item.file is not None and oct(item.file.stat().st_mode & 0o777) == "0o600"
    assert content[:64] not in item.file.read_bytes()
    sealed = spool.sealed_file(item)
    assert sealed.size == len(content) and sealed.read_all() == content
    with sealed.open() as handle:
        handle.seek(2 * 1024 * 1024 - 3)
        assert handle.read(10) == content[2 * 1024 * 1024 - 3:2 * 1024 * 1024 + 7]
        handle.seek(-4, os.SEEK_END)
        assert handle.read() == content[-4:]


def test_a_sealed_file_cut_short_or_with_a_chunk_changed_fails_authentication(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "chat.txt").write_bytes(os.urandom(2 * 1024 * 1024 + 10))
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    spool.put_file(inbox / "chat.txt", meta("chat.txt"))
    [item] = spool.pending()
    assert item.file is not None
    with item.file.open("r+b") as handle:  # the last chunk dropped: the one before is not marked last
        handle.truncate(item.file.stat().st_size - (10 + 28))
    with pytest.raises(SpoolItemDamaged):
        spool.sealed_file(item).read_all()


def test_a_crash_while_copying_leaves_the_file_in_the_inbox(tmp_path: Path) -> None:
    # A truncated copy framed by recover() would be a truncated capture, and the original,
    # still in the inbox, taken again (a second capture).
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    content = os.urandom(4 * 1024 * 1024)
    (inbox / "chat.txt").write_bytes(content)
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    pid = os.fork()
    if pid == 0:  # the daemon, killed by the kernel part-way through the copy
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_FSIZE, (1024 * 1024, resource.RLIM_INFINITY))
            signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
            spool.put_file(inbox / "chat.txt", meta("chat.txt"))
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGXFSZ
    left = sorted(p.suffix for p in spool.files.iterdir())
    assert left == [".partial"]
    spool.close()

    reopened = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    assert reopened.recover() == 0
    assert list(reopened.files.iterdir()) == [] and list(reopened.pending()) == []
    assert (inbox / "chat.txt").read_bytes() == content  # taken again, whole, once


def replace_by(kind: str, path: Path, outside: Path) -> None:
    path.unlink()
    if kind == "symbolic link":
        path.symlink_to(outside)
    elif kind == "FIFO":
        os.mkfifo(path)
    else:
        path.mkdir()
        (path / "chat.txt").write_bytes(b"chat")


@pytest.mark.parametrize("kind", ["symbolic link", "FIFO", "folder"])
def test_a_file_swapped_for_a_link_or_fifo_while_being_taken_is_never_opened(tmp_path: Path, kind: str) -> None:
    # The watcher saw a regular file; the employee swaps it between that look and the take.
    # A link followed would archive a file from outside the inbox; a FIFO would block.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    export = inbox / "chat.txt"
    export.write_bytes(b"chat")
    outside = tmp_path / "daemon-secret.txt"
    outside.write_bytes(b"not the employee's to archive")
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    replace_by(kind, export, outside)
    with pytest.raises(IntakeError, match=f"was replaced by a {kind} while being taken; it was not opened"):
        spool.put_file(export, meta("chat.txt"))
    assert list(spool.files.iterdir()) == []
    assert spool.recover() == 0 and list(spool.pending()) == []
    assert os.path.lexists(export)  # left in the inbox: the watcher refuses it, or takes the folder as one
    assert outside.read_bytes() == b"not the employee's to archive"


@pytest.mark.parametrize("kind", ["symbolic link", "FIFO"])
def test_recover_frames_no_link_or_fifo_found_in_the_spool(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "daemon-secret.txt"
    outside.write_bytes(b"not the employee's to archive")
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    (spool.files / "0123").write_bytes(b"")
    replace_by(kind, spool.files / "0123", outside)
    assert spool.recover() == 0
    assert list(spool.pending()) == []
    assert outside.read_bytes() == b"not the employee's to archive"


def test_unwritable_spool_is_an_intake_error(tmp_path: Path) -> None:
    (tmp_path / "spool").write_text("not a directory")
    with pytest.raises(IntakeError, match="not writable"):
        Spool(tmp_path / "spool", KEY, roll_seconds=0)


def test_pending_resumes_after_done_items_and_still_sees_every_undone_one(tmp_path: Path) -> None:
    writer = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    reader = Spool(tmp_path / "spool", KEY, writer=False)
    ids = [writer.put_bytes(f"message {n}".encode(), meta(str(n))) for n in range(5)]
    items = list(reader.pending())
    reader.mark_done(items[0], items[1])
    assert [i.id for i in reader.pending()] == ids[2:]
    reader.mark_done(items[3])  # out of order: item 2 failed and stays
    assert [i.id for i in reader.pending()] == [ids[2], ids[4]]
    later = writer.put_bytes(b"message 5", meta("5"))
    assert [i.id for i in reader.pending()] == [ids[2], ids[4], later]
    reader.mark_done(items[2])
    pending = list(reader.pending())
    assert [i.id for i in pending] == [ids[4], later]
    assert reader.read(pending[-1]) == b"message 5"
    # Another process's view (a fresh instance) agrees, from done.log alone.
    assert [i.id for i in Spool(tmp_path / "spool", KEY, writer=False).pending()] == [ids[4], later]


def test_a_written_file_is_an_item_only_once_complete(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)

    def fails(out: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(IntakeError, match="No space left"):
        spool.put_written_file(fails, meta("Export.zip"))
    assert sorted(p.name for p in (tmp_path / "spool" / "files").iterdir()) == []
    item_id = spool.put_written_file(lambda out: out.write(b"zip bytes"), meta("Export.zip"))
    [item] = list(spool.pending())
    assert item.id == item_id and spool.sealed_file(item).read_all() == b"zip bytes"
    # A crash while writing leaves a partial file: recovery removes it and frames nothing new.
    (tmp_path / "spool" / "files" / "cut-short.partial").write_bytes(b"half a zip")
    assert spool.recover() == 0
    assert not (tmp_path / "spool" / "files" / "cut-short.partial").exists()
    assert [i.id for i in spool.pending()] == [item_id]


@contextlib.contextmanager
def disk_full_after(path: Path, spare: int) -> Iterator[None]:
    """Files may grow only ``spare`` bytes past ``path``'s size (the kernel then fails writes
    part-way, with EFBIG, as a full disk does with ENOSPC)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel ends the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + spare, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_write_that_fails_part_way_leaves_no_torn_frame_before_later_items(tmp_path: Path) -> None:
    # Items written after a failed one must stay readable: a torn frame left in the middle
    # of a segment would hide every frame after it (and the segment would later be collected).
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    first, _ = spool.write_bytes(b"A" * 20_000, meta("a"))  # not synced yet: its segment is still current
    with disk_full_after(spool._segments()[-1], spare=5_000), pytest.raises(IntakeError, match="write failed"):
        spool.put_bytes(b"B" * 20_000, meta("b"))  # SMTP answers 451
    later = [spool.put_bytes(fill * 20_000, meta(name)) for fill, name in ((b"C", "c"), (b"D", "d"))]
    spool.close()

    reader = Spool(tmp_path / "spool", KEY, writer=False)
    items = list(reader.pending())
    assert [i.id for i in items] == [first, *later]
    assert [reader.read(i)[:1] for i in items] == [b"A", b"C", b"D"]


def test_items_written_together_are_all_written_or_none(tmp_path: Path) -> None:
    # One message for two custodians: the second copy does not fit, so the message is
    # refused (451) and neither copy may be archived.
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    first = spool.put_bytes(b"earlier", meta("earlier"))
    with disk_full_after(spool._segments()[-1], spare=30_000), pytest.raises(IntakeError):
        spool.write_items([meta("m", "jdoe"), meta("m", "asmith")], b"M" * 20_000)
    ids, ticket = spool.write_items([meta("n", "jdoe"), meta("n", "asmith")], b"N" * 20_000)
    spool.sync(ticket)
    spool.close()

    reader = Spool(tmp_path / "spool", KEY, writer=False)
    items = list(reader.pending())
    assert [i.id for i in items] == [first, *ids]
    assert [i.meta for i in items[1:]] == [meta("n", "jdoe"), meta("n", "asmith")]
    assert {reader.read(i) for i in items[1:]} == {b"N" * 20_000}


def test_writing_an_item_holds_one_sealed_copy_beside_the_message(tmp_path: Path) -> None:
    # The SMTP limit allows a message to be held about twice: the message and its sealed copy,
    # not a sealed copy, a nonce-prefixed copy and a framed copy on top.
    import tracemalloc

    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    message = b"x" * (16 * 1024 * 1024)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        spool.put_bytes(message, meta("big"))
        extra = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert extra < 1.2 * len(message)


def test_a_spool_of_the_earlier_format_is_sealed_again_at_start_up(tmp_path: Path) -> None:
    # Written by the version before keys of their own: the daemon key sealed the items (the
    # id as associated data), and a file moved in stayed in clear beside a .meta sidecar.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    root = tmp_path / "spool"
    (root / "files").mkdir(parents=True)
    header = json.dumps({"id": "old-mail", "meta": meta("mail.eml", "jdoe").to_json()}, sort_keys=True).encode()
    sealed = b"n" * 12 + AESGCM(KEY).encrypt(b"n" * 12, b"the old pelican mail", b"old-mail")
    file_header = json.dumps({"id": "old-file", "meta": meta("chat.txt").to_json(), "file": "old-file"},
                             sort_keys=True).encode()
    (root / "seg-00000001.log").write_bytes(
        spool_module._FRAME_HEAD.pack(b"TDSP", len(header), len(sealed)) + header + sealed
        + spool_module._FRAME_HEAD.pack(b"TDSP", len(file_header), 0) + file_header)
    (root / "files" / "old-file").write_bytes(b"the old pelican chat")
    (root / "files" / "old-file.meta").write_bytes(meta("chat.txt").encoded())
    spool = Spool(root, KEY, roll_seconds=0)
    assert spool.recover() == 2
    items = list(spool.pending())
    assert [(i.meta, i.file is not None) for i in items] == [
        (meta("mail.eml", "jdoe"), False), (meta("chat.txt"), True)]
    assert spool.read(items[0]) == b"the old pelican mail"
    assert spool.sealed_file(items[1]).read_all() == b"the old pelican chat"
    for path in root.rglob("*"):
        assert not path.is_file() or b"pelican" not in path.read_bytes()


def test_a_segment_is_destroyed_once_its_items_are_done_and_its_key_with_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=0)
    spool.put_bytes(b"the pelican mail", meta("a"))
    [item] = spool.pending()
    segment = item.segment
    with segment.open("rb") as handle:  # what a thief copies, or finds in the free blocks afterwards
        copied = handle.read()
    spool.mark_done(item)
    assert not segment.exists()
    segment.write_bytes(bytes(spool_module.SEGMENT_HEADER) + copied[spool_module.SEGMENT_HEADER:])
    with pytest.raises(SpoolItemDamaged):  # the key, overwritten in place, is zeros now
        Spool(tmp_path / "spool", KEY, roll_seconds=0).read(item)


def test_a_segment_takes_the_group_commits_of_roll_seconds_and_an_idle_one_is_closed(tmp_path: Path) -> None:
    # A new segment per group commit costs a file and a folder fsync each time: segments take
    # ROLL_SECONDS of commits, and retire_idle (the daemon's loop) closes the last one.
    spool = Spool(tmp_path / "spool", KEY, roll_seconds=60)
    first = spool.put_bytes(b"the pelican mail", meta("a"))
    second = spool.put_bytes(b"the heron mail", meta("b"))
    items = {i.id: i for i in spool.pending()}
    assert items[first].segment == items[second].segment  # one segment for both commits
    spool.mark_done(*items.values())
    assert items[first].segment.exists()  # still the writer's: it may take more
    assert not spool.retire_idle()  # not ROLL_SECONDS old yet

    spool._roll_seconds = 0
    assert spool.retire_idle()
    spool.collect()  # what the worker does on its next round
    assert not items[first].segment.exists()
    third = spool.put_bytes(b"the egret mail", meta("c"))
    [item] = spool.pending()
    assert item.id == third  # in a new segment with a key of its own (the old name may come again)
