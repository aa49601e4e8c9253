"""``twentyday init DIR``: a self-contained local archive to try twentyday with.

Layout::

    DIR/twentyday.toml        the config (relative paths, so DIR can move)
    DIR/officer.key           the officer identity: stays with the officer,
    DIR/officer.key.pub       never inside the daemon's data directory
    DIR/data/                 the archive: index.db, secrets/ (0600)
    DIR/inbox/<custodian>/    the watched export folder
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.errors import ConfigError
from twentyday.pipeline import process as pipeline
from twentyday.store.archive import Archive

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
