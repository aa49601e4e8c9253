"""A single e-mail message (``.eml``) read from its own headers: pure, bounded.

The header block is capped before full parsing, so a header of thousands of
encoded words cannot stall the pipeline; any failure of the stdlib parser
(including RecursionError on deeply nested address comments) becomes a
ParseError, and the raw bytes are still kept sealed by the caller.
"""

from __future__ import annotations

import email.utils
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from ..errors import ParseError
from ..records import ParsedAttachment, ParsedMessage, TimeReading

MAX_HEADER_BYTES = 256 * 1024
MAX_ADDRESSES = 1000


def looks_like_email(head: bytes) -> bool:
    """Does this start like an RFC 5322 message (header lines, then a blank line)?"""
    first = head.lstrip(b"\xef\xbb\xbf").split(b"\n", 1)[0]
    return (
        b":" in first
        and first.split(b":", 1)[0].strip().replace(b"-", b"").isalnum()
        and any(
            h in head[:16384].lower() for h in (b"\nfrom:", b"\ndate:", b"\nmessage-id:", b"from:")
        )
    )


def _header_end(raw: bytes) -> int:
    for marker in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(marker, 0, MAX_HEADER_BYTES + 4)
        if at >= 0:
            return at
    if len(raw) > MAX_HEADER_BYTES:
        raise ParseError(f"header block larger than {MAX_HEADER_BYTES} bytes")
    return len(raw)


def parse(raw: bytes) -> EmailMessage:
    _header_end(raw)
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except (RecursionError, ValueError, IndexError, TypeError, LookupError) as error:
        raise ParseError(f"unreadable message: {type(error).__name__}") from None
    if not isinstance(message, EmailMessage):
        raise ParseError("unreadable message")
    return message


def addresses(message: EmailMessage, *names: str) -> tuple[str, ...]:
    found: list[str] = []
    for name in names:
        try:
            values = message.get_all(name) or []
            pairs = email.utils.getaddresses([str(v) for v in values])
        except (RecursionError, ValueError, IndexError, TypeError) as error:
            raise ParseError(f"unreadable {name} header: {type(error).__name__}") from None
        found += [addr.lower() for _, addr in pairs if addr]
        if len(found) > MAX_ADDRESSES:
            raise ParseError(f"more than {MAX_ADDRESSES} addresses")
    return tuple(found)


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except (RecursionError, ValueError, IndexError, TypeError) as error:
        raise ParseError(f"unreadable {name} header: {type(error).__name__}") from None
    return str(value) if value is not None else ""


def original_time(message: EmailMessage) -> tuple[datetime | None, TimeReading | None]:
    raw = _header(message, "Date").strip()
    if not raw:
        return None, None
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (ValueError, TypeError, IndexError):
        return None, None
    if moment.tzinfo is None:
        # RFC 5322 "-0000": the zone is unknown. Never guess: undated.
        return None, None
    return moment, TimeReading(
        raw=raw, layout="rfc5322", day_first=None, decided_by="header", zone=moment.strftime("%z")
    )


def _body_and_attachments(message: EmailMessage) -> tuple[str, tuple[ParsedAttachment, ...]]:
    body = ""
    attachments: list[ParsedAttachment] = []
    try:
        part = message.get_body(preferencelist=("plain", "html"))
        if part is not None:
            content = part.get_content()
            body = content if isinstance(content, str) else ""
        for n, attachment in enumerate(message.iter_attachments()):
            payload = attachment.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else attachment.as_bytes()
            attachments.append(
                ParsedAttachment(
                    name=attachment.get_filename() or f"attachment-{n + 1}",
                    content_type=attachment.get_content_type(),
                    data=data,
                )
            )
    except (RecursionError, ValueError, IndexError, TypeError, LookupError, KeyError) as error:
        raise ParseError(f"unreadable message body: {type(error).__name__}") from None
    return body, tuple(attachments)


def read_message(raw: bytes) -> ParsedMessage:
    """The message as its own headers describe it (From, To/Cc/Bcc, Date, Message-ID)."""
    message = parse(raw)
    sender = addresses(message, "From")
    recipients = addresses(message, "To", "Cc", "Bcc")
    created_at, reading = original_time(message)
    body, attachments = _body_and_attachments(message)
    message_id = _header(message, "Message-ID").strip()
    references = _header(message, "References").split()
    in_reply_to = _header(message, "In-Reply-To").strip()
    thread_root = references[0] if references else (in_reply_to or message_id)
    return ParsedMessage(
        platform="email",
        conversation=thread_root or "(no thread)",
        sender=sender[0] if sender else "",
        created_at=created_at,
        time=reading,
        body=body,
        recipients=recipients,
        subject=_header(message, "Subject"),
        message_key=message_id,
        attachments=attachments,
        reply_to=in_reply_to,
    )
