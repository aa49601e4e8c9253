"""The TOML configuration: one settings table feeds the loader, the docs and a test.

Every key lives in :data:`SETTINGS` (name, type, default, help). The loader
rejects unknown keys by name, checks each value, and returns frozen
dataclasses; ``config/twentyday.example.toml`` documents the same keys and
``tests/test_config.py`` fails when the two disagree.

Relative paths are read relative to the directory of the config file, so a
self-contained archive made by ``twentyday init DIR`` can be moved as a whole.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import tomllib
import urllib.parse
from dataclasses import dataclass, replace
from datetime import date
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from twentyday.errors import ConfigError
from twentyday.permissions import require_secret, require_trusted
from twentyday.retention import CUTOFFS, Rule, shorter_than

REQUIRED = object()


@dataclass(frozen=True)
class Setting:
    """One configuration key. ``name`` is dotted (``smtp.listen``); ``custodians.*`` keys are per entry."""

    name: str
    kind: type
    default: Any
    help: str


#: What every export says about further dissemination when ``export.dissemination_notice`` is not set.
DEFAULT_DISSEMINATION_NOTICE = (
    "These records are disclosed to the named recipient for the stated purpose only. They may contain "
    "information about individuals protected by the Privacy Act of 1974 (5 U.S.C. 552a). Under the "
    "third-agency rule, the recipient may not disseminate them further, in whole or in part, to any other "
    "person or agency without the prior written consent of the originating agency. This disclosure is "
    "recorded in the originating agency's accounting of disclosures (5 U.S.C. 552a(c))."
)

SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", str, "/var/lib/twentyday", "Archive directory: index, sealed blobs, daemon secrets."),
    Setting("deadline_days", int, 20, "Days allowed by 44 U.S.C. 2911(a)(2) to forward a complete copy."),
    Setting("deadline_rule", str, "calendar",
            "'calendar': the creation day is not counted and the period ends at the end of the "
            "last day in the custodian's zone; 'elapsed': exactly deadline_days x 24 h."),
    Setting("log_level", str, "info", "debug, info, warning or error. Logs never contain message content."),
    Setting("agency", str, "", "The agency's name, as reports to file give it (report --unauthorized-disposition); "
            "'' = a blank there to fill in."),
    Setting("smtp.enabled", bool, True, "Run the forwarding address in 'serve'."),
    Setting("smtp.listen", str, "127.0.0.1:2525", "host:port the forwarding address listens on."),
    Setting("smtp.hostname", str, "", "Name in the greeting ('' = the host's name)."),
    Setting("smtp.addresses", list, [], "Accepted recipient addresses; records+<custodian-id>@... routes by id."),
    Setting("smtp.max_message_bytes", int, 50 * 1024 * 1024, "Largest message accepted (552 above it)."),
    Setting("smtp.tls_cert", str, "", "PEM certificate (chain) for STARTTLS ('' = no STARTTLS)."),
    Setting("smtp.tls_key", str, "", "PEM private key of tls_cert."),
    Setting("smtp.require_tls", bool, False, "Refuse mail before STARTTLS (needs tls_cert)."),
    Setting("smtp.auth_file", str, "", "user:scrypt$salt$hash lines; when set, AUTH is offered (and required "
            "outside relay_networks). A user files only for the custodians whose smtp_users name it."),
    Setting("smtp.allow_plaintext_auth", bool, False, "Allow AUTH without TLS (never on an open network)."),
    Setting("smtp.timeout_seconds", int, 30, "Idle and command timeout per connection."),
    Setting("smtp.max_connections", int, 1000, "Connections at once, kept below the file-descriptor limit."),
    Setting("smtp.max_connections_per_client", int, 50, "Connections at once from one address."),
    Setting("smtp.max_bytes_in_flight", int, 200 * 1024 * 1024,
            "Message bytes held in memory by all connections together (451 4.3.1 past it)."),
    Setting("smtp.spool_to_disk_bytes", int, 1024 * 1024,
            "A message past this size is sealed into the spool as it arrives, not held in memory "
            "(at least 65536; at least max_message_bytes: never)."),
    Setting("smtp.max_messages_per_minute", int, 600, "Messages one client address may send per minute (451 above)."),
    Setting("smtp.relay_networks", list, ["127.0.0.0/8", "::1/128"],
            "Client networks (CIDR) whose mail is taken without AUTH (530/550 at MAIL elsewhere)."),
    Setting("smtp.dkim", str, "verify",
            "'verify': check the DKIM signatures and ARC chain of each mail (keys from DNS); 'off': do not."),
    Setting("smtp.trusted_authserv_id", str, "",
            "authserv-id of the MTA in front (in relay_networks) whose topmost Authentication-Results "
            "header is taken instead ('' = none)."),
    Setting("folder.path", str, "", "Watched export folder, one subfolder per custodian id ('' = <data_dir>/inbox)."),
    Setting("keys.recipients", list, REQUIRED,
            "Officer public key files the daemon seals every capture to (officer, escrow, ...). "
            "Public keys only: serve refuses a private key here."),
    Setting("keys.ledger_key", str, "",
            "The ledger's verification key, pinned outside the archive: 'ed25519:' and 64 hex digits, "
            "written by init and create (or 'twentyday keys pin-ledger'). verify refuses to run without it."),
    Setting("keys.former_ledger_keys", list, [],
            "Ledger keys in force before 'twentyday keys rotate-ledger' replaced them, oldest first, as "
            "keys.ledger_key writes them: verify checks the checkpoints and published heads they signed."),
    Setting("alerts.remind_after_days", int, 14, "Remind a custodian when a conversation's coverage is this old."),
    Setting("alerts.silent_after_days", int, 30, "Alert when a custodian has sent nothing for this long."),
    Setting("alerts.max_attempts", int, 20, "Attempts per delivery before it is marked failed (ledgered)."),
    Setting("alerts.retry_initial_seconds", int, 30, "Wait before a failed delivery's first retry; doubles each time."),
    Setting("alerts.retry_max_seconds", int, 3600, "Longest wait between retries (each wait has random jitter)."),
    Setting("alerts.email.relay", str, "", "host:port of the mail relay alerts are sent through ('' = no e-mail)."),
    Setting("alerts.email.from_address", str, "", "From address of alert mail (needed with relay)."),
    Setting("alerts.email.starttls", bool, True, "Require STARTTLS with the relay (certificate checked)."),
    Setting("alerts.email.user", str, "", "SMTP AUTH user at the relay ('' = no AUTH)."),
    Setting("alerts.email.password_file", str, "", "File holding the relay password (0600, like a secret)."),
    Setting("alerts.email.officers", list, [], "Records officers' addresses: escalations, officer-only kinds, digest."),
    Setting("alerts.email.digest_hour", int, 7, "Hour (0-23) of the officers' daily digest of open alerts; -1 = none."),
    Setting("alerts.email.digest_timezone", str, "UTC", "IANA zone digest_hour is read in."),
    Setting("alerts.email.timeout_seconds", int, 30, "Timeout of one conversation with the relay."),
    Setting("alerts.journal.enabled", bool, True, "Write each alert event to the systemd journal (else stderr)."),
    Setting("alerts.journal.socket", str, "/run/systemd/journal/socket", "The journal's native socket."),
    Setting("alerts.webhook.url", str, "", "http(s) URL alert events are POSTed to as signed JSON ('' = none)."),
    Setting("alerts.webhook.secret_file", str, "", "File holding the whsec_... signing secret (0600)."),
    Setting("alerts.webhook.timeout_seconds", int, 10, "Timeout of one POST."),
    Setting("alerts.escalate_after_days", int, 7,
            "Escalate an alert to the records officers once open this many days (or once its export-by "
            "date has passed)."),
    Setting("alerts.evaluate_every_minutes", int, 15,
            "serve re-evaluates every alert on this timer (and what each batch touched after it)."),
    Setting("alerts.verify_every_hours", float, 24.0,
            "serve runs verify on this timer (and once a minute after start); problems raise one "
            "integrity_failure alert. Hours, fractions allowed; 0 = never."),
    Setting("export.dissemination_notice", str, DEFAULT_DISSEMINATION_NOTICE,
            "Written into every export (NOTICE.txt, the HTML header): the limits on further dissemination."),
    Setting("custodians.id", str, REQUIRED, "Short id: lower-case letters, digits, '.', '_' or '-'."),
    Setting("custodians.name", str, REQUIRED, "Full name (36 CFR 1236.22(a)(3))."),
    Setting("custodians.timezone", str, "UTC", "IANA zone for local-time exports and the calendar deadline."),
    Setting("custodians.official", list, [],
            "Official e-mail addresses: a copy to one of them makes a record 'copied'."),
    Setting("custodians.personal", list, [], "Registered personal accounts: e-mail addresses, phone numbers, handles."),
    Setting("custodians.chat_names", list, [], "Display names the custodian appears under in chat exports."),
    Setting("custodians.smtp_users", list, [], "SMTP AUTH users (smtp.auth_file) that may file for this custodian."),
    Setting("custodians.locale", str, "", "e.g. en_US; decides day/month order when an export cannot."),
    Setting("custodians.schedule", str, "grs-6.1-011", "Retention schedule id (see [[schedules]])."),
    Setting("custodians.office", str, "",
            "The office that maintains the custodian's records, as reports to file give it (36 CFR 1230.14(b)); "
            "'' = a blank there to fill in."),
    Setting("schedules.id", str, REQUIRED, "Schedule id referred to by custodians.schedule."),
    Setting("schedules.title", str, "", "What the schedule covers."),
    Setting("schedules.authority", str, "", "Disposition authority, e.g. 'GRS 6.1, item 010'."),
    Setting("schedules.permanent", bool, False, "Permanent records are transferred to NARA, never destroyed."),
    Setting("schedules.retain_years", int, 0, "Temporary records: years to keep after the cutoff."),
    Setting("schedules.retain_days", int, 0, "Temporary records: days to keep after the cutoff (beside retain_years)."),
    Setting("schedules.cutoff", str, "calendar_year",
            "When the period starts: 'calendar_year', 'fiscal_year' (ends 30 September), 'tenure' (the "
            "custodian's tenure_ended) or 'creation' (the record's own date)."),
    Setting("schedules.transfer_years", int, 0,
            "Permanent records: years after cutoff they are transferred to NARA (15 to 30; GRS 6.1 item 010: 15)."),
    Setting("custodians.tenure_ended", str, "",
            "Last day of the custodian's tenure (YYYY-MM-DD; '' = still serving): the cutoff of 'tenure' schedules."),
    Setting("store.index", str, "",
            "Where the index lives: '' = SQLite in data_dir; 'postgresql://USER@HOST:PORT/DATABASE' = "
            "PostgreSQL (a database with C collation, UTF8; no password in the URI: libpq's passfile)."),
    Setting("store.blobs", str, "",
            "Where sealed blobs live: '' = inside the index in data_dir (the embedded store); "
            "'s3://BUCKET' = an S3 bucket with Object Lock (compliance-mode retention per capture)."),
    Setting("store.s3_endpoint", str, "", "URL of the S3 service ('' = AWS's own for s3_region)."),
    Setting("store.s3_region", str, "us-east-1", "The bucket's region."),
    Setting("store.s3_credentials", str, "",
            "AWS shared-credentials file holding the archive's access key (0600, like a secret); "
            "'' = <data_dir>/secrets/s3.credentials."),
    Setting("store.s3_profile", str, "default", "Section of s3_credentials to use."),
    Setting("store.s3_min_retention_days", int, 1,
            "The bucket's default COMPLIANCE retention, set by 'twentyday create': every object is locked at "
            "least this long, and a capture's objects until its records may be destroyed (0 = no minimum)."),
    Setting("retention.two_person_approval", bool, True,
            "A disposition plan is destroyed only once a second officer (another signing key) approved it."),
)

_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Locales whose short dates put the month first; every other xx_YY locale is day-first
# (year-first locales write y/m/d, which an export decides by itself).
_MONTH_FIRST_LOCALES = frozenset(
    {"en_US", "es_US", "en_PH", "en_AS", "en_GU", "en_MP", "en_PR", "en_UM", "en_VI", "en_FM", "en_MH", "en_PW"}
)
_LOCALE_RE = re.compile(r"^[a-z]{2,3}_[A-Z]{2}$")
_AUTHSERV_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
#: A pinned Ed25519 public key: the raw 32 bytes in hex.
LEDGER_KEY_RE = re.compile(r"^ed25519:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Schedule:
    id: str
    title: str
    authority: str
    permanent: bool
    retain_years: int
    retain_days: int = 0
    cutoff: str = "calendar_year"
    transfer_years: int = 0

    def describe(self) -> str:
        return f"{self.id} ({self.authority or 'no authority given'}): {self.rule().period()}"

    def rule(self) -> Rule:
        """The rule a record of this schedule carries from ingest (``record.retention``: :meth:`Rule.text`)."""
        return Rule(self.id, self.authority, self.permanent, self.retain_years, self.retain_days, self.cutoff,
                    self.transfer_years)


#: GRS 6.1 (Email and other electronic messages managed under a Capstone approach) and GRS 5.2 item
#: 010 (transitory records). 6.1-010: permanent, transfer to NARA 15 years after cutoff (the band NARA
#: allows since Transmittal 26 starts at 15); 011 and 012: "delete when 7 (3) years old", kept here
#: after the calendar-year cutoff, which is never shorter. 5.2-010: "destroy when no longer needed for
#: business use, or according to agency predetermined time period": the GRS sets no minimum, NARA's
#: FAQ calls transitory "required for only a short time (generally less than 180 days)" -- 180 days
#: after the record's own date, which an agency may set shorter.
BUILTIN_SCHEDULES: tuple[Schedule, ...] = (
    Schedule("grs-6.1-010", "Capstone officials", "GRS 6.1, item 010", True, 0, transfer_years=15),
    Schedule("grs-6.1-011", "All other than Capstone officials", "GRS 6.1, item 011", False, 7),
    Schedule("grs-6.1-012", "Support and administrative positions", "GRS 6.1, item 012", False, 3),
    Schedule("grs-5.2-010", "Transitory records", "GRS 5.2, item 010", False, 0, retain_days=180,
             cutoff="creation"),
)
#: What each GRS item gives at least: a config may redefine a builtin id to keep longer, never shorter.
GRS_FLOORS: dict[str, Rule] = {
    "grs-6.1-010": Rule("grs-6.1-010", "GRS 6.1, item 010", True, 0, 0, "calendar_year", 15),
    "grs-6.1-011": Rule("grs-6.1-011", "GRS 6.1, item 011", False, 7, 0, "creation"),
    "grs-6.1-012": Rule("grs-6.1-012", "GRS 6.1, item 012", False, 3, 0, "creation"),
    "grs-5.2-010": Rule("grs-5.2-010", "GRS 5.2, item 010", False, 0, 1, "creation"),
}


@dataclass(frozen=True)
class Custodian:
    id: str
    name: str
    timezone: str
    official: tuple[str, ...]
    personal: tuple[str, ...]
    chat_names: tuple[str, ...]
    locale: str
    schedule: str
    smtp_users: tuple[str, ...] = ()
    #: The office maintaining the custodian's records ('' = not configured).
    office: str = ""
    #: custodians.tenure_ended: the last day of the tenure (None: still serving).
    tenure_ended: date | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def day_first(self) -> bool | None:
        """Day/month order implied by the locale, or None when no locale is configured."""
        if not self.locale:
            return None
        return self.locale not in _MONTH_FIRST_LOCALES

    @functools.cached_property
    def own_identities(self) -> frozenset[str]:
        """Every name, number and address the custodian can appear under (normalised)."""
        items = (*self.official, *self.personal, *self.chat_names)
        return frozenset(normalise_identity(i) for i in items)

    @functools.cached_property
    def official_identities(self) -> frozenset[str]:
        return frozenset(normalise_identity(i) for i in self.official)


@dataclass(frozen=True)
class SmtpConfig:
    enabled: bool
    listen: str
    hostname: str
    addresses: tuple[str, ...]
    max_message_bytes: int
    tls_cert: Path | None
    tls_key: Path | None
    require_tls: bool
    auth_file: Path | None
    allow_plaintext_auth: bool
    timeout_seconds: int
    max_connections: int
    max_connections_per_client: int
    max_messages_per_minute: int
    max_bytes_in_flight: int
    #: Past it, a message is sealed into the spool as it arrives (memory held: about a chunk).
    spool_to_disk_bytes: int = 1024 * 1024
    relay_networks: tuple[IPv4Network | IPv6Network, ...] = ()
    dkim: str = "verify"
    trusted_authserv_id: str = ""


@dataclass(frozen=True)
class EmailSink:
    relay: str
    from_address: str
    starttls: bool
    user: str
    password_file: Path | None
    officers: tuple[str, ...]
    digest_hour: int
    digest_timezone: str
    timeout_seconds: int


@dataclass(frozen=True)
class JournalSink:
    enabled: bool = True
    socket: Path = Path("/run/systemd/journal/socket")


@dataclass(frozen=True)
class WebhookSink:
    url: str
    secret_file: Path
    timeout_seconds: int


@dataclass(frozen=True)
class AlertDelivery:
    """``[alerts]``: where alert events go (notify) and how often a failed delivery is retried."""

    max_attempts: int = 20
    retry_initial_seconds: int = 30
    retry_max_seconds: int = 3600
    email: EmailSink | None = None
    journal: JournalSink = JournalSink()
    webhook: WebhookSink | None = None


@dataclass(frozen=True)
class BlobTarget:
    """``[store]`` with ``blobs = "s3://…"``: the bucket sealed blobs are written to (store/objects.py)."""

    bucket: str
    endpoint: str
    region: str
    credentials: Path
    profile: str
    min_retention_days: int


@dataclass(frozen=True)
class Config:
    path: Path
    data_dir: Path
    deadline_days: int
    deadline_rule: str
    log_level: str
    smtp: SmtpConfig
    folder_path: Path
    recipients: tuple[Path, ...]
    #: keys.ledger_key: '' when not pinned (see :data:`LEDGER_KEY_RE`).
    ledger_key: str
    remind_after_days: int
    silent_after_days: int
    custodians: tuple[Custodian, ...]
    schedules: tuple[Schedule, ...]
    delivery: AlertDelivery = AlertDelivery()
    escalate_after_days: int = 7
    evaluate_every_minutes: int = 15
    #: alerts.verify_every_hours: serve's own verify timer (0: never).
    verify_every_hours: float = 24.0
    #: export.dissemination_notice: the text every export carries (NOTICE.txt, the HTML header).
    dissemination_notice: str = DEFAULT_DISSEMINATION_NOTICE
    #: The agency's name for reports to file ('' = not configured).
    agency: str = ""
    #: retention.two_person_approval: a plan is disposed of only after a second officer approved it.
    two_person_approval: bool = True
    #: keys.former_ledger_keys: ledger keys in force before a rotation, oldest first ('ed25519:…').
    former_ledger_keys: tuple[str, ...] = ()
    #: store.blobs: the S3 bucket sealed blobs go to; None = the embedded store (blobs in the index).
    blobs: BlobTarget | None = None
    #: store.index: the PostgreSQL URI of the index; None = SQLite in data_dir (``index.db``).
    index: str | None = None

    def custodian(self, custodian_id: str) -> Custodian | None:
        return next((c for c in self.custodians if c.id == custodian_id), None)

    def custodians_of_user(self, user: str) -> tuple[str, ...]:
        """The ids of the custodians an SMTP AUTH user may file for (``custodians.smtp_users``)."""
        return tuple(c.id for c in self.custodians if user in c.smtp_users)

    def schedule(self, schedule_id: str) -> Schedule:
        found = next((s for s in self.schedules if s.id == schedule_id), None)
        if found is None:
            raise ConfigError(f"unknown schedule {schedule_id!r}", path=str(self.path))
        return found


@functools.lru_cache(maxsize=65536)
def normalise_identity(value: str) -> str:
    """Compare identities loosely: case, spaces and phone punctuation do not matter."""
    text = value.strip().lower()
    if re.fullmatch(r"[+\d\s().\-\u00a0\u202a\u202c]+", text):
        return re.sub(r"[^\d+]", "", text)
    return text


def load(path: str | Path) -> Config:
    """Read, validate and freeze a configuration file."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            raw = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("no such configuration file", path=str(file)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}", path=str(file)) from None
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", path=str(file)) from None
    # Whoever can write the config can point the daemon at their own key (see permissions).
    require_trusted(file, "the configuration", ConfigError)
    config = _build(file, raw)
    if config.smtp.auth_file is not None and config.smtp.auth_file.exists():
        require_trusted(config.smtp.auth_file, "smtp.auth_file", ConfigError)
    # Whoever reads these can sign webhooks or send mail as the daemon: secrets, like its keys.
    email, webhook = config.delivery.email, config.delivery.webhook
    if email is not None and email.password_file is not None and email.password_file.exists():
        require_secret(email.password_file, "alerts.email.password_file", ConfigError)
    if webhook is not None and webhook.secret_file.exists():
        require_secret(webhook.secret_file, "alerts.webhook.secret_file", ConfigError)
    # Whoever reads the bucket's key can write objects as the archive (not delete locked ones: Object Lock).
    if config.blobs is not None and config.blobs.credentials.exists():
        require_secret(config.blobs.credentials, "store.s3_credentials", ConfigError)
    return config


#: What ``serve`` binds at start, so a reload (SIGHUP) cannot change it: (setting as the config names it,
#: attribute of :class:`Config`, or ``smtp.<attribute>`` of :class:`SmtpConfig`). A reload names each one
#: that differs in a warning and keeps the running value; everything else (custodians, schedules, SMTP users
#: and addresses, relay networks, the deadline and alert rules) takes effect.
RESTART_ONLY: tuple[tuple[str, str], ...] = (
    ("data_dir", "data_dir"), ("log_level", "log_level"), ("folder.path", "folder_path"),
    ("keys.recipients", "recipients"), ("keys.ledger_key", "ledger_key"),
    ("keys.former_ledger_keys", "former_ledger_keys"),
    ("alerts.verify_every_hours", "verify_every_hours"),
    # The daemon, its deliverer and its verify hold the archive they opened: a pipeline restarted on
    # another index or bucket would write into another archive, unchecked (store/nodes.py).
    ("store.index", "index"), ("store.blobs, store.s3_*", "blobs"),
    ("alerts.email, alerts.journal, alerts.webhook, alerts.max_attempts, alerts.retry_*", "delivery"),
    ("smtp.enabled", "smtp.enabled"), ("smtp.listen", "smtp.listen"), ("smtp.hostname", "smtp.hostname"),
    ("smtp.tls_cert", "smtp.tls_cert"), ("smtp.tls_key", "smtp.tls_key"), ("smtp.require_tls", "smtp.require_tls"),
    ("smtp.allow_plaintext_auth", "smtp.allow_plaintext_auth"), ("smtp.timeout_seconds", "smtp.timeout_seconds"),
    ("smtp.max_message_bytes", "smtp.max_message_bytes"), ("smtp.max_connections", "smtp.max_connections"),
    ("smtp.max_connections_per_client", "smtp.max_connections_per_client"),
    ("smtp.max_messages_per_minute", "smtp.max_messages_per_minute"),
    ("smtp.max_bytes_in_flight", "smtp.max_bytes_in_flight"), ("smtp.spool_to_disk_bytes", "smtp.spool_to_disk_bytes"),
)


def reloaded(running: Config, loaded: Config) -> tuple[Config, tuple[str, ...]]:
    """The config a reload runs with: ``loaded`` with every :data:`RESTART_ONLY` setting kept as
    ``running`` has it, and the names of those that ``loaded`` would have changed."""
    kept: list[str] = []
    top: dict[str, Any] = {}
    smtp: dict[str, Any] = {}
    for label, attribute in RESTART_ONLY:
        section, _, name = attribute.rpartition(".")
        was = getattr(running.smtp if section else running, name)
        if getattr(loaded.smtp if section else loaded, name) != was:
            kept.append(label)
            (smtp if section else top)[name] = was
    return replace(loaded, smtp=replace(loaded.smtp, **smtp), **top), tuple(kept)


def _settings_under(prefix: str) -> dict[str, Setting]:
    """Settings directly below ``prefix`` ('' for the top level), keyed by their last name part."""
    found: dict[str, Setting] = {}
    for setting in SETTINGS:
        head, _, last = setting.name.rpartition(".")
        if head == prefix:
            found[last] = setting
    return found


def _read_table(file: Path, table: dict[str, Any], prefix: str, label: str) -> dict[str, Any]:
    """Check one table against the settings: unknown keys, types, required keys; fill defaults."""
    known = _settings_under(prefix)
    values: dict[str, Any] = {}
    for key, value in table.items():
        where = f"{label}.{key}" if label else key
        if key in known:
            values[key] = _check_type(file, where, value, known[key].kind)
        elif _is_table(prefix, key):  # read by its own _section
            continue
        else:
            raise ConfigError("unknown key", path=str(file), key=where)
    for key, setting in known.items():
        if key not in values:
            if setting.default is REQUIRED:
                raise ConfigError("required key is missing", path=str(file), key=f"{label}.{key}" if label else key)
            values[key] = list(setting.default) if isinstance(setting.default, list) else setting.default
    return values


def _is_table(prefix: str, key: str) -> bool:
    """Whether settings live below ``prefix.key`` (``smtp``, ``custodians``, ``alerts.email``)."""
    start = f"{prefix}.{key}." if prefix else f"{key}."
    return any(s.name.startswith(start) for s in SETTINGS)


def _check_type(file: Path, where: str, value: Any, kind: type) -> Any:
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"expected an integer, got {value!r}", path=str(file), key=where)
    if kind is float:  # TOML writes a whole number of hours as an integer
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"expected a number, got {value!r}", path=str(file), key=where)
        return float(value)
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError("expected a list of strings", path=str(file), key=where)
        return tuple(value)
    if not isinstance(value, kind):
        raise ConfigError(f"expected {kind.__name__}, got {value!r}", path=str(file), key=where)
    return value


def _section(file: Path, raw: dict[str, Any], name: str, parent: str = "") -> dict[str, Any]:
    table = raw.get(name, {})
    full = f"{parent}.{name}" if parent else name
    if not isinstance(table, dict):
        raise ConfigError("expected a table", path=str(file), key=full)
    return _read_table(file, table, full, full)


def _entries(file: Path, raw: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = raw.get(name, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"expected [[{name}]] tables", path=str(file), key=name)
    return [_read_table(file, item, name, f"{name}[{n}]") for n, item in enumerate(items)]


def _resolve(base: Path, value: str) -> Path:
    candidate = Path(value).expanduser()
    return candidate if candidate.is_absolute() else (base / candidate).resolve()


#: A secret's file may be a systemd credential: "credential:NAME" is NAME in $CREDENTIALS_DIRECTORY,
#: where the unit's LoadCredential=NAME:PATH puts a copy only the service can read (the original
#: stays root's). Outside the service, systemd's directory for twentyday.service, where serve started
#: by hand finds nothing and says which file it could not read.
CREDENTIAL_PREFIX = "credential:"
CREDENTIALS_DEFAULT = "/run/credentials/twentyday.service"


def _secret_path(file: Path, base: Path, key: str, value: str) -> Path:
    if not value.startswith(CREDENTIAL_PREFIX):
        return _resolve(base, value)
    name = value[len(CREDENTIAL_PREFIX):]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in {".", ".."}:
        raise ConfigError(f"expected credential:NAME, NAME as in the unit's LoadCredential=NAME:PATH, got {value!r}",
                          path=str(file), key=key)
    return Path(os.environ.get("CREDENTIALS_DIRECTORY") or CREDENTIALS_DEFAULT) / name


def _check_former_ledger_keys(file: Path, current: str, former: list[Any]) -> None:
    for key in former:
        if not isinstance(key, str) or not LEDGER_KEY_RE.match(key):
            raise ConfigError(f"expected 'ed25519:' and 64 hex digits each, got {key!r}", path=str(file),
                              key="keys.former_ledger_keys")
    if former and not current:
        raise ConfigError("former keys need the key in force after them pinned in keys.ledger_key", path=str(file),
                          key="keys.former_ledger_keys")
    if current in former or len(set(former)) != len(former):
        raise ConfigError("each key once, and not keys.ledger_key itself", path=str(file),
                          key="keys.former_ledger_keys")


#: An S3 bucket name as S3 allows it (3-63 lower-case letters, digits, '.', '-'; no leading or trailing dot/dash).
BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _blob_target(file: Path, base: Path, data_dir: Path, store: dict[str, Any]) -> BlobTarget | None:
    if not store["blobs"]:
        return None
    scheme, _, bucket = store["blobs"].partition("://")
    if scheme != "s3" or not BUCKET_RE.match(bucket):
        raise ConfigError("expected '' (the embedded store) or 's3://BUCKET' with a valid bucket name",
                          path=str(file), key="store.blobs")
    if store["s3_endpoint"] and not re.match(r"^https?://[^/\s]+/?$", store["s3_endpoint"]):
        raise ConfigError("expected http(s)://host[:port]", path=str(file), key="store.s3_endpoint")
    if not 0 <= store["s3_min_retention_days"] <= 36500:
        raise ConfigError("must be between 0 and 36500", path=str(file), key="store.s3_min_retention_days")
    credentials = (_resolve(base, store["s3_credentials"]) if store["s3_credentials"]
                   else data_dir / "secrets" / "s3.credentials")
    return BlobTarget(bucket=bucket, endpoint=store["s3_endpoint"].rstrip("/"), region=store["s3_region"],
                      credentials=credentials, profile=store["s3_profile"],
                      min_retention_days=store["s3_min_retention_days"])


def _index_uri(file: Path, store: dict[str, Any]) -> str | None:
    """``store.index``: a PostgreSQL URI without a password (a config file is no place for one:
    libpq reads it from a passfile it refuses when others can read it)."""
    uri = store["index"]
    if not uri:
        return None
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in {"postgresql", "postgres"} or not parts.path.strip("/"):
        raise ConfigError("expected '' (SQLite in data_dir) or 'postgresql://USER@HOST[:PORT]/DATABASE'",
                          path=str(file), key="store.index")
    query = urllib.parse.parse_qs(parts.query)
    if parts.password is not None or "password" in query:
        raise ConfigError("holds a password: give it to libpq in a passfile (0600; ?passfile=PATH or "
                          "~/.pgpass), or use peer or certificate authentication", path=str(file), key="store.index")
    return str(uri)


def _build(file: Path, raw: dict[str, Any]) -> Config:
    base = file.resolve().parent
    top = _read_table(file, raw, "", "")
    smtp = _section(file, raw, "smtp")
    folder = _section(file, raw, "folder")
    keys = _section(file, raw, "keys")
    alerts = _section(file, raw, "alerts")
    export = _section(file, raw, "export")
    if not export["dissemination_notice"].strip():
        raise ConfigError("must not be blank: every export carries it", path=str(file),
                          key="export.dissemination_notice")
    retention = _section(file, raw, "retention")
    store = _section(file, raw, "store")

    if top["deadline_rule"] not in {"calendar", "elapsed"}:
        raise ConfigError(f"must be 'calendar' or 'elapsed', not {top['deadline_rule']!r}",
                          path=str(file), key="deadline_rule")
    if not 1 <= top["deadline_days"] <= 366:
        raise ConfigError("must be between 1 and 366", path=str(file), key="deadline_days")
    if top["log_level"] not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"unknown level {top['log_level']!r}", path=str(file), key="log_level")
    if not keys["recipients"]:
        raise ConfigError("name at least one officer public key", path=str(file), key="keys.recipients")
    if keys["ledger_key"] and not LEDGER_KEY_RE.match(keys["ledger_key"]):
        raise ConfigError("expected 'ed25519:' and 64 hex digits (see 'twentyday keys pin-ledger')",
                          path=str(file), key="keys.ledger_key")
    _check_former_ledger_keys(file, keys["ledger_key"], keys["former_ledger_keys"])
    for key in ("remind_after_days", "silent_after_days", "escalate_after_days", "evaluate_every_minutes"):
        if alerts[key] < 1:
            raise ConfigError("must be at least 1", path=str(file), key=f"alerts.{key}")
    if not 0 <= alerts["verify_every_hours"] <= 24 * 366:
        raise ConfigError("must be between 0 (never) and 8784 hours", path=str(file), key="alerts.verify_every_hours")
    if smtp["max_message_bytes"] < 1024:
        raise ConfigError("must be at least 1024", path=str(file), key="smtp.max_message_bytes")
    _check_listen(file, smtp["listen"])

    schedules = _schedules(file, _entries(file, raw, "schedules"))
    custodians = _custodians(file, _entries(file, raw, "custodians"), {s.id for s in schedules})
    data_dir = _resolve(base, top["data_dir"])
    return Config(
        blobs=_blob_target(file, base, data_dir, store),
        index=_index_uri(file, store),
        path=file.resolve(),
        data_dir=data_dir,
        deadline_days=top["deadline_days"],
        deadline_rule=top["deadline_rule"],
        log_level=top["log_level"],
        smtp=_smtp(file, base, smtp),
        folder_path=_resolve(base, folder["path"]) if folder["path"] else data_dir / "inbox",
        recipients=tuple(_resolve(base, p) for p in keys["recipients"]),
        ledger_key=keys["ledger_key"],
        former_ledger_keys=tuple(keys["former_ledger_keys"]),
        remind_after_days=alerts["remind_after_days"],
        silent_after_days=alerts["silent_after_days"],
        escalate_after_days=alerts["escalate_after_days"],
        evaluate_every_minutes=alerts["evaluate_every_minutes"],
        verify_every_hours=alerts["verify_every_hours"],
        custodians=custodians,
        schedules=schedules,
        delivery=_delivery(file, base, alerts, raw.get("alerts", {})),
        dissemination_notice=export["dissemination_notice"],
        agency=top["agency"],
        two_person_approval=retention["two_person_approval"],
    )


def _delivery(file: Path, base: Path, alerts: dict[str, Any], raw_alerts: Any) -> AlertDelivery:
    raw = raw_alerts if isinstance(raw_alerts, dict) else {}
    email = _section(file, raw, "email", "alerts")
    journal = _section(file, raw, "journal", "alerts")
    webhook = _section(file, raw, "webhook", "alerts")
    for key in ("max_attempts", "retry_initial_seconds"):
        if alerts[key] < 1:
            raise ConfigError("must be at least 1", path=str(file), key=f"alerts.{key}")
    if alerts["retry_max_seconds"] < alerts["retry_initial_seconds"]:
        raise ConfigError("must be at least alerts.retry_initial_seconds", path=str(file),
                          key="alerts.retry_max_seconds")
    for key, table in (("email", email), ("webhook", webhook)):
        if table["timeout_seconds"] < 1:
            raise ConfigError("must be at least 1", path=str(file), key=f"alerts.{key}.timeout_seconds")
    return AlertDelivery(
        max_attempts=alerts["max_attempts"], retry_initial_seconds=alerts["retry_initial_seconds"],
        retry_max_seconds=alerts["retry_max_seconds"], email=_email_sink(file, base, email),
        journal=JournalSink(journal["enabled"], _resolve(base, journal["socket"])),
        webhook=_webhook_sink(file, base, webhook),
    )


def _email_sink(file: Path, base: Path, email: dict[str, Any]) -> EmailSink | None:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(message, path=str(file), key=f"alerts.email.{key}")

    if not email["relay"]:
        return None
    host, sep, port = email["relay"].rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise fail("relay", f"expected host:port, got {email['relay']!r}")
    if not email["from_address"]:
        raise fail("from_address", "needed with alerts.email.relay")
    for key, addresses in (("from_address", [email["from_address"]]), ("officers", email["officers"])):
        if any(not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", a) for a in addresses):
            raise fail(key, "expected plain addresses like name@agency.example")
    if email["user"] and not email["password_file"]:
        raise fail("password_file", "a relay user needs a password_file")
    if not -1 <= email["digest_hour"] <= 23:
        raise fail("digest_hour", "must be an hour from 0 to 23, or -1 for no digest")
    try:
        ZoneInfo(email["digest_timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise fail("digest_timezone", f"unknown time zone {email['digest_timezone']!r}") from None
    return EmailSink(
        relay=email["relay"], from_address=email["from_address"], starttls=email["starttls"], user=email["user"],
        password_file=(_secret_path(file, base, "alerts.email.password_file", email["password_file"])
                       if email["password_file"] else None),
        officers=tuple(a.lower() for a in email["officers"]), digest_hour=email["digest_hour"],
        digest_timezone=email["digest_timezone"], timeout_seconds=email["timeout_seconds"],
    )


def _webhook_sink(file: Path, base: Path, webhook: dict[str, Any]) -> WebhookSink | None:
    if not webhook["url"]:
        return None
    if not re.match(r"^https?://[^/\s]+", webhook["url"]):
        raise ConfigError("expected an http:// or https:// URL", path=str(file), key="alerts.webhook.url")
    if not webhook["secret_file"]:  # an unsigned alert could be forged by anyone who can reach the receiver
        raise ConfigError("a webhook needs a secret_file (whsec_...)", path=str(file), key="alerts.webhook.secret_file")
    return WebhookSink(webhook["url"], _secret_path(file, base, "alerts.webhook.secret_file", webhook["secret_file"]),
                       webhook["timeout_seconds"])


def _smtp(file: Path, base: Path, smtp: dict[str, Any]) -> SmtpConfig:
    def path(key: str) -> Path | None:
        return _secret_path(file, base, f"smtp.{key}", smtp[key]) if smtp[key] else None

    if bool(smtp["tls_cert"]) != bool(smtp["tls_key"]):
        raise ConfigError("tls_cert and tls_key go together", path=str(file), key="smtp.tls_key")
    if smtp["require_tls"] and not smtp["tls_cert"]:
        raise ConfigError("require_tls needs tls_cert and tls_key", path=str(file), key="smtp.require_tls")
    if smtp["dkim"] not in {"verify", "off"}:
        raise ConfigError(f"must be 'verify' or 'off', not {smtp['dkim']!r}", path=str(file), key="smtp.dkim")
    networks = []
    for network in smtp["relay_networks"]:
        try:
            networks.append(ipaddress.ip_network(network))
        except ValueError:
            raise ConfigError(f"expected a network like 10.0.0.0/8, got {network!r}", path=str(file),
                              key="smtp.relay_networks") from None
    if smtp["trusted_authserv_id"] and not _AUTHSERV_RE.match(smtp["trusted_authserv_id"]):
        raise ConfigError(f"expected a host name, got {smtp['trusted_authserv_id']!r}", path=str(file),
                          key="smtp.trusted_authserv_id")
    for key in ("timeout_seconds", "max_connections", "max_connections_per_client", "max_messages_per_minute"):
        if smtp[key] < 1:
            raise ConfigError("must be at least 1", path=str(file), key=f"smtp.{key}")
    if smtp["spool_to_disk_bytes"] < 65536:
        raise ConfigError("must be at least 65536", path=str(file), key="smtp.spool_to_disk_bytes")
    if smtp["max_bytes_in_flight"] < smtp["max_message_bytes"]:
        # Else the largest message allowed could never be taken, and its sender would retry for ever.
        raise ConfigError("must be at least smtp.max_message_bytes", path=str(file), key="smtp.max_bytes_in_flight")
    return SmtpConfig(
        enabled=smtp["enabled"], listen=smtp["listen"], hostname=smtp["hostname"],
        addresses=tuple(a.lower() for a in smtp["addresses"]), max_message_bytes=smtp["max_message_bytes"],
        tls_cert=path("tls_cert"), tls_key=path("tls_key"), require_tls=smtp["require_tls"],
        auth_file=path("auth_file"), allow_plaintext_auth=smtp["allow_plaintext_auth"],
        timeout_seconds=smtp["timeout_seconds"], max_connections=smtp["max_connections"],
        max_connections_per_client=smtp["max_connections_per_client"],
        max_messages_per_minute=smtp["max_messages_per_minute"],
        max_bytes_in_flight=smtp["max_bytes_in_flight"], spool_to_disk_bytes=smtp["spool_to_disk_bytes"],
        relay_networks=tuple(networks), dkim=smtp["dkim"], trusted_authserv_id=smtp["trusted_authserv_id"].lower(),
    )


def _check_listen(file: Path, listen: str) -> None:
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"expected host:port, got {listen!r}", path=str(file), key="smtp.listen")


def _schedules(file: Path, entries: list[dict[str, Any]]) -> tuple[Schedule, ...]:
    by_id = {s.id: s for s in BUILTIN_SCHEDULES}
    for n, entry in enumerate(entries):
        if not _ID_RE.match(entry["id"]):
            raise ConfigError(f"invalid id {entry['id']!r}", path=str(file), key=f"schedules[{n}].id")
        if not entry["permanent"] and entry["retain_years"] < 1 and entry["retain_days"] < 1:
            raise ConfigError("a temporary schedule needs retain_years >= 1 (or retain_days >= 1)",
                              path=str(file), key=f"schedules[{n}].retain_years")
        for key in ("retain_years", "retain_days", "transfer_years"):
            if entry[key] < 0:
                raise ConfigError("must not be negative", path=str(file), key=f"schedules[{n}].{key}")
        if entry["cutoff"] not in CUTOFFS:
            raise ConfigError(f"must be one of {', '.join(CUTOFFS)}, not {entry['cutoff']!r}",
                              path=str(file), key=f"schedules[{n}].cutoff")
        if entry["permanent"] and entry["transfer_years"] and not 15 <= entry["transfer_years"] <= 30:
            raise ConfigError("GRS 6.1 item 010 transfers 15 to 30 years after cutoff", path=str(file),
                              key=f"schedules[{n}].transfer_years")
        schedule = Schedule(**entry)
        floor = GRS_FLOORS.get(schedule.id)
        shorter = shorter_than(schedule.rule(), floor) if floor is not None else None
        if floor is not None and shorter is not None:
            # Redefining a GRS item is how an agency keeps records longer, never how it keeps them less long.
            raise ConfigError(f"{schedule.id} cannot keep records less long than {floor.authority} gives "
                              f"({floor.period()})", path=str(file), key=f"schedules[{n}].{shorter}")
        by_id[entry["id"]] = schedule
    return tuple(by_id.values())


def _date(file: Path, key: str, text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"expected a date like 2026-09-30, got {text!r}", path=str(file), key=key) from None


def _custodians(file: Path, entries: list[dict[str, Any]], schedule_ids: set[str]) -> tuple[Custodian, ...]:
    seen: set[str] = set()
    custodians = []
    for n, entry in enumerate(entries):
        label = f"custodians[{n}]"
        if not _ID_RE.match(entry["id"]):
            raise ConfigError(f"invalid id {entry['id']!r} (lower-case letters, digits, '.', '_', '-')",
                              path=str(file), key=f"{label}.id")
        if entry["id"] in seen:
            raise ConfigError(f"duplicate id {entry['id']!r}", path=str(file), key=f"{label}.id")
        if "\x00" in entry["name"]:  # stored in the index, whose text in PostgreSQL cannot hold it
            raise ConfigError("a name cannot hold the character U+0000 (NUL)", path=str(file), key=f"{label}.name")
        seen.add(entry["id"])
        try:
            ZoneInfo(entry["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {entry['timezone']!r}",
                              path=str(file), key=f"{label}.timezone") from None
        if entry["locale"] and not _LOCALE_RE.match(entry["locale"]):
            raise ConfigError(f"expected a locale like en_US, got {entry['locale']!r}",
                              path=str(file), key=f"{label}.locale")
        if entry["schedule"] not in schedule_ids:
            raise ConfigError(f"unknown schedule {entry['schedule']!r}", path=str(file), key=f"{label}.schedule")
        entry["official"] = tuple(a.lower() for a in entry["official"])
        entry["tenure_ended"] = _date(file, f"{label}.tenure_ended", entry["tenure_ended"])
        if any(not user or ":" in user for user in entry["smtp_users"]):
            raise ConfigError("an SMTP user name is not empty and has no ':'", path=str(file),
                              key=f"{label}.smtp_users")
        custodians.append(Custodian(**entry))
    return tuple(custodians)
