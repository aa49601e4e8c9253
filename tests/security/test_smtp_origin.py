"""Issue 12, item 3: anyone who can reach the SMTP port could file records for anyone.

The attacker is a network client of a real ``serve`` (real sockets on loopback: Linux
routes all of 127/8 to lo, so connecting from 127.0.0.2 is a client outside a relay
network of 127.0.0.1/32), an AUTH user filing for someone else's custodian, and a
sender forging authentication results. DKIM is checked with dkimpy on messages signed
with a real RSA key; only DNS is replaced, by a dict of TXT records.
"""

from __future__ import annotations

import base64
import json
import smtplib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import dkim
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import NOW, make_mail
from tests.smtp_helpers import DaemonThread, configure
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.intake.smtp_auth import add_user
from twentyday.pipeline import origin
from twentyday.pipeline.process import Item, process
from twentyday.store.archive import Archive

PASSWORD = "a long enough password"
OTHER_CUSTODIAN = """
[[custodians]]
id = "asmith"
name = "Alex Smith"
timezone = "America/New_York"
official = ["alex.smith@agency.example"]
personal = ["alex.smith@gmail.com"]
"""


def two_custodians(archive_dir: Path, jdoe_users: list[str]) -> None:
    """jdoe (bound to ``jdoe_users``) and asmith, who is bound to nobody."""
    path = archive_dir / "twentyday.toml"
    text = path.read_text().replace('id = "jdoe"\n', f'id = "jdoe"\nsmtp_users = {json.dumps(jdoe_users)}\n')
    path.write_text(text + OTHER_CUSTODIAN)


def search(config: Path) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["--config", str(config), "search", "--json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


def wait_records(config: Path, count: int, timeout: float = 20.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = search(config)
        if len(rows) >= count:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"expected {count} records")


def captures(archive_dir: Path) -> list[tuple[str | None, str | None, str | None]]:
    with sqlite3.connect(archive_dir / "data" / "index.db") as conn:
        return conn.execute("SELECT custodian, delivered_by, origin_auth FROM capture ORDER BY received_at").fetchall()


@pytest.fixture
def users(tmp_path: Path) -> Path:
    path = tmp_path / "smtp-users"
    add_user(path, "jdoe", PASSWORD)
    return path


# -- only relay networks deliver without AUTH ----------------------------------------------------


@pytest.mark.parametrize("with_auth_file", [False, True], ids=["no-auth-file", "auth-file"])
def test_a_client_outside_the_relay_networks_without_auth_is_refused(
        archive_dir: Path, users: Path, with_auth_file: bool) -> None:
    extra = {"auth_file": str(users), "allow_plaintext_auth": True} if with_auth_file else {}
    config, port = configure(archive_dir, relay_networks=["127.0.0.1/32"], **extra)
    running = DaemonThread(config).start()
    try:
        with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.2", 0)) as attacker, \
                pytest.raises(smtplib.SMTPSenderRefused) as refused:
            attacker.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"],
                              make_mail(message_id="<forged@x>"))
        assert refused.value.smtp_code == (530 if with_auth_file else 550)
        assert refused.value.smtp_error.startswith(b"5.7.0" if with_auth_file else b"5.7.1")
        with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.2", 0)) as attacker:  # RCPT without MAIL
            attacker.ehlo()
            assert attacker.docmd("RCPT TO:<records+jdoe@agency.example>")[0] in (503, 530, 550)
        # The relay itself (127.0.0.1) still delivers without AUTH: mail is not refused wholesale.
        with smtplib.SMTP("127.0.0.1", port, source_address=("127.0.0.1", 0)) as relay:
            relay.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"], make_mail(message_id="<ok@x>"))
        rows = wait_records(config, 1)
        time.sleep(1.0)  # anything the refused client sent would have been archived by now
        assert len(search(config)) == len(rows) == 1
    finally:
        running.stop()
    assert captures(archive_dir) == [("jdoe", "relay:127.0.0.1", "dkim=none; arc=none")]


# -- an AUTH user files only for its own custodians ------------------------------------------------


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_auth_user_cannot_file_for_another_custodian(archive_dir: Path, users: Path) -> None:
    two_custodians(archive_dir, jdoe_users=["jdoe"])
    config, port = configure(archive_dir, relay_networks=[], auth_file=str(users), allow_plaintext_auth=True)
    running = DaemonThread(config).start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.login("jdoe", PASSWORD)
            # Someone else's plus-address: refused for that recipient, the session goes on.
            client.mail("alex.smith@gmail.com")
            code, reply = client.rcpt("records+asmith@agency.example")
            assert (code, reply[:5]) == (550, b"5.7.1")
            client.rset()
            # The shared address with a message that names only asmith: never routed by content.
            client.sendmail("alex.smith@gmail.com", ["records@agency.example"],
                            make_mail(sender="Alex Smith <alex.smith@gmail.com>", date=NOW.replace(year=2020),
                                      message_id="<chosen-date@x>"))
            # A mixed envelope: the bound recipient is taken, the other refused, nothing spooled for it.
            refused = client.sendmail("jane.doe@gmail.com",
                                      ["records+jdoe@agency.example", "records+asmith@agency.example"],
                                      make_mail(message_id="<mixed@x>"))
            assert refused == {"records+asmith@agency.example": (550, refused["records+asmith@agency.example"][1])}
        rows = wait_records(config, 2)
        time.sleep(0.5)
        rows = search(config)
    finally:
        running.stop()
    assert {r["custodian"] for r in rows} == {"jdoe"}
    assert len(rows) == 2
    assert {c[0] for c in captures(archive_dir)} == {"jdoe"}
    assert {c[1] for c in captures(archive_dir)} == {"auth:jdoe"}


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_an_auth_user_bound_to_no_custodian_files_nothing(archive_dir: Path, users: Path) -> None:
    two_custodians(archive_dir, jdoe_users=[])
    config, port = configure(archive_dir, relay_networks=[], auth_file=str(users), allow_plaintext_auth=True)
    running = DaemonThread(config).start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.login("jdoe", PASSWORD)
            with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
                client.sendmail("jane.doe@gmail.com", ["records@agency.example", "records+jdoe@agency.example"],
                                make_mail())
        assert {code for code, _ in refused.value.recipients.values()} == {550}
    finally:
        running.stop()
    assert captures(archive_dir) == []


# -- every capture says who delivered it ---------------------------------------------------------


def test_a_capture_records_its_deliverer_and_verify_holds_it(archive_dir: Path, users: Path) -> None:
    two_custodians(archive_dir, jdoe_users=["jdoe"])
    config, port = configure(archive_dir, auth_file=str(users), allow_plaintext_auth=True)
    running = DaemonThread(config).start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as relay:  # loopback: a relay network by default
            relay.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail(message_id="<r@x>"))
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.login("jdoe", PASSWORD)
            client.sendmail("jane.doe@gmail.com", ["records@agency.example"], make_mail(message_id="<a@x>"))
        rows = wait_records(config, 2)
    finally:
        running.stop()
    assert sorted(c[1] or "" for c in captures(archive_dir)) == ["auth:jdoe", "relay:127.0.0.1"]
    assert all("origin_unauthenticated" in r["flags"] for r in rows)  # type: ignore[operator]
    record = rows[0]["id"]
    shown = CliRunner().invoke(cli, ["--config", str(config), "show", str(record), "--json", "--purpose", "test",
                                     "--identity", str(archive_dir / "officer.key")])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["origin"]["delivered_by"] in {"auth:jdoe", "relay:127.0.0.1"}
    assert CliRunner().invoke(cli, ["--config", str(config), "verify"]).exit_code == 0
    # The deliverer is committed to: changing it in the index is named by verify.
    with sqlite3.connect(archive_dir / "data" / "index.db") as conn:
        conn.execute("UPDATE capture SET delivered_by = 'auth:someone-else' WHERE delivered_by = 'auth:jdoe'")
    result = CliRunner().invoke(cli, ["--config", str(config), "verify"])
    assert result.exit_code == 5, result.output


# -- the authentication results of the forward -----------------------------------------------------


class Keys:
    """A signing key for gmail.example and the DNS that publishes it (a dict)."""

    def __init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                         serialization.NoEncryption())
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        self.dns = {"sel._domainkey.gmail.example": b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)}
        self.lookups: list[str] = []

    def resolve(self, name: bytes, timeout: int = 5) -> bytes | None:
        text = name.decode().rstrip(".").lower()
        self.lookups.append(text)
        return self.dns.get(text)

    def sign(self, message: bytes, domain: bytes = b"gmail.example") -> bytes:
        return dkim.sign(message, b"sel", domain, self.private,
                         include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + message


@pytest.fixture
def dns() -> Iterator[Keys]:
    keys = Keys()
    origin.use_resolver(keys.resolve)
    yield keys
    origin.use_resolver(None)


def forward(raw: bytes, message_id: str, delivered_by: str = "relay:127.0.0.1") -> Item:
    return Item(name=f"{message_id}.eml", channel="smtp", received_at=NOW, data=raw, custodian_id="jdoe",
                envelope={"delivered_by": delivered_by, "peer": delivered_by.partition(":")[2]})


def archived(archive: Archive, item: Item) -> tuple[str, list[str]]:
    outcome = process(archive, item)
    assert outcome.state == "ingested", outcome.detail
    origin_auth = archive.conn.execute("SELECT origin_auth FROM capture WHERE id = ?",
                                       (outcome.capture_id,)).fetchone()[0]
    flags = archive.conn.execute("SELECT flags FROM record WHERE capture_id = ?", (outcome.capture_id,)).fetchone()[0]
    return origin_auth, json.loads(flags)


def test_dkim_signed_tampered_and_unsigned_forwards(archive: Archive, dns: Keys) -> None:
    mail = make_mail(sender="Jane Doe <jane.doe@gmail.example>", message_id="<signed@x>")
    signed = dns.sign(mail)
    assert archived(archive, forward(signed, "signed")) == (
        "dkim=pass header.d=gmail.example (aligned with From); arc=none", [])
    tampered = dns.sign(make_mail(sender="Jane Doe <jane.doe@gmail.example>", message_id="<t@x>")).replace(
        b"pelican schedule", b"penguin schedule")
    assert archived(archive, forward(tampered, "tampered")) == (
        "dkim=fail header.d=gmail.example; arc=none", ["origin_unauthenticated"])
    unsigned = make_mail(sender="Jane Doe <jane.doe@gmail.example>", message_id="<u@x>")
    assert archived(archive, forward(unsigned, "unsigned")) == ("dkim=none; arc=none", ["origin_unauthenticated"])
    # Signed by a domain of the sender's own choosing: a valid signature, not the From's domain.
    other = Keys()
    dns.dns["sel._domainkey.mailer.example"] = other.dns["sel._domainkey.gmail.example"]
    own_domain = other.sign(make_mail(sender="Jane Doe <jane.doe@gmail.example>", message_id="<o@x>"),
                            domain=b"mailer.example")
    assert archived(archive, forward(own_domain, "own")) == (
        "dkim=pass header.d=mailer.example (not aligned with From); arc=none", ["origin_unauthenticated"])
    # A forged ARC set (a seal that does not verify) is a failed chain, not a pass.
    arc = (b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=gmail.example; s=sel; t=1; b=AAAA\n"
           b"ARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed; d=gmail.example; s=sel; h=from; "
           b"bh=AAAA; b=AAAA\nARC-Authentication-Results: i=1; gmail.example; dkim=pass\n")
    assert archived(archive, forward(arc + make_mail(sender="jane.doe@gmail.example", message_id="<arc@x>"), "arc")) \
        == ("dkim=none; arc=fail", ["origin_unauthenticated"])
    assert "sel._domainkey.gmail.example" in dns.lookups  # the key came from the (dict) DNS
    result = CliRunner().invoke(cli, ["--config", str(archive.config.path), "verify"])
    assert result.exit_code == 0, result.output


def test_a_forged_authentication_results_below_the_trusted_one_is_ignored(archive_dir: Path, dns: Keys) -> None:
    path = archive_dir / "twentyday.toml"
    path.write_text(path.read_text().replace("[smtp]\n", '[smtp]\ntrusted_authserv_id = "mx.agency.example"\n'))
    with Archive(config_module.load(path)) as archive:
        def results(*headers: str) -> bytes:
            return "".join(f"Authentication-Results: {h}\n" for h in headers).encode()

        mail = make_mail(sender="Jane Doe <jane.doe@gmail.example>", message_id="<ar1@x>")
        trusted = results("mx.agency.example; dkim=fail (bad signature) header.d=gmail.example; dmarc=fail",
                          "mx.agency.example; dkim=pass header.d=gmail.example; dmarc=pass header.from=gmail.example")
        assert archived(archive, forward(trusted + mail, "ar1")) == (
            "mx.agency.example: dkim=fail header.d=gmail.example; dmarc=fail", ["origin_unauthenticated"])
        # Another authserv-id on top is not the trusted MTA's, whatever it says.
        mail = make_mail(sender="Jane Doe <jane.doe@gmail.example>", message_id="<ar2@x>")
        forged = results("evil.example; dkim=pass header.d=gmail.example; dmarc=pass",
                         "mx.agency.example; dkim=pass header.d=gmail.example; dmarc=pass header.from=gmail.example")
        assert archived(archive, forward(forged + mail, "ar2")) == (
            "mx.agency.example: dkim=pass header.d=gmail.example; dmarc=pass header.from=gmail.example", [])
        # Mail an AUTH user submitted did not pass the trusted MTA: its header is the user's to write.
        mail = make_mail(sender="Jane Doe <jane.doe@gmail.example>", message_id="<ar3@x>")
        assert archived(archive, forward(forged + mail, "ar3", delivered_by="auth:jdoe")) == (
            "dkim=none; arc=none", ["origin_unauthenticated"])
