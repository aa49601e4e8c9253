"""Store fixtures: every archive a store test opens, on each backend; a writer cutting small packs.

``archive_dir`` (and so ``archive`` and ``archive_with_limits``) is parametrized: each test runs
against the embedded store (``[embedded]``: the index in SQLite, sealed chunks in it), the S3 blob
store (``[s3]``: sealed segments in a bucket of the session's real Ceph RGW, tests/rgw.py), the
index in the session's real PostgreSQL (``[pg]``: tests/pg.py, sealed chunks in it) and the whole
scale-out backend (``[pg+s3]``: the index in PostgreSQL, the blobs in a bucket), made by the same
init (same officer key at ``arch/officer.key``, the same ``NOW``) and ``twentyday create``. A case
that has no equivalent on a backend is marked by its test with a reason (:func:`embedded_only`,
:func:`not_on_postgresql`), never skipped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import NOW
from tests.pgarchive import make_pg_archive
from tests.s3archive import bucket_lines, make_s3_archive, new_bucket_name
from twentyday import config as config_module
from twentyday.initialise import init_archive
from twentyday.store import postgres
from twentyday.store.archive import Archive
from twentyday.store.objects import ObjectStore
from twentyday.store.writer import WriterLimits

OpenWithLimits = Callable[..., Archive]

#: The backends every store test runs against (the ids name them in each test's name): the embedded
#: store, sealed blobs in a bucket, the index in PostgreSQL.
BACKENDS = ("embedded", "s3", "pg", "pg+s3")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Which backend this test's archive uses: ``embedded``, ``s3`` (blobs in a bucket), ``pg`` (the index
    in PostgreSQL) or ``pg+s3`` (both: the scale-out backend)."""
    return str(request.param)


def embedded_only(reason: str) -> pytest.MarkDecorator:
    """A test (or module) of the embedded store alone: it runs as ``[embedded]``, and ``[s3]`` and ``[pg]``
    are reported skipped with ``reason`` (its fixtures must request ``backend``)."""
    skipped = pytest.mark.skip(reason=f"embedded only: {reason}")
    return pytest.mark.parametrize("backend", [
        "embedded", *(pytest.param(other, marks=skipped) for other in BACKENDS[1:])], indirect=True)


def not_on_postgresql(reason: str) -> pytest.MarkDecorator:
    """A test (or module) with no equivalent when the index is in PostgreSQL: ``[pg]`` and ``[pg+s3]`` are
    reported skipped with ``reason`` (its fixtures must request ``backend``)."""
    return pytest.mark.parametrize("backend", [
        "embedded", "s3", *(pytest.param(pg, marks=pytest.mark.skip(reason=f"not on PostgreSQL: {reason}"))
                            for pg in ("pg", "pg+s3"))],
        indirect=True)


@pytest.fixture
def archive_dir(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path:
    """A fresh archive directory (``twentyday.toml`` in it) as 'twentyday init --no-passphrase' makes it;
    with ``s3``, its blobs in a new bucket of the local RGW (no minimum retention)."""
    if backend == "s3":
        make_s3_archive(tmp_path / "arch", request.getfixturevalue("rgw"), now=NOW)
    elif backend == "pg":
        make_pg_archive(tmp_path / "arch", request.getfixturevalue("postgres"), now=NOW)
    elif backend == "pg+s3":  # the whole scale-out backend: the index in PostgreSQL, the blobs in a bucket
        make_pg_archive(tmp_path / "arch", request.getfixturevalue("postgres"), now=NOW,
                        extra_store=bucket_lines(request.getfixturevalue("rgw"), new_bucket_name()))
    else:
        init_archive(tmp_path / "arch", passphrase=None, demo=False, now=NOW)
    return tmp_path / "arch"


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


def stored_bytes(archive_dir: Path) -> dict[str, bytes]:
    """Everything the archive has stored, by where: each file under its data directory, with the
    S3 backend each version of each object in its bucket (``s3://bucket/key@version``), with the index
    in PostgreSQL each of its tables (``postgresql:TABLE``)."""
    config = config_module.load(archive_dir / "twentyday.toml")
    found = {str(path): path.read_bytes() for path in config.data_dir.rglob("*") if path.is_file()}
    if config.index is not None:
        found.update(_postgresql_tables(config.index))
    if config.blobs is not None:
        objects = ObjectStore(config.blobs)
        try:
            for version in objects.catalogue(""):
                if not version.marker:
                    found[f"s3://{objects.bucket}/{version.key}@{version.version_id}"] = objects.read(
                        version.key, version_id=version.version_id)
        finally:
            objects.close()
    return found


def _postgresql_tables(index: str) -> dict[str, bytes]:
    """Each table of an index in PostgreSQL (``postgresql:TABLE``) as the bytes of its values, row by
    row: a ``bytea`` as stored (not its hex text), any other value as its text in UTF-8."""
    conn = postgres.connect(index)
    try:
        columns: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in conn.execute(
                "SELECT table_name, column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"):
            columns.setdefault(table, []).append((column, kind))
        found = {}
        for table, named in columns.items():
            values = ", ".join(f'"{c}"' if kind == "bytea" else f'"{c}"::text' for c, kind in named)
            found[f"postgresql:{table}"] = b"\n".join(
                value if isinstance(value, bytes) else value.encode()
                for row in conn.execute(f'SELECT {values} FROM "{table}"') for value in row if value is not None)
        return found
    finally:
        conn.close()
