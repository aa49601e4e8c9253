"""``twentyday serve`` as a real process, its log in a file: shared by the lifecycle and end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from twentyday.cli import cli

#: Generous: the machine running the suite may be loaded.
START_SECONDS = 60


class Serve:
    """One ``twentyday serve`` process; its stderr (the log) goes to ``log``."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self._start = log.stat().st_size if log.exists() else 0  # a restart appends to the same log
        with log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "twentyday", "--config", str(config), "serve"],
                stdout=subprocess.DEVNULL, stderr=sink,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        """What this process logged (not the runs before it in the same file)."""
        with self.log.open("rb") as handle:
            handle.seek(self._start)
            return handle.read().decode(errors="replace")

    def wait_for_log(self, words: str, count: int = 1, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while self.text().count(words) < count:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited ({self.process.returncode}) before logging {words!r}:\n"
                                     f"{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not log {words!r} within {seconds} s:\n{self.text()}")
            time.sleep(0.05)

    def wait_ready(self) -> None:
        """Listening, watching and its pipeline process started."""
        self.wait_for_log("watching ")

    def terminate(self, bound: float) -> tuple[int, float]:
        """SIGTERM; the exit code and the seconds it took (AssertionError past ``bound``)."""
        began = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(bound)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"serve did not exit within {bound} s of SIGTERM") from None
        return code, time.monotonic() - began

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def records(config: Path, *options: str) -> list[dict[str, Any]]:
    found = CliRunner().invoke(cli, ["--config", str(config), "search", "--json", "--limit", "1000000", *options])
    assert found.exit_code == 0, found.output
    result: list[dict[str, Any]] = json.loads(found.stdout)
    return result


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.25)
