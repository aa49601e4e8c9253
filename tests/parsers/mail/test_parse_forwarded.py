"""Recovering the original message (and its date) from inline-forwarded bodies.

Every ``*_body*.txt`` in ``tests/data/email_forwarded`` (see its SOURCES.md) is a
forward, or a reply, of one message from John Doe: subject "Integer consequat
non purus", to bessie.berry@acme.com, Cc Walter Sheltan and Nicholas. The
expectations below were written by reading each fixture, not by running the
parser; where a fixture lacks something it says so in a comment.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypedDict
from zoneinfo import ZoneInfo

import pytest

from twentyday.parsers.mail.dates import fold, read_mail_date
from twentyday.parsers.mail.forward_keys import FIELDS, FORWARD_KEYS
from twentyday.parsers.mail.forwarded import ForwardedOriginal, find_forwarded, strip_forward_prefix

DATA = Path(__file__).resolve().parents[2] / "data" / "email_forwarded"
CUSTODIAN = ZoneInfo("America/New_York")
CUSTODIAN_NAME = "America/New_York"
SUBJECT = "Integer consequat non purus"
CC = {"walter.sheltan@acme.com", "nicholas@globex.corp"}


@dataclass(frozen=True)
class Expect:
    """What a reader sees in the fixture.

    ``day``/``hhmm`` are the original's local date and time as written;
    ``offset`` is the zone written with it ("+03:00"), or None when the client
    wrote no zone and the custodian's zone applies. ``locale`` is set when the
    date is numeric with day and month both <= 12: it is undated without the
    custodian's locale and read with ``day_first=locale``.
    """

    day: str
    hhmm: str
    offset: str | None
    cc: bool = True
    to: bool = True
    subject: str = SUBJECT
    sender: str = "john.doe@acme.com"
    name: str = "John Doe"
    locale: bool | None = None
    client: str | None = None  # None: the client named by the fixture's file name
    undated: str = ""  # why the fixture's date cannot be read: then day/hhmm/offset are what a reader sees
    copies_in_to: bool = False  # the Cc key was not written, so the copies' addresses stay on the To line


class _Reply(TypedDict):
    cc: bool
    to: bool
    subject: str
    client: str


# Replies ("On ... wrote:") carry only a date and a sender: no subject, To or Cc lines.
REPLY: _Reply = {"cc": False, "to": False, "subject": "", "client": "reply"}
OUTLOOK_2019: _Reply = {**REPLY, "client": "outlook_2019_reply"}  # 4-space-indented quote

EXPECTED: dict[str, Expect] = {
    "apple_mail_de_body": Expect("2021-10-26", "14:25", "+03:00"),  # OESZ
    "apple_mail_en_body": Expect("2021-10-25", "11:17", "+03:00"),  # EEST
    "apple_mail_en_body_variant_1": Expect("2021-10-25", "11:17", "+03:00", cc=False),
    # French keys (De/À) mixed with English ones; dated August 2022, not Oct-Nov 2021.
    # The quoted "From: Bessie Berry ... Sent: ..." block below is part of John's message.
    "apple_mail_en_body_variant_13": Expect("2022-08-17", "09:06", "+02:00"),
    "apple_mail_en_body_variant_2": Expect("2021-10-25", "11:17", "+03:00"),
    "apple_mail_en_body_variant_3": Expect("2021-10-25", "11:17", "+03:00"),
    "apple_mail_en_body_variant_4": Expect("2021-10-25", "11:43", None, **REPLY),
    # "From: john.doe@acme.com": no display name.
    "apple_mail_en_body_variant_5": Expect("2021-10-25", "11:17", "+03:00", name=""),
    # July 2021, no Cc (a Reply-To line instead).
    "apple_mail_en_body_variant_6": Expect("2021-07-16", "19:24", "+02:00", cc=False),
    "apple_mail_en_body_variant_7": Expect("2021-07-16", "19:24", "+02:00"),
    "apple_mail_es_body": Expect("2021-10-26", "14:25", "+03:00"),
    "apple_mail_fr_body": Expect("2021-10-26", "14:25", "+03:00"),  # UTC+3
    "apple_mail_it_body": Expect("2021-10-26", "14:25", "+03:00"),
    "apple_mail_nl_body": Expect("2021-10-26", "14:25", "+03:00"),
    "gmail_de_body": Expect("2021-10-27", "09:31", None),
    "gmail_en_body": Expect("2021-10-27", "09:31", None),
    "gmail_en_body_variant_1": Expect("2021-10-27", "09:31", None, cc=False),
    # John's 2023 message, then the RE: thread it quotes; John's message is the record.
    "gmail_en_body_variant_14": Expect("2023-04-06", "16:17", None),
    "gmail_en_body_variant_15": Expect("2023-04-06", "16:17", None),
    "gmail_en_body_variant_2": Expect("2021-10-27", "09:31", None),
    "gmail_en_body_variant_3": Expect("2021-10-27", "09:31", None),
    "gmail_en_body_variant_4": Expect("2021-10-27", "09:31", None, **REPLY),  # over two lines
    "gmail_es_body": Expect("2021-10-27", "09:31", None),
    "gmail_fr_body": Expect("2021-10-27", "09:31", None),
    "gmail_it_body": Expect("2021-10-27", "09:31", None),
    "gmail_nl_body": Expect("2021-10-27", "09:31", None),
    # HubSpot: September 2022, numeric offsets.
    "hubspot_de_body": Expect("2022-09-19", "17:55", "-04:00"),
    "hubspot_en_body": Expect("2022-09-19", "17:55", "-04:00"),
    "hubspot_en_body_variant_1": Expect("2022-09-19", "17:55", "-04:00", cc=False),
    "hubspot_en_body_variant_2": Expect("2022-09-19", "17:55", "-04:00"),
    # A reply to a message from Eliott Vincent, not from John Doe.
    "hubspot_en_body_variant_4": Expect(
        "2022-09-20",
        "03:44",
        None,
        sender="archive@eliottvincent.com",
        name="Eliott Vincent",
        **REPLY,
    ),
    "hubspot_es_body": Expect("2022-09-19", "17:55", "-04:00"),
    "hubspot_fr_body": Expect("2022-09-19", "15:20", "+02:00"),
    "hubspot_it_body": Expect("2022-09-19", "17:55", "-04:00"),
    "hubspot_nl_body": Expect("2022-09-19", "17:55", "-04:00"),
    # "02/10/2023 4:52 PM EST": 2 October or February 10? Only the locale can say.
    "ionos_one_and_one_en_body": Expect("2023-02-10", "16:52", "-05:00", cc=False, locale=False),
    "ionos_one_and_one_en_body_variant_2": Expect("2023-02-10", "16:52", "-05:00", cc=False, locale=False),
    "mailmate_en_body": Expect("2021-10-27", "09:31", "+00:00"),
    "mailmate_en_body_variant_1": Expect("2021-10-27", "09:31", "+00:00", cc=False),
    "mailmate_en_body_variant_2": Expect("2021-10-27", "09:31", "+00:00"),
    # "On July 19, 2022 at 3:36 PM, John Doe wrote:": no address at all.
    "mailmate_en_body_variant_4": Expect("2022-07-19", "15:36", None, sender="", **REPLY),
    "missive_en_body": Expect("2022-07-19", "15:09", None),
    "missive_en_body_variant_1": Expect("2022-07-19", "15:36", None, cc=False),
    "missive_en_body_variant_2": Expect("2022-07-19", "15:36", None),
    "missive_en_body_variant_3": Expect("2022-07-01", "17:03", None),
    "missive_en_body_variant_4": Expect("2022-07-19", "15:36", None, **REPLY),  # "(addr) wrote:"
    "new_outlook_2019_de_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_en_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_en_body_variant_1": Expect("2021-10-28", "12:46", None, cc=False),
    "new_outlook_2019_en_body_variant_14": Expect("2023-04-06", "16:17", None),
    "new_outlook_2019_en_body_variant_14_1": Expect("2023-04-06", "16:17", None),
    "new_outlook_2019_en_body_variant_15": Expect("2023-04-06", "16:17", None),
    "new_outlook_2019_en_body_variant_2": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_en_body_variant_3": Expect("2021-10-28", "12:46", None),
    # Quoted in a reply; To: nicholas@globex.corp only, no Cc.
    "new_outlook_2019_en_body_variant_4": Expect("2021-10-28", "12:46", None, cc=False, to=False),
    "new_outlook_2019_es_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_fr_body": Expect("2021-10-28", "12:06", None),
    "new_outlook_2019_it_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_nl_body": Expect("2021-10-28", "12:06", None),
    "outlook_2013_en_body": Expect("2021-10-25", "11:17", None),
    # "On 28/10/2021 12:46, ...": 28 > 12 settles the order without a locale.
    "outlook_2019_de_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_en_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_en_body_variant_2": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_en_body_variant_4": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_es_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_fr_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_it_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_nl_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_live_en_body_variant_1": Expect("2021-10-27", "15:14", None, cc=False),
    # "*From:* John Doe<mailto:...> <...> on behalf of ticketing@acme.com", no separator line.
    "outlook_live_en_body_variant_10": Expect("2021-10-27", "15:14", None),
    # Commas inside unquoted names: "John, Doe", "Walter, Sheltan", "Nicholas, Landers".
    "outlook_live_en_body_variant_11": Expect("2021-10-27", "15:14", None, name="John, Doe"),
    "outlook_live_en_body_variant_14": Expect("2023-04-06", "16:17", None),
    "outlook_live_en_body_variant_15": Expect("2023-04-06", "16:17", None),
    "outlook_live_en_body_variant_2": Expect("2021-10-27", "15:14", None),
    "outlook_live_en_body_variant_3": Expect("2021-10-27", "15:14", None),
    # Quoted in a reply; To: nicholas@globex.corp only, no Cc.
    "outlook_live_en_body_variant_4": Expect("2021-10-27", "15:14", None, cc=False, to=False),
    "outlook_live_en_body_variant_8": Expect("2021-10-27", "15:14", None),  # signature after
    "outlook_live_en_body_variant_9": Expect("2021-10-27", "15:14", None),  # "on behalf of"
    "thunderbird_de_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_en_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_en_body_variant_1": Expect("2021-11-03", "15:51", "+01:00", cc=False),
    "thunderbird_en_body_variant_14": Expect("2023-04-06", "16:17", None),
    "thunderbird_en_body_variant_15": Expect("2023-04-06", "16:17", None),
    "thunderbird_en_body_variant_2": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_en_body_variant_3": Expect("2021-11-03", "15:51", "+01:00"),
    # "On 03/11/2021 15:51, John Doe wrote:": no address, and 03/11 needs the locale.
    "thunderbird_en_body_variant_4": Expect("2021-11-03", "15:51", None, sender="", locale=True, **REPLY),
    "thunderbird_es_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_fr_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_it_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_nl_body": Expect("2021-11-03", "15:51", "+01:00"),
    # "-----Original Message-----" with names only: "From: John Doe", "To: Bessie Berry".
    "unknown_en_body_variant_12": Expect(
        "2022-07-23", "07:53", None, cc=False, to=False, sender="", client="outlook_2013"
    ),
    "yahoo_de_body": Expect("2021-11-02", "09:26", "+01:00"),  # MEZ
    "yahoo_en_body": Expect("2021-11-02", "09:26", "+01:00"),  # GMT+1
    "yahoo_en_body_variant_1": Expect("2021-11-02", "09:26", "+01:00", cc=False),
    "yahoo_en_body_variant_2": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_en_body_variant_3": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_en_body_variant_4": Expect("2021-11-02", "15:01", "+01:00", **REPLY),
    "yahoo_es_body": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_fr_body": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_it_body": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_nl_body": Expect("2021-11-02", "09:26", "+01:00"),
    # Languages beyond the first five (crisp-oss fixtures, see SOURCES.md): CLDR's words.
    "gmail_cs_body": Expect("2021-10-27", "09:31", None),  # "st 27. 10. 2021 v 9:31"
    "gmail_fi_body": Expect("2021-10-27", "09:31", None),  # "ke 27. lokak. 2021 klo 9.31"
    "gmail_hu_body": Expect("2021-10-27", "09:31", None),  # "2021. okt. 27., Sze, 9:31"
    "gmail_pl_body": Expect("2021-10-27", "09:31", None),  # "śr., 27 paź 2021 o 09:31"
    "gmail_ru_body": Expect("2021-10-27", "09:31", None),  # "ср, 27 окт. 2021 г. в 09:31"
    "gmail_tr_body": Expect("2021-10-27", "09:31", None),  # "27 Eki 2021 Çar, 09:31"
    "gmail_uk_body": Expect("2021-10-27", "09:31", None),  # "ср, 27 жовт. 2021 о 09:31"
    "apple_mail_hu_body": Expect("2021-10-26", "14:25", "+03:00"),  # "2021. október 26. 14:25:08 EEST"
    "apple_mail_pl_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26 października 2021 o ... EEST"
    "apple_mail_ru_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26 октября 2021 г. в ... GMT+3"
    "apple_mail_tr_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26 Ekim 2021 14:25:08 GMT+3"
    # "---------- メッセージを転送 ---------", keys with full-width colons, "2022年9月19日月曜日".
    "hubspot_ja_body": Expect("2022-09-19", "17:55", "-04:00"),
    # Keys of forward_keys beyond round one (crisp-oss fixtures, see SOURCES.md).
    "gmail_da_body": Expect("2021-10-27", "09:31", None),  # "Fra:", "ons. 27. okt. 2021 kl. 09.31"
    "gmail_et_body": Expect("2021-10-27", "09:31", None),  # "Saatja:", "K, 27. oktoober 2021 kell 09:31"
    "gmail_pt_br_body": Expect("2021-10-27", "09:31", None),  # "qua., 27 de out. de 2021 às 09:31"
    "apple_mail_cs_body": Expect("2021-10-26", "14:25", "+03:00"),  # "Začátek přeposílané zprávy", GMT+3
    "apple_mail_sv_body": Expect("2021-10-26", "14:25", "+03:00"),  # "Vidarebefordrat mejl", EEST
    # New Outlook: a bare block starting "Od:"/"Fra:", no blank line before the body.
    "new_outlook_2019_cs_body": Expect("2021-10-28", "12:06", None),  # "čtvrtek, 28. října 2021 12:06"
    "new_outlook_2019_da_body": Expect("2021-10-28", "12:06", None),  # "torsdag, 28. oktober 2021 kl. 12.06"
    # The rest of crisp-oss's fixtures (SOURCES.md, "The remaining fixtures"); dates as each writes it.
    "apple_mail_da_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26. oktober 2021 kl. 14.25.08 EEST"
    "apple_mail_fi_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26. lokakuuta 2021 klo 14.25.08 UTC+3"
    "apple_mail_fr_body_variant_13": Expect("2022-08-17", "09:06", "+02:00"),  # "17 août 2022 à 09:06:24 UTC+2"
    "apple_mail_hr_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26. listopada 2021. u 14:25:08 EEST"
    "apple_mail_no_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26. oktober 2021 kl. 14:25:08 EEST"
    "apple_mail_pt_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26 de outubro de 2021, 14:25:08 EEST"
    "apple_mail_pt_br_body": Expect("2021-10-26", "14:25", "+03:00"),
    "apple_mail_ro_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26 octombrie 2021, 14:25:08 EEST"
    "apple_mail_sk_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26. októbra 2021, 14:25:08 GMT+3"
    "apple_mail_uk_body": Expect("2021-10-26", "14:25", "+03:00"),  # "26 жовтня 2021 р. о 14:25:08 GMT+3"
    "gmail_hr_body": Expect("2021-10-27", "09:31", None),  # "sri, 27. lis 2021. u 09:31"
    "gmail_no_body": Expect("2021-10-27", "09:31", None),  # "ons. 27. okt. 2021 kl. 09:31"
    "gmail_pt_body": Expect("2021-10-27", "09:31", None),  # "quarta, 27/10/2021 à(s) 09:31": 27 > 12
    "gmail_ro_body": Expect("2021-10-27", "09:31", None),  # "mie., 27 oct. 2021 la 09:31"
    "gmail_sk_body": Expect("2021-10-27", "09:31", None),  # "st 27. 10. 2021 o 9:31"
    "gmail_sv_body": Expect("2021-10-27", "09:31", None),  # "ons 27 okt. 2021 kl 09:31"
    "hubspot_fi_body": Expect("2022-09-19", "17:55", "-04:00"),  # "maanantai 19. syyskuuta 2022 klo 17.55.44 -0400"
    "hubspot_pl_body": Expect("2022-09-19", "17:55", "-04:00"),
    "hubspot_pt_br_body": Expect("2022-09-19", "17:55", "-04:00"),
    "hubspot_sv_body": Expect("2022-09-19", "17:55", "-04:00"),
    "new_outlook_2019_fi_body": Expect("2021-10-28", "12:06", None),  # "torstaina, 28. lokakuuta 2021 klo 12.06"
    "new_outlook_2019_hu_body": Expect("2021-10-28", "12:46", None),  # "csütörtök, 2021. október 28. 12:46"
    "new_outlook_2019_no_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_pl_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_pt_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_pt_br_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_ru_body": Expect("2021-10-28", "12:46", None),  # "четверг, 28 октября 2021 г. в 12:46"
    "new_outlook_2019_sk_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_sv_body": Expect("2021-10-28", "12:46", None),
    "new_outlook_2019_tr_body": Expect("2021-10-28", "12:46", None),  # "Perşembe, 28 Ekim 2021 12:46"
    # Outlook 2019's reply line in each language; 28 > 12 settles every day/month order.
    "outlook_2019_cz_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),  # "Dne ... napsal(a):"
    "outlook_2019_da_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),  # "28/10/2021 12.46"
    "outlook_2019_fi_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),  # "... kirjoitti 28/10/2021 12.46:"
    "outlook_2019_hu_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_no_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_pl_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    # "Em 28/10/21, 12:46": 28 October 2021 (dd/mm/yy) or 21 October 2028 (yy/mm/dd); only a
    # day-first locale puts the year last.
    "outlook_2019_pt_body": Expect("2021-10-28", "12:46", None, locale=True, **OUTLOOK_2019),
    "outlook_2019_ru_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_sk_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),  # "... používateľ ... napísal:"
    "outlook_2019_sv_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),
    "outlook_2019_tr_body": Expect("2021-10-28", "12:46", None, **OUTLOOK_2019),  # "..., 28/10/2021 12:46 tarihinde"
    "outlook_live_body": Expect("2021-10-27", "15:14", None),  # "Wednesday, October 27, 2021 15:14"
    # Thunderbird writes the RFC 5322 date in every language: "Wed, 3 Nov 2021 15:51:30 +0100".
    "thunderbird_cs_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_da_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_fi_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_hr_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_hu_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_no_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_pl_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_pt_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_pt_br_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_ro_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_ru_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_sk_body": Expect("2021-11-03", "15:51", "+01:00"),  # "... Preposlaná správa --- Forwarded Message"
    "thunderbird_sv_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_tr_body": Expect("2021-11-03", "15:51", "+01:00"),
    "thunderbird_uk_body": Expect("2021-11-03", "15:51", "+01:00"),
    "yahoo_cs_body": Expect("2021-11-02", "09:26", "+01:00"),  # "úterý 2. listopadu 2021 09:26:50 SEČ"
    "yahoo_da_body": Expect("2021-11-02", "09:26", "+01:00"),  # "tirsdag den 2. november 2021 09.26.50 CET"
    "yahoo_fi_body": Expect("2021-11-02", "09:26", "+01:00"),  # "... 2021 klo 09.26.50 UTC+1"
    "yahoo_hu_body": Expect("2021-11-02", "09:26", "+01:00"),  # "2021. november 2., kedd 09:26:50 CET"
    "yahoo_no_body": Expect("2021-11-02", "09:26", "+01:00"),
    # "...<bessie.berry@acme.com>Dw Walter Sheltan <...>": Yahoo's Polish wrote no colon after
    # "Dw" (Cc), so the copies run into the To line, where they are kept as recipients.
    "yahoo_pl_body": Expect("2021-11-02", "09:26", "+01:00", cc=False, copies_in_to=True),
    # "...09:26:50 CETAssunto Integer consequat non purus": Yahoo's Portuguese (Portugal) wrote
    # no colon after "Assunto", so the subject runs into the date; neither is read.
    "yahoo_pt_body": Expect(
        "2021-11-02", "09:26", "+01:00", subject="", undated="the subject key has no colon and runs into the date"
    ),
    "yahoo_pt_br_body": Expect("2021-11-02", "09:26", "+01:00"),  # "... 2021 09:26:50 GMT+1"
    "yahoo_ro_body": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_ru_body": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_sk_body": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_sv_body": Expect("2021-11-02", "09:26", "+01:00"),
    "yahoo_tr_body": Expect("2021-11-02", "09:26", "+01:00"),  # "2 Kasım 2021 Salı 09:26:50 GMT+1"
    "yahoo_uk_body": Expect("2021-11-02", "09:26", "+01:00"),
}

#: File-name prefix -> the client label the parser should report.
CLIENT_BY_PREFIX = {
    "apple_mail": "apple_mail",
    "gmail": "gmail",
    "hubspot": "hubspot",
    "ionos_one_and_one": "ionos",
    "mailmate": "mailmate",
    "missive": "missive",
    "new_outlook_2019": "new_outlook",
    "outlook_2013": "outlook_2013",
    "outlook_live": "outlook_live",
    "thunderbird": "thunderbird",
    "yahoo": "yahoo",
}

_ADDRESS = re.compile(r"[^\s<>]+@[^\s<>]+")


def parse(body: str, day_first: bool | None = None) -> ForwardedOriginal | None:
    return find_forwarded(body, default_zone=CUSTODIAN, zone_name=CUSTODIAN_NAME, day_first=day_first)


def addresses(entries: tuple[str, ...]) -> set[str]:
    return {found.lower() for entry in entries for found in _ADDRESS.findall(entry)}


def expected_client(name: str, expect: Expect) -> str:
    if expect.client is not None:
        return expect.client
    return next(
        client
        for prefix, client in sorted(CLIENT_BY_PREFIX.items(), key=lambda item: -len(item[0]))
        if name.startswith(prefix)
    )


def body_fixtures() -> list[str]:
    return sorted(path.stem for path in DATA.glob("*_body*.txt"))


def test_every_copied_body_fixture_has_an_expectation() -> None:
    assert body_fixtures() == sorted(EXPECTED)


@pytest.mark.parametrize("name", body_fixtures())
def test_fixture_original(name: str) -> None:
    expect = EXPECTED[name]
    body = (DATA / f"{name}.txt").read_text(encoding="utf-8")
    found = parse(body)

    assert found is not None
    assert found.depth == 1
    assert found.client == expected_client(name, expect)
    assert found.sender_address == expect.sender
    assert expect.name in found.sender
    assert found.subject == expect.subject
    assert ("bessie.berry@acme.com" in addresses(found.to)) is expect.to
    if expect.cc:
        assert addresses(found.cc) >= CC
    else:
        assert found.cc == ()
    assert (addresses(found.to) >= CC) is expect.copies_in_to
    assert found.body.startswith(("Aenean quis diam urna", "Unicum iter ad supremum"))

    if expect.undated:
        assert found.created_at is None, expect.undated
        assert found.time is None
        # The date a reader sees is in the text kept for review, unread.
        assert expect.day[:4] in found.date_text and expect.hhmm in found.date_text
        return
    if expect.locale is not None:
        # Undecidable without the custodian's locale: undated, never guessed.
        assert found.created_at is None
        assert found.time is None
        assert found.date_text
        found = parse(body, day_first=expect.locale)
        assert found is not None
    assert_date(found, expect)


def assert_date(found: ForwardedOriginal, expect: Expect) -> None:
    moment = found.created_at
    assert moment is not None
    assert found.time is not None
    assert moment.date().isoformat() == expect.day
    assert moment.strftime("%H:%M") == expect.hhmm
    assert found.time.raw == found.date_text
    if expect.offset is None:
        assert moment.tzinfo is CUSTODIAN
        assert found.time.zone == CUSTODIAN_NAME
    else:
        assert moment.strftime("%z") == expect.offset.replace(":", "")
    if expect.locale is not None:
        assert found.time.decided_by == "locale"
        assert found.time.day_first is expect.locale
    elif expect.offset is None:
        assert found.time.decided_by == "custodian_zone"
    else:
        assert found.time.decided_by == "format"


def test_time_reading_names_client_and_language() -> None:
    found = parse((DATA / "gmail_fr_body.txt").read_text(encoding="utf-8"))
    assert found is not None
    assert found.date_text == "mer. 27 oct. 2021 à 09:31"
    assert found.time is not None
    assert found.time.layout == "gmail-fr"
    assert found.time.day_first is None


def test_outlook_2019_numeric_date_is_settled_by_the_day_above_12() -> None:
    found = parse((DATA / "outlook_2019_en_body.txt").read_text(encoding="utf-8"))
    assert found is not None
    assert found.time is not None
    assert found.time.day_first is True
    assert found.body.startswith("Aenean")  # the 4-space indentation is gone


def test_yahoo_run_together_headers_are_split() -> None:
    found = parse((DATA / "yahoo_de_body.txt").read_text(encoding="utf-8"))
    assert found is not None
    assert found.to == ("bessie.berry@acme.com",)
    assert found.cc == ("Walter Sheltan <walter.sheltan@acme.com>", "Nicholas <nicholas@globex.corp>")
    assert found.date_text == "Dienstag, 2. November 2021, 09:26:50 MEZ"


def test_html_to_text_address_forms_are_normalised() -> None:
    found = parse((DATA / "outlook_live_en_body_variant_10.txt").read_text(encoding="utf-8"))
    assert found is not None
    assert found.sender == "John Doe <john.doe@acme.com> on behalf of ticketing@acme.com"
    assert "*" not in found.sender and "mailto" not in found.sender
    found = parse((DATA / "outlook_2013_en_body.txt").read_text(encoding="utf-8"))
    assert found is not None
    assert found.cc == ("Walter Sheltan <walter.sheltan@acme.com>", "Nicholas <nicholas@globex.corp>")


@pytest.mark.parametrize(
    "body",
    [
        "",
        "Hi Bessie,\n\nsee you tomorrow.\n\nJohn",
        "From: the whole team, thanks!\n\nRegards",
        "Begin forwarded message:\n\nnothing follows",
        "---------- Forwarded message ---------\n\n",
        "________________________________\nThis email is confidential.",
        "On the other hand, this is what I wrote:\n> nothing",
    ],
)
def test_no_forward_returns_none(body: str) -> None:
    assert parse(body) is None


GMAIL_INNER = """\
---------- Forwarded message ---------
From: John Doe <john.doe@acme.com>
Date: Wed, Oct 27, 2021 at 9:31 AM
Subject: Integer consequat non purus
To: <bessie.berry@acme.com>

Aenean quis diam urna.
"""


def relay(subject: str, comment: str = "") -> str:
    return f"""\
Please file this.

---------- Forwarded message ---------
From: Bessie Berry <bessie.berry@acme.com>
Date: Mon, Nov 8, 2021 at 4:00 PM
Subject: {subject}
To: <custodian@example.gov>

{comment}
{GMAIL_INNER}"""


@pytest.mark.parametrize(
    ("subject", "comment"),
    [
        ("Fwd: Integer consequat non purus", ""),
        ("Fwd: Integer consequat non purus", "FYI, see below."),  # the prefix says relay
        ("Integer consequat non purus", ""),  # no text of its own: a relay
    ],
)
def test_forward_of_a_forward_returns_the_innermost(subject: str, comment: str) -> None:
    found = parse(relay(subject, comment))
    assert found is not None
    assert found.depth == 2
    assert found.sender_address == "john.doe@acme.com"
    assert found.created_at is not None
    assert found.created_at.date().isoformat() == "2021-10-27"
    assert found.body == "Aenean quis diam urna."


def test_a_forwarded_outlook_reply_style_forward_inside_a_forward_is_the_original() -> None:
    # Outlook 2019 forwards with a reply header and a 4-space indent (see outlook_2019_en_body);
    # Alice passed John's forward on with Gmail. Bob's older message is quoted inside John's, not the original.
    body = (
        "---------- Forwarded message ---------\nFrom: Alice <alice@example.com>\n"
        "Date: Mon, Mar 10, 2025 at 8:00 AM\nSubject: Fwd: contract\nTo: <fw@example.com>\n\n"
        'On 28/02/2025 12:46, "John Doe" <john.doe@acme.com> wrote:\n\n'
        "    I accept the terms.\n\n"
        "    From: Bob <bob@example.com>\n    Sent: Monday, February 3, 2025 9:31 AM\n"
        "    To: John Doe <john.doe@acme.com>\n    Subject: contract\n\n    Please sign.\n"
    )
    found = parse(body)
    assert found is not None
    assert found.depth == 2
    assert found.client == "outlook_2019_reply"
    assert found.sender_address == "john.doe@acme.com"
    assert found.created_at is not None and found.created_at.strftime("%Y-%m-%d %H:%M") == "2025-02-28 12:46"
    assert found.body.startswith("I accept the terms.")


#: A reply Bob wrote earlier, quoted at the bottom of the forwarded message: never the original.
OLDER_QUOTED_REPLY = (
    "\nOn Mon, Feb 3, 2025 at 9:31 AM Bob Smith <bob@example.com> wrote:\n> Please sign the contract.\n"
)


@pytest.mark.parametrize(
    ("headers", "sender"),
    [
        # Outlook's header keys in Simplified Chinese, Traditional Chinese, Japanese and Korean.
        ("发件人: Li Wei <li.wei@example.cn>\n发送时间: 2025年3月10日 9:31\n收件人: me@example.com\n"
         "抄送: wang@example.cn\n主题: RE: contract", "li.wei@example.cn"),
        ("寄件者: Chen Mei <chen@example.tw>\n寄件日期: 2025年3月10日 上午 09:31\n收件者: me@example.com\n"
         "副本: lin@example.tw\n主旨: RE: contract", "chen@example.tw"),
        ("差出人: Tanaka <tanaka@example.jp>\n送信日時: 2025年3月10日 9:31\n宛先: me@example.com\n"
         "CC: sato@example.jp\n件名: RE: contract", "tanaka@example.jp"),
        ("보낸 사람: Kim <kim@example.kr>\n보낸 날짜: 2025년 3월 10일 월요일 오전 9:31\n받는 사람: me@example.com\n"
         "참조: lee@example.kr\n제목: RE: contract", "kim@example.kr"),
    ],
)
def test_cjk_outlook_headers_give_the_sender_and_the_date(headers: str, sender: str) -> None:
    found = parse("FYI\n\n________________________________\n" + headers + "\n\nAgreed, signing today.\n"
                  + OLDER_QUOTED_REPLY)
    assert found is not None
    assert found.sender_address == sender
    assert found.subject == "RE: contract"
    assert len(found.to) == 1 and len(found.cc) == 1
    # Dates written with 年/月/日 (년/월/일), with 上午/오전 for the morning: 10 March 2025, 09:31.
    assert found.created_at is not None and found.created_at.strftime("%Y-%m-%d %H:%M") == "2025-03-10 09:31"
    assert found.time is not None and found.time.raw == found.date_text
    assert found.body.startswith("Agreed, signing today.")


SEPARATORS = [
    "________________________________",
    "-----Original Message-----",
    "---------- Forwarded message ---------",
]

#: A header block whose keys are in no language of forward_keys (made-up keys, not a real client's).
UNKNOWN_KEYS = "Qfrom: Nikos <nikos@example.gr>\nQsent: 10.03.2025 9:31\nQto: me@example.com\nQsubject: RE: contract"


@pytest.mark.parametrize("separator", SEPARATORS)
def test_a_header_block_that_cannot_be_read_ends_the_search(separator: str) -> None:
    # Bob's older reply quoted below an unreadable block is not the original; nothing is found,
    # and the forward is undated for review.
    assert parse(f"FYI\n\n{separator}\n{UNKNOWN_KEYS}\n\nAgreed.\n{OLDER_QUOTED_REPLY}") is None


@pytest.mark.parametrize("separator", SEPARATORS)
def test_a_block_cut_at_an_unknown_date_key_gives_the_sender_undated(separator: str) -> None:
    # Greek: "Από", "Προς", "Θέμα" are Thunderbird's keys (forward_keys "el"); Outlook's Greek
    # "Sent" is not in the table. The block ends there: Nikos is the sender, the date is unread,
    # and Bob's older quoted reply is never taken instead.
    body = (
        f"FYI\n\n{separator}\nΑπό: Nikos <nikos@example.gr>\nΣτάλθηκε: Δευτέρα, 10 Μαρτίου 2025 9:31 πμ\n"
        f"Προς: me@example.com\nΘέμα: RE: contract\n\nAgreed.\n{OLDER_QUOTED_REPLY}"
    )
    found = parse(body)
    assert found is not None
    assert found.sender_address == "nikos@example.gr"
    assert found.created_at is None and found.time is None


def test_an_unreadable_block_inside_a_relay_is_not_found_either() -> None:
    # Alice relays ("Fwd:") a forward whose keys are unknown: her own block is a forward's, never the original.
    body = (
        "---------- Forwarded message ---------\nFrom: Alice <alice@example.com>\n"
        "Date: Mon, Mar 10, 2025 at 8:00 AM\nSubject: Fwd: contract\nTo: <fw@example.com>\n\n"
        f"________________________________\n{UNKNOWN_KEYS}\n\nAgreed.\n{OLDER_QUOTED_REPLY}"
    )
    assert parse(body) is None


def test_underscores_over_a_signature_do_not_end_the_search() -> None:
    body = "FYI\n\n____________________\nJane Doe | Records Officer\n\n" + GMAIL_INNER
    found = parse(body)
    assert found is not None and found.sender_address == "john.doe@acme.com"


def test_message_with_its_own_text_above_a_quoted_forward_is_the_record() -> None:
    found = parse(relay("Our notes", "Here are my notes on the thread."))
    assert found is not None
    assert found.depth == 1
    assert found.sender_address == "bessie.berry@acme.com"
    assert found.created_at is not None
    assert found.created_at.date().isoformat() == "2021-11-08"


def test_apple_forward_of_a_forward_in_nested_quotes() -> None:
    body = (
        "> Begin forwarded message:\n>\n"
        "> From: Bessie Berry <bessie.berry@acme.com>\n"
        "> Subject: Fwd: Integer consequat non purus\n"
        "> Date: 8 November 2021 at 16:00:00 EST\n"
        "> To: custodian@example.gov\n>\n"
        "> > Begin forwarded message:\n> >\n"
        "> > From: John Doe <john.doe@acme.com>\n"
        "> > Subject: Integer consequat non purus\n"
        "> > Date: 25 October 2021 at 11:17:21 EEST\n"
        "> > To: bessie.berry@acme.com\n> >\n"
        "> > Aenean quis diam urna.\n"
    )
    found = parse(body)
    assert found is not None
    assert found.depth == 2
    assert found.sender_address == "john.doe@acme.com"
    assert found.created_at == datetime.fromisoformat("2021-10-25T11:17:21+03:00")
    assert found.body == "Aenean quis diam urna."


@pytest.mark.parametrize(
    ("body", "sender", "when"),
    [
        # The reply-parser fixtures' shapes (tests/data/email_replies): wrapped and squeezed headers.
        ("On Dec 16, 2011, at 12:47 PM, Corey Donohoe\n<reply@example.com>\nwrote:\n\n> Fixed?\n",
         "reply@example.com", "2011-12-16 12:47"),
        ("On Tue, Sep 25, 2012 at 8:59 AM, Chris Wanstrath\n<notify@example.com>wrote:\n\n> Steps 0-2.\n",
         "notify@example.com", "2012-09-25 08:59"),
        ('In data 11 ottobre 2017 21:11:31 "John Doe" <john@example.com> ha scritto:\n\nBuongiorno!\n',
         "john@example.com", "2017-10-11 21:11"),
        ("---- On Wed, 24 Feb 2021 14:02:50 +0530 john@example.com wrote ----\n\nHello\n",
         "john@example.com", "2021-02-24 14:02"),
        ("From: Human Resources\n<hr@example.com>\nSent: Monday, August 26, 2019 4:37 PM\n"
         "To: Abhishek <a@example.com>\nSubject: A new message\n\nHello\n", "hr@example.com", "2019-08-26 16:37"),
    ],
)
def test_wrapped_and_squeezed_reply_headers(body: str, sender: str, when: str) -> None:
    found = parse(body)
    assert found is not None
    assert found.sender_address == sender
    assert found.created_at is not None and found.created_at.strftime("%Y-%m-%d %H:%M") == when


@pytest.mark.parametrize(
    ("header", "sender", "when"),
    [
        # A first name that is also a month (or "Mar", also mardi/martes) is the sender's, not the date's.
        ("On Tue, Mar 4, 2025 at 9:31 AM Jan Novak <jan@example.com> wrote:", "Jan Novak", "2025-03-04 09:31"),
        ("On Tue, Mar 4, 2025 at 9:31 AM June Park <june@example.com> wrote:", "June Park", "2025-03-04 09:31"),
        ("On Mar 4, 2025, at 9:31 AM, May Lee <may@example.com> wrote:", "May Lee", "2025-03-04 09:31"),
        ("On Fri, Apr 4, 2025 at 9:31 AM Mar Vidal <mar@example.com> wrote:", "Mar Vidal", "2025-04-04 09:31"),
        ("On 4 Mar 2025, Jan Novak <jan@example.com> wrote:", "Jan Novak", "2025-03-04 00:00"),
        ("On Wed, Oct 27, 2021 at 9:31 AM Dec Ryan <dec@example.com> wrote:", "Dec Ryan", "2021-10-27 09:31"),
        ("Le mar. 4 mars 2025 à 09:31, Jan Novak <jan@example.com> a écrit :", "Jan Novak", "2025-03-04 09:31"),
        # The sender's initials read like a second am/pm marker: the first one holds.
        ("On Tue, Mar 4, 2025 at 11:31 PM A. M. Smith <ams@example.com> wrote:", "A. M. Smith", "2025-03-04 23:31"),
    ],
)
def test_a_name_that_looks_like_a_date_word_stays_the_senders(header: str, sender: str, when: str) -> None:
    found = parse(f"{header}\n> The budget is attached.\n")
    assert found is not None
    assert found.sender == f"{sender} <{found.sender_address}>"
    assert found.created_at is not None and found.created_at.strftime("%Y-%m-%d %H:%M") == when


def test_a_bracketed_address_alone_does_not_make_a_reply_header() -> None:
    # Three lines are joined only when the middle one is an address and the last ends the sentence.
    assert parse("On Monday, the team\n<agenda@example.com>\nmet again.\n> notes\n") is None


@pytest.mark.parametrize(
    ("text", "day_first", "expected", "decided_by"),
    [
        ("03/04/2021 10:00", None, None, None),
        ("03/04/2021 10:00", True, "2021-04-03", "locale"),
        ("03/04/2021 10:00", False, "2021-03-04", "locale"),
        ("13/04/2021 10:00", None, "2021-04-13", "custodian_zone"),  # 13 > 12: the format says
        ("04/13/2021 10:00 +0200", None, "2021-04-13", "format"),
        ("04/04/2021 10:00", None, "2021-04-04", "custodian_zone"),  # same either way
        # 25 March 2004 (dd-mm-yy), or 4 March 2025 (yy-mm-dd, as Swedish and East Asian clients write it)?
        ("25-03-04 09:31", None, None, None),
        ("25-03-04 09:31", False, None, None),  # month first: still either
        ("25-03-04 09:31", True, "2004-03-25", "locale"),  # a day-first locale writes dd-mm-yy
        ("25.03.99 09:31", None, "1999-03-25", "custodian_zone"),  # 99 is no day: the year comes last
    ],
)
def test_numeric_reply_dates(text: str, day_first: bool | None, expected: str | None, decided_by: str | None) -> None:
    found = parse(f"On {text}, John Doe <john.doe@acme.com> wrote:\n> Hello\n", day_first)
    assert found is not None
    assert found.date_text == text
    if expected is None:
        assert found.created_at is None
        assert found.time is None
        return
    assert found.created_at is not None
    assert found.time is not None
    assert found.created_at.date().isoformat() == expected
    assert found.time.decided_by == decided_by


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("Wed, Oct 27, 2021 at 9:31 AM", "2021-10-27T09:31:00-04:00"),
        ("Wed, Oct 27, 2021 at 9:31\u202fPM", "2021-10-27T21:31:00-04:00"),  # narrow NBSP
        ("27 Oct 2021 9:31 pm.", "2021-10-27T21:31:00-04:00"),
        ("Mi., 27. Okt. 2021 um 09:31 Uhr", "2021-10-27T09:31:00-04:00"),
        ("mié, 27 oct 2021 a las 9:31 p. m.", "2021-10-27T21:31:00-04:00"),
        ("mer 27 ott 2021 alle ore 09:31", "2021-10-27T09:31:00-04:00"),
        ("wo 27 okt. 2021 om 09:31", "2021-10-27T09:31:00-04:00"),
        ("qua., 27 de out. de 2021 às 09:31", "2021-10-27T09:31:00-04:00"),
        ("ср, 27 окт. 2021 г. в 09:31", "2021-10-27T09:31:00-04:00"),
        ("ons. 27. okt. 2021 kl. 09.31", "2021-10-27T09:31:00-04:00"),
        ("mar. 2 nov. 2021 à 12:00 (UTC+01:00) Amsterdam, Berlin", "2021-11-02T12:00:00+01:00"),
        ("Tuesday, November 2, 2021, 09:26:50 AM GMT+1", "2021-11-02T09:26:50+01:00"),
        ("26. Oktober 2021 um 14:25:08 OESZ", "2021-10-26T14:25:08+03:00"),
        ("Wed, 27 Oct 2021 09:31:00 +0000 (UTC)", "2021-10-27T09:31:00+00:00"),
        ("2021-10-27 09:31", "2021-10-27T09:31:00-04:00"),
        ("31/12/99 23:00", "1999-12-31T23:00:00-05:00"),  # two-digit year as POSIX %y reads it
        ("31/12/49 23:00", "2049-12-31T23:00:00-05:00"),  # and as RFC 5322 section 4.3 reads it
    ],
)
def test_localised_dates(text: str, iso: str) -> None:
    reading = read_mail_date(text, default_zone=CUSTODIAN, zone_name=CUSTODIAN_NAME)
    assert reading.problem == ""
    assert reading.at == datetime.fromisoformat(iso)
    assert reading.at is not None and reading.at.utcoffset() == datetime.fromisoformat(iso).utcoffset()


@pytest.mark.parametrize(
    "text",
    [
        "27 Oct 2021 09:31 IST",  # India, Ireland or Israel: not guessed
        "27 Oct 2021 09:31 CST",  # US Central or China Standard Time: not guessed either
        "Wed, Oct 27 at 9:31 AM",  # no year
        "27 Oct 21 09:31",  # two-digit year beside a day: ambiguous
        "31 Feb 2021 10:00",
        "27 Oct 0931 10:00",  # a typo, not a year of e-mail
        "31/12/56 23:00",  # 1956 by RFC 5322 section 4.3, never 2056
        "27 Oct 2021 13:00 PM",
        "27 Oct 2021 11:31 PM a.m.",  # two am/pm markers: which one holds is a guess
        "soon",
        "",
    ],
)
def test_unreadable_dates_stay_undated(text: str) -> None:
    reading = read_mail_date(text, default_zone=CUSTODIAN, zone_name=CUSTODIAN_NAME)
    assert reading.at is None
    assert reading.problem


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Fwd: Integer consequat non purus", SUBJECT),
        ("FW: Integer consequat non purus", SUBJECT),
        ("Fw: WG: TR: RV: I: Integer consequat non purus", SUBJECT),
        ("Videresend: Integer consequat non purus", SUBJECT),
        ("[Fwd: Integer consequat non purus]", SUBJECT),
        ("Fwd: [Fwd: FW: Integer consequat non purus]", SUBJECT),
        ("TR : Integer consequat non purus", SUBJECT),
        ("Fwd[2]: Integer consequat non purus", SUBJECT),
        ("  fwd:   Integer consequat non purus  ", SUBJECT),
        ("Re: Integer consequat non purus", "Re: Integer consequat non purus"),
        ("Information: the plan", "Information: the plan"),
        ("[EXTERNAL] Fwd: x", "[EXTERNAL] Fwd: x"),
        ("Fwd:", ""),
        ("", ""),
    ],
)
def test_strip_forward_prefix(subject: str, expected: str) -> None:
    assert strip_forward_prefix(subject) == expected


@pytest.mark.parametrize("path", sorted(DATA.glob("*_subject*.txt")), ids=lambda path: path.stem)
def test_fixture_subjects(path: Path) -> None:
    subject = path.read_text(encoding="utf-8").strip()
    expected = subject if subject.startswith("Re:") else SUBJECT  # replies keep "Re:"
    assert strip_forward_prefix(subject) == expected


_MB = 1 << 20


def _repeat(piece: str) -> str:
    return (piece * (_MB // len(piece) + 1))[:_MB]


@pytest.mark.parametrize(
    "body",
    [
        _repeat("---------- Forwarded message ---------\n"),
        _repeat("----- Forwarded Message ----- From: a@b.c To: "),
        _repeat("> > > > > > > > Begin forwarded message:\n"),
        _repeat("Begin forwarded message:\n\n"),
        _repeat("From: x@y.z\n"),
        _repeat("From: x@y.z\nDate: Mon, 1 Oct 2021 10:00\nTo: a@b.c\n"),
        _repeat("On Wed, Oct 27, 2021 at 9:31 AM John Doe <john.doe@acme.com>\n"),
        _repeat("On 1 Oct 2021 at 10:00 1 2 3 4 5 6 7 8 9 10 11 wrote:\n"),
        _repeat("_" * 40 + "\n"),
        _repeat("a@"),
        _repeat("<mailto:"),
        _repeat("> "),
        "-" * _MB,
        "\n" * _MB,
        "---------- Forwarded message ---------\nFrom: " + _repeat("John <a@b.c>, "),
        "---------- Forwarded message ---------\nFrom: a@b.c\nDate: " + "1" * _MB,
    ],
    ids=lambda body: repr(body[:24]),
)
def test_one_megabyte_of_separator_junk_is_fast(body: str) -> None:
    started = time.perf_counter()
    parse(body)
    assert time.perf_counter() - started < 1.0


def test_long_subject_prefix_chain_is_fast() -> None:
    started = time.perf_counter()
    assert strip_forward_prefix("Fwd: " * (_MB // 5) + "x") == "x"
    assert time.perf_counter() - started < 1.0


_SOUP_WORDS = (
    "---------- Forwarded message --------- | ----- Forwarded Message ----- | > | >"
    " | Begin forwarded message: | ________________________________ | -----Original Message-----"
    " | From: | *From:* | Von: | De : | Date: | Sent: | To: | Cc: | Subject: | On | wrote:"
    " | Am | schrieb | Le | a écrit : | John Doe | <john.doe@acme.com> | [mailto:a@b.c]"
    " | <mailto:a@b.c> | (a@b.c) | « | » | \" | ' | @ | , | ; | : | 27 | 10 | 2021 | 03/11/2021"
    " | 9:31 | AM | PM | GMT+1 | +0200 | CEST | Oct | octobre | mié | à | um | Uhr"
)
_PIECES = (
    *_SOUP_WORDS.split("|"),
    *("\n", "\r\n", "\t", " ", "    ", "\ufeff", "\u00a0", "\u202f", "\u0301", "\x00", "\ud800"),
    *("é", "ß", "İ", "ﬁ", "٣"),
)


def test_random_separator_soup_never_raises() -> None:
    rng = random.Random(2911)
    for _ in range(3000):
        body = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 80)))
        for day_first in (None, True, False):
            found = parse(body, day_first)
            if found is not None:
                assert found.created_at is None or found.created_at.tzinfo is not None
                assert (found.time is None) == (found.created_at is None)


def test_a_written_zone_is_kept_as_written() -> None:
    found = parse((DATA / "apple_mail_en_body.txt").read_text(encoding="utf-8"))
    assert found is not None
    assert found.created_at is not None
    assert found.created_at.utcoffset() == timedelta(hours=3)
    assert found.time is not None
    assert found.time.zone == "+03:00"


def test_forward_keys_table_is_one_meaning_per_key_and_names_its_sources() -> None:
    # Gmail, Outlook and Apple Mail's UI languages; each has at least Thunderbird's keys.
    languages = [
        "ar", "bg", "ca", "cs", "da", "de", "el", "en", "es", "et", "fi", "fr", "he", "hi", "hr", "hu", "id",
        "it", "ja", "ko", "lt", "lv", "ms", "nb", "nl", "pl", "pt-BR", "pt-PT", "ro", "ru", "sk", "sl", "sr",
        "sv", "th", "tr", "uk", "vi", "zh-CN", "zh-TW",
    ]
    assert set(languages) <= set(FORWARD_KEYS)
    meaning: dict[str, str] = {}
    for language, entry in FORWARD_KEYS.items():
        assert entry.get("source"), language
        assert set(entry) - {"source"} <= set(FIELDS), language
        assert entry.get("from") and entry.get("subject") and (entry.get("date") or entry.get("sent")), language
        for field_name in ("from", "to", "cc", "bcc", "date", "sent", "subject", "ignored"):
            for key in filter(None, (part.strip() for part in entry.get(field_name, "").split("|"))):
                # A key read as two fields in two languages would be a silent wrong reading.
                assert meaning.setdefault(fold(key), field_name) == field_name, (language, key)


@pytest.mark.parametrize(
    ("language", "block"),
    [
        # Thunderbird's keys and separator (forward_keys) in three languages round one did not read;
        # the date lines are written for the test, not copied from a client.
        ("ko", "-------- 원본 메시지 --------\n제목: contract\n날짜: 2025년 3월 10일 9:31\n"
         "보낸 사람: Kim <kim@example.kr>\n받는 사람: me@example.com"),
        ("el", "-------- Αρχικό μήνυμα --------\nΘέμα: contract\nΗμερομηνία: 10 Μαρτίου 2025 9:31\n"
         "Από: Nikos <nikos@example.gr>\nΠρος: me@example.com"),
        ("id", "-------- Pesan Asli --------\nSubjek: contract\nTanggal: 10 Maret 2025 09:31\n"
         "Dari: Budi <budi@example.id>\nKepada: me@example.com"),
    ],
)
def test_thunderbird_blocks_in_new_languages_give_sender_subject_and_date(language: str, block: str) -> None:
    found = parse(f"FYI\n\n{block}\n\nAgreed.\n{OLDER_QUOTED_REPLY}")
    assert found is not None, language
    assert found.subject == "contract"
    assert found.sender_address.split("@")[0] in {"kim", "nikos", "budi"}
    assert found.created_at is not None and found.created_at.strftime("%Y-%m-%d %H:%M") == "2025-03-10 09:31"
