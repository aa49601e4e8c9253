"""bench/compliance.py runs (a small index): it builds its archive, and the library and the CLI agree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_compliance_bench_runs_on_a_small_index(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "compliance.py"), "--records", "3000", "--keep",
                             str(tmp_path)], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "200 custodians, 3,000 records in the index" in result.stdout
    assert "twentyday compliance --json (process)" in result.stdout
