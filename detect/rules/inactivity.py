"""Inactivity: no resident activity for too long in waking hours while the resident is at home.

This is what catches a long lie after an undetected fall. Only waking-hours time counts
towards the threshold (the resident's local time), so a quiet night does not raise it, and
the clock is paused while the resident is in bed (a bed mat shows occupied) or has gone out
(the last thing that happened was the front or back door). The deadline is a timer in event
time: it fires when the home's stream passes it even if this home sends nothing more.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from detect.activity import Activity
from detect.localtime import add_window_time, hours_minutes, when
from detect.rules.base import Rule
from telecare.alert import Alert
from telecare.config import HomeConfig, InactivitySettings
from telecare.reading import Reading, format_ts, parse_ts


class Inactivity(Rule):
    name = "inactivity"

    def __init__(self, home: HomeConfig, settings: InactivitySettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.last: Activity | None = None
        self.open: Alert | None = None
        self._deadline: datetime | None = None
        presence = {"motion", "bed", "chair"}
        self.sparse = not any(d.kind in presence for d in home.devices)
        self.threshold = settings.sparse_threshold if self.sparse else settings.threshold

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if activity is None or (self.last is not None and activity.ts < self.last.ts):
            return []
        self.last = activity
        self._deadline = self._compute_deadline()
        if self.open is None:
            return []
        resolved = self.open.resolve(
            activity.ts,
            f"Activity again at {when(activity.ts, self.tz)}: {activity.what}, after "
            f"{hours_minutes(activity.ts - self.open.raised_at)} of alert "
            f"({hours_minutes(activity.ts - self._open_since())} with no activity seen).",
        )
        self.open = None
        return [resolved]

    def _open_since(self) -> datetime:
        assert self.open is not None
        return parse_ts(self.open.evidence["last_activity_at"])

    def _compute_deadline(self) -> datetime | None:
        last = self.last
        if last is None or last.exit_door or last.in_bed:
            return None  # no history yet, gone out, or resting in bed
        window = self.settings.waking_hours
        return add_window_time(last.ts, self._threshold(last), window.start, window.end,
                               self.tz)

    def _threshold(self, last: Activity) -> timedelta:
        # Sitting in a chair with a pressure mat (watching TV, dozing) is resting, not lying
        # on the floor: allow longer, but not for ever.
        return max(self.threshold, self.settings.resting_threshold) if last.in_chair \
            else self.threshold

    def next_deadline(self) -> datetime | None:
        return None if self.open is not None else self._deadline

    def on_deadline(self, now: datetime) -> list[Alert]:
        last = self.last
        if self.open is not None or last is None or self._deadline is None:
            return []
        threshold = hours_minutes(self._threshold(last))
        message = (
            f"No activity seen at home since {when(last.ts, self.tz)} "
            f"(last: {last.what}), and the resident has not gone out. "
            f"That is {threshold} of waking hours, the limit in their plan"
            f"{' for a home with only door and appliance sensors' if self.sparse else ''}. "
            "They may have fallen: call them now, and send someone if there is no answer."
        )
        self.open = self.firing(
            self._deadline, self.settings.severity, message,
            {
                "last_activity_at": format_ts(last.ts),
                "last_activity": last.what,
                "last_device": last.device,
                "threshold_minutes": self._threshold(last).total_seconds() / 60,
                "waking_hours": [self.settings.waking_hours.start.strftime("%H:%M"),
                                 self.settings.waking_hours.end.strftime("%H:%M")],
            },
        )
        return [self.open]

    def state(self) -> dict[str, Any]:
        last = self.last
        return {
            "last": None if last is None else {
                "ts": format_ts(last.ts), "device": last.device, "room": last.room,
                "what": last.what, "exit_door": last.exit_door, "in_bed": last.in_bed,
                "in_chair": last.in_chair,
            },
            "open": self.open.to_json_obj() if self.open else None,
        }

    def load(self, state: dict[str, Any]) -> None:
        raw = state.get("last")
        self.last = None if raw is None else Activity(
            ts=parse_ts(raw["ts"]), device=raw["device"], room=raw["room"], what=raw["what"],
            exit_door=raw["exit_door"], in_bed=raw["in_bed"], in_chair=raw.get("in_chair", False),
        )
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
        self._deadline = self._compute_deadline()
