"""The chat formats, in the order they are tried: one list for dropped files and mailed exports alike.

The registry tries these (then mail) on every item from the watched folder; the e-mail
parser asks the same list whether a mail's attachment is a chat export to ingest on its
own (docs/ARCHITECTURE.md, parsers). Most specific first: formats with strong signatures
before the looser text ones. A format added here is recognised on both paths.
"""

from __future__ import annotations

from twentyday.parsers import (
    google_chat,
    google_takeout,
    google_voice,
    imessage,
    messenger,
    signal,
    slack,
    sms_backup,
    telegram,
    telegram_html,
    whatsapp,
)
from twentyday.parsers.base import ParserModule

CHAT_FORMATS: tuple[ParserModule, ...] = (
    whatsapp, telegram, telegram_html, signal,
    imessage,  # a first line that is exactly chrono's "%b %d, %Y %l:%M:%S %p": no other format's
    slack, sms_backup, messenger,
    # google_takeout first of the Google ones: a Takeout with Chat and Voice is read whole, not by one of them.
    google_takeout, google_chat, google_voice,
)  # fmt: skip
