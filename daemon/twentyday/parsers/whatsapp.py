"""WhatsApp chat export (``.txt``) parser: bytes in, messages and events out.

Pure and streaming. :func:`parse_text` reads a seekable binary stream twice:

1. *Layout pass* (runs when :func:`parse_text` is called): find the first
   message header and name its layout, then read headers only until one date
   field above 12 settles the day/month order. A year-first or month-name
   layout settles it by itself; a file that never settles it uses the
   custodian's locale (``hints.day_first``) or is held for review.
2. *Record pass* (runs as the iterator is consumed): ``seek(0)`` and match
   every line against the one regex built for that layout. A line starts a
   message only if the whole header matches (the Pustur rule); any other
   line continues the previous message's body.

Supported headers (LF or CRLF; BOM, U+FEFF, LRM/RLM marks tolerated)::

    Android      18/03/2022, 14:56 - AUTHOR: TEXT     (no author: system line)
                 1/29/18, 12:24 -   11/18/22, 8:48 PM -   18/02/22, 11:25 am -
                 01/01/2019, 11:25 a. m. -   18.03.22 14:56 -   18-03-2022 14:56 -
                 2019-08-06, 7:03 a.m. -   2022/06/30, 20:10 -
                 19:07, 20 Sep 2013 -       (2013 layout, English month names)
    iOS          [3/27/22, 21:41:35] AUTHOR: TEXT   [3/27/22 21:41:35]   [3/27/22 21.41.35]
                 [21:41:35, 3/27/22]   [14/12/20, 10:28:09 PM]   [3/27/2565 BE, 21:41:35]
                 [3/27/R4, 21:41:35]   [27/3/2022، 21:41:35]   [٢٧/٣/٢٠٢٢، ٩:٤١:٣٥ م]
                 [2019-04-16, 02:09:11]   [2019-04-16 02:09]   [2019-04-16 02:09:11]
    iOS < 2017   7/1/16, 5:08:08 PM: AUTHOR: TEXT

Twelve-hour markers: ``AM``/``PM`` in any case, ``a.m.``, ``a. m.`` (space,
NBSP or U+202F inside or before), Arabic ``ص``/``م``. Any Unicode decimal
digits are read (``int`` maps Arabic-Indic digits to their values).

Placeholders (media left out: a record flagged ``media_omitted`` and an
``incomplete_copy`` event; deleted: ``deleted`` and a ``deleted_message`` event)
are read in the languages WhatsApp ships, from the one table in
:mod:`twentyday.parsers.whatsapp_strings`, matching the whole body. iOS marks a
line that carries media, a placeholder or its own notices with an LRM (before
the ``[`` and/or the body), whatever the language: such a line that no table
knows is a ``system`` event only when it is under the chat's own name (from the
file name, or the author of the marked first line: the end-to-end notice) or
names its sender first (``Anna left``); from any other participant it is a
record flagged ``unrecognised_line`` -- unless it is a participant's own content
iOS marks too: a shared location (``Ubicación: https://…``, the location word of
any language in the table), a live location or a poll, kept as ordinary records.
A line with no author is a ``system`` event. The edited marker
(``<This message was edited>``, ``<Mensagem editada>`` …) is taken off the end of a
body in every language the table knows: ``edited=True``. View-once media (iOS's
text, Android's ``null``) and ``Waiting for this message…`` are records whose
content is not in the copy (``media_omitted``, ``incomplete_copy``).

Not supported, raising :class:`ParseError`: the 2013-14 Android layouts with
no year (``Mar 5, 8:29 PM -``, ``18 Mar 12:14 -``), since a year cannot be
established without guessing; month names in other languages; twelve-hour
markers other than the ones above (e.g. ``上午``, ``vorm.``).
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import BinaryIO, Literal

from twentyday.errors import HeldForReview, ParseError
from twentyday.parsers.base import ExportSource, open_rewindable, read_head
from twentyday.parsers.common import content_type as _content_type
from twentyday.parsers.common import read_member, text_lines
from twentyday.parsers.whatsapp_strings import (
    ANDROID_MEDIA_OMITTED,
    ATTACHED_WORDS,
    DELETED,
    EDITED,
    FILE_ATTACHED_WORDS,
    IOS_OMITTED,
    LIVE_LOCATION,
    LOCATION_WORDS,
    POLL_WORDS,
    VIEW_ONCE,
    WAITING,
)
from twentyday.records import (
    DecidedBy,
    EventKind,
    ParsedAttachment,
    ParsedEvent,
    ParsedMessage,
    ParseHints,
    Record,
    TimeReading,
)

__all__ = ["MAX_LINE_BYTES", "NAME", "conversation_name", "detect", "looks_like_whatsapp", "parse", "parse_text"]


#: A longer line is not a chat line; refusing it bounds memory per line.
MAX_LINE_BYTES = 1 << 20

#: A real export's first header is on line 1; allow some junk before it, no more.
_DETECT_LINES = 200
_SNIFF_BYTES = 4096

_MARK_CHARS = "\u200e\u200f"
#: Trimmed from the ends of bodies and placeholders (marks, spaces, NBSPs).
_TRIM = " \t\u200e\u200f\u00a0\u202f"
#: Regex pieces: any run of bidi marks; one space of the kinds exports use.
_M = "[\u200e\u200f]*"
_SP = "[ \u00a0\u202f]"
#: AM, pm, a.m., a. m. (NBSP allowed inside) and Arabic ص (AM) / م (PM).
_AMPM = r"[AaPp]\.?" + _SP + r"?[Mm]\.?|\u0635|\u0645"
_PM_FIRST_CHARS = "Pp\u0645"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name: number for number, name in enumerate(_MONTHS, start=1)}
_MONTH_ALT = "|".join(_MONTHS)
#: Japanese era letter -> Gregorian year of that era's year 0 (Reiwa 1 = 2019).
_ERA_BASE = {"R": 2018, "H": 1988}
_BUDDHIST_OFFSET = 543

_STRIP_MARKS = str.maketrans(dict.fromkeys(_MARK_CHARS + "\ufeff"))
_AUTHOR_TABLE = str.maketrans(
    {
        **dict.fromkeys("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"),
        "\u00a0": " ",
        "\u202f": " ",
    }
)

# Detection runs on a handful of lines with every mark removed, so it can
# afford to be loose; the strict per-layout regex is built from what it finds.
_D_TIME = (
    r"(?P<h>\d{1,2})(?P<ts>[:.])\d{2}(?:(?P=ts)(?P<s>\d{2}))?"
    r"(?:" + _SP + r"?(?P<ap>" + _AMPM + r"))?"
)
_D_DATE = r"(?P<a>\d{1,4})(?P<ds>[./-])\d{1,2}(?P=ds)(?P<c>\d{1,4}(?: BE)?|[RH]\d{1,2})"
_D_MONTH_DATE = r"\d{1,2} (?:" + _MONTH_ALT + r") (?P<my>\d{4})"
_DETECT_DATE_FIRST = re.compile(
    r"(?P<open>\[)?" + _D_DATE + r"(?P<join>, |\u060c | )" + _D_TIME + r"(?P<close>\]|: | - )"
)
_DETECT_TIME_FIRST = re.compile(
    r"(?P<open>\[)?" + _D_TIME + r", (?:" + _D_DATE + r"|" + _D_MONTH_DATE + r")(?P<close>\]| - )"
)
_NO_YEAR = re.compile(
    r"(?:(?:" + _MONTH_ALT + r") \d{1,2}, \d{1,2}:\d{2}(?:" + _SP + r"?(?:" + _AMPM + r"))?"
    r"|\d{1,2} (?:" + _MONTH_ALT + r") \d{1,2}:\d{2}) - "
)


def _fold(text: str) -> str:
    """A placeholder's text without marks, ``<…>``, final period or case: what varies between versions."""
    text = text.strip(_TRIM)
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip(_TRIM)
    return text.rstrip(".").strip(_TRIM).casefold()


#: Body (first line) -> media kind, or _DELETED_KIND: every form exactly as WhatsApp writes it.
_DELETED_KIND = "deleted"
_PLACEHOLDERS: dict[str, str] = {}
for _kind, _phrases in IOS_OMITTED.items():
    _PLACEHOLDERS.update(dict.fromkeys(_phrases, _kind))
_PLACEHOLDERS.update(dict.fromkeys((f"<{p}>" for p in ANDROID_MEDIA_OMITTED), "media"))
# iOS ends a deleted text with a period, Android does not.
_PLACEHOLDERS.update(dict.fromkeys((p + end for p in DELETED for end in ("", ".")), _DELETED_KIND))
# Content that is not in the copy although the message was sent: left out as media is.
_VIEW_ONCE_KIND = "view-once media"
_PLACEHOLDERS.update(dict.fromkeys(VIEW_ONCE, _VIEW_ONCE_KIND))
_PLACEHOLDERS.update(dict.fromkeys(WAITING, "message content"))
#: The same, case-folded without brackets and final period: for marked or ``<``-led
#: bodies only, where WhatsApp's casing or punctuation differs between versions.
_FOLDED_PLACEHOLDERS = {_fold(p): kind for p, kind in _PLACEHOLDERS.items()}
_FILE_ATTACHED = re.compile(
    r"(?P<name>.+?) \((?:" + "|".join(map(re.escape, FILE_ATTACHED_WORDS)) + r")\)", re.IGNORECASE
)
_ATTACHED_TAG = re.compile(
    "<\u200e?(?:" + "|".join(map(re.escape, ATTACHED_WORDS)) + r") ?[:：] ?(?P<name>[^>\n]+)>", re.IGNORECASE
)
_OLD_ATTACHED = re.compile(r"(?P<name>.+?) <\u200e?attached>")
#: The edited marker's text as :func:`_fold` leaves it, in every language known.
_EDITED_FOLDED = frozenset(_fold(marker) for marker in EDITED)
#: iOS marks these participants' messages with an LRM too; they are not system text:
#: a shared location ("Ubicación: https://maps.google.com/?q=…"), a poll ("POLL: …").
_LOCATION = re.compile(
    "(?:" + "|".join(map(re.escape, LOCATION_WORDS)) + r") ?[:：] ?[^\n]*https?://", re.IGNORECASE
)
_POLL = re.compile("(?:" + "|".join(POLL_WORDS) + "):")
_LIVE_LOCATION = frozenset(_fold(phrase) for phrase in LIVE_LOCATION)
_DISAPPEARING = ("disappearing message", "will disappear", "verschwindende nachrichten")
_DISAPPEARING_OFF = ("turned off", "deaktiviert")

_CHAT_FILE_PREFIX = re.compile(
    r"(?:WhatsApp Chat with |WhatsApp Chat - |WhatsApp Chat mit |WhatsApp-chat met "
    r"|Chat WhatsApp s uživatelem |Чат WhatsApp с контактом "
    # Other common locales; extend as real samples appear.
    r"|Discussion WhatsApp avec |Chat de WhatsApp con |Conversa do WhatsApp com "
    r"|Chat WhatsApp con )",
    re.IGNORECASE,
)


Frame = Literal["android", "ios", "ios-legacy"]
DateKind = Literal["ambiguous", "ymd", "buddhist", "era", "monthname"]


@dataclass(frozen=True)
class _Layout:
    """One header layout, as read from the first header of a file."""

    frame: Frame
    time_first: bool
    date_kind: DateKind
    date_sep: str
    year_digits: int
    joiner: str
    time_sep: str
    seconds: bool
    twelve_hour: bool

    def name(self, day_first: bool | None) -> str:
        """A stable, strftime-like name recorded in every TimeReading."""
        core = (
            f"{self._time_name()}, {self._date_name(day_first)}"
            if self.time_first
            else f"{self._date_name(day_first)}{self.joiner}{self._time_name()}"
        )
        return f"whatsapp-{self.frame} {core}"

    def _date_name(self, day_first: bool | None) -> str:
        if self.date_kind == "monthname":
            return "%d %b %Y"
        if self.date_kind == "ymd":
            return self.date_sep.join(("%Y", "%m", "%d"))
        year = {"buddhist": "%Y BE", "era": "<era>%y"}.get(
            self.date_kind, "%y" if self.year_digits == 2 else "%Y"
        )
        day_month = ("%d", "%m") if day_first else ("%m", "%d")
        return self.date_sep.join((*day_month, year))

    def _time_name(self) -> str:
        fields = ("%I" if self.twelve_hour else "%H", "%M") + (("%S",) if self.seconds else ())
        return self.time_sep.join(fields) + (" %p" if self.twelve_hour else "")

    def header_regex(self) -> re.Pattern[str]:
        """The one strict regex every line of the file is matched against."""
        date, time = self._date_pattern(), self._time_pattern()
        # Vietnamese iOS exports write the time first: "[21:41:35, 3/27/22]".
        core = time + _M + ", " + _M + date if self.time_first else date + _M + re.escape(self.joiner) + _M + time
        if self.frame == "ios":
            return re.compile(_M + r"\[" + _M + "(?P<raw>" + core + ")" + _M + r"\] ?")
        close = " - " if self.frame == "android" else ": "
        return re.compile(_M + "(?P<raw>" + core + ")" + close)

    def _date_pattern(self) -> str:
        if self.date_kind == "monthname":
            return r"(?P<b>\d{1,2}) (?P<mon>" + _MONTH_ALT + r") (?P<y>\d{4})"
        sep = _M + re.escape(self.date_sep) + _M
        if self.date_kind == "ymd":
            return rf"(?P<y>\d{{4}}){sep}(?P<a>\d{{1,2}}){sep}(?P<b>\d{{1,2}})"
        if self.date_kind == "era":
            year = r"(?P<era>[RH])(?P<y>\d{1,2})"
        elif self.date_kind == "buddhist":
            year = r"(?P<y>\d{4}) BE"
        else:
            year = rf"(?P<y>\d{{{self.year_digits}}})"
        return rf"(?P<a>\d{{1,2}}){sep}(?P<b>\d{{1,2}}){sep}{year}"

    def _time_pattern(self) -> str:
        sep = re.escape(self.time_sep)
        pattern = rf"(?P<H>\d{{1,2}}){sep}(?P<Mi>\d{{2}})"
        if self.seconds:
            pattern += rf"{sep}(?P<S>\d{{2}})"
        if self.twelve_hour:
            pattern += _M + _SP + "?" + _M + "(?P<ap>" + _AMPM + ")"
        return pattern


@dataclass(frozen=True)
class _Order:
    """How day/month order was settled, and by which line when the file did it."""

    day_first: bool | None
    decided_by: DecidedBy
    evidence_line: int = 0


class _Pending:
    """The message or system line being collected until the next header."""

    __slots__ = ("at", "author", "line_marked", "lines", "time")

    def __init__(
        self, at: datetime | None, time: TimeReading, author: str | None, text: str, line_marked: bool
    ) -> None:
        self.at = at
        self.time = time
        self.author = author
        self.lines = [text]
        #: iOS wrote an LRM before the ``[``: the line carries media or WhatsApp's own text.
        self.line_marked = line_marked


class _Chat:
    """Who speaks for the chat itself: iOS puts its notices under the chat's name.

    The names are the one in the export's file name, if any, and the author of the
    export's first line when iOS marked it and it is no message (every iOS export
    opens with the end-to-end notice, attributed to the chat: the group, or in a
    one-to-one chat the other person).
    """

    __slots__ = ("conversation", "names", "settled")

    def __init__(self, conversation: str, source_name: str) -> None:
        self.conversation = conversation
        self.names = {conversation} if conversation != source_name else set()
        self.settled = False


# --- public API -------------------------------------------------------------


def parse_text(stream: BinaryIO, hints: ParseHints) -> Iterator[Record]:
    """Read a WhatsApp ``.txt`` export; yield messages and events in file order.

    The layout pass runs now, so an unknown layout (:class:`ParseError`) or an
    undecidable day/month order (:class:`HeldForReview`) is raised before any
    record; invalid UTF-8, or a date that contradicts the day/month order the
    file decided, raises :class:`ParseError` while iterating, naming the line.
    A header whose time is not a time (``1/29/18, 23:59 PM``, ``2/30/18``) costs
    only its own message: it is undated, flagged ``undated``, its text kept.
    """
    layout, order = _layout_pass(stream, hints)
    stream.seek(0)
    return _record_pass(stream, hints, layout, order)


def looks_like_whatsapp(head: bytes) -> bool:
    """Whether the first bytes of a file read as a WhatsApp text export.

    True when the first non-blank line is a WhatsApp message header. The two
    bracketed year-first forms signal-export writes (``[2019-04-16 02:09:11]``
    and ``[2019-04-16, 02:09]``) are WhatsApp only when the head carries iOS's
    own marks (see :func:`_ios_marked`); without them they are left to the
    Signal parser. ``[2019-04-16 02:09]`` (no comma, no seconds) is no form
    signal-export writes, so it is WhatsApp by itself.
    """
    text = head[:_SNIFF_BYTES].decode("utf-8", errors="replace")
    lines = text.split("\n", 20)[:20]
    for index, line in enumerate(lines):
        clean = line.translate(_STRIP_MARKS).strip("\r")
        if not clean.strip():
            continue
        if _NO_YEAR.match(clean):
            return True
        layout = _detect_layout(clean)
        if layout is None:
            return False
        return not _signal_lookalike(layout) or _ios_marked(layout, lines[index:])
    return False


def conversation_name(source_name: str) -> str:
    """The chat name from an export's file name, e.g. ``WhatsApp Chat with Alice.txt``.

    Falls back to ``source_name`` itself when the name is not an export name.
    """
    base = source_name.replace("\\", "/").rsplit("/", 1)[-1]
    match = _CHAT_FILE_PREFIX.match(base)
    if match is None:
        return source_name
    name = base[match.end() :]
    stem, dot, ext = name.rpartition(".")
    if dot and ext.lower() in ("txt", "zip"):
        name = stem
    return name.strip() or source_name


# --- layout pass ------------------------------------------------------------------


def _layout_pass(stream: BinaryIO, hints: ParseHints) -> tuple[_Layout, _Order]:
    stream.seek(0)  # both passes read the whole export, whoever read from it before
    lines = text_lines(stream, MAX_LINE_BYTES)
    layout, first = _find_layout(lines)
    if layout.date_kind in ("ymd", "monthname"):
        return layout, _Order(None, "format")
    header = layout.header_regex()
    for lineno, line in itertools.chain((first,), lines):
        match = header.match(line)
        if match is None:
            continue
        a, b = int(match["a"]), int(match["b"])
        # A line with both fields above 12 is no date at all; the record pass names it.
        if a > 12 >= b:
            return layout, _Order(True, "file", lineno)
        if b > 12 >= a:
            return layout, _Order(False, "file", lineno)
    if hints.day_first is not None:
        return layout, _Order(hints.day_first, "locale")
    raise HeldForReview(
        "cannot tell day/month order: no date in the file has a field above 12"
        " and custodian has no locale", code="day_month_ambiguous"
    )


def _find_layout(lines: Iterator[tuple[int, str]]) -> tuple[_Layout, tuple[int, str]]:
    """The layout of the first header within the first lines, and that line."""
    for lineno, line in itertools.islice(lines, _DETECT_LINES):
        clean = line.translate(_STRIP_MARKS)
        if _NO_YEAR.match(clean):
            raise ParseError(
                f"line {lineno}: legacy WhatsApp layout without a year; "
                "its dates cannot be established without guessing", code="no_year"
            )
        layout = _detect_layout(clean)
        if layout is not None:
            return layout, (lineno, line)
    raise ParseError(
        f"not a WhatsApp chat export: no message header in the first {_DETECT_LINES} lines", code="not_this_format"
    )


def _detect_layout(clean: str) -> _Layout | None:
    """Name the layout of one mark-free line, or None if it is not a header."""
    match = _DETECT_DATE_FIRST.match(clean)
    time_first = match is None
    if match is None:
        match = _DETECT_TIME_FIRST.match(clean)
        if match is None:
            return None
    groups = match.groupdict()
    frame = _frame(groups["open"], groups["close"])
    date_kind, year_digits = _date_kind(groups)
    if frame is None or date_kind is None:
        return None
    return _Layout(
        frame=frame,
        time_first=time_first,
        date_kind=date_kind,
        date_sep=groups["ds"] or " ",
        year_digits=year_digits,
        joiner=groups.get("join") or ", ",
        time_sep=groups["ts"],
        seconds=groups["s"] is not None,
        twelve_hour=groups["ap"] is not None,
    )


def _frame(opening: str | None, close: str) -> Frame | None:
    if opening:
        return "ios" if close == "]" else None
    if close == " - ":
        return "android"
    return "ios-legacy" if close == ": " else None


def _date_kind(groups: dict[str, str | None]) -> tuple[DateKind | None, int]:
    """The date kind and year width of a detection match (None: not a date)."""
    if groups.get("my") is not None:
        return "monthname", 4
    first, year = groups["a"] or "", groups["c"] or ""
    if len(first) == 4:
        return ("ymd", 4) if year.isdecimal() and len(year) <= 2 else (None, 0)
    if len(first) > 2 or not year:
        return None, 0
    if year.endswith(" BE"):
        return "buddhist", 4
    if year[0] in _ERA_BASE:
        return "era", 0
    return ("ambiguous", len(year)) if len(year) in (2, 4) else (None, 0)


def _signal_lookalike(layout: _Layout) -> bool:
    """signal-export's chat.md header forms: seconds and no comma, or a comma and no seconds."""
    return layout.frame == "ios" and layout.date_kind == "ymd" and layout.seconds == (layout.joiner == " ")


def _ios_marked(layout: _Layout, lines: list[str]) -> bool:
    """Whether a header line in ``lines`` carries the LRM iOS WhatsApp writes and signal-export never does.

    iOS puts a U+200E before the ``[`` of a line that carries media or system text, and at
    the start of the body of its system notices (every export opens with the end-to-end
    notice, so marked). A signal-export body that itself starts with an LRM would be read
    as WhatsApp; signal-export writes none of its own.
    """
    header = layout.header_regex()
    for line in lines:
        line = line.lstrip("\ufeff").rstrip("\r")
        match = header.match(line)
        if match is None:
            continue
        if line.startswith("\u200e"):
            return True
        _, sep, body = line[match.end() :].partition(": ")
        if sep and body.startswith("\u200e"):
            return True
    return False


# --- record pass ------------------------------------------------------------------


class _Clock:
    """Turns a header match into an aware datetime and its TimeReading."""

    def __init__(self, layout: _Layout, order: _Order, hints: ParseHints) -> None:
        self.layout = layout
        self.order = order
        self.zone = hints.timezone
        self.zone_name = hints.zone_name
        self.name = layout.name(order.day_first)
        self.last_raw = ""
        self.last: tuple[datetime, TimeReading] | None = None

    def read(self, match: re.Match[str], lineno: int) -> tuple[datetime | None, TimeReading]:
        """The header's time, or None with the text kept when it is not a time (never guessed).

        Raises ParseError only when the line contradicts the day/month order the
        file itself decided: that doubt is about every line, not this one.
        """
        raw: str = match["raw"]
        # Consecutive messages often share a minute: reuse the reading.
        if raw == self.last_raw and self.last is not None:
            return self.last
        year, month, day = self._date(match)
        hour, minute = int(match["H"]), int(match["Mi"])
        second = int(match["S"]) if self.layout.seconds else 0
        if self.layout.twelve_hour:
            if hour > 12:
                # "23:59 PM": which half the phone meant cannot be told from the line.
                return None, self._unread(raw, "hour above 12 on a 12-hour clock")
            hour = hour % 12 + (12 if match["ap"][0] in _PM_FIRST_CHARS else 0)
        try:
            # Wall time in the custodian's zone with fold=0: a time that does not
            # exist (spring-forward gap) or occurs twice (fall-back) is read with
            # the offset in force before the transition, as zoneinfo does.
            at = datetime(year, month, day, hour, minute, second, tzinfo=self.zone)
        except ValueError:
            if self._contradicts_order(month, day):
                raise ParseError(f"line {lineno}: {raw!r} is not a valid {self._reading()}", code="bad_date") from None
            return None, self._unread(raw, "not a calendar date and time")
        reading = TimeReading(
            raw=raw,
            layout=self.name,
            day_first=self.order.day_first,
            decided_by=self.order.decided_by,
            zone=self.zone_name,
        )
        self.last_raw, self.last = raw, (at, reading)
        return at, reading

    def _unread(self, raw: str, why: str) -> TimeReading:
        # The reason is twentyday's words (the index holds it in clear); the text is sealed.
        return TimeReading(
            raw=raw,
            layout=f"{self.name} (not read: {why})",
            day_first=self.order.day_first,
            decided_by=self.order.decided_by,
            zone=self.zone_name,
        )

    def _contradicts_order(self, month: int, day: int) -> bool:
        """A month above 12 whose day would be one: the file's other order, not one bad line."""
        return self.order.decided_by == "file" and month > 12 >= day >= 1

    def _date(self, match: re.Match[str]) -> tuple[int, int, int]:
        kind = self.layout.date_kind
        year = int(match["y"])
        if kind == "monthname":
            return year, _MONTH_NUMBER[match["mon"]], int(match["b"])
        if kind == "ymd":
            return year, int(match["a"]), int(match["b"])
        if kind == "buddhist":
            year -= _BUDDHIST_OFFSET
        elif kind == "era":
            year += _ERA_BASE[match["era"]]
        elif self.layout.year_digits == 2:
            year += 2000  # WhatsApp dates from 2009: two-digit years are 20yy
        a, b = int(match["a"]), int(match["b"])
        return (year, b, a) if self.order.day_first else (year, a, b)

    def _reading(self) -> str:
        text = f"date and time read as {self.name}"
        if self.order.evidence_line:
            text += f" (order decided from line {self.order.evidence_line})"
        return text


def _record_pass(
    stream: BinaryIO, hints: ParseHints, layout: _Layout, order: _Order
) -> Iterator[Record]:
    header = layout.header_regex()
    clock = _Clock(layout, order, hints)
    chat = _Chat(conversation_name(hints.source_name), hints.source_name)
    ios = layout.frame != "android"
    pending: _Pending | None = None
    preamble: list[str] = []
    for lineno, line in text_lines(stream, MAX_LINE_BYTES):
        match = header.match(line)
        if match is None:
            if pending is not None:
                pending.lines.append(line)
            elif line.strip(_TRIM):
                preamble.append(line)
            continue
        if pending is not None:
            yield from _finish(pending, chat, ios)
        elif preamble:
            yield _preamble_event(chat.conversation, preamble)
        at, reading = clock.read(match, lineno)
        pending = _start(at, reading, line[match.end() :], line.startswith("\u200e"))
    if pending is not None:
        yield from _finish(pending, chat, ios)


def _start(at: datetime | None, reading: TimeReading, rest: str, line_marked: bool) -> _Pending:
    # Authors may contain ": " only in theory; WhatsApp itself splits on the first.
    author, sep, text = rest.partition(": ")
    if not sep:
        return _Pending(at, reading, None, rest, line_marked)
    return _Pending(at, reading, author, text, line_marked)


def _preamble_event(conversation: str, lines: Iterable[str]) -> ParsedEvent:
    # Text before the first header is kept, not dropped: it has no time of its own.
    return ParsedEvent(
        kind="system",
        conversation=conversation,
        at=None,
        detail="text before the first message header:\n" + "\n".join(lines),
    )


def _finish(pending: _Pending, chat: _Chat, ios: bool) -> list[Record]:
    lines = pending.lines
    text = lines[0] if len(lines) == 1 else "\n".join(lines)
    conversation = chat.conversation
    if pending.author is None:
        chat.settled = True
        return [_system_event(conversation, pending.at, text)]
    sender = _clean_author(pending.author)
    marked = text.startswith(("\u200e", "\u200f"))
    body, edited = _strip_edited(text.lstrip(_MARK_CHARS) if marked else text)
    flags, attachments, omitted = _classify(body, marked)
    # iOS marks (LRM) a line whose body is media, a placeholder or its own text, in
    # every language. Marked and understood: a record above. Marked, not understood:
    # WhatsApp's own notice (system) when under the chat's name or about its sender,
    # else a participant's message this parser cannot read: a record, flagged.
    if not ios and not flags and body == "null":
        # Android writes "null" for a view-once photo or video it does not export.
        flags, attachments, omitted = ("media_omitted",), (ParsedAttachment(name=_VIEW_ONCE_KIND),), _VIEW_ONCE_KIND
    # An edited marker is WhatsApp's own text too: iOS marks the line for it.
    if ios and (marked or pending.line_marked) and not flags and not edited and not _participant_content(body):
        if not chat.settled:
            chat.names.add(sender)
        chat.settled = True
        # A notice about a participant names them first ("‎Anna created group …",
        # "‎Anna left"); a placeholder never starts with its sender's name.
        if sender in chat.names or (sender and body.startswith(sender + " ")):
            return [_system_event(conversation, pending.at, f"{sender}: {body}")]
        flags = ("unrecognised_line",)
    chat.settled = True
    message = ParsedMessage(
        platform="whatsapp",
        conversation=conversation,
        sender=sender,
        created_at=pending.at,
        time=pending.time,
        body=body,
        attachments=attachments,
        edited=edited,
        flags=flags if pending.at is not None else (*flags, "undated"),
    )
    if not flags:
        return [message]
    return [message, *_alerts(message, omitted)]


def _alerts(message: ParsedMessage, omitted: str | None) -> list[ParsedEvent]:
    """The events a flagged message raises: deleted placeholder, omitted media."""
    who = message.sender or "(no name)"
    events: list[ParsedEvent] = []
    if "deleted" in message.flags:
        detail = f"message from {who} shows as deleted: {message.body.strip(_TRIM)}"
        events.append(_event("deleted_message", message, detail))
    if omitted is not None:
        detail = f"{omitted} omitted from the export of a message from {who}"
        events.append(_event("incomplete_copy", message, detail))
    return events


def _event(kind: EventKind, message: ParsedMessage, detail: str) -> ParsedEvent:
    return ParsedEvent(
        kind=kind, conversation=message.conversation, at=message.created_at, detail=detail
    )


def _system_event(conversation: str, at: datetime | None, text: str) -> ParsedEvent:
    detail = text.strip(_TRIM)
    lowered = detail.lower()
    turned_on = any(p in lowered for p in _DISAPPEARING) and not any(
        p in lowered for p in _DISAPPEARING_OFF
    )
    return ParsedEvent(
        kind="disappearing_messages" if turned_on else "system",
        conversation=conversation,
        at=at,
        detail=detail,
    )


@functools.lru_cache(maxsize=4096)  # a chat has few authors; each is cleaned once
def _clean_author(raw: str) -> str:
    """Author as shown, without bidi marks, NBSPs or the ``~`` of non-contacts."""
    name = (raw if raw.isascii() else raw.translate(_AUTHOR_TABLE)).strip()
    if name.startswith("~"):
        name = name[1:].lstrip()
    return name


def _strip_edited(body: str) -> tuple[str, bool]:
    """The body without a final edited marker in any language known, and whether it had one."""
    tail = body.rstrip(_TRIM)
    # The hot path: most bodies do not end in ">"; one rfind and one fold for the rest.
    if not tail.endswith(">"):
        return body, False
    start = tail.rfind("<")
    if start < 0 or _fold(tail[start:]) not in _EDITED_FOLDED:
        return body, False
    return tail[:start].rstrip(_TRIM), True


def _participant_content(body: str) -> bool:
    """A marked iOS body that is a participant's own content: a location, live location or poll."""
    first = body.partition("\n")[0]
    return bool(_LOCATION.match(first) or _POLL.match(first)) or _fold(first) in _LIVE_LOCATION


def _classify(
    body: str, marked: bool
) -> tuple[tuple[str, ...], tuple[ParsedAttachment, ...], str | None]:
    """Flags, attachments and the omitted media kind (if any) of a message body."""
    first = body.partition("\n")[0].rstrip(_TRIM)
    # One dict lookup for every message (the hot path); the lenient lookups only for
    # bodies iOS marked or that start as Android's "<Media omitted>" does.
    kind = _PLACEHOLDERS.get(first)
    if kind is None and (marked or first.startswith("<") or "\u200e" in first):
        kind = _placeholder_kind(first)
    if kind == _DELETED_KIND:
        # The whole body, not a first line a participant went on from.
        if "\n" not in body.strip(_TRIM):
            return ("deleted",), (), None
    elif kind is not None:
        return ("media_omitted",), (ParsedAttachment(name=kind),), kind
    names = _referenced_files(first, body)
    if names:
        files = tuple(ParsedAttachment(name=n, content_type=_content_type(n)) for n in names)
        return ("media_referenced",), files, None
    return (), (), None


def _placeholder_kind(first: str) -> str | None:
    kind = _FOLDED_PLACEHOLDERS.get(_fold(first))
    if kind is not None:
        return kind
    # iOS writes a document's placeholder after its name, behind an LRM:
    # "Resume.pdf • ‎2 pages ‎document omitted". Only a marked tail counts.
    cut = first.rfind("\u200e")
    if cut > 0:
        kind = _FOLDED_PLACEHOLDERS.get(_fold(first[cut + 1 :]))
        if kind != _DELETED_KIND:
            return kind
    return None


def _referenced_files(first: str, body: str) -> list[str]:
    names: list[str] = []
    if first.endswith(")"):
        match = _FILE_ATTACHED.fullmatch(first)
        if match is not None:
            names.append(match["name"].strip(_TRIM))
    if "<" not in body:
        return names
    tags = [m["name"].translate(_STRIP_MARKS).strip() for m in _ATTACHED_TAG.finditer(body)]
    if tags:
        names.extend(tags)
    elif first.endswith("attached>"):
        match = _OLD_ATTACHED.fullmatch(first)
        if match is not None:
            names.append(match["name"].strip(_TRIM))
    return names




# --- the export as a whole: a .txt, or a zip with the chat and its media ----------------

NAME = "whatsapp"


def _chat_member(source: ExportSource) -> str | None:
    members = source.members()
    if len(members) == 1:
        return members[0]
    texts = [m for m in members if m.lower().endswith(".txt") and "/" not in m]
    if "_chat.txt" in texts:
        return "_chat.txt"
    return texts[0] if len(texts) == 1 else None


def detect(source: ExportSource, head: bytes) -> bool:
    member = _chat_member(source)
    if member is None:
        return False
    if len(source.members()) > 1:
        head = read_head(source, member)
    return looks_like_whatsapp(head)


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Parse the chat and attach the media files the zip carries to their messages."""
    member = _chat_member(source)
    if member is None:
        raise ParseError(f"{source.name}: no single chat text file in the export", code="not_this_format")
    media = {m.rsplit("/", 1)[-1]: m for m in source.members() if m != member}
    named = ParseHints(hints.timezone, hints.zone_name, hints.day_first, hints.self_names, source.name)
    stream = open_rewindable(source, member)
    try:
        for record in parse_text(stream, named):
            if isinstance(record, ParsedMessage) and "media_referenced" in record.flags:
                yield from _with_media(source, media, record)
            else:
                yield record
    finally:
        stream.close()


def _with_media(
    source: ExportSource, media: dict[str, str], message: ParsedMessage
) -> Iterator[Record]:
    attachments = []
    missing = []
    for attachment in message.attachments:
        member = media.get(attachment.name)
        # Larger media stay in the raw capture (sealed) but are not copied into an attachment.
        data = None if member is None else read_member(source, member, source.limits.media_bytes)
        if data is not None:
            attachments.append(ParsedAttachment(attachment.name, attachment.content_type, data))
        else:
            attachments.append(attachment)
            missing.append(attachment.name)
    flags = message.flags + (("media_omitted",) if missing else ())
    yield replace(message, attachments=tuple(attachments), flags=flags)
    # Exported "with media" but the file is not here (a .txt dropped without its zip,
    # or a zip that lost it): the copy is not complete.
    if missing:
        yield ParsedEvent("incomplete_copy", message.conversation, message.created_at,
                          f"{len(missing)} attached file(s) named in the chat are not in the export")
