"""An archive with the autumn scenario (chats with a deletion, mails) and the tools a recipient has."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tests.scenario import autumn
from twentyday import config as config_module
from twentyday.cli import cli
from twentyday.store.archive import Archive

PASSPHRASE = "correct horse battery staple"


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: the export tests open exports with the recipient's own tools "
                    "(apt-get install -y 7zip age; .ci/run does it in CI)")
    return found


class Officer:
    """The CLI as the records officer runs it, on one archive."""

    def __init__(self, archive_dir: Path, tmp_path: Path) -> None:
        self.dir = archive_dir
        self.config = archive_dir / "twentyday.toml"
        self.identity = archive_dir / "officer.key"
        self.tmp = tmp_path
        self.zip_passphrase = tmp_path / "zip.pass"
        self.zip_passphrase.write_text(PASSPHRASE + "\n")
        self.zip_passphrase.chmod(0o600)

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(self.config), *args])

    def export(self, fmt: str, out: Path, *selection: str, encrypt: tuple[str, ...] | None = None,
               purpose: str = "FOIA request 2026-0042", recipient: str = "Office of Inspector General",
               address: str = "1 Example Plaza, Washington, DC 20001") -> Result:
        encryption = encrypt if encrypt is not None else ("--zip-passphrase-file", str(self.zip_passphrase))
        return self.run("export", "--format", fmt, "--identity", str(self.identity), "--purpose", purpose,
                        "--recipient", recipient, "--recipient-address", address, *encryption, *selection,
                        "--out", str(out))

    def audit(self) -> list[dict[str, Any]]:
        result = self.run("audit", "--json")
        assert result.exit_code == 0, result.output
        found: list[dict[str, Any]] = json.loads(result.output)
        return found

    def search(self, *args: str) -> list[dict[str, Any]]:
        result = self.run("search", "--json", *args)
        assert result.exit_code == 0, result.output
        found: list[dict[str, Any]] = json.loads(result.output)
        return found


def unzip(archive: Path, into: Path, passphrase: str = PASSPHRASE) -> Path:
    """Open an AES zip the way a recipient does: 7-Zip, with the passphrase they were given."""
    result = subprocess.run([tool("7zz"), "x", f"-p{passphrase}", f"-o{into}", "-y", str(archive)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return into


@pytest.fixture
def officer(archive_dir: Path, tmp_path: Path) -> Officer:
    opened = Archive(config_module.load(archive_dir / "twentyday.toml"))
    try:
        autumn(opened, tmp_path / "exports")
    finally:
        opened.close()
    return Officer(archive_dir, tmp_path)
