"""``twentyday report --html``: one self-contained page a records officer hands to a supervisor.

Per custodian: the counts of the compliance summary and a timeline of each chat conversation's
coverage (inline SVG, one row per conversation: spans as bars, holes marked, late records and
deletions as ticks), with a table of the same facts under it. ``evidence`` adds, for one
custodian, the factual evidence pack: what arrived and when, how late, which conversations have
holes, which deletions the exports recorded. Facts, not verdicts (§ 2911(b)): the page says so.

The page needs nothing to be read: no script at all, no network (a Content-Security-Policy that
allows only its own inline style, by hash), and every text that came from input (custodian and
conversation names) is HTML-escaped. It shows metadata from the index only and decrypts nothing,
so it needs no officer key and, like ``search``, is not an entry in the accounting of disclosures.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from twentyday.compliance.coverage import Coverage
from twentyday.compliance.summary import STATUSES, CustodianSummary
from twentyday.errors import InvalidArgument, NotFoundError
from twentyday.store.archive import Archive
from twentyday.store.evidence import (
    DELETION_KINDS,
    Arrival,
    ConversationCounts,
    EventMark,
    LateMark,
    arrivals,
    conversation_counts,
    event_marks,
    late_marks,
)
from twentyday.store.summary import Window, compliance_summary, coverages

#: One line on every page: what the report is, and what it is not (44 U.S.C. 2911(b)).
NOT_A_FINDING = ("This report states what the archive holds, when it arrived and what is missing. It makes no "
                 "finding of intent: under 44 U.S.C. § 2911(b) that is for the supervisor to decide.")


@dataclass(frozen=True)
class Evidence:
    custodian: str
    arrivals: list[Arrival]
    conversations: list[ConversationCounts]
    events: list[EventMark]


@dataclass(frozen=True)
class ReportData:
    as_of: datetime
    rule: str
    summaries: list[CustodianSummary]
    coverages: list[Coverage]
    late: list[LateMark]
    deletions: list[EventMark]
    evidence: Evidence | None = None


def gather(archive: Archive, *, as_of: datetime, custodian: str | None = None,
           evidence: str | None = None) -> ReportData:
    """Everything the page shows, read from the index as it stood at ``as_of``."""
    if evidence is not None and custodian not in (None, evidence):
        raise InvalidArgument("--evidence names the one custodian the report is about; drop --custodian",
                              argument="custodian")
    custodian = evidence or custodian
    config = archive.config
    if custodian is not None and config.custodian(custodian) is None:
        raise NotFoundError(f"no custodian {custodian!r} in {config.path}")
    conn = archive.conn
    held = coverages(conn, config, as_of=as_of, custodian=custodian)
    pack = None
    if evidence is not None:
        pack = Evidence(evidence, arrivals(conn, evidence, as_of=as_of),
                        conversation_counts(conn, evidence, as_of=as_of),
                        event_marks(conn, as_of=as_of, custodian=evidence, kinds=DELETION_KINDS))
    return ReportData(
        as_of=as_of, rule=f"{config.deadline_rule}/{config.deadline_days}d",
        summaries=compliance_summary(conn, config, Window(as_of, custodian=custodian), held),
        coverages=held, late=late_marks(conn, as_of=as_of, custodian=custodian),
        deletions=event_marks(conn, as_of=as_of, custodian=custodian), evidence=pack)


# -- rendering (pure: data in, text out)

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1140px;padding:0 1rem;color:#1a1a1a;background:#fff}
h1{font-size:1.6rem;margin:0 0 .3rem}h2{margin-top:2.2rem;border-bottom:2px solid #2f6fb0}h3{margin-top:1.4rem}
.notice{border-left:4px solid #2f6fb0;padding:.3rem .8rem;background:#eef4fb}
table{border-collapse:collapse;margin:.6rem 0 1rem}th,td{border:1px solid #c9ced6;padding:.25rem .5rem;text-align:left;
vertical-align:top}th{background:#f2f4f7}td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:0}svg{display:block;max-width:100%;height:auto;background:#fafbfc;border:1px solid #dde1e6}
svg text{font:12px system-ui,sans-serif;fill:#1a1a1a}svg .axis{stroke:#9aa3ad;stroke-width:1}
svg .span{fill:#2f6fb0}svg .hole{fill:#f3c4c4;stroke:#b42318;stroke-width:1;stroke-dasharray:3 2}
svg .late{stroke:#d97706;stroke-width:2}svg .deleted{fill:#7a1f5c}svg .due{stroke:#1a1a1a;stroke-width:2}
svg .asof{stroke:#555;stroke-width:1;stroke-dasharray:4 3}
.legend span{display:inline-block;margin-right:1.2rem}.key{display:inline-block;width:14px;height:10px;
margin-right:.3rem;vertical-align:middle}.k-span{background:#2f6fb0}
.k-hole{background:#f3c4c4;outline:1px dashed #b42318}
.k-late{background:#d97706;width:3px}.k-deleted{background:#7a1f5c}.k-due{background:#1a1a1a;width:3px}
""".strip()

Mark = TypeVar("Mark", LateMark, EventMark)

_WIDTH, _LABEL, _RIGHT, _ROW, _BAR, _TOP = 1100, 250, 20, 26, 12, 34


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def _day(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d")


def _short(name: str, limit: int = 34) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def render(data: ReportData) -> str:
    """The whole page: self-contained HTML with inline SVG, no script."""
    digest = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    csp = f"default-src 'none'; style-src 'sha256-{digest}'; img-src 'none'; base-uri 'none'; form-action 'none'"
    by_custodian: dict[str, list[Coverage]] = defaultdict(list)
    for held in data.coverages:
        by_custodian[held.custodian].append(held)
    late = _grouped(data.late)
    deleted = _grouped(data.deletions)
    title = "Evidence pack" if data.evidence else "Compliance report"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',  # ours: no input in it
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>twentyday: {title.lower()} as of {_e(data.as_of.isoformat())}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<header><h1>{title}</h1>",
        f"<p>As of {_e(data.as_of.isoformat())}. Deadline rule {_e(data.rule)} (44 U.S.C. § 2911(a)). Made by "
        "twentyday from the archive's index: metadata only, no message content.</p>",
        f'<p class="notice">{_e(NOT_A_FINDING)}</p></header>',
    ]
    for number, summary in enumerate(data.summaries):
        parts.append(_custodian_section(number, summary, by_custodian.get(summary.custodian, []),
                                        late.get(summary.custodian, {}), deleted.get(summary.custodian, {}),
                                        data.as_of))
        if data.evidence is not None and data.evidence.custodian == summary.custodian:
            parts.append(_evidence_section(data.evidence, by_custodian.get(summary.custodian, []), summary.zone))
    if not data.summaries:
        parts.append("<p>No custodian is configured.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _grouped(marks: Iterable[Mark]) -> dict[str, dict[str, list[Mark]]]:
    grouped: dict[str, dict[str, list[Mark]]] = defaultdict(lambda: defaultdict(list))
    for mark in marks:
        grouped[mark.custodian][mark.conversation].append(mark)
    return grouped


def _counts_table(summary: CustodianSummary) -> str:
    headers = ("Records", "Copied", "On time", "Late", "Undated", "Sent", "Received", "Most days late",
               "Median days late", "Open alerts", "Conversations at risk")
    values = (summary.records, *(summary.by_status[s] for s in STATUSES), summary.by_direction["sent"],
              summary.by_direction["received"], "–" if summary.max_days_late is None else summary.max_days_late,
              "–" if summary.median_days_late is None else f"{summary.median_days_late:g}", summary.open_alerts,
              len(summary.at_risk))
    return ('<table class="counts"><caption>Records by status and direction</caption><tr>'
            + "".join(f'<th scope="col">{h}</th>' for h in headers) + "</tr><tr>"
            + "".join(f'<td class="n">{_e(v)}</td>' for v in values) + "</tr></table>")


def _custodian_section(number: int, summary: CustodianSummary, held: list[Coverage],
                       late: dict[str, list[LateMark]], deleted: dict[str, list[EventMark]], as_of: datetime) -> str:
    zone = summary.zone
    parts = [f'<section id="custodian-{number}" class="custodian"><h2>{_e(summary.name)} '
             f"({_e(summary.custodian)})</h2>",
             f"<p>Times in {_e(summary.timezone)}.</p>", _counts_table(summary)]
    if summary.at_risk:
        parts.append('<table class="at-risk"><caption>Conversations whose next export is due</caption><tr>'
                     '<th scope="col">Conversation</th><th scope="col">Platform</th><th scope="col">Covered until</th>'
                     '<th scope="col">Export by</th><th scope="col">State</th></tr>')
        parts.extend(f"<tr><td>{_e(r.conversation)}</td><td>{_e(r.platform)}</td>"
                     f"<td>{_e(_when(r.covered_until, zone))}</td><td>{_e(_when(r.export_by, zone))}</td>"
                     f"<td>{'passed' if r.passed else 'due'}</td></tr>" for r in summary.at_risk)
        parts.append("</table>")
    parts.append("<h3>Coverage of each chat conversation</h3>")
    if not held:
        parts.append("<p>No chat conversation has been captured.</p></section>")
        return "\n".join(parts)
    parts.append(_timeline(number, summary, held, late, deleted, as_of))
    parts.append(_legend())
    parts.append(_timeline_table(held, late, deleted, zone))
    parts.append("</section>")
    return "\n".join(parts)


def _legend() -> str:
    keys = (("span", "covered by a capture"), ("hole", "hole: no capture holds this time"),
            ("late", "records captured late"), ("deleted", "deletion recorded in an export"),
            ("due", "export by"))
    return '<p class="legend">' + "".join(f'<span><i class="key k-{k}"></i>{text}</span>' for k, text in keys) + "</p>"


def _timeline(number: int, summary: CustodianSummary, held: list[Coverage], late: dict[str, list[LateMark]],
              deleted: dict[str, list[EventMark]], as_of: datetime) -> str:
    zone = summary.zone
    first = min(c.spans[0].start for c in held).astimezone(zone)
    start = datetime(first.year, first.month, 1, tzinfo=zone)  # the axis starts at a month's label
    end = max([as_of, *(c.export_by for c in held)])
    if end - start < timedelta(days=2):
        start, end = start - timedelta(days=1), end + timedelta(days=1)
    left, right = _LABEL + 10, _WIDTH - _RIGHT

    def x(moment: datetime) -> float:
        share = (moment - start) / (end - start)
        return round(left + min(max(share, 0.0), 1.0) * (right - left), 1)

    height = _TOP + _ROW * len(held) + 10
    label = f"timeline-{number}"
    parts = [f'<figure><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" '
             f'height="{height}" role="img" aria-labelledby="{label}">',
             f'<title id="{label}">Coverage of {len(held)} chat conversation(s) of {_e(summary.name)}, '
             f"{_e(_day(start, zone))} to {_e(_day(end, zone))}</title>"]
    parts.extend(_axis(start, end, zone, x, height))
    asof_x = x(as_of)
    parts.append(f'<line class="asof" x1="{asof_x}" y1="{_TOP - 6}" x2="{asof_x}" y2="{height - 4}">'
                 f"<title>as of {_e(_when(as_of, zone))}</title></line>")
    for row, conversation in enumerate(held):
        top = _TOP + row * _ROW
        bar = top + (_ROW - _BAR) / 2
        name = conversation.conversation
        group = [f'<g class="conversation" data-conversation="{_e(name)}">',
                 f'<text x="8" y="{top + _ROW / 2 + 4}">{_e(_short(name))}<title>{_e(name)} '
                 f"({_e(conversation.platform)})</title></text>"]
        for span in conversation.spans:
            group.append(f'<rect class="span" x="{x(span.start)}" y="{bar}" '
                         f'width="{max(x(span.end) - x(span.start), 2):.1f}" height="{_BAR}">'
                         f"<title>{_e(name)}: covered {_e(_when(span.start, zone))} to {_e(_when(span.end, zone))} "
                         f"by {len(span.capture_ids)} capture(s)</title></rect>")
        for hole in conversation.holes:
            group.append(f'<rect class="hole" x="{x(hole.start)}" y="{bar}" '
                         f'width="{max(x(hole.end) - x(hole.start), 2):.1f}" height="{_BAR}">'
                         f"<title>{_e(name)}: hole from {_e(_when(hole.start, zone))} to {_e(_when(hole.end, zone))}"
                         ": no capture holds this time; messages in it may be missing</title></rect>")
        for mark in late.get(name, []):
            at = x(mark.first_created)
            group.append(f'<line class="late" x1="{at}" y1="{bar - 5}" x2="{at}" y2="{bar}">'
                         f"<title>{_e(name)}: {mark.count} record(s) created {_e(_day(mark.first_created, zone))} "
                         f"captured late, up to {mark.max_days_late} day(s)</title></line>")
        for event in deleted.get(name, []):
            moment = event.at or event.capture_last or event.received_at
            at = x(moment)
            when = _when(event.at, zone) if event.at else "a time the export does not give"
            group.append(f'<path class="deleted" d="M{at - 4} {bar + _BAR + 6}h8l-4 -6z">'
                         f"<title>{_e(name)}: a deletion recorded in {_e(event.capture_id)} at {_e(when)}"
                         "</title></path>")
        due = x(conversation.export_by)
        group.append(f'<line class="due" x1="{due}" y1="{bar - 3}" x2="{due}" y2="{bar + _BAR + 3}">'
                     f"<title>{_e(name)}: export by {_e(_when(conversation.export_by, zone))}</title></line>")
        group.append("</g>")
        parts.append("".join(group))
    parts.append("</svg></figure>")
    return "\n".join(parts)


def _axis(start: datetime, end: datetime, zone: ZoneInfo, place: Callable[[datetime], float],
          height: int) -> list[str]:
    """Month (or year) ticks along the top, labelled in the custodian's zone."""
    local = start.astimezone(zone)
    months = (end.astimezone(zone).year - local.year) * 12 + end.astimezone(zone).month - local.month + 1
    step = next(s for s in (1, 2, 3, 6, 12, 24, 60, 120, 1200) if months / s <= 12)
    year, month = local.year, local.month
    parts = [f'<line class="axis" x1="{place(start)}" y1="{_TOP - 4}" x2="{place(end)}" y2="{_TOP - 4}"/>']
    while True:
        tick = datetime(year, month, 1, tzinfo=zone)
        if tick > end:
            break
        if tick >= start:
            at = place(tick)
            text = f"{year}" if step >= 12 else f"{year}-{month:02d}"
            parts.append(f'<line class="axis" x1="{at}" y1="{_TOP - 8}" x2="{at}" y2="{height - 4}" '
                         f'stroke-opacity="0.35"/><text x="{at + 2}" y="{_TOP - 12}">{text}</text>')
        month += step
        year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return parts


def _timeline_table(held: list[Coverage], late: dict[str, list[LateMark]], deleted: dict[str, list[EventMark]],
                    zone: ZoneInfo) -> str:
    rows = ['<table class="timeline-facts"><caption>The timeline above, as a table</caption><tr>'
            '<th scope="col">Conversation</th><th scope="col">Platform</th><th scope="col">Covered</th>'
            '<th scope="col">Holes</th><th scope="col">Records captured late</th>'
            '<th scope="col">Deletions recorded</th><th scope="col">Covered until</th>'
            '<th scope="col">Export by</th></tr>']
    for conversation in held:
        name = conversation.conversation
        spans = "<br>".join(f"{_e(_when(s.start, zone))} – {_e(_when(s.end, zone))}" for s in conversation.spans)
        holes = "<br>".join(f"{_e(_when(h.start, zone))} – {_e(_when(h.end, zone))}" for h in conversation.holes)
        marks = late.get(name, [])
        late_text = (f"{sum(m.count for m in marks)} (up to {max(m.max_days_late for m in marks)} day(s))"
                     if marks else "0")
        rows.append(f"<tr><td>{_e(name)}</td><td>{_e(conversation.platform)}</td><td>{spans}</td>"
                    f"<td>{holes or 'none'}</td><td>{late_text}</td><td class=\"n\">{len(deleted.get(name, []))}</td>"
                    f"<td>{_e(_when(conversation.covered_until, zone))}</td>"
                    f"<td>{_e(_when(conversation.export_by, zone))}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: frozenset[int]) -> str:
    out = [f"<table><caption>{_e(caption)}</caption><tr>" + "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
           + "</tr>"]
    body = ["<tr>" + "".join(f'<td class="n">{_e(v)}</td>' if n in numeric else f"<td>{_e(v)}</td>"
                             for n, v in enumerate(row)) + "</tr>" for row in rows]
    if not body:
        body = [f'<tr><td colspan="{len(headers)}">none</td></tr>']
    return "\n".join([*out, *body, "</table>"])


def _evidence_section(evidence: Evidence, held: list[Coverage], zone: ZoneInfo) -> str:
    holes = [(c.conversation, _when(h.start, zone), _when(h.end, zone), ", ".join(h.before), ", ".join(h.after))
             for c in held for h in c.holes]
    return "\n".join([
        '<section class="evidence"><h2>Evidence pack</h2>',
        f'<p class="notice">{_e(NOT_A_FINDING)}</p>',
        _table("What arrived, and when", ("Capture", "Received", "Channel", "Format", "State", "Reason",
                                          "Messages", "New records", "Of them late"),
               [(a.capture_id, _when(a.received_at, zone), a.channel, a.parser, a.state, a.reason or "–",
                 a.messages, a.records, a.late) for a in evidence.arrivals], frozenset({6, 7, 8})),
        _table("How late, by conversation", ("Conversation", "Platform", "Records", "Late", "Undated",
                                             "Most days late", "Late records created from", "to"),
               [(c.conversation, c.platform, c.records, c.late, c.undated,
                 "–" if c.max_days_late is None else c.max_days_late,
                 _when(c.first_late, zone) if c.first_late else "–", _when(c.last_late, zone) if c.last_late else "–")
                for c in evidence.conversations], frozenset({2, 3, 4, 5})),
        _table("Holes in the coverage of chat conversations", ("Conversation", "From (last message held)",
                                                                "To (next message held)", "Captures before",
                                                                "Captures after"), holes, frozenset()),
        _table("Deletions and disappearing messages recorded in exports",
               ("Conversation", "Event", "Time in the export", "Capture", "Capture received"),
               [(e.conversation, e.kind.replace("_", " "), _when(e.at, zone) if e.at else "not given", e.capture_id,
                 _when(e.received_at, zone)) for e in evidence.events], frozenset()),
        "</section>",
    ])
