"""A cold or a hot home: a room past a limit for a while.

cold_home: a room below `below_c` for `for` (default 16 C for 1 h; UK guidance: 18 C is the
healthy minimum). hot_home: a room above `above_c` for `for` (default 26 C for 2 h, the
indoor temperature UK heat-health guidance treats as a risk for older people).

One alert per home however many rooms are past the limit; it names them all. A room's spell
starts at its first reading past the limit and ends at its first reading back past the
clearing line (hysteresis, so a room hovering at the line does not flap). The alert
resolves when no room is in a spell.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field, model_validator

from detect.activity import Activity
from detect.localtime import hours_minutes, when
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import Duration, HomeConfig, RuleSettings, Severity
from telecare.reading import Reading, format_ts, parse_ts


class ColdHomeSettings(RuleSettings):
    severity: Severity = "medium"
    below_c: float = 16.0  # UK guidance: 18 C is the healthy minimum
    clear_above_c: float = 16.5  # resolved only when every cold room is back above this
    duration: Duration = Field(default=timedelta(hours=1), alias="for")

    @model_validator(mode="after")
    def _hysteresis(self) -> ColdHomeSettings:
        if self.clear_above_c < self.below_c:
            raise ValueError("clear_above_c must be at least below_c")
        return self


class HotHomeSettings(RuleSettings):
    severity: Severity = "medium"
    above_c: float = 26.0  # heat-health risk for older people
    clear_below_c: float = 25.0
    duration: Duration = Field(default=timedelta(hours=2), alias="for")

    @model_validator(mode="after")
    def _hysteresis(self) -> HotHomeSettings:
        if self.clear_below_c > self.above_c:
            raise ValueError("clear_below_c must be at most above_c")
        return self


class RoomTemperature(Rule):
    def __init__(self, home: HomeConfig, settings: ColdHomeSettings | HotHomeSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.hot = isinstance(settings, HotHomeSettings)
        self.name = "hot_home" if self.hot else "cold_home"  # type: ignore[misc]
        if isinstance(settings, HotHomeSettings):
            self.limit, self.clear = settings.above_c, settings.clear_below_c
        else:
            self.limit, self.clear = settings.below_c, settings.clear_above_c
        self.duration: timedelta = settings.duration
        self.since: dict[str, datetime] = {}  # device -> start of its spell
        self.last: dict[str, tuple[datetime, float]] = {}  # device -> last reading
        self.extreme: dict[str, float] = {}  # device -> coldest (or hottest) in the spell
        self.open: Alert | None = None

    def _room(self, device_id: str) -> str:
        device = self.home.device(device_id)
        return device.room if device and device.room else device_id

    def _past(self, value: float) -> bool:
        return value > self.limit if self.hot else value < self.limit

    def _cleared(self, value: float) -> bool:
        return value <= self.clear if self.hot else value >= self.clear

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if reading.kind != "temperature":
            return []
        prev = self.last.get(reading.device)
        if prev is not None and reading.ts < prev[0]:
            return []  # late: the device has reported since
        self.last[reading.device] = (reading.ts, reading.value)
        if self._past(reading.value):
            self.since.setdefault(reading.device, reading.ts)
            pick = max if self.hot else min
            self.extreme[reading.device] = pick(self.extreme.get(reading.device, reading.value),
                                                reading.value)
        elif self._cleared(reading.value):
            self.since.pop(reading.device, None)
            self.extreme.pop(reading.device, None)
        if self.open is not None and not self.since:
            rooms = ", ".join(sorted(self._room(d) for d in self.open.evidence["devices"]))
            word = "Cooler" if self.hot else "Warm"
            side = "above" if self.hot else "below"
            resolved = self.open.resolve(
                reading.ts,
                f"{word} again: the {rooms} reached {reading.value:.1f} °C at "
                f"{when(reading.ts, self.tz)} (was {side} {self.limit:g} °C).",
            )
            self.open = None
            return [resolved]
        return []

    def next_deadline(self) -> datetime | None:
        if self.open is not None or not self.since:
            return None
        return min(self.since.values()) + self.duration

    def on_deadline(self, now: datetime) -> list[Alert]:
        due = {d: s for d, s in self.since.items() if s + self.duration <= now}
        if self.open is not None or not due:
            return []
        first = min(due.values())
        side = "above" if self.hot else "below"
        parts = [f"the {self._room(d)} has been {side} {self.limit:g} °C since "
                 f"{when(s, self.tz)} (now {self.last[d][1]:.1f} °C)"
                 for d, s in sorted(due.items(), key=lambda kv: kv[1])]
        if self.hot:
            advice = ("Heat is dangerous for older people: check they are drinking, that "
                      "curtains are closed against the sun and a window open where safe.")
            what = "too hot"
        else:
            advice = ("18 °C is the healthy minimum for an older person. Check the heating "
                      "and that the resident is warm.")
            what = "cold"
        message = (f"The home is {what}: {'; '.join(parts)}. That is "
                   f"{hours_minutes(now - first)} {side} the limit. {advice}")
        self.open = self.firing(
            now, self.settings.severity, message,
            {
                "devices": sorted(due),
                "rooms": sorted({self._room(d) for d in due}),
                "since": format_ts(first),
                "latest_c": {d: self.last[d][1] for d in sorted(due)},
                ("hottest_c" if self.hot else "lowest_c"):
                    {d: self.extreme[d] for d in sorted(due)},
                "limit_c": self.limit,
                "for_minutes": self.duration.total_seconds() / 60,
            },
        )
        return [self.open]

    def state(self) -> dict[str, Any]:
        return {
            "since": {d: format_ts(t) for d, t in self.since.items()},
            "last": {d: [format_ts(t), v] for d, (t, v) in self.last.items()},
            "extreme": self.extreme,
            "open": self.open.to_json_obj() if self.open else None,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.since = {d: parse_ts(t) for d, t in state.get("since", {}).items()}
        self.last = {d: (parse_ts(t), float(v)) for d, (t, v) in state.get("last", {}).items()}
        self.extreme = dict(state.get("extreme", {}))
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None


COLD_HOME = RuleSpec("cold_home", ColdHomeSettings, RoomTemperature)
HOT_HOME = RuleSpec("hot_home", HotHomeSettings, RoomTemperature)
