"""Packing a dropped folder: the same folder gives the same bytes; links are never followed."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from twentyday import folders
from twentyday.errors import ParseError


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
    folders.pack(folder, tree, out)
    assert b"outside secret" not in out.getvalue()
    assert ("media/deep/b.txt", "not a regular file when read") in tree.skipped


def test_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_export(tmp_path)
    monkeypatch.setattr(folders, "MAX_DEPTH", 1)
    with pytest.raises(ParseError, match="nested more than 1 deep"):
        folders.survey(folder)
    monkeypatch.setattr(folders, "MAX_DEPTH", 32)
    monkeypatch.setattr(folders, "MAX_ENTRIES", 4)
    with pytest.raises(ParseError, match="more than 4 entries"):
        folders.survey(folder)


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
