"""The deliverer: drains the outbox, retrying with backoff, never blocking ingest.

One round (:meth:`Deliverer.run_once`):

1. fan out every waiting alert event into its deliveries (:mod:`twentyday.notify.outbox`),
   and add the officers' daily digests once their hour has come — one short transaction;
2. claim the deliveries now due (moving their next attempt past the sinks' timeouts, so a
   second deliverer, ``twentyday alerts deliver`` beside ``serve``, skips them), send each
   outside any transaction, then settle it: delivered, disabled (HTTP 410), due again after
   ``retry_initial_seconds`` doubled per attempt up to ``retry_max_seconds`` plus up to 10%
   jitter, or failed for good after ``max_attempts``. Every settlement is a ledger entry.

Deliver first, mark second: a crash in between sends the delivery again on restart, with
the same ``message_id`` (at least once, and recognisably so). ``serve`` runs
:meth:`Deliverer.run` in a thread of its own with its own connection: a slow or failing
sink holds no lock the pipeline or the SMTP intake waits for.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from twentyday.canonical import iso, parse_iso
from twentyday.compliance.coverage import export_by as coverage_export_by
from twentyday.config import Config
from twentyday.notify.howto import (
    OFFICER_ONLY,
    Mail,
    Notice,
    Reminder,
    local_day,
    one_line,
    render_digest,
    render_notice,
    render_reminder,
)
from twentyday.notify.outbox import enqueue_alert_event, enqueue_digests
from twentyday.notify.sinks import PRIORITY, EmailSender, JournalSender, Letter, Outcome, Sink, WebhookSender
from twentyday.store import outbox
from twentyday.store.archive import Archive

log = logging.getLogger(__name__)

#: Seconds between rounds in ``serve`` (a new alert waits at most this long for its first attempt).
POLL_SECONDS = 5.0
#: Deliveries attempted per round, so a long queue does not starve the fan-out of new events.
BATCH = 100


def build_sinks(config: Config) -> dict[str, Sink]:
    """The configured sinks (reads the relay password and the webhook secret: a ConfigError if unreadable)."""
    sinks: dict[str, Sink] = {}
    if config.delivery.journal.enabled:
        sinks["journal"] = JournalSender(config.delivery.journal)
    if config.delivery.email is not None:
        sinks["email"] = EmailSender(config.delivery.email)
    if config.delivery.webhook is not None:
        sinks["webhook"] = WebhookSender(config.delivery.webhook)
    return sinks


def forward_address(config: Config, custodian_id: str) -> str:
    """``records+<id>@<domain of the first smtp.addresses entry>`` ('' without one)."""
    if not config.smtp.addresses or not custodian_id:
        return ""
    return f"records+{custodian_id}@{config.smtp.addresses[0].rpartition('@')[2]}"


@dataclass
class Round:
    fanned_out: int = 0
    digests: int = 0
    attempted: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: int = 0

    def add(self, other: Round) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Deliverer:
    def __init__(self, archive: Archive, *, clock: Callable[[], datetime] = _utcnow,
                 sinks: Mapping[str, Sink] | None = None, rng: random.Random | None = None) -> None:
        self._archive = archive
        self._conn = archive.conn
        self.config = archive.config
        self._clock = clock
        self.sinks = dict(sinks) if sinks is not None else build_sinks(self.config)
        self._rng = rng or random.Random()  # jitter only: nothing secret depends on it
        email, webhook = self.config.delivery.email, self.config.delivery.webhook
        timeouts = [email.timeout_seconds if email else 0, webhook.timeout_seconds if webhook else 0]
        self._lease = timedelta(seconds=max(timeouts) + 60)

    def now(self) -> datetime:
        return self._clock().astimezone(UTC)

    # -- one round ------------------------------------------------------------------------

    def run_once(self) -> Round:
        done = self.fan_out()
        now = self.now()
        for delivery in outbox.claim_due(self._conn, now, now + self._lease, BATCH):
            outcome = self._attempt(delivery, now)
            self._settle(delivery, outcome, done)
        return done

    def drain(self, rounds: int = 1000) -> Round:
        """Rounds until nothing is due now (``twentyday alerts deliver``)."""
        total = Round()
        for _ in range(rounds):
            done = self.run_once()
            total.add(done)
            if not done.attempted and not done.fanned_out:
                break
        return total

    def run(self, stop: threading.Event, interval: float = POLL_SECONDS) -> None:
        """Rounds until ``stop`` is set; a round's failure is logged and the next round tries again."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception as error:  # a sink or the index failing must never stop serve
                log.error("alert delivery round failed (%s); retrying in %.0f s", type(error).__name__, interval)
            stop.wait(interval)

    def fan_out(self) -> Round:
        done = Round()
        now = self.now()
        stamp = iso(now)
        with outbox.change(self._conn, self._archive.secrets.signing_key, stamp) as ledger:
            for event in outbox.waiting_events(self._conn):
                alert = outbox.alert_row(self._conn, int(event["alert_id"]))
                if alert is not None:
                    enqueue_alert_event(self._conn, ledger, alert, str(event["event"]), now, self.config,
                                        event_id=int(event["id"]))
                outbox.mark_fanned_out(self._conn, int(event["id"]), stamp)
                done.fanned_out += 1
            done.digests = enqueue_digests(self._conn, ledger, now, self.config)
        return done

    # -- one delivery ---------------------------------------------------------------------

    def _attempt(self, delivery: dict[str, Any], now: datetime) -> Outcome:
        sink = self.sinks.get(str(delivery["sink"]))
        if sink is None:
            return Outcome("retry", "sink_not_configured")
        try:
            letter = self.letter(delivery, now)
            if letter is None:
                return Outcome("retry", "alert_missing")
            return sink.send(letter, now)
        except Exception as error:  # a bug in one sink must not stop the others: retried, and logged by type
            log.error("delivery %s (%s) raised %s", delivery["id"], delivery["sink"], type(error).__name__)
            return Outcome("retry", "internal_" + type(error).__name__.lower())

    def _settle(self, delivery: dict[str, Any], outcome: Outcome, done: Round) -> None:
        done.attempted += 1
        attempts = int(delivery["attempts"]) + 1
        now = self.now()
        stamp = iso(now)
        sink, recipient = str(delivery["sink"]), str(delivery["recipient"])
        with outbox.change(self._conn, self._archive.secrets.signing_key, stamp) as ledger:
            if outcome.state == "delivered":
                state, following = "delivered", None
                done.delivered += 1
            elif outcome.state == "disabled":
                state, following = "disabled", None
                done.disabled += 1
            elif attempts >= self.config.delivery.max_attempts:
                state, following = "failed", None
                done.failed += 1
            else:
                state, following = "pending", now + self.backoff(attempts)
                done.retried += 1
            outbox.settle(self._conn, ledger, int(delivery["id"]), state=state, attempts=attempts,
                          last_error=outcome.code, at=stamp, next_attempt_at=following)
            if state == "disabled":
                done.disabled += outbox.disable_pending(self._conn, ledger, sink, recipient, stamp)
        if state == "disabled":
            log.warning("%s endpoint %s answered %s: disabled; its alerts are kept in the outbox, not sent",
                        sink, recipient, outcome.code)
        elif state == "failed":
            log.error("delivery %s of alert %s by %s failed for good after %d attempts (last: %s)",
                      delivery["id"], delivery["alert_id"], sink, attempts, outcome.code)
        elif state == "pending":
            log.warning("delivery %s by %s: %s; attempt %d of %d at %s", delivery["id"], sink, outcome.code,
                        attempts, self.config.delivery.max_attempts, iso(following or now))

    def backoff(self, attempts: int) -> timedelta:
        """Wait after the ``attempts``-th failure: doubling from retry_initial_seconds, capped, plus jitter."""
        settings = self.config.delivery
        base = min(settings.retry_max_seconds, settings.retry_initial_seconds * 2 ** min(attempts - 1, 30))
        return timedelta(seconds=base * (1 + self._rng.uniform(0, 0.1)))

    # -- what is sent -----------------------------------------------------------------------

    def letter(self, delivery: dict[str, Any], now: datetime) -> Letter | None:
        """The content of one delivery, from metadata only (None when its alert is gone)."""
        recipient, message_id = str(delivery["recipient"]), str(delivery["message_id"])
        if delivery["event"] == "digest":
            zone = self.config.delivery.email.digest_timezone if self.config.delivery.email else "UTC"
            digest = render_digest(recipient, outbox.open_alert_rows(self._conn), local_day(now, zone))
            return Letter(message_id, recipient, digest)
        alert = outbox.alert_row(self._conn, int(delivery["alert_id"]))
        if alert is None:
            return None
        event = str(delivery["event"])
        custodian = self.config.custodian(alert["custodian"]) if alert["custodian"] else None
        zone = custodian.timezone if custodian is not None else "UTC"
        forward = forward_address(self.config, alert["custodian"])
        to_custodian = custodian is not None and recipient in custodian.official
        if alert["kind"] == "deadline_approaching" and event in {"opened", "reminder"} and to_custodian:
            mail = render_reminder(self.reminder(alert, forward))
        else:
            mail = render_notice(Notice(
                event=event, kind=alert["kind"], severity=alert["severity"], alert_id=int(alert["id"]),
                custodian_id=alert["custodian"], custodian_name=custodian.name if custodian else "", zone=zone,
                conversation=alert["conversation"], detail=alert["detail"], count=int(alert["count"]),
                opened_at=parse_iso(alert["opened_at"]), forward_address=forward))
        return Letter(message_id, recipient, mail, self.journal_fields(alert, event, mail),
                      self.document(alert, event, now))

    def reminder(self, alert: dict[str, Any], forward: str) -> Reminder:
        """A reminder's facts: those the alert carries (``facts``, or a JSON ``detail``), else the index's."""
        custodian = self.config.custodian(alert["custodian"])
        if custodian is None:
            raise ValueError(f"alert {alert['id']}: no configured custodian {alert['custodian']!r}")
        facts = _facts(alert)
        platform, covered = facts.get("platform", ""), facts.get("covered_until")
        if not platform or not covered:  # an alert the clock did not open (no facts): the index says
            platform, newest = outbox.conversation_end(self._conn, alert["custodian"], alert["conversation"])
            covered = covered or newest
        covered_until = parse_iso(covered) if covered else None
        if facts.get("export_by"):
            export_by: datetime | None = parse_iso(facts["export_by"])
        elif covered_until is not None:  # the clock's own rule: the deadline of the first message that could follow
            export_by = coverage_export_by(covered_until, custodian.zone, self.config.deadline_rule,
                                           self.config.deadline_days)
        else:
            export_by = None
        return Reminder(custodian_id=custodian.id, custodian_name=custodian.name, zone=custodian.timezone,
                        platform=platform, conversation=alert["conversation"],
                        covered_until=covered_until, export_by=export_by, forward_address=forward,
                        watched_folder=str(self.config.folder_path / custodian.id))

    def journal_fields(self, alert: dict[str, Any], event: str, mail: Mail) -> dict[str, str]:
        """The journal's fields: the alert's id, kind, custodian and detail (twentyday's words), never its
        conversation. The journal is the system log (shipped to a log server, or stderr without one),
        and a chat's conversation is its export's file name, words whoever made the export chose:
        ``twentyday alerts`` shows it by the alert's id."""
        summary = (f"twentyday alert {alert['id']} {event}: {alert['kind']} custodian={alert['custodian'] or '-'}: "
                   f"{one_line(alert['detail'])}")
        return {"MESSAGE": summary, "PRIORITY": str(PRIORITY.get(alert["severity"], 6)),
                "SYSLOG_IDENTIFIER": "twentyday", "ALERT_ID": str(alert["id"]), "ALERT_KIND": alert["kind"],
                "ALERT_EVENT": event, "ALERT_SEVERITY": alert["severity"], "CUSTODIAN": alert["custodian"],
                "ALERT_AUDIENCE":
                "officers" if alert["kind"] in OFFICER_ONLY or event == "escalated" else "custodian"}

    def document(self, alert: dict[str, Any], event: str, now: datetime) -> dict[str, Any]:
        """The webhook's JSON, in the Standard Webhooks shape (type, timestamp, data)."""
        fields = ("id", "kind", "severity", "custodian", "conversation", "opened_at", "updated_at", "resolved_at",
                  "count", "detail")
        return {"type": f"alert.{event}", "timestamp": iso(now),
                "data": {"event": event, "alert": {name: alert.get(name) for name in fields}}}


def _facts(alert: dict[str, Any]) -> dict[str, str]:
    """The facts an alert carries about itself, where the compliance core stores them (a dict or JSON)."""
    raw = alert.get("facts")
    if raw is None and str(alert.get("detail", "")).startswith("{"):
        raw = alert["detail"]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not isinstance(raw, dict):
        return {}
    return {k: str(v) for k, v in raw.items() if isinstance(v, str | int | float) and v != ""}
