"""Shared test helpers: a real archive in a temporary directory, real e-mail bytes."""

from __future__ import annotations

import re
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import pg as local_pg
from tests import rgw as local_rgw
from twentyday import config as config_module
from twentyday.initialise import init_archive
from twentyday.store.archive import Archive

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
PG_STARTED_IN = pytest.StashKey[float]()  # seconds the session's PostgreSQL took to start, for the summary


def make_mail(
    *,
    sender: str = "Jane Doe <jane.doe@gmail.com>",
    to: str = "counterpart@partner.example",
    cc: str = "",
    date: datetime | None = NOW - timedelta(days=3),
    subject: str = "Meeting notes",
    body: str = "We agreed on the pelican schedule.",
    message_id: str = "<m1@example.test>",
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    if date is not None:
        message["Date"] = format_datetime(date)
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content(body)
    if attachment:
        message.add_attachment(attachment[1], maintype="application", subtype="octet-stream",
                               filename=attachment[0])
    return bytes(message)


@pytest.fixture
def archive_dir(tmp_path: Path) -> Path:
    """A fresh archive made by the same code as 'twentyday init --no-passphrase'."""
    init_archive(tmp_path / "arch", passphrase=None, demo=False, now=NOW)
    return tmp_path / "arch"


@pytest.fixture
def archive(archive_dir: Path) -> Iterator[Archive]:
    opened = Archive(config_module.load(archive_dir / "twentyday.toml"))
    yield opened
    opened.close()


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_rgw.LocalRGW]:
    """A real S3 service with Object Lock for the whole test session: one-node Ceph + RGW (tests/rgw.py).

    Started on the first test that asks for it (about 1.5 s), stopped after the last; Ceph's logs stay
    in the session's tmp folder. Missing Ceph packages fail the test with the apt-get line to run
    (scripts/test installs them).
    """
    try:
        handle = local_rgw.start(tmp_path_factory.mktemp("rgw"))
    except local_rgw.RGWError as exc:
        pytest.fail(f"local RGW: {exc}", pytrace=False)
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Iterator[local_pg.LocalPG]:
    """A real PostgreSQL for the whole test session, on a private unix socket only (tests/pg.py).

    Started on the first test that asks for it (under a second), stopped after the last; its logs stay in
    the session's tmp folder. Missing PostgreSQL fails the test with the apt-get line to run (scripts/test
    installs it).
    """
    began = time.monotonic()
    try:
        handle = local_pg.start(tmp_path_factory.mktemp("pg"))
    except local_pg.PGError as exc:
        pytest.fail(f"local PostgreSQL: {exc}", pytrace=False)
    pytestconfig.stash[PG_STARTED_IN] = time.monotonic() - began
    yield handle
    handle.stop()


@pytest.fixture
def pg_dsn(postgres: local_pg.LocalPG, request: pytest.FixtureRequest) -> Iterator[str]:
    """The dsn of a new, empty database (C collation, UTF8) for this test alone, named after it.

    Dropped after the test, sessions still open to it ended; a failed drop is only a warning (the
    cluster goes with the session).
    """
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40].strip("_")
    name = f"{stem}_{uuid.uuid4().hex[:12]}"
    yield postgres.create_database(name)
    try:
        postgres.drop_database(name)
    except local_pg.PGError as exc:
        warnings.warn(f"test database {name} not dropped: {exc}", stacklevel=1)


@pytest.fixture(scope="session")
def s3(rgw: local_rgw.LocalRGW) -> S3Client:
    """A boto3 S3 client for the local RGW, with its user's keys (path-style: the endpoint is an IP)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(aws_access_key_id=rgw.access_key, aws_secret_access_key=rgw.secret_key,
                                 region_name=rgw.region).client(
        "s3", endpoint_url=rgw.endpoint, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def s3_bucket(s3: S3Client, request: pytest.FixtureRequest) -> str:
    """A new bucket with Object Lock enabled (and so versioning), named after the test; its name.

    Left in place after the test: what a test locked cannot be deleted, and the cluster goes with the session.
    """
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True)
    return name


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The corpus test's undated records, at the end of every run that read the corpus (CI's log included).

    ``tests/pipeline/test_corpus.py`` fills ``UNDATED`` (export -> undated records) as it reads each
    real export; issue 15 asks that count be printed, not only asserted.
    """
    import sys

    started_in = terminalreporter.config.stash.get(PG_STARTED_IN, None)
    if started_in is not None:
        terminalreporter.write_line(f"local PostgreSQL (tests/pg.py) started in {started_in:.2f} s")
    corpus = next((m for name, m in sys.modules.items() if name.endswith("test_corpus") and hasattr(m, "UNDATED")),
                  None)
    undated: dict[str, int] = getattr(corpus, "UNDATED", {})
    if not undated:
        return
    with_undated = {name: count for name, count in sorted(undated.items()) if count}
    terminalreporter.section("undated records in the tests/data corpus")
    terminalreporter.write_line(f"{sum(with_undated.values())} undated records in {len(with_undated)} of "
                                f"{len(undated)} exports read")
    for name, count in with_undated.items():
        terminalreporter.write_line(f"  {count:>4}  {name}")
