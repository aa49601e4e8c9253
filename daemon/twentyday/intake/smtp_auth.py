"""The SMTP AUTH user file and the password check the forwarding address runs.

``twentyday smtp-user`` writes the file (:func:`add_user`): one ``user:scrypt$salt$hash``
line per user, mode 0600. :class:`Authenticator` is aiosmtpd's authenticator callback;
it costs an scrypt whether or not the user exists, so timing does not tell which users do.
The SMTP protocol (:mod:`twentyday.intake.smtp`) runs it off the event loop and limits
failures; this module knows nothing of connections.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from twentyday.errors import ConfigError


def hash_password(password: str, salt: bytes) -> str:
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def load_auth_file(path: Path) -> dict[str, str]:
    """``user:scrypt$salt$hash`` lines (written by ``twentyday smtp-user``)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise ConfigError(f"cannot read SMTP auth file: {error.strerror}", path=str(path)) from None
    users = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not hashed.startswith("scrypt$"):
            raise ConfigError(f"line {number}: expected user:scrypt$salt$hash", path=str(path))
        if "\x00" in user:  # a capture's delivered_by names it, in the index (PostgreSQL's text cannot hold it)
            raise ConfigError(f"line {number}: a user name cannot hold the character U+0000 (NUL)", path=str(path))
        users[user] = hashed
    return users


def add_user(path: Path, user: str, password: str) -> None:
    if not user or ":" in user or "\n" in user:
        raise ConfigError(f"invalid user name {user!r}", path=str(path))
    if len(password) < 12:
        raise ConfigError("password must be at least 12 characters", path=str(path))
    users = load_auth_file(path) if path.exists() else {}
    users[user] = hash_password(password, os.urandom(16))
    text = "".join(f"{name}:{hashed}\n" for name, hashed in sorted(users.items()))
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(text)


class Authenticator:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                 auth_data: Any) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        stored = self.users.get(user)
        if stored is None:
            hash_password(auth_data.password.decode("utf-8", "replace"), b"\0" * 16)  # same time either way
            return AuthResult(success=False, handled=False)
        _, salt, _ = stored.split("$")
        ok = hmac.compare_digest(hash_password(auth_data.password.decode("utf-8", "replace"),
                                               bytes.fromhex(salt)), stored)
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)
