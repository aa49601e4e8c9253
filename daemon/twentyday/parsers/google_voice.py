"""Google Voice from Google Takeout: ``Takeout/Voice/Calls/*.html`` and the files beside them.

Takeout writes one XHTML file per text conversation (``Name - Text - 2021-01-22T01_33_43Z.html``,
``Group Conversation - 2023-10-01T15_30_41Z.html``) and one per call (``Name - Placed|Received|
Missed|Voicemail|Recorded - <time>.html``, sometimes with no kind in the name), in the hCard /
hChatLog / hAudio microformats (docs/FORMATS.md §7; the quirks below are those that
wjcarpenter/gvoice-sms-takeout-xml's ``sms.py`` handles)::

    <div class="hChatLog hfeed">
      <div class="participants">…<cite class="sender vcard"><a class="tel" href="tel:+1…">
                                  <span class="fn">Name</span></a></cite>, …</div>   (groups only)
      <div class="message"><abbr class="dt" title="2021-01-21T17:33:43.242-08:00">Jan 21, …</abbr>:
        <cite class="sender vcard"><a class="tel" href="tel:+1…"><abbr class="fn" title="">Me</abbr>
        </a></cite>: <q>text<br>more</q>
        <div><img src="… - Text - …-1-1" alt="Image MMS Attachment" /></div>
        <div><a class="vcard" href="… - Text - …-5-1">Contact card attachment</a></div></div>
    <div class="haudio"> <div class="contributor vcard">Voicemail from <a class="tel" href="tel:+1…">
      <span class="fn">Name</span></a></div> <abbr class="published" title="…">…</abbr>
      <span class="full-text">transcript</span> <audio src="….mp3">…</audio>
      <abbr class="duration" title="PT22S">(00:00:22)</abbr>
    <div class="tags">Labels: <a rel="tag" href="http://www.google.com/voice#voicemail">…</a></div>
    <div class="deletedStatusContainer">User Deleted: False</div>

Reading:

- Times: the ``title`` of ``abbr.dt`` (a message) or ``abbr.published`` (a call) is ISO 8601
  with its offset, read strictly and kept in that offset (``decided_by="format"``). The shown
  text names a zone (``Pacific Time``), not an offset, and is never used to date: a title that is
  missing or not ISO leaves the message ``undated`` with the text as it appeared kept.
- The account owner's own messages are the ones whose ``fn`` is an ``<abbr>`` (the others are
  ``<span>``), whatever language the export writes "Me" in. Their sender is the custodian, named by
  one of the custodian's own identities (``hints.self_names``) so the message is filed as sent: the
  Google Voice number ``Voice/Phones.vcf`` names (``item1.TEL:+1…`` with ``item1.X-ABLabel:Google
  Voice``; the other ``TEL`` lines are the phones calls were forwarded to; read up to 64 KiB) when the
  custodian's identities list it, else the owner's number the page shows when they list that, else the
  custodian's first phone number, else the number the export gives. A Voice number the identities do
  not list is kept beside the record (``extra["voice_number"]``) for the officer to add to the
  custodian's identities. (The ``tel:`` an owner's message shows may be a forwarding phone, not the
  Voice number.) Others are named by their number, else their name.
- Conversation: the name or number Takeout put in the file name; for a group, the participants'
  names (numbers where no name) in order. A one-to-one file where the other party never writes
  holds no number for them (its only ``tel:`` links are the owner's, and it has no participants
  block): the conversation and recipient are the name only. Takeout splits one conversation over several files;
  they share the name.
- Attachments: ``src``/``href`` names a file beside the HTML *without* its extension
  (``…-1-1`` is ``…-1-1.jpg`` on disk), or with it (``….mp3``); Takeout sometimes truncates the
  stem to 50 characters. A file found is read (up to ``Limits.media_bytes``); one that is not
  there is kept by name, flagged ``media_omitted`` and reported as ``incomplete_copy``. Files in
  ``Calls/`` that nothing names are reported in one ``system`` event.
- Calls: a voicemail is a message (a record from the caller, its transcript as the body, the
  recording attached, flag ``voicemail``); a recorded call is a record the custodian made (the
  recording attached, flag ``call_recording``); placed, received and missed calls are not
  messages and become ``system`` events naming the number, kind and duration.
- ``User Deleted: True`` (a conversation or call the owner deleted in Voice that Takeout still
  exported) is reported as a ``system`` event; its messages are records as usual.

Bounded: each file is decoded and fed to the standard library's ``html.parser`` in chunks;
records are handed on as each message closes. One message's text, or one piece of markup
left open, longer than ``Limits.message_chars`` is a ParseError naming the file; so is a file
that is not UTF-8 or has neither a conversation nor a call in it. ``<script>``/``<style>`` are
not special: a script in a message body is text, kept as it was written.

Not read: ``Voice/Bills.html`` (no messages), Hangouts.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import PurePosixPath

from twentyday.errors import ParseError
from twentyday.parsers.base import ExportSource, detect_by_heads
from twentyday.parsers.common import content_type as _content_type
from twentyday.parsers.common import members_matching, offset_name, own_identity, read_member
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "parse", "read_iso_time", "voice_members"]

NAME = "google_voice"
PLATFORM = "google_voice"

_CALLS_HTML = re.compile(r"(?:^|/)Calls/[^/]+\.html$", re.IGNORECASE)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_LAYOUT = "google-voice ISO 8601 %Y-%m-%dT%H:%M:%S.%f%:z"
_LAYOUT_UNREAD = "google-voice unrecognised"
_FILE_TIME = re.compile(r" - \d{4}-\d{2}-\d{2}T\d{2}_\d{2}_\d{2}Z$")
_FILE_WHO = re.compile(r"(?P<who>.*?)(?: - (?:Text|Placed|Received|Missed|Voicemail|Recorded))?", re.DOTALL)
_GROUP_FILE = "Group Conversation"
_PHONE = re.compile(r"\+?[\d\s().\-]{3,}")
#: Takeout cuts long attachment names to this many characters (sms.py's ``base[:50]``).
_TRUNCATED_STEM = 50
_CHUNK_CHARS = 256 * 1024
#: Takeout's ``Voice/Phones.vcf`` is one small vCard; anything larger is not it and is not read.
_PHONES_VCF = re.compile(r"(?:^|/)Phones\.vcf$", re.IGNORECASE)
_PHONES_VCF_BYTES = 64 * 1024
_VOICE_LABEL = "google voice"
_DETECT_CANDIDATES = 3
#: Call kinds, by the label Takeout puts in ``<a rel="tag" href="…#label">`` (never translated).
_CALL_KINDS = ("voicemail", "recorded", "received", "placed", "missed")


# --- detection ------------------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Is this a Google Voice HTML file, or a Takeout (or ``Calls`` folder) holding some? Never raises."""
    return detect_by_heads(source, head, _head_matches, lambda: voice_members(source), _DETECT_CANDIDATES)


def _head_matches(head: bytes) -> bool:
    # Takeout's Voice files all carry the microformat root and a Voice-only class in their first KiB.
    return (b'class="hChatLog hfeed"' in head and b'class="message"' in head) or (
        b'class="haudio"' in head and b'class="contributor vcard"' in head
    )


def voice_members(source: ExportSource) -> list[str]:
    """The call and conversation HTML files of a Takeout, in path order (a lone file is its own)."""
    return members_matching(source, _CALLS_HTML, ".html")


# --- times -------------------------------------------------------------------------------


def read_iso_time(raw: str) -> tuple[datetime | None, TimeReading]:
    """The ISO 8601 ``title`` of a time, in the offset it names; None (text kept) if it is not one."""
    text = raw.strip()
    if _ISO.fullmatch(text) is None:
        return None, TimeReading(raw=raw, layout=_LAYOUT_UNREAD, day_first=None, decided_by="format", zone="")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:  # a date that does not exist (2021-02-30)
        return None, TimeReading(raw=raw, layout=_LAYOUT_UNREAD, day_first=None, decided_by="format", zone="")
    offset = when.utcoffset() or timedelta(0)
    if abs(offset) > timedelta(hours=14):
        return None, TimeReading(raw=raw, layout=_LAYOUT_UNREAD, day_first=None, decided_by="format", zone="")
    return when.replace(tzinfo=timezone(offset)), TimeReading(
        raw=raw, layout=_LAYOUT, day_first=None, decided_by="format", zone=offset_name(offset)
    )


# --- the HTML, as the microformats say --------------------------------------------------


@dataclass(frozen=True)
class _Party:
    number: str
    name: str
    is_owner: bool = False

    @property
    def shown(self) -> str:
        return self.name or self.number


@dataclass
class _Message:
    position: int
    time_title: str | None = None
    time_shown: str = ""
    sender: _Party | None = None
    body: str | None = None
    references: list[str] = field(default_factory=list)


@dataclass
class _Call:
    party: _Party | None = None
    time_title: str | None = None
    time_shown: str = ""
    duration: str = ""
    transcript: str | None = None
    references: list[str] = field(default_factory=list)


class _Capture:
    """Text being gathered for one element, ended by the end tag that balances its start tag."""

    def __init__(self, tag: str, target: str) -> None:
        self.tag = tag
        self.target = target
        self.depth = 1
        self.parts: list[str] = []
        self.size = 0


class _VoiceHTML(HTMLParser):
    """Walks one Voice file's markup and hands on each message as its ``div`` closes."""

    # Not special here: a <script> or <style> opened inside a message must not swallow the rest of
    # the file as raw text; what it holds is text like any other.
    CDATA_CONTENT_ELEMENTS = ()  # type: ignore[misc]  # typeshed marks it Final; html.parser reads it from self

    def __init__(self, member: str, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.member = member
        self.max_chars = max_chars
        self.finished: list[_Message] = []
        self.participants: list[_Party] | None = None
        self.call: _Call | None = None
        self.tags: list[str] = []
        self.deleted_status = ""
        self.seen_chat = False
        self._div_depth = 0
        self._message: _Message | None = None
        self._message_div = -1
        self._participants_div = -1
        self._contributor_div = -1
        self._cite: dict[str, str] | None = None
        self._capture: _Capture | None = None
        self._positions = 0

    # -- plumbing

    def _start_capture(self, tag: str, target: str) -> None:
        self._capture = _Capture(tag, target)

    def _add_text(self, text: str) -> None:
        capture = self._capture
        if capture is None:
            return
        capture.size += len(text)
        if capture.size > self.max_chars:
            raise ParseError(f"{self.member}: message {self._positions or 1}: text longer than "
                             f"{self.max_chars} characters", code="message_too_long")
        capture.parts.append(text)

    def handle_data(self, data: str) -> None:
        self._add_text(data)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, dict(attrs), opens=False)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element(tag, dict(attrs), opens=tag not in ("br", "img", "source", "meta", "link", "hr", "input"))

    def handle_endtag(self, tag: str) -> None:
        capture = self._capture
        if capture is not None:
            if tag == capture.tag:
                capture.depth -= 1
            if capture.depth > 0 and capture.target == "body":
                self._add_text(f"</{tag}>")  # markup inside a body is text, and closes nothing
                return
            if capture.depth == 0:
                self._capture = None
                self._captured(capture.target, "".join(capture.parts))
        if tag == "cite" and self._cite is not None:
            self._party(_Party(self._cite.get("number", ""), ""))  # a number without a name
            self._cite = None
        if tag == "div":
            self._div_closed()

    @property
    def open_message(self) -> int:
        """The position of a message the file ended inside, or 0."""
        return self._message.position if self._message is not None else 0

    # -- elements

    def _element(self, tag: str, attrs: dict[str, str | None], opens: bool) -> None:
        capture = self._capture
        if capture is not None and capture.target == "body":
            # Takeout escapes what people type; markup in a body is kept as the text it is.
            if tag == "br":
                self._add_text("\n")
            else:
                self._add_text(self.get_starttag_text() or f"<{tag}>")
                if tag == capture.tag and opens:
                    capture.depth += 1
            return
        if capture is not None and tag == capture.tag and opens:
            capture.depth += 1
        classes = set((attrs.get("class") or "").split())
        if tag == "div" and opens:
            self._div_opened(classes)
        elif tag == "cite" and "sender" in classes:
            self._cite = {}
        elif tag == "a" and "tel" in classes and self._cite is not None:
            self._cite["number"] = _number(attrs.get("href") or "")
        elif tag == "a" and "tel" in classes and self._contributor_div >= 0 and self.call is not None:
            self._cite = {"number": _number(attrs.get("href") or ""), "contributor": "1"}
        elif tag in ("span", "abbr") and "fn" in classes and self._cite is not None and opens:
            self._cite["owner"] = "1" if tag == "abbr" else ""
            self._start_capture(tag, "fn")
        elif tag == "abbr" and "dt" in classes and self._message is not None and opens:
            self._message.time_title = attrs.get("title")
            self._start_capture(tag, "dt")
        elif tag == "abbr" and "published" in classes and self.call is not None and opens:
            self.call.time_title = attrs.get("title")
            self._start_capture(tag, "published")
        elif tag == "abbr" and "duration" in classes and self.call is not None:
            self.call.duration = attrs.get("title") or ""
        elif tag == "span" and "full-text" in classes and self.call is not None and opens:
            self._start_capture(tag, "transcript")
        elif tag == "q" and self._message is not None and opens:
            self._start_capture(tag, "body")
        elif tag == "a" and attrs.get("rel") == "tag":
            self.tags.append((attrs.get("href") or "").rpartition("#")[2].lower())
        else:
            self._reference(tag, classes, attrs)

    def _reference(self, tag: str, classes: set[str], attrs: dict[str, str | None]) -> None:
        """An attachment: an image, audio or video, a contact card, a recording."""
        if tag in ("img", "audio", "video", "source"):
            target = attrs.get("src")
        elif tag == "a" and ("vcard" in classes or attrs.get("rel") == "enclosure"):
            target = attrs.get("href")
        else:
            return
        owner = self._message.references if self._message is not None else (
            self.call.references if self.call is not None else None)
        if target and owner is not None and target not in owner:
            owner.append(target)

    def _div_opened(self, classes: set[str]) -> None:
        self._div_depth += 1
        if "hChatLog" in classes:
            self.seen_chat = True
        elif "haudio" in classes:
            self.call = _Call()
        elif "participants" in classes:
            self._participants_div = self._div_depth
            self.participants = []
        elif "contributor" in classes and self.call is not None:
            self._contributor_div = self._div_depth
        elif "message" in classes and self._message is None:
            self._positions += 1
            self._message = _Message(self._positions)
            self._message_div = self._div_depth
        elif "deletedStatusContainer" in classes:
            self._start_capture("div", "deleted")

    def _div_closed(self) -> None:
        if self._message is not None and self._div_depth == self._message_div:
            self.finished.append(self._message)
            self._message = None
        elif self._div_depth == self._participants_div:
            self._participants_div = -1
        elif self._div_depth == self._contributor_div:
            self._contributor_div = -1
            if self._cite is not None:  # a caller's number without a name
                self._party(_Party(self._cite.get("number", ""), ""))
                self._cite = None
        self._div_depth -= 1

    def _captured(self, target: str, text: str) -> None:
        if target == "fn" and self._cite is not None:
            self._party(_Party(self._cite.get("number", ""), " ".join(text.split()), bool(self._cite.get("owner"))))
            self._cite = None
        elif target == "dt" and self._message is not None:
            self._message.time_shown = _one_line(text)
        elif target == "published" and self.call is not None:
            self.call.time_shown = _one_line(text)
        elif target == "transcript" and self.call is not None:
            self.call.transcript = " ".join(text.split())
        elif target == "body" and self._message is not None:
            self._message.body = text
        elif target == "deleted":
            self.deleted_status = " ".join(text.split())

    def _party(self, party: _Party) -> None:
        if self._message is not None:
            self._message.sender = party
        elif self._participants_div >= 0 and self.participants is not None:
            self.participants.append(party)
        elif self.call is not None and self.call.party is None:
            self.call.party = party


def _one_line(text: str) -> str:
    """Takeout's line breaks as spaces; the U+202F it writes before AM/PM kept as written."""
    return re.sub(r"\s*\n\s*", " ", text).strip()


def _number(href: str) -> str:
    return href[4:].strip() if href.lower().startswith("tel:") else ""


# --- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Export:
    """The source and, per folder, the files beside the HTML (indexed once, by name and by stem)."""

    source: ExportSource
    files: dict[str, frozenset[str]]
    stems: dict[str, dict[str, str]]

    @classmethod
    def of(cls, source: ExportSource, pages: list[str]) -> _Export:
        page_set = set(pages)
        files: dict[str, set[str]] = {}
        stems: dict[str, dict[str, str]] = {}
        for member in sorted(source.members()):
            folder, _, name = member.rpartition("/")
            if member in page_set or not _CALLS_HTML.search(folder + "/x.html"):
                continue
            files.setdefault(folder, set()).add(member)
            stems.setdefault(folder, {}).setdefault(name.rpartition(".")[0] if "." in name else name, member)
        return cls(source, {folder: frozenset(names) for folder, names in files.items()}, stems)

    def find(self, folder: str, reference: str) -> str | None:
        """The member a ``src``/``href`` names: as written, or with its extension, or cut to 50."""
        if not reference or "/" in reference or "\\" in reference:
            return None
        prefix = folder + "/" if folder else ""
        if prefix + reference in self.files.get(folder, ()):
            return prefix + reference
        stems = self.stems.get(folder, {})
        for stem in dict.fromkeys((reference, reference.rpartition(".")[0], reference[:_TRUNCATED_STEM])):
            if stem and stem in stems:
                return stems[stem]
        return None


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Every message, voicemail and call of every Voice file, each followed by the events it raises."""
    pages = voice_members(source)
    if not pages:
        raise ParseError(f"{source.name}: no Google Voice Calls/….html file", code="not_this_format")
    export = _Export.of(source, pages)
    voice_number = _voice_number(source)
    referenced: set[str] = set()
    for page in pages:
        yield from _parse_page(export, page, hints, referenced, voice_number)
    for folder, names in sorted(export.files.items()):
        unnamed = sorted(m.rpartition("/")[2] for m in names if m not in referenced)
        if unnamed:
            yield ParsedEvent(kind="system", conversation=folder or source.name, at=None,
                              detail="files in the export that no message names: " + ", ".join(unnamed))


@dataclass
class _Page:
    """One file being read: its conversation, and the owner's number once a message shows it."""

    export: _Export
    member: str
    folder: str
    title: str
    hints: ParseHints
    owner_number: str = ""
    counterpart: _Party | None = None
    voice_number: str = ""  # the owner's Google Voice number, from Phones.vcf


def _parse_page(export: _Export, member: str, hints: ParseHints, referenced: set[str],
                voice_number: str = "") -> Iterator[Record]:
    folder = member.rpartition("/")[0]
    page = _Page(export, member, folder, _title_from_file_name(member), hints, voice_number=voice_number)
    reader = _VoiceHTML(member, export.source.limits.message_chars)
    for _ in _feed(export.source, member, reader):
        for message in reader.finished:
            yield from _chat_records(page, reader, message, referenced)
        reader.finished.clear()
    if reader.call is not None:
        yield from _call_records(page, reader, reader.call, referenced)
    elif not reader.seen_chat:
        raise ParseError(f"{member}: neither a conversation (hChatLog) nor a call (haudio); "
                         "not a Google Voice file", code="bad_structure")
    if reader.deleted_status.lower().endswith("true"):
        yield ParsedEvent(kind="system", conversation=_conversation(page, reader), at=None,
                          detail=f"{PurePosixPath(member).name}: marked deleted by the owner in Google Voice "
                                 "(Takeout exported it anyway)")


def _feed(source: ExportSource, member: str, reader: _VoiceHTML) -> Iterator[None]:
    """Decode and feed the file a chunk at a time; yield after each so finished messages flow on."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    limit = source.limits.message_chars
    offset = 0
    with source.open(member) as stream:
        while True:
            raw = stream.read(_CHUNK_CHARS)
            try:
                text = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as error:
                raise ParseError(f"{member}: not valid UTF-8 (at byte {offset + error.start + 1})",
                                 code="not_utf8") from None
            offset += len(raw)
            reader.feed(text)
            if len(reader.rawdata) > limit:
                # html.parser keeps an unclosed tag or comment in memory until it ends.
                raise ParseError(f"{member}: markup left open for more than {limit} characters "
                                 f"(before byte {offset + 1})", code="unterminated_markup")
            yield
            if not raw:
                break
    reader.close()
    if reader.open_message:
        raise ParseError(f"{member}: the file ends inside message {reader.open_message}; cut short or "
                         "not a Google Voice file", code="truncated_file")
    yield


def _title_from_file_name(member: str) -> str:
    """Who Takeout named the file after: a contact's name or number ("" for a group or none)."""
    stem = PurePosixPath(member).name
    stem = stem[: -len(".html")] if stem.lower().endswith(".html") else stem
    match = _FILE_TIME.search(stem)
    if match is None:
        return ""
    who = _FILE_WHO.fullmatch(stem[: match.start()])
    name = who["who"].strip() if who is not None else ""
    return "" if name == _GROUP_FILE else name


def _conversation(page: _Page, reader: _VoiceHTML) -> str:
    if reader.participants:
        return ", ".join(p.shown for p in reader.participants)
    if page.title and page.counterpart is not None and page.counterpart.number and _PHONE.fullmatch(page.title):
        return page.counterpart.number  # "17323211010 - Received - …" is +17323211010's
    if page.title:
        return page.title
    if page.counterpart is not None and page.counterpart.shown:
        return page.counterpart.shown
    return "(unknown number)"


def _voice_number(source: ExportSource) -> str:
    """The number ``Voice/Phones.vcf`` labels "Google Voice" (``itemN.TEL`` + ``itemN.X-ABLabel``), or ""."""
    member = next((m for m in sorted(source.members()) if _PHONES_VCF.search(m)), None)
    data = read_member(source, member, _PHONES_VCF_BYTES) if member is not None else None
    if data is None:
        return ""
    # vCard folds a long line by starting the next with a space or tab (RFC 6350 §3.2).
    text = re.sub(r"\r?\n[ \t]", "", data.decode("utf-8", errors="replace"))
    numbers: dict[str, str] = {}
    labels: dict[str, str] = {}
    for line in text.splitlines():
        name, colon, value = line.partition(":")
        group, dot, prop = name.partition(";")[0].rpartition(".")
        if not colon or not dot:
            continue  # only a property group ties a label to its number
        if prop.upper() == "TEL":
            numbers[group] = value.strip().removeprefix("tel:")
        elif prop.upper() == "X-ABLABEL":
            labels[group] = value.strip().lower()
    return next((numbers[g] for g, label in labels.items() if label == _VOICE_LABEL and numbers.get(g)), "")


def _owner(page: _Page) -> str:
    """The custodian, as the sender of the owner's messages (see the module's docstring)."""
    own = page.hints.self_names
    # The owner is always the custodian: a number their identities do not list would file the
    # owner's own messages as received. So a number is used only when the identities name it.
    for number in (page.voice_number, page.owner_number):
        if number and (number in own or _digits(number) in own):
            return number
    return own_identity(own) or page.owner_number or "Me"


def _digits(number: str) -> str:
    return re.sub(r"[^\d+]", "", number)


def _identity(party: _Party) -> str:
    return party.number or party.name


def _chat_records(page: _Page, reader: _VoiceHTML, message: _Message, referenced: set[str]) -> Iterator[Record]:
    where = f"{page.member}: message {message.position}"
    sender = message.sender
    if sender is not None and sender.is_owner and sender.number:
        page.owner_number = sender.number
    elif sender is not None and not sender.is_owner and page.counterpart is None and not reader.participants:
        page.counterpart = sender
    owner = _owner(page)
    conversation = _conversation(page, reader)
    flags: list[str] = []
    if sender is None:
        sender_identity = ""
        flags.append("unknown_sender")
    else:
        sender_identity = owner if sender.is_owner else _identity(sender)
    parties = [_identity(p) for p in reader.participants] if reader.participants else [
        _identity(page.counterpart) if page.counterpart is not None else page.title]
    recipients = tuple(dict.fromkeys(p for p in (*parties, owner) if p and p != sender_identity))
    created_at, reading = _time(message.time_title, message.time_shown)
    if created_at is None:
        flags.append("undated")
    attachments, missing = _attachments(page, message.references, referenced)
    if missing:
        flags.append("media_omitted")
    if message.body is None and not attachments:
        flags.append("unrecognised_message")  # a message div without a body Takeout writes as <q>
    extra = {"file": PurePosixPath(page.member).name, "shown_time": message.time_shown}
    if sender is not None and sender.name and not sender.is_owner:
        extra["sender_name"] = sender.name
    if sender is not None and sender.is_owner and sender.number:
        extra["owner_number"] = sender.number
    if page.voice_number and page.voice_number != owner:
        extra["voice_number"] = page.voice_number  # named by Phones.vcf, not among the custodian's identities
    yield ParsedMessage(
        platform=PLATFORM,
        conversation=conversation,
        sender=sender_identity,
        created_at=created_at,
        time=reading,
        body=message.body or "",
        recipients=recipients,
        attachments=attachments,
        flags=tuple(flags),
        extra=extra,
    )
    if missing:
        who = sender.shown if sender is not None and not sender.is_owner else "the owner"
        yield ParsedEvent(kind="incomplete_copy", conversation=conversation, at=created_at,
                          detail=f"{where}: attachment of a message from {who} not in the export: "
                                 + "; ".join(missing))


def _call_records(page: _Page, reader: _VoiceHTML, call: _Call, referenced: set[str]) -> Iterator[Record]:
    party = call.party or _Party("", "")
    page.counterpart = party
    conversation = _conversation(page, reader)
    created_at, reading = _time(call.time_title, call.time_shown)
    kind = next((k for k in _CALL_KINDS if k in reader.tags), "")
    duration = _duration(call.duration)
    if kind in ("voicemail", "recorded"):
        owner = _owner(page)
        other = _identity(party)
        attachments, missing = _attachments(page, call.references, referenced)
        flags = ["voicemail" if kind == "voicemail" else "call_recording"]
        if created_at is None:
            flags.append("undated")
        if missing:
            flags.append("media_omitted")
        extra = {"file": PurePosixPath(page.member).name, "shown_time": call.time_shown}
        if duration:
            extra["duration"] = duration
        if party.name:
            extra["sender_name" if kind == "voicemail" else "other_party_name"] = party.name
        # A voicemail is left by the caller; a recording is made by the custodian (Voice records
        # incoming calls when the owner asks it to).
        sender, recipients = (other, (owner,)) if kind == "voicemail" else (owner, (other,) if other else ())
        yield ParsedMessage(
            platform=PLATFORM, conversation=conversation, sender=sender, created_at=created_at, time=reading,
            body=call.transcript or "", recipients=recipients, attachments=attachments, flags=tuple(flags),
            extra=extra,
        )
        if missing:
            yield ParsedEvent(kind="incomplete_copy", conversation=conversation, at=created_at,
                              detail=f"{page.member}: {kind} recording not in the export: " + "; ".join(missing))
        return
    number = party.number or "a withheld number"
    what = {"placed": f"call placed to {number}", "received": f"call received from {number}",
            "missed": f"missed call from {number}"}.get(kind, f"call log entry of an unknown kind with {number} "
                                                              f"(labels: {', '.join(reader.tags) or 'none'})")
    if duration:
        what += f", duration {duration}"
    if created_at is None:
        what += f" (time not read: {call.time_title or call.time_shown or 'none given'})"
    yield ParsedEvent(kind="system", conversation=conversation, at=created_at, detail=what)


def _time(title: str | None, shown: str) -> tuple[datetime | None, TimeReading]:
    if title:
        return read_iso_time(title)
    return None, TimeReading(raw=shown, layout=_LAYOUT_UNREAD, day_first=None, decided_by="format", zone="")


_DURATION = re.compile(r"PT(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)(?:\.\d+)?S)?")


def _duration(text: str) -> str:
    """``PT12M51S`` as ``0:12:51``; anything else as written."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or text.strip() == "PT":
        return text.strip()
    hours, minutes, seconds = (int(match[k] or 0) for k in ("h", "m", "s"))
    total = hours * 3600 + minutes * 60 + seconds
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _attachments(page: _Page, references: list[str], referenced: set[str]
                 ) -> tuple[tuple[ParsedAttachment, ...], list[str]]:
    """The attachments named, and a reason for each one the export lacks; marks what it found."""
    attachments: list[ParsedAttachment] = []
    missing: list[str] = []
    cap = page.export.source.limits.media_bytes
    for reference in references:
        member = page.export.find(page.folder, reference)
        if member is None:
            attachments.append(ParsedAttachment(name=reference, content_type=_content_type(reference)))
            missing.append(f"{reference} (not in the export)")
            continue
        referenced.add(member)
        name = member.rpartition("/")[2]
        data = read_member(page.export.source, member, cap)
        attachments.append(ParsedAttachment(name=name, content_type=_content_type(name), data=data))
        if data is None:
            missing.append(f"{name} (larger than {cap} bytes)")
    return tuple(attachments), missing
