"""Issue 12, item 6: the officer's side needs the officer, not the daemon host.

``show`` runs as another account than the daemon, one that cannot read ``data/secrets/``
(the daemon's index and ledger keys), with a Python audit hook that reports every file
it opens there: it must open the record and record a disclosure that ``verify`` accepts.
Then the daemon host's owner attacks the accounting of disclosures with the daemon's own
ledger key in hand: a disclosure's purpose rewritten (row and ledger, the chain re-hashed
and every checkpoint re-signed), and a disclosure made up and signed by a key of their own.
``verify`` must name both.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import NOW, make_mail
from twentyday.canonical import canonical_json, iso
from twentyday.cli import cli
from twentyday.crypto import secrets
from twentyday.initialise import init_archive
from twentyday.store.ledger import GENESIS, checkpoint_message, entry_hash

PASSPHRASE = "correct horse battery staple"
#: An unprivileged account to run the officer's side as, when the tests run as root (who ignores modes).
OFFICER_UID = 65534

# Runs the CLI with an audit hook that reports every open of a path under the secrets folder.
AUDITED_CLI = """
import os, sys
secrets = os.path.realpath(sys.argv.pop(1))
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.path.realpath(os.fsdecode(args[0]))
        if path == secrets or path.startswith(secrets + os.sep):
            os.write(2, ("SECRETS-OPENED " + path + "\\n").encode())
sys.addaudithook(hook)
from twentyday.cli import main
sys.argv[0] = "twentyday"
main()
"""


@pytest.fixture
def archive_dir() -> Iterator[Path]:
    """An archive in a folder other accounts can reach (pytest's own tmp_path is root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="twentyday-officer-"))
    os.chmod(base, 0o755)
    (base / "pass").write_text(PASSPHRASE + "\n")
    init_archive(base / "arch", passphrase=PASSPHRASE.encode(), demo=False, now=NOW)
    yield base / "arch"
    shutil.rmtree(base)


def run(archive_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), *args])
    return result.exit_code, result.output


def ingest_one(archive_dir: Path) -> str:
    mail = archive_dir.parent / "m.eml"
    mail.write_bytes(make_mail(body="The officer may read this; the daemon host may not."))
    code, output = run(archive_dir, "ingest", "--custodian", "jdoe", str(mail))
    assert code == 0, output
    [found] = json.loads(run(archive_dir, "search", "--json")[1])
    return str(found["id"])


def show_args(archive_dir: Path, record_id: str, purpose: str) -> list[str]:
    return ["--config", str(archive_dir / "twentyday.toml"), "show", record_id, "--json",
            "--identity", str(archive_dir / "officer.key"),
            "--passphrase-file", str(archive_dir.parent / "pass"), "--purpose", purpose]


def source_path() -> list[str]:
    """Where twentyday and its dependencies are imported from (not the interpreter's own library)."""
    import cryptography

    import twentyday
    return [str(Path(twentyday.__file__).parents[1]), str(Path(cryptography.__file__).parents[1])]


def officer_python(env: dict[str, str]) -> str | None:
    """An interpreter the officer's account can run with this code (the test's own may sit under
    a home folder only root enters); None when there is none."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"  # the same ABI as the installed extensions
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        try:
            probe = subprocess.run([candidate, "-c", "import twentyday.cli"], capture_output=True, env=env,
                                   timeout=60, cwd="/", user=OFFICER_UID, group=OFFICER_UID, extra_groups=[])
        except OSError:
            continue  # not executable by that account
        if probe.returncode == 0:
            return candidate
    return None


def run_show_as_officer(archive_dir: Path, record_id: str) -> subprocess.CompletedProcess[str]:
    """``show`` as the officer's account, which cannot read secrets/; audited for any open there.

    As root (who ignores modes) it runs as an unprivileged account that owns everything but
    secrets/ (root's, 0700, and mode 000 for good measure); failing an interpreter that account
    can run, as root with secrets/ moved away. Not root: as this account, secrets/ at mode 000.
    """
    folder = secrets.secrets_dir(archive_dir / "data")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(archive_dir.parent),
           "PYTHONPATH": os.pathsep.join(source_path())}
    command = ["-c", AUDITED_CLI, str(folder), *show_args(archive_dir, record_id, "FOIA 2026-0042")]
    python = officer_python(env) if os.getuid() == 0 else None
    if python is not None:
        for path in [archive_dir.parent, *archive_dir.parent.rglob("*")]:
            if path != folder and folder not in path.parents:
                os.chown(path, OFFICER_UID, OFFICER_UID)
        os.chmod(folder, 0)
        try:
            return subprocess.run([python, *command], capture_output=True, text=True, timeout=120, env=env,
                                  cwd="/", user=OFFICER_UID, group=OFFICER_UID, extra_groups=[])
        finally:
            os.chmod(folder, 0o700)
            # Back to root's, as the daemon's side keeps it: its permission checks trust no file
            # or folder of another account (permissions.py).
            for path in [archive_dir.parent, *archive_dir.parent.rglob("*")]:
                os.chown(path, 0, 0)
    away = folder.with_name("secrets.away")
    if os.getuid() == 0:
        folder.rename(away)
    else:
        os.chmod(folder, 0)
    try:
        return subprocess.run([sys.executable, *command], capture_output=True, text=True, timeout=120, env=env)
    finally:
        if os.getuid() == 0:
            away.rename(folder)
        else:
            os.chmod(folder, 0o700)


def test_show_opens_and_discloses_with_the_officer_identity_alone(archive_dir: Path) -> None:
    record_id = ingest_one(archive_dir)
    shown = run_show_as_officer(archive_dir, record_id)
    assert "SECRETS-OPENED" not in shown.stderr
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["content"]["body"].startswith("The officer may read this")
    # The daemon's side (which holds the secrets) proves the disclosure: signed by the officer.
    code, output = run(archive_dir, "verify", "--json")
    assert code == 0, output
    [disclosure] = json.loads(run(archive_dir, "audit", "--json")[1])
    assert (disclosure["action"], disclosure["purpose"], disclosure["subjects"]) == (
        "show", "FOIA 2026-0042", [record_id])
    public = (archive_dir / "officer.key.pub").read_text()
    assert disclosure["signer"] and f"signing key (disclosures): {disclosure['signer']}" in public


def daemon_key(archive_dir: Path) -> ed25519.Ed25519PrivateKey:
    """The attacker owns the daemon host: the daemon's ledger key is theirs."""
    return secrets.load(archive_dir / "data").signing_key


def rechain(conn: sqlite3.Connection, signing_key: ed25519.Ed25519PrivateKey) -> None:
    """Re-hash the whole ledger and re-sign every checkpoint, as an attacker with the daemon key can."""
    prev = GENESIS
    heads = {}
    for seq, at, kind, subject, payload in conn.execute(
            "SELECT seq, at, kind, subject, payload FROM ledger ORDER BY seq").fetchall():
        digest = entry_hash(prev, seq, at, kind, subject, payload)
        conn.execute("UPDATE ledger SET prev = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        heads[seq], prev = digest, digest
    last = max(heads)
    conn.execute("INSERT OR REPLACE INTO checkpoint (seq, head, at, signature) VALUES (?, '', ?, '')",
                 (last, iso(NOW)))
    for seq, at in conn.execute("SELECT seq, at FROM checkpoint").fetchall():
        signature = signing_key.sign(checkpoint_message(seq, heads[seq], at))
        conn.execute("UPDATE checkpoint SET head = ?, signature = ? WHERE seq = ?",
                     (heads[seq], base64.b64encode(signature).decode(), seq))


def tamper(archive_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(archive_dir / "data" / "index.db", isolation_level=None)


def rechained_problems(archive_dir: Path, conn: sqlite3.Connection) -> list[dict[str, str]]:
    """Finish the attack (chain re-hashed, checkpoints re-signed), then what verify names (it must fail)."""
    rechain(conn, daemon_key(archive_dir))
    conn.close()
    code, output = run(archive_dir, "verify", "--json")
    assert code == 5, output
    return list(json.loads(output)["problems"])


def test_a_disclosure_whose_purpose_was_changed_after_the_fact_is_named(archive_dir: Path) -> None:
    record_id = ingest_one(archive_dir)
    shown = CliRunner().invoke(cli, show_args(archive_dir, record_id, "FOIA 2026-0042"))
    assert shown.exit_code == 0, shown.output
    assert run(archive_dir, "verify")[0] == 0
    conn = tamper(archive_dir)
    disclosure_id, = conn.execute("SELECT id FROM disclosure").fetchone()
    conn.execute("UPDATE disclosure SET purpose = 'routine audit' WHERE id = ?", (disclosure_id,))
    seq, payload = conn.execute("SELECT seq, payload FROM ledger WHERE kind = 'disclosure'").fetchone()
    entry = json.loads(payload)
    entry["disclosure"]["purpose"] = "routine audit"
    conn.execute("UPDATE ledger SET payload = ? WHERE seq = ?", (canonical_json(entry).decode(), seq))
    [problem] = rechained_problems(archive_dir, conn)
    assert problem["object"] == f"disclosure {disclosure_id}"
    assert "signature does not verify" in problem["detail"]


def test_a_disclosure_signed_by_a_key_the_config_does_not_name_is_named(archive_dir: Path) -> None:
    record_id = ingest_one(archive_dir)
    assert run(archive_dir, "verify")[0] == 0
    own_key = ed25519.Ed25519PrivateKey.generate()
    own_signer = "SHA256:" + base64.b32encode(os.urandom(20)).decode().lower()
    conn = tamper(archive_dir)
    prev, seq = conn.execute("SELECT hash, seq FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
    at = iso(NOW)
    fields = {"id": "dis-" + "f" * 20, "at": at, "actor": "rofficer", "action": "show", "purpose": "audit",
              "recipient": "self", "subjects": json.dumps([record_id]), "identity": "SHA256:x"}
    message = canonical_json(["twentyday/v1/disclosure", prev, fields["id"], at, "rofficer", "show", "audit",
                              "self", [record_id], "SHA256:x", own_signer])
    signed = {**fields, "signer": own_signer, "signature": base64.b64encode(own_key.sign(message)).decode()}
    columns = [row[1] for row in conn.execute("PRAGMA table_info(disclosure)")]
    row = {name: signed[name] for name in columns if name in signed}  # whatever this archive's table holds
    conn.execute(f"INSERT INTO disclosure ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                 list(row.values()))
    payload = canonical_json({"disclosure": row}).decode()
    conn.execute("INSERT INTO ledger (seq, at, kind, subject, payload, prev, hash) VALUES (?,?,?,?,?,?,?)",
                 (seq + 1, at, "disclosure", row["id"], payload, prev,
                  entry_hash(prev, seq + 1, at, "disclosure", row["id"], payload)))
    [problem] = rechained_problems(archive_dir, conn)
    assert problem["object"] == f"disclosure {row['id']}"
    assert re.search(r"signed by SHA256:\S+, a key no public key in keys.recipients carries", problem["detail"])
