"""Google Voice from Takeout: what a records officer would see from each conversation and call file."""

from __future__ import annotations

import re
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import events, messages
from twentyday.errors import ParseError
from twentyday.parsers import formats, google_chat, google_takeout, google_voice, registry
from twentyday.parsers.base import HEAD_BYTES, BytesSource, ExportSource, FileSource, Limits, ZipSource, read_head
from twentyday.records import ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data"
TAKEOUT = DATA / "google_voice"
CALLS = TAKEOUT / "Takeout" / "Voice" / "Calls"
PACIFIC_DAYLIGHT = timezone(timedelta(hours=-7))
PACIFIC_STANDARD = timezone(timedelta(hours=-8))
#: The custodian as the pipeline describes them: jdoe's personal number and name (normalised).
OWNER = "+12025550100"


def hints(*self_names: str) -> ParseHints:
    return ParseHints(timezone=ZoneInfo("America/New_York"), zone_name="America/New_York",
                      self_names=frozenset(self_names or (OWNER, "jane doe")))


def parse(source: ExportSource, *self_names: str) -> list[Record]:
    return list(google_voice.parse(source, hints(*self_names)))


def takeout_files(root: Path = TAKEOUT) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "SOURCES.md"}


@pytest.fixture(scope="module")
def takeout(tmp_path_factory: pytest.TempPathFactory) -> ZipSource:
    out = tmp_path_factory.mktemp("takeout") / "takeout-20240401.zip"
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in takeout_files().items():
            archive.writestr(name, data)
    return ZipSource(out)


@pytest.fixture(scope="module")
def records(takeout: ZipSource) -> list[Record]:
    return parse(takeout)


def in_file(records: list[Record], stem: str) -> list[ParsedMessage]:
    return [m for m in messages(records) if m.extra["file"] == stem + ".html"]


# --- the wjcarpenter/gvoice-sms-takeout-xml fixtures (BSD-2-Clause) -------------------------


def test_every_text_in_every_conversation_is_a_record_at_its_minute_and_offset(records: list[Record]) -> None:
    """Read independently of the parser: each ``abbr.dt`` title of each Text/Group file is one record."""
    pages = [p for p in sorted(CALLS.glob("*.html")) if 'class="hChatLog' in p.read_text(encoding="utf-8")]
    assert len(pages) == 10
    total = 0
    for page in pages:
        titles = re.findall(r'<abbr class="dt" title="([^"]+)"', page.read_text(encoding="utf-8"))
        read = in_file(records, page.stem)
        assert [m.created_at for m in read] == [datetime.fromisoformat(t) for t in titles], page.name
        for message, title in zip(read, titles, strict=True):
            assert message.platform == "google_voice"
            assert message.time is not None
            assert (message.time.raw, message.time.decided_by, message.time.day_first) == (title, "format", None)
            assert message.time.zone == title[-6:]  # "-07:00" / "-08:00": the offset Takeout wrote
            assert "undated" not in message.flags
        total += len(titles)
    assert total == 66


def test_a_one_to_one_conversation_as_the_user_saw_it(records: list[Record]) -> None:
    read = in_file(records, "Edson Arantes do Nascimento - Text - 2023-09-20T00_54_54Z")
    assert [(m.sender, m.body) for m in read] == [
        (OWNER, "I left you some radio frequencies in the microwave"),
        ("+17323214444", "Thanks"),
    ]
    mine, theirs = read
    assert {m.conversation for m in read} == {"Edson Arantes do Nascimento"}
    # The owner's <abbr class="fn">Me</abbr> is the custodian; the number Voice gave is kept sealed.
    assert mine.extra["owner_number"] == "+17323210011"
    assert mine.created_at == datetime(2023, 9, 19, 17, 54, 54, 915000, tzinfo=PACIFIC_DAYLIGHT)
    assert theirs.recipients == (OWNER,)
    assert theirs.extra["sender_name"] == "Edson Arantes do Nascimento"
    assert theirs.extra["shown_time"] == "Sep 19, 2023, 6:19:24\u202fPM Pacific Time"
    assert theirs.created_at == datetime(2023, 9, 19, 18, 19, 24, 803000, tzinfo=PACIFIC_DAYLIGHT)
    # Takeout splits one conversation over files: they share the conversation.
    later = in_file(records, "Edson Arantes do Nascimento - Text - 2023-09-21T17_04_39Z")
    assert {m.conversation for m in later} == {"Edson Arantes do Nascimento"}


def test_the_owner_is_the_voice_number_when_the_custodian_lists_it(takeout: ZipSource) -> None:
    read = [m for m in messages(parse(takeout, "+17323210011", "jane doe"))
            if m.extra["file"].startswith("Agatha M Christie")]
    assert {m.sender for m in read} == {"+17323210011"}
    assert {m.recipients for m in read} == {("Agatha M Christie",)}  # the file names no number for her


def test_a_number_only_conversation_and_html_entities(records: list[Record]) -> None:
    read = in_file(records, "+17323217777 - Text - 2021-01-22T01_33_43Z")
    assert [m.sender for m in read] == [OWNER] + ["+17323217777"] * 4
    assert read[0].body == "Hans' weekly updates, please .. tx"
    assert read[0].created_at == datetime(2021, 1, 21, 17, 33, 43, 242000, tzinfo=PACIFIC_STANDARD)
    assert read[2].body.endswith("Make sure u click the link & add yourself to my phone so I can respond "
                                 "directly to u. Excited to talk about anything else.")


def test_group_conversations_name_their_participants(records: list[Record]) -> None:
    five = in_file(records, "Group Conversation - 2023-10-01T19_34_50Z")
    assert len(five) == 20
    assert {m.conversation for m in five} == {"Debbie One, Missy Two, Mary Four, Trish Three, Laura Five"}
    everyone = {"+12125550001", "+12125550002", "+12125550003", "+12125550004", "+12125550005", OWNER}
    for message in five:
        assert set(message.recipients) == everyone - {message.sender}
    assert [m.sender for m in five[:3]] == ["+12125550003", "+12125550003", OWNER]
    assert five[0].body == "Such a beautiful weekend - so great to see you all! Safe travels, everyone....\n❤️"
    unnamed = in_file(records, "Group Conversation - 2021-12-20T22_35_28Z")
    assert [m.conversation for m in unnamed] == ["William Shakespeare, +17323211717"]
    first = in_file(records, "Group Conversation - 2021-07-13T21_25_26Z")[0]
    assert first.body.startswith("Hi guys, I got this message from Søren.\n\nHi Rosalind quick question. \n")


def test_attachments_present_are_read_and_missing_ones_are_incomplete(records: list[Record]) -> None:
    vcard = in_file(records, "+17323217777 - Text - 2021-01-22T01_33_43Z")[4]
    [card] = vcard.attachments
    assert card.name == "+17323217777 - Text - 2021-01-22T01_33_43Z-5-1.vcf"  # the href has no extension
    assert card.content_type == "text/x-vcard"
    assert card.data == (CALLS / card.name).read_bytes()
    assert (vcard.body, vcard.flags) == ("MMS Received", ())

    photo, _, missing = in_file(records, "Alan A Milne - Text - 2023-09-29T23_40_59Z")
    [image] = photo.attachments
    assert (image.name, image.content_type) == ("Alan A Milne - Text - 2023-09-29T23_40_59Z-1-1.png", "image/png")
    assert image.data is not None and image.data.startswith(b"\x89PNG")
    assert photo.flags == ()
    [gone] = missing.attachments
    assert (gone.name, gone.data) == ("Alan A Milne - Text - 2023-09-29T23_40_59Z-3-1", None)
    assert missing.flags == ("media_omitted",)
    incomplete = [e for e in events(records, "incomplete_copy") if e.conversation == "Alan A Milne"]
    assert [e.at for e in incomplete] == [missing.created_at]
    assert "Alan A Milne - Text - 2023-09-29T23_40_59Z-3-1 (not in the export)" in incomplete[0].detail

    two = in_file(records, "Group Conversation - 2021-12-20T22_35_28Z")[0]
    assert (two.body, [a.omitted for a in two.attachments]) == ("", [True, True])
    # Every image upstream left out is reported, one event per message (8 messages, 9 images),
    # and the voicemail recording left out here.
    assert len(events(records, "incomplete_copy")) == 8 + 1
    assert sum(a.omitted for m in messages(records) for a in m.attachments) == 9 + 1


def test_a_voicemail_is_a_message_with_its_transcript_and_recording(records: list[Record]) -> None:
    kept, lost = (m for m in messages(records) if "voicemail" in m.flags)
    assert kept.conversation == "Edson Arantes do Nascimento"
    assert (kept.sender, kept.recipients) == ("+12123214444", (OWNER,))
    assert kept.body == "Hi, it's me. I'm just calling to say that I'm coming home."
    assert kept.created_at == datetime(2014, 5, 16, 19, 54, 27, tzinfo=PACIFIC_DAYLIGHT)
    assert kept.extra["duration"] == "0:00:22"
    [audio] = kept.attachments
    assert (audio.name, audio.content_type) == ("Edson Arantes do Nascimento - Voicemail - 2014-05-17T02_54_27Z.mp3",
                                                "audio/mpeg")
    assert audio.data == (CALLS / audio.name).read_bytes()
    assert lost.body == "Hi, Dad. It's me Edson. I'm currently sitting out in front."
    assert lost.flags == ("voicemail", "media_omitted")
    assert lost.attachments[0].omitted
    [event] = [e for e in events(records, "incomplete_copy") if e.at == lost.created_at]
    assert "voicemail recording not in the export" in event.detail


def test_a_recorded_call_is_a_record_the_custodian_made(records: list[Record]) -> None:
    [recording] = [m for m in messages(records) if "call_recording" in m.flags]
    assert (recording.conversation, recording.sender, recording.recipients) == (
        "Albert Einstein", OWNER, ("+17323213333",))
    assert recording.created_at == datetime(2019, 5, 22, 11, 18, 56, 616000, tzinfo=PACIFIC_DAYLIGHT)
    assert recording.extra["duration"] == "0:29:46"
    assert recording.attachments[0].data == (CALLS / "Albert Einstein - Recorded - 2019-05-22T18_18_56Z.mp3"
                                             ).read_bytes()


def test_placed_received_and_missed_calls_are_events_not_records(records: list[Record]) -> None:
    calls = [(e.conversation, e.at, e.detail) for e in events(records, "system") if "call" in e.detail]
    assert calls == [
        ("(unknown number)", datetime(2013, 7, 29, 13, 56, 11, tzinfo=PACIFIC_DAYLIGHT),
         "call placed to a withheld number, duration 0:00:02"),
        ("+17323215555", datetime(2016, 11, 22, 9, 57, 49, tzinfo=PACIFIC_STANDARD), "missed call from +17323215555"),
        ("+17323215555", datetime(2016, 11, 22, 14, 27, 58, tzinfo=PACIFIC_STANDARD),
         "call received from +17323215555, duration 0:00:04"),
        ("+17323216666", datetime(2011, 9, 3, 13, 12, tzinfo=PACIFIC_DAYLIGHT),
         "call placed to +17323216666, duration 0:00:00"),
        # No kind in the file name: the label says it.
        ("+17323218888", datetime(2015, 3, 19, 20, 59, 29, tzinfo=PACIFIC_DAYLIGHT),
         "call placed to +17323218888, duration 0:01:00"),
        ("+17323218888", datetime(2015, 3, 22, 17, 35, 56, tzinfo=PACIFIC_DAYLIGHT),
         "call placed to +17323218888, duration 0:01:00"),
        ("+17323211010", datetime(2018, 7, 30, 15, 31, 33, tzinfo=PACIFIC_DAYLIGHT),
         "call received from +17323211010, duration 0:12:51"),
    ]
    assert len(messages(records)) == 66 + 3  # texts, two voicemails, one recording: nothing else
    assert len(events(records, "system")) == 7  # every file in Calls/ is named by some message


def test_a_lone_html_file_is_read_on_its_own() -> None:
    path = CALLS / "Edson Arantes do Nascimento - Text - 2023-09-21T17_04_39Z.html"
    source = FileSource(path)
    assert google_voice.detect(source, read_head(source, source.name))
    read = messages(parse(source))
    assert [(m.conversation, m.sender) for m in read] == [("Edson Arantes do Nascimento", "+17323214444"),
                                                          ("Edson Arantes do Nascimento", OWNER)]


# --- odd and hostile files, built from the fixtures' own markup -------------------------------

HEAD = (CALLS / "Alan A Milne - Text - 2023-09-29T23_40_59Z.html").read_text(encoding="utf-8").split("<body>")[0]


def chat_page(*bodies: str) -> bytes:
    return (HEAD + '<body><div class="hChatLog hfeed">\n' + " ".join(bodies) + "</div>\n"
            '<div class="tags">Labels:\n<a rel="tag" href="http://www.google.com/voice#sms">Text</a></div>\n'
            '<div class="deletedStatusContainer">User Deleted:\nFalse</div></body></html>').encode("utf-8")


def message(title: str, body: str, sender: str = '<span class="fn">Alan A Milne</span>', extra: str = "") -> str:
    return (f'<div class="message"><abbr class="dt" title="{title}">Sep 29, 2023, 4:41:01&#8239;PM\n'
            f'Pacific Time</abbr>:\n<cite class="sender vcard"><a class="tel" href="tel:+17323212222">{sender}'
            f"</a></cite>:\n<q>{body}</q>\n{extra}</div>")


def page_source(data: bytes, name: str = "Alan A Milne - Text - 2023-09-29T23_40_59Z.html",
                limits: Limits | None = None, **others: bytes) -> BytesSource:
    files = {f"Takeout/Voice/Calls/{name}": data, **{f"Takeout/Voice/Calls/{k}": v for k, v in others.items()}}
    return BytesSource("takeout.zip", files, limits or Limits())


def test_a_script_in_a_body_is_text_and_the_file_goes_on() -> None:
    data = chat_page(
        message("2023-09-29T16:41:01.378-07:00", "&lt;script&gt;alert(1)&lt;/script&gt; as typed"),
        message("2023-09-29T16:42:01.378-07:00", "<script>document.write('x')</script> then <b>bold</b>"),
        message("2023-09-29T16:43:01.378-07:00", "still read"),
    )
    read = messages(parse(page_source(data)))
    assert [m.body for m in read] == ["<script>alert(1)</script> as typed",
                                      "<script>document.write('x')</script> then <b>bold</b>", "still read"]
    assert [m.created_at.minute for m in read if m.created_at] == [41, 42, 43]


def test_a_time_that_is_not_iso_leaves_that_message_undated_and_the_rest_read() -> None:
    data = chat_page(
        message("Sep 29, 2023, 4:41:01 PM", "first"),
        message("2023-02-30T10:00:00.000-07:00", "no such day"),
        message("2023-09-29T16:43:01.378-07:00", "third"),
    )
    first, second, third = messages(parse(page_source(data)))
    assert (first.created_at, first.flags, first.time and first.time.raw) == (None, ("undated",),
                                                                              "Sep 29, 2023, 4:41:01 PM")
    assert (second.created_at, second.flags) == (None, ("undated",))
    assert third.created_at == datetime(2023, 9, 29, 16, 43, 1, 378000, tzinfo=PACIFIC_DAYLIGHT)


def test_a_name_takeout_cut_to_fifty_characters_is_found() -> None:
    long_src = "Søren Aabye Kierkegaard and a very long name - Text - 2023-10-01T15_30_41Z-2-1"
    on_disk = long_src[:50] + ".jpg"
    data = chat_page(message("2023-10-01T11:44:12.570-07:00", "photo", extra=f'<div><img src="{long_src}" /></div>'))
    [read] = messages(parse(page_source(data, **{on_disk: b"\xff\xd8\xff\xe0"})))
    assert [(a.name, a.data) for a in read.attachments] == [(on_disk, b"\xff\xd8\xff\xe0")]


def test_an_attachment_path_outside_the_folder_is_never_followed() -> None:
    data = chat_page(message("2023-10-01T11:44:12.570-07:00", "x", extra='<div><img src="../Phones" /></div>'))
    source = BytesSource("t.zip", {"Takeout/Voice/Calls/a - Text - 2023-10-01T15_30_41Z.html": data,
                                   "Takeout/Voice/Phones.vcf": b"BEGIN:VCARD"})
    [read] = messages(parse(source))
    assert read.attachments[0].omitted and read.flags == ("media_omitted",)


def test_a_deleted_conversation_is_said_and_its_messages_kept() -> None:
    data = chat_page(message("2023-10-01T11:44:12.570-07:00", "kept")).replace(b"User Deleted:\nFalse",
                                                                                b"User Deleted:\nTrue")
    records = parse(page_source(data))
    assert [m.body for m in messages(records)] == ["kept"]
    [event] = events(records, "system")
    assert "marked deleted by the owner" in event.detail


@pytest.mark.parametrize(("data", "error"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00 not html at all \xff\xfe", r"not valid UTF-8 \(at byte 1\)"),
    (b"<html><body><p>Bills</p></body></html>", r"neither a conversation \(hChatLog\) nor a call \(haudio\)"),
    (chat_page(message("2023-10-01T11:44:12.570-07:00", "cut")).partition(b"<q>cu")[0] + b"<q>cu",
     r"the file ends inside message 1"),
    (b"", r"neither a conversation"),
], ids=["binary", "no-voice-structure", "cut-short", "empty"])
def test_a_garbled_file_is_a_clear_parse_error_naming_it(data: bytes, error: str) -> None:
    with pytest.raises(ParseError, match=r"Takeout/Voice/Calls/Alan A Milne - Text - 2023-09-29T23_40_59Z\.html: "
                                         + error):
        parse(page_source(data))


def test_a_body_or_open_tag_past_the_limit_is_refused_without_reading_on() -> None:
    limits = Limits(message_chars=1000)
    with pytest.raises(ParseError, match=r"message 1: text longer than 1000 characters"):
        parse(page_source(chat_page(message("2023-10-01T11:44:12.570-07:00", "x" * 5000)), limits=limits))
    with pytest.raises(ParseError, match=r"markup left open for more than 1000 characters"):
        parse(page_source(HEAD.encode() + b'<body><div class="hChatLog hfeed"><img src="' + b"a" * 600_000,
                          limits=limits))


# --- detection and the Takeout that holds Chat and Voice ---------------------------------------


def test_voice_is_recognised_and_other_formats_are_not_taken() -> None:
    source = BytesSource("takeout.zip", takeout_files())
    assert registry.choose(source) is google_voice
    for other in ("whatsapp/android_iso_am.txt", "sms/backup.xml", "telegram/full_export/result.json"):
        lone = FileSource(DATA / other)
        assert not google_voice.detect(lone, read_head(lone, lone.name, HEAD_BYTES)), other
    chat = BytesSource("takeout.zip", takeout_files(DATA / "google_chat"))
    assert registry.choose(chat) is google_chat
    assert not google_voice.detect(chat, b"")


def test_a_takeout_with_chat_and_voice_gives_both() -> None:
    both = BytesSource("takeout.zip", {**takeout_files(DATA / "google_chat"), **takeout_files()})
    assert registry.choose(both) is google_takeout
    assert formats.CHAT_FORMATS.index(google_takeout) < formats.CHAT_FORMATS.index(google_chat)
    records = list(google_takeout.parse(both, hints()))
    platforms = [m.platform for m in messages(records)]
    assert platforms.count("google_voice") == 69
    assert platforms.count("google_chat") == len(messages(google_chat.parse(both, hints())))


# --- Voice/Phones.vcf: the owner's Google Voice number --------------------------------------------

#: Takeout's Phones.vcf as other readers of it test it (e.g. wjcarpenter/gvoice-sms-takeout-xml reads
#: it; public tests show this shape): the Voice number is the ``itemN`` TEL its ``X-ABLabel`` names,
#: the other TELs are forwarding phones. The numbers are made up (555-01xx).
PHONES_VCF = (b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:\r\nN:;;;;\r\nTEL;TYPE=CELL:+12025550188\r\n"
              b"item1.TEL:+12025550142\r\nitem1.X-ABLabel:Google Voice\r\nEND:VCARD\r\n")


def with_phones(vcf: bytes) -> BytesSource:
    files = {name: data for name, data in takeout_files().items() if "Agatha" in name or "Edson" in name}
    return BytesSource("takeout", {**files, "Takeout/Voice/Phones.vcf": vcf})


def test_the_owner_is_the_number_phones_vcf_labels_google_voice() -> None:
    read = messages(parse(with_phones(PHONES_VCF), OWNER, "+12025550142", "jane doe"))
    mine = [m for m in read if "owner_number" in m.extra]
    assert mine and {m.sender for m in mine} == {"+12025550142"}  # not the custodian's +12025550100
    assert {m.extra["owner_number"] for m in mine} == {"+17323210011"}  # the tel: the page showed, kept
    assert not any("voice_number" in m.extra for m in read)
    theirs = [m for m in read if m.sender == "+17323214444"]
    assert theirs and {m.recipients for m in theirs} == {("+12025550142",)}


def test_a_voice_number_the_custodian_does_not_list_never_files_the_owners_messages_as_received() -> None:
    """The owner is the custodian: their messages stay theirs (sent), the unlisted Voice number kept beside."""
    read = messages(parse(with_phones(PHONES_VCF)))  # identities: +12025550100 and the name only
    mine = [m for m in read if "owner_number" in m.extra]
    assert mine and {m.sender for m in mine} == {OWNER}
    assert {m.extra["voice_number"] for m in mine} == {"+12025550142"}


@pytest.mark.parametrize(
    "vcf",
    [
        b"BEGIN:VCARD\r\nVERSION:3.0\r\nTEL;TYPE=CELL:+12025550188\r\nEND:VCARD\r\n",  # no Voice label
        b"BEGIN:VCARD\r\nitem1.X-ABLabel:Google Voice\r\nitem2.TEL:+12025550142\r\nEND:VCARD\r\n",  # other group
        b"\xff\xfe not a vcard at all",
        b"item1.TEL:+1202555014" + b"2" * (64 * 1024) + b"\r\nitem1.X-ABLabel:Google Voice\r\n",  # too large
    ],
    ids=["no-label", "label-of-another-group", "garbled", "too-large"],
)
def test_without_a_labelled_voice_number_the_custodians_phone_is_the_owner(vcf: bytes) -> None:
    read = messages(parse(with_phones(vcf)))
    assert {m.sender for m in read if "owner_number" in m.extra} == {OWNER}


def test_a_folded_vcard_line_is_read_whole() -> None:
    folded = b"BEGIN:VCARD\r\nitem1.TEL:+1202555\r\n 0142\r\nitem1.X-ABLabel:Google\r\n  Voice\r\nEND:VCARD\r\n"
    read = messages(parse(with_phones(folded), OWNER, "+12025550142"))
    assert {m.sender for m in read if "owner_number" in m.extra} == {"+12025550142"}


def test_a_one_to_one_file_where_only_the_owner_writes_holds_no_number_for_the_other_party() -> None:
    """Agatha's file: every tel: link is the owner's and there is no participants block, so she is her name."""
    page = (CALLS / "Agatha M Christie - Text - 2023-10-22T17_28_34Z.html").read_text(encoding="utf-8")
    assert set(re.findall(r'href="tel:([^"]+)"', page)) == {"+17323210011"}
    assert 'class="participants"' not in page
    read = [m for m in messages(parse(with_phones(PHONES_VCF))) if m.extra["file"].startswith("Agatha")]
    assert read and {(m.conversation, m.recipients) for m in read} == {("Agatha M Christie", ("Agatha M Christie",))}
