"""Pendant presses and detected falls: a critical alert at once.

Presses close together are one call for help, not several: a frightened person presses again
and again. A press more than `repeat_window` after the last one is a new occurrence.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from detect.activity import Activity
from detect.localtime import when
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import Duration, HomeConfig, RuleSettings, Severity
from telecare.reading import Reading, format_ts, parse_ts

_WORDS = {
    "pendant": "The pendant alarm was pressed at {t}{where}: the resident is asking for help. "
               "Call them now, and send someone if there is no answer.",
    "fall": "A fall was detected at {t}{where} by the wearable fall detector. "
            "Call the resident now, and send someone if there is no answer.",
}


class EventRuleSettings(RuleSettings):
    severity: Severity = "critical"
    repeat_window: Duration = timedelta(minutes=10)  # presses within this are one call


class CallForHelp(Rule):
    def __init__(self, home: HomeConfig, settings: EventRuleSettings, name: str,
                 kind: str) -> None:
        super().__init__(home)
        self.settings = settings
        self.name = name  # type: ignore[misc]
        self.kind = kind
        self.last_event: datetime | None = None

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if reading.kind != self.kind or reading.value < 1:
            return []
        device = self.home.device(reading.device)
        if device is not None and device.role == "ok_button":
            return []  # the resident saying "I'm OK" is not a call for help
        last = self.last_event
        if last is not None and abs(reading.ts - last) <= self.settings.repeat_window:
            self.last_event = max(last, reading.ts)
            return []
        self.last_event = reading.ts if last is None else max(last, reading.ts)
        room = device.room if device and device.room else None
        where = f" ({room})" if room and room != "worn" else ""
        return [self.firing(
            reading.ts, self.settings.severity,
            _WORDS[self.name].format(t=when(reading.ts, self.tz), where=where),
            {"device": reading.device, "room": room, "at": format_ts(reading.ts)})]

    def state(self) -> dict[str, Any]:
        return {"last_event": format_ts(self.last_event) if self.last_event else None}

    def load(self, state: dict[str, Any]) -> None:
        raw = state.get("last_event")
        self.last_event = parse_ts(raw) if raw else None


PENDANT = RuleSpec("pendant", EventRuleSettings,  # pendant or pull cord: critical, at once
                   lambda home, s: CallForHelp(home, s, "pendant", "button"))
FALL = RuleSpec("fall", EventRuleSettings,  # wearable fall detector: critical, at once
                lambda home, s: CallForHelp(home, s, "fall", "fall"))
