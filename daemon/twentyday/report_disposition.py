"""``twentyday report --unauthorized-disposition``: a DRAFT notice to NARA under 36 CFR 1230.14, in Markdown.

An agency must report to NARA the unlawful or accidental removal, defacing, alteration or destruction
of its records (44 U.S.C. 3106; 36 CFR part 1230), and § 1230.14 lists what the report includes:
(a) a complete description of the records with volume and dates; (b) the office maintaining them;
(c) a statement of the exact circumstances surrounding the alienation, defacing or destruction;
(d) a statement of the safeguards established to prevent further loss; (e) details of the actions
taken to salvage, retrieve or reconstruct the records.

The draft is built from what the archive holds: the ``deleted_message`` and ``disappearing_messages``
events the exports showed (how many, in which conversations, on which platforms, dated when, in which
captures), the alerts they raised and where those alerts' notices went. Facts, not verdicts: it says
what the exports showed ("3 messages ... appear as deleted-message placeholders"), never why; what only
the agency can know or decide (the circumstances it learns, the safeguards, what it did to retrieve
the records, the office when the config names none) is a marked blank, prefilled with what twentyday
did. It ends with a signature block for the official who submits it.

Every name that came with an item (conversation names are the export's, so a stranger's) is escaped
for Markdown and HTML: it stays text in any renderer. Metadata only: nothing is decrypted, so like
``report --html`` it needs no officer key and is no disclosure.
"""

from __future__ import annotations

import html
import string
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from twentyday.config import Custodian
from twentyday.errors import NotFoundError
from twentyday.store.archive import Archive
from twentyday.store.evidence import DeletionAlert, DeletionFinding, deletion_alerts, deletion_findings

#: Where the report goes: the contact NARA publishes for unauthorized disposition cases
#: (https://www.archives.gov/records-mgmt/resources/unauthorized-dispositions).
NARA_CONTACT = "UnauthorizedDisposition@nara.gov"
NARA_PAGE = "https://www.archives.gov/records-mgmt/resources/unauthorized-dispositions"
#: A part only the agency can write.
BLANK = "**[TO BE COMPLETED BY THE AGENCY]**"
#: A line to write on, in the signature block.
LINE = "\\_" * 32

PLATFORMS = {"whatsapp": "WhatsApp", "telegram": "Telegram", "signal": "Signal", "slack": "Slack",
             "messenger": "Messenger", "google_chat": "Google Chat", "google_voice": "Google Voice",
             "google_takeout": "Google Takeout", "sms_backup": "SMS", "email": "e-mail"}
#: How each kind of finding reads: what the count counts, and what the export shows of them.
SHOWN_AS = {"deleted_message": ("message(s)", "as deleted-message placeholders"),
            "disappearing_messages": ("entr(ies)", "as settings or notices of disappearing messages "
                                                   "(messages set to vanish)")}
#: Where a format's event of that kind is not a message's placeholder (Telegram: "clear_history").
SHOWN_AS_IN = {("telegram", "deleted_message"): ("entr(ies)", "as notices that the chat history was cleared")}


def _shown(finding: DeletionFinding) -> tuple[str, str]:
    return SHOWN_AS_IN.get((finding.parser, finding.kind), SHOWN_AS[finding.kind])


LABELS = {"deleted_message": "deleted message", "disappearing_messages": "disappearing messages"}
NO_FINDINGS = "No deleted-message or disappearing-messages findings"


@dataclass(frozen=True)
class CustodianPart:
    """One custodian's findings and alerts (the config's entry; None when the config no longer names it)."""

    custodian_id: str
    custodian: Custodian | None
    findings: list[DeletionFinding]
    alerts: list[DeletionAlert]

    @property
    def zone(self) -> ZoneInfo:
        return self.custodian.zone if self.custodian is not None else ZoneInfo("UTC")


@dataclass(frozen=True)
class DispositionReport:
    as_of: datetime
    agency: str
    custodian: str | None
    parts: list[CustodianPart]


def gather(archive: Archive, *, as_of: datetime, custodian: str | None = None) -> DispositionReport:
    """What the draft says, read from the index as it stood at ``as_of`` (metadata only)."""
    config = archive.config
    if custodian is not None and config.custodian(custodian) is None:
        raise NotFoundError(f"no custodian {custodian!r} in {config.path}")
    findings = deletion_findings(archive.conn, as_of=as_of, custodian=custodian)
    alerts = deletion_alerts(archive.conn, as_of=as_of, custodian=custodian)
    owners = sorted({f.custodian for f in findings})
    parts = [CustodianPart(owner, config.custodian(owner), [f for f in findings if f.custodian == owner],
                           [a for a in alerts if a.custodian == owner]) for owner in owners]
    return DispositionReport(as_of, config.agency, custodian, parts)


# -- rendering (pure: data in, Markdown out)

_PUNCTUATION = frozenset(string.punctuation) - set("&<>\"'")


def md(value: object) -> str:
    """Text from input as Markdown that shows it and does nothing else: a control character or line
    break shown escaped, every ASCII punctuation mark backslash-escaped (CommonMark), and ``& < > " '``
    as HTML character references, so no renderer reads a tag, link, emphasis or table cell in it."""
    text = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in str(value))
    return html.escape("".join("\\" + ch if ch in _PUNCTUATION else ch for ch in text), quote=True)


def _when(moment: datetime | None, zone: ZoneInfo) -> str:
    """A time twentyday formats (no input in it): in the custodian's zone, to the minute."""
    return "no time given" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _platforms(finding: DeletionFinding) -> str:
    return md(PLATFORMS.get(finding.parser, finding.parser))


def _dates(first: datetime | None, last: datetime | None, zone: ZoneInfo) -> str:
    if first is None or last is None:
        return "none of them carries a time"
    if first == last:
        return f"dated {_when(first, zone)}"
    return f"dated between {_when(first, zone)} and {_when(last, zone)}"


def _span(finding: DeletionFinding, zone: ZoneInfo) -> str:
    undated = f" ({finding.undated} without a time of their own)" if finding.undated and finding.first_at else ""
    return _dates(finding.first_at, finding.last_at, zone) + undated


def _who(part: CustodianPart) -> str:
    name = part.custodian.name if part.custodian is not None else "(no longer in the configuration)"
    return f"{md(name)} (custodian id {md(part.custodian_id)})"


def _fact(finding: DeletionFinding, zone: ZoneInfo) -> str:
    """One sentence of what the exports showed, e.g. 3 message(s) in conversation X on WhatsApp appear as..."""
    noun, shown = _shown(finding)
    return (f"{finding.count} {noun} in conversation “{md(finding.conversation)}” on {_platforms(finding)} "
            f"appear {shown}, {_span(finding, zone)}; shown by {len(finding.showings)} export(s).")


def _description(report: DispositionReport) -> Iterable[str]:
    yield ("Messages of the custodian(s) below, from their personal messaging accounts, that the exports "
           "received by twentyday show as deleted, or set to disappear. Dates are the times the exports give "
           "the messages, in the custodian's time zone.")
    for part in report.parts:
        yield ""
        yield f"### {_who(part)}"
        yield ""
        for finding in part.findings:
            yield f"- {_fact(finding, part.zone)}"
        yield ""
        yield "| Conversation | Platform | Finding | Count | First | Last | Exports (received) |"
        yield "|---|---|---|---:|---|---|---|"
        for finding in part.findings:
            showings = "; ".join(f"{s.capture_id} ({_when(s.received_at, part.zone)}: {s.events})"
                                 for s in finding.showings)
            yield (f"| {md(finding.conversation)} | {_platforms(finding)} | {LABELS[finding.kind]} | {finding.count} | "
                   f"{_when(finding.first_at, part.zone)} | {_when(finding.last_at, part.zone)} | {showings} |")
        total = {kind: sum(f.count for f in part.findings if f.kind == kind) for kind in SHOWN_AS}
        yield ""
        yield (f"Volume: {total['deleted_message']} message(s) or entr(ies) showing deletion and "
               f"{total['disappearing_messages']} entr(ies) showing disappearing messages, in "
               f"{len({(f.conversation, f.parser) for f in part.findings})} conversation(s).")


def _office(report: DispositionReport) -> Iterable[str]:
    yield f"- Agency: {md(report.agency) if report.agency else BLANK}"
    for part in report.parts:
        office = part.custodian.office if part.custodian is not None else ""
        yield f"- {_who(part)}: {md(office) if office else BLANK}"


def _circumstances(report: DispositionReport) -> Iterable[str]:
    yield ("What the exports showed, as twentyday received them. twentyday holds what each export "
           "contained and nothing more: the content of a message an export shows only as a placeholder is "
           "not in the archive. These are facts about the exports; they say nothing of how or why the "
           "messages were deleted or set to disappear.")
    for part in report.parts:
        yield ""
        yield f"### {_who(part)}"
        yield ""
        for finding in part.findings:
            for showing in finding.showings:
                noun, shown = _shown(finding)
                yield (f"- The {_platforms(finding)} export received {_when(showing.received_at, part.zone)} "
                       f"(capture {showing.capture_id}) showed {showing.events} {noun} in conversation "
                       f"“{md(finding.conversation)}” {shown}, "
                       f"{_dates(showing.first_at, showing.last_at, part.zone)}.")
    yield ""
    yield f"Further circumstances known to the agency: {BLANK}"


def _notice(alert: DeletionAlert, zone: ZoneInfo) -> Iterable[str]:
    state = (f"; escalated to the records officers {_when(alert.escalated_at, zone)}" if alert.escalated_at else "")
    if alert.resolved_at is not None:
        closer = f" by {md(alert.closed_by)}" if alert.closed_by else ""
        state += f"; closed {_when(alert.resolved_at, zone)}{closer}"
    yield (f"- Alert {alert.id} ({LABELS.get(alert.kind, alert.kind)}, conversation “{md(alert.conversation)}”) opened "
           f"{_when(alert.opened_at, zone)}{state}.")
    for notice in alert.notices:
        settled = f" {_when(notice.settled_at, zone)}" if notice.settled_at is not None else ""
        yield (f"  - {md(notice.event)} notice by {md(notice.sink)} to {md(notice.recipient)}: "
               f"{md(notice.state)}{settled}")
    if alert.queued:
        yield f"  - {alert.queued} notice(s) queued, not yet handed to the alert sinks"
    if not alert.notices and not alert.queued:
        yield "  - no notice was sent for it"


def _safeguards(report: DispositionReport) -> Iterable[str]:
    yield "What twentyday did:"
    yield ""
    captures = sorted({s.capture_id for part in report.parts for f in part.findings for s in f.showings})
    yield (f"- Every export that showed these findings ({len(captures)}: {', '.join(captures)}) is "
           "kept in the archive sealed as received, each recorded in its signed ledger; `twentyday verify` "
           "names any that is altered or missing.")
    for part in report.parts:
        for alert in part.alerts:
            yield from _notice(alert, part.zone)
    yield ""
    yield f"Safeguards the agency has established: {BLANK}"


def _retrieval(report: DispositionReport) -> Iterable[str]:
    yield ("What twentyday holds: the exports above, sealed as received, with every message they contained. "
           "It holds no content for a message an export showed only as a placeholder, nor for messages that "
           "disappeared before an export was made.")
    yield ""
    yield f"Actions the agency has taken: {BLANK}"


def _signature(report: DispositionReport) -> Iterable[str]:
    yield f"Name: {LINE}  "
    yield f"Title: {LINE}  "
    yield f"Agency: {md(report.agency) if report.agency else LINE}  "
    yield f"Date: {LINE}  "
    yield f"Signature: {LINE}"
    yield ""
    yield (f"Send to: National Archives and Records Administration, unauthorized disposition cases, "
           f"<{NARA_CONTACT}> (the contact NARA publishes at <{NARA_PAGE}>); "
           f"postal address, if sent by mail: {BLANK}")


#: The five elements of 36 CFR 1230.14, (a) to (e), then the signature block.
SECTIONS = (("(a) Description of the records, with volume and dates", _description),
            ("(b) Office maintaining the records", _office),
            ("(c) Circumstances of the alienation, defacing, or destruction", _circumstances),
            ("(d) Safeguards established to prevent further loss", _safeguards),
            ("(e) Actions taken to salvage, retrieve, or reconstruct the records", _retrieval),
            ("Submitted by", _signature))


def render(report: DispositionReport) -> str:
    """The draft notice as Markdown (UTF-8 text, one trailing newline)."""
    scope = f" for custodian {md(report.custodian)}" if report.custodian is not None else ""
    as_of = report.as_of.isoformat()
    lines = ["# DRAFT: report of unauthorized disposition of Federal records (36 CFR 1230.14)", ""]
    if not report.parts:
        lines.append(f"{NO_FINDINGS} in the archive as of {as_of}{scope}: there is nothing for this report "
                     "to describe.")
        return "\n".join(lines) + "\n"
    lines += [
        f"Prepared by twentyday from the archive as it stood at {as_of}{scope}. It states what the exports "
        "showed; it makes no finding of how or why anything was deleted. The parts marked "
        f"{BLANK} are for the agency to write. Check the five elements below against the current text of "
        "36 CFR 1230.14 before it is submitted.",
        "",
        f"- To: National Archives and Records Administration, <{NARA_CONTACT}>",
        f"- From: {md(report.agency) if report.agency else BLANK}",
        "",
    ]
    for heading, section in SECTIONS:
        lines += [f"## {heading}", "", *section(report), ""]
    return "\n".join(lines)
