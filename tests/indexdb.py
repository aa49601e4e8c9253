"""A connection to a test archive's index, whichever database keeps it: for tests that read or tamper
with the index behind the archive's back (as someone with the database's credentials could).

SQLite: the ``data/index.db`` file, autocommit (``isolation_level=None``). PostgreSQL (``[store] index``
in the archive's config): :func:`twentyday.store.postgres.connect`, autocommit too. Both take the
store's ``?`` placeholders and give rows as tuples, so one tampering statement serves both.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from twentyday import config as config_module
from twentyday.store import db


def open_index(archive_dir: Path) -> db.Connection:
    """The index of the archive whose config is ``archive_dir/twentyday.toml``; the caller closes it."""
    config = config_module.load(archive_dir / "twentyday.toml")
    if config.index is None:
        return sqlite3.connect(config.data_dir / "index.db", isolation_level=None)
    from twentyday.store import postgres

    return postgres.connect(config.index)


def on_postgresql(archive_dir: Path) -> bool:
    """Whether the archive's index is in PostgreSQL (``[store] index``)."""
    return config_module.load(archive_dir / "twentyday.toml").index is not None
