"""Two nodes of one archive in PostgreSQL: the same bytes ingested by both at once make one capture, and
a node checks that its secrets are the archive's (store/nodes.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import NOW, make_mail
from tests.pg import LocalPG
from tests.pgarchive import make_pg_archive
from twentyday.config import load
from twentyday.crypto.secrets import DaemonSecrets
from twentyday.errors import IntegrityError
from twentyday.pipeline import process as pipeline
from twentyday.store.archive import Archive
from twentyday.store.nodes import SECRETS_CHECK, check_node, secrets_check
from twentyday.store.writer import IngestResult


def mail_item() -> pipeline.Item:
    return pipeline.Item("mail 1", "smtp", datetime.now(UTC), data=make_mail(message_id="<race@nodes.test>"))


def test_the_same_bytes_from_two_nodes_at_once_make_one_capture(tmp_path: Path, postgres: LocalPG) -> None:
    config = load(make_pg_archive(tmp_path / "arch", postgres, now=NOW))
    first, second = Archive(config), Archive(config)
    try:
        results: list[IngestResult | None] = []
        with first.batch():  # the first node's batch holds the ledger writers' lock until it commits
            ingested = pipeline.process(first, mail_item())
            racer = threading.Thread(target=lambda: results.append(pipeline.process(second, mail_item()).result))
            racer.start()
            racer.join(1.0)
            assert racer.is_alive(), "the second node wrote beside the first's open batch"
        racer.join(30)
        assert ingested.state == "ingested"
        [raced] = results
        assert raced is not None and raced.duplicate and raced.capture_id == ingested.capture_id
        assert first.conn.execute("SELECT count(*) FROM capture").fetchone()[0] == 1
        assert first.conn.execute("SELECT count(*) FROM record").fetchone()[0] == 1
    finally:
        first.close()
        second.close()


def test_a_node_checks_its_secrets_against_the_archive(tmp_path: Path, postgres: LocalPG) -> None:
    config = load(make_pg_archive(tmp_path / "arch", postgres, now=NOW))
    with Archive(config) as archive:
        own = archive.secrets
        kept = archive.conn.execute("SELECT value FROM meta WHERE key = ?", (SECRETS_CHECK,)).fetchone()
        assert kept is not None and kept[0] == secrets_check(own)  # create kept it
        assert own.index_key.hex() not in kept[0]
        check_node(archive.conn, own, "secrets")
        other_index_key = DaemonSecrets(bytes(32), own.signing_key)
        with pytest.raises(IntegrityError, match="the index key is not the archive's"):
            check_node(archive.conn, other_index_key, "secrets")
        # An archive made before the check: the first node that serves with the archive's ledger key keeps it.
        archive.conn.execute("DELETE FROM meta WHERE key = ?", (SECRETS_CHECK,))
        check_node(archive.conn, own, "secrets")
        with pytest.raises(IntegrityError, match="the index key is not the archive's"):
            check_node(archive.conn, other_index_key, "secrets")
