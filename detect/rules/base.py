"""The interface every rule keeps, so the engine can drive any of them in event time.

A rule sees each reading of its home (`observe`), says when it next needs to be woken if no
reading comes (`next_deadline`), and is woken at exactly that event time (`on_deadline`). It
returns alert changes: a new `Alert` firing, or the same alert resolved. Its state is plain
JSON (`state` / `load`) so that the live service can checkpoint it and resume after a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from detect.activity import Activity
from telecare.alert import Alert
from telecare.config import HomeConfig
from telecare.reading import Reading


class Rule:
    name: ClassVar[str]

    def __init__(self, home: HomeConfig) -> None:
        self.home = home
        self.tz = home.tz

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        return []

    def next_deadline(self) -> datetime | None:
        return None

    def on_deadline(self, now: datetime) -> list[Alert]:
        return []

    def state(self) -> dict[str, Any]:
        return {}

    def load(self, state: dict[str, Any]) -> None:
        pass
