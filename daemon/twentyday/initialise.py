"""``twentyday init DIR``: a self-contained local archive to try twentyday with.

Layout::

    DIR/twentyday.toml        the config (relative paths, so DIR can move)
    DIR/officer.key           the officer identity: stays with the officer,
    DIR/officer.key.pub       never inside the daemon's data directory
    DIR/data/                 the archive: index.db, secrets/ (0600)
    DIR/inbox/<custodian>/    the watched export folder
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.errors import ConfigError, IntegrityError, KeyMaterialError
from twentyday.pipeline import process as pipeline
from twentyday.store.archive import Archive
from twentyday.store.ledger import ledger_key_text

CONFIG_TEMPLATE = """\
# twentyday configuration, written by 'twentyday init'.
# Every key is documented in config/twentyday.example.toml.
data_dir = "data"
deadline_days = 20
deadline_rule = "calendar"

[smtp]
listen = "127.0.0.1:2525"
addresses = ["records@agency.example"]

[folder]
path = "inbox"

[keys]
# Public keys only. The private identity ({identity}) stays with the records officer.
recipients = ["{public}"]

[alerts]
remind_after_days = 14
silent_after_days = 30

[[custodians]]
id = "jdoe"
name = "Jane Doe"
timezone = "America/New_York"
official = ["jane.doe@agency.example"]
personal = ["jane.doe@gmail.com", "+12025550100"]
chat_names = ["Jane Doe", "Jane"]
locale = "en_US"
schedule = "grs-6.1-011"
"""


@dataclass(frozen=True)
class InitReport:
    config_path: Path
    identity_path: Path
    public_path: Path
    data_dir: Path
    inbox: Path
    fingerprint: str
    protected: bool
    demo_records: int


def make_inbox(folder: Path) -> None:
    """A custodian's inbox, each folder made for it 0700: an export dropped there is in clear
    until the daemon seals it. Existing folders are left as they are (to let employees drop
    files as other users, an administrator grants them a group on the folder, deliberately)."""
    for level in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
        level.mkdir(mode=0o700, exist_ok=True)


def init_archive(directory: Path, *, passphrase: bytes | None, demo: bool, now: datetime) -> InitReport:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    config_path = directory / "twentyday.toml"
    if config_path.exists():
        raise ConfigError("already exists; refusing to overwrite an archive", path=str(config_path))
    identity_path = directory / "officer.key"
    recipient = keys.generate_identity(identity_path, "records officer", passphrase)
    public = keys.public_path(identity_path)
    # 0644 whatever the umask: the config is checked like a public key (nobody else may write it).
    keys.write_public_file(config_path, CONFIG_TEMPLATE.format(identity=identity_path.name,
                                                               public=public.name).encode())
    config = config_module.load(config_path)
    with Archive.create(config, (recipient,)) as archive:
        pin_ledger_key(config_path, ledger_key_text(archive.secrets.verify_key))
        for custodian in config.custodians:
            make_inbox(config.folder_path / custodian.id)
        demo_records = _demo(archive, now) if demo else 0
    return InitReport(config_path, identity_path, public, config.data_dir, config.folder_path,
                      recipient.fingerprint, passphrase is not None, demo_records)


def demo_messages(now: datetime) -> list[bytes]:
    """Three forwarded-by-hand messages: one copied at creation, one late, one on time."""
    def mail(sender: str, to: list[str], cc: list[str], days_ago: int, subject: str, body: str, n: int) -> bytes:
        message = EmailMessage()
        message["From"] = sender
        message["To"] = ", ".join(to)
        if cc:
            message["Cc"] = ", ".join(cc)
        message["Date"] = format_datetime(now - timedelta(days=days_ago, hours=2))
        message["Subject"] = subject
        message["Message-ID"] = f"<demo-{n}@twentyday.invalid>"
        message.set_content(body)
        return bytes(message)

    return [
        mail("Jane Doe <jane.doe@gmail.com>", ["counterpart@partner.example"], ["jane.doe@agency.example"], 2,
             "Visit logistics", "Copying my official account as the rule asks. Agenda attached later.", 1),
        mail("Counterpart <counterpart@partner.example>", ["jane.doe@gmail.com"], [], 30,
             "Draft terms", "Here are the draft terms we discussed on the phone.", 2),
        mail("Jane Doe <jane.doe@gmail.com>", ["counterpart@partner.example"], [], 4,
             "Re: Draft terms", "Thanks, I will take the draft terms to the team on Monday.", 3),
    ]


def _demo(archive: Archive, now: datetime) -> int:
    count = 0
    with tempfile.TemporaryDirectory() as scratch:
        for n, raw in enumerate(demo_messages(now), start=1):
            path = Path(scratch) / f"demo-{n}.eml"
            path.write_bytes(raw)
            item = pipeline.Item(path.name, "cli", now, path=path, custodian_id="jdoe")
            outcome = pipeline.process(archive, item)
            count += outcome.result.new_count if outcome.result else 0
    return count


# -- the ledger key, pinned in the config (outside the archive it checks) ---------------------

_KEYS_TABLE = re.compile(r"(?m)^\[keys\][ \t]*(#.*)?$")
_LEDGER_KEY_LINE = re.compile(r"(?m)^[ \t]*ledger_key[ \t]*=.*$")


def archive_ledger_key(config: config_module.Config) -> str:
    """The ledger key the archive's own secrets hold (``ed25519:…``): what ``keys pin-ledger`` shows."""
    path = config.data_dir / "secrets" / "ledger-signing.pub"
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as error:
        raise KeyMaterialError(f"{path}: cannot read the archive's ledger key: {error.strerror}") from None
    except ValueError:
        key = None
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise KeyMaterialError(f"{path}: not an Ed25519 public key")
    return ledger_key_text(key)


def pin_ledger_key(config_path: Path, key: str, *, replace: bool = False) -> None:
    """Write ``keys.ledger_key = key`` into the config (a new line under ``[keys]``, or the old one replaced).

    A different key already pinned is refused unless ``replace`` (a new archive made for this config):
    a pin that changes by itself would be no pin.
    """
    text = config_path.read_text()
    current = config_module.load(config_path).ledger_key
    if current == key:
        return
    if current and not replace:
        raise IntegrityError(f"{config_path}: keys.ledger_key pins {current}, but the archive's key is {key}: "
                             "the archive's key was replaced, or the config names another archive")
    line = f'ledger_key = "{key}"'
    if _LEDGER_KEY_LINE.search(text):
        updated = _LEDGER_KEY_LINE.sub(line, text, count=1)
    else:
        table = _KEYS_TABLE.search(text)
        if table is None:
            updated = text.rstrip("\n") + f"\n\n[keys]\n{line}\n"
        else:
            updated = text[:table.end()] + "\n" + line + text[table.end():]
    config_path.write_text(updated)
    if config_module.load(config_path).ledger_key != key:
        config_path.write_text(text)
        raise ConfigError("the pin did not read back as written; config restored (add keys.ledger_key by hand)",
                          path=str(config_path))
