"""One canonical serialisation: it feeds the ledger hashes, verify and the exports.

Canonical JSON: keys sorted, no insignificant white space, UTF-8, no NaN.
Bytes never appear in clear: a ``bytes`` value is written as its SHA-256
(``{"sha256": ...}``), so a ledger payload commits to a sealed value without
containing it. Times are ISO 8601 with an explicit offset.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import encode_basestring as _encode_string
from typing import Any


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"sha256": hashlib.sha256(bytes(value)).hexdigest()}
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"not canonically serialisable: {type(value).__name__}")


_ENCODER = json.JSONEncoder(
    default=_default, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> bytes:
    return _ENCODER.encode(value).encode("utf-8")


def json_string(text: str) -> str:
    """One string exactly as :func:`canonical_json` renders it, for payloads written out by hand."""
    return _encode_string(text)


def iso(moment: datetime) -> str:
    """ISO 8601 with offset; refuses naive datetimes, which would be evidence of a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: every stored time must carry its offset")
    return moment.isoformat()


def utc_key(moment: datetime) -> str:
    """Fixed-width UTC form for range queries and sorting."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"time without offset: {text!r}")
    return moment
