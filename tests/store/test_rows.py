"""The typed rows are the column lists: the writer's inserts and verify's recomputation agree by name."""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from twentyday.store import rows


@pytest.mark.parametrize(("row_type", "columns"), [
    (rows.RecordRow, rows.RECORD_COLUMNS),
    (rows.CaptureRow, rows.CAPTURE_COLUMNS),
    (rows.EventRow, rows.EVENT_COLUMNS),
    (rows.AttachmentRow, rows.ATTACHMENT_COLUMNS),
])
def test_row_fields_are_the_columns_in_order(row_type: type[NamedTuple], columns: tuple[str, ...]) -> None:
    assert row_type._fields == columns


def test_a_record_rows_digest_is_the_one_verify_recomputes_from_the_index() -> None:
    # verify reads the row back as a dict keyed by column; the writer commits to the typed row.
    row = rows.RecordRow(*(f"value of {column}" for column in rows.RECORD_COLUMNS))
    from_index: dict[str, Any] = {column: f"value of {column}" for column in rows.RECORD_COLUMNS}
    from_index["sender"], from_index["id"] = from_index["id"], from_index["sender"]
    assert rows.row_digest(row._asdict()) != rows.row_digest(from_index)
    from_index["sender"], from_index["id"] = from_index["id"], from_index["sender"]
    assert rows.row_digest(row._asdict()) == rows.row_digest(from_index)
