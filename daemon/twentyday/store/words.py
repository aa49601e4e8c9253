"""What a record is found by: the words of its text, before the store blinds them.

Unkeyed and pure, so it can run where no secret is (the read-ahead helper); the
store turns each word into an HMAC'd token (``Archive.blind``) for the index.
"""

from __future__ import annotations

import re
import unicodedata

from twentyday.records import ParsedMessage

_WORD = re.compile(r"\w{2,64}")


def tokens(text: str) -> set[str]:
    """Words as the blind index sees them: NFKC, case-folded, 2-64 word characters."""
    # NFKC leaves ASCII alone, and casefold() is lower() on it.
    folded = text.lower() if text.isascii() else unicodedata.normalize("NFKC", text).casefold()
    if len(folded) < 256:
        return set(_WORD.findall(folded))
    # Long text (mail): whitespace never is a word character, so matching each distinct
    # whitespace-separated piece once finds the same words, at a third of the cost.
    words: set[str] = set()
    for piece in set(folded.split()):
        words.update(_WORD.findall(piece))
    return words


def search_words(message: ParsedMessage) -> frozenset[str]:
    """The words a message is found by: those of its subject, body and attachment names."""
    searchable = message.body
    if message.subject or message.attachments:
        searchable = " ".join([message.subject, message.body, *(a.name for a in message.attachments)])
    return frozenset(tokens(searchable))
