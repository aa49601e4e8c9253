"""SMS Backup & Restore XML: what a records officer would see, and what a hostile file gets."""

from __future__ import annotations

import base64
import io
import os
import time
import tracemalloc
import zipfile
from collections import Counter
from pathlib import Path
from typing import BinaryIO, cast
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers import sms_backup
from twentyday.parsers.base import BytesSource, FileSource, Limits, ZipSource, read_head
from twentyday.records import ParsedAttachment, ParsedMessage, ParseHints, Record, TimeReading

DATA = Path(__file__).resolve().parents[1] / "data" / "sms"
BACKUP = DATA / "backup.xml"
CALLS = DATA / "calls.xml"
PNG = DATA / "gvoice-sms-takeout-xml" / "File-2015-08-18.png"
WHATSAPP_TXT = Path(__file__).resolve().parents[1] / "data" / "whatsapp" / "android_iso_am.txt"
SLACK_WORKSPACE = Path(__file__).resolve().parents[1] / "data" / "slack" / "workspace"

OWNER = "+441234567890"


def hints(*self_names: str) -> ParseHints:
    return ParseHints(
        timezone=ZoneInfo("America/Los_Angeles"),
        zone_name="America/Los_Angeles",
        self_names=frozenset(self_names),
    )


def parse(path: Path, *self_names: str) -> list[Record]:
    return list(sms_backup.parse(FileSource(path), hints(*self_names)))


def parse_bytes(data: bytes, name: str = "sms-20231009.xml") -> list[Record]:
    return list(sms_backup.parse(BytesSource(name, data), hints(OWNER)))








def sms(body: str = "hello", **attrs: str) -> str:
    fields = {"address": "+18885554321", "date": "1696889179789", "type": "1", "body": body, **attrs}
    return "<sms " + " ".join(f'{k}="{v}"' for k, v in fields.items()) + " />"


def smses(*records: str) -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"1\">\n"
        + "\n".join(records)
        + "\n</smses>\n"
    ).encode()


# --- the backup file ------------------------------------------------------------------


def test_backup_counts() -> None:
    records = parse(BACKUP, OWNER, "Jane Doe")
    assert len(messages(records)) == 9
    assert Counter("mms" in m.flags for m in messages(records)) == {False: 6, True: 3}
    assert [e.kind for e in events(records)] == ["incomplete_copy"]


def test_exact_utc_times_from_epoch_milliseconds() -> None:
    found = messages(parse(BACKUP, OWNER))
    assert [m.created_at for m in found] == [
        utc(2023, 10, 9, 22, 6, 19, 789000),
        utc(2023, 10, 9, 22, 7, 27, 396000),
        utc(2023, 10, 9, 22, 8, 21, 2000),
        utc(2023, 10, 9, 22, 20, 0),
        utc(2023, 10, 9, 22, 22, 0, 500000),
        utc(2023, 10, 9, 22, 23, 0, 250000),
        utc(2023, 10, 10, 1, 11, 48),
        utc(2023, 10, 10, 1, 21, 52),
        utc(2023, 10, 10, 1, 25, 0),
    ]
    assert found[0].time == TimeReading(
        raw="1696889179789", layout="epoch-ms", day_first=None, decided_by="format", zone="UTC"
    )
    # The phone's own rendering in local time is kept as evidence beside it.
    assert found[0].extra["readable_date"] == "Oct 9, 2023 15:06:19"


def test_received_and_sent_sms_parties() -> None:
    received, sent = messages(parse(BACKUP, OWNER, "Jane Doe"))[:2]
    assert (received.sender, received.recipients, received.conversation) == ("+18885554321", (OWNER,), "Susie Glow")
    assert (sent.sender, sent.recipients, sent.conversation) == (OWNER, ("+18885554321",), "Susie Glow")
    assert received.body == "That's about right."
    assert sent.body == "I thought so."
    assert received.message_key == sent.message_key == ""


def test_owner_unknown_without_self_names() -> None:
    received, sent = messages(parse(BACKUP))[:2]
    assert received.recipients == ()
    assert sent.sender == ""


def test_surrogate_pair_emoji_newline_and_entities_in_body() -> None:
    found = messages(parse(BACKUP, OWNER))
    assert found[2].body == 'Ha \U0001f600 see you at 5\nbring the "good" cake & plates'
    assert found[6].body == "This is a sloth. \U0001f495"
    assert found[8].body == "Who is this? \U0001f914"  # hex references: &#xD83E;&#xDD14;


def test_null_values_are_missing() -> None:
    found = messages(parse(BACKUP, OWNER))
    assert all(m.subject == "" for m in found[:7])
    assert "null" not in {v for m in found for v in m.extra.values()}
    assert "service_center" not in found[1].extra  # service_center="null"
    unknown = found[3]
    assert (unknown.conversation, unknown.sender) == ("+17735559876", "+17735559876")  # contact "(Unknown)"


def test_draft_and_failed_are_kept_and_flagged() -> None:
    found = messages(parse(BACKUP, OWNER))
    assert [(m.body, m.flags) for m in found[4:6]] == [
        ("Running late, start without me", ("draft",)),
        ("Are you there?", ("failed",)),
    ]
    assert all(m.sender == OWNER and m.recipients == ("+18885551234",) for m in found[4:6])


def test_group_mms_image_bytes_text_and_parties() -> None:
    group = messages(parse(BACKUP, OWNER))[6]
    assert group.conversation == "Joe Blow, Susie Glow"
    assert group.sender == OWNER  # <addr type="137">
    assert group.recipients == ("+18885551234", "+18885554321")
    assert group.body == "This is a sloth. \U0001f495"  # the SMIL layout part is not body
    assert group.attachments == (
        ParsedAttachment(name="Sloth in bowl saying meh", content_type="image/png", data=PNG.read_bytes()),
    )
    assert group.flags == ("mms",)


def test_mms_part_without_data_is_omitted_with_one_event() -> None:
    records = parse(BACKUP, OWNER)
    vcard = messages(records)[7]
    assert (vcard.sender, vcard.recipients, vcard.subject) == ("+18885551234", (OWNER,), "Contact")
    assert vcard.body == "That person I told you about."
    assert vcard.attachments == (ParsedAttachment(name="contact000000.vcf", content_type="text/x-vCard", data=None),)
    assert vcard.flags == ("mms", "media_omitted")
    [event] = events(records)
    assert (event.kind, event.conversation, event.at) == ("incomplete_copy", "Joe Blow", vcard.created_at)
    assert "contact000000.vcf" in event.detail


def test_insert_address_token_is_the_owner() -> None:
    mms = messages(parse(BACKUP, OWNER))[8]
    assert (mms.sender, mms.recipients, mms.conversation) == (OWNER, ("+17735559876",), "+17735559876")


def test_oversized_and_unreadable_parts_are_omitted_and_flagged() -> None:
    group = messages(list(sms_backup.parse(FileSource(BACKUP, limits=Limits(mms_part_bytes=1000)), hints(OWNER))))[6]
    assert group.attachments == (ParsedAttachment(name="Sloth in bowl saying meh", content_type="image/png"),)
    assert "media_too_large" in group.flags
    broken = smses(
        '<mms date="1696900308000" msg_box="1" address="+18885551234"><parts>'
        '<part seq="0" ct="image/jpeg" cl="x.jpg" data="abc" /></parts>'
        '<addrs><addr address="+18885551234" type="137" /></addrs></mms>'
    )
    records = parse_bytes(broken)
    assert messages(records)[0].flags == ("mms", "media_unreadable", "media_omitted")
    assert "not valid base64" in events(records)[0].detail


def test_unreadable_date_leaves_the_message_undated() -> None:
    [message] = messages(parse_bytes(smses(sms(date="null"))))
    assert (message.created_at, message.time, message.flags) == (None, None, ("undated",))


def test_lone_surrogates_and_forbidden_characters_become_replacement_characters() -> None:
    [message] = messages(parse_bytes(smses(sms("a&#55357;b&#56832;c&#1;d&#x0;e"))))
    assert message.body == "a\ufffdb\ufffdc\ufffdd\ufffde"


# --- calls ------------------------------------------------------------------------------


def test_calls_are_system_events() -> None:
    records = parse(CALLS, OWNER)
    assert messages(records) == []
    assert [(e.kind, e.conversation, e.at, e.detail) for e in events(records)] == [
        ("system", "Joe Blow", utc(2018, 3, 15, 4, 38, 8, 853000),
         "call: incoming, number 18885551234 (Joe Blow), duration 72 s"),
        ("system", "17738446228", utc(2018, 3, 21, 17, 55, 52, 742000),
         "call: outgoing, number 17738446228, duration 0 s"),
        ("system", "Susie Glow", utc(2018, 3, 22, 6, 26, 40),
         "call: missed, number +18885554321 (Susie Glow), duration 0 s"),
        ("system", "(private number)", utc(2018, 3, 23, 10, 13, 20),
         "call: voicemail, number (private number), duration 12 s"),
    ]  # fmt: skip


# --- hostile and broken files -------------------------------------------------------------


def test_billion_laughs_is_refused_before_parsing() -> None:
    started = time.perf_counter()
    with pytest.raises(ParseError, match="XML entity declarations are not allowed"):
        sms_backup.parse(FileSource(DATA / "billion_laughs.xml"), hints(OWNER))
    assert time.perf_counter() - started < 1.0


def test_external_entity_is_refused() -> None:
    with pytest.raises(ParseError, match="XML entity declarations are not allowed"):
        parse(DATA / "external_entity.xml", OWNER)


def test_doctype_past_the_head_is_refused_while_reading() -> None:
    # Past the head that is checked up front: the streaming guard stops it before expat sees it.
    late = (
        "<?xml version='1.0' encoding='UTF-8'?>\n<smses count=\"1\">\n<!--" + "x" * 50_000 + "-->\n"
        '<!DOCTYPE smses [<!ENTITY a "aaaaaaaaaa">]>\n' + sms("&a;") + "</smses>"
    ).encode()
    records = sms_backup.parse(BytesSource("late.xml", late), hints(OWNER))
    at = late.index(b"<!DOCTYPE") + 1
    with pytest.raises(
        ParseError, match=rf"late\.xml: XML entity declarations are not allowed \(<!DOCTYPE at byte {at}\)"
    ):
        list(records)


def test_truncated_backup_keeps_complete_records_and_says_so() -> None:
    data = BACKUP.read_bytes()
    cut = data[: data.index(b'text="Who is this?')]
    records = parse_bytes(cut, "cut.xml")
    assert len(messages(records)) == 8
    assert events(records)[-1].kind == "truncated_export"
    assert events(records)[-1].at == utc(2023, 10, 10, 1, 21, 52)
    assert "after 9 records" in events(records)[-1].detail  # 8 messages and their 1 event


def test_malformed_xml_names_the_line() -> None:
    broken = smses(sms("fine"), '<sms address="1" date="2" body="unclosed />', sms("after"))
    with pytest.raises(ParseError, match=r"not well-formed XML at line \d+, column \d+"):
        parse_bytes(broken)


def test_undefined_entity_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="not well-formed XML"):
        parse_bytes(smses(sms("&xxe;")))


def test_other_roots_are_not_backups() -> None:
    with pytest.raises(ParseError, match="not an SMS Backup & Restore file"):
        parse_bytes(b"<?xml version='1.0'?><html><body>hi</body></html>")
    with pytest.raises(ParseError, match="not an SMS Backup & Restore file"):
        parse_bytes(b"")


# --- the repairing reader -------------------------------------------------------------------


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, like a slow pipe."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._step, len(self._data) - self._at)
        buffer[:count] = self._data[self._at : self._at + count]
        self._at += count
        return count


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 8, 13, 16, 26, 27, 64])
def test_pairs_split_across_reads_are_repaired(step: int) -> None:
    raw = b'<smses><sms body="x&#55357;&#56832;y&#xD83E;&#xDD14;&#55357;z&#1;&amp;&#10;" /></smses>'
    reader = sms_backup.RepairingReader(Trickle(raw, step), "t.xml")  # type: ignore[arg-type]
    out = b"".join(iter(lambda: reader.read(step), b""))
    assert out.decode() == '<smses><sms body="x\U0001f600y\U0001f914\ufffdz\ufffd&amp;&#10;" /></smses>'


def test_whole_backup_read_in_tiny_pieces_is_unchanged() -> None:
    class TrickleSource(BytesSource):
        def open(self, member: str) -> BinaryIO:
            return cast(BinaryIO, Trickle(BACKUP.read_bytes(), 7))

    trickled = list(sms_backup.parse(TrickleSource("backup.xml", b"<smses>"), hints(OWNER)))
    assert trickled == parse(BACKUP, OWNER)


# --- detection ------------------------------------------------------------------------------


def test_detects_backups_and_call_logs() -> None:
    for path in (BACKUP, CALLS):
        source = FileSource(path)
        assert sms_backup.detect(source, read_head(source, source.name))
    assert sms_backup.detect(
        BytesSource("x.xml", b"\xef\xbb\xbf\n<smses count='0'/>"), b"\xef\xbb\xbf\n<smses count='0'/>"
    )


def test_does_not_detect_other_formats(tmp_path: Path) -> None:
    whatsapp = FileSource(WHATSAPP_TXT)
    assert not sms_backup.detect(whatsapp, read_head(whatsapp, whatsapp.name))
    telegram = b'{"name": "Pelican", "type": "personal_chat", "id": 4242, "messages": [{"text": "<smses>"}]}'
    assert not sms_backup.detect(BytesSource("result.json", telegram), telegram)
    html = b"<html><body><p>&lt;smses&gt; is the root</p></body></html>"
    assert not sms_backup.detect(BytesSource("page.html", html), html)
    slack_zip = tmp_path / "slack.zip"
    with zipfile.ZipFile(slack_zip, "w") as archive:
        for path in SLACK_WORKSPACE.rglob("*.json"):
            archive.write(path, path.relative_to(SLACK_WORKSPACE).as_posix())
    source = ZipSource(slack_zip)
    assert not sms_backup.detect(source, slack_zip.read_bytes()[:8192])
    source.close()


# --- streaming ------------------------------------------------------------------------------


def write_big_backup(path: Path, count: int, part_bytes: int = 1024) -> None:
    data = base64.b64encode(os.urandom(part_bytes)).decode()
    record = (
        '<mms date="{date}" msg_box="1" address="+1888555{n:04d}" sub="null" m_type="132" contact_name="null">'
        '<parts><part seq="-1" ct="application/smil" name="null" text="&lt;smil/&gt;" />'
        '<part seq="0" ct="image/jpeg" name="null" cl="img{i}.jpg" text="null" data="' + data + '" />'
        '<part seq="0" ct="text/plain" chset="106" text="Message {i} &#55357;&#56832;" /></parts>'
        '<addrs><addr address="+1888555{n:04d}" type="137" /><addr address="' + OWNER + '" type="151" /></addrs>'
        "</mms>\n"
    )
    with path.open("w", encoding="utf-8") as out:
        out.write(f"<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>\n<smses count=\"{count}\">\n")
        for i in range(count):
            out.write(record.format(date=1696900308000 + i * 1000, n=i % 10_000, i=i))
        out.write("</smses>\n")


def test_large_backup_streams_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "sms-big.xml"
    write_big_backup(path, 100_000)
    size = path.stat().st_size
    assert size > 180_000_000
    tracemalloc.start()
    started = time.perf_counter()
    count = 0
    last: ParsedMessage | None = None
    try:
        for record in sms_backup.parse(FileSource(path), hints(OWNER)):
            count += 1
            if isinstance(record, ParsedMessage):
                last = record
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert last is not None
    assert last.body == "Message 99999 \U0001f600"
    assert len(last.attachments[0].data or b"") == 1024
    assert peak < 16 * 1024 * 1024  # a file of ~190 MB read with a few MB at most
    print(
        f"\n{size / 1e6:.0f} MB, {count} MMS in {elapsed:.1f} s under tracemalloc: "
        f"{count / elapsed:,.0f} messages/s, peak traced memory {peak / 1e6:.2f} MB"
    )
