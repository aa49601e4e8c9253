"""Recover the original message from an inline-forwarded e-mail body.

The 20-day clock of 44 U.S.C. 2911 starts at the original message's date, so
a forward's own Date header is never the answer: the date has to be read from
the header block the forwarding client pasted into the body. Pure: no I/O, no
clock; input is untrusted, so every scan is linear (no regex with nested
quantifiers on the same characters) and nothing raises for any ``str``.

How a forward is found, first match from the top of the body:

- a dashed separator ("---------- Forwarded message ---------", Thunderbird's
  "-------- Weitergeleitete Nachricht --------", Yahoo's "----- Forwarded
  Message -----" with its headers run together on the same line, Outlook's
  "-----Original Message-----", IONOS, Missive, HubSpot), then a header block;
- an introduction line (Apple Mail "Begin forwarded message:" and its
  translations, MailMate "Forwarded message:"), then a usually ``> ``-quoted
  header block;
- a line of underscores (Outlook web), then a header block;
- a bare header block starting with From (New Outlook, Outlook 2013) that also
  has a date and a To or Subject line;
- a reply header ("On ... wrote:", "Am ... schrieb ...:", "Le ... a écrit :",
  possibly over two lines, or three when the sender's address was wrapped onto
  a line of its own; Zoho's "---- On ... wrote ----") followed by the quoted or
  4-space-indented original.

A separator whose header block cannot be read (keys in a language missing
here, a cut-off block) ends the search with nothing found: a block further
down is older, quoted inside the unread original, and is never taken instead.
Underscores end it only over "Key: value" lines, as they also rule off
signatures.

Forwards of forwards: the innermost original is returned only while each
enclosing message is a mere relay of it, i.e. its subject carries a forward
prefix ("Fwd: ...") or it adds no text of its own before the nested block.
A message that says something and then quotes a thread ("Integer consequat"
followed by the "RE: ..." chain below it) is itself the record, not its quotes.
A relay's first block may be a reply header (Outlook 2019 forwards that way),
but reply headers are never descended into: a forwarded reply is the reply.
"""

from __future__ import annotations

import functools
import re
import textwrap
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from twentyday.parsers.mail.dates import fold, read_mail_date, split_leading_date
from twentyday.parsers.mail.forward_keys import FORWARD_KEYS, YAHOO_LANGUAGES
from twentyday.records import TimeReading

__all__ = ["ForwardedOriginal", "find_forwarded", "strip_forward_prefix"]

_LineTest = Callable[[str], bool]

#: A longer line is never a separator or a header; refusing it bounds the work per line.
MAX_HEADER_LINE = 4000
#: A header block longer than this is not one a client wrote.
MAX_HEADER_LINES = 20
#: A reply header ("On ..., NAME <addr> wrote:") is one sentence, even over two lines.
MAX_REPLY_HEADER = 400
#: Blank (or bare ">") lines allowed between a separator and its header block.
MAX_BLANKS_AFTER_SEPARATOR = 3


@dataclass(frozen=True)
class ForwardedOriginal:
    """The original message recovered from a forward's body.

    ``created_at`` is None when the original's date could not be read; the
    forward's own date is never put in its place.
    """

    sender: str
    sender_address: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date_text: str
    created_at: datetime | None
    time: TimeReading | None
    body: str
    client: str
    depth: int
    bcc: tuple[str, ...] = ()


# --- Localised words (data) -------------------------------------------------------------
# The keys, separator phrases and introduction lines of every language are one table,
# ``forward_keys.FORWARD_KEYS``, each entry naming its source. Keys are matched without
# regard to case or accents (``fold``), except in Yahoo's run-together line (see
# ``_INLINE_KEY_RE``). A key means the same field in every language (checked by the tests).


def _entries(text: str) -> list[str]:
    return [entry.strip() for entry in text.split("|") if entry.strip()]


def _union(field_name: str, languages: Sequence[str] = tuple(FORWARD_KEYS)) -> str:
    """Every language's entries for one field, in one "|"-separated string, first seen first."""
    seen: dict[str, None] = {}
    for language in languages:
        for entry in _entries(FORWARD_KEYS[language].get(field_name, "")):
            seen.setdefault(entry, None)
    return "|".join(seen)


#: Header keys as clients write them, by field. "sent" is a date written by Outlook-like
#: clients ("Sent:", "Gesendet:", "Envoyé :"); "ignored" keys belong to the block but
#: carry nothing this module returns.
HEADER_KEYS: Mapping[str, str] = {
    field_name: _union(field_name) for field_name in ("from", "to", "cc", "date", "sent", "subject", "bcc", "ignored")
}

#: Dashed separator phrases, by kind: a forwarded or an original message.
SEPARATOR_PHRASES: Mapping[str, str] = {"forward": _union("forward"), "original": _union("original")}

#: Introduction lines (without their colon), by client: Apple Mail's in every language,
#: MailMate's English one.
INTRO_PHRASES: Mapping[str, str] = {"apple_mail": _union("intro"), "mailmate": "Forwarded message"}

#: (leading dashes, trailing dashes, space inside, kind) -> client.
DASH_CLIENTS: Mapping[tuple[int, int, bool, str], str] = {
    (10, 9, True, "forward"): "gmail",
    (10, 10, True, "forward"): "missive",
    (10, 10, True, "original"): "ionos",
    (8, 8, True, "forward"): "thunderbird",
    (3, 3, True, "forward"): "thunderbird",
    (5, 5, True, "forward"): "yahoo",
    (5, 5, False, "original"): "outlook_2013",
    (5, 5, True, "original"): "outlook_2013",
}

#: Reply headers. "{when}" holds a date and a sender side by side; "{date}" and
#: "{sender}" alone are kept apart by the template's own words. A space before the
#: final colon ("a écrit :") is dropped before matching.
REPLY_TEMPLATES: tuple[str, ...] = (
    "On {when} wrote:",
    "Am {date} schrieb {sender}:",
    "Le {when} a écrit:",
    "El {when} escribió:",
    "Il giorno {when} ha scritto:",
    "Il {when} ha scritto:",
    "In data {when} ha scritto:",
    "Op {date} heeft {sender} geschreven:",
    "Op {date} schreef {sender}:",
    "Em {when} escreveu:",
    "Den {date} skrev {sender} följande:",
    "Den {date} skrev {sender}:",
    "D. {date} skrev {sender}:",
    "{sender} skrev følgende den {date}:",
    "{sender} kirjoitti {date}:",
    "{when} kirjoitti:",
    "Dnia {when} napisał:",
    "W dniu {when} napisał:",
    "Dne {when} napsal(a):",
    "{date} пользователь {sender} написал:",
    "{when} написал(а):",
    "{when} пишет:",
    "{date} időpontban {sender} ezt írta:",
    # Outlook 2019 in Slovak and Turkish (crisp-oss test/fixtures/outlook_2019_{sk,tr}_body.txt).
    "{date} používateľ {sender} napísal:",
    "{sender}, {date} tarihinde şunu yazdı:",
)

#: Subject prefixes a forward adds, in the languages clients use.
FORWARD_PREFIXES = "Fwd|Fw|WG|TR|RV|I|ENC|VS|VB|VL|PD|Videresend|Redir.|İLT|Wtrl|Doorst"


# --- Compiled forms of the tables -------------------------------------------------------


_KEY_FIELDS: dict[str, str] = {
    fold(key): field_name for field_name, keys in HEADER_KEYS.items() for key in _entries(keys)
}
_SEPARATOR_KINDS: dict[str, str] = {
    fold(phrase): kind for kind, phrases in SEPARATOR_PHRASES.items() for phrase in _entries(phrases)
}
_INTRO_CLIENTS: dict[str, str] = {
    fold(phrase): client for client, phrases in INTRO_PHRASES.items() for phrase in _entries(phrases)
}

# Yahoo runs "From: ...To: ...Cc: ..." together; keys are matched as written (case
# matters, so "A:" is not found inside "Data:"), longest first.
_INLINE_KEY_RE = re.compile(
    "("
    + "|".join(
        re.escape(key)
        for key in sorted(
            {key for field_name in HEADER_KEYS for key in _entries(_union(field_name, YAHOO_LANGUAGES))},
            key=len,
            reverse=True,
        )
    )
    + ")[ \u00a0]?:"
)

_PREFIX_RE = re.compile(
    r"\s*(?:"
    + "|".join(re.escape(p) for p in sorted(_entries(FORWARD_PREFIXES), key=len, reverse=True))
    + r")(?:[ \t]*\[\d{1,3}\])?\s*:\s*",
    re.IGNORECASE,
)

_MAILTO_ANGLE_RE = re.compile(r"<mailto:[^<>\s]*>", re.IGNORECASE)
_MAILTO_SQUARE_RE = re.compile(r"\[mailto:([^\[\]\s]*)\]", re.IGNORECASE)
_PAREN_ADDRESS_RE = re.compile(r"\(<?([^()<>\s@]+@[^()<>\s@]+)>?\)")
# An address starts only after a delimiter, so each run of characters is scanned once.
_ADDRESS_RE = re.compile(r"(?<![^\s<>(),;:\"'\[\]«»])[^\s<>(),;:\"'\[\]«»@]+@[^\s<>(),;:\"'\[\]«»@]+")


@dataclass(frozen=True)
class _Template:
    prefix: str  # lower-case
    suffix: str  # lower-case
    middle: re.Pattern[str] | None  # None: "{when}"
    sender_first: bool

    def frames(self, sentence: str) -> bool:
        """Does the sentence start with the prefix and end with the suffix?"""
        size = len(sentence)
        return (
            size > len(self.prefix) + len(self.suffix)
            and sentence[: len(self.prefix)].lower() == self.prefix
            and sentence[size - len(self.suffix) :].lower() == self.suffix
        )

    def inside(self, sentence: str) -> str:
        return sentence[len(self.prefix) : len(sentence) - len(self.suffix)].strip()


def _compile_template(template: str) -> _Template:
    if "{when}" in template:
        prefix, suffix = template.split("{when}")
        return _Template(prefix.lower(), suffix.lower(), None, False)
    sender_first = template.index("{sender}") < template.index("{date}")
    first, second = ("{sender}", "{date}") if sender_first else ("{date}", "{sender}")
    prefix, rest = template.split(first)
    middle, suffix = rest.split(second)
    # A word between sender and date stands alone ("... kirjoitti ..."); a comma follows the
    # sender's ">" directly ('"John Doe" <john@acme.com>, 28/10/2021 ...').
    before = r"\s" if middle.strip()[:1].isalnum() else r"\s*"
    middle_re = re.compile(before + re.escape(middle.strip()) + r"\s", re.IGNORECASE)
    return _Template(prefix.lower(), suffix.lower(), middle_re, sender_first)


def _by_word(templates: Sequence[_Template], *, first: bool) -> dict[str, tuple[_Template, ...]]:
    """Templates by the first word of their prefix (or the last word of their suffix)."""
    index: dict[str, tuple[_Template, ...]] = {}
    for template in templates:
        words = (template.prefix if first else template.suffix).split()
        if words:
            key = words[0] if first else words[-1]
            index[key] = (*index.get(key, ()), template)
    return index


_TEMPLATES = tuple(_compile_template(template) for template in REPLY_TEMPLATES)
# A line is tried only against templates its first or last word can belong to.
_TEMPLATES_BY_FIRST_WORD = _by_word(_TEMPLATES, first=True)
_TEMPLATES_BY_LAST_WORD = _by_word([template for template in _TEMPLATES if not template.prefix.strip()], first=False)
_TEMPLATES_UNANCHORED = tuple(
    template for template in _TEMPLATES if not template.prefix.strip() and template.suffix.strip() == ":"
)


# --- Public functions -------------------------------------------------------------------


def strip_forward_prefix(subject: str) -> str:
    """ "Fwd: FW: [Fwd: TR: X]" -> "X". "Re:" stays: a reply is not a forward."""
    start, end = 0, len(subject)
    while True:
        while end > start and subject[end - 1].isspace():
            end -= 1
        match = _PREFIX_RE.match(subject, start, end)
        if match:
            start = match.end()
            continue
        if (
            start < end
            and subject[start] == "["
            and subject[end - 1] == "]"
            and _PREFIX_RE.match(subject, start + 1, end - 1)
        ):
            start, end = start + 1, end - 1
            continue
        return subject[start:end].strip()


def find_forwarded(
    body: str, *, default_zone: tzinfo, zone_name: str, day_first: bool | None = None
) -> ForwardedOriginal | None:
    """The original inside an inline-forwarded body, or None when there is no forward.

    A date written without a zone is read in ``default_zone`` (named ``zone_name``);
    a numeric date whose day and month could be swapped is read with ``day_first``
    (the custodian's locale) or, without it, left undated.
    """
    lines = _prepare(body)
    block = _first_block(lines, 0, len(lines), allow_reply=True)
    if not isinstance(block, _Block):
        return None  # no forward, or one whose headers cannot be read: never an older block below it
    depth = 1
    while not block.reply:
        # A reply header counts here too: Outlook 2019 forwards as "On ..., NAME wrote:" over an
        # indented copy. Skipping it would take an older block quoted inside that copy instead.
        inner = _first_block(lines, block.body_start, block.body_stop, allow_reply=True)
        if inner is None or not _is_relay(lines, block, inner):
            break
        if isinstance(inner, _Unreadable):
            return None
        block, depth = inner, depth + 1
    return _original(lines, block, depth, default_zone, zone_name, day_first)


# --- Finding blocks ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Block:
    """A recognised header block and where its body lies (line indices)."""

    client: str
    marker: int
    values: Mapping[str, str]
    body_start: int
    body_stop: int
    quote_levels: int
    reply: bool = False
    indented: bool = False


@dataclass(frozen=True)
class _Unreadable:
    """A separator whose header block cannot be read (a language without keys here, a cut).

    The search ends at it with nothing found: a block further down is older, quoted
    inside the unread original, and taking it would give the wrong sender and date.
    """

    marker: int


@dataclass(frozen=True)
class _Headers:
    values: dict[str, str]
    end: int
    depth: int
    starred: bool


def _prepare(body: str) -> list[str]:
    text = body.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    return unicodedata.normalize("NFC", text).split("\n")


def _unquoted(line: str) -> tuple[int, str]:
    """Quote depth of a line and its text without the "> " marks and leading spaces."""
    if line[:1] not in (" ", "\t", ">"):
        return 0, line  # most lines: no copy
    text = line.lstrip(" \t>")
    return line[: len(line) - len(text)].count(">"), text


def _strip_levels(line: str, levels: int) -> str:
    """Remove up to ``levels`` quote marks (each "> " or ">") from the start of a line."""
    index, size = 0, len(line)
    for _ in range(levels):
        probe = index
        while probe < size and line[probe] == " ":
            probe += 1
        if probe >= size or line[probe] != ">":
            break
        index = probe + 1
        if index < size and line[index] == " ":
            index += 1
    return line[index:]


def _is_blank(line: str) -> bool:
    return not _unquoted(line)[1].strip()


def _first_block(lines: Sequence[str], start: int, stop: int, *, allow_reply: bool) -> _Block | _Unreadable | None:
    for index in range(start, stop):
        line = lines[index]
        # Every kind of block starts with a colon (a header, an intro, a reply line or the
        # line after it), dashes or underscores: skip the body's other lines cheaply.
        if ":" not in line and "--" not in line and "__" not in line and not (
                allow_reply and index + 1 < stop and ":" in lines[index + 1]):
            continue
        block = _block_at(lines, index, stop, allow_reply)
        if block is not None:
            return block
    return None


def _block_at(lines: Sequence[str], index: int, stop: int, allow_reply: bool) -> _Block | _Unreadable | None:
    line = lines[index]
    if len(line) > MAX_HEADER_LINE:
        return None
    text = _unquoted(line)[1].rstrip()
    if not text:
        return None
    return (
        _after_dashes(lines, index, stop, text)
        or _after_intro(lines, index, stop, text)
        or _after_underscores(lines, index, stop, text)
        or _bare_block(lines, index, stop, text)
        or (_reply_block(lines, index, stop) if allow_reply else None)
    )


def _dash_separator(text: str) -> tuple[str, str] | None:
    """(client, text after the separator) for "----- Phrase -----", else None."""
    if not text.startswith("--"):
        return None
    inner = text.lstrip("-")
    close = inner.find("--")
    if close == -1:
        return None
    # Slovak Thunderbird: "-------- Preposlaná správa --- Forwarded Message --------", dashes
    # inside the phrase; the whole phrase up to the closing dashes is tried first.
    whole = inner.rstrip("-")
    if len(whole) < len(inner) and fold(whole.strip()) in _SEPARATOR_KINDS:
        close = len(whole)
    phrase = fold(inner[:close].strip())
    kind = _SEPARATOR_KINDS.get(phrase)
    if kind is None:
        return None
    after = inner[close:]
    rest = after.lstrip("-")
    shape = (len(text) - len(inner), len(after) - len(rest), inner.startswith(" "), kind)
    client = DASH_CLIENTS.get(shape, "unknown")
    # Gmail keeps its English separator in every language; HubSpot translates it.
    if client == "gmail" and phrase != "forwarded message":
        client = "hubspot"
    return client, rest.strip()


def _after_dashes(lines: Sequence[str], index: int, stop: int, text: str) -> _Block | _Unreadable | None:
    found = _dash_separator(text)
    if found is None:
        return None
    client, rest = found
    if not rest:
        return _headers_after(lines, index, stop, client) or _Unreadable(index)
    # Yahoo: "----- Forwarded Message ----- From: ...To: ...Subject: ..." on one line.
    values = _inline_headers(rest)
    if values is None:
        return _Unreadable(index)
    return _Block(client, index, values, index + 1, stop, _unquoted(lines[index])[0])


def _after_intro(lines: Sequence[str], index: int, stop: int, text: str) -> _Block | _Unreadable | None:
    if not text.endswith(":"):
        return None
    client = _INTRO_CLIENTS.get(fold(text[:-1].strip()))
    if client is None:
        return None
    return _headers_after(lines, index, stop, client) or _Unreadable(index)


def _after_underscores(lines: Sequence[str], index: int, stop: int, text: str) -> _Block | _Unreadable | None:
    if len(text) < 10 or text.strip("_"):
        return None
    block = _headers_after(lines, index, stop, "outlook_live")
    if block is not None:
        return block
    # Underscores also rule off signatures and disclaimers: only "Key: value" lines make a block.
    return _Unreadable(index) if _looks_like_headers(lines, _after_blanks(lines, index, stop), stop) else None


def _after_blanks(lines: Sequence[str], index: int, stop: int) -> int:
    """The first line after a separator's few blank lines (``stop`` if none)."""
    start = index + 1
    while start < stop and start - index <= MAX_BLANKS_AFTER_SEPARATOR and _is_blank(lines[start]):
        start += 1
    return start


def _headers_after(lines: Sequence[str], index: int, stop: int, client: str) -> _Block | None:
    start = _after_blanks(lines, index, stop)
    if start >= stop:
        return None
    headers = _read_headers(lines, start, stop)
    if headers is None:
        return None
    return _Block(client, index, headers.values, headers.end, stop, headers.depth)


def _looks_like_headers(lines: Sequence[str], start: int, stop: int) -> bool:
    """Do two "Key: value" lines start here, whatever the language of the keys?"""
    return stop - start >= 2 and all(_has_key(_unquoted(line)[1]) for line in lines[start : start + 2])


def _has_key(text: str) -> bool:
    """ "Key: value" or "Key：value" (the full-width colon of Chinese and Japanese clients)."""
    if len(text) > MAX_HEADER_LINE:
        return False
    colons = [at for at in (text.find(":", 0, 40), text.find("\uff1a", 0, 40)) if at > 0]
    if not colons:
        return False
    colon = min(colons)
    return bool(text[:colon].strip(" \t*")) and "/" not in text[: colon + 2]


def _bare_block(lines: Sequence[str], index: int, stop: int, text: str) -> _Block | None:
    first = _header(text)
    if first is None or first[0] != "from":
        return None
    headers = _read_headers(lines, index, stop)
    if headers is None:
        return None
    values = headers.values
    has_date = "date" in values or "sent" in values
    if not has_date or not ("to" in values or "subject" in values):
        return None
    if "[mailto:" in values["from"].lower():
        client = "outlook_2013"
    elif headers.starred:
        client = "outlook_live"
    elif "sent" in values:
        client = "outlook"
    else:
        client = "new_outlook"
    return _Block(client, index, values, headers.end, stop, headers.depth)


# Cached: every line that might start a block is read again by each block tried over it, and a body
# of one repeated line (hostile, or a long pasted list) would otherwise pay that per line.
@functools.lru_cache(maxsize=4096)
def _header(text: str) -> tuple[str, str] | None:
    """(field, value) of a "Key: value" line with a known key, else None."""
    if len(text) > MAX_HEADER_LINE:
        return None
    starred = text.startswith("*")  # Outlook web's HTML-to-text "*From:* ..."
    rest = text.lstrip("*")
    # Chinese and Japanese clients (HubSpot's "日付：") write a full-width colon.
    colon = rest.find(":", 0, 40)
    wide = rest.find("\uff1a", 0, colon if colon >= 0 else 40)
    if wide >= 0:
        colon = wide
    if colon <= 0:
        return None
    field_name = _KEY_FIELDS.get(fold(rest[:colon].strip(" \t\u00a0*")))
    if field_name is None:
        return None
    value = rest[colon + 1 :]
    if starred and value.startswith("*"):
        value = value[1:]
    return field_name, value.strip()


def _read_headers(lines: Sequence[str], start: int, stop: int) -> _Headers | None:
    """Read "Key: value" lines from ``start``; the block needs a From."""
    depth = _unquoted(lines[start])[0]
    starred = _strip_levels(lines[start], depth).lstrip().startswith("*")
    values: dict[str, str] = {}
    last = ""
    index = start
    while index < stop and index - start < MAX_HEADER_LINES:
        line = lines[index]
        if len(line) > MAX_HEADER_LINE:
            break
        raw = _strip_levels(line, depth)
        text = raw.strip()
        if not text:
            break
        parsed = _header(text)
        if parsed is None:
            # A long To/Cc list folded onto an indented next line, or a From wrapped
            # before its address ("From: Human Resources\n<hr@example.com>").
            if (last in ("to", "cc", "bcc") and raw[:1] in (" ", "\t") and "@" in text) or (
                    last == "from" and _is_bracketed_address(text)):
                values[last] = f"{values[last]} {text}"
                index += 1
                continue
            break
        field_name, value = parsed
        if field_name in values:
            break  # a second From: starts the next block (New Outlook threads)
        if field_name != "ignored":
            values[field_name] = value
            last = field_name
        index += 1
    if not values.get("from"):
        return None
    return _Headers(values, index, depth, starred)


def _inline_headers(rest: str) -> dict[str, str] | None:
    if len(rest) > MAX_HEADER_LINE:
        return None
    marks = list(_INLINE_KEY_RE.finditer(rest))
    if not marks or marks[0].start() != 0:
        return None
    values: dict[str, str] = {}
    for number, mark in enumerate(marks):
        end = marks[number + 1].start() if number + 1 < len(marks) else len(rest)
        field_name = _KEY_FIELDS.get(fold(mark.group(1)), "ignored")
        if field_name != "ignored" and field_name not in values:
            values[field_name] = rest[mark.end() : end].strip()
    return values if values.get("from") else None


# --- Reply headers ----------------------------------------------------------------------


def _reply_block(lines: Sequence[str], index: int, stop: int) -> _Block | None:
    depth, first = _unquoted(lines[index])
    first = first.strip()
    if len(first) > MAX_REPLY_HEADER:
        return None
    candidates = []
    if first.endswith(":"):
        candidates.append((first, index + 1))
    elif first.startswith("---- ") and first.endswith(" ----"):
        # Zoho: "---- On Wed, 24 Feb 2021 14:02:50 +0530 john@gmail.com wrote ----"
        candidates.append((first.strip("- ") + ":", index + 1))
    if index + 1 < stop and len(lines[index + 1]) <= MAX_REPLY_HEADER:
        # "On Wed, Oct 27, 2021 at 9:31 AM John Doe <john.doe@acme.com>\nwrote:"
        second = _unquoted(lines[index + 1])[1].strip()
        if second.endswith(":"):
            candidates.append((f"{first} {second}", index + 2))
        elif _is_bracketed_address(second) and index + 2 < stop and len(lines[index + 2]) <= MAX_REPLY_HEADER:
            # Wrapped twice: "On Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@example.com>\nwrote:"
            third = _unquoted(lines[index + 2])[1].strip()
            if third.endswith(":"):
                candidates.append((f"{first} {second} {third}", index + 3))
    for text, after in candidates:
        parts = _match_reply(_sentence(text))
        if parts is not None:
            return _reply_with_body(lines, index, after, stop, depth, parts)
    return None


def _is_bracketed_address(text: str) -> bool:
    """ "<someone@example.com>" alone: a sender's address a client wrapped onto a line of its own."""
    return text.startswith("<") and text.endswith(">") and "@" in text and " " not in text


def _sentence(text: str) -> str:
    sentence = " ".join(text.split())
    # "<notifications@github.com>wrote:": some clients drop the space after the address.
    sentence = sentence.replace(">wrote:", "> wrote:")
    if sentence.endswith(" :"):
        sentence = sentence[:-2] + ":"
    return sentence


def _match_reply(sentence: str) -> tuple[str, str] | None:
    """(date text, sender text) if the sentence is a known reply header."""
    words = sentence.split(" ")
    candidates = (
        *_TEMPLATES_BY_FIRST_WORD.get(words[0].lower(), ()),
        *_TEMPLATES_BY_LAST_WORD.get(words[-1].lower(), ()),
        *_TEMPLATES_UNANCHORED,
    )
    for template in candidates:
        if template.frames(sentence):
            parts = _split_reply_middle(template, template.inside(sentence))
            if parts is not None:
                return parts
    return None


def _split_reply_middle(template: _Template, middle: str) -> tuple[str, str] | None:
    if template.middle is None:
        date_text, sender = split_leading_date(middle)
    else:
        found = template.middle.search(middle)
        if found is not None and template.sender_first:
            # The date comes last and holds no such word; a sender may ("Doe, John" <...>, date).
            for later in template.middle.finditer(middle, found.end()):
                found = later
        if found is None:
            return None
        first, second = middle[: found.start()].strip(), middle[found.end() :].strip()
        date_text, sender = (second, first) if template.sender_first else (first, second)
    date_text = date_text.strip(" ,")
    sender = sender.strip(" ,")
    if not sender or not any(ch.isdigit() for ch in date_text):
        return None
    return date_text, sender


def _reply_with_body(
    lines: Sequence[str], marker: int, start: int, stop: int, depth: int, parts: tuple[str, str]
) -> _Block:
    """The quoted original below a reply header: ">"-quoted, 4-space indented, or the rest."""
    date_text, sender = parts
    values = {"from": sender, "date": date_text}
    first = start
    while first < stop and _is_blank(lines[first]):
        first += 1
    levels, indented, keep = depth, False, _keeps_depth(depth)
    if first < stop and _unquoted(lines[first])[0] > depth:
        levels, keep = depth + 1, _keeps_depth(depth + 1)
    elif first < stop and depth == 0 and lines[first][:1] in (" ", "\t"):
        indented, keep = True, _keeps_indent
    elif depth == 0:
        keep = _keeps_all
    end = first
    while end < stop and (_is_blank(lines[end]) or keep(lines[end])):
        end += 1
    client = "outlook_2019_reply" if indented else "reply"
    return _Block(client, marker, values, start, end, levels, reply=True, indented=indented)


def _keeps_depth(depth: int) -> _LineTest:
    def keep(line: str) -> bool:
        return _unquoted(line)[0] >= depth

    return keep


def _keeps_indent(line: str) -> bool:
    return line[:1] in (" ", "\t")


def _keeps_all(line: str) -> bool:
    return True


# --- Building the result ----------------------------------------------------------------


def _is_relay(lines: Sequence[str], outer: _Block, inner: _Block | _Unreadable) -> bool:
    """Does ``outer`` only pass ``inner`` on (forward prefix, or no text of its own)?"""
    subject = outer.values.get("subject", "")
    if strip_forward_prefix(subject) != subject.strip():
        return True
    return all(_is_blank(lines[index]) for index in range(outer.body_start, inner.marker))


def _original(
    lines: Sequence[str],
    block: _Block,
    depth: int,
    default_zone: tzinfo,
    zone_name: str,
    day_first: bool | None,
) -> ForwardedOriginal:
    values = block.values
    date_text = values.get("date") or values.get("sent") or ""
    reading = read_mail_date(date_text, default_zone=default_zone, zone_name=zone_name, day_first=day_first)
    client = block.client
    # Gmail never writes a zone in its forward header; HubSpot's identical separator does.
    if client == "gmail" and reading.zone_written:
        client = "hubspot"
    time = None
    if reading.at is not None:
        time = TimeReading(
            raw=date_text,
            layout=f"{client}-{reading.style}",
            day_first=reading.day_first,
            decided_by=reading.decided_by,
            zone=reading.zone,
        )
    sender_text = _clean_mailto(values.get("from", ""))
    return ForwardedOriginal(
        sender=_format_sender(sender_text),
        sender_address=_first_address(sender_text),
        to=_address_list(values.get("to", "")),
        cc=_address_list(values.get("cc", "")),
        bcc=_address_list(values.get("bcc", "")),
        subject=values.get("subject", "").strip(),
        date_text=date_text,
        created_at=reading.at,
        time=time,
        body=_body_text(lines, block),
        client=client,
        depth=depth,
    )


def _body_text(lines: Sequence[str], block: _Block) -> str:
    body = [_strip_levels(line, block.quote_levels) for line in lines[block.body_start : block.body_stop]]
    # Missive quotes the body but not the headers above it.
    if any(line.strip() for line in body) and all(line.lstrip().startswith(">") for line in body if line.strip()):
        body = [_strip_levels(line, 1) for line in body]
    text = "\n".join(body)
    if block.indented:
        text = textwrap.dedent(text)
    return text.strip()


def _clean_mailto(value: str) -> str:
    """Undo HTML-to-text address forms: "a@b<mailto:a@b>", "[mailto:a@b]", "(a@b)"."""
    text = _MAILTO_ANGLE_RE.sub("", value)
    text = _MAILTO_SQUARE_RE.sub(r"<\1>", text)
    text = _PAREN_ADDRESS_RE.sub(r"<\1>", text)
    return " ".join(text.split())


def _first_address(text: str) -> str:
    match = _ADDRESS_RE.search(text)
    return match.group().rstrip(".").lower() if match else ""


def _format_entry(text: str, address: str) -> str:
    """ "'Bessie, Berry' <b@x>" -> "Bessie, Berry <b@x>"; a name equal to the address is dropped."""
    at = text.rfind(address)
    name = text[:at] if at >= 0 else ""
    name = name.strip().rstrip("<").strip().strip("\"'«»“”„ ").strip()
    address = address.rstrip(".")
    if not name or fold(name) == fold(address):
        return address
    return f"{name} <{address}>"


def _format_sender(text: str) -> str:
    matches = list(_ADDRESS_RE.finditer(text))
    if not matches:
        return text.strip("\"'«»“”„ ")
    if len(matches) == 1 and not text[matches[0].end() :].strip(" >"):
        return _format_entry(text, matches[0].group())
    return text  # e.g. "John Doe <j@x> on behalf of ticketing@x": keep every part


def _address_list(value: str) -> tuple[str, ...]:
    """Split a To/Cc value into entries; commas inside names ("Doe, John <j@x>") are kept."""
    text = _clean_mailto(value)
    entries: list[str] = []
    start = 0
    for match in _ADDRESS_RE.finditer(text):
        end = match.end()
        while end < len(text) and text[end] in ">\"'» ":
            end += 1
        delimited = end >= len(text) or text[end] in ",;"
        # "b@x <b@x>": the first address is the display name. One closed by ">" is an address
        # even when no delimiter follows (Yahoo's Polish "<b@x>Dw Walter <w@x>", "Dw" lacking its colon).
        if not delimited and ">" not in text[match.end() : end]:
            continue
        entries.append(_format_entry(text[start : match.end()], match.group()))
        start = end + 1 if delimited else end
    leftover = text[start:].strip(" ,;")
    entries.extend(name.strip() for name in leftover.split(";") if name.strip())
    return tuple(entries)
