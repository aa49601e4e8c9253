"""The sinks: e-mail through a relay, the systemd journal, a signed JSON webhook.

Each ``send`` makes one attempt and answers an :class:`Outcome` — delivered, retry,
disabled — with a stable code (``http_500``, ``timeout``, ``smtp_451``), never an
exception and never a secret: the outbox keeps the code, the log shows it, and neither
the relay password nor the webhook secret nor the webhook's URL ever reaches either.
"""

from __future__ import annotations

import errno
import json
import logging
import smtplib
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from standardwebhooks import Webhook

from twentyday import __version__
from twentyday.config import EmailSink, JournalSink, WebhookSink
from twentyday.errors import ConfigError
from twentyday.logs import journal_datagram  # the one encoder of journald's protocol (logs use it too)
from twentyday.notify.howto import Mail

log = logging.getLogger("twentyday.alert")

#: syslog priorities of the alert severities (sd-journal PRIORITY field).
PRIORITY = {"critical": 2, "warning": 4, "info": 6}


@dataclass(frozen=True)
class Outcome:
    state: Literal["delivered", "retry", "disabled"]
    code: str = ""


@dataclass(frozen=True)
class Letter:
    """One delivery's content, made by the deliverer from the alert's metadata."""

    message_id: str
    recipient: str
    mail: Mail
    fields: Mapping[str, str] = field(default_factory=dict)   # the journal's
    document: Mapping[str, Any] = field(default_factory=dict)  # the webhook's JSON


class Sink(Protocol):
    name: str

    def send(self, letter: Letter, now: datetime) -> Outcome: ...


def read_secret(path: Path, key: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}", key=key) from None
    if not text:
        raise ConfigError(f"{path} is empty", key=key)
    return text


# -- e-mail ------------------------------------------------------------------------------

class EmailSender:
    name = "email"

    def __init__(self, settings: EmailSink) -> None:
        self._settings = settings
        host, _, port = settings.relay.rpartition(":")
        self._host, self._port = host.strip("[]"), int(port)
        self._password = (read_secret(settings.password_file, "alerts.email.password_file")
                          if settings.password_file is not None else "")

    def message(self, letter: Letter, now: datetime) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.from_address
        message["To"] = letter.recipient
        message["Subject"] = letter.mail.subject
        message["Date"] = format_datetime(now)
        domain = self._settings.from_address.rpartition("@")[2]
        # The same on every attempt: a mail sent twice (crash between send and mark) reads as one.
        message["Message-ID"] = f"<{letter.message_id}@{domain}>"
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to the daemon
        message.set_content(letter.mail.body)
        return message

    def send(self, letter: Letter, now: datetime) -> Outcome:
        settings = self._settings
        try:
            with smtplib.SMTP(self._host, self._port, timeout=settings.timeout_seconds) as client:
                client.ehlo()
                if settings.starttls:
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                if settings.user:
                    client.login(settings.user, self._password)
                client.send_message(self.message(letter, now))
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            return Outcome("retry", f"smtp_{codes[0] if codes else 550}")
        except smtplib.SMTPNotSupportedError:
            return Outcome("retry", "smtp_no_starttls")
        except smtplib.SMTPResponseException as error:  # auth refusals included (535)
            return Outcome("retry", f"smtp_{error.smtp_code}")
        except ssl.SSLError:
            return Outcome("retry", "tls")
        except (smtplib.SMTPException, OSError) as error:
            return Outcome("retry", network_code(error))
        return Outcome("delivered")


def network_code(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(error, smtplib.SMTPServerDisconnected):
        return "smtp_disconnected"
    if isinstance(error, socket.gaierror):
        return "dns"
    return "network"


# -- the journal -------------------------------------------------------------------------

class JournalSender:
    """One datagram per event to the journal's socket; a line on stderr (the log) when there is none."""

    name = "journal"

    def __init__(self, settings: JournalSink) -> None:
        self._path = str(settings.socket)

    def send(self, letter: Letter, now: datetime) -> Outcome:
        datagram = journal_datagram(letter.fields)
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as journal:
                journal.sendto(datagram, self._path)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            fields = letter.fields
            level = {2: logging.ERROR, 4: logging.WARNING}.get(int(fields.get("PRIORITY", "6")), logging.INFO)
            # Escaped to one line by the log's formatter (logs.OneLineFormatter).
            log.log(level, "%s", fields.get("MESSAGE", ""))
            return Outcome("delivered", "stderr")  # no journal here: the log line is the delivery
        except OSError as error:
            return Outcome("retry", "journal_" + (errno_name(error) or "error"))
        return Outcome("delivered")


def errno_name(error: OSError) -> str:
    return errno.errorcode.get(error.errno or 0, "").lower()


# -- the webhook -------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is not followed: a POST re-sent elsewhere (or turned into a GET) is not a delivery."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSender:
    """POSTs JSON signed the Standard Webhooks way (https://www.standardwebhooks.com/)."""

    name = "webhook"

    def __init__(self, settings: WebhookSink) -> None:
        self._settings = settings
        secret = read_secret(settings.secret_file, "alerts.webhook.secret_file")
        if not secret.startswith("whsec_"):
            raise ConfigError(f"{settings.secret_file}: expected whsec_ and base64", key="alerts.webhook.secret_file")
        try:
            self._signer = Webhook(secret)
        except (ValueError, TypeError):
            raise ConfigError(f"{settings.secret_file}: expected whsec_ and base64",
                              key="alerts.webhook.secret_file") from None
        self._opener = urllib.request.build_opener(_NoRedirect)

    def request(self, letter: Letter, now: datetime) -> urllib.request.Request:
        body = json.dumps(letter.document, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        stamp = int(now.timestamp())
        # The library reads the time as UTC by replacing its zone: give it a UTC time.
        signature = self._signer.sign(letter.message_id, datetime.fromtimestamp(stamp, UTC), body)
        # The URL's scheme is http or https: config.py refuses any other.
        headers = {"Content-Type": "application/json", "User-Agent": f"twentyday/{__version__}",
                   "webhook-id": letter.message_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}
        return urllib.request.Request(self._settings.url, data=body.encode("utf-8"), method="POST",  # noqa: S310
                                      headers=headers)

    def send(self, letter: Letter, now: datetime) -> Outcome:
        try:
            with self._opener.open(self.request(letter, now), timeout=self._settings.timeout_seconds) as reply:
                status = reply.status
        except urllib.error.HTTPError as error:
            status = error.code
            error.close()
        except urllib.error.URLError as error:
            reason = error.reason
            return Outcome("retry", network_code(reason) if isinstance(reason, BaseException) else "network")
        except (TimeoutError, OSError) as error:
            return Outcome("retry", network_code(error))
        if 200 <= status < 300:
            return Outcome("delivered")
        if status == 410:  # Standard Webhooks: the endpoint is gone; stop sending to it
            return Outcome("disabled", "http_410")
        return Outcome("retry", f"http_{status}")
