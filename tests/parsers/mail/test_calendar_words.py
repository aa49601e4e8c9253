"""Forwarded-mail dates in every language Gmail, Outlook and Apple Mail ship (CLDR via Babel).

The fixtures of tests/data/email_forwarded (crisp-oss/email-forward-parser, MIT) were 113
bodies when this was built: 104 came out dated with the hand-written tables, 110 with CLDR's
words; the three left undated are numeric dates only the custodian's locale can order.
With every crisp-oss fixture copied (191 bodies) the reader before the dotted times, Outlook
2019's Slovak and Turkish reply lines and Slovak Thunderbird's separator dated 175 (188 found);
now 186 (all 191 found). The five undated: four numeric dates only the locale can order, and
Yahoo's Portuguese line whose subject key lacks its colon.
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
NEEDS_LOCALE = {
    "ionos_one_and_one_en_body",  # "02/10/2023"
    "ionos_one_and_one_en_body_variant_2",
    "thunderbird_en_body_variant_4",  # "03/11/2021"
    "outlook_2019_pt_body",  # "28/10/21": dd/mm/yy, or yy/mm/dd for 21 October 2028
}
#: "...09:26:50 CETAssunto Integer consequat non purus": no colon after Yahoo's "Assunto".
UNREADABLE = {"yahoo_pt_body"}


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
    assert len(bodies) == 191
    assert len(bodies) - len(undated) == 186
    assert set(undated) == NEEDS_LOCALE | UNREADABLE


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
        # Apple Mail's Finnish and Danish (crisp-oss apple_mail_fi/da fixtures): "klo"/"kl." then h.mm.ss.
        ("26. lokakuuta 2021 klo 14.25.08 UTC+3", "2021-10-26 14:25", "+03:00", "fi"),
        ("26. oktober 2021 kl. 14.25.08 EEST", "2021-10-26 14:25", "+03:00", "da"),
        # Once day, month and year are read, a dotted time can be nothing else (Yahoo's Danish,
        # Outlook 2019's Danish and Finnish reply lines).
        ("tirsdag den 2. november 2021 09.26.50 CET", "2021-11-02 09:26", "+01:00", "da"),
        ("28/10/2021 12.46", "2021-10-28 12:46", None, "dd/mm/yyyy"),
        # Vietnamese: CLDR's months "tháng 10" / "thg 10" and weekdays "Thứ Tư" / "Thứ 4" are two words.
        ("Thứ Tư, 27 tháng 10, 2021 09:31", "2021-10-27 09:31", None, "vi"),
        ("Thứ 4, 27 thg 10, 2021 09:31", "2021-10-27 09:31", None, "vi"),
        ("09:31:00 27 thg 10, 2021", "2021-10-27 09:31", None, "vi"),
        # Hungarian numeric dates put the year first, each part followed by a dot (CLDR "y. MM. dd.").
        ("2021. 10. 27. 9:31", "2021-10-27 09:31", None, "yyyy-mm-dd"),
        ("Sze, 2021. 10. 27. 9:31", "2021-10-27 09:31", None, "yyyy-mm-dd"),
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
    polish = read("pt., 5 lis 2021 o 10:00")  # Polish: November (5 November 2021 was a Friday, "pt.")
    assert polish.at is not None and polish.at.month == 11
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


@pytest.mark.parametrize(
    ("text", "weekday"),
    [
        ("Monday, 5 March 2021 10:00", "Friday"),  # English
        ("lundi 5 mars 2021 à 10:00", "Friday"),  # French
        ("Montag, 5. März 2021 um 10:00", "Friday"),  # German
        ("понедельник, 5 марта 2021 г. в 10:00", "Friday"),  # Russian
        ("Mon, 3 Nov 2021 15:51:30 +0100", "Wednesday"),  # Thunderbird's RFC 5322 form
        ("Thứ Hai, 27 tháng 10, 2021 09:31", "Wednesday"),  # Vietnamese, two-word weekday
        ("2021. október 27., hétfő 9:31", "Wednesday"),  # Hungarian, weekday after the date
    ],
)
def test_a_weekday_that_contradicts_the_date_leaves_it_undated(text: str, weekday: str) -> None:
    reading = read(text)
    assert reading.at is None
    assert reading.problem.startswith("the weekday written contradicts the date")
    assert reading.problem.endswith(f"is a {weekday})")


@pytest.mark.parametrize(
    "text",
    [
        "Friday, 5 March 2021 10:00",
        "vendredi 5 mars 2021 à 10:00",
        "Freitag, 5. März 2021 um 10:00",
        "пятница, 5 марта 2021 г. в 10:00",
        "Wed, 3 Nov 2021 15:51:30 +0100",
    ],
)
def test_a_weekday_that_agrees_with_the_date_is_read(text: str) -> None:
    assert read(text).at is not None


@pytest.mark.parametrize(
    "text",
    [
        "14.25.08",  # a dotted triple alone: no date at all
        "5.3.2021 14.25.08",  # the time is read, the day/month order still is not
        "2 november 14.25.08",  # no year: the triple is not known to be a time
        "27 tháng 13, 2021 09:31",  # there is no thirteenth month
        "tháng 10, 2021 09:31",  # no day
        "ngày 27 tháng 10 năm 2021 09:31",  # "ngày"/"năm" (day/year) are words CLDR's patterns do not give
        "2021. 13. 27. 9:31",  # month 13
    ],
)
def test_new_forms_stay_strict(text: str) -> None:
    assert read(text).at is None
