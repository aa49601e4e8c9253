"""bench/ingest_chat.py --scale-out runs (a small export): every backend, the bucket's and the database's share."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_ingest_bench_runs_on_every_backend_and_says_where_the_s3_time_goes() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "ingest_chat.py"), "--messages", "3000",
                             "--scale-out", "--rounds", "1"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for backend in ("embedded", "pg"):
        assert re.search(rf"^{backend} #1\s+3,000\s", out, re.MULTILINE), out
    for backend in ("s3", "pg\\+s3"):  # the sealed blobs are in the bucket, listed after
        s3 = re.search(rf"^{backend} #1\s+3,000\s.* MB\s+(\d+)\s+([\d.]+)\s+[\d.]+\s+(-|[\d.]+)$", out, re.MULTILINE)
        assert s3 is not None, out
        assert int(s3.group(1)) >= 1 and float(s3.group(2)) > 0
    assert re.search(r"\d+ segment PUTs, [\d.]+ MB", out), out
    assert "in wait() before 1 commits" in out
    assert re.search(r"pg #1: local PostgreSQL CPU [\d.]+ s", out), out
    assert "target peak RSS < 300 MB (the twentyday process) on every backend: met" in out
