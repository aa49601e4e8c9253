"""Issue 12, item 4: a dropped file is read once, into bytes the employee can no longer change.

The employee drops an export and keeps a hard link to it outside the inbox. Once the
daemon has taken it (it is gone from the inbox) and before the pipeline reads it (the
pipeline process is stopped), the employee rewrites it through the link. The capture
must hold the bytes that were taken, consistent with its blob id and source hash; a
later capture of those bytes by another custodian must hold them too.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.security.spool_attack import (
    add_custodian,
    captures,
    continue_pipeline,
    serving,
    stop_pipeline,
    wait_for,
)
from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.store.archive import Archive
from twentyday.store.writer import read_pieces

ORIGINAL = b"12/01/2025, 10:00 - Jane Doe: the figures are 1,204\n"
REWRITTEN = b"12/01/2025, 10:00 - Jane Doe: the figures are 9,999\n"


def raw_of(archive: Archive, capture: dict[str, object], identity: keys.Identity) -> bytes:
    return archive.open_blob(archive.blob_ref(str(capture["raw_blob"])), identity)


def test_a_file_rewritten_through_a_hard_link_after_it_was_taken_is_archived_as_taken(archive_dir: Path) -> None:
    add_custodian(archive_dir, "abcd")
    data_dir = archive_dir / "data"
    employee = archive_dir / "employee"
    employee.mkdir()
    kept = employee / "chat.txt"
    kept.write_bytes(ORIGINAL)
    with serving(archive_dir) as (daemon, _):
        stopped = stop_pipeline(daemon)
        dropped = archive_dir / "inbox" / "jdoe" / "chat.txt"
        os.link(kept, dropped)
        wait_for(lambda: not dropped.exists())  # taken into the spool
        with kept.open("r+b") as handle:  # the same inode, if the daemon kept it
            handle.write(REWRITTEN)
        continue_pipeline(stopped)
        wait_for(lambda: len(captures(data_dir)) >= 1)
        # Another custodian drops the original content later.
        (archive_dir / "inbox" / "abcd" / "chat.txt").write_bytes(ORIGINAL)
        wait_for(lambda: len(captures(data_dir)) >= 2)
    config = config_module.load(archive_dir / "twentyday.toml")
    identity = keys.load_identity(archive_dir / "officer.key", None)
    with Archive(config) as archive:
        first, second = captures(data_dir)
        assert first["custodian"] == "jdoe" and second["custodian"] == "abcd"
        for capture in (first, second):
            raw = raw_of(archive, capture, identity)
            assert raw == ORIGINAL, hashlib.sha256(raw).hexdigest()
            assert capture["raw_blob"] == archive.hashes.blob_id(raw)
            assert capture["source_hash"] == archive.hashes.source(str(capture["custodian"]), read_pieces(raw))
