"""One e-mail message read with bounded work: pure, and safe on hostile input.

Mail is attacker-controlled, so the work per message is bounded before and
after the stdlib parser runs, and every failure becomes a :class:`ParseError`
with a reason (the caller keeps the raw bytes sealed in quarantine):

- before parsing: the top header block is capped, and the parser's own cost is
  estimated. CPython's feed parser checks every line against the boundary of
  every enclosing multipart, so its work is lines x nesting; a message whose
  estimate is beyond ``Limits.mail_parse_work`` is refused rather than parsed for
  minutes (measured: about 0.1 s per million line-levels on 3.11); and as it
  keeps one string per line, a message it would see as more than
  :data:`MAX_PARSE_LINES` lines is refused too;
- parsing uses ``policy.compat32``: it only splits the structure and keeps
  header values as strings. ``policy.default`` parses every header it is asked
  for with a recursive-descent parser: on a 10 KB message (CPython 3.11) it
  reads ~330 messages/s with the needed headers and body, against ~5,600/s for
  compat32's split alone and ~2,900/s for :func:`read_message` as a whole
  (``tests/parsers/mail/test_parse_email.py`` prints both rates); and it recurses once per
  nested comment, so a ``To:`` of a thousand nested parentheses raises
  RecursionError;
- a Content-Type or Content-Disposition longer than :data:`MAX_PARAMETER_HEADER`
  is refused before parsing too (the stdlib reads parameters in quadratic time);
- after parsing: MIME nesting deeper than :data:`MAX_DEPTH`, more than
  :data:`MAX_PARTS` parts or :data:`MAX_HEADER_FIELDS` header fields in one
  part are refused; decoded bytes are counted against ``Limits.mail_decoded_bytes``;
- only the headers a record needs are decoded (From, To, Cc, Bcc, Date,
  Subject, Message-ID, References, In-Reply-To, attachment names), each capped
  at :data:`MAX_HEADER_CHARS`, with a linear RFC 2047 decoder that stops
  decoding after :data:`MAX_ENCODED_WORDS`; address comments are removed by a
  linear scan before the stdlib address parser sees them (its comment parser
  recurses), and comments nested deeper than :data:`MAX_COMMENT_DEPTH` are refused.

:func:`read_message` describes a message as its own headers do; forwards are
resolved by :mod:`twentyday.parsers.mail.email`.
"""

from __future__ import annotations

import binascii
import codecs
import email.utils
import functools
import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.generator import BytesGenerator
from email.message import Message
from email.parser import BytesParser

from twentyday.errors import ParseError
from twentyday.parsers.base import DEFAULT_LIMITS, Limits
from twentyday.records import ParsedAttachment, ParsedMessage, TimeReading

__all__ = [
    "MAX_DEPTH",
    "MAX_HEADER_BYTES",
    "MAX_PARTS",
    "STDLIB_ERRORS",
    "Budget",
    "addresses",
    "attachments",
    "body_text",
    "decode_words",
    "describe",
    "filename",
    "flatten",
    "header",
    "html_to_text",
    "leaves",
    "looks_like_email",
    "original_time",
    "parse",
    "part_bytes",
    "part_name",
    "read_message",
    "require_headers",
    "thread",
]

#: The top-level header block; a longer one is not mail a person sent.
MAX_HEADER_BYTES = 256 * 1024
#: One decoded header value (a To of 1,000 addresses is about 50 KB).
MAX_HEADER_CHARS = 128 * 1024
#: Header fields in one part; real mail has a few dozen, long relay chains a few hundred.
MAX_HEADER_FIELDS = 2000
MAX_ADDRESSES = 1000
#: Comments inside an address header nest once or twice in real mail; deeper nesting is an attack.
MAX_COMMENT_DEPTH = 32
#: RFC 2047 words decoded per header; the rest is kept as written (still bounded, never stalls).
MAX_ENCODED_WORDS = 10_000
MAX_DEPTH = 20
MAX_PARTS = 1000
#: Content-Type / Content-Disposition (whose parameters the stdlib reads in quadratic time).
MAX_PARAMETER_HEADER = 8 * 1024
#: Lines the stdlib parser may see: it keeps one str per line (~90 bytes each), so 5 million
#: one-character lines in a 10 MB mail take ~450 MB. The one-part shortcut is not limited.
MAX_PARSE_LINES = 1_000_000
#: HTML converted to text for a body; the raw capture keeps the rest.
MAX_HTML_CHARS = 8 * 1024 * 1024
#: Address headers up to this long have their parse cached (see addresses()).
CACHED_ADDRESS_CHARS = 1000
#: A Date header longer than this is not a date.
MAX_DATE_CHARS = 200

#: What the stdlib raises on malformed input; each becomes a ParseError that names it.
STDLIB_ERRORS = (
    RecursionError,
    ValueError,
    IndexError,
    TypeError,
    LookupError,
    AttributeError,
    AssertionError,
    binascii.Error,
    # parsedate_to_datetime turns "+99999999999999999" or a 20-digit year into a C int.
    OverflowError,
)

# A header line and its continuation lines (each starts with a space or tab): linear to match.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_SURROGATE = re.compile("[\udc80-\udcff]")
#: A header line as the stdlib parser reads one (``email.feedparser.headerRE`` without its
#: "From " case), holding none of the characters its line splitting (str.splitlines) breaks at.
_PLAIN_HEADER_LINE = re.compile(rb"(?:[\041-\071\073-\176]*:|[\t ])[^\r\x0b\x0c\x1c-\x1e]*\r?\Z")
_MINUS_ZERO = re.compile(r"(?:^|\s)-0000(?:\s|$)")
#: Charsets mail software writes that Python does not know; their bytes are read as UTF-8 with replacement.
_UNKNOWN_CHARSETS = frozenset({"unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined", "8bit", "none"})
_BLOCK_TAG = re.compile(r"<(?:br|/?p|/?div|/?tr|/?li|/?h[1-6]|/?blockquote|/?table|hr)\b[^<>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^<>]*>")
_DROPPED_OPEN = re.compile(r"<(style|script|head)(?=[\s>/])", re.IGNORECASE)
_DROPPED_CLOSE = {name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("style", "script", "head")}
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_RUN = re.compile(r"\n\s*\n(?:\s*\n)+")


# --- detection and structure ----------------------------------------------------------------------


def looks_like_email(head: bytes) -> bool:
    """Does this start like an RFC 5322 message (header lines, then a blank line)?

    Leading whitespace-only lines are skipped: some stores (flanker's fixtures, a few
    webmail exports) write a padding line before the first header.
    """
    text = head.lstrip(b"\xef\xbb\xbf")
    lines = text.split(b"\n", 8)
    first = next((line for line in lines if line.strip()), b"")
    name, colon, _ = first.partition(b":")
    lowered = head[:16384].lower()
    return (
        bool(colon)
        and name.strip().replace(b"-", b"").isalnum()
        and any(h in lowered for h in (b"\nfrom:", b"\ndate:", b"\nmessage-id:", b"from:"))
    )


def _header_end(raw: bytes) -> int:
    for marker in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(marker, 0, MAX_HEADER_BYTES + 4)
        if at >= 0:
            return at
    if len(raw) > MAX_HEADER_BYTES:
        raise ParseError(f"header block larger than {MAX_HEADER_BYTES} bytes", code="too_large")
    return len(raw)


@dataclass(frozen=True)
class _ContentField:
    """A Content-Type or Content-Disposition field found in the raw bytes, at a line start."""

    name: bytes  # lower case, without the colon
    length: int  # from the name to the end of its last folded line
    multipart: bool  # a Content-Type whose value starts with multipart/


def _content_fields(raw: bytes) -> list[_ContentField]:
    """Every Content-Type and Content-Disposition field (any case, folded lines included).

    One pass over a lower-cased copy with ``bytes.find``: the case-insensitive
    multi-line regexes this replaces cost more than the whole structure parse.
    """
    lowered = raw.lower()
    found = []
    at = lowered.find(b"content-")
    while at != -1:
        if at == 0 or lowered[at - 1] == 0x0A:
            for name in (b"content-type:", b"content-disposition:"):
                if lowered.startswith(name, at):
                    value = at + len(name)
                    found.append(_ContentField(name[:-1], _field_end(lowered, value) - at,
                                               name == b"content-type:" and _starts_multipart(lowered, value)))
                    break
        at = lowered.find(b"content-", at + 8)
    return found


def _line_break(data: bytes, start: int) -> int:
    """Index of the first CR or LF at or after ``start`` (``len(data)`` if none)."""
    cr, lf = data.find(b"\r", start), data.find(b"\n", start)
    if cr == -1:
        return lf if lf != -1 else len(data)
    return cr if lf == -1 else min(cr, lf)


def _after_fold(data: bytes, at: int) -> int | None:
    """Where a folded continuation line's text starts, if a line break at ``at`` folds."""
    brk = at + 2 if data.startswith(b"\r\n", at) else at + 1 if data.startswith(b"\n", at) else None
    if brk is None or brk >= len(data) or data[brk] not in b" \t":
        return None
    return brk


def _field_end(data: bytes, value: int) -> int:
    """End of a field's value: its line, and each following line that starts with a space or tab."""
    end = _line_break(data, value)
    while (fold := _after_fold(data, end)) is not None:
        end = _line_break(data, fold + 1)
    return end


def _starts_multipart(data: bytes, value: int) -> bool:
    """Whether a Content-Type value is multipart/..., perhaps after blanks and one fold."""
    size = len(data)
    while value < size and data[value] in b" \t":
        value += 1
    fold = _after_fold(data, value)
    if fold is not None:
        value = fold
        while value < size and data[value] in b" \t":
            value += 1
    return data.startswith(b"multipart/", value)


def _check_parse_work(raw: bytes, fields: list[_ContentField], most: int) -> int:
    """Refuse a message whose parse would take the stdlib parser far too long (see module doc).

    Returns the number of lines the stdlib parser would see.
    """
    lines = max(raw.count(b"\n"), raw.count(b"\r")) + 1  # the parser also ends lines at a bare CR
    multiparts = sum(field.multipart for field in fields)
    work = lines * (1 + multiparts)
    if work > most:
        raise ParseError(
            f"too costly to parse: {lines} lines inside {multiparts} multipart headers "
            f"(more than {most} line-levels)", code="too_costly"
        )
    return lines


def _check_parse_memory(lines: int) -> None:
    """Refuse a message the stdlib parser would hold as too many line strings (see MAX_PARSE_LINES)."""
    if lines > MAX_PARSE_LINES:
        raise ParseError(f"too large to parse: {lines} lines (more than {MAX_PARSE_LINES} lines)", code="too_large")


def _check_parameter_headers(fields: list[_ContentField]) -> None:
    """Refuse an over-long Content-Type or Content-Disposition anywhere in the message.

    The stdlib reads their parameters in time quadratic in their length (a 1.4 MB
    Content-Type takes seconds), and the parser itself asks every multipart for its
    boundary, so the length is checked on the raw bytes, before parsing.
    """
    for field in fields:
        if field.length > MAX_PARAMETER_HEADER:
            name = "-".join(part.capitalize() for part in field.name.decode("ascii").split("-"))
            raise ParseError(f"{name} header longer than {MAX_PARAMETER_HEADER} bytes", code="header_too_long")


def _check_tree(message: Message) -> None:
    stack = [(message, 0)]
    parts = 0
    while stack:
        part, depth = stack.pop()
        parts += 1
        if parts > MAX_PARTS:
            raise ParseError(f"more than {MAX_PARTS} MIME parts", code="too_many_parts")
        if depth > MAX_DEPTH:
            raise ParseError(f"MIME parts nested more than {MAX_DEPTH} deep", code="nested_too_deep")
        if len(part) > MAX_HEADER_FIELDS:
            raise ParseError(f"more than {MAX_HEADER_FIELDS} header fields in one part", code="too_many_headers")
        payload = part.get_payload()
        if isinstance(payload, list):
            stack.extend((child, depth + 1) for child in payload if isinstance(child, Message))


def parse(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """The message's structure (compat32: nothing decoded yet), after the bounds above."""
    _header_end(raw)
    fields = _content_fields(raw)
    lines = _check_parse_work(raw, fields, limits.mail_parse_work)
    _check_parameter_headers(fields)
    try:
        message = _single_part(raw, fields)
        if message is None:
            _check_parse_memory(lines)
            message = BytesParser(policy=policy.compat32).parsebytes(raw)
        _check_tree(message)
    except STDLIB_ERRORS as error:
        raise ParseError(f"unreadable message: {type(error).__name__}", code="unreadable_message") from None
    return message


def _single_part(raw: bytes, fields: list[_ContentField]) -> Message | None:
    """The structure of a one-part message as the stdlib parser gives it, without its body loop.

    For a type that is neither multipart nor message, the stdlib's parser makes the body
    the payload verbatim, after handling it one line at a time (about half its time on a
    10 KB mail). Here only the header block goes through it and the body is attached as
    it would be. Any doubt (a multipart field anywhere, a line that is not plainly a
    header, a line break the stdlib splits differently, no blank line) returns None: then
    the caller lets the stdlib parse the whole message.
    """
    if any(field.multipart for field in fields):
        return None
    start = 0
    while True:
        end = raw.find(b"\n", start)
        if end == -1:
            return None
        line = raw[start:end]
        if line in (b"", b"\r"):
            break
        if not _PLAIN_HEADER_LINE.match(line):
            return None
        start = end + 1
    body_start = end + 1
    message = BytesParser(policy=policy.compat32).parsebytes(raw[:body_start], headersonly=True)
    if message.get_content_maintype() in ("multipart", "message"):
        return None
    message.set_payload(raw[body_start:].decode("ascii", "surrogateescape"))
    return message


@dataclass
class Budget:
    """Bytes decoded so far from one message, refused past ``most`` (``Limits.mail_decoded_bytes``)."""

    most: int = DEFAULT_LIMITS.mail_decoded_bytes
    decoded: int = 0

    def spend(self, count: int) -> None:
        self.decoded += count
        if self.decoded > self.most:
            raise ParseError(f"decodes to more than {self.most} bytes", code="too_large")


# --- headers ---------------------------------------------------------------------------------------


def _as_text(value: str, fallback: Message) -> str:
    """A raw header value as text, unfolded.

    8-bit bytes (kept as surrogates by the parser) are UTF-8 (RFC 6532) or, failing
    that, the part's own charset as old clients wrote them; never silently dropped.
    """
    if _SURROGATE.search(value):
        data = value.encode("ascii", "surrogateescape")
        try:
            value = data.decode("utf-8")
        except UnicodeDecodeError:
            value = _decode_bytes(data, fallback.get_content_charset() or "utf-8")
    return value.replace("\r", "").replace("\n", "")


def _raw_values(message: Message, name: str) -> list[str]:
    lowered = name.lower()
    values = []
    for key, value in message.raw_items():
        if key.lower() == lowered:
            text = _as_text(value if isinstance(value, str) else str(value), message)
            if len(text) > MAX_HEADER_CHARS:
                raise ParseError(f"{name} header longer than {MAX_HEADER_CHARS} characters", code="header_too_long")
            values.append(text)
    return values


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding in "bB":
            return binascii.a2b_base64(payload + "=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return None


def _decode_bytes(data: bytes, charset: str) -> str:
    """Header bytes in their declared charset; one Python does not know or cannot use is read as UTF-8.

    Some codecs exist and still fail with UnicodeError whatever the bytes ("undefined" refuses
    all input, "idna" the "replace" handler): a header is not worth losing the message over.
    """
    try:
        return data.decode(charset, "replace")
    except (LookupError, UnicodeError):
        return data.decode("utf-8", "replace")


def decode_words(text: str) -> str:
    """RFC 2047 encoded words decoded; linear, and past :data:`MAX_ENCODED_WORDS` left as written."""
    if "=?" not in text:
        return text
    out: list[str] = []
    pending = bytearray()
    charset = ""
    pos = 0
    for count, match in enumerate(_ENCODED_WORD.finditer(text)):
        data = _word_bytes(match.group(2), match.group(3))
        if count >= MAX_ENCODED_WORDS or data is None:
            break
        between = text[pos : match.start()]
        # Whitespace between two encoded words is folding, not text (RFC 2047 section 6.2).
        if between and not (pending and not between.strip()):
            out.append(_decode_bytes(bytes(pending), charset))
            pending.clear()
            out.append(between)
        word_charset = match.group(1).lower()
        if pending and word_charset != charset:
            out.append(_decode_bytes(bytes(pending), charset))
            pending.clear()
        charset = word_charset
        pending += data
        pos = match.end()
    out.append(_decode_bytes(bytes(pending), charset))
    out.append(text[pos:])
    return "".join(out)


def header(message: Message, name: str) -> str:
    """The first ``name`` header, unfolded and decoded; "" when absent."""
    values = _raw_values(message, name)
    return decode_words(values[0]).strip() if values else ""


def _without_comments(text: str, name: str) -> str:
    """Address text without (nested) comments, in one pass: the stdlib's comment parser recurses."""
    if "(" not in text:
        return text
    out: list[str] = []
    depth = 0
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
            if not depth:
                out.append(ch)
            continue
        if ch == "\\":
            escaped = True
            if not depth:
                out.append(ch)
        elif quoted:
            out.append(ch)
            quoted = ch != '"'
        elif ch == "(":
            depth += 1
            if depth > MAX_COMMENT_DEPTH:
                raise ParseError(f"{name} header: comments nested more than {MAX_COMMENT_DEPTH} deep",
                                 code="nested_too_deep")
        elif ch == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif not depth:
            out.append(ch)
            quoted = ch == '"'
    return "".join(out)


def addresses(message: Message, *names: str) -> tuple[str, ...]:
    """Every address in the named headers, lower-cased, in order (display names dropped)."""
    found: list[str] = []
    for name in names:
        for value in _raw_values(message, name):
            if len(value) <= CACHED_ADDRESS_CHARS:
                found += _cached_address_list(value, name)
            else:
                found += _address_list(value, name)
            if len(found) > MAX_ADDRESSES:
                raise ParseError(f"more than {MAX_ADDRESSES} addresses", code="too_many_addresses")
    return tuple(found)


def _address_list(value: str, name: str) -> tuple[str, ...]:
    try:
        pairs = email.utils.getaddresses([_without_comments(value, name)])
    except STDLIB_ERRORS as error:
        raise ParseError(f"unreadable {name} header: {type(error).__name__}", code="unreadable_header") from None
    return tuple(address.lower() for _, address in pairs if address)


#: The same few correspondents head most mail, and the stdlib's address parser is slow
#: (a fifth of a mail's parse): short header values are parsed once each (errors are not cached).
_cached_address_list = functools.lru_cache(maxsize=4096)(_address_list)


def original_time(message: Message) -> tuple[datetime | None, TimeReading | None]:
    """The Date header as an aware time and how it was read; (None, reading-with-raw) when unreadable."""
    raw = header(message, "Date")
    if not raw:
        return None, None
    unread = TimeReading(
        raw=raw[:MAX_DATE_CHARS], layout="rfc5322-unreadable", day_first=None, decided_by="header", zone=""
    )
    if len(raw) > MAX_DATE_CHARS:
        return None, unread
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except STDLIB_ERRORS:
        return None, unread
    if moment is None:
        return None, unread
    try:
        moment = moment.replace(year=_rfc5322_year(moment.year, raw))
    except ValueError:
        return None, unread
    if not 1970 <= moment.year < 2200:
        return None, unread
    if moment.tzinfo is None:
        # RFC 5322 3.3: "-0000" is a UTC time from a host whose own zone is unknown; no zone at all is
        # not a time anyone can place, so the message stays undated (never guessed).
        if not _MINUS_ZERO.search(raw):
            return None, unread
        moment = moment.replace(tzinfo=UTC)
    return moment, TimeReading(
        raw=raw, layout="rfc5322", day_first=None, decided_by="header", zone=moment.strftime("%z")
    )


def _rfc5322_year(parsed: int, raw: str) -> int:
    """The year as RFC 5322 section 4.3 reads an abbreviated one: 00-49 add 2000, 50-99 and 100-999 add 1900.

    The stdlib reads two digits as POSIX %y does (00-68 are 2000-2068): "3 Mar 56" would be
    2056, a date decades after any forward carrying it. A year written in full is kept.
    """
    if parsed < 1000:
        return parsed + 1900  # the stdlib keeps three digits as they are: year 125
    if 2050 <= parsed < 2069 and not re.search(rf"(?<!\d){parsed}(?!\d)", raw):
        return parsed - 100
    return parsed


def thread(message: Message) -> tuple[str, str, str]:
    """(conversation, Message-ID, In-Reply-To): the conversation is the thread's first message."""
    message_id = header(message, "Message-ID")
    references = header(message, "References").split()
    in_reply_to = header(message, "In-Reply-To")
    root = references[0] if references else (in_reply_to.split()[0] if in_reply_to else message_id)
    # The message replied to: In-Reply-To, or where a client sends only References, its last id.
    replied = in_reply_to or (references[-1] if references else "")
    return root or "(no thread)", message_id, replied


# --- bodies and attachments ----------------------------------------------------------------------


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment"


def _body_candidates(part: Message) -> Iterator[tuple[int, Message]]:
    """(preference, part) for the parts that could be the body, as EmailMessage.get_body finds them."""
    if _is_attachment(part):
        return
    maintype, subtype = part.get_content_maintype(), part.get_content_subtype()
    if maintype == "text":
        if subtype in ("plain", "html"):
            yield (0 if subtype == "plain" else 1), part
        return
    payload = part.get_payload()
    if maintype != "multipart" or not isinstance(payload, list):
        return
    children = [child for child in payload if isinstance(child, Message)]
    if subtype == "related" and children:
        start = part.get_param("start")
        chosen = next((c for c in children if start and c.get("Content-ID") == start), children[0])
        yield from _body_candidates(chosen)
        return
    for child in children:
        yield from _body_candidates(child)


def _body_part(message: Message) -> Message | None:
    best: Message | None = None
    best_rank = 2
    for rank, part in _body_candidates(message):
        if rank < best_rank:
            best, best_rank = part, rank
            if rank == 0:
                break
    return best


def _decoded(part: Message, budget: Budget) -> bytes:
    payload = part.get_payload(decode=True)
    data = payload if isinstance(payload, bytes) else b""
    budget.spend(len(data))
    return data


def _text(part: Message, budget: Budget) -> str:
    data = _decoded(part, budget)
    charset = (part.get_content_charset() or "us-ascii").strip()
    if charset in _UNKNOWN_CHARSETS:
        charset = "utf-8"
    try:
        codecs.lookup(charset)
    except LookupError:
        # An unknown character set is reported, not guessed (mbox reports it per message).
        raise ParseError("unreadable message body: LookupError", code="unreadable_message") from None
    return data.decode(charset, "replace")


def html_to_text(markup: str) -> str:
    """Readable text from HTML, linear in its length: block tags become line breaks, the rest goes."""
    markup = markup[:MAX_HTML_CHARS]
    text = _ANY_TAG.sub("", _BLOCK_TAG.sub("\n", _drop_elements(markup)))
    lines = (_SPACES.sub(" ", line).strip() for line in html.unescape(text).replace("\r", "").split("\n"))
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def _drop_elements(markup: str) -> str:
    """Remove <style>, <script> and <head> elements; each search moves forward, so this is linear."""
    out: list[str] = []
    pos = 0
    while (opening := _DROPPED_OPEN.search(markup, pos)) is not None:
        out.append(markup[pos : opening.start()])
        closing = _DROPPED_CLOSE[opening.group(1).lower()].search(markup, opening.end())
        if closing is None:
            return "".join(out)  # never closed: the rest is not text
        pos = closing.end()
    out.append(markup[pos:])
    return "".join(out)


def body_text(message: Message, budget: Budget) -> tuple[str, Message | None]:
    """The body as text (plain preferred, else HTML made readable) and the part it came from."""
    part = _body_part(message)
    if part is None:
        return "", None
    text = _text(part, budget)
    if part.get_content_subtype() == "html":
        text = html_to_text(text)
    return text, part


def _is_inline_text(part: Message) -> bool:
    return part.get_content_type() in ("text/plain", "text/html") and not _is_attachment(part) and not filename(part)


def flatten(message: Message) -> bytes:
    """A parsed message as bytes again (headers unfolded as received, no From_ mangling)."""
    buffer = io.BytesIO()
    BytesGenerator(buffer, mangle_from_=False, maxheaderlen=0, policy=policy.compat32).flatten(message)
    return buffer.getvalue()


def part_bytes(part: Message, budget: Budget) -> bytes:
    """What a leaf part carries: its decoded payload, or the enclosed message(s) as bytes."""
    payload = part.get_payload()
    if isinstance(payload, list):
        data = b"\n".join(flatten(child) for child in payload if isinstance(child, Message))
        budget.spend(len(data))
        return data
    return _decoded(part, budget)


def filename(part: Message) -> str:
    """The part's file name, from the raw headers.

    compat32 turns 8-bit parameter bytes into "?" before ``get_filename`` sees them, and
    raw UTF-8 file names are common; so the two headers are read as text first.
    """
    names = ("Content-Disposition", "Content-Type")
    if not any(part.get(name) is not None for name in names):
        return ""
    holder = Message()
    for name in names:
        values = _raw_values(part, name)
        if values:
            holder[name] = values[0]
    return decode_words(holder.get_filename() or "").strip()


def part_name(part: Message, number: int) -> str:
    name = filename(part)
    name = "".join(ch for ch in name if ch.isprintable())[:255]
    if name:
        return name
    if part.get_content_maintype() == "message":
        return f"message-{number}.eml"
    return f"attachment-{number}"


def leaves(message: Message) -> Iterator[tuple[Message, int]]:
    """(leaf part, id of its innermost multipart/alternative or 0), in order.

    An enclosed message (message/*) is one leaf: its parts belong to it, not to this message.
    """
    stack = [(message, 0)]
    while stack:
        part, group = stack.pop()
        payload = part.get_payload()
        if part.get_content_maintype() != "message" and isinstance(payload, list):
            inner = id(part) if part.get_content_type() == "multipart/alternative" else group
            stack.extend(reversed([(child, inner) for child in payload if isinstance(child, Message)]))
        else:
            yield part, group


def attachments(message: Message, body: Message | None, budget: Budget) -> tuple[ParsedAttachment, ...]:
    """Every part that is not the body or another rendering of it, as a named file.

    The renderings are the inline text parts of the body's own multipart/alternative;
    any other inline text (a second text part after an image, a list footer) is kept
    as a file, so no content of the message is left out of the record.
    """
    parts = list(leaves(message))
    body_group = next((group for part, group in parts if part is body), 0)
    found: list[ParsedAttachment] = []
    for part, group in parts:
        if part is body or (body_group and group == body_group and _is_inline_text(part)):
            continue
        found.append(
            ParsedAttachment(
                name=part_name(part, len(found) + 1),
                content_type=part.get_content_type(),
                data=part_bytes(part, budget),
            )
        )
    return tuple(found)


# --- one message as its own headers describe it ------------------------------------------------------


def describe(message: Message, budget: Budget, body: tuple[str, Message | None] | None = None) -> ParsedMessage:
    """The message as its own headers describe it (From, To/Cc/Bcc, Date, Message-ID).

    ``body`` is :func:`body_text`'s answer when the caller already has it.
    """
    sender = addresses(message, "From")
    created_at, reading = original_time(message)
    text, part = body if body is not None else body_text(message, budget)
    conversation, message_id, in_reply_to = thread(message)
    return ParsedMessage(
        platform="email",
        conversation=conversation,
        sender=sender[0] if sender else "",
        created_at=created_at,
        time=reading,
        body=text,
        recipients=addresses(message, "To", "Cc", "Bcc"),
        subject=header(message, "Subject"),
        message_key=message_id,
        attachments=attachments(message, part, budget),
        reply_to=in_reply_to,
    )


def require_headers(message: Message) -> None:
    """Refuse bytes that parse (anything does) but name no sender, recipient, date, subject or id."""
    if not any(message.get(name) is not None for name in ("From", "To", "Date", "Subject", "Message-ID")):
        raise ParseError("not an e-mail message: no From, To, Date, Subject or Message-ID header",
                         code="not_this_format")


def read_message(raw: bytes, limits: Limits = DEFAULT_LIMITS) -> ParsedMessage:
    """One message (an .eml, or one message of an mbox) as its own headers describe it."""
    message = parse(raw, limits)
    require_headers(message)
    try:
        return describe(message, Budget(limits.mail_decoded_bytes))
    except STDLIB_ERRORS as error:
        raise ParseError(f"unreadable message: {type(error).__name__}", code="unreadable_message") from None
