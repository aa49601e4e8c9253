"""The administrator's guide, followed: back up a running archive, lose the host, restore, prove it.

The backup and restore commands are the README's own (the blocks marked ``<!-- tested: ... -->``):
only their first line, which names the folders, is replaced by this test's. The host is laid out
as the guide lays it out (``etc/twentyday`` beside ``var/lib/twentyday``, the officer key
elsewhere), under a temporary root, with a real ``serve`` publishing its heads on stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import make_mail
from tests.smtp_helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
HEAD_LINE = re.compile(r"ledger head (\d+):[0-9a-f]{64}:\S+")


def readme_block(name: str) -> list[str]:
    """The lines of the README's shell block marked ``<!-- tested: name -->``."""
    readme = (ROOT / "README.md").read_text()
    match = re.search(rf"<!-- tested: {name} -->\n```sh\n(.*?)```", readme, re.S)
    assert match is not None, f"README has no block marked 'tested: {name}'"
    return match.group(1).splitlines()


def run_block(name: str, settings: dict[str, Path]) -> None:
    """Run a README block with its settings line (the first, ``var=value ...``) replaced."""
    lines = readme_block(name)
    assigned = re.findall(r"(\w+)=", lines[0])
    assert sorted(assigned) == sorted(settings), lines[0]  # the guide's variables are the ones set here
    script = " ".join(f"{key}={value}" for key, value in settings.items()) + "\n" + "\n".join(lines[1:])
    bindir = str(Path(sys.executable).parent)  # 'twentyday' as the guide runs it: the installed script
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PATH": bindir + os.pathsep + os.environ["PATH"]})
    assert result.returncode == 0, result.stdout + result.stderr


def twentyday(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "twentyday", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def install_host(root: Path, officer_pub: Path, port: int) -> Path:
    """The guide's layout under ``root``: the config root's, the archive the daemon's."""
    conf = root / "etc" / "twentyday"
    conf.mkdir(parents=True)
    shutil.copy(officer_pub, conf / "officer.key.pub")
    config = conf / "twentyday.toml"
    config.write_text(
        'data_dir = "../../var/lib/twentyday"\n'
        f'[smtp]\nlisten = "127.0.0.1:{port}"\naddresses = ["records@agency.example"]\ndkim = "off"\n'
        '[keys]\nrecipients = ["officer.key.pub"]\n'
        '[alerts]\nverify_every_hours = 0\n'
        '[alerts.journal]\nenabled = false\n'
        '[[custodians]]\nid = "jdoe"\nname = "Jane Doe"\ntimezone = "America/New_York"\n'
        'official = ["jane.doe@agency.example"]\npersonal = ["jane.doe@gmail.com"]\n')
    created = twentyday("--config", str(config), "create")
    assert created.returncode == 0, created.stderr
    return config


class Daemon:
    """``twentyday serve`` as a subprocess; its log (stderr) is what a journal would hold."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        self._stderr = log.open("w")
        self.process = subprocess.Popen([sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                                        stderr=self._stderr, stdout=subprocess.DEVNULL,
                                        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})

    def heads(self) -> list[int]:
        return [int(seq) for seq in HEAD_LINE.findall(self.log.read_text())]

    def wait_for_head_past(self, seq: int) -> int:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            newer = [s for s in self.heads() if s > seq]
            if newer:
                return max(newer)
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"no ledger head past {seq} published:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(60) == 0
        self._stderr.close()


def send(port: int, message_id: str, body: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("jane.doe@gmail.com", ["records+jdoe@agency.example"],
                                make_mail(message_id=message_id, body=body))
            return
        except (ConnectionRefusedError, smtplib.SMTPServerDisconnected):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def record_ids(config: Path) -> set[str]:
    import json

    found = twentyday("--config", str(config), "search", "--json")
    assert found.returncode == 0, found.stderr
    return {str(row["id"]) for row in json.loads(found.stdout)}


def test_a_backup_made_by_the_guide_restores_and_verifies_against_the_heads_published_before(
        tmp_path: Path) -> None:
    # The officer's machine: the private key never goes near the host.
    officer = tmp_path / "officer" / "officer.key"
    officer.parent.mkdir(mode=0o700)
    assert twentyday("keys", "generate", "--no-passphrase", str(officer)).returncode == 0
    port = free_port()
    config = install_host(tmp_path / "host", officer.with_name("officer.key.pub"), port)

    # Records from before the backup: one ingested by hand, one through the forwarding address.
    early_mail = tmp_path / "early.eml"
    early_mail.write_bytes(make_mail(message_id="<early@backup.test>", body="Kestrel budget figures before"))
    ingested = twentyday("--config", str(config), "ingest", "--custodian", "jdoe", str(early_mail))
    assert ingested.returncode == 0, ingested.stderr
    daemon = Daemon(config, tmp_path / "serve.log")
    start_head = daemon.wait_for_head_past(0)
    send(port, "<mailed@backup.test>", "Heron schedule mailed before the backup")
    before_backup = daemon.wait_for_head_past(start_head)
    records_before = record_ids(config)
    assert len(records_before) == 2
    published_before = tmp_path / "published-heads.txt"
    published_before.write_text(daemon.log.read_text())

    # The guide's backup, while the daemon runs.
    backup = tmp_path / "backups" / "20261122T120000Z"
    backup.parent.mkdir()
    run_block("backup", {"conf": config.parent, "dest": backup})
    assert int((backup / "HEAD").read_text().split(":")[0]) >= before_backup
    # No officer private key in it: the backup alone opens nothing.
    assert sorted(p.name for p in (backup / "etc").iterdir()) == ["officer.key.pub", "twentyday.toml"]

    # Mail after the backup: published by the daemon, then lost with the host.
    send(port, "<after@backup.test>", "Osprey notes after the backup")
    after_backup = daemon.wait_for_head_past(before_backup)
    daemon.stop()
    shutil.rmtree(tmp_path / "host")

    # The guide's restore onto a fresh host.
    fresh = tmp_path / "fresh"
    run_block("restore", {"src": backup, "data": fresh / "var" / "lib" / "twentyday",
                          "conf": fresh / "etc" / "twentyday"})
    restored = fresh / "etc" / "twentyday" / "twentyday.toml"

    proved = twentyday("--config", str(restored), "verify", "--head", str(published_before))
    assert proved.returncode == 0, proved.stdout + proved.stderr
    heads_found = int(re.search(r"(\d+) published head\(s\) found", proved.stdout).group(1))  # type: ignore[union-attr]
    assert heads_found == len(HEAD_LINE.findall(published_before.read_text())) >= 2

    # The head published after the backup is not in the restore, and verify says so.
    everything = twentyday("--config", str(restored), "verify", "--head", str(daemon.log))
    assert everything.returncode == 5, everything.stdout
    assert f"{after_backup}:" in everything.stdout

    # Every record from before the backup is there, and opens with the officer's key.
    assert record_ids(restored) == records_before
    for record_id in records_before:
        shown = twentyday("--config", str(restored), "show", record_id, "--identity", str(officer),
                          "--purpose", "restore test")
        assert shown.returncode == 0, shown.stderr
        assert "Kestrel budget figures before" in shown.stdout or "Heron schedule mailed" in shown.stdout
    # The disclosures are themselves ledgered and verify: the restored archive goes on working.
    assert twentyday("--config", str(restored), "verify", "--head", str(published_before)).returncode == 0

    # A restored copy that was altered fails.
    with sqlite3.connect(fresh / "var" / "lib" / "twentyday" / "index.db") as conn:
        conn.execute("UPDATE record SET sender = 'someone.else@example.test' WHERE id = ?", (min(records_before),))
    conn.close()
    tampered = twentyday("--config", str(restored), "verify", "--head", str(published_before))
    assert tampered.returncode == 5, tampered.stdout
    assert min(records_before) in tampered.stdout


def test_backup_refuses_an_existing_folder_and_names_it(tmp_path: Path) -> None:
    officer = tmp_path / "officer.key"
    assert twentyday("keys", "generate", "--no-passphrase", str(officer)).returncode == 0
    config = install_host(tmp_path / "host", officer.with_name("officer.key.pub"), free_port())
    (tmp_path / "taken").mkdir()
    result = twentyday("--config", str(config), "backup", str(tmp_path / "taken"))
    assert result.returncode == 2
    assert result.stderr.strip() == (f"twentyday: {tmp_path / 'taken'}: already exists; "
                                     "a backup is written into a new folder")
    assert list((tmp_path / "taken").iterdir()) == []
