"""``twentyday keys rotate-ledger``: replace the daemon's ledger-signing key, the old key vouching for the new.

Run as the daemon's user with ``serve`` stopped (its lock is held throughout, so none starts
meanwhile). The steps, each safe to repeat after a crash:

1. a new Ed25519 key is staged beside the current one (``secrets/ledger-signing.next.pem``, 0600);
2. one transaction (:meth:`Archive.hand_over_ledger_key`): a ``ledger_key_handover`` entry naming the
   old and the new key, checkpointed with the old key; the daemon secrets, now holding the new key,
   sealed again to every configured recipient (escrow); a checkpoint with the new key;
3. the old public key is kept as ``secrets/ledger-signing-<n>.pub``, the new one put in place, and
   the staged key renamed over ``secrets/ledger-signing.pem``;
4. the config: ``keys.ledger_key`` becomes the new key and the old one joins ``keys.former_ledger_keys``
   (written when the daemon's user may write the config, as ``create`` does; else printed).

``verify`` then checks each checkpoint with the key in force at it, so heads published before
the rotation still verify, and a handover not signed by the key in force before it is named.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from twentyday import config as config_module
from twentyday.crypto import secrets
from twentyday.errors import ConfigError, IntakeError, IntegrityError
from twentyday.status import daemon_state, hold_serve_lock
from twentyday.store.archive import Archive
from twentyday.store.ledger import HANDOVER, LedgerHead, ledger_key_text

_LEDGER_KEY_LINE = re.compile(r"(?m)^[ \t]*ledger_key[ \t]*=.*$")
_FORMER_LINE = re.compile(r"(?m)^[ \t]*former_ledger_keys[ \t]*=.*$")


@dataclass(frozen=True)
class Rotation:
    former: str
    current: str
    #: keys.former_ledger_keys as the config must now hold it.
    former_keys: tuple[str, ...]
    #: The handover entry's sequence number, and the head the new key signed.
    handover_seq: int
    head: LedgerHead
    kept: Path
    recipients: int
    config_written: bool

    def config_lines(self) -> tuple[str, str]:
        return f'ledger_key = "{self.current}"', f"former_ledger_keys = {json.dumps(list(self.former_keys))}"


def rotate_ledger_key(config_path: Path) -> Rotation:
    config = config_module.load(config_path)
    state = daemon_state(config.data_dir)
    if state.running:
        raise IntakeError(f"{config.data_dir}: twentyday serve is running" + (f" (pid {state.pid})" if state.pid
                          else "") + "; stop it first: the ledger key is replaced only while nothing signs with it")
    if not config.ledger_key:
        raise ConfigError("not set: pin the current ledger key first ('twentyday keys pin-ledger'), so the "
                          "rotation is checked against a key held outside the archive",
                          path=str(config.path), key="keys.ledger_key")
    with hold_serve_lock(config.data_dir), Archive(config) as archive:
        in_secrets = ledger_key_text(archive.secrets.verify_key)
        handovers = [json.loads(p) for (p,) in archive.conn.execute(
            "SELECT payload FROM ledger WHERE kind = ? ORDER BY seq", (HANDOVER,))]
        last = (handovers[-1]["from"], handovers[-1]["to"]) if handovers else None
        if config.ledger_key != in_secrets:
            if last != (config.ledger_key, in_secrets):
                raise IntegrityError(f"{config.data_dir}/secrets: the ledger signing key ({in_secrets}) is not the "
                                     "one pinned in keys.ledger_key; refusing to rotate it")
            former = config.ledger_key  # rotated already; only the config is left to update
        else:
            former = in_secrets
            staged = secrets.staged_successor(config.data_dir, archive.secrets)
            if staged is None or last != (former, ledger_key_text(staged.verify_key)):
                staged = secrets.stage_successor(config.data_dir, archive.secrets)  # none, or a stale one
                archive.hand_over_ledger_key(staged)
                handovers.append({"from": former, "to": ledger_key_text(staged.verify_key)})
            secrets.install_successor(config.data_dir, archive.secrets.verify_key, len(handovers))
        current = handovers[-1]["to"]
        seq = archive.conn.execute("SELECT max(seq) FROM ledger WHERE kind = ?", (HANDOVER,)).fetchone()[0]
        head = archive.ledger_head()
        recipients = len(archive.recipients)
    former_keys = (*config.former_ledger_keys, former)
    written = _write_config(config.path, current, former_keys)
    kept = secrets.secrets_dir(config.data_dir) / f"ledger-signing-{len(handovers)}.pub"
    return Rotation(former, current, former_keys, int(seq), head, kept, recipients, written)


def _write_config(path: Path, current: str, former_keys: tuple[str, ...]) -> bool:
    """Pin the new key and list the former ones in the config; False when it cannot (then the CLI prints them).

    Like ``create``: a config the daemon's account may not write is the better setup, and then the
    officer copies the two lines. A config that does not read back as written is restored."""
    try:
        text = path.read_text()
    except OSError:
        return False
    pin = f'ledger_key = "{current}"'
    listed = f"former_ledger_keys = {json.dumps(list(former_keys))}"
    if not _LEDGER_KEY_LINE.search(text):
        return False
    updated = _LEDGER_KEY_LINE.sub(lambda _: pin, text, count=1)
    if _FORMER_LINE.search(updated):
        updated = _FORMER_LINE.sub(lambda _: listed, updated, count=1)
    else:
        line = _LEDGER_KEY_LINE.search(updated)
        assert line is not None  # just written
        updated = updated[:line.end()] + "\n" + listed + updated[line.end():]
    try:
        path.write_text(updated)
    except PermissionError:
        return False
    try:
        reread = config_module.load(path)
    except ConfigError:
        reread = None
    if reread is None or reread.ledger_key != current or reread.former_ledger_keys != former_keys:
        path.write_text(text)
        return False
    return True
