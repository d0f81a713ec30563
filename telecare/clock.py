"""The one clock type every stage takes: a function returning an aware UTC `datetime`.

Injected everywhere a service needs the time (tests give their own), so no stage reads the
wall clock behind a test's back. Detection never uses it to decide anything (event time
does); ingest stamps arrivals with it, and the alerts stage times escalations by it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)
