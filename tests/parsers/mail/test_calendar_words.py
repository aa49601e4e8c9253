"""Forwarded-mail dates in every language Gmail, Outlook and Apple Mail ship (CLDR via Babel).

The fixtures of tests/data/email_forwarded (crisp-oss/email-forward-parser, MIT) were 113
bodies when this was built: 104 came out dated with the hand-written tables, 110 with CLDR's
words; the three left undated are numeric dates only the custodian's locale can order.
"""

from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from twentyday.parsers.mail.calendar_words import CLIENT_LOCALES, ORDER_VARIES_BY_REGION, calendar_words
from twentyday.parsers.mail.dates import read_mail_date
from twentyday.parsers.mail.forwarded import find_forwarded

DATA = Path(__file__).resolve().parents[2] / "data" / "email_forwarded"
CUSTODIAN = ZoneInfo("America/New_York")
NEEDS_LOCALE = {"ionos_one_and_one_en_body", "ionos_one_and_one_en_body_variant_2", "thunderbird_en_body_variant_4"}


def read(text: str, day_first: bool | None = None):  # type: ignore[no-untyped-def]
    return read_mail_date(text, default_zone=CUSTODIAN, zone_name="America/New_York", day_first=day_first)


def test_every_fixture_but_the_locale_dependent_ones_is_dated() -> None:
    undated = []
    bodies = sorted(DATA.glob("*_body*.txt"))
    for path in bodies:
        found = find_forwarded(path.read_text(encoding="utf-8"), default_zone=CUSTODIAN, zone_name="America/New_York")
        assert found is not None, path.name
        if found.created_at is None:
            undated.append(path.stem)
    print(f"forwarded fixtures: {len(bodies)}, dated: {len(bodies) - len(undated)}, undated: {len(undated)}")
    assert len(bodies) == 120
    assert set(undated) == NEEDS_LOCALE


@pytest.mark.parametrize(
    ("text", "when", "offset", "style"),
    [
        # Gmail's date line, "EEE, d MMM y 'at' h:mm" in each language's CLDR words (Gmail writes
        # CLDR's format-context, i.e. genitive, months; cf. the ru/pl fixtures).
        ("чт, 5 янв. 2023 г. в 14:03", "2023-01-05 14:03", None, "ru"),
        ("czw., 5 sty 2023 o 14:03", "2023-01-05 14:03", None, "pl"),
        ("čt 5. 1. 2023 v 14:03", "2023-01-05 14:03", None, "cs dd/mm/yyyy"),
        ("to 5. tammik. 2023 klo 14.03", "2023-01-05 14:03", None, "fi"),
        ("2023. jan. 5., Cs, 14:03", "2023-01-05 14:03", None, "hu"),
        ("5 Oca 2023 Per, 14:03", "2023-01-05 14:03", None, "tr"),
        # Apple Mail: "d MMMM y 'at' HH:mm:ss zzzz" with CLDR's genitive month and the zone's short name.
        ("5 stycznia 2023 o 14:03:00 CET", "2023-01-05 14:03", "+01:00", "pl"),
        ("5. ledna 2023 v 14:03:00 SEČ", "2023-01-05 14:03", "+01:00", "cs"),
        ("5. Januar 2023 um 14:03:00 MEZ", "2023-01-05 14:03", "+01:00", "de"),
        ("5. Juli 2023 um 14:03:00 MESZ", "2023-07-05 14:03", "+02:00", "de"),
        ("5 janvier 2023 à 14:03:00 HNEC", "2023-01-05 14:03", "+01:00", "fr"),
        ("5 janvier 2023 à 14h03 HNE", "2023-01-05 14:03", "-05:00", "fr"),
        # Outlook's CJK "Sent" line (y年M月d日 H:mm; Korean with 오전/오후) and Japanese 時/分.
        ("2023年1月5日 14:03", "2023-01-05 14:03", None, "numeric y年m月d日"),
        ("2023年1月5日 下午 2:03", "2023-01-05 14:03", None, "zh_Hans y年m月d日"),
        ("2023年1月5日(木) 14時03分", "2023-01-05 14:03", None, "ja y年m月d日"),
        ("2023년 1월 5일 목요일 오후 2:03", "2023-01-05 14:03", None, "ko y年m月d日"),
        ("Πέμπτη, 5 Ιανουαρίου 2023 2:03 μ.μ.", "2023-01-05 14:03", None, "el"),
    ],
)
def test_dates_as_clients_write_them(text: str, when: str, offset: str | None, style: str) -> None:
    reading = read(text)
    assert reading.at is not None, reading.problem
    assert reading.at.strftime("%Y-%m-%d %H:%M") == when
    assert reading.style == style
    if offset is None:
        assert reading.at.tzinfo is CUSTODIAN and reading.decided_by == "custodian_zone"
    else:
        assert reading.at.strftime("%z") == offset.replace(":", "") and reading.zone_written


@pytest.mark.parametrize(
    "text",
    [
        "01/02/2023 14:03",  # day or month first: no locale, no words
        "On 03/11/2021 at 15:51",  # English is written both ways (en_US, en_GB)
        "1 lis 2021 10:00",  # November in Polish and Czech, October in Croatian
        "5 ian 2023 14:03 de",  # "de": a Spanish filler or the Hungarian AM
        "14:03",  # a time without a date
        "5 Oct 2023 14:03 BST",  # British Summer or Bangladesh Standard Time
    ],
)
def test_ambiguous_dates_stay_undated(text: str) -> None:
    reading = read(text)
    assert reading.at is None
    assert reading.problem


def test_a_month_word_of_two_languages_is_read_with_the_others_words() -> None:
    assert read("pt., 1 lis 2021 o 10:00").at is not None  # Polish: November
    croatian = read("pet, 1. lis 2021. u 10:00")
    assert croatian.at is not None and croatian.at.month == 10 and croatian.style == "hr"


def test_the_language_order_is_trusted_only_where_all_its_regions_agree() -> None:
    from babel import Locale
    from babel.localedata import locale_identifiers

    identifiers = locale_identifiers()
    words = calendar_words()
    for name in ("de", "ru", "pl", "cs", "it", "nl", "tr"):
        assert name not in ORDER_VARIES_BY_REGION and words.order[name] == "dmy"
        for other in identifiers:
            if other.split("_")[0] == name:
                pattern = Locale.parse(other).date_formats["short"].pattern
                assert pattern.find("d") < pattern.find("M"), other
    assert {"en", "fr", "es"} <= ORDER_VARIES_BY_REGION


def test_cldr_tables_cost_little() -> None:
    calendar_words.cache_clear()
    started = time.perf_counter()
    words = calendar_words()
    built = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(1000):
        read("чт, 5 янв. 2023 г. в 14:03")
    per_date = (time.perf_counter() - started) / 1000
    print(f"CLDR tables for {len(CLIENT_LOCALES)} locales: {built:.3f} s; one date read: {per_date * 1e6:.0f} us")
    assert len(words.months) > 500
    assert built < 3.0  # about 0.3 s on an idle core; once per process
    assert per_date < 0.002
