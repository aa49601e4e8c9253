"""The alert kinds: stable names (the CLI's JSON uses them) and how severe each is.

What raises each kind is in docs/ARCHITECTURE.md ("Gaps and alerts"). Pure data: the
store keeps open alerts in its ``alert`` table (:mod:`twentyday.store.alerts`).
"""

from __future__ import annotations

SEVERITY = {
    "late_capture": "warning",
    "deadline_approaching": "warning",
    "coverage_gap": "warning",
    "deleted_message": "critical",
    "disappearing_messages": "warning",
    "incomplete_copy": "warning",
    "thread_gap": "info",
    "custodian_silent": "info",
    "undated_record": "warning",
    "unknown_custodian": "warning",
    "ingest_failed": "critical",
    "integrity_failure": "critical",
}
