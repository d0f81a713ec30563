"""Not up by the resident's usual time plus a margin: they may be unwell or have fallen.

Getting up is told apart from a night-time toilet trip by what follows it: the resident is
up once they have been active out of bed for `SUSTAINED` (another event at least that long
after the first, with no quiet gap longer than `QUIET` and no return to bed between). A walk
to the toilet and back to bed, or a few movements and then an hour of silence, is not
getting up. A home with only door contacts and plugs shows no night-time trips, so there
the first morning use of the kettle, the fridge or a door is getting up.

Where motion sensors or a bed mat show the night, the usual time is learned with
hindsight, once the morning is over: it is the end of the night's main rest, the longest
spell of quiet (or of a bed mat alone) that ends between 04:00 and 15:00, where brief trips
in between (under 20 min, no use of the kitchen, an hour's quiet after) are part of the
rest. A homecoming at 04:00 from a night out followed by sleep till noon teaches noon, not
04:00; pulses of a bed mat under a restless sleeper are rest, not getting up. With doors and
plugs only, the morning's first use is learned (hindsight knows no more there), and a door
followed by a quiet night does not excuse the next morning: it is judged, and the alert says
the door was the last thing seen (after a day of nothing more, they are taken to be away).
The usual time is the median of these over recent mornings,
taken apart for weekdays and weekends once three of the day's type are known (a Sunday
lie-in is not a Monday's; with fewer, the later of the two). Until `min_days` mornings are
known, the deadline is the plan's `default_up_by`, or the latest morning seen so far plus
the margin if that is later, and the alert says the usual time is still being learned. A
morning that begins with the resident out (a hospital stay, a night away) is not judged,
unless they come home before its deadline.
"""

from __future__ import annotations

import statistics
from datetime import date, datetime, time, timedelta
from typing import Any

from detect.activity import Activity, sees_presence
from detect.baseline import Baseline, RoutineSettings
from detect.localtime import hours_minutes, when
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import ClockTime, Duration, HomeConfig, Severity
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
# Hindsight: a gap of REST between the resident's doings is rest (unless it follows the front
# door with no bed mat after it: then they were out); a bout of doings shorter than BRIEF,
# with no kitchen use, between a rest and at least BRIDGE of rest after it is a trip in the
# night. The main rest must last MAIN_REST.
REST = timedelta(minutes=30).total_seconds()
BRIEF = timedelta(minutes=20).total_seconds()
BRIDGE = timedelta(minutes=60).total_seconds()
MAIN_REST = timedelta(hours=3).total_seconds()
ROSE = timedelta(minutes=15).total_seconds()  # out of bed this long before the first doing
NIGHT_FROM = time(18, 0)  # the night whose rest ends in a morning starts the evening before
SAME_TYPE_DAYS = 3  # weekday and weekend mornings are told apart once 3 of a type are known
GONE_AFTER = timedelta(hours=24)  # a day of nothing more (after a door, or at all) is away
# Doors only: a resident seen to spend NIGHTS_OUT nights out (the door in the evening, the
# door again after the morning began, nothing in between) in the last KEEP_NIGHTS days goes
# out at night as a habit, and a door followed by a quiet night means out for them.
NIGHTS_OUT = 2
KEEP_NIGHTS = 28
# A late night while their usual time is still learned: someone whose night's rest began after
# LATE_BED is not "not up" before SLEEP of rest and the margin are over (real residents home
# or to bed at 02:00-05:00 in their first week rose at 11:00-12:30, not by the plan's 10:30).
# Once their usual time is known it governs (a night owl's usual is already late). The night's
# rest is the first rest of FIRST_REST or more since NIGHT_FROM.
LATE_BED = time(0, 30)
SLEEP = timedelta(hours=8)
FIRST_REST = timedelta(hours=2).total_seconds()


def _hours(t: datetime) -> float:
    return t.hour + t.minute / 60 + t.second / 3600


def _weekend(day: date) -> bool:
    return day.weekday() >= 5


def _resting(activity: Activity) -> bool:
    """In bed by a mat (its pulses under a restless sleeper too), or moving in the bedroom:
    not up and about. (Getting up shows outside the bedroom within minutes.)"""
    return activity.in_bed or activity.kind == "bed" or (
        activity.kind == "motion" and activity.room == "bedroom")


def _rests(bouts: list[list[float]], in_bed_only: bool = False) -> list[tuple[float, float]]:
    """The rests (start, end, epoch seconds) between these bouts of doings
    ([first, last, kitchen, ended at the front door, bed mat after, ended sitting in a chair
    with a mat]): gaps of REST or more, joined across a brief bout (under BRIEF, no kitchen
    use) with BRIDGE of rest after it. A gap after the front door with no bed mat after it is
    time out, not rest; with `in_bed_only`, so is one spent sitting in the armchair."""
    out: list[tuple[float, float]] = []
    run_start: float | None = None  # start of the rest being merged
    for i in range(len(bouts) - 1):
        before, after = bouts[i], bouts[i + 1]
        gap = after[0] - before[1]
        away = bool(before[3]) and not before[4]
        sitting_up = in_bed_only and len(before) > 5 and bool(before[5]) and not before[4]
        if gap < REST or away or sitting_up:
            run_start = None
            continue
        if run_start is not None and i > 0:
            bout = bouts[i]
            brief = bout[1] - bout[0] < BRIEF and not bout[2] and gap >= BRIDGE
            if not brief:
                run_start = None
        if run_start is None:
            run_start = before[1]
        elif out and out[-1][0] == run_start:
            out.pop()  # the same rest, now longer
        out.append((run_start, after[0]))
    return out


def main_rest(bouts: list[list[float]], start: float, earliest: float,
              end: float) -> tuple[float, float] | None:
    """The night's main rest (start, end, epoch seconds) from the bouts between `start` and
    `end`: the longest rest of MAIN_REST or more that ended between `earliest` and `end`."""
    inside = [b for b in bouts if b[1] >= start and b[0] < end]
    found = [r for r in _rests(inside) if r[1] - r[0] >= MAIN_REST and r[1] >= earliest]
    return max(found, key=lambda r: r[1] - r[0]) if found else None


def night_began(bouts: list[list[float]], start: float, now: float) -> float | None:
    """When the night's rest began (epoch seconds): the first rest of FIRST_REST or more since
    `start` (trips in the night bridged; sitting up in the armchair is not rest); None if the
    resident is not resting at `now` (active, or last seen going out of the front door)."""
    inside = [b for b in bouts if b[1] >= start and b[0] < now]
    rests = _rests([*inside, [now, now, 0.0, 0.0, 0.0, 0.0]], in_bed_only=True)
    if not rests or rests[-1][1] != now:
        return None
    return next(r[0] for r in rests if r[1] - r[0] >= FIRST_REST or r[1] == now)


def _clock(hours: float) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


class NotUpSettings(RoutineSettings):
    severity: Severity = "high"
    default_up_by: ClockTime = time(10, 30)  # the deadline while the usual time is learned
    margin: Duration = timedelta(hours=2)  # past the usual time


class NotUp(Rule):
    name = "not_up"

    def __init__(self, home: HomeConfig, settings: NotUpSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.baseline = Baseline(settings.baseline_days, settings.min_days)
        self.day: date | None = None  # the local date whose morning is being watched
        self.candidate: datetime | None = None  # start of the current out-of-bed activity
        self.last_act: datetime | None = None
        self.up_at: datetime | None = None  # confirmed getting up this morning
        self.out = False  # the last thing the resident did was go out of a door
        self.sitting = False  # ... or sit down in a chair with a pressure mat
        self.skip = False  # this morning is not judged (began before we watched, or away)
        self.open: Alert | None = None
        self.flagged = False
        # Deadlines by (morning, baseline version): asked after every reading, for today
        # and (once up) tomorrow, so one entry alone would be recomputed each time.
        self._deadlines: dict[tuple[date, int], datetime] = {}
        # Bouts of doings since the evening before the morning watched, for hindsight:
        # [first, last (epoch s), kitchen used, ended at the front door, bed mat after].
        self.bouts: list[list[float]] = []
        self.rested: float | None = None  # the last event in bed or the bedroom (epoch s)
        # Doors and plugs only: two uses a minute or more apart, then no long silence, mean
        # up; a door and then silence (an early trip to the toilet) does not.
        self.sees_night = sees_presence(home)
        self.sustained = SUSTAINED if self.sees_night else SUSTAINED_SPARSE
        self._late_key: tuple[date, datetime, int] | None = None
        self.nights_out: list[int] = []  # doors only: mornings (ordinals) they came home in
        self._late: tuple[datetime, datetime] | None = None

    # --- when ---------------------------------------------------------------------------

    def _usual(self, day: date) -> tuple[float, str, int] | None:
        """The usual getting-up time for `day` (hours), which mornings it comes from, and
        how many; None while still learning."""
        if not self.baseline.ready():
            return None
        same = [v for d, v in self.baseline.entries()
                if _weekend(date.fromisoformat(d)) == _weekend(day)]
        kind = "weekend" if _weekend(day) else "weekday"
        if len(same) >= SAME_TYPE_DAYS:
            return statistics.median(same), kind, len(same)
        overall = self.baseline.median()
        if same and statistics.median(same) > overall:
            # Too few of the type to stand alone, but already later: a second Saturday's
            # lie-in is not an emergency because the weekdays outnumber it.
            return statistics.median(same), kind, len(same)
        return overall, "", len(self.baseline.values())

    def _deadline(self, day: date) -> datetime:
        usual = self._usual(day)
        margin = self.settings.margin.total_seconds() / 3600
        if usual is None:
            # Still learning: the plan's default, but never earlier than the latest
            # morning already seen plus the margin (a late riser is not ill every morning).
            by = self.settings.default_up_by
            seen = self.baseline.values()
            if seen:
                latest = min(max(seen) + margin, 23.9)
                by = max(by, time(int(latest), int(latest % 1 * 60)))
            by = min(by, LATEST_DEADLINE) if by > self.settings.default_up_by else by
        else:
            hours = min(23.9, usual[0] + margin)
            by = time(int(hours) % 24, int(hours % 1 * 60))
            by = min(max(by, EARLIEST_DEADLINE), LATEST_DEADLINE)
        return datetime.combine(day, by, tzinfo=self.tz)

    def _day_deadline(self, day: date) -> datetime:
        # The version, not the length: the history is trimmed, so its length stops growing
        # after 84 mornings while what it holds still changes every morning.
        key = (day, self.baseline.version)
        found = self._deadlines.get(key)
        if found is None:
            if len(self._deadlines) > 8:
                self._deadlines.clear()
            found = self._deadlines[key] = self._deadline(day)
        return found

    def _morning_of(self, ts: datetime) -> date:
        return (ts.astimezone(self.tz) - timedelta(hours=MORNING_START)).date()

    def _roll(self, day: date, at: datetime, woken: bool = False) -> None:
        """A new morning: learn yesterday's getting-up time, start watching today's."""
        if self.day is not None:
            night = datetime.combine(self.day - timedelta(days=1), NIGHT_FROM, self.tz)
            woke: float | None = None
            if self.sees_night:
                rest = main_rest(
                    self.bouts, night.timestamp(),
                    datetime.combine(self.day, time(MORNING_START), self.tz).timestamp(),
                    datetime.combine(self.day, time(MORNING_END), self.tz).timestamp())
                if rest is not None:
                    woke = rest[1]
            elif self.up_at is not None:
                # Doors and plugs only: a night's rest cannot be told from a night out
                # (the door, then nothing) nor a trip from getting up, so hindsight knows no
                # more than the morning's first use did.
                woke = self.up_at.timestamp()
            if woke is not None:
                # A morning flagged against the plan's default while still learning is
                # still the resident's own time (a late riser is not ill every day); only
                # a morning flagged against their own baseline is kept out of it.
                self.baseline.add(self.day.isoformat(), round(_hours(datetime.fromtimestamp(
                    woke, self.tz)), 3), self.flagged and self.baseline.ready())
            keep = datetime.combine(day - timedelta(days=1), NIGHT_FROM, self.tz).timestamp()
            self.bouts = [b for b in self.bouts if b[1] >= keep]
        self.day, self.candidate, self.up_at, self.flagged, self.open = day, None, None, \
            False, None
        # A morning whose deadline passed before we watched it, or that starts with the
        # resident out of the house, is not judged. (Woken at the deadline we announced, we
        # were watching: learning yesterday may have moved today's deadline a minute.)
        self.skip = (not woken and self._day_deadline(day) < at) or self._gone()

    # --- what ---------------------------------------------------------------------------

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if activity is None:
            return []
        if self.last_act is not None and activity.ts < self.last_act:
            return []  # late: the morning has been judged on what came in time
        day = self._morning_of(activity.ts)
        if self.day is None or day > self.day:
            self._roll(day, activity.ts)
        if self.out and not activity.away and activity.ts < self._day_deadline(day):
            self.skip = False  # home again (from a night out) before the deadline: judged
        if self.out and activity.exit_door and not self.sees_night:
            self._note_night_out(activity.ts)
        self.out = activity.away
        if activity.away and not activity.exit_door:
            return []  # gone out, and no sure sign of life yet (see ActivityTracker)
        last, self.last_act = self.last_act, activity.ts
        sat, self.sitting = self.sitting, activity.in_chair
        self._note_bout(activity)
        in_bed = activity.in_bed or activity.kind == "bed"  # a mat's pulses: still in bed
        if self.up_at is not None and self.open is None and \
                activity.ts < self._day_deadline(day) and (
                    (in_bed and activity.ts < self.up_at + CONFIRM) or (
                        self.sees_night and last is not None and not sat and
                        last < self.up_at + CONFIRM and activity.ts - last > QUIET)):
            # Back to bed, or (where motion sensors would see someone up) an hour's silence,
            # soon after: that was a trip in the night or an early wander (a night out
            # ending), not getting up. Keep watching. (In a home of doors and plugs an hour
            # without a door or an appliance is an ordinary morning; so are two hours in
            # the armchair after breakfast.)
            self.up_at, self.candidate = None, None
        if self.up_at is not None or activity.exit_door:
            return []
        if _hours(activity.ts.astimezone(self.tz)) >= MORNING_END:
            return []
        if _resting(activity) or _hours(activity.ts.astimezone(self.tz)) < MORNING_START:
            self.candidate = None  # in bed (or still night): not up
            return []
        if self.candidate is None or (last is not None and activity.ts - last > QUIET):
            self.candidate = activity.ts
        if activity.ts - self.candidate < self.sustained and not activity.kitchen and \
                not activity.in_chair:
            return []  # up once it lasts, or the kitchen is used, or they settle in a chair
        self.up_at = self.candidate
        if self.open is None:
            return []
        done = self.open.resolve(activity.ts, (
            f"Up and about since {self.up_at.astimezone(self.tz):%H:%M} "
            f"(latest: {activity.what})."))
        self.open = None
        return [done]

    def _note_night_out(self, door: datetime) -> None:
        """The door again after the door and nothing: they had been out. Over a morning's
        start, that was a night out."""
        if self.last_act is None:
            return
        morning = datetime.combine(self._morning_of(door), time(MORNING_START), self.tz)
        day = morning.toordinal()
        if self.last_act < morning <= door and day not in self.nights_out:
            self.nights_out = [d for d in self.nights_out if d > day - KEEP_NIGHTS] + [day]

    def _gone(self) -> bool:
        """Out of the house, as far as the sensors can tell. With motion sensors or a bed
        mat, a night after the front door with nothing astir means out; with doors and
        plugs only it means nothing (the bins taken out at 20:47, then a quiet night), so
        such a morning is still judged, and the alert says what was seen last, unless they
        go out at night as a habit (see `NIGHTS_OUT`). In every home, a morning that begins
        more than GONE_AFTER after the last sign of the resident, door or none, is not
        judged: a silence that long began before yesterday's deadline and was told then (by
        this rule, and by inactivity while it lasts); without a front-door contact it is also
        what a week away looks like (van Kasteren B's nine days away, in a view of motion
        sensors only, raised not-up every morning)."""
        if self.last_act is not None and self.day is not None and datetime.combine(
                self.day, time(MORNING_START), self.tz) - self.last_act > GONE_AFTER:
            return True
        if not self.out:
            return False
        if self.sees_night or self.last_act is None or self.day is None:
            return True
        # Someone who goes out at night as a habit (seen to, on NIGHTS_OUT nights lately):
        # the door and then a quiet night is another night out, not a morning in bed.
        # Otherwise the first morning after the door and a quiet night is judged (after a
        # day more of nothing they are away, above: a hospital stay is not a not-up alarm
        # every morning).
        today = self.day.toordinal()
        return sum(1 for d in self.nights_out if today - KEEP_NIGHTS < d < today) >= NIGHTS_OUT

    def _note_bout(self, activity: Activity) -> None:
        at = activity.ts.timestamp()
        last = self.bouts[-1] if self.bouts else None
        if _resting(activity):
            if last is not None:
                last[4] = 1  # in bed after that bout: the quiet that follows is rest
            if (activity.kind == "bed" and not activity.in_bed) or self.rested is None or \
                    at - self.rested > ROSE:
                self.rested = at  # out of bed (or, with no mat, astir in the bedroom)
            return
        kitchen = activity.kitchen
        if last is not None and at - last[1] < REST:
            last[1] = max(last[1], at)
            last[2] = max(last[2], float(kitchen))
            last[3], last[4] = float(activity.exit_door), 0
            last[5:] = [float(activity.in_chair)]
        else:
            # The bout began when they left the bed, if that was just before.
            start = self.rested if self.rested is not None and at - self.rested <= ROSE and (
                last is None or self.rested > last[1]) else at
            self.bouts.append([start, at, float(kitchen), float(activity.exit_door), 0,
                               float(activity.in_chair)])

    def _late_night(self, day: date) -> tuple[datetime, datetime] | None:
        """While their usual time is still learned: if tonight's rest began after LATE_BED
        and SLEEP plus the margin from then runs past this morning's deadline, when it
        began and that later deadline (never past LATEST_DEADLINE). Asked after every
        reading: kept until the next activity."""
        if self.last_act is None or self._usual(day) is not None:
            return None
        # (Astir just now, the hour's quiet that getting up is told by is waited for anyway;
        # a brief stir followed by that hour is bridged like a trip in the night.)
        key = (day, self.last_act, self.baseline.version)
        if self._late_key != key:
            self._late_key, self._late = key, self._find_late_night(day, self.last_act)
        return self._late

    def _find_late_night(self, day: date, last: datetime) -> tuple[datetime, datetime] | None:
        deadline = self._day_deadline(day)
        # Still resting at the deadline, or an hour after the last doing if that is later,
        # so that a trip in the night just before is bridged as it is in hindsight.
        at = max(deadline.timestamp(), last.timestamp() + BRIDGE)
        night = datetime.combine(day - timedelta(days=1), NIGHT_FROM, self.tz).timestamp()
        began = night_began(self.bouts, night, at)
        if began is None:
            return None
        start = datetime.fromtimestamp(began, self.tz)
        if start < datetime.combine(day, LATE_BED, tzinfo=self.tz):
            return None
        later = start + SLEEP + self.settings.margin
        latest = datetime.combine(day, LATEST_DEADLINE, tzinfo=self.tz)
        later = min(later.replace(second=0, microsecond=0), latest)
        return (start, later) if later > deadline else None

    def _morning_deadline(self, day: date) -> datetime:
        late = self._late_night(day)
        return late[1] if late is not None else self._day_deadline(day)

    def next_deadline(self) -> datetime | None:
        if self.day is None:
            return None
        if self.up_at is not None or self.open is not None or self.skip:
            return self._morning_deadline(self.day + timedelta(days=1))
        deadline = self._morning_deadline(self.day)
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
        if self.day is not None and now < self._morning_deadline(self.day):
            return []  # the deadline moved later (learning, or a late night); woken then
        if self._gone():
            self.skip = True  # gone out without being seen up: not judged
        if self.up_at is not None or self.open is not None or self.skip:
            return []
        if self.candidate is not None and self.last_act is not None and \
                now - self.last_act < QUIET:
            return []
        usual = self._usual(day)
        if usual is None:
            basis = (f"Their usual time is still being learned (this needs "
                     f"{self.settings.min_days} mornings); the plan's default of up by "
                     f"{self.settings.default_up_by:%H:%M}, or the latest morning seen so "
                     "far plus the margin, applies.")
        else:
            on = f" on {usual[1]}s" if usual[1] else ""
            basis = (f"They usually get up around {_clock(usual[0])}{on} (median of the "
                     f"last {usual[2]} {usual[1] + ' ' if usual[1] else ''}mornings).")
        late = self._late_night(day)
        if late is not None:
            basis += (f" They went to bed late ({when(late[0], self.tz)}), so this waited for "
                      f"{hours_minutes(SLEEP)} of rest and the margin.")
        stirred = ""
        if self.out and self.last_act is not None:
            stirred = (f" The last thing seen was the front door, at "
                       f"{when(self.last_act, self.tz)}: they may have gone out, or not be "
                       "up.")
        elif self.candidate is not None and self.last_act is not None:
            stirred = (f" Brief activity at {self.candidate.astimezone(self.tz):%H:%M}, "
                       "then quiet.")
        self.flagged = True
        self.open = self.firing(
            now, self.settings.severity,
            f"Not up yet this morning: no sign of the resident being up and about by "
            f"{now.astimezone(self.tz):%H:%M}.{stirred} {basis} Call them; they may be unwell "
            "or have fallen.",
            {"usual_up": _clock(usual[0]) if usual is not None else None,
             "usual_for": usual[1] or "every day" if usual is not None else None,
             "baseline_mornings": len(self.baseline.values()),
             "warming_up": usual is None,
             "margin_minutes": self.settings.margin.total_seconds() / 60,
             "rest_began_at": format_ts(late[0]) if late is not None else None,
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
                "sitting": self.sitting,
                "flagged": self.flagged, "bouts": self.bouts, "rested": self.rested,
                "nights_out": self.nights_out,
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
        self.sitting = bool(state.get("sitting", False))
        self.flagged = bool(state.get("flagged", False))
        self.bouts = [list(b) for b in state.get("bouts", [])]
        self.rested = state.get("rested")
        self.nights_out = [int(d) for d in state.get("nights_out", [])]
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None


SPEC = RuleSpec("not_up", NotUpSettings, NotUp)
