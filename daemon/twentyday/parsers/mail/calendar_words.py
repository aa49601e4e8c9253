"""Month, weekday, AM/PM and era words of the languages mail clients ship, from CLDR.

Gmail, Outlook and Apple Mail write a forwarded message's date in the language
of the person who forwarded it, with the words of the Unicode CLDR: genitive
("октября", "października"), abbreviated ("окт.", "paź", "lokak."), stand-alone
and format forms, weekday names, AM/PM markers ("午後", "오전", "μ.μ."). Babel
ships CLDR for every locale; this module reads it once, on first use, for the
locales in ``CLIENT_LOCALES`` and keeps, for each spelling, every meaning it has
in each locale, so the date reader can refuse a word whose meaning depends on a
language the text does not settle ("lis" is November in Polish and Czech,
October in Croatian).

Pure: no I/O beyond Babel's own packaged data, no clock. Building the tables
costs about a quarter of a second for the ~45 locales (measured in
tests/parsers/mail/test_calendar_words.py); it is paid once per process, and only
when a forwarded or quoted date has to be read.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "CLIENT_EXTRA_WORDS",
    "CLIENT_LOCALES",
    "FILLER_WORDS",
    "ORDER_VARIES_BY_REGION",
    "CalendarWords",
    "calendar_words",
    "fold",
    "phrase_key",
    "word_key",
]

#: The locales read, in the order used to name a layout when a word fits several: the
#: languages Gmail, Outlook and Apple Mail ship. ``de_AT`` adds "Jänner"; ``pt_PT`` and
#: ``sr_Latn`` differ from ``pt`` and ``sr`` in their month words.
CLIENT_LOCALES: tuple[str, ...] = (
    "en", "de", "fr", "es", "it", "nl", "pt", "ru", "da", "nb", "sv", "fi", "pl",
    "ar", "bg", "ca", "cs", "de_AT", "el", "et", "fa", "fil", "he", "hi", "hr", "hu", "id", "is",
    "ja", "ko", "lt", "lv", "ms", "pt_PT", "ro", "sk", "sl", "sr", "sr_Latn", "th", "tr", "uk",
    "vi", "zh_Hans", "zh_Hant",
)  # fmt: skip

# Spellings clients write that CLDR does not have (kept from the tables this module replaced,
# each seen in a client's output): "|" separates months (January..) or weekdays (Monday..),
# spaces separate spellings. Gmail's Finnish writes "lokak." where CLDR has "loka".
CLIENT_EXTRA_WORDS: Mapping[str, tuple[str, str]] = {
    "en": ("jan | feb | mar | apr | may | jun | jul | aug | sep sept | oct | nov | dec",
           "mon | tue tues | wed | thu thur thurs | fri | sat | sun"),
    "de": ("jan jän | feb feber | mär mrz | apr | mai | jun | jul | aug | sep sept | okt | nov | dez",
           "mo | di | mi | do | fr | sa sonnabend | so"),
    "fr": ("janv jan | févr fév | mars mar | avr | mai | juin | juil | août | sept | oct | nov | déc",
           "lun | mar | mer | jeu | ven | sam | dim"),
    "es": ("ene | feb | mar | abr | may | jun | jul | ago | sep sept set setiembre | oct | nov | dic",
           "lun | mar | mié | jue | vie | sáb | dom"),
    "nl": ("jan | feb | mrt mar | apr | mei | jun | jul | aug | sep sept | okt | nov | dec", ""),
    "pt": ("jan | fev | mar | abr | mai | jun | jul | ago | set | out | nov | dez",
           "segunda seg | terça ter | quarta qua | quinta qui | sexta sex | sábado sáb | domingo dom"),
    "ru": ("янв | февр фев | мар | апр | мая май | июн | июл | авг | сент сен | окт | нояб ноя | дек", ""),
    "fi": ("tammik | helmik | maalisk | huhtik | toukok | kesäk | heinäk | elok | syysk | lokak | marrask | jouluk",
           "maanantaina | tiistaina | keskiviikkona | torstaina | perjantaina | lauantaina | sunnuntaina"),
    "pl": ("sty | lut | marca | kwi | maja | cze | lip | sie | wrz | paź | lis | gru",
           "pon | wt | śr | czw | pt | sob | niedz nd"),
    "sv": ("", "mån | tis | ons | tors | fre | lör | sön"),
}  # fmt: skip

#: Words that join the parts of a date and carry no value ("at", "à", "um ... Uhr"), beyond
#: the literals CLDR's own date patterns quote ("'de'", "'г'.", "'gada'"), which are added.
FILLER_WORDS: Mapping[str, str] = {
    "en": "at on the of st nd rd th",
    "de": "um uhr den",  # "am" is read as the 12-hour marker
    "fr": "à le er h",
    "es": "a las de del el",
    "it": "alle ore il giorno del di",
    "nl": "om",
    "pt": "às as de feira",
    "pt_PT": "às as de feira",
    "ru": "в г года",
    "uk": "о об р року",
    "bg": "в г",
    "da": "kl den",
    "nb": "kl den",
    "sv": "kl klockan den",
    "fi": "klo kello",
    "pl": "o godz dnia",
    "cs": "v",
    "sk": "o",
    "hr": "u",
    "sr_Latn": "u",
    "sl": "ob",
    "ro": "la",
    "ca": "a les de",
    "tr": "saat",
    "el": "στις",
    "id": "pukul",
    "ms": "pada",
    "et": "kell",
    "lt": "m d",
    "lv": "gada plkst",
    "is": "kl",
    "hu": "",
}

#: Letters that are part of a word although not "alphanumeric" for ``re``: the combining
#: vowel signs of Devanagari, Thai, Hebrew and Arabic, and the Hebrew geresh of "אוק׳".
WORD_MARKS = "\u0300-\u036f\u0591-\u05c7\u05f3\u05f4\u0610-\u061a\u064b-\u065f\u0900-\u097f\u0e00-\u0e7f"

#: Languages whose regions write numeric dates in different orders (en_US 3/5/25, en_GB 05/03/2025;
#: fr_CA 2025-03-05; es_US and es_PA month first): their words say nothing of the order.
ORDER_VARIES_BY_REGION = frozenset({"en", "es", "fr", "ar", "fa", "fil", "ms", "zh_Hans", "zh_Hant"})

_QUOTED_RE = re.compile(r"'([^']+)'")


def fold(word: str) -> str:
    """Case- and accent-insensitive key: "Févr" and "fevr" fold alike."""
    if word.isascii():
        return word.lower()  # the common case, without the Unicode tables
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def word_key(word: str) -> str:
    """The lookup key of one written word: folded, without the dots of an abbreviation."""
    return fold(word).strip(".")


@dataclass(frozen=True)
class CalendarWords:
    """Every spelling's meanings, each with the locales in which it has that meaning.

    ``months`` and ``weekdays`` map a key to {1-based position: locales}; ``day_periods``
    to {is_pm: locales}; ``fillers`` (words carrying no value, and the Common Era's
    names) to locales. ``order`` gives a locale's numeric date order ("dmy", "mdy",
    "ymd") from its CLDR short date pattern, for the locales whose regions all agree.
    """

    months: Mapping[str, Mapping[int, frozenset[str]]]
    weekdays: Mapping[str, Mapping[int, frozenset[str]]]
    day_periods: Mapping[str, Mapping[bool, frozenset[str]]]
    fillers: Mapping[str, frozenset[str]]
    order: Mapping[str, str]
    #: Two-word months and weekdays ("tháng 10", "Thứ Tư"): phrase key -> {(role, position): locales}.
    phrases: Mapping[str, Mapping[tuple[str, int], frozenset[str]]] = field(default_factory=dict)

    def knows(self, key: str) -> bool:
        return key in self.months or key in self.weekdays or key in self.day_periods or key in self.fillers


def _add(table: dict[str, dict[int, set[str]]], spelling: str, position: int, locale: str) -> None:
    key = word_key(spelling)
    # A multi-word or numbered spelling ("thg 10", "10月") is read by other means, or not at all.
    if not key or any(ch.isspace() or ch.isdigit() for ch in key):
        return
    table.setdefault(key, {}).setdefault(position, set()).add(locale)


def phrase_key(spelling: str) -> str:
    """The lookup key of a two-word spelling ("tháng 10", "Thứ Tư"): its words' keys, one space apart."""
    return " ".join(word_key(word) for word in spelling.split())


def _add_phrase(
    table: dict[str, dict[tuple[str, int], set[str]]], spelling: str, role: str, position: int, locale: str
) -> None:
    # Vietnamese names its months "tháng 1".."tháng 12" (abbreviated "thg 1") and its weekdays
    # "Thứ Hai".."Thứ Bảy", "Thứ 2".."Thứ 7": two words, read as one by ``dates``.
    if len(spelling.split()) != 2:
        return
    table.setdefault(phrase_key(spelling), {}).setdefault((role, position), set()).add(locale)


def _frozen(table: Mapping[str, Mapping[int, set[str]]]) -> dict[str, dict[int, frozenset[str]]]:
    return {key: {value: frozenset(locales) for value, locales in meanings.items()} for key, meanings in table.items()}


def _numeric_order(pattern: str) -> str:
    letters = [ch for ch in re.sub(r"'[^']*'", "", pattern) if ch in "dMy"]
    order = ""
    for letter in letters:
        if letter.lower() not in order:
            order += letter.lower()
    return order


def _pattern_literals(patterns: Iterable[str]) -> set[str]:
    words: set[str] = set()
    for pattern in patterns:
        for literal in _QUOTED_RE.findall(pattern):
            words.update(part for part in re.split(r"[\s.,]+", literal) if part)
    return words


@functools.cache
def calendar_words() -> CalendarWords:
    """Build the tables once (about 0.25 s for every locale); later calls are free."""
    from babel import Locale  # imported here: a mail ingest without forwards never pays for CLDR

    months: dict[str, dict[int, set[str]]] = {}
    weekdays: dict[str, dict[int, set[str]]] = {}
    periods: dict[str, dict[int, set[str]]] = {}
    fillers: dict[str, dict[int, set[str]]] = {}
    phrases: dict[str, dict[tuple[str, int], set[str]]] = {}
    order: dict[str, str] = {}
    for name in CLIENT_LOCALES:
        locale = Locale.parse(name)
        for context in ("format", "stand-alone"):
            for width in ("wide", "abbreviated"):
                for number, spelling in locale.months[context][width].items():
                    _add(months, spelling, int(number), name)
                    _add_phrase(phrases, spelling, "month", int(number), name)
                for index, spelling in locale.days[context][width].items():
                    _add(weekdays, spelling, int(index) + 1, name)  # CLDR counts Monday as 0
                    _add_phrase(phrases, spelling, "weekday", int(index) + 1, name)
                for period, spelling in locale.day_periods[context][width].items():
                    if period in ("am", "pm"):
                        _add(periods, spelling, int(period == "pm"), name)
        for width in ("wide", "abbreviated"):
            era = locale.eras[width].get(1)  # the Common Era ("AD", "西暦"); "BC" stays unknown
            if era:
                _add(fillers, era, 0, name)
        patterns = [pattern.pattern for pattern in locale.date_formats.values()]
        patterns += [pattern.pattern for pattern in locale.time_formats.values()]
        for word in _pattern_literals(patterns):
            _add(fillers, word, 0, name)
        if name not in ORDER_VARIES_BY_REGION:
            order[name] = _numeric_order(locale.date_formats["short"].pattern)
    for name, (month_text, weekday_text) in CLIENT_EXTRA_WORDS.items():
        for table, text in ((months, month_text), (weekdays, weekday_text)):
            for position, spellings in enumerate(text.split("|"), start=1):
                for spelling in spellings.split():
                    _add(table, spelling, position, name)
    for name, words in FILLER_WORDS.items():
        for word in words.split():
            _add(fillers, word, 0, name)
    return CalendarWords(
        months=_frozen(months),
        weekdays=_frozen(weekdays),
        day_periods={
            key: {bool(value): locales for value, locales in meanings.items()}
            for key, meanings in _frozen(periods).items()
        },
        fillers={key: frozenset().union(*meanings.values()) for key, meanings in _frozen(fillers).items()},
        order=order,
        phrases={
            key: {meaning: frozenset(locales) for meaning, locales in meanings.items()}
            for key, meanings in phrases.items()
        },
    )
