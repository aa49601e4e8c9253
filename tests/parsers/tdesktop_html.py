"""Telegram Desktop HTML export pages, written the way tdesktop writes them.

A Python transcription of the parts of ``Telegram/SourceFiles/export/output/export_output_html.cpp``
(telegramdesktop/tdesktop) that shape a chat page, for tests: ``SerializeString``,
``details::HtmlContext::pushTag``/``popTag`` (a block tag is written as ``"\\n" + indent +
"<tag …>" + "\\n"``, attributes in ``std::map`` order, i.e. sorted by name),
``HtmlWriter::Wrap::composeStart``, ``pushHeader``, ``writeDialogOpening``,
``pushServiceMessage``, ``pushMessage`` (``joined``, ``from_name``, ``forwarded body``,
``reply_to details``, ``text``, ``signature details``), ``pushGenericMedia``,
``pushPhotoMedia``, ``NoFileDescription``, ``switchToNextChatFile`` and ``Wrap::close``.
Only what a chat page holds is written; names and text are the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NOT_INCLUDED = "Not included, change data exporting settings to download."  # NoFileDescription(FileType)
TOO_LARGE = "Exceeds maximum size, change data exporting settings to download."  # (FileSize)


def serialize(value: str) -> str:
    """``SerializeString``: newlines as ``<br>``, the five HTML characters and controls as entities."""
    out = []
    for ch in value:
        if ch in "\n\u2028\u2029":
            out.append("<br>")
        elif ch == '"':
            out.append("&quot;")
        elif ch == "&":
            out.append("&amp;")
        elif ch == "'":
            out.append("&apos;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        elif ord(ch) < 32:
            out.append(f"&#x{ord(ch):02X};")
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class Message:
    """One ``Data::Message`` as far as a page shows it."""

    ident: int
    title: str  # FormatDateTime(message.date, true): "DD.MM.YYYY HH:MM:SS UTC+HH:MM" (no offset before 2022)
    sender: str = ""
    text: str = ""
    joined: bool = False  # !messageNeedsWrap(message, previous)
    reply_to: int = 0
    forwarded_from: str = ""
    forwarded_title: str = ""
    photo: str = ""  # relative path of a photo that was saved
    photo_skipped: str = ""  # NoFileDescription of a photo left out
    file_name: str = ""  # a document (media_file)
    file_path: str = ""
    file_skipped: str = ""
    signature: str = ""


@dataclass
class Service:
    ident: int  # negative: a date separator
    text: str  # already serialized (tdesktop builds service text with entities such as &laquo;)


@dataclass
class Page:
    """One ``messagesN.html`` being written (``HtmlWriter::Wrap``)."""

    depth: int = 0
    out: list[str] = field(default_factory=list)
    tags: list[tuple[str, bool]] = field(default_factory=list)

    def push(self, tag: str, attrs: dict[str, str] | None = None, *, inline: bool = False,
             empty: bool = False) -> None:
        inner = "".join(f' {name}="{serialize(value)}"' for name, value in sorted((attrs or {}).items()))
        block = not inline
        text = ("\n" + " " * len(self.tags) if block else "") + f"<{tag}{inner}{'/' if empty else ''}>" + \
            ("\n" if block else "")
        if not empty:
            self.tags.append((tag, block))
        self.out.append(text)

    def div(self, classes: str) -> None:
        self.push("div", {"class": classes})

    def pop(self) -> None:
        tag, block = self.tags.pop()
        self.out.append(("\n" + " " * len(self.tags) if block else "") + f"</{tag}>" + ("\n" if block else ""))

    def raw(self, text: str) -> None:
        self.out.append(text)

    def close(self) -> str:
        while self.tags:
            self.pop()
        return "".join(self.out)


def start(page: Page, chat: str, index: int, base: str = "") -> None:
    """``composeStart`` then ``writeDialogOpening(index)``; in a full export (``base`` set) the
    header links back to ``lists/chats.html`` (``pushHeader`` with a path)."""
    page.raw("<!DOCTYPE html>")
    page.push("html")
    page.push("head")
    page.push("meta", {"charset": "utf-8"}, empty=True)
    page.push("title", inline=True)
    page.raw("Exported Data")
    page.pop()
    page.push("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1.0"}, empty=True)
    page.push("link", {"href": base + "css/style.css", "rel": "stylesheet"}, empty=True)
    page.push("script", {"src": base + "js/script.js", "type": "text/javascript"})
    page.pop()
    page.pop()
    page.push("body", {"onload": "CheckLocation();"})
    page.div("page_wrap")
    page.div("page_header")
    if base:
        page.push("a", {"class": "content block_link", "href": base + "lists/chats.html",
                        "onclick": "return GoBack(this)"})
    else:
        page.div("content")
    page.div("text bold")
    page.raw(serialize(chat))
    page.pop()
    page.pop()
    page.pop()
    page.div("page_body chat_page")
    page.div("history")
    if index > 0:
        page.push("a", {"class": "pagination block_link", "href": messages_file(index - 1)})
        page.raw("Previous messages")
        page.pop()


def messages_file(index: int) -> str:
    """``HtmlWriter::messagesFile``."""
    return "messages" + (str(index + 1) if index > 0 else "") + ".html"


def service(page: Page, item: Service) -> None:
    """``pushServiceMessage``."""
    page.push("div", {"class": "message service", "id": f"message{item.ident}"})
    page.div("body details")
    page.raw(item.text)
    page.pop()
    page.pop()


def userpic(page: Page, name: str, extra: str = "") -> None:
    page.div(f"pull_left {extra}userpic_wrap" if extra else "pull_left userpic_wrap")
    page.push("div", {"class": "userpic userpic4", "style": "width: 42px; height: 42px"})
    page.push("div", {"class": "initials", "style": "line-height: 42px"})
    page.raw(serialize(name[:1]))
    page.pop()
    page.pop()
    page.pop()


def generic_media(page: Page, classes: str, title: str, description: str, status: str, link: str = "") -> None:
    """``pushGenericMedia``."""
    page.div("media_wrap clearfix")
    if link:
        page.push("a", {"class": "media clearfix pull_left block_link " + classes, "href": link})
    else:
        page.div("media clearfix pull_left " + classes)
    page.div("fill pull_left")
    page.pop()
    page.div("body")
    for value, css in ((title, "title bold"), (description, "description"), (status, "status details")):
        if value:
            page.div(css)
            page.raw(serialize(value))
            page.pop()
    page.pop()
    page.pop()
    page.pop()


def message(page: Page, item: Message) -> None:
    """``pushMessage`` for a default message."""
    page.push("div", {"class": "message default clearfix" + (" joined" if item.joined else ""),
                      "id": f"message{item.ident}"})
    if not item.joined:
        userpic(page, item.sender)
    page.div("body")
    page.push("div", {"class": "pull_right date details", "title": item.title})
    page.raw(item.title[11:16])  # FormatTimeText
    page.pop()
    if not item.joined:
        page.div("from_name")
        page.raw(serialize(item.sender))
        page.pop()
    if item.forwarded_from:
        userpic(page, item.forwarded_from, "forwarded ")
        page.div("forwarded body")
        page.div("from_name")
        page.raw(serialize(item.forwarded_from))
        page.push("span", {"class": "date details", "title": item.forwarded_title}, inline=True)
        page.raw(" " + item.forwarded_title[:19])
        page.pop()
        page.pop()
    if item.reply_to:
        page.div("reply_to details")
        page.raw("In reply to ")
        page.raw(f'<a href="#go_to_message{item.reply_to}" onclick="return GoToMessage({item.reply_to})">'
                 "this message</a>")
        page.pop()
    if item.photo:  # pushPhotoMedia with a thumbnail written
        page.div("media_wrap clearfix")
        page.push("a", {"class": "photo_wrap clearfix pull_left", "href": item.photo})
        page.push("img", {"class": "photo", "src": item.photo.replace(".jpg", "_thumb.jpg"),
                          "style": "width: 260px; height: 195px"}, empty=True)
        page.pop()
        page.pop()
    if item.photo_skipped:  # pushPhotoMedia's generic fallback: no file, so no link
        generic_media(page, "media_photo", "Photo", item.photo_skipped, "1280x960, 120.5 KB")
    if item.file_name:
        generic_media(page, "media_file", item.file_name, item.file_skipped, "1.2 MB", item.file_path)
    if item.text:
        page.div("text")
        page.raw(serialize(item.text))
        page.pop()
    if item.signature:
        page.div("signature details")
        page.raw(serialize(item.signature))
        page.pop()
    if item.forwarded_from:
        page.pop()
    page.pop()
    page.pop()


def chat_pages(chat: str, items: list[Message | Service], per_page: int, base: str = "") -> dict[str, bytes]:
    """A chat's pages: ``per_page`` items a file (tdesktop: ``kMessagesInFile`` = 1000 messages),
    each file closed with a "Next messages" link (``switchToNextChatFile``) and ``Wrap::close``."""
    pages: dict[str, bytes] = {}
    chunks = [items[n : n + per_page] for n in range(0, len(items), per_page)] or [[]]
    for index, chunk in enumerate(chunks):
        page = Page()
        start(page, chat, index, base)
        for item in chunk:
            if isinstance(item, Service):
                service(page, item)
            else:
                message(page, item)
        if index + 1 < len(chunks):
            page.push("a", {"class": "pagination block_link", "href": messages_file(index + 1)})
            page.raw("Next messages")
            page.pop()
        pages[messages_file(index)] = page.close().encode("utf-8")
    return pages
