"""Issue 12, item 2: ``verify`` takes its key from outside the archive it checks.

The attacker owns the archive's files: they turn a late record into an on-time one,
recompute its content pack's ledger entry and every hash of the chain after it, make a new
Ed25519 key, drop it into ``data/secrets/`` in place of the daemon's, and re-sign every
checkpoint with it. Before this issue ``verify`` read its key from those very secrets and
passed. Now the key pinned in the config (``keys.ledger_key``, written by ``init``) checks
the signatures, and the swapped key is named: exit 5.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.conftest import make_mail
from tests.security.verify_attacks import run
from twentyday.canonical import canonical_json
from twentyday.store.ledger import checkpoint_message, entry_hash
from twentyday.store.rows import RECORD_COLUMNS


def ingest(config: Path, tmp_path: Path, name: str, mail: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(mail)
    code, output = run(config, "ingest", "--custodian", "jdoe", str(path))
    assert code == 0, output


def rewrite_late_record_and_resign(archive_dir: Path) -> str:
    """The attack: the late record made on time, the chain recomputed and re-signed with a planted key."""
    conn = sqlite3.connect(archive_dir / "data" / "index.db", isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN")
        record = conn.execute("SELECT * FROM record WHERE status = 'late'").fetchone()
        conn.execute("UPDATE record SET status = 'on_time', days_late = NULL WHERE id = ?", (record["id"],))
        seq, payload = conn.execute("SELECT seq, payload FROM ledger WHERE kind = 'pack' AND subject = ?",
                                    (record["content_blob"],)).fetchone()
        entry = json.loads(payload)
        rows = [canonical_json([row[c] for c in RECORD_COLUMNS]) for row in conn.execute(
            f"SELECT {', '.join(RECORD_COLUMNS)} FROM record WHERE content_blob = ? ORDER BY rowid",
            (record["content_blob"],))]
        for member, row in zip(entry["records"], rows, strict=True):
            member["row_sha256"] = hashlib.sha256(row).hexdigest()
        entry["rows_sha256"] = hashlib.sha256(b"\n".join(rows)).hexdigest()
        conn.execute("UPDATE ledger SET payload = ? WHERE seq = ?", (canonical_json(entry).decode(), seq))
        prev = conn.execute("SELECT hash FROM ledger WHERE seq = ?", (seq - 1,)).fetchone()
        prev_hash = prev[0] if prev else "0" * 64
        for row in conn.execute("SELECT * FROM ledger WHERE seq >= ? ORDER BY seq", (seq,)).fetchall():
            digest = entry_hash(prev_hash, row["seq"], row["at"], row["kind"], row["subject"], row["payload"])
            conn.execute("UPDATE ledger SET prev = ?, hash = ? WHERE seq = ?", (prev_hash, digest, row["seq"]))
            prev_hash = digest
        planted = ed25519.Ed25519PrivateKey.generate()
        for row in conn.execute("SELECT c.seq, c.at, l.hash FROM checkpoint c JOIN ledger l ON l.seq = c.seq"
                                ).fetchall():
            signature = base64.b64encode(planted.sign(checkpoint_message(row["seq"], row["hash"], row["at"])))
            conn.execute("UPDATE checkpoint SET head = ?, signature = ? WHERE seq = ?",
                         (row["hash"], signature.decode(), row["seq"]))
        conn.execute("COMMIT")
    finally:
        conn.close()
    secrets = archive_dir / "data" / "secrets"
    (secrets / "ledger-signing.pem").write_bytes(planted.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (secrets / "ledger-signing.pub").write_bytes(planted.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(record["id"])


def test_a_chain_re_signed_with_a_key_planted_in_secrets_fails_on_the_pin(archive_dir: Path,
                                                                          tmp_path: Path) -> None:
    config = archive_dir / "twentyday.toml"
    now = datetime.now(UTC)
    ingest(config, tmp_path, "on-time.eml", make_mail(date=now - timedelta(days=1), message_id="<a@x>"))
    ingest(config, tmp_path, "late.eml", make_mail(date=now - timedelta(days=40), message_id="<b@x>", body="late"))
    assert run(config, "verify")[0] == 0

    record_id = rewrite_late_record_and_resign(archive_dir)

    code, output = run(config, "search", "--json")
    assert {r["id"]: r["status"] for r in json.loads(output)}[record_id] == "on_time"
    code, output = run(config, "verify")
    assert code == 5, output
    assert "signature: secrets/ledger-signing.pem: the archive's ledger key is not the pinned" in output, output
    assert "signature: checkpoint" in output, output


def test_verify_refuses_to_run_without_a_pinned_key(archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    text = config.read_text()
    config.write_text("\n".join(line for line in text.splitlines() if not line.startswith("ledger_key")) + "\n")
    code, output = run(config, "verify")
    assert code == 2, output
    assert "keys.ledger_key: not set" in output and "keys pin-ledger" in output, output
    # The command shows the archive's key; pinning it is the officer's decision (--write).
    code, output = run(config, "keys", "pin-ledger", "--write")
    assert code == 0, output
    assert run(config, "verify")[0] == 0


def test_a_published_head_not_signed_by_the_pinned_key_is_refused(archive_dir: Path) -> None:
    config = archive_dir / "twentyday.toml"
    code, output = run(config, "verify", "--json")
    head = json.loads(output)["head"]
    seq, digest, rest = head.split(":", 2)
    at, _ = rest.rsplit(":", 1)
    forged = ed25519.Ed25519PrivateKey.generate().sign(checkpoint_message(int(seq), digest, at))
    code, output = run(config, "verify", "--head", f"{seq}:{digest}:{at}:{base64.b64encode(forged).decode()}")
    assert code == 5, output
    assert f"signature: published head {seq}: not signed by the pinned ledger key" in output, output
