"""Night wandering: the front or back door opened in the night and nothing stirred indoors
after it. A resident living with dementia may walk out at 3 a.m.; the sooner someone knows,
the closer they are found.

The alert is raised `return_within` after the door opened if no indoor activity (anything but
the doors themselves) has been seen since; it resolves at the next indoor activity. Activity
within `LEAVING` of the opening is the resident on their way out (getting out of bed, the hall
sensor as they pass), not a sign that someone is inside.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from detect.activity import Activity
from detect.localtime import in_window, when
from detect.rules.base import Rule
from telecare.alert import Alert
from telecare.config import HomeConfig, NightDoorSettings
from telecare.reading import Reading, format_ts, parse_ts

LEAVING = timedelta(seconds=60)


class NightDoor(Rule):
    name = "night_door"

    def __init__(self, home: HomeConfig, settings: NightDoorSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.opened: datetime | None = None  # a night-time door opening not yet followed up
        self.door: str | None = None
        self.open: Alert | None = None

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if activity is None:
            return []
        window = self.settings.night_hours
        if activity.exit_door:
            if activity.what.endswith("opened") and self.opened is None and \
                    in_window(activity.ts, window.start, window.end, self.tz):
                self.opened, self.door = activity.ts, activity.device
            return []
        if self.opened is not None and activity.ts - self.opened < LEAVING:
            return []  # on the way out
        # Indoor activity: whoever opened the door is inside.
        self.opened = None
        if self.open is not None:
            resolved = self.open.resolve(
                activity.ts, f"Activity indoors again at {when(activity.ts, self.tz)}: "
                             f"{activity.what}.")
            self.open = None
            return [resolved]
        return []

    def next_deadline(self) -> datetime | None:
        if self.opened is None or self.open is not None:
            return None
        return self.opened + self.settings.return_within

    def on_deadline(self, now: datetime) -> list[Alert]:
        if self.opened is None or self.open is not None:
            return []
        opened = self.opened
        minutes = int(self.settings.return_within.total_seconds() // 60)
        self.open = self.firing(
            now, self.settings.severity,
            f"The {(self.door or 'door').replace('-', ' ')} opened at {when(opened, self.tz)}, "
            f"in the night, and nothing has moved indoors in the {minutes} minutes since. The "
            "resident may have gone out: call them, and if there is no answer check the house "
            "and the street.",
            {"door": self.door, "opened_at": format_ts(opened),
             "minutes_without_indoor_activity": minutes})
        self.opened = None
        return [self.open]

    def state(self) -> dict[str, Any]:
        return {"opened": format_ts(self.opened) if self.opened else None, "door": self.door,
                "open": self.open.to_json_obj() if self.open else None}

    def load(self, state: dict[str, Any]) -> None:
        self.opened = parse_ts(state["opened"]) if state.get("opened") else None
        self.door = state.get("door")
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
