"""Every real export in tests/data, read as ``ingest`` reads it: no message line silently dropped.

Each export is parsed through the registry with a custodian's hints (as :mod:`twentyday.pipeline.process`
does) and its message lines or objects are counted independently, by one simple regex or JSON walk per
format. Every one must come out as a record or as an explicit event (an event that only accompanies a
record — its omitted media, its deletion mark — does not count twice). The undated records are printed
per file and in total (``pytest -s``) and named in the assertion message.

A folder under tests/data is read by its entry in :data:`FOLDERS`; a folder or a file the table does
not account for fails the test, so a new sample cannot be left out by accident. Files that are
deliberately hostile or not exports at all are listed by name in :data:`NOT_EXPORTS` and
:data:`HOSTILE`.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from twentyday.errors import ParseError
from twentyday.intake import folders
from twentyday.parsers import registry
from twentyday.pipeline.process import guarded_parse
from twentyday.records import ParsedEvent, ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data"
#: A U.S. custodian (month first, New York), as ``init`` configures one: the hints ingest gives.
HINTS = ParseHints(ZoneInfo("America/New_York"), "America/New_York", day_first=False,
                   self_names=frozenset({"jane doe", "jane.doe@gmail.com"}))
#: Events a parser yields right after the record they describe; they are not lines of their own.
COMPANIONS = frozenset({"incomplete_copy", "deleted_message", "disappearing_messages"})

# --- independent counts, one per format ---------------------------------------------------------

_MARKS = "\ufeff\u200e\u200f"
_WHATSAPP_IOS = re.compile(rf"^[{_MARKS}]*\[(?=[^\]\n]*\d)[^\]\n]{{4,40}}\] ", re.MULTILINE)
_WHATSAPP_IOS_2016 = re.compile(r"^\d{1,2}/\d{1,2}/\d{2}, \d{1,2}:\d{2}:\d{2} [AP]M: ", re.MULTILINE)
_WHATSAPP_ANDROID = re.compile(rf"^[{_MARKS}]*(?=[^\n]{{0,30}}\d{{1,2}}[:.]\d{{2}})[\w ,./:\u202f\u00a0-]{{5,32}}? - ",
                               re.MULTILINE)
_SIGNAL_LINE = re.compile(r"^\[\d{4}-\d{2}-\d{2},? \d{2}:\d{2}(?::\d{2})?\] ", re.MULTILINE)
#: Every sigtop block has a Type line (incoming, outgoing, keychange, ...); a body line has spaces.
_SIGTOP_MESSAGE = re.compile(r"^Type: [\w-]+$", re.MULTILINE)
_TELEGRAM_MESSAGE = re.compile(r'^ +"type": "(?:message|service|unsupported)",?$', re.MULTILINE)
#: The From_ line that starts a message in an mbox (a body's unescaped "From the desk" is not one).
_MBOX_FROM = re.compile(r"^From \S+ +(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ", re.MULTILINE)
_SMS_ELEMENT = re.compile(r"<(?:sms|mms|call) ")


def text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "replace")


def whatsapp_headers(path: Path) -> int:
    body = text(path)
    return sum(len(pattern.findall(body)) for pattern in (_WHATSAPP_IOS, _WHATSAPP_IOS_2016, _WHATSAPP_ANDROID))


def signal_lines(path: Path) -> int:
    return len(_SIGNAL_LINE.findall(text(path)))


def sigtop_messages(path: Path) -> int:
    return len(_SIGTOP_MESSAGE.findall(text(path)))


#: sigtop -f text-short: every message and event starts a line with its time (or "unknown") and a name.
_SIGTOP_SHORT_LINE = re.compile(r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d|unknown) [^\n]*?:(?: |$)", re.MULTILINE)


def sigtop_short_lines(path: Path) -> int:
    return len(_SIGTOP_SHORT_LINE.findall(text(path)))


def telegram_messages(path: Path) -> int:
    # tdesktop writes \x0B, which json cannot read: one line per message object's "type".
    return len(_TELEGRAM_MESSAGE.findall(text(path)))


def json_messages(path: Path) -> int:
    """Meta (Messenger, Instagram) and Google Chat: the objects in the file's ``messages`` list."""
    return len(json.loads(path.read_bytes())["messages"])


def sms_elements(path: Path) -> int:
    return len(_SMS_ELEMENT.findall(text(path)))


def mbox_messages(path: Path) -> int:
    return len(_MBOX_FROM.findall(text(path)))


def one_mail(path: Path) -> int:
    return 1


def slack_messages(names_and_bytes: Iterator[tuple[str, bytes]]) -> int:
    """A Slack export's day files (``<channel>/<YYYY-MM-DD>.json``): the objects each lists."""
    day = re.compile(r"(?:^|/)[^/]+/\d{4}-\d{2}-\d{2}\.json$")
    return sum(len(json.loads(data)) for name, data in names_and_bytes if day.search(name))


def slack_zip(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return slack_messages((n, archive.read(n)) for n in archive.namelist() if not n.endswith("/"))


def slack_folder(path: Path) -> int:
    return slack_messages((p.relative_to(path).as_posix(), p.read_bytes()) for p in path.rglob("*.json"))


def json_folder(path: Path, name: str) -> int:
    return sum(json_messages(p) for p in path.rglob(name))


def meta_folder(path: Path) -> int:
    return json_folder(path, "message_*.json")


def google_chat_folder(path: Path) -> int:
    return json_folder(path, "messages.json")


def signal_export_folder(path: Path) -> int:
    """signal-export: each chat's ``data.json`` (one object a line) where it has one, else its chat.md."""
    count = 0
    for chat in sorted(p for p in path.iterdir() if p.is_dir()):
        data = chat / "data.json"
        count += len(data.read_text().splitlines()) if data.exists() else signal_lines(chat / "chat.md")
    return count


_IMESSAGE_MONTH = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
#: imessage-exporter txt: a message starts at an unindented time line after a blank line (or the file's
#: start); a reply's indented copy under its parent is not one (the tool writes it again in its place).
#: Its own line (a read receipt may follow), or an announcement's verb after the time: a body line that
#: happens to start with a date ("Mar 12, 2024  1:00:00 PM works for …") is neither.
_IMESSAGE_TXT_MESSAGE = re.compile(
    rf"(?:\A|\n\n)(?:{_IMESSAGE_MONTH}) \d{{2}}, \d{{4}} +\d{{1,2}}:\d{{2}}:\d{{2}} [AP]M"
    r"(?:(?: \(Read by[^\n]*\))?$| [^\n]* (?:renamed|added|removed|left|unsent|named|changed) )", re.MULTILINE)
_IMESSAGE_HTML_MESSAGE = re.compile(r'<div class="message"[,> ]')  # the tool writes `class="message", id=` too
_IMESSAGE_HTML_REPLY_COPY = re.compile(r'<div class="reply"[ >]')
_IMESSAGE_HTML_ANNOUNCEMENT = re.compile(r'<div class ?="announcement"')


def imessage_folder(path: Path) -> int:
    """imessage-exporter: each conversation's messages (txt time lines; html message divs, less the copies
    of replies under their parents, and announcements)."""
    count = 0
    for chat in sorted(p for p in path.iterdir() if p.is_file()):
        body = text(chat)
        if chat.suffix == ".txt":
            count += len(_IMESSAGE_TXT_MESSAGE.findall(body))
        else:
            count += (len(_IMESSAGE_HTML_MESSAGE.findall(body)) - len(_IMESSAGE_HTML_REPLY_COPY.findall(body))
                      + len(_IMESSAGE_HTML_ANNOUNCEMENT.findall(body)))
    return count


#: sigtop -f json: "[", then each message's JSON object on a line of its own, then "]".
_SIGTOP_JSON_MESSAGE = re.compile(r"^\{", re.MULTILINE)
#: signal-export's index.html: one bubble a message ("msg", "msg me", "msg cont", "msg deleted"), one
#: "event" line a call (3.9).
_SIGNAL_HTML_MESSAGE = re.compile(r'class="(?:msg|event)[ "]')
#: Telegram Desktop's HTML: a message or a service line; the date lines tdesktop numbers below zero
#: ("message-1") are dividers, not messages.
_TELEGRAM_HTML_MESSAGE = re.compile(r'<div class="message (?:default|service)[^"]*" id="message\d+"')
#: Google Voice Takeout: a text is a "message" div, a call or voicemail file holds one "haudio" block.
_GOOGLE_VOICE_UNIT = re.compile(r'class="(?:message|haudio)"')


def sigtop_json_messages(path: Path) -> int:
    return len(_SIGTOP_JSON_MESSAGE.findall(text(path)))


def html_folder(pattern: re.Pattern[str]) -> Callable[[Path], int]:
    """An HTML export's count: the matches of ``pattern`` in every ``.html`` file under the folder."""
    return lambda path: sum(len(pattern.findall(text(p))) for p in sorted(path.rglob("*.html")))


# --- how mail samples become mail ---------------------------------------------------------------


def forwarding_mail(path: Path) -> bytes:
    """A forwarded or replied body as the forwarding address receives it: one text part, by Jane."""
    mail = EmailMessage()
    mail["From"] = "Jane Doe <jane.doe@gmail.com>"
    mail["To"] = "records@agency.example"
    mail["Subject"] = "Fwd: minutes"
    mail["Date"] = "Mon, 02 Mar 2026 09:00:00 -0500"
    mail.set_content(text(path))
    return mail.as_bytes(policy=policy.SMTP)


# --- the table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """How the exports of one folder are read and counted.

    ``exports`` are glob patterns (relative to the folder) of files that are exports on their own;
    ``folders`` are sub-folders dropped whole (packed as the watcher packs them); ``count`` gives
    the independent count of message lines or objects of a file or folder; ``wrap`` turns a file
    into the bytes that arrive (a mail body into a mail).
    """

    count: Callable[[Path], int]
    exports: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    wrap: Callable[[Path], bytes] | None = None
    #: At least this many (mail: a message may carry forwarded originals, never fewer than one).
    at_least: bool = False


FOLDERS: dict[str, Rule | tuple[Rule, ...]] = {
    "whatsapp": Rule(whatsapp_headers, exports=("*.txt", "chat-miner/*.txt")),
    "signal": (
        Rule(signal_lines, exports=("chat-miner/test_export.txt",)),
        Rule(sigtop_messages, exports=("sigtop/*.txt",)),
        Rule(signal_export_folder, folders=("signal-export",)),
        Rule(sigtop_json_messages, exports=("sigtop/*.json",)),
        Rule(sigtop_short_lines, exports=("sigtop/text-short/*.txt",)),
        Rule(html_folder(_SIGNAL_HTML_MESSAGE), folders=("signal-export-html/3.9", "signal-export-html/classic")),
    ),
    "telegram": (
        Rule(telegram_messages, exports=("chat-miner/test_*.json", "*/result.json", "*.json")),
        Rule(html_folder(_TELEGRAM_HTML_MESSAGE), folders=("html_export",)),
    ),
    "slack": (
        Rule(slack_zip, exports=("slack-export-viewer/*.zip",)),
        Rule(slack_folder, folders=("workspace",)),
    ),
    "google_chat": Rule(google_chat_folder, folders=("Takeout",)),
    "google_voice": Rule(html_folder(_GOOGLE_VOICE_UNIT), folders=("Takeout",)),
    "instagram": (
        Rule(json_messages, exports=("chat-miner/test_export.json",)),
        Rule(meta_folder, folders=("instagram_export", "messenger_export")),
    ),
    "sms": Rule(sms_elements, exports=("*.xml",)),
    "imessage": Rule(imessage_folder, folders=("txt-export", "html-export")),
    "mbox": (
        Rule(mbox_messages, exports=("*.mbox",)),
        Rule(one_mail, exports=("msg_*.txt",), at_least=True),
    ),
    "email": Rule(one_mail, exports=("**/*",), at_least=True),
    "email_forwarded": Rule(one_mail, exports=("*_body*.txt",), wrap=forwarding_mail, at_least=True),
    "email_replies": Rule(one_mail, exports=("**/*.txt",), wrap=forwarding_mail, at_least=True),
    "pre_issue12": (),
}

#: Files that are not exports: expected outputs of other projects' tests, subjects, an archive, media.
NOT_EXPORTS = frozenset({
    "whatsapp/chat-miner/target.json",
    "signal/chat-miner/target.json",
    "telegram/chat-miner/target.json",
    "instagram/chat-miner/target.json",
    "sms/gvoice-sms-takeout-xml/File-2015-08-18.png",  # the image backup.xml carries
    "pre_issue12/archive.tar.gz",  # an archive written by an older twentyday (tests/store)
    "pre_issue12/README.md",
    *(f"email_forwarded/{p.name}" for p in (DATA / "email_forwarded").glob("*_subject*.txt")),
})

_NOT_MAIL = "unrecognised_format"
#: Files each refused whole with a clear ParseError (its code), and why that is expected. A parser
#: that starts reading one of them makes this test fail: move it out of here then.
HOSTILE: dict[str, str] = {
    # Deliberately hostile.
    "sms/billion_laughs.xml": "xml_entities",
    "sms/external_entity.xml": "xml_entities",
    "whatsapp/android_invalid_utf8.txt": "not_utf8",
    # Refused whole by design, each sealed in quarantine with an alert: a file whose dates contradict the
    # day/month order its own lines settled (which order is every ambiguous line in? no reading is safe),
    # and the 2013 layout with no year on any line (no line of it has a date to count from). One line that
    # is no time in an otherwise readable file costs only itself (tests/pipeline/test_whatsapp_odd_line.py).
    "whatsapp/android_contradictory_order.txt": "bad_date",
    "whatsapp/android_no_year.txt": "no_year",
    # Not e-mail messages (see tests/data/email/SOURCES.md): header-less MIME parts, reply fragments.
    "email/cpython/msg_18.txt": _NOT_MAIL,
    "email/cpython/msg_19.txt": _NOT_MAIL,
    "email/cpython/msg_37.txt": _NOT_MAIL,
    "email/cpython/msg_38.txt": _NOT_MAIL,
    "email/cpython/msg_39.txt": _NOT_MAIL,
    "email/cpython/msg_40.txt": _NOT_MAIL,
    # Only Content-Type, MIME-Version and Subject: no From, To or Date for the detector to know mail by.
    "email/cpython/msg_11.txt": _NOT_MAIL,
    "email/talon/OLK_SRC_BODY_SECTION.html": _NOT_MAIL,
    "email/talon/reply-separated-by-hr.html": _NOT_MAIL,
    "email/talon/standard_replies/iphone_reply_text": _NOT_MAIL,
    "email/talon/standard_replies/sparrow_reply_text": _NOT_MAIL,
    **{f"email/talon/html_replies/{p.name}": _NOT_MAIL for p in (DATA / "email/talon/html_replies").glob("*.html")},
}

#: Events about an export as a whole, not about a line of it: expected, by export, with why.
WHOLE_EXPORT_EVENTS: dict[str, int] = {
    "google_chat/Takeout": 1,  # DM 1pRI-QAAAAE holds File-*.png files no message names (a system event)
}


@dataclass(frozen=True)
class Export:
    """One thing ``ingest`` would be given, the files it stands for, and its independent count."""

    name: str  # relative to tests/data
    files: tuple[Path, ...]
    rule: Rule

    def raw(self, scratch: Path) -> bytes:
        path = DATA / self.name
        if path.is_dir():
            tree = folders.survey(path)
            out = io.BytesIO()
            folders.pack(path, tree, out)
            return out.getvalue()
        return self.rule.wrap(path) if self.rule.wrap else path.read_bytes()


def rules(entry: Rule | tuple[Rule, ...]) -> tuple[Rule, ...]:
    return entry if isinstance(entry, tuple) else (entry,)


def corpus() -> tuple[list[Export], set[Path]]:
    """Every export the table names, and every data file the table accounts for."""
    exports: list[Export] = []
    claimed: set[Path] = set()
    for folder, entry in FOLDERS.items():
        for rule in rules(entry):
            for pattern in rule.exports:
                for path in sorted((DATA / folder).glob(pattern)):
                    if not path.is_file() or path in claimed or path.name == "SOURCES.md":
                        continue
                    relative = path.relative_to(DATA).as_posix()
                    if relative in NOT_EXPORTS:
                        continue
                    claimed.add(path)
                    exports.append(Export(relative, (path,), rule))
            for sub in rule.folders:
                root = DATA / folder / sub
                files = tuple(sorted(p for p in root.rglob("*") if p.is_file()))
                claimed.update(files)
                exports.append(Export(root.relative_to(DATA).as_posix(), files, rule))
    return exports, claimed


EXPORTS, CLAIMED = corpus()


def test_the_table_accounts_for_every_file_in_tests_data() -> None:
    """A new folder or export needs its entry: nothing in tests/data is left out of the corpus unnoticed."""
    unlisted_folders = sorted(p.name for p in DATA.iterdir() if p.is_dir() and p.name not in FOLDERS)
    assert not unlisted_folders, f"add these folders to FOLDERS in {Path(__file__).name}: {unlisted_folders}"
    known = CLAIMED | {DATA / n for n in NOT_EXPORTS}
    unlisted = sorted(p.relative_to(DATA).as_posix() for p in DATA.rglob("*")
                      if p.is_file() and p.name != "SOURCES.md" and p not in known)
    assert not unlisted, f"exports no rule reads (add a Rule, or list them in NOT_EXPORTS/HOSTILE): {unlisted}"
    assert set(HOSTILE) <= {e.name for e in EXPORTS}, "a hostile file must be read too (it must be refused)"


@dataclass
class Reading:
    units: int = 0  # records, and events that stand for a line of their own
    records: int = 0
    undated: int = 0
    events: int = 0


def read(name: str, raw: bytes) -> tuple[str, Reading]:
    """Parse as ingest does: choose by content, parse with the custodian's hints. The parser's name."""
    source = registry.open_source(None, raw, Path(name).name)
    try:
        parser = registry.choose(source)
        if parser is None:
            raise ParseError(f"{name}: no parser recognised it", code="unrecognised_format")
        return parser.NAME, tally(guarded_parse(parser, source, HINTS))
    finally:
        registry.close_source(source)


def tally(records: Iterator[Record]) -> Reading:
    reading = Reading()
    last: Record | None = None
    anchor: ParsedMessage | None = None  # the message the following companions describe
    for record in records:
        if isinstance(record, ParsedMessage):
            reading.units += 1
            reading.records += 1
            reading.undated += record.created_at is None
            anchor = record
        else:
            reading.events += 1
            describes = (record.kind in COMPANIONS and anchor is not None and last is not None
                         and (last is anchor or isinstance(last, ParsedEvent))
                         and record.at == anchor.created_at and record.conversation == anchor.conversation)
            if record.kind != "truncated_export" and not describes:
                reading.units += 1
                anchor = None
        last = record
    return reading


UNDATED: dict[str, int] = {}


@pytest.mark.parametrize("export", EXPORTS, ids=[e.name for e in EXPORTS])
def test_every_message_line_is_a_record_or_an_explicit_event(export: Export, tmp_path: Path) -> None:
    raw = export.raw(tmp_path)
    expected = export.rule.count(DATA / export.name)
    if export.name in HOSTILE:
        with pytest.raises(ParseError) as refused:
            read(export.name, raw)
        assert refused.value.code == HOSTILE[export.name]
        return
    parser, reading = read(export.name, raw)
    UNDATED[export.name] = reading.undated
    print(f"\n{export.name}: {parser}, {reading.records} records, {reading.events} events, "
          f"{reading.undated} undated (expected {expected} message lines/objects)")
    facts = (f"{export.name} ({parser}): {reading.units} records or events of their own for {expected} message "
             f"lines/objects; {reading.records} records, {reading.undated} undated")
    units = reading.units - WHOLE_EXPORT_EVENTS.get(export.name, 0)
    if export.rule.at_least:
        assert units >= expected, facts
    else:
        assert units == expected, facts


def test_undated_records_in_the_corpus_are_counted() -> None:
    """Printed with ``pytest -s``: the corpus's undated records, file by file (after the test above)."""
    if not UNDATED:
        pytest.skip("run with the corpus tests above")
    undated = {name: count for name, count in sorted(UNDATED.items()) if count}
    total = sum(undated.values())
    print(f"\nundated records in tests/data: {total} in {len(undated)} of {len(UNDATED)} exports")
    for name, count in undated.items():
        print(f"  {count:>4}  {name}")
