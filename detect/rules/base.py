"""The interface every rule keeps, so the engine can drive any of them in event time.

A rule sees each reading of its home (`observe`), says when it next needs to be woken if no
reading comes (`next_deadline`), and is woken at exactly that event time (`on_deadline`). It
returns alert changes: a new `Alert` firing, or the same alert resolved. Its state is plain
JSON (`state` / `load`) so that the live service can checkpoint it and resume after a restart.

A rule module also declares its settings (a `RuleSettings` subclass, defaults in the fields)
and a `RuleSpec` naming the rule, its settings and how to make it for a home; the table in
`detect.rules` lists the specs, one line each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from detect.activity import Activity
from telecare.alert import Alert, alert_id
from telecare.config import HomeConfig, RuleSettings
from telecare.reading import Reading


class Rule:
    name: ClassVar[str]

    def __init__(self, home: HomeConfig) -> None:
        self.home = home
        self.tz = home.tz

    def firing(self, at: datetime, severity: str, message: str, evidence: dict[str, Any],
               key: str = "", rule: str | None = None) -> Alert:
        """A new occurrence raised at event time `at`, of this rule (or of `rule`, for a rule
        that raises more than one kind); `key` tells apart occurrences of one rule at one
        time (a device, a level). The id derives from these, as `alert_id` says."""
        name = rule or self.name
        return Alert(id=alert_id(self.home.home, name, key, at), home=self.home.home,
                     rule=name, severity=severity,  # type: ignore[arg-type]  # config checked it
                     raised_at=at, status="firing", message=message, evidence=evidence)

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


S = TypeVar("S", bound=RuleSettings)


@dataclass(frozen=True)
class RuleSpec(Generic[S]):
    """One line of the rule table: the name a plan uses, the settings it takes, and how to
    make the rule for a home from them."""

    name: str
    settings: type[S]
    make: Callable[[HomeConfig, S], Rule]
