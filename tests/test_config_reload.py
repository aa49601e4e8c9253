"""config.reloaded: what a SIGHUP applies, and what it keeps until serve is restarted."""

from __future__ import annotations

from pathlib import Path

from twentyday import config as config_module


def test_a_reload_applies_custodians_and_keeps_what_serve_bound_at_start(archive_dir: Path) -> None:
    path = archive_dir / "twentyday.toml"
    running = config_module.load(path)
    text = path.read_text()
    path.write_text(text.replace('data_dir = "data"', 'data_dir = "moved"')
                    .replace('listen = "127.0.0.1:2525"', 'listen = "127.0.0.1:2526"')
                    .replace("silent_after_days = 30", "silent_after_days = 45")
                    + '\n[[custodians]]\nid = "asmith"\nname = "Alex Smith"\n')
    applied, kept = config_module.reloaded(running, config_module.load(path))
    assert kept == ("data_dir", "smtp.listen")
    assert applied.data_dir == running.data_dir
    assert applied.smtp.listen == "127.0.0.1:2525"
    assert [c.id for c in applied.custodians] == ["jdoe", "asmith"]
    assert applied.silent_after_days == 45


def test_a_reload_of_the_same_file_changes_nothing(archive_dir: Path) -> None:
    running = config_module.load(archive_dir / "twentyday.toml")
    applied, kept = config_module.reloaded(running, config_module.load(archive_dir / "twentyday.toml"))
    assert (applied, kept) == (running, ())


def test_a_reload_keeps_the_archive_serve_opened(archive_dir: Path) -> None:
    """[store]: the daemon, its deliverer and its verify hold the index and bucket they opened; a worker
    restarted on others would write into another archive."""
    path = archive_dir / "twentyday.toml"
    running = config_module.load(path)
    path.write_text(path.read_text() + '\n[store]\nindex = "postgresql://twentyday@/other?host=/run/postgresql"\n'
                    'blobs = "s3://other-bucket"\ns3_endpoint = "http://127.0.0.1:7480"\n'
                    f's3_credentials = "{archive_dir / "s3.credentials"}"\n')
    (archive_dir / "s3.credentials").touch(mode=0o600)
    applied, kept = config_module.reloaded(running, config_module.load(path))
    assert kept == ("store.index", "store.blobs, store.s3_*")
    assert (applied.index, applied.blobs) == (None, None)
