"""A connection to a test archive's index, whichever database keeps it: for tests that read or tamper
with the index behind the archive's back (as someone with the database's credentials could).

SQLite: the ``data/index.db`` file, autocommit (``isolation_level=None``). PostgreSQL (``[store] index``
in the archive's config): :func:`twentyday.store.postgres.connect`, autocommit too. Both take the
store's ``?`` placeholders and give rows as tuples, so one tampering statement serves both.
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def keep_a_copy(archive_dir: Path) -> Callable[[], None]:
    """A copy of the archive's index as it is now; the function returned puts the index back to that
    copy, as restoring an earlier backup would (every connection to the index closed first).

    SQLite: the file copied beside the archive (and back, its ``-wal``/``-shm`` removed). PostgreSQL:
    a database made from the index's (``CREATE DATABASE ... TEMPLATE``), and the index's database
    dropped and made again from it.
    """
    config = config_module.load(archive_dir / "twentyday.toml")
    if config.index is None:
        index = config.data_dir / "index.db"
        copy = archive_dir.parent / f"index.db.copy-{uuid.uuid4().hex[:8]}"
        shutil.copyfile(index, copy)

        def put_back_file() -> None:
            for name in ("index.db-wal", "index.db-shm"):
                (config.data_dir / name).unlink(missing_ok=True)
            shutil.copyfile(copy, index)

        return put_back_file
    from psycopg import sql

    name = _database(config.index)
    copy_name = f"{name[:40]}_copy_{uuid.uuid4().hex[:8]}"
    _administer(config.index, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(copy_name), sql.Identifier(name)))

    def put_back_database() -> None:
        assert config.index is not None
        _administer(config.index, sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)),
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(copy_name)))

    return put_back_database


@dataclass(frozen=True)
class CutOff:
    """An index no new connection can open (connections already open keep reading it)."""

    #: The type of error opening it now raises (its name, as ``serve``'s log gives it).
    error: str
    #: Makes it openable again.
    restore: Callable[[], None]


def cut_off_index(archive_dir: Path) -> CutOff:
    """SQLite: the file renamed away (not found); PostgreSQL: the database refusing new connections
    (``ALLOW_CONNECTIONS false``: opening the index fails, the archive's own connection goes on)."""
    config = config_module.load(archive_dir / "twentyday.toml")
    if config.index is None:
        index = config.data_dir / "index.db"
        index.rename(index.with_name("elsewhere.db"))
        return CutOff("NotFoundError", lambda: index.with_name("elsewhere.db").rename(index))
    from psycopg import sql

    uri, name = config.index, sql.Identifier(_database(config.index))
    _administer(uri, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
    return CutOff("TwentydayError",
                  lambda: _administer(uri, sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name)))


def _database(uri: str) -> str:
    import psycopg

    name = psycopg.conninfo.conninfo_to_dict(uri)["dbname"]
    assert isinstance(name, str)
    return name


def _administer(uri: str, *statements: Any) -> None:
    """Statements run from another database of the index's cluster (CREATE/DROP/ALTER DATABASE
    cannot run in the database they name, nor inside a transaction)."""
    import psycopg

    with psycopg.connect(psycopg.conninfo.make_conninfo(uri, dbname="postgres"), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def remove_index(archive_dir: Path) -> None:
    """Leave the archive without an index: SQLite's file deleted; in PostgreSQL, the database left
    empty (its tables dropped), as before 'twentyday create' made them."""
    config = config_module.load(archive_dir / "twentyday.toml")
    if config.index is None:
        (config.data_dir / "index.db").unlink()
        return
    import psycopg

    with psycopg.connect(config.index, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
