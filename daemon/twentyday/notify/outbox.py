"""Who hears of an alert event, by which sink: the fan-out of the outbox.

The store queues each alert event in the transaction that changes the alert
(:func:`twentyday.store.outbox.note_alert_event`); :func:`enqueue_alert_event` turns one
event into one delivery per sink and recipient, ledgered, inside the caller's transaction.
:class:`twentyday.notify.deliver.Deliverer` calls it for every waiting event, and
:func:`enqueue_digests` adds each officer's daily digest.

Who gets the mail:

- a custodian's alert goes to the custodian's first official address;
- an escalation, and every alert of an officer-only kind (``ingest_failed``,
  ``unknown_custodian``, ``integrity_failure``) or of no custodian (or one without an
  official address), goes to the records officers (``alerts.email.officers``);
- a resolution goes to whoever heard of the alert: the custodian, and the officers too
  once it was escalated.

The journal and the webhook hear of every event.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from twentyday.canonical import iso
from twentyday.config import Config
from twentyday.notify.howto import OFFICER_ONLY
from twentyday.store import db, outbox
from twentyday.store.ledger import Ledger


def webhook_label(url: str) -> str:
    """How the outbox names a webhook endpoint: its host and a digest of the whole URL.

    The URL's path or query often holds a token, so it is never stored or shown; a changed
    URL is a new endpoint (a disabled one is not held against its replacement).
    """
    host = urlsplit(url).hostname or "webhook"
    return f"{host}#{hashlib.sha256(url.encode('utf-8')).hexdigest()[:12]}"


def email_recipients(conn: db.Connection, alert: dict[str, Any], event: str, config: Config) -> list[str]:
    email = config.delivery.email
    if email is None:
        return []
    custodian = config.custodian(alert["custodian"]) if alert["custodian"] else None
    own = [custodian.official[0]] if custodian is not None and custodian.official else []
    officers = list(email.officers)
    if alert["kind"] in OFFICER_ONLY or not own or event == "escalated":
        chosen = officers
    elif event == "resolved" and outbox.was_escalated(conn, int(alert["id"])):
        chosen = own + officers
    else:
        chosen = own
    return list(dict.fromkeys(chosen))


def enqueue_alert_event(conn: db.Connection, ledger: Ledger, alert_row: dict[str, Any], event: str,
                        now: datetime, config: Config, *, event_id: int | None = None) -> int:
    """Make the deliveries of one alert event (ledgered, in the caller's transaction); returns how many.

    ``event_id``: the queued ``alert_event`` this fans out; None queues one here first (for a
    caller above the store that changes an alert itself). Deliveries to a webhook endpoint
    that answered 410 are made ``disabled`` at once: the record shows the alert was not sent.
    """
    stamp = iso(now)
    alert_id = int(alert_row["id"])
    if event_id is None:
        event_id = outbox.note_alert_event(conn, ledger, alert_id, event, stamp)
        outbox.mark_fanned_out(conn, event_id, stamp)
    targets: list[tuple[str, str]] = []
    if config.delivery.journal.enabled:
        targets.append(("journal", "journal"))
    if config.delivery.webhook is not None:
        targets.append(("webhook", webhook_label(config.delivery.webhook.url)))
    targets += [("email", address) for address in email_recipients(conn, alert_row, event, config)]
    made = 0
    for sink, recipient in targets:
        state = "disabled" if sink == "webhook" and outbox.endpoint_disabled(conn, sink, recipient) else "pending"
        made += outbox.insert_delivery(conn, ledger, key=f"ev:{event_id}:{sink}:{recipient}", alert_event=event_id,
                                       alert_id=alert_id, event=event, sink=sink, recipient=recipient,
                                       state=state, at=stamp)
    return made


def enqueue_digests(conn: db.Connection, ledger: Ledger, now: datetime, config: Config) -> int:
    """Each officer's digest of today, once its hour has come and while alerts are open; returns how many."""
    email = config.delivery.email
    if email is None or email.digest_hour < 0 or not email.officers:
        return 0
    local = now.astimezone(ZoneInfo(email.digest_timezone))
    if local.hour < email.digest_hour or not outbox.open_alert_rows(conn):
        return 0
    day = local.date().isoformat()
    made = 0
    for officer in email.officers:
        key = f"digest:{day}:{officer}"
        if not outbox.has_delivery(conn, key):
            made += outbox.insert_delivery(conn, ledger, key=key, alert_event=None, alert_id=None, event="digest",
                                           sink="email", recipient=officer, state="pending", at=iso(now))
    return made
