"""The command line as people run it: real processes, real signals, the README's commands."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from twentyday import errors
from twentyday.cli import Cli, cli
from twentyday.crypto import keys

ROOT = Path(__file__).resolve().parents[2]


def twentyday(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twentyday", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_init_demo_then_search_shows_all_three_statuses(tmp_path: Path) -> None:
    made = twentyday("init", "--no-passphrase", "--demo", str(tmp_path / "demo"))
    assert made.returncode == 0, made.stderr
    assert "UNPROTECTED" in made.stdout
    assert "NOT in the daemon's data" in made.stdout
    found = twentyday("--config", str(tmp_path / "demo" / "twentyday.toml"), "search")
    statuses = sorted(re.findall(r"\b(copied|on_time|late)\b", found.stdout))
    assert statuses == ["copied", "late", "on_time"]
    # The identity is beside the archive, not inside the daemon's data directory.
    assert (tmp_path / "demo" / "officer.key").exists()
    assert not list((tmp_path / "demo" / "data").rglob("officer.key"))


def test_nothing_of_a_new_archive_is_open_to_other_local_users(tmp_path: Path) -> None:
    # The inbox holds exports in clear until the daemon seals them.
    assert twentyday("init", "--no-passphrase", str(tmp_path / "demo")).returncode == 0
    made = [tmp_path / "demo", tmp_path / "demo" / "inbox", tmp_path / "demo" / "inbox" / "jdoe",
            tmp_path / "demo" / "data"]
    assert {path.name: oct(path.stat().st_mode & 0o777) for path in made} == {
        path.name: "0o700" for path in made}
    generated = twentyday("keys", "generate", "--no-passphrase", str(tmp_path / "spare.key"))
    assert generated.returncode == 0 and "UNPROTECTED" in generated.stdout


def test_serve_refuses_a_private_key_in_the_config(tmp_path: Path) -> None:
    assert twentyday("init", "--no-passphrase", str(tmp_path / "a")).returncode == 0
    config = tmp_path / "a" / "twentyday.toml"
    config.write_text(config.read_text().replace("officer.key.pub", "officer.key"))
    result = twentyday("--config", str(config), "serve", timeout=30)
    assert result.returncode == 3
    assert "private key" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_runs_until_sigterm_and_logs_the_ledger_head(tmp_path: Path) -> None:
    assert twentyday("init", "--no-passphrase", "--demo", str(tmp_path / "a")).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "twentyday", "--config", str(tmp_path / "a" / "twentyday.toml"), "serve"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "ledger head" in line:
            break
    # The signed head, as verify --head reads it: seq, hash, time and signature.
    assert re.search(r"ledger head \d+:[0-9a-f]{64}:\S+:[A-Za-z0-9+/]{86}==$", "".join(lines).rstrip("\n"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert "Traceback" not in process.stderr.read()


def test_missing_config_is_one_clear_line(tmp_path: Path) -> None:
    result = twentyday("--config", str(tmp_path / "nope.toml"), "search")
    assert result.returncode == 2
    assert result.stderr.strip() == f"twentyday: {tmp_path / 'nope.toml'}: no such configuration file"


def test_unknown_record_is_one_clear_line(tmp_path: Path) -> None:
    assert twentyday("init", "--no-passphrase", str(tmp_path / "a")).returncode == 0
    result = twentyday("--config", str(tmp_path / "a" / "twentyday.toml"), "show", "rec-nope", "--identity",
                       str(tmp_path / "a" / "officer.key"), "--purpose", "x")
    assert result.returncode == 7
    assert result.stderr.strip() == "twentyday: no record 'rec-nope'"


def test_every_command_is_in_the_readme_and_every_readme_command_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = set(cli.commands)
    mentioned = set(re.findall(r"(?:`|bin/)twentyday (?:--config \S+ )?([a-z][a-z-]+)", readme))
    assert mentioned == commands, (mentioned ^ commands)
    for name in ("generate", "fingerprint", "add-recipient", "list"):
        assert f"keys {name}" in readme


def test_help_texts_come_from_docstrings() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "Prove blobs, index and ledger agree" in result.output


def test_create_makes_the_archive_an_existing_config_describes(tmp_path: Path) -> None:
    from twentyday.crypto import keys

    keys.generate_identity(tmp_path / "officer.key", "officer", None)
    config = tmp_path / "twentyday.toml"
    config.write_text('data_dir = "var"\n[keys]\nrecipients = ["officer.key.pub"]\n'
                      '[[custodians]]\nid = "ana"\nname = "Ana"\n')
    made = twentyday("--config", str(config), "create")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "var" / "index.db").exists()
    assert (tmp_path / "var" / "inbox" / "ana").is_dir()
    assert twentyday("--config", str(config), "verify").returncode == 0
    again = twentyday("--config", str(config), "create")
    assert again.returncode == 2
    assert "already exists" in again.stderr


def error_classes(base: type[errors.TwentydayError] = errors.TwentydayError) -> list[type[errors.TwentydayError]]:
    return [base, *(c for sub in base.__subclasses__() for c in error_classes(sub))]


@pytest.mark.parametrize("error_class", error_classes(), ids=lambda c: c.__name__)
def test_a_command_exits_with_the_code_of_the_error_class_it_raised(error_class: type[errors.TwentydayError]) -> None:
    group = Cli(name="twentyday")

    @group.command()
    def fail() -> None:
        raise error_class("refused", **({"argument": "x"} if error_class is errors.InvalidArgument else {}))

    result = CliRunner().invoke(group, ["fail"])
    assert result.exit_code == error_class.exit_code
    assert result.output == "twentyday: refused\n"


def test_each_failing_command_exits_with_its_error_class_code(archive_dir: Path, tmp_path: Path) -> None:
    def run(*args: str) -> int:
        return CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args]).exit_code

    officer = str(archive_dir / "officer.key")
    keys.generate_identity(tmp_path / "stranger.key", "stranger", None)
    (tmp_path / "m.eml").write_bytes(make_mail())
    (tmp_path / "bad.eml").write_bytes(b"From: a@b.example\r\nTo: " + b"(" * 5000 + b")" * 5000 + b"\r\n\r\nx\r\n")
    assert run("ingest", str(tmp_path / "m.eml")) == 0
    [record] = re.findall(r"^(rec-\S+)", CliRunner().invoke(
        cli, ["--config", str(archive_dir / "twentyday.toml"), "search"]).output, re.M)
    assert CliRunner().invoke(cli, ["--config", str(tmp_path / "nope.toml"), "search"]).exit_code == \
        errors.ConfigError.exit_code
    assert run("show", record, "--identity", officer, "--purpose", " ") == errors.InvalidArgument.exit_code
    assert run("show", record, "--identity", str(tmp_path / "stranger.key"), "--purpose", "x") == \
        errors.KeyMaterialError.exit_code
    assert run("show", "rec-nope", "--identity", officer, "--purpose", "x") == errors.NotFoundError.exit_code
    assert run("ingest", str(tmp_path / "bad.eml")) == errors.ParseError.exit_code  # quarantined
    with sqlite3.connect(archive_dir / "data" / "index.db") as conn:
        conn.execute("DELETE FROM chunk WHERE rowid = (SELECT max(rowid) FROM chunk)")
    assert run("verify") == errors.IntegrityError.exit_code
