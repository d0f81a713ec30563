"""A reader for the UCI "ADLs Recognition Using Binary Sensors" dataset (Ordonez, UC3M).

Ordonez, F.J.; de Toledo, P.; Sanchis, A. Activity Recognition Using Hybrid Generative/
Discriminative Models on Home Environments Using Binary Sensors. Sensors 2013, 13, 5460-5477.
Non-commercial use only.

Each home's `*_Sensors.txt` lists sensor ON intervals (start, end, location, type, place) in
local time (Madrid). They become the contract's readings, so a real recording replays exactly
like a simulated one:
- PIR: `motion` 1 at the start of the interval and every 60 s while it lasts (a PIR keeps
  re-triggering while it sees movement);
- Magnetic: `contact` 1 at the start (opened), 0 at the end (closed);
- Pressure: `bed` (or `chair` for the seat) 1 at the start, 0 at the end;
- Flush: `flush` 1 at the start;
- Electric: `power` in watts at the start, 0 at the end.
`*_ADLs.txt` (the residents' activities, labelled by hand) becomes `activities.jsonl`; they
are daily life, not crises, so `labels.jsonl` is empty.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

from telecare.reading import Reading, format_ts

TIMEZONE = "Europe/Madrid"
PIR_RETRIGGER = timedelta(seconds=60)
ROLES = {"Maindoor": "front_door", "Fridge": "fridge", "Microwave": "microwave",
         "Toilet": "toilet", "Bed": "bed", "Seat": "chair"}
WATTS = {"Microwave": 800.0, "Toaster": 900.0}
_ROW = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(.*)")


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime
    fields: tuple[str, ...]


def read_intervals(path: Path, tz: ZoneInfo) -> list[Interval]:
    out = []
    for line in path.read_text(encoding="latin-1").splitlines():
        m = _ROW.match(line.strip())
        if not m:
            continue  # the two header lines, blank lines
        start, end = (datetime.fromisoformat(x).replace(tzinfo=tz).astimezone(UTC)
                      for x in m.group(1, 2))
        out.append(Interval(start, end, tuple(f for f in re.split(r"\s+", m.group(3)) if f)))
    return out


def _kind(location: str, sensor_type: str) -> str:
    return {"PIR": "motion", "Magnetic": "contact", "Flush": "flush", "Electric": "power",
            "Pressure": "chair" if location == "Seat" else "bed"}[sensor_type]


def _device_id(location: str, sensor_type: str) -> str:
    suffix = {"PIR": "-pir", "Flush": "-flush", "Electric": "-plug"}.get(sensor_type, "")
    return f"{location.lower()}{suffix}"


@dataclass
class ConvertedHome:
    home: str
    readings: list[Reading]
    description: dict[str, object]
    activities: list[dict[str, str]]
    odd_intervals: int  # intervals whose end is before their start: start kept only
    sensors: int


def convert_home(src: Path, name: str) -> ConvertedHome:
    """`name` is 'A' or 'B' (OrdonezA_*.txt, OrdonezB_*.txt)."""
    tz = ZoneInfo(TIMEZONE)
    home = f"ordonez-{name.lower()}"
    events: dict[str, list[tuple[datetime, str, float]]] = defaultdict(list)
    devices: dict[str, dict[str, str]] = {}
    odd = 0
    for iv in read_intervals(src / f"Ordonez{name}_Sensors.txt", tz):
        location, sensor_type, place = iv.fields[0], iv.fields[1], iv.fields[2]
        kind = _kind(location, sensor_type)
        device = _device_id(location, sensor_type)
        entry = {"id": device, "kind": kind, "room": place.lower()}
        if location in ROLES:
            entry["role"] = ROLES[location]
        devices[device] = entry
        has_end = iv.end >= iv.start
        odd += not has_end
        if kind == "motion":
            t = iv.start
            while True:
                events[device].append((t, kind, 1.0))
                t += PIR_RETRIGGER
                if not has_end or t > iv.end:
                    break
        elif kind == "flush":
            events[device].append((iv.start, kind, 1.0))
        else:
            on = WATTS.get(location, 1.0) if kind == "power" else 1.0
            events[device].append((iv.start, kind, on))
            if has_end:
                events[device].append((iv.end, kind, 0.0))
    readings = []
    for device, evs in events.items():
        for seq, (ts, kind, value) in enumerate(sorted(evs), start=1):
            readings.append(Reading(home, device, kind, value, ts, seq))
    readings.sort(key=lambda r: (r.ts, r.device))
    activities = [
        {"home": home, "activity": iv.fields[0], "start": format_ts(iv.start),
         "end": format_ts(iv.end)}
        for iv in read_intervals(src / f"Ordonez{name}_ADLs.txt", tz) if iv.fields
    ]
    description: dict[str, object] = {"home": home, "timezone": TIMEZONE,
                                      "devices": sorted(devices.values(), key=lambda d: d["id"])}
    return ConvertedHome(home, readings, description, activities, odd, len(devices))


def write_bundle(out: Path, homes: list[ConvertedHome], header: str) -> None:
    """Converted homes as one bundle: readings.jsonl (event-time order), an empty
    labels.jsonl (daily life, not crises), activities.jsonl, and homes/*.yaml under `header`
    (where the data came from and on what terms)."""
    (out / "homes").mkdir(parents=True, exist_ok=True)
    readings = sorted((r for h in homes for r in h.readings), key=lambda r: (r.ts, r.home))
    with open(out / "readings.jsonl", "w", encoding="utf-8") as f:
        f.writelines(r.to_jsonl() + "\n" for r in readings)
    (out / "labels.jsonl").write_text("")
    with open(out / "activities.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(a) + "\n" for h in homes for a in h.activities)
    for h in homes:
        (out / "homes" / f"{h.home}.yaml").write_text(
            f"# {header}\n" + yaml.safe_dump(h.description, sort_keys=False,
                                             default_flow_style=None))


def convert(src: Path, out: Path) -> list[ConvertedHome]:
    """Both homes into one bundle: readings.jsonl, homes/*.yaml, activities.jsonl."""
    homes = [convert_home(src, name) for name in ("A", "B")]
    write_bundle(out, homes, "Converted from the UCI ADL binary dataset (Ordonez, UC3M); "
                             "non-commercial use.")
    return homes
