"""A reader for van Kasteren's houses B and C (one man each, 2 to 4 weeks; reed contacts,
PIRs, bed and couch pressure mats, toilet flush), as kept in public collections:
`KB House/` and `KC House/`, each with `K?_ss.csv` (tab-separated sensor ON intervals:
start, end, sensor id, value), `K?_sensor_labels.csv`, `K?_as.csv` (activities: start, end,
id) and `K?_activity_labels.csv`. Local time is Amsterdam's.

T.L.M. van Kasteren, G. Englebienne, B.J.A. Kröse. Human activity recognition from wireless
sensor network data: benchmark and software. In: Activity Recognition in Pervasive
Intelligent Environments, Atlantis Press, 2011 (the houses first described 2010). No grant to
redistribute: this code takes the folder as an argument and nothing of the data is
committed.

Intervals become the contract's readings as for Ordonez: a PIR gives `motion` at the start
and every 60 s while on; a pressure mat `bed` or `chair` 1 then 0; a toilet flush `flush` at
the start; every reed or mercury switch (doors, cupboards, drawers, the fridge) `contact` 1
(open) then 0. Sensors labelled dead are left out.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from simulators.ordonez import PIR_RETRIGGER, ConvertedHome, write_bundle
from telecare.reading import Reading, format_ts

TIMEZONE = "Europe/Amsterdam"
HOUSES = {"B": "KB House", "C": "KC House"}


@dataclass(frozen=True)
class Sensor:
    device: str
    kind: str
    room: str
    role: str | None


def _rows(path: Path) -> list[list[str]]:
    with open(path, encoding="latin-1", newline="") as f:
        return [[c.strip() for c in row] for row in csv.reader(f, delimiter="\t")
                if row and row[0].strip() and not row[0].startswith(("ID", "Start"))]


def _labels(path: Path) -> dict[int, str]:
    return {int(r[0]): r[1].strip().strip("'").strip() for r in _rows(path) if len(r) > 1}


def _slug(text: str) -> str:
    words = "".join(c if c.isalnum() else " " for c in text.lower()).split()
    return "-".join(w for w in words if w not in ("reed", "pir", "mercury", "switch",
                                                   "pressure", "mat", "flush"))[:60] or "x"


def sensor_for(label: str) -> Sensor | None:
    """What a sensor's label says it is; None for a dead sensor."""
    low = label.lower()
    if "dead" in low:
        return None
    slug = _slug(low)
    if "pir" in low:
        room = next((r for r in ("bedroom", "bathroom", "kitchen") if r in low),
                    "bathroom" if "bathtub" in low else "bedroom" if "dresser" in low
                    else "hall")
        return Sensor(f"{slug}-pir", "motion", room, None)
    if "pressure" in low or "mat" in low:
        if "bed" in low:
            return Sensor(f"{slug}-mat", "bed", "bedroom", "bed")
        room = "lounge" if "couch" in low else "study"
        return Sensor(f"{slug}-mat", "chair", room, "chair")
    if "flush" in low and "toilet" in low:
        return Sensor(f"{slug}-flush", "flush", "bathroom", "toilet")
    role = ("front_door" if "frontdoor" in low or "front door" in low else
            "fridge" if "fridge" in low else "microwave" if "microwave" in low else None)
    room = ("hall" if role == "front_door" or "key" in low else
            "bathroom" if any(w in low for w in ("toilet", "bathroom", "badkamer", "sink"))
            else "bedroom" if any(w in low for w in ("bedroom", "dresser")) else
            "lounge" if any(w in low for w in ("balcony", "window", "piano")) else "kitchen")
    return Sensor(slug, "contact", room, role)


def _time(text: str, tz: ZoneInfo) -> datetime:
    return datetime.strptime(text, "%d-%b-%Y %H:%M:%S").replace(tzinfo=tz).astimezone(UTC)


def convert_house(src: Path, name: str) -> ConvertedHome:
    """`src` holds `KB House/` and `KC House/`; `name` is 'B' or 'C'."""
    tz = ZoneInfo(TIMEZONE)
    folder = src / HOUSES[name]
    prefix = f"K{name}"
    home = f"kasteren-{name.lower()}"
    sensors = {i: sensor_for(label)
               for i, label in _labels(folder / f"{prefix}_sensor_labels.csv").items()}
    events: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    devices: dict[str, dict[str, str]] = {}
    odd = 0
    for row in _rows(folder / f"{prefix}_ss.csv"):
        sensor = sensors.get(int(row[2]))
        if sensor is None:
            continue
        start, end = _time(row[0], tz), _time(row[1], tz)
        entry = {"id": sensor.device, "kind": sensor.kind, "room": sensor.room}
        if sensor.role:
            entry["role"] = sensor.role
        devices[sensor.device] = entry
        has_end = end >= start
        odd += not has_end
        if sensor.kind == "motion":
            t = start
            while True:
                events[sensor.device].append((t, 1.0))
                t += PIR_RETRIGGER
                if not has_end or t > end:
                    break
        elif sensor.kind == "flush":
            events[sensor.device].append((start, 1.0))
        else:
            events[sensor.device].append((start, 1.0))
            if has_end:
                events[sensor.device].append((max(end, start + timedelta(seconds=1)), 0.0))
    kinds = {d["id"]: d["kind"] for d in devices.values()}
    readings = [Reading(home, device, kinds[device], value, ts, seq)
                for device, evs in events.items()
                for seq, (ts, value) in enumerate(sorted(evs), start=1)]
    readings.sort(key=lambda r: (r.ts, r.device))
    labels = _labels(folder / f"{prefix}_activity_labels.csv")
    activities = [{"home": home, "activity": labels.get(int(r[2]), r[2]) or r[2],
                   "start": format_ts(_time(r[0], tz)), "end": format_ts(_time(r[1], tz))}
                  for r in _rows(folder / f"{prefix}_as.csv")]
    description: dict[str, object] = {"home": home, "timezone": TIMEZONE,
                                      "devices": sorted(devices.values(), key=lambda d: d["id"])}
    return ConvertedHome(home, readings, description, activities, odd, len(devices))


def convert(src: Path, out: Path, houses: tuple[str, ...] = ("B", "C")) -> list[ConvertedHome]:
    """Houses B and C into one bundle: readings.jsonl, homes/*.yaml, activities.jsonl."""
    homes = [convert_house(src, name) for name in houses]
    write_bundle(out, homes, "Converted from van Kasteren's recordings (houses B and C); "
                             "not for redistribution.")
    return homes
