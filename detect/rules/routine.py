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

from detect.activity import Activity
from detect.baseline import Baseline
from detect.rules.base import Rule
from telecare.alert import Alert, alert_id
from telecare.config import HomeConfig, RoutineSettings
from telecare.reading import Reading, format_ts, parse_ts


class DailyPattern(Rule):
    """Counts something through the day and judges it at `judge_at` (local time)."""

    judge_at = time(22, 30)

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.baseline = Baseline(settings.baseline_days, settings.min_days)
        self.next_judgement: datetime | None = None
        self.count = 0.0
        self.away = timedelta()
        self.out_since: datetime | None = None
        self.flag_streak = 0
        self.open: Alert | None = None

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
            return []
        if reading.ts >= self.next_judgement:
            return []  # judged when the deadline fires, which comes first
        if activity is not None:
            if activity.exit_door:
                self.out_since = self.out_since or activity.ts
            elif self.out_since is not None:
                self.away += activity.ts - self.out_since
                self.out_since = None
        self.count += self.counts(reading, activity)
        return []

    def next_deadline(self) -> datetime | None:
        return self.next_judgement

    def on_deadline(self, now: datetime) -> list[Alert]:
        if self.out_since is not None:
            self.away += now - self.out_since
            self.out_since = now
        value, away = self.count, self.away
        self.count, self.away = 0.0, timedelta()
        self.next_judgement = self._next_judgement(now)
        if away > self.settings.away_skip:
            return []  # mostly out: neither judged nor learned from
        day = now.astimezone(self.tz).date().isoformat()
        out = self.judge(now, value)
        self.baseline.add(day, value, self.flag_streak > 0 or self.open is not None)
        return out

    def judge(self, now: datetime, value: float) -> list[Alert]:
        raise NotImplementedError

    def _alert(self, now: datetime, message: str, evidence: dict[str, Any]) -> Alert:
        self.open = Alert(id=alert_id(self.home.home, self.name, "", now), home=self.home.home,
                          rule=self.name, severity=self.settings.severity,  # type: ignore[arg-type]
                          raised_at=now, status="firing", message=message, evidence=evidence)
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
                "streak": self.flag_streak,
                "open": self.open.to_json_obj() if self.open else None}

    def load(self, state: dict[str, Any]) -> None:
        self.baseline.load(state.get("baseline", {}))
        self.next_judgement = parse_ts(state["next"]) if state.get("next") else None
        self.count = float(state.get("count", 0))
        self.away = timedelta(seconds=state.get("away_s", 0))
        self.out_since = parse_ts(state["out_since"]) if state.get("out_since") else None
        self.flag_streak = int(state.get("streak", 0))
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None


class NightToilet(DailyPattern):
    """Night-time toilet trips, judged each morning. With a bed mat a trip is a return to
    bed during the night; without one, a flush between 00:30 and 05:30."""

    name = "night_toilet"
    judge_at = time(10, 0)

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home, settings)
        self.has_bed = any(d.kind == "bed" for d in home.devices)
        self.in_night = False

    def counts(self, reading: Reading, activity: Activity | None) -> float:
        hour = reading.ts.astimezone(self.tz).hour
        if self.has_bed:
            if reading.kind == "bed" and activity is not None and reading.value >= 1:
                if not self.in_night and (hour >= 20 or hour < 4):
                    self.in_night = True  # into bed for the night: not a trip
                    return 0.0
                return 1.0 if self.in_night and hour < 9 else 0.0
            return 0.0
        if reading.kind == "flush" and reading.value >= 1:
            local = reading.ts.astimezone(self.tz).time()
            return 1.0 if time(0, 30) <= local < time(5, 30) else 0.0
        return 0.0

    def judge(self, now: datetime, value: float) -> list[Alert]:
        self.in_night = False
        if not self.baseline.ready():
            return []
        usual = self.baseline.median()
        flagged = value >= usual + 2 and value >= 3
        self.flag_streak = self.flag_streak + 1 if flagged else 0
        if self.open is not None:
            if value <= usual + 1:
                return self._resolve(now, f"{value:g} toilet trips last night: back to usual "
                                          f"({usual:g}).")
            return []
        if flagged and (self.flag_streak >= 2 or value >= usual + 4):
            return [self._alert(now, (
                f"{value:g} trips to the toilet last night; usually {self.baseline.usual_range()}"
                f" (median {usual:g} over the last {len(self.baseline.values())} nights). "
                "Night-time toilet trips rising over several nights can be an early sign of "
                "a urine infection: ask how they feel (pain, burning, fever, confusion) and "
                "consider a GP appointment."),
                {"trips_last_night": value, "baseline_median": usual,
                 "baseline_nights": len(self.baseline.values()),
                 "nights_flagged_in_a_row": self.flag_streak})]
        return []


class Meals(DailyPattern):
    """Kitchen use through the day: the kettle or microwave switched on, the fridge opened."""

    name = "meals"
    ROLES = ("kettle", "fridge", "microwave")

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home, settings)
        self.kitchen = {d.id for d in home.devices if d.role in self.ROLES}

    def counts(self, reading: Reading, activity: Activity | None) -> float:
        if activity is None or activity.device not in self.kitchen:
            return 0.0
        return 1.0 if activity.what.endswith(("switched on", "opened")) else 0.0

    def judge(self, now: datetime, value: float) -> list[Alert]:
        if not self.kitchen or not self.baseline.ready():
            return []
        usual = self.baseline.median()
        if usual < 4:
            return []
        flagged = value <= 0.5 * usual
        self.flag_streak = self.flag_streak + 1 if flagged else 0
        if self.open is not None:
            if value >= 0.75 * usual:
                return self._resolve(now, f"Kitchen use back to {value:g} today "
                                          f"(usually {usual:g}).")
            return []
        if self.flag_streak >= 2:
            return [self._alert(now, (
                f"Only {value:g} uses of the kettle, fridge or microwave today, the second day "
                f"running well below usual ({self.baseline.usual_range()} a day; median "
                f"{usual:g} over {len(self.baseline.values())} days). The resident may be "
                "skipping meals and drinks: ask, and check there is food in."),
                {"kitchen_uses_today": value, "baseline_median": usual,
                 "days_low_in_a_row": self.flag_streak})]
        return []


class Decline(DailyPattern):
    """Everyday activity, a week at a time, against the weeks before."""

    name = "decline"

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
        self.flag_streak = self.flag_streak + 1 if ratio < self.settings.decline_ratio else 0
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


QUIET_RESET = timedelta(minutes=60)


class NotUp(Rule):
    """Not up by the resident's usual time plus a margin. The usual time is the median of
    their recent getting-up times; until a week is known, the plan's default is used."""

    name = "not_up"

    def __init__(self, home: HomeConfig, settings: RoutineSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.baseline = Baseline(settings.baseline_days, settings.min_days)
        self.day: str | None = None  # local date whose morning is being watched
        self.up_at: datetime | None = None
        self.back_to_bed: bool = False
        self.away = False
        self.open: Alert | None = None
        self.flagged = False
        self._cached: tuple[tuple[str, int], datetime] | None = None
        self.last_act: datetime | None = None
        self.skip = False

    def _day_of(self, ts: datetime) -> str:
        return (ts.astimezone(self.tz) - timedelta(hours=4)).date().isoformat()

    def _usual_h(self) -> float:
        if self.baseline.ready():
            return self.baseline.median()
        t = self.settings.default_up_by
        return t.hour + t.minute / 60

    def _deadline(self, day: str) -> datetime:
        hours = self._usual_h() + self.settings.margin.total_seconds() / 3600
        start = datetime.combine(datetime.fromisoformat(day).date(), time(0), tzinfo=self.tz)
        local = start + timedelta(hours=hours)
        return datetime.combine(local.date(), local.time().replace(microsecond=0),
                                tzinfo=self.tz).astimezone(start.tzinfo)

    def _roll(self, day: str, at: datetime) -> list[Alert]:
        out: list[Alert] = []
        if self.day is not None and self.up_at is not None:
            local = self.up_at.astimezone(self.tz)
            self.baseline.add(self.day, round(local.hour + local.minute / 60, 2), self.flagged)
        if self.open is not None and self.day != day:
            self.open = None  # a new morning: yesterday's alert stays as it ended
        self.day, self.up_at, self.flagged = day, None, False
        # A morning that had passed before we were watching is not judged.
        self.skip = self._deadline(day) <= at
        return out

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if activity is None:
            return []
        day = self._day_of(activity.ts)
        out: list[Alert] = []
        if self.day is None or day > self.day:
            out += self._roll(day, activity.ts)
        self.away = activity.exit_door
        local_h = activity.ts.astimezone(self.tz).hour
        last, self.last_act = self.last_act, activity.ts
        if activity.in_bed and 4 <= local_h < 14:
            self.up_at = None  # back to bed: that was a night-time trip, not getting up
        elif self.up_at is not None and last is not None and local_h < 12 and \
                activity.ts - last > QUIET_RESET:
            self.up_at = activity.ts  # a burst, then a long quiet: up for real only now
        if self.up_at is None and not activity.in_bed and not activity.exit_door and \
                4 <= local_h < 14:
            self.up_at = activity.ts
            if self.open is not None:
                out.append(self.open.resolve(activity.ts, f"Up at "
                                             f"{activity.ts.astimezone(self.tz):%H:%M}: "
                                             f"{activity.what}."))
                self.open = None
        return out

    def next_deadline(self) -> datetime | None:
        if self.day is None:
            return None
        day = self.day if self.up_at is None and self.open is None and not self.skip else \
            (datetime.fromisoformat(self.day) + timedelta(days=1)).date().isoformat()
        if self._cached is None or self._cached[0] != (day, len(self.baseline.history)):
            self._cached = ((day, len(self.baseline.history)), self._deadline(day))
        return self._cached[1]

    def on_deadline(self, now: datetime) -> list[Alert]:
        day = self._day_of(now)
        if self.day is None or day > self.day:
            self._roll(day, now)
        if self.up_at is not None and self.last_act is not None and \
                now - self.last_act > QUIET_RESET and self.last_act - self.up_at < QUIET_RESET:
            self.up_at = None  # an early toilet trip, then silence: not up after all
        if self.up_at is not None or self.open is not None or self.away or self.skip:
            return []
        usual = self._usual_h()
        usual_text = f"{int(usual):02d}:{round(usual % 1 * 60) % 60:02d}"
        basis = (f"the median of the last {len(self.baseline.values())} mornings"
                 if self.baseline.ready() else "the plan's default, while the usual time is "
                 "still being learned")
        self.flagged = True
        self.open = Alert(
            id=alert_id(self.home.home, self.name, "", now), home=self.home.home,
            rule=self.name, severity=self.settings.severity,  # type: ignore[arg-type]
            raised_at=now, status="firing",
            message=(f"Not up yet this morning: no sign of the resident being up by "
                     f"{now.astimezone(self.tz):%H:%M}. They usually get up around "
                     f"{usual_text} ({basis}). Call them; they may be unwell or have fallen."),
            evidence={"usual_up_hour": round(usual, 2), "baseline_ready":
                      self.baseline.ready(),
                      "margin_minutes": self.settings.margin.total_seconds() / 60})
        return [self.open]

    def state(self) -> dict[str, Any]:
        return {"baseline": self.baseline.state(), "day": self.day,
                "last_act": format_ts(self.last_act) if self.last_act else None,
                "up_at": format_ts(self.up_at) if self.up_at else None,
                "away": self.away,
                "flagged": self.flagged, "skip": self.skip,
                "open": self.open.to_json_obj() if self.open else None}

    def load(self, state: dict[str, Any]) -> None:
        self.baseline.load(state.get("baseline", {}))
        self.day = state.get("day")
        self.up_at = parse_ts(state["up_at"]) if state.get("up_at") else None
        self.away = bool(state.get("away", False))
        self.last_act = parse_ts(state["last_act"]) if state.get("last_act") else None
        self.flagged = bool(state.get("flagged", False))
        self.skip = bool(state.get("skip", False))
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
