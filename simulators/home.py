"""A simulated home: a layout of devices, a resident with a profile, and their days.

`simulate_home` runs one home for a number of days, injecting the scenarios asked for, and
returns its readings (contract section 2), its description (contract section 4) and the
labels of what was injected. Everything is drawn from one seeded random generator, so the
same seed gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.climate import simulate_rooms
from simulators.devices import Event, Renderer, SimDevice, check_ins, to_readings
from simulators.resident import Act, Profile, plan_day, wake_time
from simulators.scenarios import INJECTORS, Injection, Label
from telecare.reading import Reading, format_ts

# Thermostat offsets: the bedroom runs a little cooler than the lounge.
ROOM_OFFSET = {"lounge": 0.0, "bedroom": -0.8, "kitchen": 0.3}


def full_layout() -> list[SimDevice]:
    """A PIR in every room, door and fridge contacts, plugs, a bed mat, a flush sensor, a
    pendant, two thermometers and a hub."""
    return [
        SimDevice("bedroom-pir", "motion", "bedroom"),
        SimDevice("kitchen-pir", "motion", "kitchen"),
        SimDevice("lounge-pir", "motion", "lounge"),
        SimDevice("bathroom-pir", "motion", "bathroom"),
        SimDevice("hall-pir", "motion", "hall"),
        SimDevice("front-door", "contact", "hall", "front_door"),
        SimDevice("fridge-door", "contact", "kitchen", "fridge"),
        SimDevice("kettle-plug", "power", "kitchen", "kettle"),
        SimDevice("microwave-plug", "power", "kitchen", "microwave"),
        SimDevice("bed-mat", "bed", "bedroom", "bed"),
        SimDevice("toilet", "flush", "bathroom", "toilet"),
        SimDevice("pendant", "button", "worn", "pendant"),
        SimDevice("lounge-temp", "temperature", "lounge"),
        SimDevice("bedroom-temp", "temperature", "bedroom"),
        SimDevice("hub", "heartbeat", "hall"),
    ]


@dataclass
class SimulatedHome:
    home: str
    timezone: str
    devices: list[SimDevice]
    readings: list[Reading]
    labels: list[Label]
    contacts: list[dict[str, str]] = field(default_factory=list)

    def description(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "home": self.home,
            "timezone": self.timezone,
            "devices": [d.as_config() for d in self.devices],
        }
        if self.contacts:
            out["contacts"] = self.contacts
        return out


def simulate_home(home: str, seed: str | int, start: date, days: int,
                  scenarios: list[tuple[str, int]], timezone: str = "Europe/London",
                  profile: Profile | None = None, devices: list[SimDevice] | None = None,
                  ) -> SimulatedHome:
    rng = random.Random(f"{seed}:{home}")
    tz = ZoneInfo(timezone)
    profile = profile or Profile.random(rng)
    devices = devices or full_layout()
    begin = datetime.combine(start, time(0), tzinfo=tz).astimezone(UTC)
    finish = datetime.combine(start + timedelta(days=days), time(0), tzinfo=tz).astimezone(UTC)

    wakes = [wake_time(rng, profile, start + timedelta(days=i), tz) for i in range(days + 1)]
    acts: list[Act] = [Act(begin, wakes[0], "bedroom", "sleep")]
    inj = Injection()
    by_day = {day: [k for k, d in scenarios if d == day] for day in range(days)}
    for i in range(days):
        day = start + timedelta(days=i)
        day_acts = plan_day(rng, profile, day, tz, wakes[i], wakes[i + 1])
        for kind in by_day.get(i, []):
            day_acts = INJECTORS[kind](rng, home, day_acts, day, tz, inj)
        acts.extend(day_acts)
    acts = [a for a in acts if a.start < finish]

    renderer = Renderer(devices, rng)
    for act in acts:
        renderer.act(act)
    by_role = {d.role: d for d in devices if d.role}
    for ts, role, value in inj.extra:
        if role in by_role:
            d = by_role[role]
            renderer.events.append(Event(ts, d.id, d.kind, value))
    events = [e for e in renderer.events if begin <= e.ts < finish]
    events.extend(check_ins(events, devices, begin, finish, rng))

    thermometers = [d for d in devices if d.kind == "temperature"]
    rooms = {d.room: ROOM_OFFSET.get(d.room, 0.0) for d in thermometers}
    series = simulate_rooms(rng, begin, finish, tz, rooms, inj.heating_off)
    for d in thermometers:
        offset = timedelta(seconds=rng.uniform(0, 59))
        events.extend(Event(ts + offset, d.id, "temperature", v) for ts, v in series[d.room])
    for label in inj.labels:
        if label.kind == "cold_home":
            below = [ts for room in series.values() for ts, v in room
                     if label.start <= ts <= label.end and v < 16.0]
            label.detail["first_below_16c"] = format_ts(min(below)) if below else None

    readings = to_readings(home, events, devices, rng)
    return SimulatedHome(home, timezone, devices, readings, sorted(inj.labels,
                         key=lambda lab: lab.start))
