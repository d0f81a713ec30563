"""A resident's day: a model of a person's routine in their own local time.

A day runs from waking to the next waking: up, toilet and wash, kettle and breakfast, a
mid-morning tea, lunch, maybe going out, an afternoon tea (and perhaps a nap), dinner, the
evening in the lounge, bed, and a few night-time toilet trips. Times vary from day to day
around the resident's own habits, and weekends start later. The output is a list of `Act`s
(where the resident is and what they do, in UTC); `simulators.devices` turns acts into the
readings that a home's sensors would send.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Profile:
    """One resident's habits. Hours are local decimal hours (7.5 = 07:30)."""

    wake_h: float = 7.5
    bed_h: float = 22.5
    spread_min: float = 25.0  # day-to-day standard deviation of wake and bed times
    weekend_shift_min: float = 30.0
    goes_out_p: float = 0.5  # chance of going out on a given day
    night_trips: float = 1.0  # mean night-time toilet trips
    nap_p: float = 0.3

    @classmethod
    def random(cls, rng: random.Random) -> Profile:
        kind = rng.choice(["early", "usual", "usual", "late"])
        wake = {"early": 6.25, "usual": 7.5, "late": 8.75}[kind] + rng.uniform(-0.3, 0.3)
        bed = {"early": 21.5, "usual": 22.5, "late": 23.5}[kind] + rng.uniform(-0.3, 0.3)
        return cls(
            wake_h=wake,
            bed_h=bed,
            goes_out_p=rng.choice([0.1, 0.4, 0.7, 0.9]),  # housebound .. out most days
            night_trips=rng.uniform(0.5, 1.5),
            nap_p=rng.uniform(0.1, 0.5),
        )


@dataclass(frozen=True)
class Act:
    start: datetime  # UTC
    end: datetime
    room: str
    what: str  # sleep, wake, toilet, wash, kettle, meal, tv, out, nap, bedtime, lie
    pace: float = 1.0  # how much the resident moves about, 1 = their usual


@dataclass
class DayMods:
    """How a scenario bends one day of the routine (1.0 / 0 = an ordinary day)."""

    extra_night_trips: int = 0
    toilet_every: float = 1.0  # scale of the gap between daytime toilet visits
    meal_keep: float = 1.0  # chance each meal happens
    kettle_keep: float = 1.0
    vigour: float = 1.0  # < 1: slower, moves less, goes out less, naps more


def local_instant(day: date, hours: float, tz: ZoneInfo) -> datetime:
    """Local decimal hours on a date (past 24 runs into the next day), as a UTC instant."""
    extra_days, rem = divmod(hours, 24.0)
    minutes = round(rem * 60)
    at = time(minutes // 60 % 24, minutes % 60)
    local = datetime.combine(day + timedelta(days=int(extra_days)), at, tzinfo=tz)
    return local.astimezone(UTC)


def wake_time(rng: random.Random, profile: Profile, day: date, tz: ZoneInfo) -> datetime:
    shift = profile.weekend_shift_min / 60 if day.weekday() >= 5 else 0.0
    h = profile.wake_h + shift + rng.gauss(0, profile.spread_min / 60)
    return local_instant(day, min(max(h, 4.5), 11.0), tz)


def bed_time(rng: random.Random, profile: Profile, day: date, tz: ZoneInfo) -> datetime:
    h = profile.bed_h + rng.gauss(0, profile.spread_min / 60)
    return local_instant(day, min(max(h, 19.5), 25.5), tz)


def _m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


def plan_day(rng: random.Random, profile: Profile, day: date, tz: ZoneInfo, wake: datetime,
             next_wake: datetime, mods: DayMods | None = None) -> list[Act]:
    """Acts from `wake` (getting up on `day`) until `next_wake`, ending asleep in bed."""
    mods = mods or DayMods()
    acts: list[Act] = []
    t = wake

    def add(minutes: float, room: str, what: str) -> None:
        nonlocal t
        end = t + _m(max(minutes, 0.5))
        acts.append(Act(t, end, room, what, mods.vigour))
        t = end

    def gap() -> timedelta:
        return _m(rng.uniform(100, 200) * mods.toilet_every)

    add(rng.uniform(2, 5), "bedroom", "wake")
    add(rng.uniform(3, 6), "bathroom", "toilet")
    add(rng.uniform(6, 15), "bathroom", "wash")
    if rng.random() < mods.kettle_keep:
        add(rng.uniform(4, 7), "kitchen", "kettle")
    if rng.random() < mods.meal_keep:
        add(rng.uniform(12, 25), "kitchen", "meal")

    # Fixed points of the day in local hours, each with jitter; going out replaces what falls
    # inside it (but not the toilet, which waits until they are back).
    anchors: list[tuple[datetime, float, str, str]] = []

    def anchor(hours: float, jitter_min: float, minutes: float, room: str, what: str) -> None:
        at = local_instant(day, hours, tz) + _m(rng.gauss(0, jitter_min))
        keep = {"meal": mods.meal_keep, "kettle": mods.kettle_keep}.get(what, 1.0)
        if rng.random() < keep:
            anchors.append((at, minutes, room, what))

    anchor(10.75, 20, rng.uniform(4, 8), "kitchen", "kettle")
    anchor(12.6, 20, rng.uniform(15, 30), "kitchen", "meal")
    anchor(15.5, 25, rng.uniform(4, 8), "kitchen", "kettle")
    anchor(17.9, 25, rng.uniform(20, 40), "kitchen", "meal")
    anchor(20.5, 30, rng.uniform(4, 8), "kitchen", "kettle")
    if rng.random() < profile.nap_p + (1 - mods.vigour):
        anchor(14.0, 20, rng.uniform(30, 60) / mods.vigour, "lounge", "nap")
    out: tuple[datetime, datetime] | None = None
    if rng.random() < profile.goes_out_p * mods.vigour:
        leave = local_instant(day, rng.uniform(9.75, 14.5), tz)
        out = (leave, leave + _m(rng.uniform(50, 180)))
        anchors.append((leave, (out[1] - leave).total_seconds() / 60, "hall", "out"))
    bed = bed_time(rng, profile, day, tz)
    anchors = [a for a in anchors if a[0] > t and a[0] < bed - _m(45)]
    if out is not None:
        anchors = [a for a in anchors if a[3] == "out" or not (out[0] - _m(10) <= a[0] <= out[1])]
    anchors.sort(key=lambda a: a[0])

    next_toilet = t + gap()
    for at, minutes, room, what in anchors:
        # The time between fixed points is spent in the lounge, with trips to the toilet.
        while next_toilet < at - _m(10):
            if next_toilet > t:
                add((next_toilet - t).total_seconds() / 60, "lounge", "tv")
            add(rng.uniform(3, 6), "bathroom", "toilet")
            next_toilet = t + gap()
        if at > t:
            add((at - t).total_seconds() / 60, "lounge", "tv")
        add(minutes, room, what)
        if what == "out":
            next_toilet = t + _m(rng.uniform(5, 20))  # the first thing on coming home
    while next_toilet < bed - _m(15):
        if next_toilet > t:
            add((next_toilet - t).total_seconds() / 60, "lounge", "tv")
        add(rng.uniform(3, 6), "bathroom", "toilet")
        next_toilet = t + gap()
    if bed > t:
        add((bed - t).total_seconds() / 60, "lounge", "tv")
    add(rng.uniform(3, 6), "bathroom", "toilet")
    add(rng.uniform(3, 8), "bedroom", "bedtime")

    # Asleep until the next waking, with night toilet trips.
    trips = _poisson(rng, profile.night_trips) + mods.extra_night_trips
    asleep_from = t
    latest = next_wake - _m(40)
    times = sorted(asleep_from + _m(60) + (latest - asleep_from - _m(60)) * rng.random()
                   for _ in range(trips)) if latest > asleep_from + _m(60) else []
    for trip in times:
        if trip <= t:
            continue
        add((trip - t).total_seconds() / 60, "bedroom", "sleep")
        add(rng.uniform(3, 8), "bathroom", "toilet")
        add(rng.uniform(0.5, 1.5), "bedroom", "bedtime")
    if next_wake > t:
        add((next_wake - t).total_seconds() / 60, "bedroom", "sleep")
    return acts


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: exact, deterministic for a given rng, fine for small means.
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
