"""What an alert mail says: reminders that say *how* to export, and short factual notices.

Pure text, no I/O and no clock: the caller passes every fact. Written for a tired person
on a phone: what is due, by when, then a few numbered steps for that app. Menu names
were checked against the apps' own help pages and public guides (2025); apps rename
menus, so each set of steps also says what to look for.

Nothing here is message content: an alert carries metadata only (conversation name,
counts, capture ids, times), and so does every mail made from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from twentyday.logs import escape_controls

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: The kinds only a records officer can act on: the custodian is not told of them.
OFFICER_ONLY = frozenset({"ingest_failed", "unknown_custodian", "integrity_failure"})


@dataclass(frozen=True)
class Reminder:
    """The facts of a ``deadline_approaching`` reminder (times aware; shown in ``zone``)."""

    custodian_id: str
    custodian_name: str
    zone: str
    platform: str
    conversation: str
    covered_until: datetime | None
    export_by: datetime | None
    forward_address: str
    watched_folder: str = ""


@dataclass(frozen=True)
class Notice:
    """The facts of any other alert event."""

    event: str           # opened | escalated | resolved | reminder
    kind: str
    severity: str
    alert_id: int
    custodian_id: str
    custodian_name: str
    zone: str
    conversation: str
    detail: str
    count: int
    opened_at: datetime
    forward_address: str = ""


@dataclass(frozen=True)
class Mail:
    subject: str
    body: str


def one_line(text: str) -> str:
    """A name from the index made safe for a subject line or a numbered step."""
    return escape_controls(text).strip() or "-"


def local_time(moment: datetime, zone: str) -> str:
    """``Tue 10 Mar 2026, 14:05 EDT`` in the custodian's zone (no locale: the same on every host)."""
    at = moment.astimezone(ZoneInfo(zone))
    return f"{_DAYS[at.weekday()]} {at.day} {_MONTHS[at.month - 1]} {at.year}, {at:%H:%M} {at.tzname()}"


def local_day(moment: datetime, zone: str) -> str:
    at = moment.astimezone(ZoneInfo(zone))
    return f"{_DAYS[at.weekday()]} {at.day} {_MONTHS[at.month - 1]} {at.year}"


def _send_it(reminder: Reminder, what: str) -> str:
    where = f"Mail {what} to {reminder.forward_address}"
    if reminder.watched_folder:
        where += f" (or copy it into {reminder.watched_folder} on the records computer)"
    return where + "."


#: The iPhone's complete copy comes from a computer: imessage-exporter (its ``-f txt`` and ``-f html``
#: output is what twentyday reads) on a Mac with Messages in iCloud, or on an iPhone backup.
_IPHONE_EXPORT = (
    "The complete copy comes from a computer: on a Mac signed in to the same Apple ID with Messages in "
    "iCloud (or from a local backup of the iPhone), run imessage-exporter with -f html -c clone (for a "
    "backup add -a iOS -p <backup folder>), or ask your records officer to; send the folder it writes, zipped."
)


def export_steps(reminder: Reminder) -> list[str]:
    """Numbered steps for the platform, ending with where to send the export."""
    platform = reminder.platform.lower()
    chat = one_line(reminder.conversation)
    if platform == "whatsapp":
        return [
            f'Open WhatsApp and the chat "{chat}".',
            "Android: tap the three dots (More options) > More > Export chat.",
            "iPhone: tap the chat's name at the top > scroll down > Export Chat.",
            'Choose "Include media" (Android) or "Attach Media" (iPhone): without media the copy '
            "is incomplete and the records officer is told so.",
            _send_it(reminder, "the file (or zip) it makes") + " If it is too big to mail, save it "
            "to Files and ask your records officer for the watched folder.",
        ]
    if platform == "signal":
        return [
            "Signal has no chat export on the phone. The complete copy comes from Signal Desktop "
            "on a computer.",
            "On a computer: install Signal Desktop and link it to your phone (Signal on the phone: "
            "Settings > Linked devices > +). When asked, choose to transfer your message history.",
            f'Export the chat "{chat}" with the export tool your records officer names '
            "(signal-export or sigtop).",
            _send_it(reminder, "the exported folder, zipped,"),
            "No computer before the date below? Mail screenshots that show each message's date and "
            "time, and tell your records officer: that copy is partial until the desktop export arrives.",
        ]
    if platform == "telegram":
        return [
            f'Open Telegram Desktop (on a computer) and the chat "{chat}".',
            "Click the three dots at the top right > Export chat history.",
            'Set Format to "Machine-readable JSON" (the default HTML is read too, but JSON names the chat '
            "so a later export is matched to it); tick photos and files to keep the copy complete.",
            "Click Export and wait for the folder with result.json.",
            _send_it(reminder, "that folder, zipped,"),
        ]
    if platform == "sms":
        return [
            "Android: open SMS Backup & Restore > Back Up; choose Messages (and Calls if asked), "
            "keep the XML file.",
            f'Send the backup file (sms-....xml) that covers "{chat}". ' + _send_it(reminder, "it"),
            "iPhone: iOS has no text-message export on the phone. " + _IPHONE_EXPORT,
            "Until that export arrives, forward each message (press and hold > More > arrow) to the "
            "address below. A forward keeps the text but not the original time: say the date in the mail.",
        ]
    if platform == "imessage":
        return [
            "iOS has no iMessage export on the phone. " + _IPHONE_EXPORT,
            f'Until that export arrives, forward each message of "{chat}": press and hold > More > tap '
            f"the arrow, send to {reminder.forward_address}, and say the original date in the mail.",
        ]
    if platform == "slack":
        return [
            "Only a workspace owner or admin can export Slack (workspace settings > Import/Export Data "
            "> Export); direct messages need a paid plan's export.",
            f'Ask them for an export that covers "{chat}" up to today.',
            _send_it(reminder, "the export zip"),
        ]
    if platform == "email":
        return [
            "Open each message of the thread in your personal mail.",
            'Use "Forward as attachment" where your mail offers it (on a computer: More > Forward as '
            "attachment), else Forward, so the original's date and addresses stay in the mail.",
            f"Send it to {reminder.forward_address}; keep attachments.",
        ]
    if platform in {"messenger", "instagram", "google_chat", "google_voice"}:
        source = {"messenger": "Facebook: Settings > Accounts Centre > Your information and permissions > "
                               "Download your information, format JSON",
                  "instagram": "Instagram: Settings > Accounts Centre > Your information and permissions > "
                               "Download your information, format JSON",
                  "google_chat": "Google Takeout (takeout.google.com), Google Chat only",
                  "google_voice": "Google Takeout (takeout.google.com), Voice only"}[platform]
        return [f"Request your messages: {source}.", f'Include the conversation "{chat}".',
                _send_it(reminder, "the download")]
    return [f'Export the conversation "{chat}" from the app, with its media if it offers that.',
            _send_it(reminder, "the export")]


def render_reminder(reminder: Reminder) -> Mail:
    chat = one_line(reminder.conversation)
    platform = one_line(reminder.platform) if reminder.platform else "chat"
    due = local_day(reminder.export_by, reminder.zone) if reminder.export_by is not None else "as soon as you can"
    lines = [
        f"Hello {one_line(reminder.custodian_name)},",
        "",
        f'twentyday has no copy of "{chat}" ({platform}) after its last export.',
        "",
        f"Conversation:  {chat} ({platform})",
        "Last message we have:  " + (local_time(reminder.covered_until, reminder.zone)
                                     if reminder.covered_until is not None else "none"),
        f"Export by:  {due}" + (" (end of that day, "
                                 f"{reminder.zone})" if reminder.export_by is not None else ""),
        "",
        "Messages after the last one we have must be forwarded within 20 days (44 U.S.C. 2911). "
        "Export the whole chat again; overlap is fine, nothing is counted twice.",
        "",
        "How:",
    ]
    lines += [f"{n}. {step}" for n, step in enumerate(export_steps(reminder), start=1)]
    lines += ["", f"Your forwarding address: {reminder.forward_address}", "",
              "This reminder stops once the new export arrives.", "-- twentyday"]
    subject = f"Export by {due}: {chat} ({platform})"
    return Mail(subject=one_line(subject), body="\n".join(lines) + "\n")


_NEXT = {
    "late_capture": "Nothing to undo: the records are kept. Forward new messages within 20 days.",
    "deadline_approaching": "Export the conversation again and send it to your forwarding address.",
    "coverage_gap": "Export the conversation again, far enough back to cover the gap.",
    "deleted_message": "The export shows a deleted-message placeholder. The records officer decides "
                       "whether a report (36 CFR 1230) is needed.",
    "disappearing_messages": "Turn disappearing messages off for this conversation, then export it again.",
    "incomplete_copy": "Export again with media included (WhatsApp: Include media / Attach Media).",
    "thread_gap": "A message replies to one the archive does not have: export or forward the earlier part.",
    "custodian_silent": "Nothing has arrived for a while: check that exports and forwards still reach "
                        "the forwarding address.",
    "undated_record": "Forward the original as an attachment, so its date can be read.",
    "unknown_custodian": "An item matched no custodian; it is kept sealed. Add the sender's account "
                         "to a custodian, or note why it arrived.",
    "ingest_failed": "The item is kept sealed in quarantine: 'twentyday show <capture id>' tells why.",
    "integrity_failure": "Run 'twentyday verify' and compare with the last published ledger head.",
}
_EVENT_WORDS = {"opened": "opened", "escalated": "escalated to the records officers", "resolved": "resolved",
                "reminder": "reminder"}


def render_notice(notice: Notice) -> Mail:
    chat = one_line(notice.conversation) if notice.conversation else "-"
    lines = [
        f"Alert {notice.alert_id} {_EVENT_WORDS.get(notice.event, notice.event)}: {notice.kind} ({notice.severity})",
        "",
        f"Custodian:     {one_line(notice.custodian_name or notice.custodian_id or 'none (unrouted)')}",
        f"Conversation:  {chat}",
        f"What:          {one_line(notice.detail)}",
        f"Times seen:    {notice.count}",
        f"Opened:        {local_time(notice.opened_at, notice.zone)}",
        "",
        f"Next: {_NEXT.get(notice.kind, 'See twentyday alerts.')}" if notice.event != "resolved"
        else "Next: nothing; the condition has cleared.",
    ]
    if notice.forward_address and notice.event != "resolved" and notice.kind not in OFFICER_ONLY:
        lines += ["", f"Forwarding address: {notice.forward_address}"]
    lines += ["", "-- twentyday (metadata only; message content stays sealed)"]
    subject = f"[twentyday] {notice.event}: {notice.kind}" + (f" - {chat}" if notice.conversation else "")
    return Mail(subject=one_line(subject), body="\n".join(lines) + "\n")


def render_digest(officer: str, alerts: Sequence[dict[str, Any]], day: str) -> Mail:
    """One mail a day per officer: every open alert, one line each, oldest first."""
    lines = [f"Open alerts on {day}: {len(alerts)}", ""]
    if alerts:
        lines.append(f"{'id':>6}  {'severity':<8}  {'kind':<21}  {'custodian':<10}  {'opened':<20}  conversation")
    for alert in alerts:
        lines.append(f"{alert['id']:>6}  {alert['severity']:<8}  {alert['kind']:<21}  "
                     f"{one_line(alert['custodian'] or '-'):<10}  {str(alert['opened_at'])[:19]:<20}  "
                     f"{one_line(alert['conversation'] or '-')}  (x{alert['count']})")
    lines += ["", "Details: twentyday alerts; deliveries: twentyday alerts deliveries.", "-- twentyday"]
    return Mail(subject=f"[twentyday] {len(alerts)} open alert(s) on {day}", body="\n".join(lines) + "\n")
