from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from twentyday.config import SETTINGS, load
from twentyday.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "twentyday.example.toml"


def _keys(table: dict[str, object], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found |= _keys(value, f"{name}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for entry in value:
                found |= _keys(entry, f"{name}.")
        else:
            found.add(name)
    return found


def test_example_documents_exactly_the_settings_table() -> None:
    example = tomllib.loads(EXAMPLE.read_text())
    assert _keys(example) == {s.name for s in SETTINGS}


def test_every_example_key_has_a_comment_above_it() -> None:
    lines = EXAMPLE.read_text().splitlines()
    for n, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[n - 1].startswith("#"), f"undocumented key on line {n + 1}: {line}"


def test_example_loads(tmp_path: Path) -> None:
    config = load(EXAMPLE)
    assert config.custodian("jdoe") is not None
    assert config.custodian("jdoe").day_first is False  # type: ignore[union-attr]
    assert config.schedule("agency-n1-123-45-1").retain_years == 10


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text + '\n[keys]\nrecipients = ["officer.pub"]\n')
    return path


def test_unknown_key_is_named_with_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[smtp]\nlisten_on = '127.0.0.1:25'\n")
    with pytest.raises(ConfigError, match=r"t\.toml: smtp\.listen_on: unknown key"):
        load(path)


def test_bad_time_zone_names_the_custodian_entry(tmp_path: Path) -> None:
    custodians = "".join(
        f'[[custodians]]\nid = "c{n}"\nname = "C {n}"\ntimezone = "{tz}"\n'
        for n, tz in enumerate(["UTC", "Europe/Paris", "America/New_Yrok"])
    )
    with pytest.raises(ConfigError, match=r"custodians\[2\]\.timezone: unknown time zone 'America/New_Yrok'"):
        load(_write(tmp_path, custodians))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('deadline_rule = "business"\n', "deadline_rule: must be 'calendar' or 'elapsed'"),
        ("deadline_days = true\n", "deadline_days: expected an integer"),
        ('[[custodians]]\nid = "Jane Doe"\nname = "x"\n', r"custodians\[0\]\.id: invalid id"),
        ('[[custodians]]\nid = "a"\nname = "x"\nschedule = "nope"\n', r"custodians\[0\]\.schedule: unknown schedule"),
        ('[[custodians]]\nid = "a"\nname = "x"\n[[custodians]]\nid = "a"\nname = "y"\n', "duplicate id"),
        ('[[custodians]]\nid = "a"\nname = "Jane\\u0000Doe"\n', r"custodians\[0\]\.name: a name cannot hold .*U\+0000"),
        ('[smtp]\nlisten = "localhost"\n', "smtp.listen: expected host:port"),
        ("[smtp]\nspool_to_disk_bytes = 4096\n", "smtp.spool_to_disk_bytes: must be at least 65536"),
    ],
)
def test_invalid_values_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(_write(tmp_path, text))


def test_missing_recipients_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("deadline_days = 20\n")
    with pytest.raises(ConfigError, match=r"keys\.recipients: required key is missing"):
        load(path)


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    config = load(_write(tmp_path, 'data_dir = "data"\n'))
    assert config.data_dir == (tmp_path / "data").resolve()
    assert config.folder_path == config.data_dir / "inbox"
    assert config.recipients == ((tmp_path / "officer.pub").resolve(),)


def test_a_secret_may_be_a_systemd_credential(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """LoadCredential=smtp-tls-key:/etc/ssl/private/mx.key puts a copy in $CREDENTIALS_DIRECTORY."""
    text = ('[smtp]\ntls_cert = "credential:smtp-tls-cert"\ntls_key = "credential:smtp-tls-key"\n'
            '[alerts.webhook]\nurl = "https://hooks.agency.example/x"\nsecret_file = "credential:webhook-secret"\n')
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "creds"))
    config = load(_write(tmp_path, text))
    assert config.smtp.tls_key == tmp_path / "creds" / "smtp-tls-key"
    assert config.smtp.tls_cert == tmp_path / "creds" / "smtp-tls-cert"
    assert config.delivery.webhook is not None
    assert config.delivery.webhook.secret_file == tmp_path / "creds" / "webhook-secret"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")  # serve started by hand: systemd's place, where nothing is
    assert load(_write(tmp_path, text)).smtp.tls_key == Path("/run/credentials/twentyday.service/smtp-tls-key")


def test_a_credential_name_is_a_plain_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"smtp\.tls_key: expected credential:NAME"):
        load(_write(tmp_path, '[smtp]\ntls_cert = "a.crt"\ntls_key = "credential:../etc/shadow"\n'))
