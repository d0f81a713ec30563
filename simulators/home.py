"""A simulated home: a layout of devices, a resident with a profile, and their days.

`simulate_home` runs one home for a number of days, injecting the scenarios asked for, and
returns its readings (contract section 2), its description (contract section 4) and the
labels of what was injected. Everything is drawn from one seeded random generator, so the
same seed gives the same bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.climate import simulate_rooms
from simulators.devices import Batteries, Event, Renderer, SimDevice, check_ins, to_readings
from simulators.network import Network, deliver
from simulators.resident import Act, Profile, local_instant, plan_day, wake_time
from simulators.scenarios import INJECTORS, NEEDS, Injection, Label
from simulators.vitals import measure, vital_devices
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


def partial_layout() -> list[SimDevice]:
    """PIRs in the main rooms only, no fridge contact or microwave plug."""
    keep = {"bedroom-pir", "kitchen-pir", "lounge-pir", "front-door", "kettle-plug", "bed-mat",
            "toilet", "pendant", "lounge-temp", "hub"}
    return [d for d in full_layout() if d.id in keep]


def minimal_layout() -> list[SimDevice]:
    """Only door contacts and a kettle plug (plus a pendant, a thermometer and the hub)."""
    keep = {"front-door", "fridge-door", "kettle-plug", "pendant", "lounge-temp", "hub"}
    return [d for d in full_layout() if d.id in keep]


def vitals_layout() -> list[SimDevice]:
    """Everything, and a telehealth kit for vital signs."""
    return full_layout() + vital_devices()


LAYOUTS: dict[str, Callable[[], list[SimDevice]]] = {
    "full": full_layout, "partial": partial_layout, "minimal": minimal_layout,
    "vitals": vitals_layout,
}
LAYOUT_WEIGHTS = {"full": 0.4, "partial": 0.25, "minimal": 0.15, "vitals": 0.2}


def choose_layout(rng: random.Random, scenarios: list[tuple[str, int]]) -> str:
    names = [n for n in LAYOUTS
             if all(NEEDS.get(k, set()) <= {d.kind for d in LAYOUTS[n]()} for k, _ in scenarios)]
    weights = [LAYOUT_WEIGHTS[n] for n in names]
    return rng.choices(names, weights)[0] if names else "vitals"


@dataclass
class SimulatedHome:
    home: str
    timezone: str
    devices: list[SimDevice]
    readings: list[Reading]
    labels: list[Label]
    profile: Profile
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
                  network: Network | None = None) -> SimulatedHome:
    rng = random.Random(f"{seed}:{home}")
    tz = ZoneInfo(timezone)
    profile = profile or Profile.random(rng)
    devices = devices or LAYOUTS[choose_layout(rng, scenarios)]()
    network = network or Network()
    begin = datetime.combine(start, time(0), tzinfo=tz).astimezone(UTC)
    finish = datetime.combine(start + timedelta(days=days), time(0), tzinfo=tz).astimezone(UTC)

    inj = Injection(home, tz, start, rng, profile.wake_h, {d.id: d.kind for d in devices})
    for kind, day in scenarios:
        INJECTORS[kind](inj, day)
    wakes = [wake_time(rng, profile, start + timedelta(days=i), tz) for i in range(days + 1)]
    for i, hours in inj.wake_h.items():
        if 0 <= i <= days:
            wakes[i] = local_instant(start + timedelta(days=i), hours, tz)
    acts: list[Act] = [Act(begin, wakes[0], "bedroom", "sleep")]
    for i in range(days):
        acts.extend(plan_day(rng, profile, start + timedelta(days=i), tz, wakes[i],
                             wakes[i + 1], inj.mods.get(i)))
    for edit in inj.act_edits:
        acts = edit(acts)
    acts = [a for a in acts if a.start < finish]

    renderer = Renderer(devices, rng)
    for act in acts:
        renderer.act(act)
    by_role = {d.role: d for d in devices if d.role}
    for ts, role, value in inj.extra:
        if role in by_role:
            d = by_role[role]
            renderer.events.append(Event(ts, d.id, d.kind, value))
    events = renderer.events
    events.extend(_visitor_events(rng, devices, inj.visitors))
    events = [e for e in events if begin <= e.ts < finish]
    events.extend(check_ins(events, devices, begin, finish, rng))

    thermometers = [d for d in devices if d.kind == "temperature"]
    rooms = {d.room: ROOM_OFFSET.get(d.room, 0.0) for d in thermometers}
    series = simulate_rooms(rng, begin, finish, tz, rooms, inj.heating_off, inj.heat)
    for d in thermometers:
        offset = timedelta(seconds=rng.uniform(0, 59))
        events.extend(Event(ts + offset, d.id, "temperature", v) for ts, v in series[d.room])
    for label in inj.labels:
        if label.kind in ("cold_home", "heatwave"):
            limit, cmp = (16.0, float.__lt__) if label.kind == "cold_home" else (26.0, float.__gt__)
            hit = [ts for room in series.values() for ts, v in room
                   if label.start <= ts <= label.end and cmp(v, limit)]
            key = "first_below_16c" if label.kind == "cold_home" else "first_above_26c"
            label.detail[key] = format_ts(min(hit)) if hit else None
    events.extend(measure(rng, devices, _measure_times(acts, inj, begin, finish, tz),
                          inj.vitals))
    for device, off_from, off_to in inj.offline:
        events = [e for e in events if not (e.device == device and off_from <= e.ts < off_to)]

    batteries = Batteries(devices, begin, rng)
    for device, low_from, replaced in inj.flat:
        batteries.flat[device] = (low_from, 15.0, 6.0, replaced)
    readings = deliver(to_readings(home, events, batteries), network, rng)
    return SimulatedHome(home, timezone, devices, readings,
                         sorted(inj.labels, key=lambda lab: lab.start), profile)


def _visitor_events(rng: random.Random, devices: list[SimDevice],
                    spans: list[tuple[datetime, datetime]]) -> list[Event]:
    """A second person about the house: movement in the living rooms and extra tea."""
    pirs = [d for d in devices if d.kind == "motion" and d.room in ("lounge", "kitchen", "hall")]
    kettle = next((d for d in devices if d.role == "kettle"), None)
    out: list[Event] = []
    for start, end in spans:
        t = start
        while t < end:
            t += timedelta(minutes=rng.expovariate(1 / 9))
            if pirs and 7 <= t.hour < 23:
                out.append(Event(t, rng.choice(pirs).id, "motion", 1))
            if kettle is not None and rng.random() < 0.01:
                out += [Event(t, kettle.id, "power", 2000.0),
                        Event(t + timedelta(minutes=3), kettle.id, "power", 0.0)]
    return out


def _measure_times(acts: list[Act], inj: Injection, begin: datetime, finish: datetime,
                   tz: ZoneInfo) -> list[datetime]:
    """Twice a day at home; every four hours while a deterioration episode lasts."""
    away = [(a.start, a.end) for a in acts if a.what in ("out", "lie")]
    out: list[datetime] = []
    day = begin.astimezone(tz).date()
    while True:
        day_start, day_end = local_instant(day, 0, tz), local_instant(day, 24, tz)
        unwell = any(s < day_end and e > day_start for s, e in inj.vitals)
        hours = [8.5, 12.5, 16.5, 20.5] if unwell else [8.5, 19.5]
        for h in hours:
            t = local_instant(day, h, tz) + timedelta(minutes=inj.rng.gauss(0, 15))
            if begin <= t < finish and not any(s <= t < e for s, e in away):
                out.append(t)
        day += timedelta(days=1)
        if local_instant(day, 0, tz) >= finish:
            return out
