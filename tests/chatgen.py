"""Generated WhatsApp exports for tests and benchmarks (Android layout, day-first)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

WORDS = ("budget", "meeting", "draft", "agenda", "minister", "call", "notes", "tomorrow", "report", "visit")


def android_line(n: int, start: datetime) -> str:
    at = start + timedelta(minutes=n)
    sender = "Jane Doe" if n % 3 else "Counterpart"
    words = " ".join(WORDS[(n * 7 + k) % len(WORDS)] for k in range(8))
    return f"{at:%d/%m/%Y, %H:%M} - {sender}: message {n} {words}\n"


def write_export(path: Path, count: int, start: datetime = datetime(2026, 10, 13, 8, 0)) -> Path:
    """``count`` messages, one per minute; day 13 settles the day-first order."""
    with path.open("w", encoding="utf-8") as handle:
        for n in range(count):
            handle.write(android_line(n, start))
    return path
