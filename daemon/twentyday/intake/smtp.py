"""The automatic forwarding address: an SMTP server (aiosmtpd) that takes mail into the spool.

Shape, as aiosmtpd intends: :class:`Intake` is the handler (which recipients
exist, where DATA goes), :class:`IntakeServer` is the protocol with this
archive's limits, :func:`start_server` binds it on the daemon's own loop.

- Not a relay: RCPT is accepted only for ``smtp.addresses`` and their
  ``local+<custodian-id>@domain`` forms; anything else gets a 550 saying why.
- ``250`` only after the message bytes (exactly as received, no header added)
  and the envelope are durable in the spool; any failure answers ``451`` so
  the sender retries.
- DATA is read in blocks (:mod:`smtp_data`), not aiosmtpd's line at a time,
  with aiosmtpd's rules: it ends only at ``<CRLF>.<CRLF>``, so a bare
  ``\\n.\\n`` cannot smuggle a second message.
- A message past ``smtp.spool_to_disk_bytes`` is sealed into the spool as it arrives
  (:meth:`Spool.receive_file`), so memory per connection stays about a chunk; smaller
  ones stay in memory and share the group commit. Either way 250 only once durable.
- Limits: message size (552, without holding more than the limit in memory),
  command and data line length, idle timeout (restarted while a message's
  bytes arrive), total and per-client connections (421 above them),
  messages per client per minute (451), recipients per message.
- Who may deliver: a client in ``smtp.relay_networks`` (the agency's MTA; loopback by
  default) without AUTH, anyone else only after AUTH (530 at MAIL, or 550 when no auth file
  is configured). An AUTH user files only for the custodians whose ``smtp_users`` name it
  (550 5.7.1 for any other recipient), and its mail is never routed by content. Each
  spooled item names who delivered it (``delivered_by``: ``auth:<user>`` or ``relay:<address>``).
- STARTTLS with the configured certificate; AUTH (:mod:`smtp_auth`; offered when an auth file
  is configured), refused over plaintext unless explicitly allowed. Passwords
  are checked (scrypt) off the event loop; a connection is closed after
  ``AUTH_FAILURES_PER_CONNECTION`` failures, and a client past
  ``AUTH_FAILURES_PER_MINUTE`` is refused AUTH until its allowance refills.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session, syntax

from twentyday.config import Config, SmtpConfig, normalise_identity
from twentyday.errors import ConfigError, IntakeError
from twentyday.intake import utc_now
from twentyday.intake.smtp_auth import Authenticator, load_auth_file
from twentyday.intake.smtp_data import DataRefusal, InFlight, read_data
from twentyday.spool import IncomingFile, Spool, SpoolMeta, SyncTicket

log = logging.getLogger(__name__)
MAX_RECIPIENTS = 100
AUTH_FAILURES_PER_CONNECTION = 3
AUTH_FAILURES_PER_MINUTE = 10
#: MAIL's line limit with the SIZE and SMTPUTF8 parameters we offer (aiosmtpd's 512 + 26 + 10).
MAIL_LINE_LIMIT = 548
#: RFC 3463 4.3.1, "mail system full": a transient refusal, so the sender keeps the message and retries.
_BUSY = "451 4.3.1 Insufficient system resources; try again later"
#: RFC 5321 4.2.3 / RFC 3463 4.3.2, "system not accepting network messages": serve is stopping.
SHUTTING_DOWN = b"421 4.3.2 Service shutting down; try again later\r\n"
#: A message still arriving when serve's drain time is over: not taken, so the sender retries it.
CUT_OFF = b"451 4.3.2 Service shutting down; message not accepted, try again later\r\n"


@dataclass(frozen=True)
class Route:
    """What an accepted recipient address means: a custodian id, or '' for the shared address."""

    custodian: str


class Intake:
    """The aiosmtpd handler: decides recipients, makes DATA durable, then answers."""

    def __init__(self, config: Config, spool: Spool, on_item: Callable[[], None], *,
                 clock: Callable[[], datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        """``clock`` gives each message's receive time (it decides on time or late);
        ``monotonic`` refills the per-client allowances."""
        self.config = config
        self.spool = spool
        self.on_item = on_item
        self._clock = clock
        self._addresses = {a.lower() for a in config.smtp.addresses}
        self._rate = RateLimit(config.smtp.max_messages_per_minute, monotonic)
        #: Failed AUTH attempts per client address, shared by all its connections.
        self.login_failures = RateLimit(AUTH_FAILURES_PER_MINUTE, monotonic)
        #: Password checks (scrypt) run here: not on the event loop, and not in its default
        #: executor, where guessing clients would hold up the spool's fsyncs.
        self.password_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="twentyday-auth")
        self._durable = GroupSync(spool)
        #: Whether AUTH is offered at all (an auth file is configured): decides 530 or 550.
        self.auth_offered = config.smtp.auth_file is not None
        #: The password check new connections get (None: AUTH not offered); one, shared, so a reload
        #: that changes the users applies to every connection that has not authenticated yet.
        self.authenticator: Authenticator | None = None
        #: Every open connection, so serve can close idle ones and wait for messages arriving (SIGTERM).
        self.sessions: set[IntakeServer] = set()
        #: serve is stopping: a session that finishes its message is closed after its reply.
        self.closing = False

    def reload(self, config: Config, users: dict[str, str] | None) -> None:
        """Take a reloaded config (custodians, addresses, relay networks) and the SMTP users read
        from its auth file (None: no auth file). Open sessions keep their connection; their next
        command is judged by the new config."""
        self.config = config
        self._addresses = {a.lower() for a in config.smtp.addresses}
        self.auth_offered = users is not None
        if users is None:
            self.authenticator = None
        elif self.authenticator is None:
            self.authenticator = Authenticator(users)
        else:
            self.authenticator.users = users

    def from_relay(self, session: Session) -> bool:
        """The client is in ``smtp.relay_networks``: its mail is taken without AUTH."""
        return in_relay_networks(self.config.smtp, _peer(session))

    def route(self, address: str) -> Route | None:
        local, at, domain = address.lower().rpartition("@")
        if not at:
            return None
        if f"{local}@{domain}" in self._addresses:
            return Route("")
        base, plus, tag = local.partition("+")
        if plus and f"{base}@{domain}" in self._addresses and self.config.custodian(tag) is not None:
            return Route(tag)
        return None

    def refusal(self, session: Session) -> str | None:
        """Why this session may not deliver at all (neither authenticated nor a relay), or None."""
        if session.authenticated or self.from_relay(session):
            return None
        if self.auth_offered:
            return "530 5.7.0 Authentication required"
        return "550 5.7.1 Mail is not taken from your network"

    def custodian_for_user(self, user: str, route: Route, mail_from: str) -> str | None:
        """The custodian an AUTH user's recipient files for, or None when the user may not.

        A plus-address must name a custodian bound to the user; the shared address files
        for the user's one custodian, or, when it has several, the one whose own identities
        hold the envelope sender. Never by the message's content: its addresses are the
        user's to write.
        """
        bound = self.config.custodians_of_user(user)
        if route.custodian:
            return route.custodian if route.custodian in bound else None
        if len(bound) == 1:
            return bound[0]
        sender = normalise_identity(mail_from)
        if not sender:
            return None
        matching = [c.id for c in self.config.custodians if c.id in bound and sender in c.own_identities]
        return matching[0] if len(matching) == 1 else None

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        refused = self.refusal(session)
        if refused is not None:
            return refused
        client = _peer(session)
        if not self._rate.allow(client):
            return "451 4.7.1 Too many messages from your address; try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        refused = self.refusal(session)
        if refused is not None:
            return refused
        route = self.route(address)
        if route is None:
            # The address is not echoed: it is the client's, in any bytes (not valid UTF-8
            # would fail to encode, and the client would be told to retry instead).
            return "550 5.1.1 Not an archive address (this server relays nothing)"
        if session.authenticated and self.custodian_for_user(_user(session), route, envelope.mail_from or "") is None:
            return "550 5.7.1 Your login may not file records for this recipient"
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    def _custodians(self, session: Session, envelope: Envelope) -> list[str | None]:
        """One spool item per custodian the envelope names; None: route by the message itself."""
        if session.authenticated:  # every recipient was checked at RCPT
            user, sender = _user(session), envelope.mail_from or ""
            return [*sorted({c for a in envelope.rcpt_tos
                             if (r := self.route(a)) and (c := self.custodian_for_user(user, r, sender))})]
        named = sorted({r.custodian for a in envelope.rcpt_tos if (r := self.route(a)) and r.custodian})
        if named:
            return list(named)
        sender = normalise_identity(envelope.mail_from or "")
        for custodian in self.config.custodians:
            if sender and sender in custodian.own_identities:
                return [custodian.id]
        return [None]

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        received_at = self._clock()
        peer = _peer(session)
        refused = self.refusal(session)
        if refused is not None:  # checked at MAIL and RCPT already; DATA is where bytes become items
            return refused
        metas = self._metas(session, envelope, received_at)

        async def written() -> tuple[list[str], SyncTicket]:
            # Written here, one item per custodian, all or none (page cache: microseconds);
            # only the fsync leaves the loop.
            return self.spool.write_items(metas, data)

        return await self._durable_reply(peer, written())

    def receive(self, session: Session, envelope: Envelope) -> IncomingFile:
        """A message past ``smtp.spool_to_disk_bytes``: its items, sealed into the spool as its
        bytes arrive (the metadata drafted now; :meth:`handle_spooled_DATA` gives the final one).
        Raises IntakeError if the spool cannot start them."""
        return self.spool.receive_file(self._metas(session, envelope, self._clock()))

    async def handle_spooled_DATA(self, session: Session, envelope: Envelope, incoming: IncomingFile) -> str:
        """The end of a message written as it arrived: frame its items once durable, then 250."""
        received_at = self._clock()
        peer = _peer(session)
        refused = self.refusal(session)
        if refused is not None:
            await self.discard(incoming)
            return refused
        metas = self._metas(session, envelope, received_at)
        # The files' fsyncs leave the loop; the frames share the group commit.
        return await self._durable_reply(
            peer, asyncio.get_running_loop().run_in_executor(None, incoming.commit, metas))

    async def _durable_reply(self, peer: str, written: Awaitable[tuple[list[str], SyncTicket]]) -> str:
        """250 once what ``written`` wrote is on disk (group commit); 451 if it cannot be."""
        try:
            ids, ticket = await written
            await self._durable.wait(ticket)
        except IntakeError as error:
            log.error("451 for a message from %s: %s", peer, error)
            return "451 4.3.0 Archive temporarily unavailable; try again later"
        self.on_item()
        return f"250 2.0.0 OK: archived as {' '.join(ids)}"

    def discard(self, incoming: IncomingFile) -> asyncio.Future[None]:
        """Destroy a message written as it arrived that will not be archived (refused, or its
        connection lost: no 250, so its sender retries), off the event loop; awaiting is optional."""
        future = asyncio.get_running_loop().run_in_executor(None, incoming.discard)
        future.add_done_callback(_log_discard_failure)
        return future

    def _metas(self, session: Session, envelope: Envelope, received_at: datetime) -> list[SpoolMeta]:
        """The spool metadata of a message: one item per custodian, with the SMTP envelope."""
        peer = _peer(session)
        details = {
            "mail_from": envelope.mail_from or "",
            "rcpt_tos": ", ".join(envelope.rcpt_tos),
            "peer": peer,
            "tls": "yes" if session.ssl is not None else "no",
            "auth": str(session.auth_data) if session.authenticated and session.auth_data else "",
            "helo": session.host_name or "",
            "received_at": received_at.isoformat(),
            # Who handed it over: an AUTH user, or the relay it came through (its address).
            "delivered_by": f"auth:{_user(session)}" if session.authenticated else f"relay:{peer}",
        }
        name = f"smtp-{received_at:%Y%m%dT%H%M%S%f}.eml"
        return [SpoolMeta(name, "smtp", received_at, custodian, envelope=details)
                for custodian in self._custodians(session, envelope)]

    async def handle_exception(self, error: Exception) -> str:
        log.error("SMTP session failed: %s: %s", type(error).__name__, error)
        return "451 4.3.0 Internal error; try again later"


def _log_discard_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("spool: a refused message's files could not be destroyed: %s", future.exception())


def _peer(session: Session) -> str:
    return str(session.peer[0]) if isinstance(session.peer, tuple) else str(session.peer)


def _user(session: Session) -> str:
    return str(session.auth_data) if session.auth_data else ""


def in_relay_networks(smtp: SmtpConfig, client: str) -> bool:
    """Whether ``client`` (an address as the socket gives it) is in one of the relay networks."""
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:  # a Unix socket path, or nothing: not a network client we know
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in smtp.relay_networks)


class GroupSync:
    """Waits on the event loop until spooled writes are on disk, one fsync for all waiting.

    Sessions write their items inline and wait here; one fsync at a time runs in a
    thread and wakes every session its offset covers. Under load a single thread hop
    and fsync serve many messages, instead of one thread hop per message.
    """

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._waiting: list[tuple[SyncTicket, asyncio.Future[None]]] = []
        self._syncing = False

    async def wait(self, ticket: SyncTicket) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((ticket, future))
        if not self._syncing:
            self._syncing = True
            asyncio.get_running_loop().create_task(self._sync_all())
        await future

    async def _sync_all(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                waiting, self._waiting = self._waiting, []
                try:
                    # Tickets of one segment: the last covers the others; a closed segment was synced.
                    for ticket in _last_per_segment(t for t, _ in waiting):
                        await loop.run_in_executor(None, self._spool.sync, ticket)
                except Exception as error:  # IntakeError, or a bug: either way no session may hang
                    for _, future in waiting:
                        if not future.done():
                            future.set_exception(error)
                else:
                    for _, future in waiting:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._syncing = False


def _last_per_segment(tickets: Iterable[SyncTicket]) -> list[SyncTicket]:
    last: dict[int, SyncTicket] = {}
    for ticket in tickets:
        seen = last.get(id(ticket.writer))
        if seen is None or ticket.offset > seen.offset:
            last[id(ticket.writer)] = ticket
    return list(last.values())


class RateLimit:
    """A token bucket per client address: ``per_minute`` messages, refilled continuously."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str) -> bool:
        """Take one token for ``client``; False (and nothing taken) when it has none left."""
        now = self._clock()
        tokens = self._tokens(client, now)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - 1.0, now)
        if len(self._buckets) > 100_000:  # forget idle clients; a full bucket is the default anyway
            self._buckets = {c: b for c, b in self._buckets.items() if self._tokens(c, now) < self.per_minute}
        return True

    def exhausted(self, client: str) -> bool:
        return self._tokens(client, self._clock()) < 1.0

    def _tokens(self, client: str, now: float) -> float:
        tokens, since = self._buckets.get(client, (float(self.per_minute), now))
        return min(float(self.per_minute), tokens + (now - since) * self.per_minute / 60.0)


class ConnectionLimits:
    """Total and per-client connection caps, so idle clients cannot exhaust descriptors."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self.open: Counter[str] = Counter()

    def admit(self, client: str) -> bool:
        if sum(self.open.values()) >= self.total or self.open[client] >= self.per_client:
            return False
        self.open[client] += 1
        return True

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


class IntakeServer(SMTP):
    """aiosmtpd's protocol with this archive's limits."""

    # Long enough for real mail (HTML bodies with long lines), short enough that a
    # megabyte "command" is refused with 500 after being drained, not buffered.
    line_length_limit = 64 * 1024

    def __init__(self, handler: Intake, limits: ConnectionLimits, in_flight: InFlight, *,
                 spill_at: int | None = None, **kwargs: Any) -> None:
        """``spill_at``: a message past this many bytes is written into the spool as it arrives
        (``smtp.spool_to_disk_bytes``; None: every message is held in memory)."""
        # aiosmtpd keeps command line limits in a dict shared by every connection and raises
        # MAIL's on every EHLO: 2,000 EHLOs would let a 72 KB MAIL command through.
        self.command_size_limits = _FixedLimits(lambda: SMTP.command_size_limit, MAIL=MAIL_LINE_LIMIT)
        super().__init__(handler, **kwargs)
        self._intake = handler
        self._limits = limits
        self._in_flight = in_flight
        self._spill_at = spill_at
        self._client: str | None = None
        self._auth_failures = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._original_transport is not None:
            # The same connection, now over TLS (RFC 3207): admitted already.
            super().connection_made(transport)
            return
        peer = transport.get_extra_info("peername")
        client = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if not self._limits.admit(client):
            transport.write(b"421 4.7.0 Too many connections; try again later\r\n")  # type: ignore[attr-defined]
            transport.close()
            return
        self._client = client
        self._intake.sessions.add(self)
        super().connection_made(transport)

    _receiving_data = False
    #: From the DATA command until its reply is sent: a message serve lets finish when it stops.
    in_message = False

    def shut(self, reply: bytes) -> None:
        """Send ``reply`` (421 to an idle session, 451 to a message cut off) and close the connection."""
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)  # type: ignore[attr-defined]
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        # aiosmtpd restarts the idle timeout per command line; a message being sent is not
        # idle while its bytes arrive, however long it takes as a whole.
        if self._receiving_data:
            self._reset_timeout()
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        self._intake.sessions.discard(self)
        if self._client is not None:
            self._limits.release(self._client)
            self._client = None
        if self.transport is not None:
            super().connection_lost(error)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, the section read in blocks by :func:`smtp_data.read_data`.

        The checks before the 354, the replies and the handler call are aiosmtpd 1.4's;
        only the reading loop differs (aiosmtpd's awaits once per line). Our handler has
        ``handle_DATA``, so aiosmtpd's fallback to the older ``process_message`` is not needed.
        """
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        if self._in_flight.full():
            await self.push(_BUSY)
            return
        # A large message is written into the spool as it arrives: the file it was given.
        spilled: list[IncomingFile] = []
        session, envelope = self.session, self.envelope
        assert session is not None

        def spill() -> IncomingFile:
            spilled.append(self._intake.receive(session, envelope))
            return spilled[-1]

        # The message's bytes count against the budget until it is in the spool (or dropped).
        self.in_message = True
        try:
            await self._data(session, envelope, spilled, spill)
        finally:
            self.in_message = False
        if self._intake.closing:  # serve is stopping: this message was the last this session sends
            self.shut(SHUTTING_DOWN)

    async def _data(self, session: Session, envelope: Envelope, spilled: list[IncomingFile],
                    spill: Callable[[], IncomingFile]) -> None:
        """The DATA section read, made durable and answered (aiosmtpd's, read in blocks)."""
        with self._in_flight.reserve() as reservation:
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            self._receiving_data = True
            try:
                section = await read_data(self._reader, self.data_size_limit, self.line_length_limit, reservation,
                                          spill_at=self._spill_at, open_spill=spill)
            except (asyncio.CancelledError, asyncio.IncompleteReadError):
                log.info("connection lost during DATA")
                for incoming in spilled:  # no 250: the sender retries; what it sent so far is destroyed
                    self._intake.discard(incoming)
                self._writer.close()
                raise asyncio.CancelledError from None
            finally:
                self._receiving_data = False
            if section.refusal is not None:
                for incoming in spilled:
                    await self._intake.discard(incoming)
            if section.refusal is DataRefusal.TOO_LONG:
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            elif section.refusal is DataRefusal.TOO_MUCH:
                await self.push("552 Error: Too much mail data")
            elif section.refusal is DataRefusal.BUSY:
                log.warning("message refused: the bytes in flight would pass smtp.max_bytes_in_flight")
                await self.push(_BUSY)
            elif section.refusal is DataRefusal.UNAVAILABLE:
                await self.push("451 4.3.0 Archive temporarily unavailable; try again later")
            if section.refusal is not None:
                self.envelope = self._create_envelope()  # aiosmtpd's _set_post_data_state(), which is untyped
                return
            status: Any
            if section.spilled:
                status = await self._intake.handle_spooled_DATA(session, envelope, spilled[0])
            else:
                envelope.content = envelope.original_content = section.content
                del section  # the envelope holds the only copy; it is dropped with the envelope below
                status = await self._call_handler_hook("DATA")
            self.envelope = self._create_envelope()
        await self.push("250 OK" if status is MISSING else status)

    @syntax("AUTH <mechanism>")
    async def smtp_AUTH(self, arg: str) -> None:
        """aiosmtpd's AUTH, with a limit on failures per connection and per client address."""
        client = self._client or ""
        if self._intake.login_failures.exhausted(client):
            await self.push("454 4.7.0 Too many failed authentications; try again later")
            return
        await super().smtp_AUTH(arg)
        assert self.session is not None
        if self._checked_credentials and not self.session.authenticated:
            self._auth_failures += 1
            self._intake.login_failures.allow(client)  # takes one of the client's allowance
            if self._auth_failures >= AUTH_FAILURES_PER_CONNECTION:
                await self.push("421 4.7.0 Too many failed authentications; closing the connection")
                assert self.transport is not None
                self.transport.close()
        self._checked_credentials = False

    # aiosmtpd checks credentials in _authenticate, synchronously, on the event loop; scrypt
    # takes tens of milliseconds, so a few guessing clients would stall every session. Its
    # PLAIN and LOGIN parse the exchange as before; the check runs in a thread.
    _checked_credentials = False
    _credentials: tuple[str, Any] | None = None

    def _authenticate(self, mechanism: str, auth_data: Any) -> AuthResult:
        self._credentials = (mechanism, auth_data)
        return AuthResult(success=False, handled=False)

    async def _checked(self, result: AuthResult) -> AuthResult:
        credentials, self._credentials = self._credentials, None
        if credentials is None or self._authenticator is None:
            return result  # the exchange itself failed, and aiosmtpd has answered
        self._checked_credentials = True
        mechanism, data = credentials
        session, envelope, check = self.session, self.envelope, self._authenticator
        assert session is not None and envelope is not None
        return await asyncio.get_running_loop().run_in_executor(
            self._intake.password_checks, lambda: check(self, session, envelope, mechanism, data))

    async def auth_PLAIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_PLAIN(_, args))

    async def auth_LOGIN(self, _: Any, args: list[str]) -> AuthResult:
        return await self._checked(await super().auth_LOGIN(_, args))


class _FixedLimits(dict[str, int]):
    """Command line limits that aiosmtpd's EHLO cannot raise (its ``+=`` is ignored)."""

    def __init__(self, default: Callable[[], int], **limits: int) -> None:
        super().__init__(limits)
        self._default = default

    def __missing__(self, key: str) -> int:
        return self._default()

    def __setitem__(self, key: str, value: int) -> None:
        pass

    def clear(self) -> None:  # aiosmtpd clears the shared dict for each new connection
        pass


# -- the server ---------------------------------------------------------------------------


def tls_context(config: Config) -> ssl.SSLContext | None:
    smtp = config.smtp
    if not smtp.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(smtp.tls_cert, smtp.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise ConfigError(f"cannot load the TLS certificate or key: {error}", path=str(config.path),
                          key="smtp.tls_cert") from None
    return context


async def start_server(config: Config, spool: Spool, on_item: Callable[[], None], *,
                       clock: Callable[[], datetime] = utc_now) -> asyncio.Server:
    """Listen on ``smtp.listen``; ``clock`` gives each message's receive time."""
    return (await open_smtp(config, spool, on_item, clock=clock)).server


class SmtpIntake:
    """The forwarding address as ``serve`` runs it: the listening server, its handler and sessions."""

    def __init__(self, server: asyncio.Server, handler: Intake) -> None:
        self.server = server
        self.handler = handler

    def reload(self, config: Config) -> None:
        """Custodians, addresses and SMTP users from a reloaded config (the daemon kept its restart-only
        settings). Raises ConfigError, changing nothing, if the new auth file cannot be read."""
        users = load_auth_file(config.smtp.auth_file) if config.smtp.auth_file else None
        self.handler.reload(config, users)
        _warn_unbound(config, users)

    async def close(self, drain_seconds: float) -> None:
        """Stop listening; close idle sessions with 421; let each message being received finish (250
        once durable, then 421) for up to ``drain_seconds``; cut off any still arriving then with 451."""
        self.handler.closing = True
        self.server.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + drain_seconds
        for session in list(self.handler.sessions):
            if not session.in_message:
                session.shut(SHUTTING_DOWN)
        while any(s.in_message for s in self.handler.sessions) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        cut = [s for s in self.handler.sessions if s.in_message]
        if cut:
            log.warning("stopping: %d message(s) still arriving after %.0f s answered 451 (their senders retry)",
                        len(cut), drain_seconds)
        for session in list(self.handler.sessions):
            session.shut(CUT_OFF if session.in_message else SHUTTING_DOWN)
        for _ in range(40):  # each closed session's handler is cancelled: a cut-off message's files destroyed
            if not self.handler.sessions:
                break
            await asyncio.sleep(0.05)
        self.handler.password_checks.shutdown(wait=False)


async def open_smtp(config: Config, spool: Spool, on_item: Callable[[], None], *,
                    clock: Callable[[], datetime] = utc_now) -> SmtpIntake:
    """Listen on ``smtp.listen``; ``clock`` gives each message's receive time. Raises IntakeError,
    naming the address and the config, when it cannot listen there (in use, not permitted)."""
    smtp = config.smtp
    host, _, port = smtp.listen.rpartition(":")
    handler = Intake(config, spool, on_item, clock=clock)
    limits = ConnectionLimits(smtp.max_connections, smtp.max_connections_per_client)
    in_flight = InFlight(smtp.max_bytes_in_flight)  # one budget for every connection
    context = tls_context(config)
    users = load_auth_file(smtp.auth_file) if smtp.auth_file else None
    handler.reload(config, users)
    loop = asyncio.get_running_loop()

    def protocol() -> IntakeServer:
        return IntakeServer(
            handler, limits, in_flight,
            spill_at=smtp.spool_to_disk_bytes,
            data_size_limit=smtp.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=smtp.hostname or None,
            ident="twentyday",
            tls_context=context,
            require_starttls=smtp.require_tls and context is not None,
            timeout=smtp.timeout_seconds,
            # Required outside the relay networks only: Intake.refusal answers MAIL and RCPT.
            auth_required=False,
            auth_require_tls=not smtp.allow_plaintext_auth,
            authenticator=handler.authenticator,  # read per connection: a reload may add or remove AUTH
            loop=loop,
        )

    try:
        server = await loop.create_server(protocol, host.strip("[]"), int(port))
    except OSError as error:
        raise IntakeError(f"cannot listen on {smtp.listen} (smtp.listen in {config.path}): "
                          f"{os.strerror(error.errno).lower() if error.errno else error}") from None
    log.info("SMTP listening on %s (TLS %s, AUTH %s, without AUTH from %s)", smtp.listen,
             "on" if context else "off", "offered" if users is not None else "off",
             ", ".join(str(n) for n in smtp.relay_networks) or "nowhere")
    _warn_unbound(config, users)
    return SmtpIntake(server, handler)


def _warn_unbound(config: Config, users: dict[str, str] | None) -> None:
    if users is not None:
        unbound = sorted(u for u in users if not config.custodians_of_user(u))
        if unbound:
            log.warning("SMTP users bound to no custodian (every recipient refused): %s", ", ".join(unbound))
