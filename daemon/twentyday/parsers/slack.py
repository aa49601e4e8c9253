"""Slack workspace export (zip) parser: members in, messages and events out.

Pure and streaming enough: the workspace files (``users.json``,
``channels.json``, ``groups.json``, ``dms.json``, ``mpims.json``) are read
once, then one day file (``<channel>/YYYY-MM-DD.json``, a JSON array) at a
time, channels and days in name order, messages in file order.

- Time is the message's ``ts`` (epoch seconds, UTC); the day file's name is
  never used for time. ``f"{channel id}:{ts}"`` is the message key and
  ``thread_ts`` (when it differs from ``ts``) the key of the message replied to.
- Text is Slack mrkdwn: ``<@U…>`` becomes ``@Real Name``, ``<#C…|name>``
  ``#name``, ``<url|label>`` ``label (url)``, ``<!here>`` ``@here``, and
  ``&lt; &gt; &amp;`` are unescaped. Legacy ``attachments[]`` (bot posts, link
  previews) are kept in ``extra["slack_attachments"]`` and become the body of
  a message that has no text of its own.
- Files (``files[]``, legacy ``file`` on ``file_share``) are attachments with
  no data: exports carry links, not bytes. The message is flagged
  ``media_omitted`` and raises one ``incomplete_copy`` event.
- Join/leave/topic/integration notices are ``system`` events; a ``tombstone``
  or a "This message was deleted." placeholder is a ``deleted_message`` event.
- Recipients are the conversation's members (from the workspace files) other
  than the sender, by name. Senders are ``users.json`` real names; a bot post
  is named by its ``username``, ``bot_profile``, a bot user, or (old exports,
  id only) the ``bot_add`` notice that named it earlier in reading order.

Not supported: Enterprise Grid org exports (one folder per workspace),
``blocks[]`` rich text beyond the ``text`` fallback Slack writes with it,
canvases, huddle transcripts and ``integration_logs.json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from twentyday.errors import ParseError, TwentydayError
from twentyday.parsers.base import ExportSource
from twentyday.parsers.common import load_json
from twentyday.records import ParsedAttachment, ParsedEvent, ParsedMessage, ParseHints, Record, TimeReading

__all__ = ["NAME", "detect", "parse", "render_mrkdwn"]

NAME = "slack"
PLATFORM: Final = "slack"

_DAY_FILE = re.compile(r"(?P<dir>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})\.json")
_TS = re.compile(r"(?P<s>\d{1,12})(?:\.(?P<f>\d{1,6}))?")
_TOKEN = re.compile(r"<(?P<target>[^<>|]*)(?:\|(?P<label>[^<>]*))?>|&(?P<entity>amp|lt|gt);")
_ENTITIES: Final = {"amp": "&", "lt": "<", "gt": ">"}
_UNESCAPE = re.compile(r"&(amp|lt|gt);")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_DELETED_TEXT: Final = "This message was deleted."
_DELETED_SUBTYPES: Final = frozenset({"tombstone", "message_deleted"})
#: Notices about the conversation rather than messages in it.
_SYSTEM_SUBTYPES: Final = frozenset(
    {
        "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
        "channel_archive", "channel_unarchive", "channel_convert_to_private",
        "channel_convert_to_public", "channel_posting_permissions",
        "group_join", "group_leave", "group_topic", "group_purpose", "group_name",
        "group_archive", "group_unarchive",
        "bot_add", "bot_remove", "bot_enable", "bot_disable", "app_conversation_join",
        "pinned_item", "unpinned_item", "reminder_add", "reminder_delete",
        "sh_room_created", "sh_room_shared",
    }
)  # fmt: skip
#: Subtypes Slack documents for messages: a record's flags (in clear) name only these; any other
#: is the export's text, flagged ``subtype_unlisted`` and kept sealed (``extra["slack_subtype"]``).
_LISTED_SUBTYPES: Final = _DELETED_SUBTYPES | _SYSTEM_SUBTYPES | frozenset(
    {
        "bot_message", "me_message", "message_changed", "message_replied", "thread_broadcast",
        "file_share", "file_comment", "file_mention", "ekm_access_denied", "huddle_thread",
        "joiner_notification", "joiner_notification_for_inviter", "slackbot_response",
    }
)  # fmt: skip
#: Workspace files naming conversations, and how their folders are named.
_CONVERSATION_FILES: Final = (
    ("channels.json", "channel"),
    ("groups.json", "channel"),
    ("mpims.json", "group_dm"),
    ("dms.json", "dm"),
)


@dataclass(frozen=True)
class _Conversation:
    """One channel or DM: how records name it, its id for keys, its members' ids."""

    name: str
    key: str
    members: tuple[str, ...] = ()


@dataclass
class _Workspace:
    """What the workspace files say about people and conversations."""

    root: str
    users: dict[str, str] = field(default_factory=dict)
    bots: dict[str, str] = field(default_factory=dict)
    channel_names: dict[str, str] = field(default_factory=dict)
    folders: dict[str, _Conversation] = field(default_factory=dict)

    def user(self, user_id: str) -> str:
        return self.users.get(user_id, user_id)


# --- public API ---------------------------------------------------------------


def detect(source: ExportSource, head: bytes) -> bool:
    """Whether ``source`` is a Slack workspace export: users, channels and day files."""
    try:
        return _export_root(source.members()) is not None
    except (TwentydayError, OSError, ValueError, TypeError):
        return False


def parse(source: ExportSource, hints: ParseHints) -> Iterator[Record]:
    """Read a Slack export; yield messages and events channel by channel, day by day.

    The workspace files are read now, so a source that is not a Slack export or
    has unreadable workspace files raises :class:`ParseError` before any
    record; an unreadable day file raises it while iterating, naming the file.
    """
    members = source.members()
    root = _export_root(members)
    if root is None:
        raise ParseError(f"{source.name}: not a Slack export (no users.json, channels.json and day files)",
                         code="not_this_format")
    workspace = _load_workspace(source, root, set(members))
    return _records(source, workspace, _day_files(members, root))


def render_mrkdwn(text: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    """Slack mrkdwn as a reader sees it: mentions by name, links with labels, unescaped."""
    if "<" not in text and "&" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        entity = match["entity"]
        if entity is not None:
            return _ENTITIES[entity]
        label = _unescape(match["label"]) if match["label"] is not None else None
        return _render_token(_unescape(match["target"]), label, users, channels)

    return _TOKEN.sub(replace, text)


# --- layout -----------------------------------------------------------------------


def _export_root(members: list[str]) -> str | None:
    """The folder prefix ('' or 'name/') holding users.json, channels.json and day files."""
    names = set(members)
    for member in members:
        if not (member == "users.json" or member.endswith("/users.json")):
            continue
        root = member[: -len("users.json")]
        if root.count("/") > 1 or root + "channels.json" not in names:
            continue
        if any(_day_match(m, root) for m in members):
            return root
    return None


def _day_match(member: str, root: str) -> re.Match[str] | None:
    if not member.startswith(root):
        return None
    return _DAY_FILE.fullmatch(member, len(root))


def _day_files(members: list[str], root: str) -> list[tuple[str, str]]:
    """(folder, member) of every day file, by folder then day."""
    found = []
    for member in members:
        match = _day_match(member, root)
        if match is not None:
            found.append((match["dir"], match["day"], member))
    found.sort()
    return [(folder, member) for folder, _, member in found]


# --- workspace files --------------------------------------------------------------


def _load_list(source: ExportSource, member: str) -> list[dict[str, object]]:
    """A JSON array of objects; anything else is refused, naming the file."""
    data = load_json(source, member, source.limits.json_bytes, "Slack export file")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise ParseError(f"{source.name}: {member}: expected a JSON array of objects", code="bad_json")
    return data


def _load_workspace(source: ExportSource, root: str, members: set[str]) -> _Workspace:
    workspace = _Workspace(root=root)
    for user in _load_list(source, root + "users.json"):
        _add_user(workspace, user)
    for filename, kind in _CONVERSATION_FILES:
        if root + filename in members:
            for entry in _load_list(source, root + filename):
                _add_conversation(workspace, entry, kind)
    return workspace


def _add_user(workspace: _Workspace, user: dict[str, object]) -> None:
    user_id = _text(user.get("id"))
    if not user_id:
        return
    profile = _object(user.get("profile"))
    name = (
        _text(user.get("real_name"))
        or _text(profile.get("real_name"))
        or _text(profile.get("display_name"))
        or _text(user.get("name"))
        or user_id
    )
    workspace.users[user_id] = name
    bot_id = _text(profile.get("bot_id"))
    if bot_id:
        workspace.bots[bot_id] = name


def _add_conversation(workspace: _Workspace, entry: dict[str, object], kind: str) -> None:
    conversation_id = _text(entry.get("id"))
    name = _text(entry.get("name"))
    members = tuple(m for m in _list(entry.get("members")) if isinstance(m, str))
    if kind == "channel":
        display = f"#{name or conversation_id}"
    else:
        # DMs have no name; group DMs have a machine name ("mpdm-a--b-1"): show the people.
        display = ", ".join(workspace.user(m) for m in members) or name or conversation_id
    conversation = _Conversation(name=display, key=conversation_id or name, members=members)
    if conversation_id and name:
        workspace.channel_names[conversation_id] = name
    # Channel and group-DM folders are named by name, DM folders by id.
    for folder in (name, conversation_id):
        if folder:
            workspace.folders.setdefault(folder, conversation)


# --- records ----------------------------------------------------------------------


def _records(
    source: ExportSource, workspace: _Workspace, day_files: list[tuple[str, str]]
) -> Iterator[Record]:
    for folder, member in day_files:
        conversation = workspace.folders.get(folder) or _Conversation(name=f"#{folder}", key=folder)
        for index, item in enumerate(_load_list(source, member)):
            where = f"{source.name}: {member}: message {index + 1}"
            yield from _record(item, conversation, workspace, where)


def _record(
    item: dict[str, object], conversation: _Conversation, workspace: _Workspace, where: str
) -> list[Record]:
    raw_ts = _text(item.get("ts"))
    at = _read_ts(raw_ts, where)
    subtype = _text(item.get("subtype"))
    text = render_mrkdwn(_text(item.get("text")), workspace.users, workspace.channel_names)
    key = f"{conversation.key}:{raw_ts}"
    if subtype in _DELETED_SUBTYPES or text.strip() == _DELETED_TEXT:
        detail = f"message {key} shows as deleted: {text.strip() or subtype}"
        return [ParsedEvent(kind="deleted_message", conversation=conversation.name, at=at, detail=detail)]
    if subtype in _SYSTEM_SUBTYPES:
        _learn_bot(item, workspace, subtype)
        return [
            ParsedEvent(kind="system", conversation=conversation.name, at=at, detail=_notice(item, workspace, text))
        ]
    message = _message(item, conversation, workspace, text, at, raw_ts, subtype)
    if not message.attachments:
        return [message]
    names = ", ".join(a.name for a in message.attachments)
    detail = f"Slack export has no copy of the file(s) in message {key} from {message.sender}: {names}"
    event = ParsedEvent(kind="incomplete_copy", conversation=conversation.name, at=at, detail=detail)
    return [message, event]


def _message(
    item: dict[str, object],
    conversation: _Conversation,
    workspace: _Workspace,
    text: str,
    at: datetime,
    raw_ts: str,
    subtype: str,
) -> ParsedMessage:
    sender_id, sender = _sender(item, workspace, subtype)
    attachments = _files(item, subtype)
    extra = _extra(item, workspace)
    if subtype and subtype not in _LISTED_SUBTYPES:
        extra = {**extra, "slack_subtype": subtype}
        subtype = "subtype_unlisted"
    flags = tuple(f for f in (subtype, "media_omitted" if attachments else "") if f)
    thread_ts = _text(item.get("thread_ts"))
    return ParsedMessage(
        platform=PLATFORM,
        conversation=conversation.name,
        sender=sender,
        created_at=at,
        time=TimeReading(raw=raw_ts, layout="slack-ts", day_first=None, decided_by="format", zone="UTC"),
        body=text or extra.get("slack_attachments", ""),
        recipients=tuple(workspace.user(m) for m in conversation.members if m != sender_id),
        message_key=f"{conversation.key}:{raw_ts}",
        attachments=attachments,
        edited=isinstance(item.get("edited"), dict),
        reply_to=f"{conversation.key}:{thread_ts}" if thread_ts and thread_ts != raw_ts else "",
        flags=flags,
        extra=extra,
    )


def _read_ts(raw: str, where: str) -> datetime:
    match = _TS.fullmatch(raw)
    if match is None:
        raise ParseError(f"{where}: 'ts' {raw!r} is not a Slack timestamp", code="bad_date")
    # Integer arithmetic: a float would round the microseconds of large epochs.
    micros = int((match["f"] or "0").ljust(6, "0"))
    try:
        return _EPOCH + timedelta(seconds=int(match["s"]), microseconds=micros)
    except OverflowError:
        raise ParseError(f"{where}: 'ts' {raw!r} is out of range", code="bad_date") from None


def _sender(item: dict[str, object], workspace: _Workspace, subtype: str) -> tuple[str, str]:
    """(user id, display name) of whoever posted the message."""
    user_id = _text(item.get("user")) or _text(_object(item.get("comment")).get("user"))
    if subtype == "bot_message" or (not user_id and item.get("bot_id")):
        bot_id = _text(item.get("bot_id"))
        name = (
            _text(item.get("username"))
            or _text(_object(item.get("bot_profile")).get("name"))
            or workspace.bots.get(bot_id, "")
            or (workspace.users.get(user_id, "") if user_id else "")
            or bot_id
        )
        return user_id, name
    if user_id in workspace.users:
        return user_id, workspace.users[user_id]
    # Users of other workspaces (shared channels) are missing from users.json.
    profile = _object(item.get("user_profile"))
    return user_id, _text(profile.get("real_name")) or _text(profile.get("display_name")) or user_id


def _notice(item: dict[str, object], workspace: _Workspace, text: str) -> str:
    """A system notice's text, naming who did it when the text does not ("added an integration")."""
    subtype = _text(item.get("subtype"))
    actor_id = _text(item.get("user"))
    actor = workspace.user(actor_id) if actor_id else ""
    detail = f"{subtype}: {text}" if text else subtype
    return f"{detail} (by {actor})" if actor and actor not in text else detail


def _learn_bot(item: dict[str, object], workspace: _Workspace, subtype: str) -> None:
    """Old bot posts carry only a bot id; the 'bot_add' notice names it ("…|github>")."""
    bot_id = _text(item.get("bot_id"))
    if subtype != "bot_add" or not bot_id or bot_id in workspace.bots:
        return
    match = re.search(r"/services/" + re.escape(bot_id) + r"\|([^<>]+)>", _text(item.get("text")))
    if match is not None:
        workspace.bots[bot_id] = _unescape(match[1])


def _files(item: dict[str, object], subtype: str) -> tuple[ParsedAttachment, ...]:
    files = [f for f in _list(item.get("files")) if isinstance(f, dict)]
    # Legacy exports put the file on the file_share message; a file_comment only refers to it.
    legacy = item.get("file")
    if subtype == "file_share" and isinstance(legacy, dict):
        files.append(legacy)
    return tuple(_attachment(f) for f in files)


def _attachment(file: dict[str, object]) -> ParsedAttachment:
    name = _text(file.get("name")) or _text(file.get("title")) or _text(file.get("id")) or "file"
    if file.get("mode") == "tombstone":
        name = f"{name} (deleted from Slack)"
    content_type = _text(file.get("mimetype")) or "application/octet-stream"
    return ParsedAttachment(name=name, content_type=content_type, data=None)


def _extra(item: dict[str, object], workspace: _Workspace) -> dict[str, str]:
    extra: dict[str, str] = {}
    rendered = [_render_attachment(a, workspace) for a in _list(item.get("attachments")) if isinstance(a, dict)]
    if any(rendered):
        extra["slack_attachments"] = "\n\n".join(r for r in rendered if r)
    reactions = [r for r in _list(item.get("reactions")) if isinstance(r, dict)]
    if reactions:
        extra["reactions"] = "; ".join(
            f":{_text(r.get('name'))}: " + ", ".join(workspace.user(_text(u)) for u in _list(r.get("users")))
            for r in reactions
        )
    edited = _object(item.get("edited"))
    if edited:
        extra["edited_ts"] = _text(edited.get("ts"))
    return extra


def _render_attachment(attachment: dict[str, object], workspace: _Workspace) -> str:
    title = _text(attachment.get("title"))
    link = _text(attachment.get("title_link"))
    lines = [
        _text(attachment.get("pretext")),
        f"{title} ({link})" if title and link else title,
        _text(attachment.get("text")) or _text(attachment.get("fallback")),
    ]
    return "\n".join(render_mrkdwn(line, workspace.users, workspace.channel_names) for line in lines if line)


# --- mrkdwn -----------------------------------------------------------------------


def _render_token(target: str, label: str | None, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    if target.startswith("@"):
        return "@" + users.get(target[1:], label or target[1:])
    if target.startswith("#"):
        return "#" + (label or channels.get(target[1:], target[1:]))
    if target.startswith("!"):
        command = target[1:].split("^", 1)[0]
        if command in ("here", "channel", "everyone"):
            return "@" + command
        return label or target[1:]  # subteams, dates: the label is what Slack shows
    if label is None:
        return target
    if label in (target, target.removeprefix("mailto:")):
        return label
    return f"{label} ({target})"


def _unescape(text: str) -> str:
    return _UNESCAPE.sub(lambda m: _ENTITIES[m[1]], text) if "&" in text else text


# --- JSON helpers -----------------------------------------------------------------


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _object(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []
