"""Not up by the resident's usual time plus a margin: they may be unwell or have fallen.

Getting up is told apart from a night-time toilet trip by what follows it: the resident is
up once they have been active out of bed for `SUSTAINED` (another event at least that long
after the first, with no quiet gap longer than `QUIET` and no return to bed between). A walk
to the toilet and back to bed, or a few movements and then an hour of silence, is not
getting up. A home with only door contacts and plugs shows no night-time trips, so there
the first morning use of the kettle, the fridge or a door is getting up.

The usual time is the median of the resident's own recent getting-up times (robust to the
odd early or late morning); until `min_days` mornings are known, the plan's `default_up_by`
is the deadline and the alert says the usual time is still being learned. A morning that
begins with the resident out (a hospital stay, a night away) is not judged.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from detect.activity import Activity
from detect.baseline import Baseline
from detect.rules.base import Rule
from telecare.alert import Alert
from telecare.config import HomeConfig, RoutineSettings
from telecare.reading import Reading, format_ts, parse_ts

SUSTAINED = timedelta(minutes=20)
SUSTAINED_SPARSE = timedelta(minutes=1)  # doors and plugs only: a second use, a minute on
QUIET = timedelta(minutes=60)
# Getting up is undone by a return to bed (or, with motion sensors, an hour's silence) that
# begins within this of it: a trip or a night out ending. Later, it is a nap.
CONFIRM = timedelta(minutes=45)
MORNING_START = 4  # local hour: activity from here on may be getting up
MORNING_END = 15
EARLIEST_DEADLINE = time(6, 30)  # never call someone "not up" before this
LATEST_DEADLINE = time(13, 30)  # a late riser (real ones rise at 12:30) is judged by then
WARMUP_SLACK = 1.0  # hours past the latest morning seen, while the usual time is learned


def _hours(t: datetime) -> float:
    return t.hour + t.minute / 60 + t.second / 3600


def _clock(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


class NotUp(Rule):
    name = "not_up"

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.baseline = Baseline(settings.baseline_days, settings.min_days)
        self.day: date | None = None  # the local date whose morning is being watched
        self.candidate: datetime | None = None  # start of the current out-of-bed activity
        self.last_act: datetime | None = None
        self.up_at: datetime | None = None  # confirmed getting up this morning
        self.out = False  # the last thing the resident did was go out of a door
        self.skip = False  # this morning is not judged (began before we watched, or away)
        self.open: Alert | None = None
        self.flagged = False
        self._deadline_cache: tuple[tuple[date, int], datetime] | None = None
        # Doors and plugs only: two uses a minute or more apart, then no long silence, mean
        # up; a door and then silence (an early trip to the toilet) does not.
        self.sustained = SUSTAINED if any(d.kind in ("motion", "bed", "chair")
                                          for d in home.devices) else SUSTAINED_SPARSE

    # --- when ---------------------------------------------------------------------------

    def _usual_h(self) -> float | None:
        return self.baseline.median() if self.baseline.ready() else None

    def _deadline(self, day: date) -> datetime:
        usual = self._usual_h()
        if usual is None:
            # Still learning: the plan's default, but never earlier than an hour past the
            # latest morning already seen (a late riser is not ill every morning).
            by = self.settings.default_up_by
            seen = self.baseline.values()
            if seen:
                latest = min(max(seen) + WARMUP_SLACK, 23.9)
                by = max(by, time(int(latest), int(latest % 1 * 60)))
            by = min(by, LATEST_DEADLINE) if by > self.settings.default_up_by else by
        else:
            hours = min(23.9, usual + self.settings.margin.total_seconds() / 3600)
            by = time(int(hours) % 24, int(hours % 1 * 60))
            by = min(max(by, EARLIEST_DEADLINE), LATEST_DEADLINE)
        return datetime.combine(day, by, tzinfo=self.tz)

    def _day_deadline(self, day: date) -> datetime:
        key = (day, len(self.baseline.history))
        if self._deadline_cache is None or self._deadline_cache[0] != key:
            self._deadline_cache = (key, self._deadline(day))
        return self._deadline_cache[1]

    def _morning_of(self, ts: datetime) -> date:
        return (ts.astimezone(self.tz) - timedelta(hours=MORNING_START)).date()

    def _roll(self, day: date, at: datetime, woken: bool = False) -> None:
        """A new morning: learn yesterday's getting-up time, start watching today's."""
        if self.day is not None and self.up_at is not None:
            # A morning flagged against the plan's default while still learning is still
            # the resident's own time (a late riser is not ill every day); only a morning
            # flagged against their own baseline is kept out of it.
            self.baseline.add(self.day.isoformat(), round(_hours(self.up_at.astimezone(
                self.tz)), 3), self.flagged and self.baseline.ready())
        self.day, self.candidate, self.up_at, self.flagged, self.open = day, None, None, \
            False, None
        # A morning whose deadline passed before we watched it, or that starts with the
        # resident out of the house, is not judged. (Woken at the deadline we announced, we
        # were watching: learning yesterday may have moved today's deadline a minute.)
        self.skip = (not woken and self._day_deadline(day) < at) or self.out

    # --- what ---------------------------------------------------------------------------

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if activity is None:
            return []
        if self.last_act is not None and activity.ts < self.last_act:
            return []  # late: the morning has been judged on what came in time
        day = self._morning_of(activity.ts)
        if self.day is None or day > self.day:
            self._roll(day, activity.ts)
        last, self.last_act = self.last_act, activity.ts
        self.out = activity.exit_door
        if self.up_at is not None and self.open is None and \
                activity.ts < self._day_deadline(day) and (
                    (activity.in_bed and activity.ts < self.up_at + CONFIRM) or (
                        self.sustained == SUSTAINED and last is not None and
                        last < self.up_at + CONFIRM and activity.ts - last > QUIET)):
            # Back to bed, or (where motion sensors would see someone up) an hour's silence,
            # soon after: that was a trip in the night or an early wander (a night out
            # ending), not getting up. Keep watching. (In a home of doors and plugs an hour
            # without a door or an appliance is an ordinary morning.)
            self.up_at, self.candidate = None, None
        if self.up_at is not None or activity.exit_door:
            return []
        if _hours(activity.ts.astimezone(self.tz)) >= MORNING_END:
            return []
        if activity.in_bed or _hours(activity.ts.astimezone(self.tz)) < MORNING_START:
            self.candidate = None  # in bed (or still night): not up
            return []
        if self.candidate is None or (last is not None and activity.ts - last > QUIET):
            self.candidate = activity.ts
        if activity.ts - self.candidate < self.sustained:
            return []
        self.up_at = self.candidate
        if self.open is None:
            return []
        done = self.open.resolve(activity.ts, (
            f"Up and about since {self.up_at.astimezone(self.tz):%H:%M} "
            f"(latest: {activity.what})."))
        self.open = None
        return [done]

    def next_deadline(self) -> datetime | None:
        if self.day is None:
            return None
        if self.up_at is not None or self.open is not None or self.skip:
            return self._day_deadline(self.day + timedelta(days=1))
        deadline = self._day_deadline(self.day)
        if self.candidate is not None and self.last_act is not None:
            # Active just now: wait to see whether it lasts or falls quiet.
            return max(deadline, self.last_act + QUIET)
        return deadline

    def on_deadline(self, now: datetime) -> list[Alert]:
        day = self._morning_of(now)
        if self.day is None or day > self.day:
            self._roll(day, now, woken=True)
            if self.skip:
                return []
        if self.day is not None and now < self._day_deadline(self.day):
            return []  # the deadline moved later; woken again then
        if self.up_at is not None or self.open is not None or self.skip or self.out:
            if self.out:
                self.skip = True  # gone out without being seen up: not judged
            return []
        if self.candidate is not None and self.last_act is not None and \
                now - self.last_act < QUIET:
            return []
        usual = self._usual_h()
        if usual is None:
            basis = (f"Their usual time is still being learned (this needs "
                     f"{self.settings.min_days} mornings); the plan's default of up by "
                     f"{self.settings.default_up_by:%H:%M} applies.")
        else:
            basis = (f"They usually get up around {_clock(usual)} (median of the last "
                     f"{len(self.baseline.values())} mornings).")
        stirred = ""
        if self.candidate is not None and self.last_act is not None:
            stirred = (f" Brief activity at {self.candidate.astimezone(self.tz):%H:%M}, "
                       "then quiet.")
        self.flagged = True
        self.open = self.firing(
            now, self.settings.severity,
            f"Not up yet this morning: no sign of the resident being up and about by "
            f"{now.astimezone(self.tz):%H:%M}.{stirred} {basis} Call them; they may be unwell "
            "or have fallen.",
            {"usual_up": _clock(usual) if usual is not None else None,
             "baseline_mornings": len(self.baseline.values()),
             "warming_up": usual is None,
             "margin_minutes": self.settings.margin.total_seconds() / 60,
             "baseline": self.baseline.describe()})
        return [self.open]

    # --- state --------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        def ts(t: datetime | None) -> str | None:
            return format_ts(t) if t else None
        return {"baseline": self.baseline.state(),
                "day": self.day.isoformat() if self.day else None,
                "candidate": ts(self.candidate), "last_act": ts(self.last_act),
                "up_at": ts(self.up_at), "out": self.out, "skip": self.skip,
                "flagged": self.flagged,
                "open": self.open.to_json_obj() if self.open else None}

    def load(self, state: dict[str, Any]) -> None:
        def ts(key: str) -> datetime | None:
            return parse_ts(state[key]) if state.get(key) else None
        self.baseline.load(state.get("baseline", {}))
        self.day = date.fromisoformat(state["day"]) if state.get("day") else None
        self.candidate, self.last_act, self.up_at = ts("candidate"), ts("last_act"), \
            ts("up_at")
        self.out = bool(state.get("out", False))
        self.skip = bool(state.get("skip", False))
        self.flagged = bool(state.get("flagged", False))
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
