"""Read the dates mail clients write into forwarded and quoted header blocks.

Pure: no I/O, no clock. A client writes the original's date in the language of
the person who forwarded it ("mer. 27 oct. 2021 à 09:31", "Mi., 27. Okt. 2021
um 09:31 Uhr", "02/10/2023 4:52 PM EST"), so this module reads month,
weekday and AM/PM words of 45 locales from CLDR (``calendar_words``: genitive and
abbreviated forms, a word's meaning settled by the language of the other words),
CJK dates ("2023年1月5日 14時03分", "2023년 1월 5일"), "14h03", the little words around them ("à",
"um ... Uhr", "a las", "alle ore", "om"), 12- and 24-hour clocks and the zone
forms clients use ("+0200", "GMT+1", "UTC+3", "(UTC+01:00)", "CEST", "OESZ").

It never guesses. Every word of the text must be understood, a numeric date
whose day and month could be swapped is read only when a field above 12 or
the custodian's locale settles the order, an unknown or ambiguous zone
name (IST, BST, AST) leaves the date unread rather than read in the wrong zone,
and so does a weekday that contradicts the date ("Monday, 5 March 2021", a Friday).
A dotted time ("klo 14.25.08", "12.46") is read after a clock word or a complete
date; Vietnamese two-word months and weekdays ("tháng 10", "Thứ Tư") and Hungarian
year-first numeric dates ("2021. 10. 27.") are read as CLDR writes them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal

from twentyday.parsers.mail.calendar_words import (
    CLIENT_LOCALES,
    WORD_MARKS,
    calendar_words,
    fold,
    phrase_key,
    word_key,
)
from twentyday.records import DecidedBy

__all__ = ["MAX_DATE_CHARS", "DateReading", "fold", "read_mail_date", "split_leading_date"]

#: A longer text is not a date a client wrote; refusing it bounds the work.
MAX_DATE_CHARS = 200

#: Years outside this range are typos or junk, not the date of an e-mail.
YEARS = range(1970, 2200)

#: Two-digit years as RFC 5322 section 4.3 reads them: 50-99 are 1950-1999, 00-49 are 2000-2049.
#: (POSIX ``%y`` would make "56" 2056, decades after any forward carrying the date.)
TWO_DIGIT_YEAR_PIVOT = 50

#: After one of these a dotted "9.31" is a time of day, not a date fragment.
CLOCK_WORDS = frozenset(
    {"kl", "klo", "kello", "klockan", "o", "godz", "um", "alle", "ore", "v", "в", "u", "ob", "kell", "plkst"}
)

#: Zone names with one meaning in mail (RFC 5322 section 4.3 for the US ones), by offset
#: in minutes east of UTC. Names with several meanings are left out on purpose, so a date
#: in such a zone stays unread: IST, BST, AST, and CST (US Central or China Standard Time;
#: RFC 5322 gives "CST" one meaning only in Date headers, which mail.message reads, not in the
#: text a client writes into a forward).
ZONE_NAMES_BY_OFFSET: Mapping[int, str] = {
    0: "utc gmt ut z wet wez",
    60: "west wesz cet mez",
    120: "cest mesz eet oez",
    180: "eest oesz msk",
    540: "jst kst",
    600: "aest",
    660: "aedt",
    720: "nzst",
    780: "nzdt",
    -240: "edt",
    -300: "est cdt",
    -360: "mdt",
    -420: "mst pdt",
    -480: "pst akdt",
    -540: "akst",
    -600: "hst",
}

#: Zone names in other languages, by offset. CLDR's short metazone names: German (MEZ..), Czech
#: (SEČ, SELČ), Canadian French (HNE "heure normale de l'Est" .. HAA); and the French forms of
#: the European zones in common use (HNEC "heure normale d'Europe centrale", HAEC "heure avancée").
LOCAL_ZONE_NAMES_BY_OFFSET: Mapping[int, str] = {
    0: "hneo",
    60: "sec hnec haeo",
    120: "selc haec hnee",
    180: "haee haa",
    -240: "hae hna",
    -300: "hne hac",
    -360: "hnc har",
    -420: "hnr hap",
    -480: "hnp",
}

ZONE_ABBREVIATIONS: Mapping[str, int] = {
    name: offset
    for table in (ZONE_NAMES_BY_OFFSET, LOCAL_ZONE_NAMES_BY_OFFSET)
    for offset, names in table.items()
    for name in names.split()
}

TokenKind = Literal["numdate", "time", "gmtoff", "offset", "dotpair", "ampm", "number", "word", "punct", "other"]

# One alternative per token kind, each a single run of one character class: the
# scan is linear whatever the input. Numeric dates come before offsets so that
# "2021-10-28" is not read as an offset "-10".
_TOKEN_RE = re.compile(
    r"""
    (?P<numdate>\d{4}\.[ \u00a0]\d{1,2}\.[ \u00a0]\d{1,2}\.?  # Hungarian "2021. 10. 27."
      | \d{1,4}(?:[./-]|\.[ \u00a0])\d{1,2}(?:[./-]|\.[ \u00a0])\d{4}|\d{1,4}[./-]\d{1,2}[./-]\d{1,4})(?!\d)
  | (?P<time>\d{1,2}(?::\d{2}(?::\d{2})?|h\d{2}))(?!\d)
  | (?P<gmtoff>(?:gmt|utc)[ ]?[+\-−]\d{1,2}(?::?\d{2})?)(?!\d)
  | (?P<offset>[+\-−]\d{2}:?\d{2})(?!\d)
  | (?P<dotpair>\d{1,2}\.\d{2})(?![\d.])
  | (?P<ampm>[ap]\.?[ \u00a0\u202f]?m\.?)(?![^\W\d_])
  | (?P<number>\d+)
  | (?P<word>(?:[^\W\d_]|["""
    + WORD_MARKS
    + r"""])+(?:\.(?:[^\W\d_]|["""
    + WORD_MARKS
    + r"""])+)*)
  | (?P<punct>[,.()«»'"\-–])
  | (?P<other>\S)
    """,
    re.IGNORECASE | re.VERBOSE,
)

_PAREN_UTC_RE = re.compile(r"\((?:utc|gmt)[+\-−]\d{1,2}(?::?\d{2})?\)", re.IGNORECASE)
_CJK_DATE_RE = re.compile(r"(\d{4})\s*[年년]\s*(\d{1,2})\s*[月월]\s*(\d{1,2})\s*[日일]")
_CJK_TIME_RE = re.compile(r"(\d{1,2})\s*[時时시]\s*(\d{1,2})\s*[分분]")
#: Two words side by side, or a word and a number ("Thứ Tư", "tháng 10"): looked up as one.
#: A lookahead, so that every pair is tried, overlapping ones too.
_PAIR_RE = re.compile(r"(?=(?<![^\W\d_])([^\W\d_]+[ \u00a0]+(?:[^\W\d_]+|\d{1,2}))(?![^\W\d_]|\d))")
#: The English names of ISO weekdays 1..7, for the problem a contradicting weekday gives.
_WEEKDAY_NAMES = ("", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
#: "14.25.08": hours, minutes and seconds as Danish, Norwegian and Finnish clients write them.
_DOTTED_TIME_RE = re.compile(r"\d{1,2}\.\d{2}\.\d{2}")


@dataclass(frozen=True)
class _Token:
    kind: TokenKind
    text: str
    end: int


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind is not None:
            found.append(_Token(_as_kind(kind), match.group(kind), match.end()))
    return found


def _as_kind(name: str) -> TokenKind:
    kinds: dict[str, TokenKind] = {
        "numdate": "numdate",
        "time": "time",
        "gmtoff": "gmtoff",
        "offset": "offset",
        "dotpair": "dotpair",
        "ampm": "ampm",
        "number": "number",
        "word": "word",
        "punct": "punct",
    }
    return kinds.get(name, "other")


@dataclass(frozen=True)
class DateReading:
    """What could be read from a date text.

    ``at`` is aware, or None with ``problem`` saying why. ``style`` names the
    language of the words ("fr") or the numeric order ("dd/mm/yyyy");
    ``decided_by`` is "locale" when the custodian's day/month order was needed
    (the larger risk, so it is the one recorded), else "custodian_zone" when no
    zone was written, else "format". ``zone`` is the written offset ("+03:00",
    "UTC") or the custodian's zone name; ``zone_written`` tells them apart.
    """

    at: datetime | None
    style: str = ""
    day_first: bool | None = None
    decided_by: DecidedBy = "format"
    zone: str = ""
    zone_written: bool = False
    problem: str = ""


@dataclass
class _Fields:
    """Parts collected from the tokens before they are checked and combined."""

    year: int | None = None
    day: int | None = None
    month: int | None = None
    maybe_month: list[int] = field(default_factory=list)
    numdate: str = ""
    time: str = ""
    pm: bool | None = None
    offset: int | None = None
    named_offset: int | None = None
    words: list[str] = field(default_factory=list)
    weekdays: list[frozenset[int]] = field(default_factory=list)
    langs: frozenset[str] = frozenset()
    cjk: bool = False


def read_mail_date(text: str, *, default_zone: tzinfo, zone_name: str, day_first: bool | None = None) -> DateReading:
    """Read one date as a mail client wrote it; never raises, never guesses."""
    if len(text) > MAX_DATE_CHARS:
        return DateReading(None, problem="date text too long")
    if not text.strip():
        return DateReading(None, problem="no date")
    # Outlook writes "(UTC+01:00) Amsterdam, Berlin, ...": the city list says nothing more.
    paren = _PAREN_UTC_RE.search(text)
    cleaned = unicodedata.normalize("NFC", text[: paren.end()] if paren else text)
    # "2023年1月5日 14時03分" (Chinese, Japanese), "2023년 1월 5일" (Korean): year, month, day
    # marked by their signs, read as the numeric date they are.
    numeric, cjk_dates = _CJK_DATE_RE.subn(r" \1-\2-\3 ", cleaned)
    numeric = _CJK_TIME_RE.sub(r" \1:\2 ", numeric)
    # Gmail's Portuguese (Portugal) writes "27/10/2021 à(s) 09:31": "at (the) hour(s)".
    numeric = numeric.replace("à(s)", "às")
    numeric, phrases = _take_phrases(numeric)
    fields_or_problem = _collect(_tokens(numeric))
    if isinstance(fields_or_problem, str):
        return DateReading(None, problem=fields_or_problem)
    fields_or_problem.words[:0] = phrases
    fields_or_problem.cjk = cjk_dates > 0
    problem = _resolve_words(fields_or_problem)
    if problem:
        return DateReading(None, problem=problem)
    return _combine(fields_or_problem, default_zone, zone_name, day_first)


def _take_phrases(text: str) -> tuple[str, list[str]]:
    """Blank out the two-word months and weekdays ("tháng 10", "Thứ Tư"); return their keys."""
    known = calendar_words().phrases
    if not known:
        return text, []
    found: list[str] = []
    pieces: list[str] = []
    done = 0
    for match in _PAIR_RE.finditer(text):
        start, end = match.start(1), match.end(1)
        key = phrase_key(match.group(1))
        if start < done or key not in known:
            continue
        found.append(key)
        pieces += [text[done:start], " "]
        done = end
    if not found:
        return text, []
    return "".join([*pieces, text[done:]]), found


def _collect(tokens: list[_Token]) -> _Fields | str:
    """Sort tokens into date parts; a string result names what could not be read."""
    parts = _Fields()
    previous = ""
    for token in tokens:
        problem = _take(parts, token, previous)
        if problem:
            return problem
        if token.kind != "punct":
            previous = fold(token.text)
    return parts


def _take(parts: _Fields, token: _Token, previous: str) -> str:
    kind, text = token.kind, token.text
    if kind == "punct":
        return ""
    if kind == "numdate" and _DOTTED_TIME_RE.fullmatch(text) and (previous in CLOCK_WORDS or _has_full_date(parts)):
        # "klo 14.25.08" (Finnish Apple Mail), "2021 09.26.50" (Danish Yahoo): after a clock
        # word, or once day, month and year are read, the dotted triple can only be a time.
        kind = "time"
    if kind == "numdate":
        if parts.numdate:
            return "two dates"
        parts.numdate = text
        return ""
    if kind == "time" or (kind == "dotpair" and (previous in CLOCK_WORDS or _has_full_date(parts))):
        if parts.time:
            return "two times"
        parts.time = text.replace(".", ":").replace("h", ":").replace("H", ":")
        return ""
    if kind == "ampm":
        if parts.pm is not None:
            return "two am/pm markers"
        parts.pm = fold(text).startswith("p")
        return ""
    if kind in ("gmtoff", "offset"):
        minutes = _offset_minutes(text)
        if minutes is None:
            return f"unreadable zone {text!r}"
        if parts.offset is None:
            parts.offset = minutes
        return ""
    if kind == "number":
        return _take_number(parts, text)
    if kind == "word":
        return _take_word(parts, text)
    return f"unexpected {text!r}"


def _has_full_date(parts: _Fields) -> bool:
    """A day and a year are read (the month is a word, or the numeric date holds all three)."""
    return bool(parts.numdate) or (parts.year is not None and parts.day is not None and bool(parts.words))


def _take_number(parts: _Fields, text: str) -> str:
    if len(text) == 4:
        if parts.year is not None:
            return "two years"
        parts.year = int(text)
        return ""
    if len(text) <= 2:
        if parts.day is not None:
            return "two day numbers"
        parts.day = int(text)
        return ""
    return f"unexpected number {text!r}"


def _take_word(parts: _Fields, text: str) -> str:
    key = word_key(text)
    # A zone is written in capitals ("CET"); "Čet" (Croatian Thursday) folds to the same key.
    is_zone = key in ZONE_ABBREVIATIONS and (text.isupper() or not calendar_words().knows(key))
    if not is_zone and calendar_words().knows(key):
        parts.words.append(key)  # its meaning may hang on the language: decided with all the words
        return ""
    if is_zone:
        if parts.named_offset is None:
            parts.named_offset = ZONE_ABBREVIATIONS[key]
        return ""
    return f"unknown word {text!r}"


def _meanings(key: str) -> list[tuple[str, int, frozenset[str]]]:
    """(role, value, locales) of a word: a month, a weekday, am (0) / pm (1), or a filler."""
    words = calendar_words()
    found = [("month", month, locales) for month, locales in words.months.get(key, {}).items()]
    found += [("weekday", position, locales) for position, locales in words.weekdays.get(key, {}).items()]
    found += [(role, value, locales) for (role, value), locales in words.phrases.get(key, {}).items()]
    found += [("period", int(is_pm), locales) for is_pm, locales in words.day_periods.get(key, {}).items()]
    if key in words.fillers:
        found.append(("filler", 0, words.fillers[key]))
    return found


def _resolve_words(parts: _Fields) -> str:
    """Give each localised word its one meaning in the languages all the words share.

    A word's meaning must not depend on a language the text leaves open: "lis" is
    November in Polish and October in Croatian, "de" a filler in Spanish and AM in
    Hungarian. Only a month that is also a weekday ("mar": March, or mardi/martes) is
    left for ``_calendar_day`` to settle from the other parts.
    """
    meanings = [_meanings(key) for key in parts.words]
    shared: frozenset[str] | None = None
    for options in meanings:
        locales = frozenset().union(*(option[2] for option in options))
        shared = locales if shared is None else shared & locales
    parts.langs = shared or frozenset()
    for key, options in zip(parts.words, meanings, strict=True):
        if parts.langs:
            options = [option for option in options if option[2] & parts.langs]
        valued = {(role, value) for role, value, _ in options if role in ("month", "period")}
        valueless = {role for role, _, _ in options if role not in ("month", "period")}
        if not valued:
            weekdays = frozenset(value for role, value, _ in options if role == "weekday")
            if weekdays:
                parts.weekdays.append(weekdays)  # checked against the calendar day once it is known
            continue
        ambiguous = f"the word {key!r} means different things in the languages it could be"
        if len(valued) > 1:
            return ambiguous
        ((role, value),) = valued
        if valueless and (role != "month" or valueless != {"weekday"}):
            return ambiguous
        if role == "period":
            if parts.pm is not None:
                return "two am/pm markers"
            parts.pm = bool(value)
        elif valueless:
            parts.maybe_month.append(value)  # decided once all parts are seen
        elif parts.month is not None and parts.month != value:
            return "two months"
        else:
            parts.month = value
    return ""


def _offset_minutes(text: str) -> int | None:
    """Minutes east of UTC for "+0200", "-04:00", "GMT+1", "UTC+05:30"; None if absurd."""
    body = text.replace("−", "-").replace(" ", "").lower()
    for prefix in ("gmt", "utc"):
        body = body.removeprefix(prefix)
    sign = -1 if body.startswith("-") else 1
    digits = body[1:].replace(":", "")
    if len(digits) <= 2:
        hours, minutes = int(digits), 0
    else:
        hours, minutes = int(digits[:-2]), int(digits[-2:])
    if hours > 14 or minutes >= 60:
        return None
    return sign * (hours * 60 + minutes)


@dataclass(frozen=True)
class _Day:
    year: int
    month: int
    day: int
    style: str
    day_first: bool | None
    by_locale: bool


def _combine(parts: _Fields, default_zone: tzinfo, zone_name: str, day_first: bool | None) -> DateReading:
    day_or_problem = _calendar_day(parts, day_first)
    if isinstance(day_or_problem, str):
        return DateReading(None, problem=day_or_problem)
    clock = _clock(parts)
    if isinstance(clock, str):
        return DateReading(None, problem=clock)
    zone, zone_label, written = _zone(parts, default_zone, zone_name)
    day = day_or_problem
    if day.year not in YEARS:
        return DateReading(None, problem=f"implausible year {day.year}")
    try:
        moment = datetime(day.year, day.month, day.day, *clock, tzinfo=zone)
    except ValueError:
        return DateReading(None, problem="no such calendar date or time")
    actual = moment.isoweekday()
    if any(actual not in written_weekdays for written_weekdays in parts.weekdays):
        # "Monday, 5 March 2021" when 5 March 2021 is a Friday: one of the two is wrong, and
        # nothing says which.
        return DateReading(
            None, problem=f"the weekday written contradicts the date ({moment:%Y-%m-%d} is a {_WEEKDAY_NAMES[actual]})"
        )
    decided: DecidedBy = "locale" if day.by_locale else ("format" if written else "custodian_zone")
    return DateReading(moment, day.style, day.day_first, decided, zone_label, written)


def _calendar_day(parts: _Fields, day_first: bool | None) -> _Day | str:
    month = parts.month
    if month is None and len(parts.maybe_month) == 1:
        month = parts.maybe_month[0]
    elif len(parts.maybe_month) > 1 and month is None:
        return "two months"
    if parts.numdate:
        if month is not None or parts.day is not None or parts.year is not None:
            return "numeric date mixed with other date parts"
        if parts.cjk:
            return _cjk_day(parts)
        return _numeric_day(parts.numdate, day_first, _written_order(parts.langs), _language(parts))
    if month is None:
        return "no month"
    if parts.year is None:
        return "no year"
    if parts.day is None:
        return "no day"
    return _Day(parts.year, month, parts.day, _language(parts), None, False)


def _cjk_day(parts: _Fields) -> _Day | str:
    year, month, day = (int(piece) for piece in parts.numdate.split("-"))
    return _Day(year, month, day, f"{_language(parts)} y年m月d日", None, False)


def _written_order(langs: frozenset[str]) -> str:
    """ "dmy" or "mdy" when every language the words allow writes numeric dates that way, else ""."""
    orders = {calendar_words().order.get(lang, "") for lang in langs}
    return orders.pop() if len(orders) == 1 else ""


def _numeric_day(text: str, day_first: bool | None, written_order: str = "", language: str = "") -> _Day | str:
    """28/10/2021, 10/28/2021, 2021-10-28, 28.10.21, 27. 10. 2021: order from a field above 12,
    the language of the words around it ("st 5. 3. 2021 v 9:31" is Czech, day first), or the locale."""
    pieces = re.split(r"\.[ \u00a0]|[./-]", text.removesuffix("."))
    first, second, third = (int(piece) for piece in pieces)
    if len(pieces[0]) == 4:
        return _Day(first, second, third, "yyyy-mm-dd", None, False)
    if len(pieces[2]) not in (2, 4):
        return f"unreadable numeric date {text!r}"
    year = third if len(pieces[2]) == 4 else third + (1900 if third >= TWO_DIGIT_YEAR_PIVOT else 2000)
    if first == second:
        return _Day(year, first, second, "dd/mm/yyyy", None, False)
    if first > 12 >= second:
        # "25-03-04" is 25 March 2004, or 4 March 2025 written yy-mm-dd (Swedish, East Asian
        # clients); only a day-first locale says the year comes last, unless it cannot be a day.
        year_may_lead = len(pieces[2]) == 2 and 1 <= third <= 31
        if year_may_lead and not day_first:
            return f"year position of {text!r} undecidable without a day-first locale (dd-mm-yy or yy-mm-dd)"
        return _Day(year, second, first, "dd/mm/yyyy", True, year_may_lead)
    if second > 12 >= first:
        return _Day(year, first, second, "mm/dd/yyyy", False, False)
    if first > 12 and second > 12:
        return f"unreadable numeric date {text!r}"
    if written_order in ("dmy", "mdy"):
        day_is_first = written_order == "dmy"
        style = f"{language} " + ("dd/mm/yyyy" if day_is_first else "mm/dd/yyyy")
        day, month = (first, second) if day_is_first else (second, first)
        return _Day(year, month, day, style, day_is_first, False)
    if day_first is None:
        return f"day/month order of {text!r} undecidable without the custodian's locale"
    if day_first:
        return _Day(year, second, first, "dd/mm/yyyy", True, True)
    return _Day(year, first, second, "mm/dd/yyyy", False, True)


def _clock(parts: _Fields) -> tuple[int, int, int] | str:
    if not parts.time:
        if parts.pm is not None:
            return "am/pm without a time"
        return (0, 0, 0)
    numbers = [int(piece) for piece in parts.time.split(":")]
    hour, minute = numbers[0], numbers[1]
    second = numbers[2] if len(numbers) > 2 else 0
    if parts.pm is not None:
        if not 1 <= hour <= 12:
            return f"hour {hour} with am/pm"
        hour = hour % 12 + (12 if parts.pm else 0)
    if hour > 23 or minute > 59 or second > 59:
        return f"no such time {parts.time!r}"
    return (hour, minute, second)


def _zone(parts: _Fields, default_zone: tzinfo, zone_name: str) -> tuple[tzinfo, str, bool]:
    """The zone to read the wall time in, its label, and whether the text wrote it."""
    minutes = parts.offset if parts.offset is not None else parts.named_offset
    if minutes is None:
        return default_zone, zone_name, False
    if minutes == 0:
        return UTC, "UTC", True
    sign = "-" if minutes < 0 else "+"
    label = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return timezone(timedelta(minutes=minutes)), label, True


def _language(parts: _Fields) -> str:
    """The first language, in ``CLIENT_LOCALES`` order, that every localised word allows."""
    if not parts.words:
        return "numeric"
    return next((lang for lang in CLIENT_LOCALES if lang in parts.langs), "mixed")


def split_leading_date(text: str) -> tuple[str, str]:
    """Split "Wed, Oct 27, 2021 at 9:31 AM John Doe <...>" into the date and the rest.

    Reply headers ("On DATE, NAME wrote:") put a date and a name side by side,
    with or without a comma. The date is the longest run of date-like tokens
    at the start; filler and weekday words at its end go back to the name
    ("... 9:31, De Vries" keeps "De Vries"). A month word after the year, the
    time or another month, and a second am/pm marker, start the name: "Jan",
    "June", "May" and "Mar" are first names, "A. M." initials. One pass, no
    backtracking.
    """
    if len(text) > MAX_DATE_CHARS * 2:
        return "", text
    cut = 0
    seen: set[str] = set()
    for token in _tokens(text):
        role = _leading_role(token, seen)
        if role == "stop":
            break
        seen.add(role)
        if role != "filler":
            cut = token.end
    return text[:cut].strip(" ,"), text[cut:].strip(" ,")


def _leading_role(token: _Token, seen: set[str]) -> str:
    """How a token counts in a leading date: month, time, year, ampm, value, filler or stop."""
    kind = token.kind
    if kind == "numdate":
        return "stop" if "month" in seen else "month"
    if kind in ("time", "dotpair"):
        return "stop" if "time" in seen else "time"
    if kind == "ampm":
        return "stop" if "ampm" in seen else "ampm"
    if kind == "number":
        return "year" if len(token.text) == 4 else "value"
    if kind in ("gmtoff", "offset"):
        return "value"
    if kind == "punct":
        return "filler" if token.text in ",." else "stop"
    if kind != "word":
        return "stop"
    key = word_key(token.text)
    words = calendar_words()
    if key in ZONE_ABBREVIATIONS and token.text.isupper():
        return "value"
    if key in words.months:
        # Clients write the month before the year and the time; one after them is a name.
        if seen & {"month", "year", "time"}:
            return "stop"
        # "mar" is March or mardi/martes: read_mail_date decides once it has every word.
        return "filler" if key in words.weekdays else "month"
    if key in ZONE_ABBREVIATIONS:
        return "value"
    if key in words.day_periods:
        return "stop" if "ampm" in seen else "ampm"
    if key in words.weekdays or key in words.fillers:
        return "filler"
    return "stop"
