"""``twentyday keys rotate-ledger``: the daemon's ledger key replaced, the old key vouching for the new.

A real archive and the real CLI: rotate, ingest more, verify clean; a head published before the
rotation still verifies; a handover forged by someone who holds only the disk (to their own key,
signed with it) is named; a config that forgot the former key says which key it does not know;
serve refuses the rotation while it runs, and starts on the new key after it.
A rotation stopped after each of its steps (staged; handover committed; key files installed) is
finished by running it again, with one handover, not two; a config whose ledger_key line the
command cannot rewrite is left as it was and the two lines to paste are printed.
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
from twentyday.crypto import secrets
from twentyday.store.archive import Archive
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


# -- a rotation interrupted at each step, then run again ------------------------------------------
# rotate_ledger_key's steps are repeated here by hand, exactly as it calls them, and the "crash" is
# simply stopping before the next one; the rerun is the real command.

def handovers(archive_dir: Path) -> list[dict[str, str]]:
    conn = sqlite3.connect(archive_dir / "data" / "index.db")
    try:
        return [json.loads(p) for (p,) in conn.execute("SELECT payload FROM ledger WHERE kind = ? ORDER BY seq",
                                                       (HANDOVER,))]
    finally:
        conn.close()


def assert_rotated_once(archive_dir: Path, config: Path, old_key: str) -> None:
    """One handover, old -> pinned; the config lists the old key; verify clean; serve would sign (its key pinned)."""
    pinned = config_module.load(config)
    assert pinned.ledger_key != old_key and pinned.former_ledger_keys == (old_key,)
    assert handovers(archive_dir) == [{"from": old_key, "to": pinned.ledger_key}]
    data = archive_dir / "data"
    assert ledger_key_text(secrets.load(data).verify_key) == pinned.ledger_key
    assert ledger_key_text(secrets.load_verify_key(data)) == pinned.ledger_key
    assert not (data / "secrets" / "ledger-signing.next.pem").exists()
    assert (data / "secrets" / "ledger-signing-1.pub").exists()
    code, output = run(config, "verify")
    assert code == 0, output


def stage_and_hand_over(config: Path) -> tuple[str, ed25519.Ed25519PublicKey]:
    """Steps 1 and 2 of rotate_ledger_key, as it calls them: the new key's text and the former public key."""
    loaded = config_module.load(config)
    with Archive(loaded) as archive:
        former = archive.secrets.verify_key
        staged = secrets.stage_successor(loaded.data_dir, archive.secrets)
        archive.hand_over_ledger_key(staged)
    return ledger_key_text(staged.verify_key), former


def rerun_finishes(archive_dir: Path, config: Path, old_key: str, new_key: str) -> None:
    """The command run again completes the rotation to the key already handed over, and writes the config."""
    output = rotate(config)
    assert f"ledger key: {new_key}" in output and f"handed over from {old_key}" in output, output
    assert "written to the config" in output, output
    assert config_module.load(config).ledger_key == new_key
    assert_rotated_once(archive_dir, config, old_key)


def test_a_crash_after_staging_is_finished_by_the_rerun(archive_dir: Path, tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    old_key = config_module.load(config).ledger_key
    data = archive_dir / "data"
    secrets.stage_successor(data, secrets.load(data))
    assert handovers(archive_dir) == []
    assert run(config, "verify")[0] == 0

    output = rotate(config)

    assert "pinned:     keys.ledger_key and keys.former_ledger_keys written to the config" in output, output
    assert_rotated_once(archive_dir, config, old_key)


def test_a_crash_after_the_handover_committed_is_finished_without_a_second_one(archive_dir: Path,
                                                                                tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    old_key = config_module.load(config).ledger_key
    new_key, _ = stage_and_hand_over(config)
    assert handovers(archive_dir) == [{"from": old_key, "to": new_key}]

    # The config still pins the old key alone: verify names the key it does not know, and fails.
    code, output = run(config, "verify")
    assert code == 5, output
    assert (f"a ledger key handover to {new_key}, a key the config pins in neither keys.ledger_key nor "
            "keys.former_ledger_keys") in output, output

    rerun_finishes(archive_dir, config, old_key, new_key)


def test_a_crash_before_the_config_was_written_is_finished_by_the_rerun(archive_dir: Path, tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    old_key = config_module.load(config).ledger_key
    new_key, former = stage_and_hand_over(config)
    secrets.install_successor(archive_dir / "data", former, 1)
    assert config_module.load(config).ledger_key == old_key

    rerun_finishes(archive_dir, config, old_key, new_key)


def test_a_config_it_cannot_rewrite_gets_the_two_lines_printed(archive_dir: Path, tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    ingest(config, tmp_path, "before", 2)
    old_key = config_module.load(config).ledger_key
    # A quoted TOML key: the same setting, on a line the command does not rewrite.
    pin_line = f'ledger_key = "{old_key}"'
    text = config.read_text()
    assert text.count(pin_line) == 1
    config.write_text(text.replace(pin_line, f'"ledger_key" = "{old_key}"'))
    before = config.read_bytes()
    assert config_module.load(config).ledger_key == old_key

    output = rotate(config)

    assert config.read_bytes() == before
    new_key = ledger_key_text(secrets.load(archive_dir / "data").verify_key)
    lines = output.splitlines()
    printed = lines[lines.index("Put these two lines in [keys] of the config (replacing ledger_key), then start "
                                "serve:") + 1:]
    assert printed == [f'ledger_key = "{new_key}"', f'former_ledger_keys = ["{old_key}"]'], output
    assert handovers(archive_dir) == [{"from": old_key, "to": new_key}]
    # Until they are pasted, the config pins a key the archive no longer signs with.
    assert run(config, "verify")[0] == 5

    config.write_text(before.decode().replace(f'"ledger_key" = "{old_key}"', "\n".join(printed)))

    assert_rotated_once(archive_dir, config, old_key)
