"""Summary statistics of a bundle, to check that simulated lives look like real ones.

Per home-day: readings by kind, and for homes with a bed mat and a toilet sensor, the time of
getting up and going to bed (local time) and the night-time toilet trips (flushes while the
night's sleep lasts). Used by `telecare simulate --summary` and by the tests that compare two
seeds.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from telecare.config import Config
from telecare.reading import Reading


@dataclass
class Summary:
    home_days: int
    per_home_day: dict[str, float]  # readings by kind
    wake_h: list[float]  # local decimal hours
    bed_h: list[float]
    night_trips: list[int]

    def describe(self) -> dict[str, object]:
        def q(xs: list[float]) -> dict[str, float]:
            if not xs:
                return {}
            qs = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
            return {"p10": round(qs[0], 2), "median": round(statistics.median(xs), 2),
                    "p90": round(qs[-1], 2)}

        trips = Counter(self.night_trips)
        return {
            "home_days": self.home_days,
            "readings_per_home_day": {k: round(v, 1) for k, v in sorted(self.per_home_day.items())},
            "wake_local_hour": q(self.wake_h),
            "bed_local_hour": q(self.bed_h),
            "night_toilet_trips_mean": round(statistics.fmean(self.night_trips), 2)
            if self.night_trips else None,
            "nights_with_2_or_more_trips": round(
                sum(n for k, n in trips.items() if k >= 2) / max(len(self.night_trips), 1), 3),
        }


def _nights(bed: list[tuple[datetime, float]]) -> list[tuple[datetime, datetime]]:
    """(into bed, out of bed) for each main sleep: an in-bed spell of three hours or more."""
    out = []
    since: datetime | None = None
    for ts, v in bed:
        if v >= 1 and since is None:
            since = ts
        elif v < 1 and since is not None:
            out.append((since, ts))
            since = None
    # Night-time trips split a night into spells: join spells less than 30 min apart.
    joined: list[tuple[datetime, datetime]] = []
    for s, e in out:
        if joined and s - joined[-1][1] < timedelta(minutes=30):
            joined[-1] = (joined[-1][0], e)
        else:
            joined.append((s, e))
    return [(s, e) for s, e in joined if e - s >= timedelta(hours=3)]


def summarise(readings: list[Reading], config: Config, days: int) -> Summary:
    by_home: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        by_home[r.home].append(r)
    kinds: Counter[str] = Counter()
    wake, bed_h, trips = [], [], []
    for home, rs in by_home.items():
        rs.sort(key=lambda r: r.ts)
        kinds.update(r.kind for r in rs)
        tz = ZoneInfo(config.home(home).timezone)
        bed_changes = []
        last = None
        for r in rs:
            if r.kind == "bed" and r.value != last:
                bed_changes.append((r.ts, r.value))
                last = r.value
        flushes = [r.ts for r in rs if r.kind == "flush"]
        if not bed_changes or not flushes:
            continue
        for into, out in _nights(bed_changes):
            local_in, local_out = into.astimezone(tz), out.astimezone(tz)
            bed_h.append(local_in.hour + local_in.minute / 60 + (24 if local_in.hour < 12 else 0))
            wake.append(local_out.hour + local_out.minute / 60)
            trips.append(sum(into < f < out for f in flushes))
    home_days = max(len(by_home) * days, 1)
    return Summary(home_days, {k: n / home_days for k, n in kinds.items()}, wake, bed_h, trips)
