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


#: What Android writes first in every export (a system line: no author).
ANDROID_E2E = ("Messages and calls are end-to-end encrypted. No one outside of this chat, not even WhatsApp, "
               "can read or listen to them. Tap to learn more.")


def us_twelve_hour_export(count: int, start: datetime, odd: dict[int, str] | None = None) -> str:
    """An Android export as a U.S.-English phone writes it (``1/29/18, 11:58 PM - ``), one message a
    minute from ``start``; ``odd`` replaces the header time of the messages it names (index -> text)."""
    odd = odd or {}
    lines = [f"{start:%-m/%-d/%y, %-I:%M %p} - {ANDROID_E2E}\n"]
    for n in range(count):
        at = start + timedelta(minutes=n)
        header = odd.get(n, f"{at:%-m/%-d/%y, %-I:%M %p}")
        sender = "Jane Doe" if n % 3 else "Counterpart"
        lines.append(f"{header} - {sender}: message {n} {WORDS[n % len(WORDS)]}\n")
    return "".join(lines)
