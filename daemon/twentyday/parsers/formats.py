"""The chat formats, in the order they are tried: one list for dropped files and mailed exports alike.

The registry tries these (then mail) on every item from the watched folder; the e-mail
parser asks the same list whether a mail's attachment is a chat export to ingest on its
own (docs/ARCHITECTURE.md, parsers). Most specific first: formats with strong signatures
before the looser text ones. A format added here is recognised on both paths.
"""

from __future__ import annotations

from twentyday.parsers import google_chat, messenger, signal, slack, sms_backup, telegram, telegram_html, whatsapp
from twentyday.parsers.base import ParserModule

CHAT_FORMATS: tuple[ParserModule, ...] = (
    whatsapp, telegram, telegram_html, signal, slack, sms_backup, messenger, google_chat
)
