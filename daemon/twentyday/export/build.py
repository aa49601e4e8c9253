"""One export: select, account, open, write into the encrypted container; see docs/ARCHITECTURE.md, "Exports".

The order is the guarantee. Everything that can be refused is refused before anything is
accounted, decrypted or written: a blank purpose, recipient name or address, an identity that
cannot sign the disclosure, no records, an output path that exists, an unreadable passphrase file
or age key. Then the encrypted output file is created (new, 0600), ONE disclosure naming every
record is accounted and ledgered (:func:`twentyday.store.search.disclose_records`), and only then
is anything decrypted, each record through the :class:`~twentyday.store.search.Disclosed` the
accounting returned. A record that cannot be opened (its content disposed of or missing, a key it
was not sealed to) is left out, named in ``EXPORT.json`` and the CLI's report, and accounted once
more as ``failed``; the rest is exported.

Formats (each with ``NOTICE.txt``, the dissemination notice, at the top, and ``EXPORT.json``, what
the export holds and what it left out and why):

- ``eml``: ``mail/<capture-id>.eml``, the raw bytes of the capture of each mail record, byte for
  byte as twentyday received them (for SMTP, the DATA after dot-unstuffing; for a forward, the
  forward as the custodian sent it, which carries the original). A capture that holds records
  not in the export (an mbox, a forward of several originals of which some were not selected) is
  not written: it would disclose them; such a record is named as left out.
- ``mbox``: the same messages in one ``mail.mbox``, in the mboxrd variant: each message starts
  with a ``From `` line (``From <sender> <asctime of its capture, UTC>``), every line of a message
  that matches ``^>*From `` gets one more ``>`` (so a reader that removes one ``>`` from such lines
  gets the bytes back exactly), and a blank line ends each message. Line ends are the message's own.
- ``jsonl``: ``records.jsonl``, one JSON object per record (chat and mail), and
  ``attachments/<record-id>_<n>.<ext>``.
- ``html``: ``index.html`` and ``conversations/<n>_<name>.html``, a transcript per conversation,
  attachments in ``attachments/`` linked from it (see :mod:`twentyday.export.html`).
- ``bagit``: a bag (see :mod:`twentyday.export.nara`) whose payload holds EML for mail, JSON lines
  and HTML transcripts for chats, the attachments and the pipe-delimited metadata file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from twentyday.crypto import keys
from twentyday.errors import InvalidArgument, NotFoundError, TwentydayError
from twentyday.export import html
from twentyday.export.nara import Bag, FileMetadata, extension, metadata_file, slug
from twentyday.export.seal import Container
from twentyday.store.archive import Archive
from twentyday.store.disclosures import EXPORT, Disclosure, require_purpose
from twentyday.store.search import Disclosed, Filters, disclose_records, require_configured_signer, search

FORMATS = ("eml", "mbox", "jsonl", "html", "bagit")
#: The most records one export selects through filters (an export of more is refused, not cut short).
MAX_RECORDS = 1_000_000
MAIL_PLATFORM = "email"
MAIL_PARSER = "email"


@dataclass(frozen=True)
class ExportRequest:
    format: str
    purpose: str
    recipient: str
    recipient_address: str
    record_ids: tuple[str, ...] = ()
    filters: Filters | None = None
    actor: str | None = None


@dataclass
class ExportResult:
    disclosure: Disclosure
    #: Members written into the container (NOTICE.txt and EXPORT.json included).
    files: int = 0
    #: Records exported, and those left out with the reason, by id.
    exported: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    #: The second entry accounting for the records that could not be opened (None: all opened).
    failed: Disclosure | None = None


def check_request(request: ExportRequest) -> None:
    """Refuse what must be refused before anything is opened (the CLI checks these first too)."""
    if request.format not in FORMATS:
        raise InvalidArgument(f"unknown format {request.format!r} (one of {', '.join(FORMATS)})", argument="format")
    require_purpose(request.purpose)
    if not request.recipient.strip():
        raise InvalidArgument("name the recipient (552a(c)(1): the name and address of the recipient)",
                              argument="recipient")
    if not request.recipient_address.strip():
        raise InvalidArgument("give the recipient's address (552a(c)(1): the name and address of the recipient)",
                              argument="recipient-address")
    if not request.record_ids and request.filters is None:
        raise InvalidArgument("say which records: --record ID, or a search filter (--custodian, --conversation, "
                              "--participant, --platform, --status, --since, --until, --text)", argument="record")


def select(archive: Archive, request: ExportRequest) -> list[str]:
    """The ids of the records the request names, in time order (metadata only; nothing decrypted)."""
    chosen: dict[str, None] = {}
    if request.filters is not None:
        rows = list(search(archive, Filters(**{**request.filters.__dict__, "limit": MAX_RECORDS + 1})))
        if len(rows) > MAX_RECORDS:
            raise InvalidArgument(f"the filters select more than {MAX_RECORDS} records: narrow them",
                                  argument="filters")
        chosen.update((row["id"], None) for row in rows)
    for record_id in request.record_ids:
        archive.record_row(record_id)  # an unknown id is refused here, before anything is accounted
        chosen[record_id] = None
    if not chosen:
        raise NotFoundError("no record matches: nothing to export")
    return list(chosen)


def prepare(archive: Archive, identity: keys.Identity, request: ExportRequest) -> list[str]:
    """Every refusal that needs the archive, before the container exists: returns the selection."""
    check_request(request)
    require_configured_signer(archive, identity)
    return select(archive, request)


def export(archive: Archive, identity: keys.Identity, request: ExportRequest, record_ids: list[str],
           container: Container, *, notice: str, clock: Callable[[], datetime]) -> ExportResult:
    """Account for the export, then write it into ``container`` (closed here; abandoned on failure)."""
    try:
        disclosed = disclose_records(archive, record_ids, identity, action=EXPORT, purpose=request.purpose,
                                     recipient=request.recipient, recipient_address=request.recipient_address,
                                     actor=request.actor, clock=clock)
    except BaseException:
        container.abandon()
        raise
    result = ExportResult(disclosed.disclosure)
    result.left_out.update(disclosed.destroyed)  # named in EXPORT.json; never disclosed, so never accounted
    try:
        _Writer(disclosed, request, container, notice, result, clock).write()
        not_opened = {k: v for k, v in result.left_out.items() if k in disclosed.disclosure.subjects}
        if not_opened:
            reasons = sorted(set(not_opened.values()))
            result.failed = disclosed.account_failure(sorted(not_opened), "; ".join(reasons)[:500])
        container.close()
    except BaseException:
        container.abandon()
        raise
    return result


@dataclass
class _Opened:
    row: dict[str, Any]
    record: dict[str, Any]                      # the flat JSON object of the record
    attachment_files: list[html.Linked]


class _Writer:
    def __init__(self, disclosed: Disclosed, request: ExportRequest, container: Container, notice: str,
                 result: ExportResult, clock: Callable[[], datetime]) -> None:
        self.disclosed = disclosed
        self.request = request
        self.container = container
        self.notice = notice
        self.result = result
        self.clock = clock
        self.files: dict[str, list[str]] = {}   # record id -> files in the export holding it
        d = disclosed.disclosure
        self.heading = (f"Export {d.id} of {len(d.subjects)} record(s), {d.at}, by {d.actor}, to {d.recipient} "
                        f"({d.recipient_address}), for: {d.purpose}")
        self.bag: Bag | None = None
        self.metadata: list[FileMetadata] = []

    # -- members --------------------------------------------------------------------------

    def add(self, name: str, data: bytes, record_ids: Iterable[str] = ()) -> None:
        """A payload file: into the bag's data/ for bagit, else at ``name`` in the container."""
        if self.bag is not None:
            self.bag.payload(name, data)
        else:
            self.container.add(name, data)
        self.result.files += 1
        for record_id in record_ids:
            self.files.setdefault(record_id, []).append(name)

    def write(self) -> None:
        fmt = self.request.format
        notice_text = (f"{self.notice}\n\n{self.heading}\n").encode()
        if fmt == "bagit":
            self.bag = Bag(self.disclosed.disclosure.id, self.container.add)
        else:
            self.container.add("NOTICE.txt", notice_text)  # first member: what a recipient sees first
            self.result.files += 1
        opened = self._open_all()
        mail = [o for o in opened if o.row["platform"] == MAIL_PLATFORM]
        if fmt in ("eml", "bagit"):
            self._eml(mail)
        if fmt == "mbox":
            self._mbox(mail)
        needs_attachments = fmt in ("jsonl", "html") or (fmt == "bagit" and len(mail) < len(opened))
        if needs_attachments:
            self._attachments([o for o in opened if fmt != "bagit" or o.row["platform"] != MAIL_PLATFORM])
        if fmt in ("jsonl", "bagit"):
            chosen = opened if fmt == "jsonl" else [o for o in opened if o.row["platform"] != MAIL_PLATFORM]
            if chosen:
                self._jsonl(chosen, "records.jsonl" if fmt == "jsonl" else "json/records.jsonl")
        if fmt in ("html", "bagit"):
            chosen = opened if fmt == "html" else [o for o in opened if o.row["platform"] != MAIL_PLATFORM]
            if chosen:
                self._html(chosen, "" if fmt == "html" else "html/")
        self.result.exported = [o.row["id"] for o in opened if o.row["id"] not in self.result.left_out]
        manifest = json.dumps(self._manifest(), indent=2, ensure_ascii=False).encode("utf-8")
        if self.bag is not None:
            self.add("metadata.csv", metadata_file(self.metadata))
            self.bag.tag("NOTICE.txt", notice_text)
            self.bag.tag("EXPORT.json", manifest)
            d = self.disclosed.disclosure
            self.bag.finish(bagging_date=self.clock(), identifier=d.id,
                            description=f"twentyday export of {len(d.subjects)} record(s) for {d.recipient}")
            self.result.files += 2 + 2 + 2 * 2  # tag files, bagit.txt + bag-info, manifests, tag manifests
        else:
            self.container.add("EXPORT.json", manifest)
            self.result.files += 1

    def _manifest(self) -> dict[str, Any]:
        d = self.disclosed.disclosure
        return {
            "disclosure": d.id, "at": d.at, "by": d.actor, "purpose": d.purpose, "recipient": d.recipient,
            "recipient_address": d.recipient_address, "format": self.request.format,
            "records": len(d.subjects), "exported": len(self.result.exported),
            "files": {record_id: self.files.get(record_id, []) for record_id in self.result.exported},
            "left_out": [{"id": k, "reason": v} for k, v in sorted(self.result.left_out.items())],
            "notice": self.notice,
        }

    # -- opening ----------------------------------------------------------------------------

    def _open_all(self) -> list[_Opened]:
        opened = []
        for row in self.disclosed.rows:
            try:
                document = self.disclosed.document(row)
            except TwentydayError as error:
                self.result.left_out[row["id"]] = _reason(error)
                continue
            content = document.pop("content")
            record = {**document, "edited": bool(row["edited"]), "incomplete": bool(row["incomplete"]),
                      "deleted": "deleted" in document["flags"], "subject": content.get("subject", ""),
                      "body": content.get("body", ""), "message_key": content.get("message_key", ""),
                      "reply_to": content.get("reply_to", ""), "extra": content.get("extra", {}),
                      "attachments": [{"n": n, **a} for n, a in enumerate(content.get("attachments", []))]}
            opened.append(_Opened(row, record, []))
        return opened

    def _attachments(self, opened: list[_Opened]) -> None:
        for item in opened:
            record_id = item.row["id"]
            for attachment in item.record["attachments"]:
                n = attachment["n"]
                file = None
                if not attachment.get("omitted"):
                    try:
                        data = self.disclosed.attachment(record_id, n)
                    except TwentydayError as error:
                        attachment["not_exported"] = _reason(error)
                        data = None
                    if data is not None:
                        file = f"attachments/{record_id}_{n}{extension(attachment.get('name', ''))}"
                        self.add(file, data, [record_id])
                        self._describe(file, [item.record], f"Attachment {n} of {record_id}: "
                                       f"{attachment.get('name', '')}")
                attachment["file"] = file
                item.attachment_files.append(html.Linked(attachment.get("name", ""),
                                                         attachment.get("content_type", ""),
                                                         int(attachment.get("size", 0)), file))

    # -- mail ---------------------------------------------------------------------------------

    def _mail_captures(self, mail: list[_Opened]) -> list[tuple[str, bytes, list[_Opened]]]:
        """(capture id, raw bytes, its records) for each capture that can be written; records left out named."""
        ids = set(self.disclosed.disclosure.subjects)
        by_capture: dict[str, list[_Opened]] = {}
        for item in mail:
            captures = [c["capture_id"] for c in item.record["captures"]]
            usable = [c for c in captures if self.disclosed.capture(c)["parser"] == MAIL_PARSER
                      and self.disclosed.capture_records(c) <= ids]
            if not usable:
                self.result.left_out[item.row["id"]] = (
                    "its capture holds records not in this export (an mbox, or a forward of several "
                    "originals): export those too, or use --format jsonl")
                continue
            by_capture.setdefault(usable[0], []).append(item)
        out = []
        for capture_id, items in by_capture.items():
            try:
                out.append((capture_id, self.disclosed.raw_capture(capture_id), items))
            except TwentydayError as error:
                for item in items:
                    self.result.left_out[item.row["id"]] = _reason(error)
        return out

    def _eml(self, mail: list[_Opened]) -> None:
        for capture_id, raw, items in self._mail_captures(mail):
            name = f"mail/{capture_id}.eml"
            self.add(name, raw, [i.row["id"] for i in items])
            self._describe(name, [i.record for i in items], "E-mail message as received")

    def _mbox(self, mail: list[_Opened]) -> None:
        parts = []
        record_ids = []
        for capture_id, raw, items in self._mail_captures(mail):
            received = datetime.fromisoformat(self.disclosed.capture(capture_id)["received_at"])
            sender = items[0].row["sender"]
            address = sender if sender and " " not in sender and "@" in sender else "MAILER-DAEMON"
            parts.append(f"From {address} {received.strftime('%a %b %d %H:%M:%S %Y')}\n".encode() + mboxrd(raw))
            record_ids += [i.row["id"] for i in items]
        if parts:
            self.add("mail.mbox", b"".join(parts), record_ids)

    # -- chats (and mail, in jsonl/html) ------------------------------------------------------

    def _jsonl(self, opened: list[_Opened], name: str) -> None:
        lines = [json.dumps(o.record, ensure_ascii=False, sort_keys=True) for o in opened]
        self.add(name, ("\n".join(lines) + "\n").encode("utf-8"), [o.row["id"] for o in opened])
        self._describe(name, [o.record for o in opened], "Messages as JSON lines")

    def _html(self, opened: list[_Opened], folder: str) -> None:
        groups: dict[tuple[str, str, str], list[_Opened]] = {}
        for item in opened:
            groups.setdefault((item.row["custodian"], item.row["conversation"], item.row["platform"]), []).append(item)
        listing = []
        for number, ((custodian, conversation, platform), items) in enumerate(groups.items(), start=1):
            file = f"conversations/{number:03d}_{slug(conversation)}.html"
            page = html.transcript(title=f"Conversation: {conversation}", notice=self.notice, disclosure=self.heading,
                                   custodian=custodian, platform=platform,
                                   records=[(i.record, i.attachment_files) for i in items],
                                   events=self.disclosed.events(custodian, conversation),
                                   link_prefix="../" if not folder else "../../")
            self.add(folder + file, page.encode("utf-8"), [i.row["id"] for i in items])
            self._describe(folder + file, [i.record for i in items], f"Transcript of {conversation}")
            listing.append((file, custodian, platform, conversation, len(items)))
        index = html.index(notice=self.notice, disclosure=self.heading, conversations=listing)
        self.add(folder + "index.html", index.encode("utf-8"))

    def _describe(self, file: str, records: list[dict[str, Any]], what: str) -> None:
        """The file's row of the NARA metadata file (bagit only)."""
        if self.bag is None or not records:
            return
        first = records[0]
        dates = sorted(r["created_at"] for r in records if r.get("created_at"))
        title = first.get("subject") or f"{first['platform']} conversation {first['conversation']}"
        self.metadata.append(FileMetadata(
            file_name=f"data/{file}", record_ids=tuple(r["id"] for r in records), title=title,
            description=f"{what}; {len(records)} record(s) of custodian {first['custodian']} "
                        f"({first['platform']}), captured by twentyday",
            creator="; ".join(dict.fromkeys(r["sender"] for r in records if r.get("sender"))),
            creation_date=dates[0] if dates else "undated",
            rights=self.notice))


def mboxrd(message: bytes) -> bytes:
    """One message as an mboxrd entry after its From line: ``>`` added to every ``^>*From `` line,
    then a blank line (in the message's own line end)."""
    newline = b"\r\n" if b"\r\n" in message else b"\n"
    lines = message.split(b"\n")
    escaped = [b">" + line if line.lstrip(b">").startswith(b"From ") else line for line in lines]
    body = b"\n".join(escaped)
    if not body.endswith(b"\n"):
        body += newline
    return body + newline


def _reason(error: TwentydayError) -> str:
    if isinstance(error, NotFoundError):
        return f"content not in the archive (disposed of, or missing): {error}"
    return f"could not be opened: {error}"
