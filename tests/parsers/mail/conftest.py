"""Shared set-up of the mail parser tests."""

from __future__ import annotations

import pytest

from twentyday.parsers.mail.calendar_words import calendar_words


@pytest.fixture(autouse=True, scope="session")
def _cldr_tables_built() -> None:
    # The CLDR tables are built once per process, on the first date read (their cost is measured
    # in test_calendar_words.py); the timing tests here measure the work per message, not that.
    calendar_words()
