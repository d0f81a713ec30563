"""Room temperature: a thermostat-driven house losing heat to the weather.

Each room relaxes towards its setpoint quickly while the heating can reach it, and towards
the outdoor temperature slowly when the heating is off or broken (a house's time constant is
many hours). The outdoor temperature follows the season and the time of day.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

STEP = timedelta(minutes=10)


def heatwave_c(ts: datetime, tz: ZoneInfo) -> float:
    """Outdoors in a heatwave, sun on the walls included: 22 C at night, 34 C by afternoon."""
    local = ts.astimezone(tz)
    return 28.0 + 6.0 * math.sin(2 * math.pi * (local.hour + local.minute / 60 - 9) / 24)


def outdoor_c(ts: datetime, tz: ZoneInfo) -> float:
    local = ts.astimezone(tz)
    day_of_year = local.timetuple().tm_yday
    season = 10.0 - 6.5 * math.cos(2 * math.pi * (day_of_year - 15) / 365)  # UK-like: 3.5..16.5
    daily = 3.0 * math.sin(2 * math.pi * (local.hour + local.minute / 60 - 9) / 24)
    return season + daily


def setpoint_c(ts: datetime, tz: ZoneInfo, day_c: float = 20.0, night_c: float = 17.5) -> float:
    h = ts.astimezone(tz).hour + ts.astimezone(tz).minute / 60
    return day_c if 6.5 <= h < 22.5 else night_c


def simulate_rooms(rng: random.Random, start: datetime, end: datetime, tz: ZoneInfo,
                   rooms: dict[str, float], heating_off: list[tuple[datetime, datetime]],
                   heat: list[tuple[datetime, datetime]] | None = None,
                   ) -> dict[str, list[tuple[datetime, float]]]:
    """Temperature every 10 minutes for each room; `rooms` maps a room to its offset from the
    thermostat (a bedroom runs cooler); `heating_off` lists spans with no heating at all;
    `heat` lists heatwaves, when it is far hotter outside than the season's usual."""
    out: dict[str, list[tuple[datetime, float]]] = {room: [] for room in rooms}
    temps = {room: 19.0 + off for room, off in rooms.items()}
    t = start.astimezone(UTC)
    step_h = STEP.total_seconds() / 3600
    while t < end:
        ambient = outdoor_c(t, tz)
        if heat and any(s <= t < e for s, e in heat):
            ambient = max(ambient, heatwave_c(t, tz))
        broken = any(s <= t < e for s, e in heating_off)
        for room, offset in rooms.items():
            current = temps[room]
            target = setpoint_c(t, tz) + offset
            if not broken and current < target:
                current = target + (current - target) * math.exp(-step_h / 1.0)
            else:
                # A house loses (or gains) heat slowly: a time constant of about half a day.
                current = ambient + (current - ambient) * math.exp(-step_h / 12.0)
            temps[room] = current
            out[room].append((t, round(current + rng.gauss(0, 0.08), 1)))
        t += STEP
    return out
