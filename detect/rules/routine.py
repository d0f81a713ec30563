"""The resident's routine against their own baseline: early warnings for slow trouble.

Each rule here judges one figure once a day, at a fixed local time, against the resident's
own recent days (`detect.baseline`): night-time toilet trips rising (an early sign of a
urine infection), fewer meals and drinks, a slow fall in everyday activity. Days spent
mostly out of the house (a long day out, a hospital stay) are not judged and not learned
from; a visitor only adds activity, which none of these rules warns about.

A new home has no baseline: these rules stay silent while they warm up (the acute rules
cover it meanwhile), and each warning says which baseline it compared against.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from pydantic import Field

from detect.activity import KITCHEN_ROLES, Activity, kitchen_use
from detect.baseline import Baseline, RoutineSettings, robust_spread
from detect.localtime import window_time_between
from detect.models import DayModel
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import Duration, HomeConfig, Severity
from telecare.reading import Reading, format_ts, parse_ts


class MealsSettings(RoutineSettings):
    away_skip: Duration = timedelta(hours=6)


class DeclineSettings(RoutineSettings):
    min_days: int = Field(default=14, ge=3, le=365)
    away_skip: Duration = timedelta(hours=6)
    decline_ratio: float = 0.85  # a week's activity under this share of the weeks before


class UnusualDaySettings(RoutineSettings):
    severity: Severity = "low"
    min_days: int = Field(default=14, ge=3, le=365)


class DailyPattern(Rule):
    """Counts something through the day and judges it at `judge_at` (local time)."""

    judge_at = time(22, 30)
    FULL_DAY = timedelta(hours=20)  # watched for less of the first day than this: partial
    # A day whose last sign was the front door, with nothing since, is out only if the next
    # sign is the door again (the homecoming); if it is a sign of life inside, they were in
    # all along. A rule that sets this waits for that next sign before judging such a day,
    # instead of taking the evening as out (see `Meals`).
    WAIT_AFTER_DOOR = False
    PASSAGE = timedelta(minutes=2)
    # A rule that sets this waits, too, for the next sign of life to judge a day whose last
    # one came this long before its deadline: in a home of contacts only, a kitchen that fell
    # silent may leave the house silent all afternoon (judged at the next flush or door);
    # a home that fell silent for good (a hub failed, a recording ended) is never judged.
    SILENT_WAIT: timedelta | None = None
    # A rule that sets this counts only the time out within these local hours, and skips a
    # day by it (see `mostly_out`).
    OUT_WINDOW: tuple[time, time] | None = None

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.baseline = Baseline(settings.baseline_days, settings.min_days)
        self.next_judgement: datetime | None = None
        self.count = 0.0
        self.away = timedelta()
        self.out_since: datetime | None = None  # the door, perhaps going out, nothing since
        self.last_passage: datetime | None = None
        self.last_sign: datetime | None = None  # the latest activity of any kind
        self.flag_streak = 0
        self.open: Alert | None = None
        self.day_away = timedelta()  # time out in the day last judged
        self.partial = False  # the day being counted began before we watched
        # A day left undecided at its deadline (WAIT_AFTER_DOOR): its deadline, count, time
        # out without the last door, and the time from the last door to the deadline.
        self.undecided: tuple[datetime, float, timedelta, timedelta] | None = None
        self.day_end = self.told_at = datetime.min  # the day last judged, and when

    def _next_judgement(self, after: datetime) -> datetime:
        local = after.astimezone(self.tz)
        at = datetime.combine(local.date(), self.judge_at, tzinfo=self.tz)
        if at <= local:
            at = datetime.combine(local.date() + timedelta(days=1), self.judge_at,
                                  tzinfo=self.tz)
        return at.astimezone(after.tzinfo)

    def counts(self, reading: Reading, activity: Activity | None) -> float:
        return 0.0

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if self.next_judgement is None:
            self.next_judgement = self._next_judgement(reading.ts)
            # Watched from part-way through (a recording or a service starting at 20:14):
            # that first day's count is not a day's, so it is neither judged nor learned.
            self.partial = self.next_judgement - reading.ts < self.FULL_DAY
            return []
        if reading.ts >= self.next_judgement:
            return []  # judged when the deadline fires, which comes first
        out: list[Alert] = []
        if activity is not None:
            self.last_sign = activity.ts
        sign = None if activity is None else self._presence_sign(activity)
        if sign is not None and self.undecided is not None:
            at, value, away, pending = self.undecided
            self.undecided = None
            out = self._decide(at, value, away + pending if sign == "door" else away,
                               reading.ts)
        # Time out, in hindsight: from a front or back door to the next door with nothing
        # inside in between, after which they are home (the second door was the
        # homecoming, and hours unseen after it are hours in rooms without sensors). A door
        # followed by a sign of life inside (before any other door) was not a departure.
        # (Counting every door to the next sign of life as out made a homecoming followed
        # by a silent evening a day out, and so unjudged: a contacts-only home whose
        # kitchen fell silent read as away, never as skipping meals.)
        if sign == "door" and activity is not None:
            if self.out_since is not None:
                self.away += self._out_time(self.out_since, activity.ts)
                self.out_since = None  # home again
            else:
                self.out_since = activity.ts  # perhaps leaving
        elif sign == "inside":
            self.out_since = None
        self.count += self.counts(reading, activity)
        return out

    def _presence_sign(self, activity: Activity) -> str | None:
        """'door' for someone passing the front or back door (its opening; a second opening
        within PASSAGE is the same passage), 'inside' for a sign of life in the home, None
        for neither (the door closing)."""
        if not activity.exit_door:
            return "inside"
        if activity.kind == "contact" and not activity.what.endswith("opened"):
            return None
        last, self.last_passage = self.last_passage, activity.ts
        if last is not None and activity.ts - last < self.PASSAGE:
            return None
        return "door"

    def next_deadline(self) -> datetime | None:
        return self.next_judgement

    def on_deadline(self, now: datetime) -> list[Alert]:
        if self.undecided is not None:  # a whole day more without a sign: out, or silent
            self.undecided = None
            self.skipped()
        pending = timedelta()
        if self.out_since is not None:
            pending = self._out_time(self.out_since, now)
            self.out_since = now
        value, away = self.count, self.away
        self.count, self.away = 0.0, timedelta()
        self.next_judgement = self._next_judgement(now)
        partial, self.partial = self.partial, False
        if partial:
            self.skipped()
            return []  # not watched all day: neither judged nor learned from
        silent = self.SILENT_WAIT is not None and (
            self.last_sign is None or now - self.last_sign > self.SILENT_WAIT)
        if silent or (self.WAIT_AFTER_DOOR and pending and away <= self.settings.away_skip
                      < away + pending):
            self.undecided = (now, value, away, pending)  # in or out: the next sign says
            return []
        return self._decide(now, value, away + pending, now)

    def _decide(self, day_end: datetime, value: float, away: timedelta,
                now: datetime) -> list[Alert]:
        """Judge and learn the day that ended at `day_end` (told at `now`), unless it was
        mostly spent out."""
        self.day_away = away  # for rules that judge the time out as well
        if self.mostly_out(away):
            self.skipped()
            return []  # mostly out: neither judged nor learned from
        self.day_end, self.told_at = day_end, now
        day = day_end.astimezone(self.tz).date().isoformat()
        out = self.judge(now, value)
        self.learn(day, value)
        return out

    def _out_time(self, start: datetime, end: datetime) -> timedelta:
        if self.OUT_WINDOW is None:
            return end - start
        return window_time_between(start, end, self.OUT_WINDOW[0], self.OUT_WINDOW[1], self.tz)

    def mostly_out(self, away: timedelta) -> bool:
        """Was the day (or OUT_WINDOW's part of it) spent out, so neither judged nor learned?"""
        return away > self.settings.away_skip

    def day_words(self) -> str:
        """'today', or the day's name when it is judged after its end (WAIT_AFTER_DOOR)."""
        if self.told_at == self.day_end:
            return "today"
        return f"on {self.day_end.astimezone(self.tz):%A}"

    def learn(self, day: str, value: float) -> None:
        """Add the day judged to the baseline; a day that was unusual, or came while an
        alert was open, is kept out of what is usual."""
        self.baseline.add(day, value, self.flag_streak > 0 or self.open is not None)

    def judge(self, now: datetime, value: float) -> list[Alert]:
        raise NotImplementedError

    def skipped(self) -> None:
        """A day not judged: forget whatever else was counted in it."""

    def _alert(self, now: datetime, message: str, evidence: dict[str, Any]) -> Alert:
        self.open = self.firing(now, self.settings.severity, message,
                                {**evidence, "baseline": self.baseline.describe()})
        return self.open

    def _resolve(self, now: datetime, words: str) -> list[Alert]:
        if self.open is None:
            return []
        done = self.open.resolve(now, words)
        self.open = None
        return [done]

    def state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.state(),
                "next": format_ts(self.next_judgement) if self.next_judgement else None,
                "count": self.count, "away_s": self.away.total_seconds(),
                "out_since": format_ts(self.out_since) if self.out_since else None,
                "last_passage": format_ts(self.last_passage) if self.last_passage else None,
                "last_sign": format_ts(self.last_sign) if self.last_sign else None,
                "streak": self.flag_streak, "partial": self.partial,
                "undecided": [format_ts(self.undecided[0]), self.undecided[1],
                              self.undecided[2].total_seconds(),
                              self.undecided[3].total_seconds()] if self.undecided else None,
                "open": self.open.to_json_obj() if self.open else None}

    def load(self, state: dict[str, Any]) -> None:
        self.baseline.load(state.get("baseline", {}))
        self.next_judgement = parse_ts(state["next"]) if state.get("next") else None
        self.count = float(state.get("count", 0))
        self.away = timedelta(seconds=state.get("away_s", 0))
        self.out_since = parse_ts(state["out_since"]) if state.get("out_since") else None
        self.last_passage = parse_ts(state["last_passage"]) if state.get("last_passage") \
            else None
        self.last_sign = parse_ts(state["last_sign"]) if state.get("last_sign") else None
        self.flag_streak = int(state.get("streak", 0))
        self.partial = bool(state.get("partial", False))
        undecided = state.get("undecided")
        self.undecided = (parse_ts(undecided[0]), float(undecided[1]),
                          timedelta(seconds=undecided[2]),
                          timedelta(seconds=undecided[3])) if undecided else None
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None


class NightToilet(DailyPattern):
    """Toilet use, judged each morning on the last 24 hours: trips in the night (returns to
    bed during the night where there is a bed mat, or flushes between 00:30 and 05:30,
    whichever are more) and
    flushes in the day (09:00 to 21:00, so that a night trip is not counted twice). An
    infection shows in both: more trips at night and more frequent visits by day. Each is
    scored against the resident's own median and spread; the two scores are added, so a home
    with both sensors needs less of each. Night trips are a small count (0, 1, 2 most
    nights), so their spread is never taken below `NIGHT_SPREAD`: two trips after a run of
    quiet nights is ordinary; for a resident seldom up at night at all, `SPARSE_SPREAD`."""

    name = "night_toilet"
    judge_at = time(10, 0)
    SLACK = 1.0  # a day's score above this adds to the evidence (CUSUM reference value)
    ALARM = 4.0  # evidence that raises the warning: one day at 5, or 2.5 for two days ...
    UNUSUAL = 2.0  # a day scoring this is kept out of the baseline
    NIGHT_SPREAD = 1.5
    SPARSE_SPREAD = 1.0
    DAY_HOURS = (9, 21)
    MIN_TRIP = timedelta(minutes=2)
    NIGHT_FLUSHES = (time(0, 30), time(5, 30))  # a flush in these hours is a night trip
    # What is judged is the night: a day out at work with the night at home is judged (van
    # Kasteren B and C, contacts view: most days were passed over as "out" 12-16 h), a night
    # out for half these hours or more is not.
    OUT_WINDOW = NIGHT_FLUSHES
    NIGHT_OUT = timedelta(hours=2, minutes=30)
    FRESH = timedelta(minutes=5)  # a motion sensor quiet this long before reports afresh

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home, settings)
        self.has_bed = any(d.kind == "bed" for d in home.devices)
        self.has_flush = any(d.kind == "flush" for d in home.devices)
        self.in_night = False
        self.left_at: datetime | None = None  # out of bed since (during the night)
        self.went_out = False  # ... and seen out of the bedroom since
        # Where sensors watch beyond the bedroom, a trip must show there: a mat that pulses
        # under a restless sleeper (pressed, released, minutes apart) is not 22 trips. Where
        # the bathroom or the flush is watched, a toilet trip must show there (not a kitchen
        # sensor's misfire), and a motion sensor must start afresh: one stuck on, reporting
        # every minute all night, shows no trip at all.
        self.toilet = {d.id for d in home.devices if d.kind == "flush" or (
            d.room == "bathroom" and d.kind in ("motion", "contact"))}
        self.watched_beyond = bool(self.toilet) or any(
            d.room not in (None, "bedroom") and d.kind in ("motion", "flush", "contact")
            for d in home.devices)
        self.motion_seen: dict[str, float] = {}  # motion sensor -> latest report (epoch s)
        self.flushes = 0.0
        self.night_flushes = 0.0  # flushes in NIGHT_FLUSHES
        self.bed_trips = 0.0  # returns to bed after a trip
        self.trips = 0.0  # the larger of the two, as counted so far
        self.flush_baseline = Baseline(settings.baseline_days, settings.min_days)
        self.cusum = 0.0
        self.calm_days = 0

    def counts(self, reading: Reading, activity: Activity | None) -> float:
        """The night's trips so far (the day's count) grow by the returns to bed or the
        night's flushes, whichever is more: with a flush, the night's flushes are trips
        too. A bed mat that pulses under a restless sleeper, or a trip made before going
        to bed at 02:00, hides trips from the returns to bed, never from the flush (van
        Kasteren B and C: injected trips went uncounted on most nights)."""
        local = reading.ts.astimezone(self.tz)
        if reading.kind == "flush" and activity is not None:
            if self.DAY_HOURS[0] <= local.hour < self.DAY_HOURS[1]:
                self.flushes += 1
            elif self.NIGHT_FLUSHES[0] <= local.time() < self.NIGHT_FLUSHES[1]:
                self.night_flushes += 1
        self.bed_trips += self._bed_trip(reading, activity, local.hour)
        trips = max(self.bed_trips, self.night_flushes)
        grown, self.trips = trips - self.trips, trips
        return grown

    def _bed_trip(self, reading: Reading, activity: Activity | None, hour: int) -> float:
        """1 for a return to bed after a trip in the night (homes with a bed mat)."""
        if self.has_bed:
            if activity is not None and self._trip_sign(activity) and \
                    self.left_at is not None:
                self.went_out = True
            if reading.kind != "bed" or activity is None:
                return 0.0
            if reading.value < 1:
                if self.left_at is None and not activity.in_bed:  # no mat occupied now
                    self.left_at, self.went_out = reading.ts, False
                return 0.0
            left, self.left_at = self.left_at, None
            if not self.in_night and (hour >= 20 or hour < 4):
                self.in_night = True  # into bed for the night: not a trip
                return 0.0
            # A trip is a return to bed after time up; a mat flickering as the resident
            # turns over (real mats do, seconds apart) is not.
            away = left is not None and reading.ts - left >= self.MIN_TRIP and (
                self.went_out or not self.watched_beyond)
            return 1.0 if self.in_night and hour < 9 and away else 0.0
        return 0.0

    def _trip_sign(self, activity: Activity) -> bool:
        """Is this a sign of a trip out of bed (see `toilet`)? Told of every activity, so
        that a motion sensor's reports before the resident left bed are known."""
        if activity.kind == "motion":
            at = activity.ts.timestamp()
            last = self.motion_seen.get(activity.device)
            self.motion_seen[activity.device] = at
            if last is not None and at - last < self.FRESH.total_seconds():
                return False  # on since before: no new movement
        if self.toilet:
            return activity.device in self.toilet
        return activity.room not in (None, "bedroom")

    def mostly_out(self, away: timedelta) -> bool:
        return away >= self.NIGHT_OUT

    def _night_spread(self) -> float:
        """The least spread of night trips: SPARSE_SPREAD for a resident who is up at night
        on at most one night in five (Ordonez A: none in two weeks); for one with a trip or
        more most nights, the spread of a count with their median as its mean (its square
        root, at least SPARSE_SPREAD: for van Kasteren B and C, a trip most nights, three
        is news); else NIGHT_SPREAD (0 most nights, 2 now and then, is ordinary: the
        simulator's residents raised a warning a month each at SPARSE_SPREAD)."""
        nights = self.baseline.values()
        up = sum(1 for v in nights if v > 0)
        if up * 5 <= len(nights):
            return self.SPARSE_SPREAD
        usual = self.baseline.median()
        return max(self.SPARSE_SPREAD, usual ** 0.5) if usual >= 1 else self.NIGHT_SPREAD

    def judge(self, now: datetime, value: float) -> list[Alert]:
        self.in_night, self.left_at = False, None
        flushes, self.flushes = self.flushes, 0.0
        self.night_flushes = self.bed_trips = self.trips = 0.0
        if not (self.has_bed or self.has_flush) or not self.baseline.ready():
            self.flush_baseline.add("", flushes, False)
            return []
        usual = self.baseline.median()
        score = self.baseline.z(value, self._night_spread())
        usual_flushes = None
        if self.has_flush and self.flush_baseline.ready():
            usual_flushes = self.flush_baseline.median()
            # More flushes by day add to the evidence; fewer take none away (a quiet day,
            # a day out for lunch, says nothing against the nights).
            score += max(0.0, self.flush_baseline.z(flushes))
        # CUSUM: evidence builds over consecutive unusual days and drains on ordinary ones,
        # so three days a little up are caught as surely as one day far up.
        self.cusum = max(0.0, self.cusum + score - self.SLACK)
        # A night that added to the evidence is not learned from either: a week of slowly
        # rising trips (1, 1, 2, 2, 3 more) must not become the usual as it rises.
        unusual = score >= self.UNUSUAL
        self.flag_streak = self.flag_streak + 1 if unusual else 0
        out: list[Alert] = []
        if self.open is not None:
            self.calm_days = self.calm_days + 1 if score < 1.0 else 0
            if self.calm_days >= 2:
                day = f" and {flushes:g} flushes in the day" if usual_flushes is not None \
                    else ""
                out = self._resolve(now, f"{value:g} toilet trips last night{day}: usual "
                                         "again for two days.")
                self.cusum = 0.0
        elif self.cusum >= self.ALARM:
            self.cusum, self.calm_days = 0.0, 0
            day_words = ""
            if usual_flushes is not None:
                day_words = (f" The toilet was flushed {flushes:g} times yesterday between "
                             f"{self.DAY_HOURS[0]:02d}:00 and {self.DAY_HOURS[1]:02d}:00; "
                             f"usually {self.flush_baseline.usual_range()} (median "
                             f"{usual_flushes:g}).")
            out = [self._alert(now, (
                f"{value:g} trips to the toilet last night; usually {self.baseline.usual_range()}"
                f" (median {usual:g} over the last {len(self.baseline.values())} nights)."
                f"{day_words} Going to the toilet more often, night and day, can be an early "
                "sign of a urine infection: ask how they feel (pain, burning, fever, confusion) "
                "and consider a GP appointment."),
                {"trips_last_night": value, "baseline_median": usual,
                 "baseline_nights": len(self.baseline.values()),
                 "day_flushes": flushes if self.has_flush else None,
                 "day_flushes_baseline_median": usual_flushes,
                 "score": round(score, 2), "unusual_days_in_a_row": self.flag_streak})]
        # A day that was unusual, or came while an alert was open, is not learned from.
        self.flush_baseline.add("", flushes, unusual or self.open is not None)
        return out

    def skipped(self) -> None:
        self.in_night, self.flushes, self.left_at = False, 0.0, None
        self.night_flushes = self.bed_trips = self.trips = 0.0

    def state(self) -> dict[str, Any]:
        return {**super().state(), "in_night": self.in_night, "flushes": self.flushes,
                "left_at": format_ts(self.left_at) if self.left_at else None,
                "went_out": self.went_out, "motion_seen": self.motion_seen,
                "night_flushes": self.night_flushes, "bed_trips": self.bed_trips,
                "trips": self.trips,
                "cusum": self.cusum, "calm_days": self.calm_days,
                "flush_baseline": self.flush_baseline.state()}

    def load(self, state: dict[str, Any]) -> None:
        super().load(state)
        self.in_night = bool(state.get("in_night", False))
        self.left_at = parse_ts(state["left_at"]) if state.get("left_at") else None
        self.went_out = bool(state.get("went_out", False))
        self.motion_seen = {str(k): float(v) for k, v in state.get("motion_seen", {}).items()}
        self.flushes = float(state.get("flushes", 0))
        self.night_flushes = float(state.get("night_flushes", 0))
        self.bed_trips = float(state.get("bed_trips", 0))
        self.trips = float(state.get("trips", 0))
        self.cusum = float(state.get("cusum", 0))
        self.calm_days = int(state.get("calm_days", 0))
        self.flush_baseline.load(state.get("flush_baseline", {}))


class Meals(DailyPattern):
    """Kitchen use through the day: the kettle or microwave switched on, the fridge, a
    cupboard or a drawer opened, and, where a motion sensor watches the kitchen, each visit
    to it (movement after `VISIT_GAP` without any) where nothing else in the kitchen is
    watched. Real homes have cupboard contacts or a kitchen motion sensor more often than a
    kettle plug."""

    name = "meals"
    VISIT_GAP = timedelta(minutes=10)
    WAIT_AFTER_DOOR = True  # a kitchen that fell silent must not read as an evening out
    SILENT_WAIT = timedelta(hours=12)  # ... nor an afternoon of silence a failed home
    EARLY_DAYS = 3  # from this many days, a day at a quarter of the median is already low

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home, settings)
        self.kitchen = {d.id for d in home.devices if kitchen_use(d.kind, d.room, d.role)}
        if not self.kitchen:  # a motion sensor is the kitchen's only witness: its visits
            self.kitchen = {d.id for d in home.devices
                            if d.room == "kitchen" and d.kind == "motion"}
        self.motion = {d.id for d in home.devices if d.id in self.kitchen and
                       d.kind == "motion"}
        names = sorted({(d.role or {"power": "appliance"}.get(d.kind, d.kind)).replace(
            "_", " ") for d in home.devices if d.id in self.kitchen})
        self.words = ", ".join(n.replace("contact", "cupboards").replace(
            "motion", "movement in the kitchen") for n in names)
        self.last_visit: datetime | None = None
        self.held: tuple[str, float] | None = None  # a low day, learned if the next is not

    def counts(self, reading: Reading, activity: Activity | None) -> float:
        if activity is None or activity.device not in self.kitchen:
            return 0.0
        if activity.device in self.motion:
            last, self.last_visit = self.last_visit, activity.ts
            return 1.0 if last is None or activity.ts - last >= self.VISIT_GAP else 0.0
        return 1.0 if activity.what.endswith(("switched on", "opened")) else 0.0

    def learn(self, day: str, value: float) -> None:
        # One low day is held back, not refused: if the next is ordinary it was their
        # ordinary spread and is learned (otherwise the lowest day in the baseline only ever
        # rises, and every ordinary quiet day becomes "below all of them"); if the next is
        # low too, both stay out of the baseline.
        held, self.held = self.held, None
        flagged = self.flag_streak > 0 or self.open is not None
        if held is not None:
            self.baseline.add(held[0], held[1], flagged)
        if self.flag_streak == 1 and self.open is None:
            self.held = (day, value)
        else:
            self.baseline.add(day, value, flagged)

    def state(self) -> dict[str, Any]:
        return {**super().state(),
                "last_visit": format_ts(self.last_visit) if self.last_visit else None,
                "held": list(self.held) if self.held else None}

    def load(self, state: dict[str, Any]) -> None:
        super().load(state)
        self.last_visit = parse_ts(state["last_visit"]) if state.get("last_visit") else None
        held = state.get("held")
        self.held = (str(held[0]), float(held[1])) if held else None

    def judge(self, now: datetime, value: float) -> list[Alert]:
        known = self.baseline.values()
        if not self.kitchen or len(known) < self.EARLY_DAYS:
            return []
        usual = self.baseline.median()
        if usual < 4:
            return []
        # Well below usual, and below every ordinary day they had in the baseline: a real
        # person's kitchen use runs from 4 to 15 a day, so half the median alone is an
        # ordinary quiet day (Ordonez A: 4 and 5 after a median of 10.5); two days running
        # below all of the last weeks' is not. A quarter of the median or less is low
        # whatever the baseline holds, and already from EARLY_DAYS days if it is also at
        # under half their lowest day so far: a crisis that began in the first week would
        # otherwise be learned as the usual (Ordonez A and B, injected copies: missed, or
        # caught on the fourth day); a man whose first days ran 14, 150, 209 uses is not
        # skipping meals on a day of 12 (van Kasteren B).
        lowest = min(known)
        below_all = value < lowest and self.baseline.ready()
        flagged = value <= 0.25 * usual and (self.baseline.ready() or value < 0.5 * lowest) \
            or (value <= 0.5 * usual and below_all)
        self.flag_streak = self.flag_streak + 1 if flagged else 0
        if self.open is not None:
            if value >= 0.75 * usual:
                return self._resolve(now, f"Kitchen use back to {value:g} {self.day_words()} "
                                          f"(usually {usual:g}).")
            return []
        if self.flag_streak >= 2:
            how = (f"the second day running below every ordinary day of the last {len(known)}"
                   if below_all else
                   f"the second day running at a quarter or less of the usual over the last "
                   f"{len(known)} days")
            return [self._alert(now, (
                f"Only {value:g} uses of the kitchen ({self.words}) {self.day_words()}, {how} "
                f"(usually {self.baseline.usual_range()} a day, median {usual:g}, never "
                f"fewer than {lowest:g}). The resident may be skipping meals and drinks: "
                "ask, and check there is food in."),
                {"kitchen_uses_today": value, "baseline_median": usual,
                 "baseline_lowest": lowest, "baseline_days": len(known),
                 "days_low_in_a_row": self.flag_streak})]
        return []


class Decline(DailyPattern):
    """Everyday activity, a week at a time, against the weeks before."""

    name = "decline"
    settings: DeclineSettings

    def counts(self, reading: Reading, activity: Activity | None) -> float:
        return 1.0 if activity is not None else 0.0

    def judge(self, now: datetime, value: float) -> list[Alert]:
        recent = [v for _, v, _ in self.baseline.history[-6:]] + [value]
        if len(recent) < 7 or not self.baseline.ready(skip_recent=6):
            return []
        before = self.baseline.median(skip_recent=6)
        week = sum(recent) / len(recent)
        if before <= 0:
            return []
        ratio = week / before
        # The week's mean must also sit well outside the day-to-day spread of the weeks
        # before (a robust z of the mean of 7 days), so a noisy home needs a clearer fall.
        spread = robust_spread(self.baseline.values(skip_recent=6)) / 7 ** 0.5
        low = ratio < self.settings.decline_ratio and (before - week) / spread >= 4
        self.flag_streak = self.flag_streak + 1 if low else 0
        if self.open is not None:
            if ratio >= (1 + self.settings.decline_ratio) / 2:
                return self._resolve(now, f"Activity back to {ratio:.0%} of the earlier "
                                          "baseline.")
            return []
        if self.flag_streak >= 2:
            return [self._alert(now, (
                f"Less activity at home: {week:.0f} sensor events a day over the last week, "
                f"{ratio:.0%} of the {before:.0f} a day that was usual in the weeks before. "
                "A slow decline can mean illness, low mood or pain: worth a visit and a chat."),
                {"week_mean": round(week, 1), "baseline_median": before,
                 "ratio": round(ratio, 3)})]
        return []


class UnusualDay(DailyPattern):
    """A whole day unlike the resident's recent days, scored by a per-resident anomaly model
    (`detect.models.DayModel`, an IsolationForest) over the day's figures: activity, kitchen
    use, toilet flushes, activity in the small hours, time out. It speaks only when the day
    is more unusual than nine in ten of the days the model learned from and at least one
    figure is far from its median, and says which figures and by how much. Low severity: an
    early "worth a call" for a later or more broken night, an odd quiet day; the focused
    rules above remain the ones that warn of infection, meals and decline."""

    name = "unusual_day"
    judge_at = time(10, 0)
    FEATURES = ("activity", "kitchen", "flushes", "small_hours", "away_hours")
    WORDS = {"activity": "sensor events", "kitchen": "uses of the kettle, fridge or microwave",
             "flushes": "toilet flushes", "small_hours": "events between midnight and 5 a.m.",
             "away_hours": "hours out"}
    FAR = 4.0  # robust z a figure must reach to be named
    # Least spread of each figure: night-time activity comes in bursts (one trip to the
    # toilet is five or so events), so a few more events in the small hours is ordinary.
    # Which way is a worry: less activity or kitchen use; more flushes, small-hours activity
    # or time out. (More activity by day is a visitor, or a good day: never a warning.)
    WORRY = {"activity": -1, "kitchen": -1, "flushes": 1, "small_hours": 1, "away_hours": 1}
    FLOORS = {"activity": 10.0, "kitchen": 1.5, "flushes": 1.5, "small_hours": 5.0,
              "away_hours": 1.0}

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home, settings)
        self.model = DayModel(self.FEATURES, settings.baseline_days, settings.min_days,
                              floors=self.FLOORS)
        self.kitchen = {d.id for d in home.devices if d.role in KITCHEN_ROLES}
        self.figures = dict.fromkeys(self.FEATURES, 0.0)

    def counts(self, reading: Reading, activity: Activity | None) -> float:
        if activity is None:
            return 0.0
        self.figures["activity"] += 1
        if activity.device in self.kitchen and activity.what.endswith(("switched on",
                                                                       "opened")):
            self.figures["kitchen"] += 1
        if reading.kind == "flush":
            self.figures["flushes"] += 1
        if activity.ts.astimezone(self.tz).hour < 5:
            self.figures["small_hours"] += 1
        return 0.0

    def skipped(self) -> None:
        self.figures = dict.fromkeys(self.FEATURES, 0.0)

    def judge(self, now: datetime, value: float) -> list[Alert]:
        day, self.figures = self.figures, dict.fromkeys(self.FEATURES, 0.0)
        day["away_hours"] = round(self.day_away.total_seconds() / 3600, 2)
        score = self.model.score_one(day)
        out: list[Alert] = []
        unusual = False
        if score is not None:
            far = [e for e in self.model.explain(day) if e[3] * self.WORRY[e[0]] >= self.FAR]
            unusual = score >= self.model.limit() and bool(far)
            if self.open is not None and not unusual:
                out = self._resolve(now, "The last day was an ordinary one again.")
            elif self.open is None and unusual:
                said = "; ".join(
                    f"{v:g} {self.WORDS[f]} (usually {m:g})" for f, v, m, _ in far[:3])
                out = [self._alert(now, (
                    f"The last 24 hours were unlike the resident's last "
                    f"{len(self.model.days)} days: {said}; medians of those days. Worth a "
                    "call to ask how they are."),
                    {"score": round(score, 3), "limit": round(self.model.limit(), 3),
                     "figures": day, "model_version": self.model.version,
                     "model": "IsolationForest"})]
        self.flag_streak = 1 if unusual else 0
        if not unusual and self.open is None:
            self.model.learn_one(day)  # a model does not learn from a day it flagged
        return out

    def state(self) -> dict[str, Any]:
        return {**super().state(), "model": self.model.state(), "figures": self.figures}

    def load(self, state: dict[str, Any]) -> None:
        super().load(state)
        self.model.load(state.get("model", {}))
        self.figures = {f: float(state.get("figures", {}).get(f, 0.0)) for f in self.FEATURES}


NIGHT_TOILET = RuleSpec("night_toilet", RoutineSettings, NightToilet)
MEALS = RuleSpec("meals", MealsSettings, Meals)
DECLINE = RuleSpec("decline", DeclineSettings, Decline)
UNUSUAL_DAY = RuleSpec("unusual_day", UnusualDaySettings, UnusualDay)
