"""Adding an officer or escrow recipient for future captures.

Past captures stay sealed to the recipients they had; the new key is written
into the config's ``keys.recipients`` and gets its own sealed copy of the
daemon secrets.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from twentyday import config as config_module
from twentyday.crypto import keys
from twentyday.errors import ConfigError, KeyMaterialError
from twentyday.store.archive import Archive

_RECIPIENTS = re.compile(r"(?ms)^(\[keys\][^\[]*?^\s*recipients\s*=\s*)\[[^\]]*\]")


def add_recipient(config_path: Path, public_key: Path) -> keys.Recipient:
    recipient = keys.load_recipient(public_key)
    config = config_module.load(config_path)
    current = [keys.load_recipient(p) for p in config.recipients]
    if any(r.fingerprint == recipient.fingerprint for r in current):
        raise KeyMaterialError(f"{public_key}: {recipient.fingerprint} is already a recipient")
    text = config_path.read_text()
    paths = [*(str(p) for p in config.recipients), str(public_key.resolve())]
    updated, count = _RECIPIENTS.subn(lambda m: m.group(1) + json.dumps(paths), text, count=1)
    if count != 1:
        raise ConfigError("cannot find keys.recipients to update; edit it by hand", path=str(config_path))
    config_path.write_text(updated)
    reloaded = config_module.load(config_path)
    if [str(p) for p in reloaded.recipients] != paths:
        config_path.write_text(text)
        raise ConfigError("the update did not read back as written; config restored", path=str(config_path))
    with Archive(reloaded) as archive:
        archive.escrow_secrets((recipient,), archive.secrets)
    return recipient
