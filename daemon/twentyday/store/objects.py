"""Sealed blobs in an S3 bucket with Object Lock: write once, locked in COMPLIANCE mode.

The scale-out blob backend (``[store] blobs = "s3://BUCKET"``; docs/ARCHITECTURE.md, "Beyond one
machine"). What goes to the bucket is only what the embedded store keeps in its ``chunk`` rows:
chunks sealed under the capture's data key before they leave the daemon. A capture's chunks are
cut into *segments* of up to 8 MiB (the blob store's staging bound, ``STAGED_CHUNK_BYTES``), one
object each, one PUT, never a multipart upload (Ceph 16 ignores the lock headers of those), named
by the capture and the SHA-256 of the segment's bytes::

    captures/<capture id>/<sha256 of the segment>

so the same bytes are never written under two names and bytes written by a transaction that was
rolled back (a crash between the PUT and the index's commit) never shadow a committed object:
they are *strays* under the capture's prefix, which ``verify`` counts and disposition removes
with the capture. The index keeps, in place of each chunk's sealed bytes, a pointer to where they
are in their segment (:func:`pointer`); the blob's digest, which the ledger commits to, is still
the SHA-256 of the sealed bytes themselves, so a pointer moved or an object replaced is named by
``verify`` as any altered blob is.

Locks. Every object is written with a COMPLIANCE retention: until the capture may be destroyed
under its records' own retention rule (:func:`capture_retain_until`), and never less than the
bucket's minimum (``store.s3_min_retention_days``). In compliance mode nobody, the archive's own
credentials and the bucket's owner included, can delete a locked version or shorten its lock
before it ends; it can only be extended. A legal hold (``holds``) is set on the objects of every
capture one of whose records an active hold matches, and taken off when no hold does
(:func:`twentyday.store.holds.captures_held`, :mod:`twentyday.store.object_holds`): a held version
cannot be deleted even after its retention ended. Disposition deletes a capture's versions by
version id once none is locked or held (:mod:`twentyday.store.object_disposal`). The bucket itself
is made with Object Lock by ``twentyday create`` (or ``migrate --to``); a bucket without it is
refused (:meth:`ObjectStore.ensure_bucket`).

The signed ledger heads are published to ``heads/<seq>``, each once, locked for
:data:`PERMANENT_YEARS` (:meth:`publish_head`): a head proves the whole chain before it.

PUTs run on a small thread pool while the writer goes on; :meth:`ObjectStore.wait` is called
before the index commits, so a record is never committed whose sealed bytes are not in the
bucket. Credentials come from an AWS shared-credentials file checked like a secret (config);
neither they nor any request is logged (botocore's loggers are held at WARNING).
"""

from __future__ import annotations

import base64
import configparser
import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import botocore.exceptions

from twentyday.config import BlobTarget
from twentyday.errors import ConfigError, IntakeError, IntegrityError, TwentydayError
from twentyday.retention import Rule, eligible_since

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3.client import S3Client

# Request lines, headers and signatures are botocore's debug output: never in twentyday's logs.
for _name in ("boto3", "botocore", "s3transfer", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

#: What a ``chunk`` row's ``data`` starts with when the sealed bytes are in the bucket. A sealed
#: chunk starts with a random 12-byte nonce: it begins with these 17 bytes with odds of 2^-136.
POINTER_PREFIX = b"twentyday-object:"
#: Segment bytes PUT or waiting to be, at most: a bound on memory, whatever the bucket's speed.
IN_FLIGHT_BYTES = 32 * 1024 * 1024
#: A permanent record's capture is locked this long (it is transferred to NARA, never destroyed here).
PERMANENT_YEARS = 100
#: S3's COMPLIANCE mode and legal-hold words.
COMPLIANCE: Final = "COMPLIANCE"
#: The codes S3 services answer with for "no lock here" (AWS and Ceph differ).
NO_LOCK_CODES = frozenset({"ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration"})


@dataclass(frozen=True)
class Pointer:
    key: str
    offset: int
    length: int


@dataclass(frozen=True)
class Version:
    """One version in the bucket, as a listing gives it (``marker``: a delete marker, no bytes, no lock)."""

    key: str
    version_id: str
    marker: bool
    size: int = 0


@dataclass(frozen=True)
class LockState:
    """A version's Object Lock: its mode ('' when none), until when, and whether a legal hold is on."""

    mode: str
    until: datetime | None
    legal_hold: bool


def pointer(key: str, offset: int, length: int) -> bytes:
    """What the index keeps for a chunk whose sealed bytes are ``length`` bytes at ``offset`` of ``key``."""
    return POINTER_PREFIX + f"{key} {offset} {length}".encode("ascii")


def read_pointer(data: bytes) -> Pointer | None:
    """The pointer a chunk row holds, or None when it holds the sealed bytes themselves."""
    if not data.startswith(POINTER_PREFIX):
        return None
    try:
        key, offset, length = data[len(POINTER_PREFIX):].decode("ascii").split(" ")
        return Pointer(key, int(offset), int(length))
    except ValueError:
        raise IntegrityError("a chunk row holds a pointer that cannot be read (run 'twentyday verify')") from None


def segment_key(capture_id: str, data: bytes) -> str:
    return f"captures/{capture_id}/{hashlib.sha256(data).hexdigest()}"


def capture_prefix(capture_id: str) -> str:
    return f"captures/{capture_id}/"


#: How far a date-based cutoff read in UTC can be from the same cutoff in the record's own zone.
ZONE_MARGIN = timedelta(hours=14)


def capture_retain_until(rule: Rule, latest: datetime, tenure_ended: date | None, today: date) -> datetime:
    """Until when a capture's objects are locked: until its latest record may be destroyed.

    ``latest`` is its latest record's date (creation, else capture time). A cutoff that is a day
    (calendar or fiscal year, tenure) is read here in UTC, at most 14 hours off the record's own
    zone: the lock ends that much sooner, so it never outlasts the record's eligibility. A tenure
    still running gives the earliest it can end (today); a permanent record, or a rule not read,
    :data:`PERMANENT_YEARS`.
    """
    dated = latest.astimezone(UTC)
    if rule.cutoff == "tenure" and tenure_ended is None:
        tenure_ended = today
    since = eligible_since(rule, dated, tenure_ended)
    if since is None:
        return dated.replace(year=dated.year + PERMANENT_YEARS, month=1, day=1)
    return since if rule.cutoff == "creation" else since - ZONE_MARGIN


def _load_credentials(target: BlobTarget) -> tuple[str, str, str | None]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with target.credentials.open(encoding="utf-8") as handle:
            parser.read_file(handle)
    except FileNotFoundError:
        raise ConfigError("no such credentials file", path=str(target.credentials), key="store.s3_credentials") \
            from None
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        raise ConfigError(f"cannot read the credentials file ({type(error).__name__})", path=str(target.credentials),
                          key="store.s3_credentials") from None
    if not parser.has_section(target.profile):
        raise ConfigError(f"no [{target.profile}] section (store.s3_profile)", path=str(target.credentials),
                          key="store.s3_credentials")
    section = parser[target.profile]
    access, secret = section.get("aws_access_key_id", ""), section.get("aws_secret_access_key", "")
    if not access or not secret:
        raise ConfigError("needs aws_access_key_id and aws_secret_access_key", path=str(target.credentials),
                          key="store.s3_credentials")
    return access, secret, section.get("aws_session_token") or None


def error_code(error: Exception) -> str:
    """The S3 error code of a failed request, or the exception's type (never its message, which may echo
    a request)."""
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return type(error).__name__


_SESSION_LOCK = threading.Lock()
_SESSION: list[boto3.session.Session] = []


def _session() -> boto3.session.Session:
    """One boto3 session for the process, holding no credentials (each client is given its own):
    its loader parses botocore's S3 model (about 0.25 s of CPU) once, not at every archive opened."""
    if not _SESSION:
        # Imported here, not with the module: boto3 costs every process that imports the store about
        # 0.2 s and 15 MB (the CLI's search, the embedded archive), and only a bucket needs it.
        import boto3

        _SESSION.append(boto3.session.Session())
    return _SESSION[0]


class ObjectStore:
    """The bucket, opened with the archive's credentials. Thread-safe: PUTs run on a pool."""

    def __init__(self, target: BlobTarget) -> None:
        access, secret, token = _load_credentials(target)
        self.target = target
        self.bucket = target.bucket
        import botocore.config  # with boto3, in _session(): only a bucket needs them

        config = botocore.config.Config(
            retries={"max_attempts": 4, "mode": "standard"}, max_pool_connections=16,
            connect_timeout=10, read_timeout=120, s3={"addressing_style": "path"},
            # Ceph RGW 16 and other S3 services do not all know the newer trailing checksums:
            # integrity is ours (Content-MD5 on each PUT, and the ledger's digests).
            request_checksum_calculation="when_required", response_checksum_validation="when_required")
        with _SESSION_LOCK:  # a boto3 session is not thread-safe; its clients are
            self.client: S3Client = _session().client(
                "s3", endpoint_url=target.endpoint or None, region_name=target.region, aws_access_key_id=access,
                aws_secret_access_key=secret, aws_session_token=token, config=config)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="twentyday-s3")
        self._lock = threading.Condition()
        self._in_flight = 0
        self._pending: list[Future[str]] = []

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def describe(self) -> str:
        """Where the blobs are, as status and errors name it (no credentials)."""
        return f"s3://{self.bucket}" + (f" at {self.target.endpoint}" if self.target.endpoint else "")

    # -- the bucket ------------------------------------------------------------------------------------------------

    def ensure_bucket(self, *, create: bool) -> bool:
        """Check the bucket has Object Lock enabled; with ``create``, make it (locked) when it does not exist.

        True when it was made now. A bucket without Object Lock is refused: it cannot be turned on
        for the versions already in it, and without it anyone holding the key could delete a record.
        """
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as error:
            if error_code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                raise self._failure("cannot reach the bucket", error) from None
            if not create:
                raise TwentydayError(f"{self.describe()}: no such bucket (run 'twentyday create' to make it)") \
                    from None
            self._make_bucket()
            return True
        except botocore.exceptions.BotoCoreError as error:
            raise self._failure("cannot reach the bucket", error) from None
        self._require_object_lock()
        return False

    def _make_bucket(self) -> None:
        try:
            self.client.create_bucket(Bucket=self.bucket, ObjectLockEnabledForBucket=True)
            if self.target.min_retention_days:
                self.client.put_object_lock_configuration(Bucket=self.bucket, ObjectLockConfiguration={
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": COMPLIANCE, "Days": self.target.min_retention_days}}})
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise self._failure("cannot make the bucket with Object Lock", error) from None

    def _require_object_lock(self) -> None:
        try:
            found = self.client.get_object_lock_configuration(Bucket=self.bucket)["ObjectLockConfiguration"]
        except botocore.exceptions.ClientError as error:
            if error_code(error) in NO_LOCK_CODES | {"InvalidRequest"}:
                found = {}
            else:
                raise self._failure("cannot read the bucket's Object Lock configuration", error) from None
        except botocore.exceptions.BotoCoreError as error:
            raise self._failure("cannot read the bucket's Object Lock configuration", error) from None
        if found.get("ObjectLockEnabled") != "Enabled":
            raise TwentydayError(f"{self.describe()}: the bucket has no Object Lock; a records archive needs "
                                 "write-once storage (make a new bucket with 'twentyday create', which enables it)")

    def _failure(self, what: str, error: Exception) -> TwentydayError:
        return TwentydayError(f"{self.describe()}: {what} ({error_code(error)})")

    # -- writing ---------------------------------------------------------------------------------------------------

    def floor(self) -> datetime:
        """The earliest end of any lock written now: the bucket's minimum retention from now."""
        return datetime.now(UTC) + timedelta(days=self.target.min_retention_days)

    def _lock_until(self, retain_until: datetime | None) -> datetime | None:
        """The lock to write: ``retain_until``, never under the bucket's minimum; None when that is
        no lock at all (no minimum, and the capture may be destroyed already or is not known yet)."""
        until = max(retain_until, self.floor()) if retain_until is not None else self.floor()
        return until if until > datetime.now(UTC) + timedelta(seconds=1) else None

    def put_segment(self, capture_id: str, data: bytes, retain_until: datetime | None, legal_hold: bool) -> tuple[
            str, Future[str]]:
        """Start writing one segment (in the background); its key now, its version id when written.

        ``retain_until`` None or before the bucket's minimum: the minimum."""
        key = segment_key(capture_id, data)
        until = self._lock_until(retain_until)
        with self._lock:
            while self._in_flight and self._in_flight + len(data) > IN_FLIGHT_BYTES:
                self._lock.wait()
            self._in_flight += len(data)
        future = self._pool.submit(self._put, key, data, until, legal_hold)
        with self._lock:
            self._pending.append(future)
        return key, future

    def _put(self, key: str, data: bytes, until: datetime | None, legal_hold: bool) -> str:
        lock: dict[str, Any] = {"ObjectLockMode": COMPLIANCE, "ObjectLockRetainUntilDate": until} if until else {}
        try:
            answer = self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data,
                ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),  # noqa: S324 -- S3 asks MD5
                ObjectLockLegalHoldStatus="ON" if legal_hold else "OFF", **lock)
            return str(answer.get("VersionId", ""))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise IntakeError(f"{self.describe()}: cannot write a sealed segment ({error_code(error)})") from None
        finally:
            with self._lock:
                self._in_flight -= len(data)
                self._lock.notify_all()

    def relock(self, key: str, version: Future[str], retain_until: datetime | None, legal_hold: bool) -> None:
        """Once ``version`` is written: extend its lock to ``retain_until`` and set its legal hold (background)."""
        def apply() -> str:
            # No deadlock on the pool: ``version``'s PUT was submitted before this task (FIFO), so a
            # worker had started it before any could start this one.
            version_id = version.result()
            until = self._lock_until(retain_until)
            if until is not None:
                self.extend(key, version_id, until)
            if legal_hold:
                self.set_legal_hold(key, version_id, on=True)
            return version_id

        future = self._pool.submit(apply)
        with self._lock:
            self._pending.append(future)

    def wait(self) -> None:
        """Every PUT started so far is written (raises the first failure, always as an IntakeError:
        the caller rolls back on that, a refused legal hold included)."""
        with self._lock:
            pending, self._pending = self._pending, []
        failure: BaseException | None = None
        for future in pending:
            error = future.exception()
            if error is not None and failure is None:
                failure = error
        if isinstance(failure, IntakeError):
            raise failure
        if isinstance(failure, TwentydayError):
            raise IntakeError(str(failure)) from None
        if failure is not None:
            raise IntakeError(f"{self.describe()}: a write failed ({error_code(failure)})")  # type: ignore[arg-type]

    def forget(self) -> None:
        """Drop the pending writes of a rolled-back transaction (what they wrote is a stray)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.exception()

    # -- locks and holds -------------------------------------------------------------------------------------------

    def extend(self, key: str, version_id: str, retain_until: datetime) -> None:
        """Lengthen a version's COMPLIANCE lock (S3 refuses to shorten one: so do we, by not asking)."""
        try:
            current = self.retention(key, version_id)
            if current is not None and current >= retain_until:
                return
            self.client.put_object_retention(Bucket=self.bucket, Key=key, VersionId=version_id, Retention={
                "Mode": COMPLIANCE, "RetainUntilDate": retain_until})
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise IntakeError(f"{self.describe()}: cannot extend a lock ({error_code(error)})") from None

    def retention(self, key: str, version_id: str) -> datetime | None:
        try:
            found = self.client.get_object_retention(Bucket=self.bucket, Key=key, VersionId=version_id)
        except botocore.exceptions.ClientError as error:
            if error_code(error) in NO_LOCK_CODES:
                return None
            raise
        until = found.get("Retention", {}).get("RetainUntilDate")
        return until.astimezone(UTC) if until is not None else None

    def legal_hold(self, key: str, version_id: str) -> bool:
        try:
            found = self.client.get_object_legal_hold(Bucket=self.bucket, Key=key, VersionId=version_id)
        except botocore.exceptions.ClientError as error:
            if error_code(error) in NO_LOCK_CODES:
                return False
            raise
        return found.get("LegalHold", {}).get("Status") == "ON"

    def set_legal_hold(self, key: str, version_id: str, *, on: bool) -> None:
        try:
            self.client.put_object_legal_hold(Bucket=self.bucket, Key=key, VersionId=version_id,
                                              LegalHold={"Status": "ON" if on else "OFF"})
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise TwentydayError(f"{self.describe()}: cannot set a legal hold ({error_code(error)})") from None

    def listing(self, prefix: str) -> list[Version]:
        """Every version under ``prefix``, delete markers told apart (they hold no bytes and no lock).

        A failure is botocore's error, as :meth:`retention` and :meth:`legal_hold` raise theirs: the
        caller names it (:func:`error_code`) beside the version it was about."""
        paginator = self.client.get_paginator("list_object_versions")
        found: list[Version] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found += [Version(v["Key"], v["VersionId"], False, int(v.get("Size", 0))) for v in page.get("Versions", [])]
            found += [Version(m["Key"], m["VersionId"], True) for m in page.get("DeleteMarkers", [])]
        return found

    def versions_of(self, key: str) -> list[str]:
        """The version ids of ``key`` that hold bytes (delete markers left out), newest first."""
        try:
            return [v.version_id for v in self.listing(key) if v.key == key and not v.marker]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise IntegrityError(f"{self.describe()}: cannot list {key} ({error_code(error)})") from None

    # -- reading ---------------------------------------------------------------------------------------------------

    def read(self, key: str, offset: int | None = None, length: int | None = None, *,
             version_id: str | None = None) -> bytes:
        """An object's bytes (of one version; a range of them with ``offset``/``length``)."""
        extra: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        if offset is not None and length is not None:
            extra["Range"] = f"bytes={offset}-{offset + length - 1}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, **extra)["Body"]
            data = body.read()
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise IntegrityError(f"{self.describe()}: cannot read {key} ({error_code(error)}; "
                                 "run 'twentyday verify')") from None
        return bytes(data)

    def keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise TwentydayError(f"{self.describe()}: cannot list {prefix} ({error_code(error)})") from None

    # -- what verify reads -----------------------------------------------------------------------------------------

    def catalogue(self, prefix: str) -> Iterator[Version]:
        """Every version under ``prefix`` with its size (delete markers too, marked), streamed: one
        paginated list; a failure is a :class:`TwentydayError` naming the prefix."""
        paginator = self.client.get_paginator("list_object_versions")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for version in page.get("Versions", []):
                    yield Version(version["Key"], version["VersionId"], False, int(version.get("Size", 0)))
                for marker in page.get("DeleteMarkers", []):
                    yield Version(marker["Key"], marker["VersionId"], True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise TwentydayError(f"{self.describe()}: cannot list {prefix} ({error_code(error)})") from None

    def lock_state(self, key: str, version_id: str) -> LockState:
        """A version's lock and legal hold, in one request (HEAD answers with both)."""
        try:
            found = self.client.head_object(Bucket=self.bucket, Key=key, VersionId=version_id)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise TwentydayError(f"{self.describe()}: cannot read the lock of {key} ({error_code(error)})") from None
        until = found.get("ObjectLockRetainUntilDate")
        return LockState(str(found.get("ObjectLockMode") or ""), until.astimezone(UTC) if until else None,
                         found.get("ObjectLockLegalHoldStatus") == "ON")

    # -- published heads -------------------------------------------------------------------------------------------

    def publish_head(self, seq: int, line: str) -> None:
        """Write a signed ledger head as ``heads/<seq>`` (once), COMPLIANCE-locked for :data:`PERMANENT_YEARS`."""
        data = (line + "\n").encode("ascii")
        key = f"heads/{seq:012d}"
        if next(self.keys(key), None) == key:  # published before (a restart): once is enough
            return
        now = datetime.now(UTC)
        until = now.replace(year=now.year + PERMANENT_YEARS)  # a head proves the whole chain before it: kept
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data,
                                   ContentMD5=base64.b64encode(hashlib.md5(data).digest()).decode("ascii"),  # noqa: S324
                                   ObjectLockMode=COMPLIANCE, ObjectLockRetainUntilDate=until)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise TwentydayError(f"{self.describe()}: cannot publish the ledger head ({error_code(error)})") from None


class SegmentCache:
    """The last segment read, whole: a blob's chunks are read in order from one or two segments.

    A segment's name is the SHA-256 of its bytes, so what is read is checked against it: should
    anyone holding the bucket's key have written another version over the name (a locked version
    cannot be deleted, but a newer one can be put beside it, or a delete marker stacked on it), the
    version whose bytes match is found among them and read instead."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects
        self._key = ""
        self._data = b""

    def chunk(self, found: Pointer) -> bytes:
        if found.key != self._key:
            self._data = self._segment(found.key)
            self._key = found.key
        data = self._data[found.offset:found.offset + found.length]
        if len(data) != found.length:
            raise IntegrityError(f"{found.key} is shorter than the index says (run 'twentyday verify')")
        return data

    def _segment(self, key: str) -> bytes:
        expected = key.rpartition("/")[2]
        with contextlib.suppress(IntegrityError):  # a delete marker over the name: the versions below it
            data = self._objects.read(key)
            if hashlib.sha256(data).hexdigest() == expected:
                return data
        for version_id in self._objects.versions_of(key):
            data = self._objects.read(key, version_id=version_id)
            if hashlib.sha256(data).hexdigest() == expected:
                return data
        raise IntegrityError(f"{key}: no version of it holds the bytes it is named after (run 'twentyday verify')")
