"""Item 8 of issue 12: like OpenSSH's StrictModes, refuse what someone else could change or read.

The attacker is another local user. With the config, the officer's public key and the
daemon's secrets at 0666 in 0777 folders, whoever writes the ``.pub`` reads every future
capture. Each refusal must be one line that names the file and the command that fixes it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from twentyday import config as config_module
from twentyday.crypto import keys, secrets
from twentyday.errors import ConfigError, KeyMaterialError
from twentyday.permissions import require_secret, require_trusted

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")


def twentyday(*args: str, umask: int | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twentyday", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def without_smtp(config: Path) -> None:
    """What is checked here is the same with or without the forwarding address; its port is not free."""
    config.write_text(config.read_text().replace("[smtp]\n", "[smtp]\nenabled = false\n"))


def serve_starts(config: Path) -> subprocess.CompletedProcess[str] | None:
    """Run ``serve``: None once it is up (then stopped), else the refusal it exited with."""
    process = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                               stderr=subprocess.PIPE, text=True, env=ENV)
    assert process.stderr is not None
    lines = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "ledger head" in line:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=15) == 0
            return None
    code = process.wait(timeout=15)
    return subprocess.CompletedProcess(process.args, code, "", "".join(lines) + process.stderr.read())


@pytest.fixture
def made(tmp_path: Path) -> Path:
    assert twentyday("init", "--no-passphrase", str(tmp_path / "a")).returncode == 0
    without_smtp(tmp_path / "a" / "twentyday.toml")
    return tmp_path / "a"


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_the_0666_in_0777_setup_is_refused_and_each_line_says_what_to_run(made: Path) -> None:
    data = made / "data"
    secret_files = [data / "secrets" / secrets.INDEX_KEY_FILE, data / "secrets" / secrets.SIGNING_KEY_FILE]
    for folder in (made, data, data / "secrets"):
        folder.chmod(0o777)
    for file in (made / "twentyday.toml", made / "officer.key.pub", *secret_files):
        file.chmod(0o666)
    config = made / "twentyday.toml"

    refused: list[str] = []
    for _ in range(10):
        result = serve_starts(config)
        if result is None:
            break
        line = one_line(result)
        assert result.returncode in (ConfigError.exit_code, KeyMaterialError.exit_code), line
        fix = re.search(r"; run: (.+)$", line)
        assert fix, line
        refused.append(line)
        # The administrator runs exactly what the line says, and tries again.
        subprocess.run(fix.group(1), shell=True, check=True)
    else:
        pytest.fail("serve never started: " + " | ".join(refused))

    assert refused, "serve ran silently with a world-writable config, public key and secrets"
    assert refused[0].startswith(f"twentyday: {config}: ")
    assert f"chmod go-w {config} {made}" in refused[0]
    assert any(f"{made / 'officer.key.pub'}: " in line and "chmod go-w" in line for line in refused)
    assert any(f"{secret_files[0]}: " in line and f"chmod go-rwx {secret_files[0]}" in line for line in refused)
    # After the fixes: nothing group- or world-writable left, no secret readable by others.
    for file in (config, made / "officer.key.pub", made, data, data / "secrets"):
        assert not file.stat().st_mode & 0o022, file
    for file in secret_files:
        assert not file.stat().st_mode & 0o077, file


def test_a_secret_readable_by_others_is_refused(made: Path) -> None:
    index_key = made / "data" / "secrets" / secrets.INDEX_KEY_FILE
    index_key.chmod(0o644)
    result = twentyday("--config", str(made / "twentyday.toml"), "search")
    assert result.returncode == KeyMaterialError.exit_code
    line = one_line(result)
    assert line == (f"twentyday: {index_key}: unsafe permissions on a daemon secret: group or others may read or "
                    f"write it (mode 0644); run: chmod go-rwx {index_key}")


def test_a_writable_public_key_named_in_the_config_is_refused(made: Path) -> None:
    public = made / "officer.key.pub"
    public.chmod(0o664)  # group-writable is enough: the group is not the daemon
    result = serve_starts(made / "twentyday.toml")
    assert result is not None, "serve sealed to a public key others can replace"
    assert result.returncode == KeyMaterialError.exit_code
    assert one_line(result).endswith(f"; run: chmod go-w {public}")


def test_a_writable_folder_above_the_public_key_is_refused(tmp_path: Path, made: Path) -> None:
    keys_folder = tmp_path / "shared" / "keys"
    keys_folder.mkdir(parents=True)
    shutil.move(made / "officer.key.pub", keys_folder / "officer.key.pub")
    config = made / "twentyday.toml"
    config.write_text(config.read_text().replace('"officer.key.pub"', f'"{keys_folder / "officer.key.pub"}"'))
    (tmp_path / "shared").chmod(0o777)  # whoever can write here can swap the keys folder itself
    with pytest.raises(KeyMaterialError, match=rf"its folder {tmp_path / 'shared'} is writable .*"
                                               rf"run: chmod go-w {tmp_path / 'shared'}$"):
        keys.load_recipient(config_module.load(config).recipients[0])


def test_a_writable_config_and_auth_file_are_refused(made: Path) -> None:
    config = made / "twentyday.toml"
    auth = made / "smtp-users"
    config.write_text(config.read_text().replace("[smtp]\n", '[smtp]\nauth_file = "smtp-users"\n'))
    password = made / "password"
    password.write_text("a long enough password\n")
    added = twentyday("--config", str(config), "smtp-user", "jdoe", "--password-file", str(password))
    assert added.returncode == 0, added.stderr
    config_module.load(config)  # what smtp-user wrote passes
    auth.chmod(0o646)
    with pytest.raises(ConfigError, match=rf"^{auth}: unsafe permissions on smtp.auth_file: .*chmod go-w {auth}$"):
        config_module.load(config)
    auth.chmod(0o600)
    config.chmod(0o620)
    result = twentyday("--config", str(config), "search")
    assert result.returncode == ConfigError.exit_code
    assert one_line(result).endswith(f"; run: chmod go-w {config}")


def test_an_identity_readable_by_others_is_refused(made: Path) -> None:
    identity = made / "officer.key"
    keys.load_identity(identity, None)
    identity.chmod(0o640)
    with pytest.raises(KeyMaterialError, match=rf"run: chmod go-rwx {identity}$"):
        keys.load_identity(identity, None)


@as_root
def test_a_file_or_folder_owned_by_another_user_is_refused(made: Path) -> None:
    public = made / "officer.key.pub"
    os.chown(public, 65534, -1)  # nobody: 0644 still, but nobody can rewrite it
    with pytest.raises(KeyMaterialError, match=rf"owned by nobody, not root or root; run: chown root {public}$"):
        keys.load_recipient(public)
    os.chown(public, 0, -1)
    os.chown(made, 65534, -1)  # nobody may rename the public key away and put another there
    with pytest.raises(KeyMaterialError, match=rf"its folder {made} is owned by nobody; run: chown root {made}$"):
        keys.load_recipient(public)


@pytest.fixture
def under_tmp() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(dir="/tmp"))
    yield folder
    shutil.rmtree(folder)


def test_a_sticky_root_owned_folder_like_tmp_is_accepted_another_writable_one_is_not(under_tmp: Path) -> None:
    assert Path("/tmp").stat().st_mode & 0o1777 == 0o1777
    file = under_tmp / "officer.pub"
    file.write_text("x")
    file.chmod(0o644)
    require_trusted(file, "a public key", KeyMaterialError)  # /tmp is 1777 and root's
    under_tmp.chmod(0o1777)
    if os.geteuid() == 0:
        require_trusted(file, "a public key", KeyMaterialError)  # sticky and root's, like /tmp
        os.chown(under_tmp, 65534, -1)
        with pytest.raises(KeyMaterialError, match="owned by nobody"):
            require_trusted(file, "a public key", KeyMaterialError)
        os.chown(under_tmp, 0, -1)
    under_tmp.chmod(0o777)  # writable by others and not sticky: anyone can swap the file
    with pytest.raises(KeyMaterialError, match=rf"\(mode 0777\); run: chmod go-w {under_tmp}$"):
        require_trusted(file, "a public key", KeyMaterialError)
    under_tmp.chmod(0o700)
    file.chmod(0o604)  # a secret others can read, in a safe folder
    with pytest.raises(KeyMaterialError, match=rf"\(mode 0604\); run: chmod go-rwx {file}$"):
        require_secret(file, "a secret", KeyMaterialError)


def test_what_init_create_and_keys_generate_write_passes_whatever_the_umask(tmp_path: Path) -> None:
    # A permissive umask (group-writable by default) must not make init write what it then refuses.
    made = twentyday("init", "--no-passphrase", "--demo", str(tmp_path / "a"), umask=0o002)
    assert made.returncode == 0, made.stderr
    without_smtp(tmp_path / "a" / "twentyday.toml")
    assert serve_starts(tmp_path / "a" / "twentyday.toml") is None
    generated = twentyday("keys", "generate", "--no-passphrase", str(tmp_path / "spare.key"), umask=0o002)
    assert generated.returncode == 0, generated.stderr
    assert oct((tmp_path / "spare.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "spare.key.pub").stat().st_mode & 0o777) == "0o644"
    keys.load_identity(tmp_path / "spare.key", None)
    keys.load_recipient(tmp_path / "spare.key.pub")
    config = tmp_path / "b.toml"
    config.write_text('data_dir = "var"\n[keys]\nrecipients = ["spare.key.pub"]\n')
    created = twentyday("--config", str(config), "create", umask=0o002)
    assert created.returncode == 0, created.stderr
    secrets.load(tmp_path / "var")
    assert oct((tmp_path / "var" / "secrets").stat().st_mode & 0o777) == "0o700"
    assert oct((tmp_path / "var" / "secrets" / secrets.VERIFY_KEY_FILE).stat().st_mode & 0o777) == "0o644"


@as_root
def test_the_verify_user_trusts_the_verification_key_the_daemons_user_owns(made: Path) -> None:
    # Deployed, the archive is the daemon user's and verify runs as another user; only
    # the ledger's public key is read, and its owner may be the one who owns the archive.
    data = made / "data"
    public = data / "secrets" / secrets.VERIFY_KEY_FILE
    for path in (data, data / "secrets", public):
        os.chown(path, NOBODY, -1)
    secrets.load_verify_key(data)
    public.chmod(0o664)
    with pytest.raises(KeyMaterialError, match=rf"run: chmod go-w {public}$"):
        secrets.load_verify_key(data)
