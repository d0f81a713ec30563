"""Night wandering: the front or back door opened in the night and nothing stirred indoors
after it. A resident living with dementia may walk out at 3 a.m.; the sooner someone knows,
the closer they are found.

The alert is raised `return_within` after the door opened if no indoor activity (anything but
the doors themselves) has been seen since; it resolves at the next indoor activity. Activity
within `LEAVING` of the opening is the resident on their way out (getting out of bed, the hall
sensor as they pass), not a sign that someone is inside.

Some residents go out at night as a matter of course. A resident who has come home in the
night hours after an outing of an hour or more on `HABIT_NIGHTS` of the last `KEEP_DAYS`
nights (outings that raised no alert: nothing flagged is learned from) is taken to do so: a
night-time opening then raises the alert only if they are not back by the end of the night
hours, and the alert says why it waited.
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
OUTING = timedelta(hours=1)
HABIT_NIGHTS = 3
KEEP_DAYS = 28
RETURN_CONFIRM = timedelta(minutes=10)


class NightDoor(Rule):
    name = "night_door"

    def __init__(self, home: HomeConfig, settings: NightDoorSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.opened: datetime | None = None  # a night-time door opening not yet followed up
        self.door: str | None = None
        self.open: Alert | None = None
        self.door_at: datetime | None = None  # the latest door event
        self.stirred: set[str] = set()  # devices active indoors since the door was last used
        self.returning: datetime | None = None  # a door in the night that may be a return
        self.flagged_outing = False
        self.night_returns: list[int] = []  # local ordinals of nights they came home in

    def habitual(self, at: datetime) -> bool:
        day = at.astimezone(self.tz).toordinal()
        return len({d for d in self.night_returns if d > day - KEEP_DAYS}) >= HABIT_NIGHTS

    def _night_end(self, opened: datetime) -> datetime:
        window = self.settings.night_hours
        local = opened.astimezone(self.tz)
        end = local.replace(hour=window.end.hour, minute=window.end.minute, second=0,
                            microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if activity is None:
            return []
        window = self.settings.night_hours
        if activity.exit_door:
            # Coming home in the night: the door, after an hour or more in which the home
            # was empty (no device stirred but perhaps one misfiring sensor) since the last
            # time the door was used, and no alert raised for that outing.
            if self.door_at is not None and activity.ts - self.door_at >= OUTING and \
                    len(self.stirred) <= 1 and not self.flagged_outing and \
                    in_window(activity.ts, window.start, window.end, self.tz):
                self.returning = activity.ts
            if self.door_at is None or activity.ts - self.door_at > LEAVING:
                self.stirred, self.flagged_outing = set(), False
            self.door_at = activity.ts
            if activity.what.endswith("opened") and self.opened is None and \
                    self.returning is None and \
                    in_window(activity.ts, window.start, window.end, self.tz):
                self.opened, self.door = activity.ts, activity.device
            return []
        if self.opened is not None and activity.ts - self.opened < LEAVING:
            return []  # on the way out
        if self.door_at is None or activity.ts - self.door_at > LEAVING:
            self.stirred.add(activity.device)
        if self.returning is not None:
            if activity.ts - self.returning <= RETURN_CONFIRM:
                night = (self.returning.astimezone(self.tz) - timedelta(hours=12)).toordinal()
                self.night_returns = [d for d in self.night_returns if d > night - KEEP_DAYS]
                if night not in self.night_returns:
                    self.night_returns.append(night)
            self.returning = None
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
        soon = self.opened + self.settings.return_within
        return max(soon, self._night_end(self.opened)) if self.habitual(self.opened) else soon

    def on_deadline(self, now: datetime) -> list[Alert]:
        if self.opened is None or self.open is not None:
            return []
        opened = self.opened
        minutes = int((now - opened).total_seconds() // 60)
        habit = ""
        if self.habitual(opened):
            nights = len(self.night_returns)
            habit = (f" They often come home in the night ({nights} of the last {KEEP_DAYS} "
                     f"nights), so this waited for the end of the night hours; they are not "
                     "back yet.")
        self.open = self.firing(
            now, self.settings.severity,
            f"The {(self.door or 'door').replace('-', ' ')} opened at {when(opened, self.tz)}, "
            f"in the night, and nothing has moved indoors in the {minutes} minutes since.{habit}"
            " The resident may have gone out: call them, and if there is no answer check the "
            "house and the street.",
            {"door": self.door, "opened_at": format_ts(opened),
             "minutes_without_indoor_activity": minutes,
             "habitual_night_outings": self.habitual(opened)})
        self.flagged_outing = True
        self.opened = None
        return [self.open]

    def state(self) -> dict[str, Any]:
        def ts(t: datetime | None) -> str | None:
            return format_ts(t) if t else None
        return {"opened": ts(self.opened), "door": self.door,
                "open": self.open.to_json_obj() if self.open else None,
                "door_at": ts(self.door_at), "stirred": sorted(self.stirred),
                "returning": ts(self.returning),
                "flagged_outing": self.flagged_outing, "night_returns": self.night_returns}

    def load(self, state: dict[str, Any]) -> None:
        self.opened = parse_ts(state["opened"]) if state.get("opened") else None
        self.door = state.get("door")
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
        self.stirred = set(state.get("stirred", []))
        self.returning = parse_ts(state["returning"]) if state.get("returning") else None
        self.door_at = parse_ts(state["door_at"]) if state.get("door_at") else None
        self.flagged_outing = bool(state.get("flagged_outing", False))
        self.night_returns = list(state.get("night_returns", []))
