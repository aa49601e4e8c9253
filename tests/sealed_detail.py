"""What the index keeps of a capture only sealed (its own name, the full reason it was kept),
opened with the test archive's officer key, as ``twentyday show cap-…`` does (without the disclosure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from twentyday.crypto import keys
from twentyday.store.archive import Archive
from twentyday.store.rows import DETAIL_SLOT


def sealed_detail(archive: Archive, archive_dir: Path, capture_id: str) -> dict[str, Any]:
    found = archive.conn.execute("SELECT id FROM blob WHERE owner = ? AND slot = ?",
                                 (capture_id, DETAIL_SLOT)).fetchone()
    if found is None:
        return {}
    identity = keys.load_identity(archive_dir / "officer.key", None)
    detail: dict[str, Any] = json.loads(archive.open_blob(archive.blob_ref(found[0]), identity))
    return detail


def capture_names(archive: Archive, archive_dir: Path) -> dict[str, str]:
    """Each capture's own name (sealed, or the index's when it made none), by capture id."""
    names = {}
    for capture_id, indexed in archive.conn.execute("SELECT id, source_name FROM capture"):
        names[capture_id] = sealed_detail(archive, archive_dir, capture_id).get("name", indexed)
    return names
