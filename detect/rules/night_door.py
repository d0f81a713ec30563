"""Night wandering: the front or back door opened in the night and nothing stirred indoors
after it. A resident living with dementia may walk out at 3 a.m.; the sooner someone knows,
the closer they are found.

The alert is raised `return_within` after the door opened if no indoor activity (anything but
the doors themselves) has been seen since; it resolves at the next indoor activity. Activity
within `LEAVING` of the opening is the resident on their way out (getting out of bed, the hall
sensor as they pass), not a sign that someone is inside.

Some residents go out at night as a matter of course. Each outing of an hour or more that
ends in the night hours, or began in them, is remembered with its span (outings that raised
no alert: nothing flagged is learned from; it is known when they come home, by the door
after an hour in which the home stayed empty). A night-time departure at a time of night at
which the resident went out on `HABIT_NIGHTS` of the last `KEEP_DAYS` nights (within
`LEFT_NEAR` of an outing's start) is taken to be one of theirs: it raises the alert only if
they are not back by the end of the night hours, and the alert says why it waited. Being
out from 22:00 till 02:00 most nights makes no habit of leaving a sleeping house at 01:30,
nor at 03:00: that is told of at once.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from detect.activity import Activity
from detect.localtime import in_window, when
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import Duration, HomeConfig, RuleSettings, Severity, Window
from telecare.reading import Reading, format_ts, parse_ts

LEAVING = timedelta(seconds=60)
OUTING = timedelta(hours=1)
HABIT_NIGHTS = 3
KEEP_DAYS = 28
RETURN_CONFIRM = timedelta(minutes=10)
LEFT_NEAR = 60  # minutes either side of an outing's departure: the same time of night


def _night_minute(at: datetime, tz: ZoneInfo) -> int:
    """Minutes since noon, local: a night's times in order across midnight."""
    local = at.astimezone(tz)
    return (local.hour * 60 + local.minute - 720) % 1440


class NightDoorSettings(RuleSettings):
    severity: Severity = "high"
    night_hours: Window = Window(start=time(23), end=time(6))
    return_within: Duration = timedelta(minutes=15)


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
        self.returning: datetime | None = None  # a door that may be a homecoming
        self.left_at: datetime | None = None  # ... after leaving then
        self.flagged_outing = False
        # Night-time outings: [local ordinal of the night, left, back (minutes since noon)].
        self.outings: list[list[int]] = []

    def habit_nights(self, at: datetime) -> int:
        """On how many recent nights the resident went out at about this time of night
        (within LEFT_NEAR of it). Being out at this time is not enough: a door opened
        from a home they were seen in is a departure, and someone who leaves at 22:00 and
        comes home at 02:00 (Ordonez B) does not leave a sleeping house at 01:56."""
        day = (at.astimezone(self.tz) - timedelta(hours=12)).toordinal()
        minute = _night_minute(at, self.tz)
        return len({night for night, left, back in self.outings
                    if night > day - KEEP_DAYS and abs(left - minute) <= LEFT_NEAR})

    def habitual(self, at: datetime) -> bool:
        return self.habit_nights(at) >= HABIT_NIGHTS

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
            # Coming home from a night out: the door, after an hour or more in which the
            # home was empty (no device stirred but perhaps one misfiring sensor) since the
            # last time the door was used, and no alert raised for that outing.
            if self.door_at is not None and activity.ts - self.door_at >= OUTING and \
                    len(self.stirred) <= 1 and not self.flagged_outing and (
                        in_window(activity.ts, window.start, window.end, self.tz) or
                        in_window(self.door_at, window.start, window.end, self.tz)):
                self.returning, self.left_at = activity.ts, self.door_at
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
        if self.returning is not None and self.left_at is not None:
            if activity.ts - self.returning <= RETURN_CONFIRM:
                night = (self.returning.astimezone(self.tz) - timedelta(hours=12)).toordinal()
                left = _night_minute(self.left_at, self.tz)
                back = _night_minute(self.returning, self.tz)
                if self.returning - self.left_at >= timedelta(hours=24):
                    left, back = 0, 1439  # out all night
                elif back < left:
                    back = 1439  # out past noon: from leaving to the night's end
                self.outings = [o for o in self.outings if o[0] > night - KEEP_DAYS]
                self.outings.append([night, left, back])
            self.returning = self.left_at = None
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
            habit = (f" They often go out at this time of night ({self.habit_nights(opened)} "
                     f"of the last {KEEP_DAYS} nights), so this waited for the end of the night "
                     "hours; they are not back yet.")
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
                "returning": ts(self.returning), "left_at": ts(self.left_at),
                "flagged_outing": self.flagged_outing, "outings": self.outings}

    def load(self, state: dict[str, Any]) -> None:
        self.opened = parse_ts(state["opened"]) if state.get("opened") else None
        self.door = state.get("door")
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
        self.stirred = set(state.get("stirred", []))
        self.returning = parse_ts(state["returning"]) if state.get("returning") else None
        self.door_at = parse_ts(state["door_at"]) if state.get("door_at") else None
        self.flagged_outing = bool(state.get("flagged_outing", False))
        self.left_at = parse_ts(state["left_at"]) if state.get("left_at") else None
        self.outings = [list(o) for o in state.get("outings", [])]


SPEC = RuleSpec("night_door", NightDoorSettings, NightDoor)
