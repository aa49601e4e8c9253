"""``twentyday backup DEST``: a consistent copy of the archive while the daemon runs.

What it writes (the data directory's part of a backup; the administrator copies the
config directory beside it, README "Back up")::

    DEST/index.db     the index, blobs and ledger: one snapshot (SQLite's online backup)
    DEST/secrets/     the daemon's secrets (index key, ledger signing key and its .pub)
    DEST/HEAD         the signed ledger head the snapshot holds (``seq:hash:time:signature``),
                      written last: a folder without it is an unfinished backup

Why SQLite's backup API in ONE step: the snapshot is a single read transaction, so it is
consistent while ``serve`` keeps committing (WAL lets the writer go on beside it). The
``sqlite3`` shell's ``.backup`` copies 100 pages a step and starts over whenever another
connection commits between steps, so on an archive that takes mail it may never finish; a
plain ``cp`` of a WAL database can copy a torn one. The spool is not copied: what it holds
was accepted in the seconds before the snapshot and is committed moments later, so it is in
the next backup (a copy taken while items are destroyed under it would be torn anyway).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from twentyday import config as config_module
from twentyday.crypto import secrets
from twentyday.errors import ConfigError, IntegrityError
from twentyday.store.ledger import SignedHead, signed_head

INDEX_FILE = "index.db"
HEAD_FILE = "HEAD"


@dataclass(frozen=True)
class BackupReport:
    destination: Path
    head: SignedHead
    index_bytes: int


def backup_archive(config: config_module.Config, destination: Path) -> BackupReport:
    """Write a backup of ``config``'s archive into ``destination`` (a new folder, made 0700)."""
    if config.index is not None:  # nothing of the index is in data_dir: the database's own tools copy it
        raise ConfigError("the index is in PostgreSQL: back it up with pg_dump (one consistent snapshot), and keep "
                          "a copy of data_dir/secrets (and of the bucket, if [store] blobs names one) beside it; "
                          "'twentyday backup' copies an index in SQLite", path=str(config.path), key="store.index")
    source = config.data_dir / INDEX_FILE
    if not source.exists():
        raise ConfigError("no archive there (run 'twentyday create')", path=str(config.path), key="data_dir")
    try:
        destination.mkdir(mode=0o700)
    except FileExistsError:
        raise ConfigError("already exists; a backup is written into a new folder", path=str(destination)) from None
    except OSError as error:
        raise ConfigError(f"cannot make it: {error.strerror}", path=str(destination)) from None
    # The secrets first, checked as the daemon checks them (0600, its own): a backup of
    # secrets others could read, or of damaged ones, is refused here rather than at restore.
    secrets.load(config.data_dir)
    copied_secrets = destination / "secrets"
    copied_secrets.mkdir(mode=0o700)
    for name in (secrets.INDEX_KEY_FILE, secrets.SIGNING_KEY_FILE, secrets.VERIFY_KEY_FILE):
        shutil.copyfile(secrets.secrets_dir(config.data_dir) / name, copied_secrets / name)
        os.chmod(copied_secrets / name, 0o644 if name == secrets.VERIFY_KEY_FILE else 0o600)
    target_path = destination / INDEX_FILE
    # Read-only: the backup never writes the archive it copies.
    origin = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    target = sqlite3.connect(target_path)
    try:
        os.chmod(target_path, 0o600)
        origin.backup(target, pages=-1)  # one step: one read transaction, a consistent snapshot
        head = signed_head(target)
    finally:
        target.close()
        origin.close()
    if head is None:
        raise IntegrityError(f"{source}: the archive has no signed checkpoint yet; nothing to back up")
    (destination / HEAD_FILE).write_text(head.text() + "\n")
    return BackupReport(destination, head, target_path.stat().st_size)
