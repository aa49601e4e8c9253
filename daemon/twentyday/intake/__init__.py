"""The sources: the SMTP forwarding address and the watched export folder.

Each puts what it receives into the spool with a :class:`~twentyday.spool.SpoolMeta`
and acknowledges only once that is durable (docs/ARCHITECTURE.md, "Intake").
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

#: The clock a source takes an item's receive time from unless it is given one (a test's
#: fixed clock): that time decides on time or late, so no source reads the wall clock itself.
utc_now: Callable[[], datetime] = partial(datetime.now, UTC)
