"""Store fixtures: an archive whose writer cuts captures into small packs and batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twentyday import config as config_module
from twentyday.store.archive import Archive
from twentyday.store.writer import WriterLimits

OpenWithLimits = Callable[..., Archive]


@pytest.fixture
def archive_with_limits(archive_dir: Path) -> Iterator[OpenWithLimits]:
    """Opens the test archive with the given :class:`WriterLimits` fields (closed after the test)."""
    opened: list[Archive] = []

    def open_with(**limits: int) -> Archive:
        archive = Archive(config_module.load(archive_dir / "twentyday.toml"), writer_limits=WriterLimits(**limits))
        opened.append(archive)
        return archive

    yield open_with
    for archive in opened:
        archive.close()
