"""The bucket's side of disposition: what a capture to destroy has there, whether it may go, deleting it.

Before ``dispose``'s transaction, :func:`inspect` lists every version under each planned
capture's prefix (``captures/<id>/``: its segments, strays and delete markers included) and
reads each one's retention and legal hold at that moment. A capture with a version still
locked, or legally held, is *blocked*: its records are skipped with the reason ("its sealed
objects are locked until …", "… are under a legal hold in the bucket"), never destroyed half.
A bucket that cannot be listed or does not answer stops the disposal before anything changes.
Disposition never takes a legal hold off (:mod:`object_holds`: ``hold sync`` does, as the holds
say).

The certificate of destruction lists, for each capture it destroys, exactly the versions
listed here (``objects``: key and version id, delete markers flagged). After the index
commits, :func:`delete` deletes exactly those, each by its version id, and returns every
refusal (printed and in ``--json``; the command exits with IntegrityError's code). Nothing is
silently kept: ``verify`` names each version a certificate destroyed that the bucket still
holds (:func:`certified_versions`, :func:`remaining`), and ``retention dispose`` run again for
the plan deletes those (:func:`remaining` then :func:`delete_versions`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import botocore.exceptions

from twentyday.canonical import iso
from twentyday.errors import TwentydayError
from twentyday.store import db
from twentyday.store.objects import ObjectStore, Version, capture_prefix, error_code

WORKERS = 8
HELD = "its sealed objects are under a legal hold in the bucket"


@dataclass(frozen=True)
class Inspection:
    """Per planned capture: its versions in the bucket now; and the captures that may not go, with why."""

    versions: dict[str, list[Version]]
    blocked: dict[str, str]

    def objects(self, capture_id: str) -> list[dict[str, Any]]:
        """What the certificate lists of the capture: each version (key, version id), markers flagged."""
        return [{"key": v.key, "version_id": v.version_id} | ({"delete_marker": True} if v.marker else {})
                for v in sorted(self.versions.get(capture_id, []), key=lambda v: (v.key, v.version_id))]


@dataclass(frozen=True)
class CertifiedVersion:
    """One object version a certificate of destruction destroyed."""

    disposition: str
    capture: str
    key: str
    version_id: str
    delete_marker: bool

    def as_json(self) -> dict[str, Any]:
        return {"disposition": self.disposition, "capture": self.capture, "key": self.key,
                "version_id": self.version_id, "delete_marker": self.delete_marker}


def inspect(objects: ObjectStore, capture_ids: Iterable[str], at: datetime) -> Inspection:
    """Each capture's versions, and whether any is locked after ``at`` or legally held.

    Raises (nothing is destroyed then) when the bucket cannot be listed or does not answer."""
    wanted = sorted(set(capture_ids))
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="twentyday-dispose") as pool:
        found = list(pool.map(lambda c: _inspect(objects, c, at), wanted))
    versions = {c: v for c, v, _ in found}
    blocked = {c: reason for c, _, reason in found if reason is not None}
    return Inspection(versions, blocked)


def _inspect(objects: ObjectStore, capture_id: str, at: datetime) -> tuple[str, list[Version], str | None]:
    prefix = capture_prefix(capture_id)
    try:
        versions = objects.listing(prefix)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
        raise TwentydayError(f"{objects.describe()}: cannot list {prefix} ({error_code(error)}): nothing was "
                             "destroyed") from None
    held = False
    latest: datetime | None = None
    for version in versions:
        if version.marker:
            continue  # a delete marker holds no bytes and no lock: it goes with the capture
        try:
            until = objects.retention(version.key, version.version_id)
            held = held or objects.legal_hold(version.key, version.version_id)
        except botocore.exceptions.BotoCoreError as error:
            raise TwentydayError(f"{objects.describe()}: no answer about {version.key} ({error_code(error)}): "
                                 "nothing was destroyed") from None
        except botocore.exceptions.ClientError as error:
            return capture_id, versions, (f"its sealed objects could not be checked in the bucket "
                                          f"({error_code(error)}) ({capture_id})")
        if until is not None and until > at and (latest is None or until > latest):
            latest = until
    if held:
        return capture_id, versions, f"{HELD} ({capture_id})"
    if latest is not None:
        return capture_id, versions, f"its sealed objects are locked until {iso(latest)} ({capture_id})"
    return capture_id, versions, None


def delete(objects: ObjectStore, certificate: dict[str, Any]) -> list[dict[str, Any]]:
    """Delete, each by its version id, the versions ``certificate`` lists; the refusals (none: all gone)."""
    return delete_versions(objects, [
        CertifiedVersion(str(certificate["id"]), str(capture["id"]), str(o["key"]), str(o["version_id"]),
                         bool(o.get("delete_marker"))) for capture in certificate["captures"]
        for o in capture.get("objects", [])])


def delete_versions(objects: ObjectStore, versions: list[CertifiedVersion]) -> list[dict[str, Any]]:
    """Delete each of ``versions``; those the bucket refused or did not answer for, with the error code."""
    unreachable = threading.Event()

    def one(version: CertifiedVersion) -> dict[str, Any] | None:
        if unreachable.is_set():
            return {**version.as_json(), "error": "not tried: the bucket could not be reached"}
        try:
            objects.client.delete_object(Bucket=objects.bucket, Key=version.key, VersionId=version.version_id)
            return None
        except botocore.exceptions.BotoCoreError as error:
            unreachable.set()
            return {**version.as_json(), "error": error_code(error)}
        except botocore.exceptions.ClientError as error:
            return {**version.as_json(), "error": error_code(error)}

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="twentyday-dispose") as pool:
        return [r for r in pool.map(one, versions) if r is not None]


def certified_versions(conn: db.Connection, disposition_id: str | None = None) -> list[CertifiedVersion]:
    """Every object version a certificate of destruction destroyed (of one certificate, with its id)."""
    one = disposition_id is not None
    found = []
    for certificate, body in conn.execute(f"SELECT id, body FROM disposition {'WHERE id = ?' if one else ''} "
                                          "ORDER BY at, id", [disposition_id] if one else []):
        for capture in json.loads(body).get("captures", []):
            for o in capture.get("objects", []):
                found.append(CertifiedVersion(str(certificate), str(capture.get("id")), str(o.get("key")),
                                              str(o.get("version_id")), bool(o.get("delete_marker"))))
    return found


def remaining(objects: ObjectStore, versions: list[CertifiedVersion]) -> list[CertifiedVersion]:
    """Of ``versions`` (:func:`certified_versions`), those the bucket still holds: one listing a capture.

    Raises :class:`TwentydayError` when the bucket cannot be listed."""
    by_capture: dict[str, list[CertifiedVersion]] = {}
    for version in versions:
        by_capture.setdefault(version.capture, []).append(version)
    left = []
    for capture_id, certified in sorted(by_capture.items()):
        prefix = capture_prefix(capture_id)
        try:
            present = {(v.key, v.version_id) for v in objects.listing(prefix)}
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
            raise TwentydayError(f"{objects.describe()}: cannot list {prefix} ({error_code(error)})") from None
        left += [v for v in certified if (v.key, v.version_id) in present]
    return left
