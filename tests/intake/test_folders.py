"""Packing a dropped folder: the same folder gives the same bytes; links are never followed."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import NOW
from twentyday.errors import IntakeError, ParseError
from twentyday.intake import folders
from twentyday.intake.folders import FolderLimits
from twentyday.spool import Spool, SpoolMeta


def packed(folder: Path) -> tuple[bytes, folders.Tree]:
    tree = folders.survey(folder)
    out = io.BytesIO()
    folders.pack(folder, tree, out)
    return out.getvalue(), tree


def make_export(root: Path) -> Path:
    folder = root / "Export"
    (folder / "media" / "deep").mkdir(parents=True)
    (folder / "chat.md").write_text("[2024-01-01 10:00] Alice: hello\n")
    (folder / "media" / "a.jpg").write_bytes(b"\xff\xd8 jpeg")
    (folder / "media" / "deep" / "b.txt").write_text("deep")
    return folder


def test_the_same_folder_packs_to_the_same_bytes(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    first, tree = packed(folder)
    second, _ = packed(folder)
    assert first == second  # a second drop of it after a crash is a duplicate, not a new capture
    assert zipfile.ZipFile(io.BytesIO(first)).namelist() == [
        "Export/chat.md", "Export/media/a.jpg", "Export/media/deep/b.txt"]
    assert zipfile.ZipFile(io.BytesIO(first)).read("Export/media/a.jpg") == b"\xff\xd8 jpeg"
    (folder / "chat.md").write_text("[2024-01-01 10:00] Alice: hello again\n")
    assert folders.survey(folder).signature != tree.signature


def test_links_and_fifos_are_named_not_opened(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (folder / "media" / "link.jpg").symlink_to(secret)
    (folder / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(folder / "pipe")
    data, tree = packed(folder)
    assert sorted(tree.skipped) == [("linked-dir", "symbolic link"), ("media/link.jpg", "symbolic link"),
                                    ("pipe", "FIFO")]
    assert b"outside" not in data


def test_a_folder_swapped_for_a_link_after_the_survey_is_not_followed(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    tree = folders.survey(folder)
    outside = tmp_path / "outside" / "deep"
    outside.mkdir(parents=True)
    (outside / "b.txt").write_text("outside secret")
    (folder / "media" / "deep" / "b.txt").unlink()
    (folder / "media" / "deep").rmdir()
    (folder / "media" / "deep").symlink_to(outside)  # the race: same path, now a link out
    out = io.BytesIO()
    with pytest.raises(IntakeError, match="changed while it was being packed"):  # and so not taken yet
        folders.pack(folder, tree, out)
    assert b"outside secret" not in out.getvalue()
    assert ("media/deep/b.txt", "not a regular file when read") in tree.skipped


def test_bounds(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    with pytest.raises(ParseError, match="nested more than 1 deep"):
        folders.survey(folder, FolderLimits(max_depth=1))
    with pytest.raises(ParseError, match="more than 4 entries"):
        folders.survey(folder, FolderLimits(max_entries=4))


def test_odd_names_and_times_do_not_stop_the_packing(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    odd = os.fsencode(folder / "media") + b"/caf\xe9.jpg"  # Latin-1 bytes: not a UTF-8 name
    with open(odd, "wb") as handle:
        handle.write(b"latin-1 named")
    os.utime(folder / "chat.md", (0, 0))  # 1970: before zip's first date
    os.utime(folder / "media" / "a.jpg", (5_000_000_000, 5_000_000_000))  # 2128: after its last
    data, tree = packed(folder)
    assert [kind for _, kind in tree.skipped] == ["name not valid UTF-8"]
    names = zipfile.ZipFile(io.BytesIO(data)).infolist()
    assert [(i.filename, i.date_time[0]) for i in names][:2] == [("Export/chat.md", 1980),
                                                                 ("Export/media/a.jpg", 2107)]


class ChangingWhileWritten(io.BytesIO):
    """A zip being written that changes the folder once, part-way (an employee still copying)."""

    def __init__(self, change: Callable[[], None]) -> None:
        super().__init__()
        self.change: Callable[[], None] | None = change

    def write(self, data: object) -> int:
        if self.change is not None:
            self.change, change = None, self.change
            change()
        return super().write(data)  # type: ignore[arg-type]


@pytest.mark.parametrize("change", ["added", "rewritten", "past the bounds"])
def test_a_folder_changed_while_packed_is_not_taken_yet(tmp_path: Path, change: str) -> None:
    # The zip would miss the change, and the folder is removed once taken: the change would be lost.
    folder = make_export(tmp_path)
    # "past the bounds": as many entries as it holds, so one more is too many.
    limits = FolderLimits(max_entries=5) if change == "past the bounds" else FolderLimits()
    tree = folders.survey(folder, limits)

    def employee() -> None:
        if change == "rewritten":
            (folder / "media" / "deep" / "b.txt").write_text("deep, and longer")
        else:
            (folder / "media" / "late.jpg").write_bytes(b"added while packing")

    with pytest.raises(IntakeError, match="Export: changed while it was being packed"):
        folders.pack(folder, tree, ChangingWhileWritten(employee), limits)


def test_a_folder_changed_while_packed_leaves_nothing_in_the_spool(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    tree = folders.survey(folder)
    spool = Spool(tmp_path / "spool", bytes(range(32)))

    def pack_while_the_employee_adds_a_file(out: object) -> None:
        (folder / "late.txt").write_text("added while packing")
        folders.pack(folder, tree, out)  # type: ignore[arg-type]

    with pytest.raises(IntakeError, match="changed while it was being packed"):
        spool.put_written_file(pack_while_the_employee_adds_a_file, SpoolMeta("Export.zip", "folder", NOW))
    assert list(spool.files.iterdir()) == [] and list(spool.pending()) == []
    assert (folder / "late.txt").exists()


def settled(folder: Path) -> Path:
    """Date everything in ``folder`` an hour back, as it is once the watcher has let it settle."""
    an_hour_ago = os.stat(folder).st_mtime - 3600
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (an_hour_ago, an_hour_ago), follow_symlinks=False)
    return folder


def test_removing_a_taken_folder_removes_exactly_what_was_surveyed(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("not in the folder")
    (folder / "media" / "link.jpg").symlink_to(outside)
    os.mkfifo(folder / "pipe")
    unwalked = os.fsencode(folder) + b"/caf\xe9"  # not valid UTF-8: refused, never walked
    os.mkdir(unwalked)
    with open(unwalked + b"/inside.txt", "wb") as handle:
        handle.write(b"refused with its folder")
    tree = folders.survey(folder)
    assert folders.remove_surveyed(folder, tree) is True
    assert not folder.exists()
    assert outside.read_text() == "not in the folder"  # the link was removed, not followed


@pytest.mark.parametrize("change", ["added", "rewritten", "replaced"])
def test_what_changed_after_the_survey_stays_in_the_folder(tmp_path: Path, change: str) -> None:
    # Between packing and removal the employee adds or changes a file: no capture holds it.
    folder = settled(make_export(tmp_path))
    tree = folders.survey(folder)
    changed = folder / "media" / "deep" / ("late.txt" if change == "added" else "b.txt")
    if change == "replaced":  # another file under the same name, same size
        changed.unlink()
    changed.write_text("late" if change != "rewritten" else "deep, and longer")
    assert folders.remove_surveyed(folder, tree) is False
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == ["media", "media/deep", f"media/deep/{changed.name}"]


def test_removing_follows_no_folder_swapped_for_a_link(tmp_path: Path) -> None:
    folder = make_export(tmp_path)
    tree = folders.survey(folder)
    outside = tmp_path / "outside"
    (folder / "media" / "deep").rename(outside)  # same files, same inodes, now outside the folder
    (folder / "media" / "deep").symlink_to(outside)
    assert folders.remove_surveyed(folder, tree) is False
    assert (outside / "b.txt").read_text() == "deep"
