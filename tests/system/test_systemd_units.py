"""The unit files as systemd reads them: 'systemd-analyze verify', and an exposure score held down.

'systemd-analyze security --offline=true' scores a unit file without a running systemd (CI
runs in a container whose PID 1 is not systemd); '--threshold' makes it fail above the score
README.md states. 'verify' checks that ExecStart's program exists, so the units are copied to
a temporary directory with ExecStart pointing at a stub there. scripts/test installs Debian's
'systemd' package when systemd-analyze is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "systemd"
#: Exposure scores x 10, as --threshold takes them (README.md, "Running under systemd").
THRESHOLDS = {"twentyday.service": 14, "twentyday-verify.service": 10}
PORT25_THRESHOLD = 15

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                reason="systemd-analyze missing (scripts/test installs Debian's systemd)")


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The units in a directory of their own, ExecStart pointing at a stub 'twentyday'."""
    stub = tmp_path / "bin" / "twentyday"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copied = tmp_path / "units"
    copied.mkdir()
    for unit in ("twentyday.service", "twentyday-verify.service", "twentyday-verify.timer"):
        text = (UNITS / unit).read_text()
        (copied / unit).write_text(text.replace("/usr/local/bin/twentyday", str(stub)))
    return copied


def test_the_units_verify_clean(units: Path) -> None:
    result = analyze("verify", "--man=no", *(str(p) for p in sorted(units.iterdir())))
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_verify_finds_a_mistake(units: Path) -> None:
    """The check can fail: a misspelt directive is only a warning to systemd (exit 0), so the clean
    test above requires nothing on stderr at all."""
    unit = units / "twentyday.service"
    unit.write_text(unit.read_text().replace("NotifyAccess=main", "NotifyAcess=main"))
    result = analyze("verify", "--man=no", str(unit))
    assert "Unknown key 'NotifyAcess' in section [Service]" in result.stderr


@pytest.mark.parametrize("unit", sorted(THRESHOLDS))
def test_exposure_stays_at_or_below_the_stated_score(units: Path, unit: str) -> None:
    result = analyze("security", "--offline=true", f"--threshold={THRESHOLDS[unit]}", str(units / unit))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert score is not None, result.stdout[-500:]
    assert float(score.group(1)) <= THRESHOLDS[unit] / 10


def test_the_threshold_fails_a_wider_unit(units: Path) -> None:
    unit = units / "twentyday.service"
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSystem=no"))
    result = analyze("security", "--offline=true", f"--threshold={THRESHOLDS['twentyday.service']}", str(unit))
    assert result.returncode != 0


def test_the_service_is_type_notify_with_a_watchdog_and_no_capability(units: Path) -> None:
    """What the daemon's notify code relies on, and port 25's capability only in its drop-in."""
    settings = [line for line in (UNITS / "twentyday.service").read_text().splitlines()
                if line and not line.startswith("#")]
    for expected in ("Type=notify", "NotifyAccess=main", "WatchdogSec=2min", "Restart=on-failure",
                     "StateDirectory=twentyday", "ConfigurationDirectory=twentyday", "LimitCORE=0",
                     "CapabilityBoundingSet=", "AmbientCapabilities="):
        assert expected in settings
    assert not any("CAP_NET_BIND_SERVICE" in line for line in settings)


def test_the_port25_drop_in_adds_one_capability(tmp_path: Path, units: Path) -> None:
    root = tmp_path / "root"
    system = root / "etc" / "systemd" / "system"
    (system / "twentyday.service.d").mkdir(parents=True)
    shutil.copy(units / "twentyday.service", system)
    shutil.copy(UNITS / "port25.conf", system / "twentyday.service.d")
    result = analyze("security", "--offline=true", f"--root={root}", f"--threshold={PORT25_THRESHOLD}",
                     "twentyday.service")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert re.search(r"✗ CapabilityBoundingSet=~CAP_NET_\(BIND_SERVICE", result.stdout)
    alone = analyze("security", "--offline=true", str(units / "twentyday.service"))
    assert re.search(r"✓ CapabilityBoundingSet=~CAP_NET_\(BIND_SERVICE", alone.stdout)
