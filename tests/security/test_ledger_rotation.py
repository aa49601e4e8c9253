"""``twentyday keys rotate-ledger``: the daemon's ledger key replaced, the old key vouching for the new.

A real archive and the real CLI: rotate, ingest more, verify clean; a head published before the
rotation still verifies; a handover forged by someone who holds only the disk (to their own key,
signed with it) is named; a config that forgot the former key says which key it does not know;
serve refuses the rotation while it runs, and starts on the new key after it.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import make_mail
from tests.security.verify_attacks import published_seqs, run, start_serve, stop_serve, wait_for
from twentyday import config as config_module
from twentyday.canonical import canonical_json
from twentyday.store.ledger import HANDOVER, checkpoint_message, entry_hash, ledger_key_text


def ingest(config: Path, tmp_path: Path, name: str, days_ago: int) -> None:
    path = tmp_path / name
    path.write_bytes(make_mail(date=datetime.now(UTC) - timedelta(days=days_ago), message_id=f"<{name}@x>",
                               body=f"body of {name}"))
    code, output = run(config, "ingest", "--custodian", "jdoe", str(path))
    assert code == 0, output


def head(config: Path) -> str:
    code, output = run(config, "verify", "--json")
    assert code == 0, output
    return str(json.loads(output)["head"])


def rotate(config: Path) -> str:
    code, output = run(config, "keys", "rotate-ledger")
    assert code == 0, output
    return output


def test_rotate_then_ingest_verifies_and_an_old_head_still_does(archive_dir: Path, tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    old_head = head(config)
    old_key = config_module.load(config).ledger_key

    output = rotate(config)

    pinned = config_module.load(config)
    assert pinned.ledger_key != old_key and pinned.former_ledger_keys == (old_key,)
    assert f"ledger key: {pinned.ledger_key}" in output and f"handed over from {old_key}" in output, output
    secrets = archive_dir / "data" / "secrets"
    assert stat.S_IMODE((secrets / "ledger-signing.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((secrets / "ledger-signing-1.pub").stat().st_mode) == 0o644
    assert not (secrets / "ledger-signing.next.pem").exists()
    code, output = run(config, "keys", "pin-ledger")
    assert code == 0 and "already pinned" in output, output
    ingest(config, tmp_path, "after", 1)
    code, output = run(config, "verify")
    assert code == 0, output
    # The head published before the rotation was signed by the old key: still proved.
    code, output = run(config, "verify", "--head", old_head)
    assert code == 0, output
    # The escrow now holds the new key: its row and ledger entry were replaced together.
    conn = sqlite3.connect(archive_dir / "data" / "index.db")
    try:
        kinds = [k for (k,) in conn.execute("SELECT kind FROM ledger WHERE seq > (SELECT seq FROM ledger "
                                            "WHERE kind = ?) ORDER BY seq", (HANDOVER,))]
    finally:
        conn.close()
    assert kinds[0] == "escrow", kinds

    # A second rotation: the handover is signed by the key then in force, and both former keys are listed.
    rotate(config)
    again = config_module.load(config)
    assert again.former_ledger_keys == (old_key, pinned.ledger_key)
    assert run(config, "verify")[0] == 0
    assert run(config, "verify", "--head", old_head)[0] == 0


def test_the_config_without_the_former_key_names_it(archive_dir: Path, tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    old_key = config_module.load(config).ledger_key
    rotate(config)
    text = config.read_text()
    config.write_text("\n".join(line for line in text.splitlines()
                                if not line.startswith("former_ledger_keys")) + "\n")
    code, output = run(config, "verify")
    assert code == 5, output
    assert (f"the ledger was signed with {old_key} before this key handover, a key the config pins in neither "
            "keys.ledger_key nor keys.former_ledger_keys") in output, output


def test_a_handover_forged_with_the_attackers_own_key_is_named(archive_dir: Path, tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    pinned = config_module.load(config).ledger_key
    attacker = ed25519.Ed25519PrivateKey.generate()
    theirs = ledger_key_text(attacker.public_key())
    conn = sqlite3.connect(archive_dir / "data" / "index.db", isolation_level=None)
    try:
        seq, prev = conn.execute("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1").fetchone()
        at = datetime.now(UTC).isoformat()
        payload = canonical_json({"from": pinned, "to": theirs}).decode()
        digest = entry_hash(prev, seq + 1, at, HANDOVER, theirs, payload)
        conn.execute("INSERT INTO ledger (seq, at, kind, subject, payload, prev, hash) VALUES (?,?,?,?,?,?,?)",
                     (seq + 1, at, HANDOVER, theirs, payload, prev, digest))
        signature = base64.b64encode(attacker.sign(checkpoint_message(seq + 1, digest, at))).decode()
        conn.execute("INSERT INTO checkpoint (seq, head, at, signature) VALUES (?,?,?,?)",
                     (seq + 1, digest, at, signature))
    finally:
        conn.close()
    code, output = run(config, "verify")
    assert code == 5, output
    assert (f"signature: ledger entry {seq + 1}: a ledger key handover to {theirs} not signed by the key in force "
            f"before it ({pinned})") in output, output
    assert f"a ledger key handover to {theirs}, a key the config pins in neither" in output, output
    # Even with the attacker's key pinned as the current one, the old key never vouched for it.
    text = config.read_text().replace(f'ledger_key = "{pinned}"',
                                      f'ledger_key = "{theirs}"\nformer_ledger_keys = ["{pinned}"]')
    config.write_text(text)
    code, output = run(config, "verify")
    assert code == 5, output
    assert f"not signed by the key in force before it ({pinned})" in output, output


def test_serve_refuses_the_rotation_while_running_and_starts_on_the_new_key(archive_dir: Path,
                                                                             tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    log = tmp_path / "serve.log"
    daemon = start_serve(config, log)
    try:
        wait_for(lambda: bool(published_seqs(log)), "the first published head", daemon)
        code, output = run(config, "keys", "rotate-ledger")
        assert code != 0 and "twentyday serve is running" in output and "stop it first" in output, output
    finally:
        assert stop_serve(daemon) == 0
    old_key = config_module.load(config).ledger_key
    rotate(config)
    assert config_module.load(config).former_ledger_keys == (old_key,)
    log2 = tmp_path / "serve2.log"
    daemon = start_serve(config, log2)
    try:
        wait_for(lambda: bool(published_seqs(log2)), "a head published with the new key", daemon)
    finally:
        assert stop_serve(daemon) == 0
    # What serve published after the rotation verifies, and so does its log as a file of heads.
    code, output = run(config, "verify", "--head", str(log2))
    assert code == 0, output
    code, output = run(config, "verify", "--head", str(log))
    assert code == 0, output
