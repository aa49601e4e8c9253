"""The watched folder with a real watchdog observer on a real directory."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.chatgen import android_line, write_export
from tests.sealed_detail import capture_names, sealed_detail
from twentyday import config as config_module
from twentyday.canonical import iso
from twentyday.cli import cli
from twentyday.crypto import keys
from twentyday.intake import folders
from twentyday.intake.folders import FolderLimits
from twentyday.intake.watcher import InboxWatcher, skipped_summary
from twentyday.pipeline.worker import Worker
from twentyday.spool import Spool
from twentyday.store.archive import Archive


class Running:
    def __init__(self, archive_dir: Path, limits: FolderLimits = folders.DEFAULT_LIMITS) -> None:
        self.config = config_module.load(archive_dir / "twentyday.toml")
        self.archive = Archive(self.config)
        self.spool = Spool.open(self.config)
        self.worker = Worker(self.archive, self.spool)
        self.watcher = InboxWatcher(self.config.folder_path, self.spool, self.worker.notify, settle_seconds=0.6,
                                    limits=limits)

    def start(self) -> None:
        self.worker.start(poll_seconds=0.2)
        self.watcher.start(poll_seconds=0.1)

    def stop(self) -> None:
        self.watcher.stop()
        self.worker.stop()
        self.spool.close()
        self.archive.close()


@pytest.fixture
def running(archive_dir: Path) -> Iterator[Running]:
    daemon = Running(archive_dir)
    daemon.start()
    yield daemon
    daemon.stop()


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def records(archive_dir: Path, *args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "search", "--json", *args])
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


def test_a_file_written_slowly_is_taken_once_and_complete(running: Running, archive_dir: Path) -> None:
    target = running.config.folder_path / "jdoe" / "WhatsApp Chat with Team.txt"
    lines = [android_line(n, datetime(2026, 10, 13, 8, 0)) for n in range(300)]
    with target.open("w", encoding="utf-8") as handle:
        for start in range(0, 300, 30):  # ten chunks, 0.2 s apart: a slow copy over a share
            handle.writelines(lines[start:start + 30])
            handle.flush()
            os.fsync(handle.fileno())
            time.sleep(0.2)
    wait_for(lambda: running.worker.processed >= 1 and not target.exists())
    time.sleep(1.0)  # nothing else arrives later
    assert running.watcher.taken == 1
    captures = running.archive.conn.execute("SELECT count(*), max(message_count) FROM capture").fetchone()
    assert captures == (1, 300)
    assert len(records(archive_dir, "--limit", "1000")) == 300
    assert not list(running.config.folder_path.rglob("*.txt"))


def test_files_present_before_start_are_taken(archive_dir: Path) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    write_export(config.folder_path / "jdoe" / "WhatsApp Chat with Early.txt", 20)
    daemon = Running(archive_dir)
    daemon.start()
    try:
        wait_for(lambda: daemon.worker.processed >= 1)
    finally:
        daemon.stop()
    assert len(records(archive_dir, "--conversation", "Early")) == 20


def test_symlink_and_fifo_are_refused_and_recorded(running: Running, archive_dir: Path) -> None:
    folder = running.config.folder_path / "jdoe"
    secret = archive_dir / "outside.txt"
    secret.write_text("must never be read through the inbox")
    (folder / "link.txt").symlink_to(secret)
    os.mkfifo(folder / "pipe.txt")
    wait_for(lambda: running.worker.processed >= 2)
    assert not (folder / "link.txt").is_symlink()
    assert not (folder / "pipe.txt").exists()
    assert secret.exists()
    states = [s for (s,) in running.archive.conn.execute("SELECT state FROM capture")]
    assert states == ["quarantined", "quarantined"]
    alerts = running.archive.conn.execute("SELECT kind, count FROM alert").fetchall()
    assert alerts == [("ingest_failed", 2)]


def test_unknown_custodian_folder_is_kept_sealed_with_an_alert(running: Running) -> None:
    folder = running.config.folder_path / "stranger"
    folder.mkdir()
    write_export(folder / "chat.txt", 5)
    wait_for(lambda: running.worker.processed >= 1)
    state, custodian = running.archive.conn.execute("SELECT state, custodian FROM capture").fetchone()
    assert (state, custodian) == ("unrouted", None)
    assert running.archive.conn.execute("SELECT kind FROM alert").fetchall() == [("unknown_custodian",)]
    assert running.archive.conn.execute("SELECT count(*) FROM record").fetchone()[0] == 0


SIGNAL_EXPORT = Path(__file__).resolve().parents[1] / "data" / "signal" / "signal-export"


def _capture_named(running: Running, archive_dir: Path, name: str) -> str:
    """The capture of the item named ``name``: the index holds a name twentyday made, the item's own is sealed."""
    [found] = [c for c, n in capture_names(running.archive, archive_dir).items() if n == name]
    return found


def _raw_capture_names(running: Running, archive_dir: Path, source_name: str) -> list[str]:
    raw_blob = running.archive.conn.execute("SELECT raw_blob FROM capture WHERE id = ?",
                                            (_capture_named(running, archive_dir, source_name),)).fetchone()[0]
    identity = keys.load_identity(archive_dir / "officer.key", None)
    raw = running.archive.open_blob(running.archive.blob_ref(raw_blob), identity)
    return zipfile.ZipFile(io.BytesIO(raw)).namelist()


def test_a_dropped_export_folder_is_taken_whole(running: Running, archive_dir: Path) -> None:
    dropped = running.config.folder_path / "jdoe" / "ProjectTeam"
    shutil.copytree(SIGNAL_EXPORT / "ProjectTeam", dropped)
    wait_for(lambda: running.worker.processed >= 1 and not dropped.exists())
    parser, count = running.archive.conn.execute(
        "SELECT parser, message_count FROM capture WHERE id = ?",
        (_capture_named(running, archive_dir, "ProjectTeam.zip"),)).fetchone()
    assert (parser, count) == ("signal", 4)
    assert len(records(archive_dir, "--conversation", "ProjectTeam")) == 4
    assert sorted(_raw_capture_names(running, archive_dir, "ProjectTeam.zip")) == [
        "ProjectTeam/chat.md", "ProjectTeam/data.json"]


def test_a_link_inside_a_dropped_folder_is_not_followed_and_is_recorded(running: Running,
                                                                       archive_dir: Path) -> None:
    secret = archive_dir / "outside.txt"
    secret.write_text("must never be read through the inbox")
    staging = archive_dir / "staging" / "AliceExample"
    shutil.copytree(SIGNAL_EXPORT / "AliceExample", staging)
    (staging / "media").mkdir()
    (staging / "media" / "photo.jpg").symlink_to(secret)
    dropped = running.config.folder_path / "jdoe" / "AliceExample"
    staging.rename(dropped)  # dropped in one move, as a file manager does
    wait_for(lambda: running.worker.processed >= 2 and not dropped.exists())
    assert _raw_capture_names(running, archive_dir, "AliceExample.zip") == ["AliceExample/chat.md"]
    assert secret.exists()
    refused = running.archive.conn.execute(
        "SELECT id, state, reason FROM capture WHERE parser != 'signal'").fetchall()
    assert [(state, reason) for _, state, reason in refused] == [
        ("quarantined", "not_regular_files: 1 entry skipped: 1 symbolic link")]
    # The names are sealed: the officer reads them, the index does not hold them.
    reason = sealed_detail(running.archive, archive_dir, refused[0][0])["reason"]
    assert "AliceExample" in reason and "media/photo.jpg (symbolic link)" in reason
    assert ("ingest_failed",) in running.archive.conn.execute("SELECT kind FROM alert").fetchall()


def test_a_folder_past_the_bounds_is_refused_once_and_left_in_place(archive_dir: Path) -> None:
    running = Running(archive_dir, FolderLimits(max_entries=3))
    running.start()
    try:
        dropped = running.config.folder_path / "jdoe" / "Huge"
        dropped.mkdir()
        for n in range(5):
            (dropped / f"part{n}.txt").write_text("x")
        wait_for(lambda: running.worker.processed >= 1)
        running.watcher.scan()  # the periodic rescan finds it again
        time.sleep(1.5)
        assert dropped.exists() and len(list(dropped.iterdir())) == 5
        states = running.archive.conn.execute("SELECT state, reason FROM capture").fetchall()
        assert states == [("quarantined", "folder_refused: too_many_entries")]
    finally:
        running.stop()


def test_a_writer_that_pauses_longer_than_the_settle_time_is_waited_for(running: Running, archive_dir: Path) -> None:
    # The file is still open: taking it at the pause would move it away from its writer,
    # whose second half would then land in a copy already read, and be lost.
    target = running.config.folder_path / "jdoe" / "WhatsApp Chat with Team.txt"
    lines = [android_line(n, datetime(2026, 10, 13, 8, 0)) for n in range(200)]
    with target.open("w", encoding="utf-8") as handle:
        handle.writelines(lines[:100])
        handle.flush()
        time.sleep(2.0)  # more than three settle times, with the file open
        assert target.exists()
        handle.writelines(lines[100:])
    wait_for(lambda: running.worker.processed >= 1 and not target.exists())
    assert running.archive.conn.execute("SELECT count(*), max(message_count) FROM capture").fetchone() == (1, 200)


def test_a_file_named_in_bytes_that_are_not_utf8_is_taken_and_the_rest_go_on(running: Running,
                                                                               archive_dir: Path) -> None:
    folder = os.fsencode(running.config.folder_path / "jdoe")
    write_export(Path(os.fsdecode(folder + b"/WhatsApp Chat with Caf\xe9.txt")), 5)  # Latin-1, from an old share
    os.symlink(b"/etc/hostname", folder + b"/link\xff.txt")
    write_export(running.config.folder_path / "jdoe" / "WhatsApp Chat with Team.txt", 7)
    wait_for(lambda: running.worker.processed >= 3)
    names = sorted(capture_names(running.archive, archive_dir).values())
    assert names == ["WhatsApp Chat with Caf\\xe9.txt", "WhatsApp Chat with Team.txt", "refusal.txt"]
    [refusal] = running.archive.conn.execute("SELECT id FROM capture WHERE reason LIKE 'not_regular_file:%'")
    assert "link\\xff.txt" in sealed_detail(running.archive, archive_dir, refusal[0])["reason"]
    assert os.listdir(folder) == []


def test_a_file_the_daemon_cannot_read_is_recorded_once_and_left_for_an_administrator(
        running: Running, archive_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As another user's file with mode 0600 would be (the tests run as root, who reads anything).
    target = running.config.folder_path / "jdoe" / "WhatsApp Chat with Locked.txt"
    real_open = os.open

    def refusing_open(path: object, flags: int, *args: int, **kwargs: object) -> int:
        if os.fspath(path) == os.fspath(target):  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    write_export(target, 5)
    write_export(running.config.folder_path / "jdoe" / "WhatsApp Chat with Team.txt", 7)
    wait_for(lambda: running.worker.processed >= 2)
    time.sleep(1.5)  # more settle times: still recorded once
    assert target.exists()
    rows = running.archive.conn.execute("SELECT state, reason FROM capture ORDER BY state").fetchall()
    assert [state for state, _ in rows] == ["ingested", "quarantined"]
    assert rows[1][1] == "unreadable_by_daemon: Permission denied"


def test_a_custodian_folder_that_cannot_be_listed_does_not_stop_the_others(
        archive_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_module.load(archive_dir / "twentyday.toml")
    locked = config.folder_path / "locked"
    locked.mkdir()
    write_export(config.folder_path / "jdoe" / "WhatsApp Chat with Early.txt", 20)
    real_iterdir = Path.iterdir

    def iterdir(self: Path) -> Iterator[Path]:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    daemon = Running(archive_dir)
    daemon.start()  # the start-up scan meets the folder it cannot list
    try:
        wait_for(lambda: daemon.worker.processed >= 1)
    finally:
        daemon.stop()
    assert len(records(archive_dir, "--conversation", "Early")) == 20


def test_a_file_added_to_a_folder_just_after_it_was_packed_is_taken_later_not_deleted(
        running: Running, archive_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dropped = running.config.folder_path / "jdoe" / "ProjectTeam"
    remove = folders.remove_surveyed

    def late_file_then_remove(folder: Path, tree: folders.Tree) -> bool:
        (folder / "late.txt").write_text("arrived after the packing")
        return remove(folder, tree)

    monkeypatch.setattr(folders, "remove_surveyed", late_file_then_remove)
    shutil.copytree(SIGNAL_EXPORT / "ProjectTeam", dropped)
    wait_for(lambda: (dropped / "late.txt").exists())
    monkeypatch.setattr(folders, "remove_surveyed", remove)
    wait_for(lambda: running.worker.processed >= 2 and not dropped.exists())
    identity = keys.load_identity(archive_dir / "officer.key", None)
    zips = [zipfile.ZipFile(io.BytesIO(running.archive.open_blob(running.archive.blob_ref(blob), identity))).namelist()
            for (blob,) in running.archive.conn.execute("SELECT raw_blob FROM capture ORDER BY rowid")]
    assert len(zips) == 2
    assert "ProjectTeam/late.txt" not in zips[0] and zips[1] == ["ProjectTeam/late.txt"]


def test_the_watchers_clock_decides_every_receive_time(archive_dir: Path) -> None:
    # Receive time decides on time or late, so it is the injected clock's, for what is taken
    # (a file, a folder) and for what is refused (a link, a folder past the bounds) alike.
    received = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    config = config_module.load(archive_dir / "twentyday.toml")
    custodian = config.folder_path / "jdoe"
    custodian.mkdir(parents=True, exist_ok=True)
    write_export(custodian / "WhatsApp Chat with Clock.txt", 3)
    (custodian / "Export").mkdir()
    (custodian / "Export" / "chat.txt").write_text("a dropped folder")
    (custodian / "Huge").mkdir()
    for n in range(3):
        (custodian / "Huge" / f"part{n}.txt").write_text("x")
    (custodian / "link").symlink_to(custodian / "Export" / "chat.txt")
    archive, spool = Archive(config), Spool.open(config)
    seconds = [0.0]
    watcher = InboxWatcher(config.folder_path, spool, lambda: None, settle_seconds=1.0,
                           limits=FolderLimits(max_entries=2), clock=lambda: received,
                           monotonic=lambda: seconds[0])
    try:
        watcher.scan()
        watcher.check()  # the link and the folder past the bounds are refused at once
        seconds[0] = 5.0
        watcher.check()  # the rest has settled
        metas = sorted((item.meta for item in spool.pending()), key=lambda meta: meta.name)
        # A refusal is spooled under a name of twentyday's: what it refused is named in its sealed bytes.
        assert [(m.name, bool(m.refused), m.received_at) for m in metas] == [
            ("Export.zip", False, received), ("WhatsApp Chat with Clock.txt", False, received),
            ("refusal.txt", True, received), ("refusal.txt", True, received)]
        Worker(archive, spool).run_once()
        assert set(archive.conn.execute("SELECT received_at FROM capture")) == {(iso(received),)}
        assert set(archive.conn.execute("SELECT captured_at FROM record")) == {(iso(received),)}
    finally:
        spool.close()
        archive.close()


def test_a_refusal_in_clear_counts_kinds_and_names_nothing() -> None:
    skipped = [("media/RIF list - Smith.pdf", "symbolic link"), ("pipe", "FIFO"), ("b", "symbolic link")]
    assert skipped_summary(skipped) == "3 entries skipped: 1 FIFO, 2 symbolic links"
    assert skipped_summary([("x", folders.UNDECODABLE)]) == "1 entry skipped: 1 name not valid UTF-8"
