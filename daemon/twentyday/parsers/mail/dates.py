"""Read the dates mail clients write into forwarded and quoted header blocks.

Pure: no I/O, no clock. A client writes the original's date in the language of
the person who forwarded it ("mer. 27 oct. 2021 à 09:31", "Mi., 27. Okt. 2021
um 09:31 Uhr", "02/10/2023 4:52 PM EST"), so this module reads month and
weekday names in several languages, the little words around them ("à",
"um ... Uhr", "a las", "alle ore", "om"), 12- and 24-hour clocks and the zone
forms clients use ("+0200", "GMT+1", "UTC+3", "(UTC+01:00)", "CEST", "OESZ").

It never guesses. Every word of the text must be understood, a numeric date
whose day and month could be swapped is read only when a field above 12 or
the custodian's locale settles the order, and an unknown or ambiguous zone
name (IST, BST, AST) leaves the date unread rather than read in the wrong zone.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Literal

from twentyday.records import DecidedBy

__all__ = ["MAX_DATE_CHARS", "DateReading", "fold", "read_mail_date", "split_leading_date"]

#: A longer text is not a date a client wrote; refusing it bounds the work.
MAX_DATE_CHARS = 200

#: Years outside this range are typos or junk, not the date of an e-mail.
YEARS = range(1970, 2200)

#: Two-digit years as RFC 5322 section 4.3 reads them: 50-99 are 1950-1999, 00-49 are 2000-2049.
#: (POSIX ``%y`` would make "56" 2056, decades after any forward carrying the date.)
TWO_DIGIT_YEAR_PIVOT = 50

#: Languages in the order used to name a layout when a word fits several.
LANG_ORDER = ("en", "de", "fr", "es", "it", "nl", "pt", "ru", "da", "nb", "sv", "fi", "pl")

# --- Localised words (data) -------------------------------------------------------------
# Months and weekdays: "|" separates the entries in calendar order (January.., Monday..),
# spaces separate the spellings of one entry. Accents and case do not matter (see
# ``fold``); a trailing "." is never part of a word.

MONTH_NAMES: Mapping[str, str] = {
    "en": "january jan | february feb | march mar | april apr | may | june jun | july jul"
    " | august aug | september sep sept | october oct | november nov | december dec",
    "de": "januar jan jänner jän | februar feb feber | märz mär mrz | april apr | mai"
    " | juni jun | juli jul | august aug | september sep sept | oktober okt | november nov"
    " | dezember dez",
    "fr": "janvier janv jan | février févr fév | mars mar | avril avr | mai | juin"
    " | juillet juil | août | septembre sept | octobre oct | novembre nov | décembre déc",
    "es": "enero ene | febrero feb | marzo mar | abril abr | mayo may | junio jun | julio jul"
    " | agosto ago | septiembre setiembre sep sept set | octubre oct | noviembre nov"
    " | diciembre dic",
    "it": "gennaio gen | febbraio feb | marzo mar | aprile apr | maggio mag | giugno giu"
    " | luglio lug | agosto ago | settembre set | ottobre ott | novembre nov | dicembre dic",
    "nl": "januari jan | februari feb | maart mrt mar | april apr | mei | juni jun | juli jul"
    " | augustus aug | september sep sept | oktober okt | november nov | december dec",
    "pt": "janeiro jan | fevereiro fev | março mar | abril abr | maio mai | junho jun"
    " | julho jul | agosto ago | setembro set | outubro out | novembro nov | dezembro dez",
    "ru": "января январь янв | февраля февраль февр фев | марта март мар | апреля апрель апр"
    " | мая май | июня июнь июн | июля июль июл | августа август авг"
    " | сентября сентябрь сент сен | октября октябрь окт | ноября ноябрь нояб ноя"
    " | декабря декабрь дек",
    "da": "januar jan | februar feb | marts mar | april apr | maj | juni jun | juli jul"
    " | august aug | september sep sept | oktober okt | november nov | december dec",
    "nb": "januar jan | februar feb | mars mar | april apr | mai | juni jun | juli jul"
    " | august aug | september sep | oktober okt | november nov | desember des",
    "sv": "januari jan | februari feb | mars mar | april apr | maj | juni jun | juli jul"
    " | augusti aug | september sep | oktober okt | november nov | december dec",
    "fi": "tammikuuta tammikuu tammik | helmikuuta helmikuu helmik"
    " | maaliskuuta maaliskuu maalisk | huhtikuuta huhtikuu huhtik | toukokuuta toukokuu toukok"
    " | kesäkuuta kesäkuu kesäk | heinäkuuta heinäkuu heinäk | elokuuta elokuu elok"
    " | syyskuuta syyskuu syysk | lokakuuta lokakuu lokak | marraskuuta marraskuu marrask"
    " | joulukuuta joulukuu jouluk",
    "pl": "stycznia styczeń sty | lutego luty lut | marca marzec | kwietnia kwiecień kwi"
    " | maja maj | czerwca czerwiec cze | lipca lipiec lip | sierpnia sierpień sie"
    " | września wrzesień wrz | października październik paź | listopada listopad lis"
    " | grudnia grudzień gru",
}

WEEKDAY_NAMES: Mapping[str, str] = {
    "en": "monday mon | tuesday tue tues | wednesday wed | thursday thu thur thurs"
    " | friday fri | saturday sat | sunday sun",
    "de": "montag mo | dienstag di | mittwoch mi | donnerstag do | freitag fr | samstag sonnabend sa | sonntag so",
    "fr": "lundi lun | mardi mar | mercredi mer | jeudi jeu | vendredi ven | samedi sam | dimanche dim",
    "es": "lunes lun | martes mar | miércoles mié | jueves jue | viernes vie | sábado sáb | domingo dom",
    "it": "lunedì lun | martedì mar | mercoledì mer | giovedì gio | venerdì ven | sabato sab | domenica dom",
    "nl": "maandag ma | dinsdag di | woensdag wo | donderdag do | vrijdag vr | zaterdag za | zondag zo",
    # "segunda-feira" is read as "segunda" "-" "feira"; "feira" is a filler below.
    "pt": "segunda seg | terça ter | quarta qua | quinta qui | sexta sex | sábado sáb | domingo dom",
    "ru": "понедельник пн | вторник вт | среда ср | четверг чт | пятница пт | суббота сб | воскресенье вс",
    "da": "mandag man | tirsdag tir | onsdag ons | torsdag tor | fredag fre | lørdag lør | søndag søn",
    "nb": "mandag man | tirsdag tir | onsdag ons | torsdag tor | fredag fre | lørdag lør | søndag søn",
    "sv": "måndag mån | tisdag tis | onsdag ons | torsdag tors | fredag fre | lördag lör | söndag sön",
    "fi": "maanantai maanantaina ma | tiistai tiistaina ti | keskiviikko keskiviikkona ke"
    " | torstai torstaina to | perjantai perjantaina pe | lauantai lauantaina la"
    " | sunnuntai sunnuntaina su",
    "pl": "poniedziałek pon | wtorek wt | środa śr | czwartek czw | piątek pt | sobota sob | niedziela niedz nd",
}

#: Words that join the parts of a date and carry no value ("at", "à", "um ... Uhr").
FILLER_WORDS: Mapping[str, str] = {
    "en": "at on the of st nd rd th",
    "de": "um uhr den",  # "am" is read as the 12-hour marker
    "fr": "à le er h",
    "es": "a las de del el",
    "it": "alle ore il giorno del di",
    "nl": "om",
    "pt": "às as de feira",
    "ru": "в г года",
    "da": "kl den",
    "nb": "kl den",
    "sv": "kl klockan den",
    "fi": "klo kello",
    "pl": "o godz dnia",
}

#: After one of these a dotted "9.31" is a time of day, not a date fragment.
CLOCK_WORDS = frozenset({"kl", "klo", "kello", "klockan", "o", "godz", "um", "alle", "ore"})

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

ZONE_ABBREVIATIONS: Mapping[str, int] = {
    name: offset for offset, names in ZONE_NAMES_BY_OFFSET.items() for name in names.split()
}

TokenKind = Literal["numdate", "time", "gmtoff", "offset", "dotpair", "ampm", "number", "word", "punct", "other"]

# One alternative per token kind, each a single run of one character class: the
# scan is linear whatever the input. Numeric dates come before offsets so that
# "2021-10-28" is not read as an offset "-10".
_TOKEN_RE = re.compile(
    r"""
    (?P<numdate>\d{1,4}[./-]\d{1,2}[./-]\d{1,4})(?!\d)
  | (?P<time>\d{1,2}:\d{2}(?::\d{2})?)(?!\d)
  | (?P<gmtoff>(?:gmt|utc)[ ]?[+\-−]\d{1,2}(?::?\d{2})?)(?!\d)
  | (?P<offset>[+\-−]\d{2}:?\d{2})(?!\d)
  | (?P<dotpair>\d{1,2}\.\d{2})(?![\d.])
  | (?P<ampm>[ap]\.?[ \u00a0\u202f]?m\.?)(?![^\W\d_])
  | (?P<number>\d+)
  | (?P<word>[^\W\d_]+)
  | (?P<punct>[,.()«»'"\-–])
  | (?P<other>\S)
    """,
    re.IGNORECASE | re.VERBOSE,
)

_PAREN_UTC_RE = re.compile(r"\((?:utc|gmt)[+\-−]\d{1,2}(?::?\d{2})?\)", re.IGNORECASE)


def fold(word: str) -> str:
    """Case- and accent-insensitive key: "Févr" and "fevr" fold alike."""
    if word.isascii():
        return word.lower()  # the common case, without the Unicode tables
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _index(table: Mapping[str, str]) -> dict[str, tuple[int, frozenset[str]]]:
    """Spelling -> (1-based position, languages); on a clash the first position wins."""
    index: dict[str, tuple[int, frozenset[str]]] = {}
    for lang, entries in table.items():
        for position, spellings in enumerate(entries.split("|"), start=1):
            for spelling in spellings.split():
                key = fold(spelling)
                known = index.get(key)
                if known is None:
                    index[key] = (position, frozenset({lang}))
                elif known[0] == position:
                    index[key] = (position, known[1] | {lang})
    return index


def _word_langs(table: Mapping[str, str]) -> dict[str, frozenset[str]]:
    index: dict[str, frozenset[str]] = {}
    for lang, words in table.items():
        for word in words.split():
            key = fold(word)
            index[key] = index.get(key, frozenset()) | {lang}
    return index


_MONTHS = _index(MONTH_NAMES)
_WEEKDAYS = _index(WEEKDAY_NAMES)
_FILLERS = _word_langs(FILLER_WORDS)


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
    langs: list[frozenset[str]] = field(default_factory=list)


def read_mail_date(text: str, *, default_zone: tzinfo, zone_name: str, day_first: bool | None = None) -> DateReading:
    """Read one date as a mail client wrote it; never raises, never guesses."""
    if len(text) > MAX_DATE_CHARS:
        return DateReading(None, problem="date text too long")
    if not text.strip():
        return DateReading(None, problem="no date")
    # Outlook writes "(UTC+01:00) Amsterdam, Berlin, ...": the city list says nothing more.
    paren = _PAREN_UTC_RE.search(text)
    cleaned = text[: paren.end()] if paren else text
    fields_or_problem = _collect(_tokens(unicodedata.normalize("NFC", cleaned)))
    if isinstance(fields_or_problem, str):
        return DateReading(None, problem=fields_or_problem)
    return _combine(fields_or_problem, default_zone, zone_name, day_first)


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
    if kind == "numdate":
        if parts.numdate:
            return "two dates"
        parts.numdate = text
        return ""
    if kind == "time" or (kind == "dotpair" and previous in CLOCK_WORDS):
        if parts.time:
            return "two times"
        parts.time = text.replace(".", ":")
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
    key = fold(text)
    month = _MONTHS.get(key)
    weekday = _WEEKDAYS.get(key)
    filler = _FILLERS.get(key)
    if month is not None:
        parts.langs.append(month[1] | (weekday[1] if weekday else frozenset()))
        if weekday is not None:
            # "mar" is March and also mardi/martes/martedì: decided once all words are seen.
            parts.maybe_month.append(month[0])
        elif parts.month is not None and parts.month != month[0]:
            return "two months"
        else:
            parts.month = month[0]
        return ""
    if weekday is not None or filler is not None:
        parts.langs.append((weekday[1] if weekday else frozenset()) | (filler or frozenset()))
        return ""
    if key in ZONE_ABBREVIATIONS:
        if parts.named_offset is None:
            parts.named_offset = ZONE_ABBREVIATIONS[key]
        return ""
    return f"unknown word {text!r}"


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
        return _numeric_day(parts.numdate, day_first)
    if month is None:
        return "no month"
    if parts.year is None:
        return "no year"
    if parts.day is None:
        return "no day"
    return _Day(parts.year, month, parts.day, _language(parts.langs), None, False)


def _numeric_day(text: str, day_first: bool | None) -> _Day | str:
    """28/10/2021, 10/28/2021, 2021-10-28, 28.10.21: order from a field above 12 or the locale."""
    pieces = re.split(r"[./-]", text)
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


def _language(word_langs: Iterable[frozenset[str]]) -> str:
    """The one language all localised words share, else the first that any has."""
    sets = [langs for langs in word_langs if langs]
    if not sets:
        return "numeric"
    common = sets[0].intersection(*sets[1:])
    pool = common or sets[0]
    return next((lang for lang in LANG_ORDER if lang in pool), "mixed")


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
    key = fold(token.text)
    if key in _MONTHS:
        # Clients write the month before the year and the time; one after them is a name.
        if seen & {"month", "year", "time"}:
            return "stop"
        # "mar" is March or mardi/martes: read_mail_date decides once it has every word.
        return "filler" if key in _WEEKDAYS else "month"
    if key in ZONE_ABBREVIATIONS:
        return "value"
    if key in _WEEKDAYS or key in _FILLERS:
        return "filler"
    return "stop"
