"""A real twentyday daemon on 127.0.0.1 for SMTP tests, and a throwaway TLS certificate."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from twentyday import config as config_module
from twentyday import daemon


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def configure(archive_dir: Path, **smtp: object) -> tuple[Path, int]:
    """Rewrite the archive's [smtp] table for a test; returns (config path, port)."""
    port = free_port()
    path = archive_dir / "twentyday.toml"
    text = path.read_text()
    start = text.index("[smtp]")
    end = text.index("\n[", start + 1) + 1
    lines = [f'listen = "127.0.0.1:{port}"', 'addresses = ["records@agency.example"]']
    for key, value in smtp.items():
        lines.append(f"{key} = {value!r}".replace("True", "true").replace("False", "false").replace("'", '"'))
    path.write_text(text[:start] + "[smtp]\n" + "\n".join(lines) + "\n\n" + text[end:])
    return path, port


class DaemonThread:
    """``twentyday serve`` in a thread: its own event loop, stopped like SIGTERM would."""

    def __init__(self, config_path: Path) -> None:
        self.config = config_module.load(config_path)
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            self._ready.set()
            await daemon.run(self.config, self._stop, settle_seconds=0.3)

        try:
            self._loop.run_until_complete(main())
        except BaseException as error:  # surfaced by the test through .error
            self.error = error
            self._ready.set()

    def start(self) -> DaemonThread:
        self._thread.start()
        self._ready.wait(10)
        host, port = self.config.smtp.listen.rsplit(":", 1)
        for _ in range(200):  # until the server accepts connections
            try:
                socket.create_connection((host, int(port)), timeout=0.2).close()
                return self
            except OSError:
                if self.error is not None:
                    raise self.error from None
                threading.Event().wait(0.05)
        raise AssertionError("SMTP server did not start")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
