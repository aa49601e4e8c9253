"""signal-export's ``index.html``: its chat bubbles as plain entries (no records, no I/O).

signal-export (carderne, MIT) writes one ``index.html`` per chat folder; every page of a
paginated chat is a ``<div class="page" id="pgN">`` inside that one file. The HTML is
BeautifulSoup's ``prettify()`` output, so every text node sits on its own line, indented:
texts are stripped, and the inline pieces of one line of a body are joined by one space.
Two layouts (read from the tool's ``sigexport/templates.py`` and ``html.py``):

- **classic** (1.x to 3.8): ``<div class="msg [me]">`` holding ``<span class="date">``
  (``YYYY-MM-DD``), ``<span class="time">`` (``HH:MM:SS``), ``<span class="sender">``, an
  optional ``<div class="quote">``, the body (``class="body"``, a ``p`` or ``span``) and
  ``class="reaction"`` (``Name: 👍 Name2: ❤``). Media files are ``img``/``source`` links; a
  file the copy lacks is not marked, and non-media attachments are not shown at all.
- **3.9**: ``<div class="day">YYYY-MM-DD</div>`` dividers; ``<div class="msg [me] [cont]
  [deleted]">`` with an optional ``<div class="meta">`` (``<span class="sender">``,
  ``<time class="time" datetime="…">``), ``<div class="quote">``, ``<div class="body">``,
  ``<div class="reactions">`` of ``<span class="reaction">👍<span class="who">Name</span>``.
  A message from the same sender less than five minutes after the one before is grouped
  (``cont``) and shows neither sender nor time. Files: ``img``/``audio``/``video`` ``src``,
  ``<a class="file" href>``; a file the copy lacks is ``<div class="file missing">`` with a
  label (``Audio not exported``), without its name. Calls are ``<div class="event call
  [missed]">`` lines with a ``<time class="event-time">``.

A message's text was Markdown rendered to HTML, and raw HTML in a message passes through
Markdown untouched: tags Markdown does not write (``<script>``, ``<iframe>``, …) are kept
in the body as their literal text, never acted on. Entities are decoded by html.parser.
Memory is bounded: the parser's unprocessed buffer (an unclosed ``<script>`` or tag) by
``max_pending``, one entry's text by ``max_chars``, the element nesting by ``_MAX_DEPTH``.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import BinaryIO, Literal

from twentyday.errors import ParseError

__all__ = ["HtmlEntry", "entries", "looks_like_index_html"]

_CHUNK = 64 * 1024
_MAX_DEPTH = 256
_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
                   "track", "wbr"})
#: What Markdown and signal-export's templates write inside a body: anything else is message text.
_MARKUP = frozenset({"p", "br", "em", "strong", "b", "i", "a", "code", "pre", "ul", "ol", "li", "blockquote",
                     "h1", "h2", "h3", "h4", "h5", "h6", "hr", "img", "figure", "label", "input", "div", "span",
                     "audio", "video", "source", "table", "thead", "tbody", "tr", "th", "td", "del"})
_BLOCKS = frozenset({"p", "br", "li", "ul", "ol", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
                     "figure", "div", "table", "tr"})
_FIELD_CLASSES = ("sender", "date", "time", "quote", "body", "reactions", "reaction", "who", "day")
_MARKERS = ('data-last-page="', 'href="#pg0"')


def looks_like_index_html(text: str) -> bool:
    """The head of a signal-export ``index.html`` (either layout)."""
    start = text.lstrip()[:15].lower()
    return start.startswith("<!doctype html") and 'href="../style.css"' in text and any(m in text for m in _MARKERS)


@dataclass
class HtmlEntry:
    """One bubble (``kind="message"``) or event line (``kind="event"``) as the page shows it."""

    kind: Literal["message", "event"]
    line: int
    classes: frozenset[str]
    day: str = ""
    sender: str = ""
    date: str = ""
    time: str = ""
    iso: str = ""
    body: str = ""
    quote: str = ""
    reactions: list[str] = field(default_factory=list)
    #: Paths of files the page links to, in order, each once.
    files: list[str] = field(default_factory=list)
    #: Labels of files the page says were not exported.
    missing: list[str] = field(default_factory=list)


@dataclass
class _Open:
    tag: str
    field: str  # what its text is ("" for the parent's, "skip" for none)
    classes: frozenset[str]


class _Reader(HTMLParser):
    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.max_chars = max_chars
        self.done: list[HtmlEntry] = []
        self.entry: HtmlEntry | None = None
        self.stack: list[_Open] = []  # open elements inside the entry
        self.day = ""
        self.day_open = False
        self.pieces: dict[str, list[str]] = {}
        self.size = 0
        self.reaction = ""

    # --- structure -----------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        classes = frozenset(values.get("class", "").split())
        if self.entry is None:
            if tag == "div" and "day" in classes:
                self.day_open, self.day = True, ""
            elif tag == "div" and ("msg" in classes or "event" in classes):
                kind: Literal["message", "event"] = "message" if "msg" in classes else "event"
                self.entry = HtmlEntry(kind, self.getpos()[0], classes, day=self.day)
                # An event's text sits in plain spans; a bubble's only in its classed parts.
                root = "body" if kind == "event" else ""
                self.stack, self.pieces, self.size = [_Open(tag, root, classes)], {}, 0
            return
        if tag in _VOID:
            self._void(tag, values)
            return
        if len(self.stack) >= _MAX_DEPTH:
            raise ParseError(f"line {self.getpos()[0]}: elements nested deeper than {_MAX_DEPTH}", code="bad_layout")
        name = next((c for c in _FIELD_CLASSES if c in classes), "")
        if "file" in classes or values.get("aria-hidden") == "true" or tag == "figure":
            name = "missing" if "missing" in classes else "skip"
        if name == "missing":
            self.pieces.setdefault("missing", []).append("\0")  # one label per missing file
        if tag == "time":
            name = "time"
            self.entry.iso = values.get("datetime", "")
        if tag == "a" and "file" in classes:
            self._file(values.get("href", ""))
        if tag in ("audio", "video"):
            self._file(values.get("src", ""))
        if self._field() == "body" and not name:
            self._body_tag(tag, self.get_starttag_text() or f"<{tag}>")
        self.stack.append(_Open(tag, name, classes))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.entry is not None:
            self._void(tag, {name: value or "" for name, value in attrs})

    def handle_endtag(self, tag: str) -> None:
        if self.entry is None:
            if tag == "div" and self.day_open:
                self.day_open = False
            return
        if tag in _VOID:
            return
        # Close up to the matching open element; a stray end tag closes nothing.
        for index in range(len(self.stack) - 1, -1, -1):
            if self.stack[index].tag == tag:
                closed = self.stack[index]
                del self.stack[index:]
                if self._field() == "body" and not closed.field:
                    self._body_tag(tag, f"</{tag}>")
                if closed.field == "reaction":
                    self._end_reaction()
                break
        if not self.stack:
            self._close()

    def handle_data(self, data: str) -> None:
        if self.entry is None:
            if self.day_open:
                self.day += data.strip()
            return
        where = self._field()
        if where in ("skip", ""):
            return
        text = data.strip()
        if not text:
            return
        self.size += len(text)
        if self.size > self.max_chars:
            raise ParseError(f"message at line {self.entry.line} is longer than {self.max_chars} characters",
                             code="line_too_long")
        if where == "reaction":
            self.reaction = f"{self.reaction} {text}".strip()
        elif where == "who":
            self.reaction = f"{text}: {self.reaction}" if self.reaction else text
        else:
            self.pieces.setdefault(where, []).append(text)

    # --- helpers -------------------------------------------------------------------

    def _field(self) -> str:
        for opened in reversed(self.stack):
            if opened.field:
                return opened.field
        return ""

    def _void(self, tag: str, values: dict[str, str]) -> None:
        if tag in ("img", "source"):
            self._file(values.get("src", ""))
        elif self._field() == "body":
            if tag in _BLOCKS:
                self.pieces.setdefault("body", []).append("\n")
            elif tag not in _MARKUP:
                self._body_tag(tag, self.get_starttag_text() or f"<{tag}>")

    def _body_tag(self, tag: str, text: str) -> None:
        if tag in _BLOCKS:
            self.pieces.setdefault("body", []).append("\n")
        elif tag not in _MARKUP:
            self.pieces.setdefault("body", []).append(text)

    def _file(self, path: str) -> None:
        if self.entry is not None and path and not path.startswith(("http:", "https:")) \
                and path not in self.entry.files:
            self.entry.files.append(path)

    def _end_reaction(self) -> None:
        if self.entry is not None and self.reaction:
            self.entry.reactions.append(self.reaction)
        self.reaction = ""

    def _close(self) -> None:
        entry = self.entry
        if entry is None:
            return
        pieces = self.pieces
        entry.sender = " ".join(pieces.get("sender", []))
        entry.date = " ".join(pieces.get("date", []))
        entry.time = " ".join(pieces.get("time", []))
        entry.quote = "\n".join(pieces.get("quote", []))
        entry.body = _join(pieces.get("body", []))
        entry.missing = [label.strip() for label in " ".join(pieces.get("missing", [])).split("\0")[1:]]
        self.done.append(entry)
        self.entry, self.stack, self.pieces = None, [], {}

    def finish(self) -> None:
        self.close()
        if self.entry is not None:
            self._close()


def _join(pieces: list[str]) -> str:
    """Body pieces to text: inline pieces of one line joined by a space, blocks by a newline."""
    lines: list[list[str]] = [[]]
    for piece in pieces:
        if piece == "\n":
            lines.append([])
        else:
            lines[-1].append(piece)
    return "\n".join(" ".join(line) for line in lines if line)


def entries(stream: BinaryIO, member: str, *, max_pending: int, max_chars: int) -> Iterator[HtmlEntry]:
    """Every bubble and event line of one ``index.html``, in page order."""
    reader = _Reader(max_chars)
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while True:
            chunk = stream.read(_CHUNK)
            reader.feed(decoder.decode(chunk, final=not chunk))
            if len(reader.rawdata) > max_pending:
                raise ParseError(f"{member}: line {reader.getpos()[0]}: an unclosed tag or script runs past "
                                 f"{max_pending} bytes", code="line_too_long")
            if not chunk:
                reader.finish()
            yield from reader.done
            reader.done.clear()
            if not chunk:
                return
    except UnicodeDecodeError:
        raise ParseError(f"{member}: line {reader.getpos()[0]}: not UTF-8 text", code="bad_encoding") from None
    except ParseError as error:
        if str(error).startswith(member):
            raise
        raise ParseError(f"{member}: {error}", code=error.code) from None
