"""An archive whose sealed blobs are in a bucket of the local Ceph RGW (tests/rgw.py), made as an
administrator would: 'twentyday init' for the config and the officer's key, then ``[store]`` in the
config and 'twentyday create' (the same code: :meth:`Archive.create`, the ledger key pinned)."""

from __future__ import annotations

import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Protocol

from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.initialise import archive_ledger_key, init_archive, pin_ledger_key
from twentyday.store.archive import Archive


class S3Service(Protocol):
    @property
    def endpoint(self) -> str: ...

    @property
    def credentials_file(self) -> Path: ...


def new_bucket_name() -> str:
    return "twentyday-" + uuid.uuid4().hex[:16]


def bucket_lines(service: S3Service, bucket: str, *, min_retention_days: int = 0) -> str:
    """The ``[store]`` keys that put an archive's blobs in ``bucket`` (the section's header not included)."""
    return (f'blobs = "s3://{bucket}"\ns3_endpoint = "{service.endpoint}"\n'
            f's3_credentials = "{service.credentials_file}"\ns3_min_retention_days = {min_retention_days}\n')


def store_section(service: S3Service, bucket: str, *, min_retention_days: int = 0) -> str:
    return "\n[store]\n" + bucket_lines(service, bucket, min_retention_days=min_retention_days)


def make_s3_archive(directory: Path, service: S3Service, *, now: datetime, bucket: str | None = None,
                    min_retention_days: int = 0, extra_config: str = "") -> Path:
    """A new archive in ``directory`` with its blobs in ``bucket`` (a new one by default); its config path.

    ``min_retention_days=0`` (no bucket minimum): each capture's lock follows its records' rule
    alone, so a test can see a lock end (a rule of a day, records dated a day before now)."""
    init_archive(directory, passphrase=None, demo=False, now=now)
    config_path = directory / "twentyday.toml"
    shutil.rmtree(config_module.load(config_path).data_dir)
    text = config_path.read_text() + extra_config + store_section(
        service, bucket or new_bucket_name(), min_retention_days=min_retention_days)
    config_path.write_text(text)
    config = config_module.load(config_path)
    recipients = tuple(keys.load_recipient(path) for path in config.recipients)
    Archive.create(config, recipients).close()
    pin_ledger_key(config_path, archive_ledger_key(config), replace=True)
    return config_path
