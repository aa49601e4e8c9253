"""Who delivered an item and what vouches for the mail: facts kept with each capture.

``delivered_by`` is the SMTP intake's word (``auth:<user>`` or ``relay:<address>``; see
:mod:`twentyday.intake.smtp`), or the channel (``folder``, ``cli``). ``origin_auth`` is
the authentication result of a mail as it arrived (the forward, not the original inside
it), in the shape of an ``Authentication-Results`` value:

- our own check (``smtp.dkim = "verify"``): every DKIM signature (dkimpy, keys from
  DNS) and the ARC chain — ``dkim=pass header.d=gmail.com (aligned with From); arc=none``;
- or, for mail relayed by the trusted MTA (``smtp.trusted_authserv_id``), the results of
  its topmost ``Authentication-Results`` header with that authserv-id — any other such
  header, or one on mail that did not come through a relay, is the sender's to forge;
- ``unchecked`` when the check is off; ``""`` for items that did not come by SMTP.

A mail counts as authenticated when a DKIM signature of its From domain (or a parent
domain) verifies, or the trusted MTA says ``dmarc=pass``; records from any other mail
carry the ``origin_unauthenticated`` flag. A fact, not a verdict: an unsigned forward
from a small provider is as legitimate as a signed one.

Only names from a fixed vocabulary and syntactically valid domain names are kept, so
nothing the sender wrote (comments, reasons, odd bytes) reaches the index in clear.
The check runs in the pipeline (the read-ahead helper, or the worker), never in the SMTP
session: it waits on DNS and needs no secret.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses

import dkim  # dkimpy: DKIM (RFC 6376) and ARC (RFC 8617) verification
from dkim.dnsplug import get_txt

from twentyday.config import Config

#: A DNS TXT lookup as dkimpy calls it: ``resolver(name, timeout=...)`` → the record, or None.
Resolver = Callable[..., bytes | None]

ORIGIN_UNAUTHENTICATED = "origin_unauthenticated"
#: Seconds per DNS lookup; signatures and ARC sets checked per mail are bounded below.
DNS_TIMEOUT = 5
MAX_SIGNATURES = 4
MAX_ARC_SETS = 8
#: Header bytes read for the From and Authentication-Results headers.
MAX_HEADER_BYTES = 256 * 1024
_RESULTS = frozenset({"pass", "fail", "none", "neutral", "policy", "softfail", "hardfail", "temperror", "permerror"})
_METHODS = ("dkim", "arc", "spf", "dmarc")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$")
# dkimpy logs the reasons a signature failed, which quote the message: never to our logs.
_QUIET = logging.getLogger("twentyday.dkimpy")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass(frozen=True)
class Origin:
    delivered_by: str
    auth: str
    authenticated: bool

    @property
    def flags(self) -> tuple[str, ...]:
        """The flags the item's records carry (mail only: other channels have no such check)."""
        return () if self.authenticated or not self.auth else (ORIGIN_UNAUTHENTICATED,)


def origin_of(config: Config, channel: str, envelope: dict[str, str] | None, raw: bytes) -> Origin:
    """The origin facts of an item that came by ``channel`` with this SMTP ``envelope``."""
    if channel != "smtp":
        return Origin(channel, "", True)
    delivered_by = _delivered_by(envelope or {})
    # Header names start lines (folded lines start with white space), so a name absent from the
    # line starts is absent from the parse: most forwards carry no signature, and parsing their
    # headers again cost a fifth of the worker's time per mail.
    line_starts = b"\n" + _header_block(raw).lower()
    trusted = config.smtp.trusted_authserv_id
    if trusted and delivered_by.startswith("relay:") and b"\nauthentication-results" in line_starts:
        headers = _headers(raw)
        found = _trusted_results(headers, trusted, _from_domain(headers))
        if found is not None:
            return Origin(delivered_by, *found)
    if config.smtp.dkim == "off":
        return Origin(delivered_by, "unchecked", False)
    if b"\ndkim-signature" not in line_starts and b"\narc-seal" not in line_starts:
        return Origin(delivered_by, "dkim=none; arc=none", False)  # what _verify says of such a mail
    headers = _headers(raw)
    return Origin(delivered_by, *_verify(raw, headers, _from_domain(headers), _resolver()))


def unchecked_origin(channel: str, envelope: dict[str, str] | None) -> Origin:
    """Who delivered it, without looking at its bytes (for an item kept because it broke something)."""
    if channel != "smtp":
        return Origin(channel, "", True)
    return Origin(_delivered_by(envelope or {}), "unchecked", False)


def _delivered_by(envelope: dict[str, str]) -> str:
    if envelope.get("delivered_by"):
        return envelope["delivered_by"]
    # Spooled before intake said so (and before it checked relay networks): what it kept.
    if envelope.get("auth"):
        return f"auth:{envelope['auth']}"
    return f"peer:{envelope.get('peer', '')}"


# -- our own check: dkimpy ---------------------------------------------------------------------


def _verify(raw: bytes, headers: Message, from_domain: str, resolver: Resolver) -> tuple[str, bool]:
    if headers.get_all("DKIM-Signature"):
        dkim_part, authenticated = _verify_dkim(raw, from_domain, resolver)
    else:  # most forwards: no need for dkimpy to parse the whole message
        dkim_part, authenticated = "dkim=none", False
    return f"{dkim_part}; arc={_verify_arc(raw, headers, resolver)}", authenticated


def _verify_dkim(raw: bytes, from_domain: str, resolver: Resolver) -> tuple[str, bool]:
    """The best of the mail's first MAX_SIGNATURES DKIM signatures, as one result."""
    try:
        checker = dkim.DKIM(raw, logger=_QUIET, minkey=1024, timeout=DNS_TIMEOUT)
        count = sum(1 for name, _ in checker.headers if name.lower() == b"dkim-signature")
    except Exception:  # a library's failure on hostile bytes must not lose the item
        return "dkim=permerror", False
    if count == 0:
        return "dkim=none", False
    # (rank, result, domain): pass aligned with From, then pass, then the failures.
    best = (5, "permerror", "")
    for index in range(min(count, MAX_SIGNATURES)):
        checker.domain = None
        try:
            result = "pass" if checker.verify(index, dnsfunc=resolver) else "fail"
        except dkim.ValidationError:  # e.g. the body hash: the signature does not hold
            result = "fail"
        except dkim.DnsTimeoutError:
            result = "temperror"
        except Exception:  # a malformed signature (or a library bug on it): unverifiable
            result = "permerror"
        domain = _domain(checker.domain)
        aligned = result == "pass" and _aligned(domain, from_domain)
        rank = 0 if aligned else {"pass": 1, "temperror": 2, "fail": 3}.get(result, 4)
        if rank < best[0]:
            best = (rank, result, domain)
    rank, result, domain = best
    text = f"dkim={result}" + (f" header.d={domain}" if domain else "")
    if result == "pass":
        text += " (aligned with From)" if rank == 0 else " (not aligned with From)"
    return text, rank == 0


def _verify_arc(raw: bytes, headers: Message, resolver: Resolver) -> str:
    sets = len(headers.get_all("ARC-Seal") or [])
    if sets == 0:
        return "none"
    if sets > MAX_ARC_SETS:
        return "permerror"
    try:
        verdict, _, _ = dkim.arc_verify(raw, logger=_QUIET, dnsfunc=resolver, timeout=DNS_TIMEOUT)
    except Exception:  # as above
        return "permerror"
    return verdict.decode("ascii") if verdict in (b"pass", b"none") else "fail"


# -- a trusted MTA's Authentication-Results (RFC 8601) -------------------------------------------


def _trusted_results(headers: Message, authserv_id: str, from_domain: str) -> tuple[str, bool] | None:
    """The topmost Authentication-Results header of ``authserv_id``, as (results, authenticated)."""
    for value in headers.get_all("Authentication-Results") or []:
        parts = _without_comments(str(value)).split(";")
        head = parts[0].split()
        if not head or head[0].lower() != authserv_id:
            continue
        kept: list[str] = []
        authenticated = False
        for resinfo in parts[1:]:
            tokens = resinfo.split()
            if not tokens or "=" not in tokens[0]:
                continue
            method, _, result = tokens[0].lower().partition("=")
            method = method.split("/")[0]
            if method not in _METHODS or result not in _RESULTS:
                continue
            props = dict(t.lower().partition("=")[::2] for t in tokens[1:] if "=" in t)
            domain = _domain(props.get("header.d") if method == "dkim" else
                             props.get("header.from") if method == "dmarc" else None)
            kept.append(f"{method}={result}" + (f" {'header.d' if method == 'dkim' else 'header.from'}={domain}"
                                                 if domain else ""))
            if result == "pass" and (method == "dmarc" or (method == "dkim" and _aligned(domain, from_domain))):
                authenticated = True
        return f"{authserv_id}: " + ("; ".join(kept) or "none"), authenticated
    return None


def _without_comments(text: str) -> str:
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", " ", text)
    return text


# -- headers and domains -------------------------------------------------------------------


def _header_block(raw: bytes) -> bytes:
    """The top-level header section, bounded."""
    head = raw[:MAX_HEADER_BYTES]
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = head.find(separator)
        if end >= 0:
            return head[:end + len(separator)]
    return head


def _headers(raw: bytes) -> Message:
    """The top-level header section (bounded), parsed leniently."""
    return BytesHeaderParser(policy=compat32).parsebytes(_header_block(raw))


def _from_domain(headers: Message) -> str:
    values = headers.get_all("From") or []
    addresses = getaddresses([str(v) for v in values])
    if len(addresses) != 1:  # none, or several authors: no single domain to align with
        return ""
    return _domain(addresses[0][1].rpartition("@")[2])


def _domain(value: object) -> str:
    """A lower-case DNS name, or '' when ``value`` is not one (only such names are kept)."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    if not isinstance(value, str):
        return ""
    text = value.strip().lower().rstrip(".")
    return text if _DOMAIN_RE.match(text) else ""


def _aligned(signer: str, from_domain: str) -> bool:
    """Relaxed alignment (RFC 7489 3.1.1, without the public-suffix list): the same domain or a parent."""
    return bool(signer and from_domain) and (from_domain == signer or from_domain.endswith("." + signer))


# -- DNS ---------------------------------------------------------------------------------------

_injected: Resolver | None = None


def use_resolver(resolver: Resolver | None) -> None:
    """Resolve DKIM keys with ``resolver`` in this process (tests: keys from a dict); None: DNS."""
    global _injected
    _injected = resolver


def _resolver() -> Resolver:
    return _injected if _injected is not None else _CACHED_DNS


class _CachedDns:
    """dkimpy's DNS lookup with answers (and absences) kept for a while: a mail service signs
    with a few keys, and each lookup may wait seconds."""

    def __init__(self, lookup: Resolver, seconds: float = 600.0, entries: int = 4096) -> None:
        self._lookup = lookup
        self._seconds = seconds
        self._entries = entries
        self._cache: dict[bytes, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, name: bytes, timeout: int = DNS_TIMEOUT) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]
        answer = self._lookup(name, timeout=timeout)  # a timeout raises and is not kept
        with self._lock:
            if len(self._cache) >= self._entries:
                self._cache.clear()
            self._cache[name] = (now + self._seconds, answer)
        return answer


_CACHED_DNS = _CachedDns(get_txt)
