"""Run by tests as a real subprocess: one large capture (or CAPTURES of them), then exit.

Usage: python ingest_worker.py CONFIG SEED MESSAGES RAW_MB [CAPTURES]
(RAW_MB 0: a few bytes of raw capture.)
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from twentyday.config import load
from twentyday.records import ParsedMessage
from twentyday.store.archive import Archive
from twentyday.store.writer import CaptureInput, RecordDraft


def main() -> None:
    config_path, first_seed, count, raw_mb = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    captures = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    archive = Archive(load(Path(config_path)))
    start = datetime(2026, 11, 1, tzinfo=UTC)

    def drafts(seed: str) -> object:
        for n in range(count):
            at = start + timedelta(seconds=n)
            body = f"crash test {seed} message {n}"
            message = ParsedMessage("whatsapp", f"chat {seed}", "Jane", at, None, body)
            yield RecordDraft(message, "sent", False, ("jdoe", "whatsapp", seed, str(n)))

    print("started", flush=True)
    for number in range(captures):
        seed = first_seed if captures == 1 else f"{first_seed}-{number}"
        raw = (seed.encode() * 1024)[: 1024] * (raw_mb * 1024) if raw_mb else f"export {seed}".encode()
        result = archive.ingest(CaptureInput("jdoe", "cli", f"export-{seed}.txt", raw, "test", datetime.now(UTC)),
                                drafts(seed))  # type: ignore[arg-type]
        print(f"committed {result.new_count}", flush=True)


if __name__ == "__main__":
    main()
