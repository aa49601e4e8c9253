"""Slack workspace export zips: what a records officer would see in each channel."""

from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import events, messages, utc
from twentyday.errors import ParseError
from twentyday.parsers import slack
from twentyday.parsers.base import BytesSource, FileSource, ZipSource, read_head
from twentyday.records import ParsedAttachment, ParsedMessage, ParseHints, Record, TimeReading

DATA = Path(__file__).resolve().parents[1] / "data" / "slack"
VIEWER_ZIP = DATA / "slack-export-viewer" / "testarchive.zip"
WORKSPACE = DATA / "workspace"
WHATSAPP_TXT = Path(__file__).resolve().parents[1] / "data" / "whatsapp" / "android_iso_am.txt"
SMS_XML = Path(__file__).resolve().parents[1] / "data" / "sms" / "backup.xml"

HINTS = ParseHints(timezone=ZoneInfo("Europe/Paris"), zone_name="Europe/Paris")


def zip_folder(folder: Path, target: Path, prefix: str = "") -> Path:
    """Zip an export folder the way Slack does (directory entries included)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            name = prefix + path.relative_to(folder).as_posix()
            archive.write(path, name + "/" if path.is_dir() else name)
    return target


@pytest.fixture
def workspace_zip(tmp_path: Path) -> Iterator[ZipSource]:
    source = ZipSource(zip_folder(WORKSPACE, tmp_path / "Pelican Slack export Mar 14 2023 - Mar 15 2023.zip"))
    yield source
    source.close()


@pytest.fixture
def viewer_zip() -> Iterator[ZipSource]:
    source = ZipSource(VIEWER_ZIP)
    yield source
    source.close()


def parse(source: ZipSource) -> list[Record]:
    return list(slack.parse(source, HINTS))








def by_key(records: list[Record]) -> dict[str, ParsedMessage]:
    return {m.message_key: m for m in messages(records)}


# --- our own workspace ---------------------------------------------------------------


def test_workspace_counts_messages_and_events(workspace_zip: ZipSource) -> None:
    records = parse(workspace_zip)
    assert len(messages(records)) == 9
    assert Counter(e.kind for e in events(records)) == {"system": 2, "deleted_message": 1, "incomplete_copy": 1}
    assert Counter(m.conversation for m in messages(records)) == {
        "#general": 6,
        "#project-pelican": 1,
        "Alice Moreau, Bob Okafor": 2,
    }


def test_time_is_ts_in_utc_not_the_day_file_name(workspace_zip: ZipSource) -> None:
    upload = by_key(parse(workspace_zip))["C01GENERAL:1678924800.000700"]
    # The day file is 2023-03-15.json; the message was sent at midnight UTC on the 16th.
    assert upload.created_at == utc(2023, 3, 16, 0, 0, 0, 700)
    assert upload.time == TimeReading(
        raw="1678924800.000700", layout="slack-ts", day_first=None, decided_by="format", zone="UTC"
    )


def test_mrkdwn_mentions_channels_links_and_escapes_resolved(workspace_zip: ZipSource) -> None:
    found = by_key(parse(workspace_zip))
    kickoff = found["C01GENERAL:1678788120.000200"]
    assert kickoff.sender == "Alice Moreau"
    assert kickoff.body == (
        "Kickoff notes are in #project-pelican, ping @Bob Okafor if anything is off & keep it <2 pages"
    )
    assert found["C01GENERAL:1678788300.000300"].body == "Looks good :+1: see the plan (https://pelican.example/plan)"
    contract = found["C02PELICAN:1678790000.001000"]
    assert contract.body == "Contract draft goes to legal@partner.example on Friday"
    assert contract.sender == "Dana Kowalski"  # another workspace's user: named by user_profile
    assert (
        found["C01GENERAL:1678925100.000800"].body
        == "Deployed build 42 (https://ci.pelican.example/build/42) to staging @here"
    )


def test_thread_replies_point_at_their_parent(workspace_zip: ZipSource) -> None:
    found = by_key(parse(workspace_zip))
    assert found["C01GENERAL:1678788120.000200"].reply_to == ""  # the parent itself
    assert found["C01GENERAL:1678788300.000300"].reply_to == "C01GENERAL:1678788120.000200"
    assert found["C01GENERAL:1678788400.000400"].reply_to == "C01GENERAL:1678788120.000200"
    # The reply to a deleted parent still names it: the tombstone is the evidence.
    assert found["C01GENERAL:1678789060.000600"].reply_to == "C01GENERAL:1678789000.000500"


def test_edit_is_marked(workspace_zip: ZipSource) -> None:
    found = by_key(parse(workspace_zip))
    edited = found["C01GENERAL:1678788400.000400"]
    assert edited.edited is True
    assert edited.sender == "Carol Ng"
    assert edited.extra["edited_ts"] == "1678788500.000000"
    assert [m.message_key for m in found.values() if m.edited] == ["C01GENERAL:1678788400.000400"]


def test_file_share_is_an_omitted_attachment_with_one_event(workspace_zip: ZipSource) -> None:
    records = parse(workspace_zip)
    upload = by_key(records)["C01GENERAL:1678924800.000700"]
    assert upload.attachments == (
        ParsedAttachment(
            name="pelican-budget.xlsx",
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            data=None,
        ),
    )
    assert upload.attachments[0].omitted
    assert "media_omitted" in upload.flags
    [incomplete] = [e for e in events(records) if e.kind == "incomplete_copy"]
    assert incomplete.conversation == "#general"
    assert incomplete.at == upload.created_at
    assert "pelican-budget.xlsx" in incomplete.detail
    assert "Alice Moreau" in incomplete.detail


def test_tombstone_join_and_topic_are_events_not_messages(workspace_zip: ZipSource) -> None:
    records = parse(workspace_zip)
    kinds = {(e.kind, e.at, e.detail) for e in events(records) if e.kind != "incomplete_copy"}
    assert kinds == {
        ("system", utc(2023, 3, 14, 10, 0, 0, 100), "channel_join: @Carol Ng has joined the channel"),
        (
            "deleted_message",
            utc(2023, 3, 14, 10, 16, 40, 500),
            "message C01GENERAL:1678789000.000500 shows as deleted: This message was deleted.",
        ),
        (
            "system",
            utc(2023, 3, 16, 0, 10, 0, 900),
            "channel_topic: @Alice Moreau set the channel topic: Pelican launch & logistics",
        ),
    }
    assert not any("deleted" in m.body for m in messages(records))


def test_bot_message_sender_is_the_bot_name(workspace_zip: ZipSource) -> None:
    bot = by_key(parse(workspace_zip))["C01GENERAL:1678925100.000800"]
    assert bot.sender == "Deploy Bot"
    assert bot.flags == ("bot_message",)


def test_recipients_are_the_other_channel_members_by_name(workspace_zip: ZipSource) -> None:
    found = by_key(parse(workspace_zip))
    assert found["C01GENERAL:1678788120.000200"].recipients == ("Bob Okafor", "Carol Ng")
    assert found["C01GENERAL:1678788400.000400"].recipients == ("Alice Moreau", "Bob Okafor")
    dm = found["D01ALBO:1678900060.001200"]
    assert (dm.conversation, dm.sender, dm.recipients) == ("Alice Moreau, Bob Okafor", "Alice Moreau", ("Bob Okafor",))
    assert dm.extra["reactions"] == ":thumbsup: Bob Okafor"


def test_messages_come_channel_by_channel_in_time_order(workspace_zip: ZipSource) -> None:
    records = parse(workspace_zip)
    assert [m.message_key.split(":")[0] for m in messages(records)] == ["D01ALBO"] * 2 + ["C01GENERAL"] * 6 + [
        "C02PELICAN"
    ]
    general = [r.created_at if isinstance(r, ParsedMessage) else r.at for r in records if r.conversation == "#general"]
    assert len(general) == 10  # 6 messages, the join, the tombstone, the topic, the file event
    assert general == sorted(general)  # type: ignore[type-var]


def test_export_inside_a_top_folder_is_read_the_same(tmp_path: Path, workspace_zip: ZipSource) -> None:
    nested = ZipSource(zip_folder(WORKSPACE, tmp_path / "nested.zip", prefix="Pelican Slack export/"))
    try:
        assert slack.detect(nested, b"PK")
        assert parse(nested) == parse(workspace_zip)
    finally:
        nested.close()


# --- slack-export-viewer's real archive -------------------------------------------------


def test_viewer_archive_counts(viewer_zip: ZipSource) -> None:
    records = parse(viewer_zip)
    assert len(messages(records)) == 147
    assert Counter(e.kind for e in events(records)) == {"system": 11, "incomplete_copy": 3}
    assert Counter(m.sender for m in messages(records)) == {
        "github": 94,  # bot posts: named by the integration's bot_add notice
        "Hamza Faran": 33,
        "Hermione Granger": 14,
        "Harry Potter": 5,
        "heroeshannibal": 1,
    }


def test_viewer_archive_first_message(viewer_zip: ZipSource) -> None:
    first = messages(parse(viewer_zip))[0]
    assert first.conversation == "#enrique"
    assert first.sender == "Hamza Faran"
    assert first.created_at == utc(2016, 1, 15, 5, 55, 52, 6)
    assert (
        first.body == "@Harry Potter: Created an issue for a setup.py so that it can be installed to a standard place"
    )
    assert first.recipients == ("heroeshannibal", "Hermione Granger", "Harry Potter")
    assert first.message_key == "C0JGLMMNX:1452837352.000006"


def test_viewer_archive_bot_post_body_comes_from_its_attachment(viewer_zip: ZipSource) -> None:
    bot = by_key(parse(viewer_zip))["C0JGLMMNX:1459154014.000018"]
    assert bot.body == (
        "[enrique:master] 1 new commit by hfaran:\n"
        "b698a38 (https://github.com/mesos-magellan/enrique/commit/b698a38dabbd81c51029f163e74bcd76115e9c2f):"
        " Implement killTask; resolves #20 - hfaran"
    )
    assert bot.extra["reactions"] == ":botman: Harry Potter"


def test_viewer_archive_legacy_file_shares_and_comment(viewer_zip: ZipSource) -> None:
    records = parse(viewer_zip)
    shared = [a.name for m in messages(records) for a in m.attachments]
    assert shared == ["100_cities.js", "10_cities.js", "cities1000.js"]
    comment = by_key(records)["C0JL6CGQ2:1459106048.000018"]
    assert comment.sender == "Hermione Granger"
    assert comment.attachments == ()  # the comment refers to a file shared earlier
    assert comment.flags == ("file_comment",)
    assert sum(m.edited for m in messages(records)) == 1


# --- detection and refusal --------------------------------------------------------------


def test_detects_slack_zips(workspace_zip: ZipSource, viewer_zip: ZipSource) -> None:
    assert slack.detect(workspace_zip, b"PK\x03\x04")
    assert slack.detect(viewer_zip, b"PK\x03\x04")


def test_does_not_detect_other_formats(tmp_path: Path) -> None:
    whatsapp = FileSource(WHATSAPP_TXT)
    assert not slack.detect(whatsapp, read_head(whatsapp, whatsapp.name))
    telegram = b'{"name": "Pelican", "type": "personal_chat", "id": 4242, "messages": []}'
    assert not slack.detect(BytesSource("result.json", telegram), telegram)
    sms = FileSource(SMS_XML)
    assert not slack.detect(sms, read_head(sms, sms.name))
    # A zip with users.json but no day files (e.g. a partial copy) is not an export.
    partial = tmp_path / "partial.zip"
    with zipfile.ZipFile(partial, "w") as archive:
        archive.writestr("users.json", "[]")
        archive.writestr("channels.json", "[]")
        archive.writestr("notes/readme.txt", "hello")
    source = ZipSource(partial)
    assert not slack.detect(source, b"PK")
    with pytest.raises(ParseError, match="not a Slack export"):
        slack.parse(source, HINTS)
    source.close()


def test_broken_day_file_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.write(WORKSPACE / "users.json", "users.json")
        archive.write(WORKSPACE / "channels.json", "channels.json")
        archive.write(WORKSPACE / "general" / "2023-03-14.json", "general/2023-03-14.json")
        archive.writestr("general/2023-03-15.json", '[{"type": "message", "ts": "1678924800.0007", "text": "cut sh')
    source = ZipSource(broken)
    records = slack.parse(source, HINTS)
    with pytest.raises(ParseError, match=r"general/2023-03-15\.json: not valid JSON"):
        list(records)
    source.close()


@pytest.mark.parametrize(
    ("day_file", "error"),
    [
        ('{"type": "message"}', "expected a JSON array of objects"),
        ('[{"type": "message", "ts": "yesterday", "text": "hi"}]', "'ts' 'yesterday' is not a Slack timestamp"),
    ],
)
def test_malformed_day_files_raise_parse_error(tmp_path: Path, day_file: str, error: str) -> None:
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("users.json", "[]")
        archive.writestr("channels.json", '[{"id": "C1", "name": "general", "members": []}]')
        archive.writestr("general/2023-03-14.json", day_file)
    source = ZipSource(path)
    with pytest.raises(ParseError, match=error):
        list(slack.parse(source, HINTS))
    source.close()


def test_unreadable_users_file_fails_before_any_record(tmp_path: Path) -> None:
    path = tmp_path / "odd.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("users.json", b"\xff\xfe not json")
        archive.writestr("channels.json", "[]")
        archive.writestr("general/2023-03-14.json", "[]")
    source = ZipSource(path)
    with pytest.raises(ParseError, match=r"users\.json: not valid JSON"):
        slack.parse(source, HINTS)
    source.close()


def test_render_mrkdwn_keeps_unknown_ids_and_special_mentions() -> None:
    users = {"U1": "Alice Moreau"}
    channels = {"C1": "general"}
    text = (
        "<@U1> <@U9|olduser> <#C1> <#C7|random> <!channel> <!subteam^S1|@ops> <http://a.example> a &lt;b&gt; &amp;amp;"
    )
    assert slack.render_mrkdwn(text, users, channels) == (
        "@Alice Moreau @olduser #general #random @channel @ops http://a.example a <b> &amp;"
    )


def test_an_unlisted_subtype_is_flagged_as_such_and_kept_sealed(tmp_path: Path) -> None:
    # A flag is in clear in the index: the export's own text (anyone can edit it) never is one.
    export = tmp_path / "odd.zip"
    with zipfile.ZipFile(export, "w") as archive:
        archive.write(WORKSPACE / "users.json", "users.json")
        archive.write(WORKSPACE / "channels.json", "channels.json")
        archive.writestr("general/2023-03-15.json", '[{"type": "message", "ts": "1678924800.0007", '
                                                    '"subtype": "budget_cuts_for_smith", "text": "hi"}]')
    source = ZipSource(export)
    try:
        [message] = [r for r in parse(source) if isinstance(r, ParsedMessage)]
    finally:
        source.close()
    assert message.flags == ("subtype_unlisted",)
    assert message.extra["slack_subtype"] == "budget_cuts_for_smith"
