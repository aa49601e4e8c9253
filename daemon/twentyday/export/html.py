"""A readable HTML transcript per conversation, and the page that lists them.

Everything in a record is attacker-controlled (a chat's name, a sender's display name, a body, an
attachment's name): every value goes through :func:`html.escape`, quotes included, and the pages
carry a Content-Security-Policy that allows no script, no network, no frame and only the page's
own stylesheet (by its hash), so even markup that slipped through could do nothing. Attachments
are links to the files written beside the transcript, never inlined. Each message shows its time
with its zone and how the time was read (the layout, the zone, what decided it, the text as it
appeared), and marks what the export showed as deleted, omitted (media not included), edited,
undated or incomplete.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:60em;color:#1b1b1b;background:#fff}
.notice{border:2px solid #8a1c1c;background:#fdf0f0;padding:.6em 1em;margin-bottom:1em}
.meta{color:#444;font-size:.9em}
.msg{border-left:4px solid #2f6fb0;padding:.3em .8em;margin:.8em 0;background:#f4f7fb}
.msg.deleted{border-left-color:#8a1c1c;background:#fbeeee}
.mark{display:inline-block;font-size:.8em;font-weight:bold;padding:0 .4em;margin-right:.3em;
border:1px solid #8a1c1c;color:#8a1c1c}
.body{white-space:pre-wrap;overflow-wrap:anywhere;margin:.4em 0}
.time{font-family:monospace}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")


def _page(title: str, notice: str, disclosure: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">',  # ours: no input in it
        '<meta name="referrer" content="no-referrer">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f'<div class="notice" id="notice"><strong>Notice.</strong> {escape(notice)}</div>',
        f'<p class="meta">{escape(disclosure)}</p>',
        *body,
        "</body></html>",
        "",
    ])


@dataclass(frozen=True)
class Linked:
    """An attachment as the transcript shows it: its name as sent and the file beside the transcript
    (None: the export omitted it, or it could not be opened)."""

    name: str
    content_type: str
    size: int
    file: str | None


def time_text(record: dict[str, Any]) -> tuple[str, str]:
    """The message's time with its zone, and how it was read (its provenance)."""
    created = record.get("created_at")
    reading = record.get("time_reading") or {}
    when = created or "undated (the original time could not be established)"
    parts = []
    if reading:
        parts.append(f"read as {reading.get('layout', '?')} in zone {reading.get('zone', '?')}")
        if reading.get("decided_by"):
            parts.append(f"decided by {reading['decided_by']}")
        if reading.get("raw"):
            parts.append(f"as written: {reading['raw']}")
    return when, "; ".join(parts) or "no time reading recorded"


def marks(record: dict[str, Any]) -> list[str]:
    """What the transcript marks on a message: facts the capture showed, in twentyday's words."""
    flags = record.get("flags") or []
    found = []
    if "deleted" in flags:
        found.append("deleted (the export showed a deletion placeholder)")
    if "media_omitted" in flags or any(a.get("omitted") for a in record.get("attachments") or []):
        found.append("omitted (media not included in the export)")
    if record.get("edited"):
        found.append("edited")
    if not record.get("created_at"):
        found.append("undated")
    if record.get("incomplete"):
        found.append("incomplete copy")
    return found


def transcript(*, title: str, notice: str, disclosure: str, custodian: str, platform: str,
               records: Sequence[tuple[dict[str, Any], Sequence[Linked]]], events: Sequence[tuple[str, str | None]],
               link_prefix: str) -> str:
    """One conversation's transcript: ``records`` in order, each with its linked attachments; ``events``
    are the conversation's capture events (kind, time) the index holds in clear."""
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="meta">Custodian {escape(custodian)} · platform {escape(platform)} · '
            f"{len(records)} message(s). Times are the original times with their zone offset; each says how "
            "it was read.</p>"]
    if events:
        body.append('<p class="meta">Events in the captures: '
                    + "; ".join(f"{escape(kind)} at {escape(at or 'an unknown time')}" for kind, at in events)
                    + "</p>")
    for record, attachments in records:
        when, how = time_text(record)
        flagged = marks(record)
        css = "msg deleted" if "deleted" in (record.get("flags") or []) else "msg"
        lines = [f'<div class="{css}" id="{escape(record["id"])}">',
                 f'<div class="meta"><span class="time">{escape(when)}</span> · '
                 f"<strong>{escape(record.get('sender') or '(no sender)')}</strong>"]
        recipients = record.get("recipients") or []
        if recipients:
            lines.append(f" → {escape(', '.join(recipients))}")
        lines.append(f' · {escape(record["id"])}</div>')
        lines.append(f'<div class="meta">time: {escape(how)}</div>')
        for mark in flagged:
            lines.append(f'<span class="mark">{escape(mark)}</span>')
        if record.get("subject"):
            lines.append(f"<div><strong>Subject:</strong> {escape(record['subject'])}</div>")
        lines.append(f'<div class="body">{escape(record.get("body") or "")}</div>')
        for attachment in attachments:
            label = f"{attachment.name} ({attachment.content_type}, {attachment.size} bytes)"
            if attachment.file is None:
                lines.append(f'<div><span class="mark">omitted</span>attachment {escape(label)}</div>')
            else:
                href = escape(link_prefix + attachment.file, quote=True)
                lines.append(f'<div>attachment <a href="{href}">{escape(label)}</a></div>')
        lines.append("</div>")
        body.append("".join(lines))
    return _page(title, notice, disclosure, body)


def index(*, notice: str, disclosure: str, conversations: Sequence[tuple[str, str, str, str, int]]) -> str:
    """The list of transcripts: (file, custodian, platform, conversation, messages) each."""
    rows = "".join(f'<tr><td><a href="{escape(file, quote=True)}">{escape(name)}</a></td><td>{escape(custodian)}'
                   f"</td><td>{escape(platform)}</td><td>{count}</td></tr>"
                   for file, custodian, platform, name, count in conversations)
    return _page("Exported conversations", notice, disclosure,
                 ["<h1>Exported conversations</h1>",
                  "<table><tr><th>Conversation</th><th>Custodian</th><th>Platform</th><th>Messages</th></tr>"
                  f"{rows}</table>"])
