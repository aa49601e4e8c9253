"""The real daemon on an index in PostgreSQL: one node, then two intake nodes on one database and one bucket.

Real ``twentyday serve`` processes, real SMTP on 127.0.0.1, a real PostgreSQL (tests/pg.py) and a real
Ceph RGW (tests/rgw.py). A second node joins as README "Beyond one machine" says: the first node's
config and public keys, a data_dir of its own (its own spool), and a copy of the first node's
``data_dir/secrets``. Every mail answered 250 is archived exactly once across a SIGKILL of either node.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from tests.conftest import make_mail
from tests.pg import LocalPG
from tests.pgarchive import make_pg_archive
from tests.rgw import LocalRGW
from tests.s3archive import new_bucket_name, store_section
from tests.smtp_helpers import configure
from tests.system.serve_process import Serve
from tests.system.test_smtp_crash import pipeline_children, wait_port
from twentyday.cli import cli
from twentyday.config import load
from twentyday.crypto import secrets
from twentyday.errors import ConfigError, IntegrityError
from twentyday.initialise import pin_ledger_key
from twentyday.spool import backlog
from twentyday.store.archive import Archive
from twentyday.store.ledger import GENESIS, entry_hash, ledger_key_text


@dataclass(frozen=True)
class Node:
    """One intake node: its config, its SMTP port, its data_dir (its spool)."""

    config: Path
    port: int

    @property
    def data_dir(self) -> Path:
        return load(self.config).data_dir

    def serve(self) -> Serve:
        return Serve(self.config, self.config.parent / "serve.log")


def first_node(directory: Path, postgres: LocalPG, extra_store: str = "") -> Node:
    make_pg_archive(directory, postgres, now=datetime.now(UTC), extra_store=extra_store)
    config, port = configure(directory)
    return Node(config, port)


def join(first: Node, directory: Path) -> Node:
    """A second node of ``first``'s archive, set up as README "Beyond one machine" says."""
    directory.mkdir()
    for name in ("twentyday.toml", "officer.key.pub"):
        shutil.copy2(first.config.parent / name, directory / name)
    data_dir = directory / "data"
    data_dir.mkdir(mode=0o700)
    shutil.copytree(first.data_dir / "secrets", data_dir / "secrets")  # modes kept: 0700, 0600
    (directory / "inbox" / "jdoe").mkdir(parents=True)
    config, port = configure(directory)
    return Node(config, port)


def send(port: int, message_ids: list[str], accepted: list[str], lock: threading.Lock, tag: str = "") -> None:
    """Each mail in its own session; stops at the first that gets no 250 (the node died under us)."""
    for message_id in message_ids:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.sendmail("jane.doe@gmail.com", ["records@agency.example"],
                                make_mail(message_id=message_id, body=f"two nodes, one archive {message_id}"))
        except (smtplib.SMTPException, OSError):
            return
        with lock:
            accepted.append(message_id + tag)


def thread_names(config: Path, message_ids: list[str]) -> dict[str, str]:
    archive = Archive(load(config))
    try:
        return {f"thread:{archive.hashes.message_ref('email', m)}": m for m in message_ids}
    finally:
        archive.close()


def conversations(config: Path) -> list[str]:
    """Every archived record's conversation, one per record (``search``, as an officer would list them)."""
    archive = Archive(load(config))
    try:
        return [str(row[0]) for row in archive.conn.execute("SELECT conversation FROM record")]
    finally:
        archive.close()


def wait_for(config: Path, expected: set[str], seconds: float) -> list[str]:
    deadline = time.monotonic() + seconds
    archived = conversations(config)
    while time.monotonic() < deadline and not expected <= set(archived):
        time.sleep(0.25)
        archived = conversations(config)
    return archived


def ledger_is_one_chain(config: Path) -> int:
    """Every ledger entry links to the one before it, and the last signed checkpoint is the head: the
    number of entries, read directly (the test's own reading, beside ``twentyday verify``'s)."""
    archive = Archive(load(config))
    try:
        rows = archive.conn.execute("SELECT seq, prev, hash, at, kind, subject, payload FROM ledger "
                                    "ORDER BY seq").fetchall()
        previous = GENESIS
        for number, (seq, prev, digest, at, kind, subject, payload) in enumerate(rows, start=1):
            assert seq == number, f"the ledger skips from {number - 1} to {seq}"
            assert prev == previous, f"entry {seq} does not follow entry {seq - 1}"
            assert entry_hash(prev, seq, at, kind, subject, payload) == digest, f"entry {seq} altered"
            previous = digest
        head = archive.conn.execute("SELECT seq, head FROM checkpoint ORDER BY seq DESC LIMIT 1").fetchone()
        assert tuple(head) == (len(rows), previous)
        return len(rows)
    finally:
        archive.close()


def test_one_node_on_postgresql_answers_250_once_durable_and_its_mail_is_searchable(
        tmp_path: Path, postgres: LocalPG) -> None:
    node = first_node(tmp_path / "node", postgres)
    daemon = node.serve()
    try:
        daemon.wait_ready()
        wait_port(node.port)
        message_ids = [f"<one-{n}@pgserve.test>" for n in range(5)]
        accepted: list[str] = []
        send(node.port, message_ids, accepted, threading.Lock())
        assert accepted == message_ids
        expected = thread_names(node.config, message_ids)
        archived = wait_for(node.config, set(expected), 30)
    finally:
        code, _ = daemon.terminate(45)
    assert code == 0, daemon.text()
    assert Counter(archived) == Counter(set(expected))
    found = CliRunner().invoke(cli, ["--config", str(node.config), "search", "--json", "--limit", "100"])
    assert found.exit_code == 0, found.output
    assert sorted(str(r["conversation"]) for r in json.loads(found.stdout)) == sorted(expected)
    assert "index.db" not in daemon.text()
    assert not (node.data_dir / "index.db").exists()
    assert backlog(node.data_dir / "spool").items == 0
    assert ledger_is_one_chain(node.config) > 5


def captures(config: Path) -> int:
    archive = Archive(load(config))
    try:
        return int(archive.conn.execute("SELECT count(*) FROM capture").fetchone()[0])
    finally:
        archive.close()


@pytest.fixture
def two_nodes(tmp_path: Path, postgres: LocalPG, rgw: LocalRGW) -> tuple[Node, Node]:
    """Two nodes of one archive: one PostgreSQL database, one bucket, a data_dir (a spool) each."""
    bucket = store_section(rgw, new_bucket_name()).replace("\n[store]\n", "", 1)
    first = first_node(tmp_path / "first", postgres, extra_store=bucket)
    return first, join(first, tmp_path / "second")


@pytest.mark.parametrize("killed", ["first", "second"])
def test_two_nodes_on_one_database_and_one_bucket_lose_and_duplicate_nothing_across_a_sigkill(
        two_nodes: tuple[Node, Node], killed: str) -> None:
    first, second = two_nodes
    victim, survivor = (first, second) if killed == "first" else (second, first)
    daemons = {node: node.serve() for node in (first, second)}
    began = time.monotonic()
    try:
        for node, daemon in daemons.items():
            daemon.wait_ready()
            wait_port(node.port)
        lock = threading.Lock()
        accepted: dict[Node, list[str]] = {first: [], second: []}
        # The same mail (the same bytes) to both nodes at once, five times: one capture each.
        both = [f"<both-{n}@pgserve.test>" for n in range(5)]
        senders = [threading.Thread(target=send, args=(node.port, both, accepted[node], lock)) for node in daemons]
        # Distinct mails, four senders per node; the victim's are cut short by its SIGKILL.
        for node in daemons:
            senders += [threading.Thread(target=send, args=(
                node.port, [f"<{'a' if node is first else 'b'}{w}-m{n}@pgserve.test>" for n in range(15)],
                accepted[node], lock)) for w in range(4)]
        for thread in senders:
            thread.start()
        # Kill the victim mid-stream, while mail it answered 250 waits in its spool.
        deadline = time.monotonic() + 60
        spooled = 0
        while time.monotonic() < deadline:
            with lock:
                taken = len(accepted[victim])
            spooled = backlog(victim.data_dir / "spool").items
            if taken >= 20 and spooled:
                break
            time.sleep(0.002)
        victim_pipeline = pipeline_children(daemons[victim].pid)
        daemons[victim].process.send_signal(signal.SIGKILL)
        daemons[victim].process.wait(30)
        for thread in senders:
            thread.join(60)
        left_in_spool = backlog(victim.data_dir / "spool").items
        assert spooled and left_in_spool, "the kill came when the victim's spool was empty: nothing was tested"
        assert 20 <= len(accepted[victim]) < 65
        assert len(accepted[survivor]) == 65
        # Its pipeline died with it (no orphan writing to the database), then it starts again.
        wait_gone = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in victim_pipeline) and time.monotonic() < wait_gone:
            time.sleep(0.05)
        assert not any(Path(f"/proc/{pid}").exists() for pid in victim_pipeline)
        daemons[victim] = victim.serve()
        daemons[victim].wait_ready()
        every = sorted(set(accepted[first]) | set(accepted[second]))
        expected = thread_names(first.config, every)
        archived = wait_for(first.config, set(expected), 90)
        for node in daemons:
            wait_for_spool(node, 30)
        archived = conversations(first.config)
        took = time.monotonic() - began
    finally:
        codes = {node: daemon.terminate(45)[0] for node, daemon in daemons.items() if daemon.process.poll() is None}
    assert all(code == 0 for code in codes.values()), [d.text() for d in daemons.values()]
    # Every mail answered 250 by either node is archived exactly once, the ones sent to both too. Beside
    # them, at most one mail per sender the victim was receiving when it died: durable, its 250 unsent.
    assert Counter(expected[c] for c in archived if c in expected) == Counter(every)
    assert len(archived) == len(set(archived)), "a mail archived twice"
    in_flight = set(archived) - set(expected)
    assert len(in_flight) <= 5
    assert set(thread_names(first.config, sent_to(victim, first))) >= in_flight
    assert captures(first.config) == len(archived)
    # The mails sent to both: each node took its copy out of its spool, one as a duplicate (the ledger
    # writers' lock makes the second see the first's capture), or both and a replay after the kill.
    twice = set(both) & set(accepted[first]) & set(accepted[second])
    logs = "".join((node.config.parent / "serve.log").read_text() for node in (first, second))
    assert logs.count("duplicate cap-") >= len(twice) > 0
    assert "Traceback" not in logs and "UniqueViolation" not in logs
    assert not set(both) - set(accepted[first]) - set(accepted[second])
    for node in (first, second):
        assert backlog(node.data_dir / "spool").items == 0
        assert not (node.data_dir / "index.db").exists()
    # One chain: both nodes' entries in one sequence, each following the one before, the head signed.
    assert ledger_is_one_chain(first.config) > len(every)
    # And verify holds the whole archive to it from either node: rows, sealed segments, signatures.
    for node in (first, second):
        checked = subprocess.run([sys.executable, "-m", "twentyday", "--config", str(node.config), "verify", "--json"],
                                 capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                                 env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        report = json.loads(checked.stdout)
        assert checked.returncode == 0 and report["ok"], report["problems"]
    print(f"two nodes, {killed} killed with {left_in_spool} item(s) in its spool: {len(every)} mails, "
          f"{time.monotonic() - began:.1f} s ({took:.1f} s until all archived)")


def sent_to(node: Node, first: Node) -> list[str]:
    """Every Message-ID the test sends to ``node``."""
    letter = "a" if node is first else "b"
    return [f"<both-{n}@pgserve.test>" for n in range(5)] + [
        f"<{letter}{w}-m{n}@pgserve.test>" for w in range(4) for n in range(15)]


def wait_for_spool(node: Node, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while backlog(node.data_dir / "spool").items and time.monotonic() < deadline:
        time.sleep(0.25)


def refused_at_start(node: Node) -> str:
    """``serve`` on ``node`` exits at once with one line and IntegrityError's code; the line."""
    done = subprocess.run([sys.executable, "-m", "twentyday", "--config", str(node.config), "serve"],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == IntegrityError.exit_code, done.stderr
    [line] = [text for text in done.stderr.splitlines() if text.startswith("twentyday: ")]
    assert "Traceback" not in done.stderr
    return line


def test_a_node_whose_secrets_are_not_the_archives_is_refused_at_start(tmp_path: Path, postgres: LocalPG) -> None:
    first = first_node(tmp_path / "first", postgres)
    # Secrets of its own (someone ran create's key step on it, and pinned its key): not the archive's ledger key.
    stranger = join(first, tmp_path / "stranger")
    shutil.rmtree(stranger.data_dir / "secrets")
    own = secrets.generate(stranger.data_dir)
    pin_ledger_key(stranger.config, ledger_key_text(own.verify_key), replace=True)
    line = refused_at_start(stranger)
    assert "did not sign the archive's last checkpoint" in line and "Beyond one machine" in line
    # The archive's ledger key, another index key: its keyed hashes would split the archive's dedup and search.
    mixed = join(first, tmp_path / "mixed")
    (mixed.data_dir / "secrets" / secrets.INDEX_KEY_FILE).write_text(os.urandom(32).hex() + "\n")
    line = refused_at_start(mixed)
    assert "the index key is not the archive's" in line
    assert not list((mixed.data_dir / "spool").glob("*")) if (mixed.data_dir / "spool").exists() else True
    # Neither wrote anything: a node with the archive's secrets serves.
    good = join(first, tmp_path / "good")
    daemon = good.serve()
    try:
        daemon.wait_ready()
    finally:
        assert daemon.terminate(45)[0] == 0


def test_what_cannot_work_on_postgresql_says_so_in_one_line(tmp_path: Path, postgres: LocalPG,
                                                            archive_dir: Path) -> None:
    first = first_node(tmp_path / "first", postgres)
    second = join(first, tmp_path / "second")
    runner = CliRunner()
    made = runner.invoke(cli, ["--config", str(second.config), "create"])
    assert made.exit_code == ConfigError.exit_code
    assert "holds an archive already" in made.output and "Beyond one machine" in made.output
    backed = runner.invoke(cli, ["--config", str(first.config), "backup", str(tmp_path / "backup")])
    assert backed.exit_code == ConfigError.exit_code and "pg_dump" in backed.output
    assert not (tmp_path / "backup").exists()
    moved = runner.invoke(cli, ["--config", str(first.config), "migrate", "--to", str(second.config)])
    assert moved.exit_code == ConfigError.exit_code and "index is in PostgreSQL" in moved.output
    into = runner.invoke(cli, ["--config", str(archive_dir / "twentyday.toml"), "migrate", "--to", str(first.config)])
    # Into a database that holds another archive already: refused before anything is written.
    assert into.exit_code == ConfigError.exit_code and into.output.startswith("twentyday: "), into.output
    for result in (made, backed, moved, into):
        assert len(result.output.strip().splitlines()) == 1, result.output


def test_a_node_whose_connections_to_the_database_are_cut_goes_on_archiving(tmp_path: Path, postgres: LocalPG) -> None:
    """The server restarted, a failover: the pipeline's connection is gone. Its process ends, serve starts
    another with a new connection, and what was spooled meanwhile is archived."""
    node = first_node(tmp_path / "node", postgres)
    daemon = node.serve()
    try:
        daemon.wait_ready()
        wait_port(node.port)
        accepted: list[str] = []
        before = [f"<before-cut-{n}@pgserve.test>" for n in range(2)]
        send(node.port, before, accepted, threading.Lock())
        wait_for(node.config, set(thread_names(node.config, before)), 30)
        time.sleep(1.0)  # the worker idle, waiting for mail: the cut is found by its next batch
        index = load(node.config).index
        assert index is not None
        with psycopg.connect(index, autocommit=True) as admin:
            cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()
        assert cut is not None and cut[0] >= 2  # the daemon's and its pipeline's, at least
        after = [f"<after-cut-{n}@pgserve.test>" for n in range(3)]
        send(node.port, after, accepted, threading.Lock())
        assert accepted == before + after  # 250: in the spool, whatever the database
        expected = thread_names(node.config, before + after)
        archived = wait_for(node.config, set(expected), 60)
        daemon.wait_for_log("pipeline process exited")
    finally:
        code, _ = daemon.terminate(45)
    assert Counter(archived) == Counter(set(expected))
    assert "the connection to the index was lost" in daemon.text()
    assert "Traceback" not in daemon.text()
    assert code == 0, daemon.text()
