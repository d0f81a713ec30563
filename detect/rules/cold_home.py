"""A cold home: a room below `below_c` for `for` (default 16 C for 1 h).

One alert per home however many rooms are cold; it names them all. A room's cold spell starts
at its first reading below `below_c` and ends at its first reading at or above `clear_above_c`
(hysteresis, so a room hovering at the line does not flap). The alert resolves when no room is
in a cold spell.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from detect.activity import Activity
from detect.localtime import hours_minutes, when
from detect.rules.base import Rule
from telecare.alert import Alert, alert_id
from telecare.config import ColdHomeSettings, HomeConfig
from telecare.reading import Reading, format_ts, parse_ts


class ColdHome(Rule):
    name = "cold_home"

    def __init__(self, home: HomeConfig, settings: ColdHomeSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.cold_since: dict[str, datetime] = {}  # device -> start of its cold spell
        self.last: dict[str, tuple[datetime, float]] = {}  # device -> last reading
        self.lowest: dict[str, float] = {}
        self.open: Alert | None = None

    def _room(self, device_id: str) -> str:
        device = self.home.device(device_id)
        return device.room if device and device.room else device_id

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if reading.kind != "temperature":
            return []
        prev = self.last.get(reading.device)
        if prev is not None and reading.ts < prev[0]:
            return []  # late: the device has reported since
        self.last[reading.device] = (reading.ts, reading.value)
        if reading.value < self.settings.below_c:
            self.cold_since.setdefault(reading.device, reading.ts)
            self.lowest[reading.device] = min(self.lowest.get(reading.device, 99.0), reading.value)
        elif reading.value >= self.settings.clear_above_c:
            self.cold_since.pop(reading.device, None)
            self.lowest.pop(reading.device, None)
        if self.open is not None and not self.cold_since:
            rooms = ", ".join(sorted(self._room(d) for d in self.open.evidence["devices"]))
            resolved = self.open.resolve(
                reading.ts,
                f"Warm again: the {rooms} reached {reading.value:.1f} °C at "
                f"{when(reading.ts, self.tz)} (was below {self.settings.below_c:g} °C).",
            )
            self.open = None
            return [resolved]
        return []

    def next_deadline(self) -> datetime | None:
        if self.open is not None or not self.cold_since:
            return None
        return min(self.cold_since.values()) + self.settings.duration

    def on_deadline(self, now: datetime) -> list[Alert]:
        cold = {d: s for d, s in self.cold_since.items() if s + self.settings.duration <= now}
        if self.open is not None or not cold:
            return []
        first = min(cold.values())
        parts = []
        for device, since in sorted(cold.items(), key=lambda kv: kv[1]):
            parts.append(f"the {self._room(device)} has been below {self.settings.below_c:g} °C "
                         f"since {when(since, self.tz)} (now {self.last[device][1]:.1f} °C)")
        message = (
            f"The home is cold: {'; '.join(parts)}. That is {hours_minutes(now - first)} "
            "below the limit; 18 °C is the healthy minimum for an older person. "
            "Check the heating and that the resident is warm."
        )
        self.open = Alert(
            id=alert_id(self.home.home, self.name, "", now),
            home=self.home.home,
            rule=self.name,
            severity=self.settings.severity,  # type: ignore[arg-type]
            raised_at=now,
            status="firing",
            message=message,
            evidence={
                "devices": sorted(cold),
                "rooms": sorted({self._room(d) for d in cold}),
                "cold_since": format_ts(first),
                "latest_c": {d: self.last[d][1] for d in sorted(cold)},
                "lowest_c": {d: self.lowest[d] for d in sorted(cold)},
                "below_c": self.settings.below_c,
                "for_minutes": self.settings.duration.total_seconds() / 60,
            },
        )
        return [self.open]

    def state(self) -> dict[str, Any]:
        return {
            "cold_since": {d: format_ts(t) for d, t in self.cold_since.items()},
            "last": {d: [format_ts(t), v] for d, (t, v) in self.last.items()},
            "lowest": self.lowest,
            "open": self.open.to_json_obj() if self.open else None,
        }

    def load(self, state: dict[str, Any]) -> None:
        self.cold_since = {d: parse_ts(t) for d, t in state.get("cold_since", {}).items()}
        self.last = {d: (parse_ts(t), float(v)) for d, (t, v) in state.get("last", {}).items()}
        self.lowest = dict(state.get("lowest", {}))
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
