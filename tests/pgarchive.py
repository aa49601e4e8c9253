"""An archive whose index is in the local PostgreSQL (tests/pg.py), made as an administrator would:
'twentyday init' for the config and the officer's key, then ``[store] index`` in the config and
'twentyday create' (the same code: :meth:`Archive.create`, the ledger key pinned)."""

from __future__ import annotations

import shutil
import urllib.parse
import uuid
from datetime import datetime
from pathlib import Path

from tests.pg import LocalPG
from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.initialise import archive_ledger_key, init_archive, pin_ledger_key
from twentyday.store.archive import Archive


def index_uri(postgres: LocalPG, database: str) -> str:
    """The ``[store] index`` URI of ``database`` on the local cluster (its unix socket, no TCP)."""
    query = urllib.parse.urlencode({"host": str(postgres.socket_dir), "port": postgres.port})
    return f"postgresql://{postgres.user}@/{database}?{query}"


def make_pg_archive(directory: Path, postgres: LocalPG, *, now: datetime, database: str | None = None,
                    extra_store: str = "") -> Path:
    """A new archive in ``directory`` with its index in ``database`` (a new one by default); its config path."""
    name = database or "archive_" + uuid.uuid4().hex[:16]
    if database is None:
        postgres.create_database(name)
    init_archive(directory, passphrase=None, demo=False, now=now)
    config_path = directory / "twentyday.toml"
    shutil.rmtree(config_module.load(config_path).data_dir)
    config_path.write_text(config_path.read_text() + f'\n[store]\nindex = "{index_uri(postgres, name)}"\n'
                           + extra_store)
    config = config_module.load(config_path)
    recipients = tuple(keys.load_recipient(path) for path in config.recipients)
    Archive.create(config, recipients).close()
    pin_ledger_key(config_path, archive_ledger_key(config), replace=True)
    return config_path
