"""Who may deliver to the forwarding address, and for which custodian (the rules, without a socket)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_config import _write
from twentyday import config as config_module
from twentyday.config import load
from twentyday.errors import ConfigError
from twentyday.intake.smtp import Intake, Route, in_relay_networks

TWO_CUSTODIANS = """
[[custodians]]
id = "jdoe"
name = "Jane Doe"
personal = ["jane.doe@gmail.com"]
smtp_users = ["assistant"]

[[custodians]]
id = "asmith"
name = "Alex Smith"
personal = ["alex.smith@gmail.com"]
smtp_users = ["assistant", "asmith"]
"""


def intake(tmp_path: Path, smtp: str = "") -> Intake:
    path = _write(tmp_path, f'[smtp]\naddresses = ["records@agency.example"]\n{smtp}\n{TWO_CUSTODIANS}')
    return Intake(config_module.load(path), spool=None, on_item=lambda: None)  # type: ignore[arg-type]


def test_relay_networks_default_to_loopback_and_match_mapped_addresses(tmp_path: Path) -> None:
    smtp = intake(tmp_path).config.smtp
    assert in_relay_networks(smtp, "127.0.0.2") and in_relay_networks(smtp, "::1")
    assert in_relay_networks(smtp, "::ffff:127.0.0.1")  # a dual-stack socket's view of IPv4 loopback
    assert not in_relay_networks(smtp, "10.1.2.3") and not in_relay_networks(smtp, "not an address")
    assert not in_relay_networks(intake(tmp_path, "relay_networks = []").config.smtp, "127.0.0.1")


def test_an_auth_user_files_only_for_its_custodians(tmp_path: Path) -> None:
    handler = intake(tmp_path)
    assert handler.custodian_for_user("asmith", Route(""), "") == "asmith"  # its one custodian
    assert handler.custodian_for_user("asmith", Route("jdoe"), "jane.doe@gmail.com") is None
    # Bound to two: the shared address needs the envelope sender to say which.
    assert handler.custodian_for_user("assistant", Route(""), "jane.doe@gmail.com") == "jdoe"
    assert handler.custodian_for_user("assistant", Route(""), "someone@else.example") is None
    assert handler.custodian_for_user("assistant", Route("asmith"), "") == "asmith"
    assert handler.custodian_for_user("nobody", Route(""), "jane.doe@gmail.com") is None


@pytest.mark.parametrize(("smtp", "key"), [
    ('relay_networks = ["10.0.0.1/8"]', "smtp.relay_networks"),  # host bits set: a typo, not a network
    ('relay_networks = ["localhost"]', "smtp.relay_networks"),
    ('dkim = "strict"', "smtp.dkim"),
    ('trusted_authserv_id = "mx; dkim=pass"', "smtp.trusted_authserv_id"),
])
def test_origin_settings_are_checked(tmp_path: Path, smtp: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(_write(tmp_path, f"[smtp]\n{smtp}\n"))


def test_smtp_users_are_checked(tmp_path: Path) -> None:
    text = '[[custodians]]\nid = "jdoe"\nname = "Jane Doe"\nsmtp_users = ["a:b"]\n'
    with pytest.raises(ConfigError, match=r"custodians\[0\]\.smtp_users"):
        load(_write(tmp_path, text))
