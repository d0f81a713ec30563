"""`telecare inject`: crises injected into a real recording, so detection is judged on real
routines rather than only on the simulator's.

From a bundle (a converted recording: `readings.jsonl`, `homes/*.yaml`), it writes a new
bundle holding, for each home and each layout view of it (`full`; `contacts`: door, cupboard
and appliance contacts, plugs and the flush only; `pirs`: motion sensors only), the home as
recorded (the reference: an alert it raises too at the same time is background and detects
nothing) and copies of it, each with one labelled crisis:
- `long_lie`: from the last activity before a daytime or evening moment (10:00 to 19:00,
  resident at home and active in the hour before: two devices or more besides the doors, and
  not out by the recording's annotations, so a sensor stuck on in an empty house is not taken
  for someone at home), every resident event is removed for 8 h;
  heartbeats, thermometers and check-ins go on;
- `not_up`: every resident event removed from 04:00 until 4 h after the resident's usual
  getting-up time that morning (label from the usual time). The usual time comes from the
  recording's own annotations where it has them (`activities.jsonl`: the end of the night's
  last sleep), else from the readings;
- `night_wandering`: the front door opened and closed between 01:00 and 04:00, and nothing
  indoors for the hour after;
- `uti`: night-time toilet trips growing over a week (1, 1, 2, 2, 3, 3, 3 extra a night):
  out of bed (where there is a mat), the bathroom sensor, a flush, back to bed;
- `skipped_meals`: four days with no use of the kitchen's devices from 06:00 to 22:00.
A kind a view has no sensor for is not injected there. Crises fall after the first week
(left for learning) where the recording is long enough. Same bundle and seed, same bytes.
"""

from __future__ import annotations

import bisect
import json
import random
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from detect.activity import KITCHEN_ROLES, MotionRuns
from telecare.reading import Reading, format_ts, parse_jsonl_line, parse_ts

RESIDENT = frozenset({"motion", "contact", "bed", "chair", "flush", "power", "button"})
VIEWS: dict[str, frozenset[str] | None] = {
    "full": None,
    "contacts": frozenset({"contact", "power", "flush"}),
    "pirs": frozenset({"motion"}),
}
SLEEP = ("sleeping", "go to bed")  # annotated activities that are sleep (Ordonez, van Kasteren)
OUT = ("leaving", "leave house", "leaving the house")  # annotated: the resident is out
KINDS = ("long_lie", "not_up", "night_wandering", "uti", "skipped_meals")
LIE = timedelta(hours=8)


@dataclass
class Home:
    home: str
    description: dict[str, Any]
    readings: list[Reading]
    wakings: list[datetime] = field(default_factory=list)  # annotated ends of sleep
    outings: list[tuple[datetime, datetime]] = field(default_factory=list)  # annotated: out

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.description["timezone"])

    def devices(self) -> list[dict[str, Any]]:
        return list(self.description.get("devices", []))


def _local(d: date, t: time, tz: ZoneInfo) -> datetime:
    return datetime.combine(d, t, tzinfo=tz)


def _rename(readings: list[Reading], home: str) -> list[Reading]:
    return [Reading(home, r.device, r.kind, r.value, r.ts, r.seq, r.battery) for r in readings]


def _view(home: Home, view: str) -> Home | None:
    kinds = VIEWS[view]
    if kinds is None:
        return home
    keep = [d for d in home.devices() if d["kind"] in kinds or d["kind"] not in RESIDENT]
    if not any(d["kind"] in kinds for d in keep):
        return None
    ids = {d["id"] for d in keep}
    return Home(home.home, {**home.description, "devices": keep},
                [r for r in home.readings if r.device in ids], home.wakings, home.outings)


def usual_up(home: Home) -> time:
    """The resident's usual getting-up time, apart from the detector: where the recording is
    annotated, per morning the end of the last sleep that ends between 04:00 and 15:00 (a
    homecoming at 04:00 and sleep till 11:00 is up at 11:00); else, from the readings, the
    first resident event from 05:00 followed by three more in the hour. The median over
    mornings."""
    tz = home.tz
    woke: dict[date, datetime] = {}
    for end in home.wakings:
        local = end.astimezone(tz)
        if 4 <= local.hour < 15:
            woke[local.date()] = max(woke.get(local.date(), local), local)
    if woke:
        minutes = int(statistics.median(t.hour * 60 + t.minute for t in woke.values()))
        return time(minutes // 60, minutes % 60)
    by_day: dict[date, list[datetime]] = defaultdict(list)
    for r in home.readings:
        if r.kind in RESIDENT:
            local = r.ts.astimezone(tz)
            if 5 <= local.hour < 14:
                by_day[local.date()].append(local)
    ups = []
    for times in by_day.values():
        times.sort()
        for i, t in enumerate(times):
            if sum(1 for u in times[i + 1:] if u - t <= timedelta(hours=1)) >= 3:
                ups.append(t.hour * 60 + t.minute)
                break
    minutes = int(statistics.median(ups)) if ups else 8 * 60
    return time(minutes // 60, minutes % 60)


def _days(home: Home) -> list[date]:
    tz = home.tz
    first = min(r.ts for r in home.readings).astimezone(tz).date()
    last = max(r.ts for r in home.readings).astimezone(tz).date()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    inner = days[1:-1] or days
    return [d for d in inner if (d - first).days >= 7] or inner


def _without(readings: list[Reading], start: datetime, end: datetime,
             which: Callable[[Reading], bool] = lambda r: r.kind in RESIDENT) -> list[Reading]:
    return [r for r in readings if not (start <= r.ts < end and which(r))]


def _device(home: Home, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
    return next((d for d in home.devices() if pred(d)), None)


Injected = tuple[list[Reading], dict[str, Any]]


def _acts(readings: list[Reading]) -> list[Reading]:
    """The resident's doings: events, and state changes (a device repeating its state, a
    check-in, is not one; a plug counts when it switches on; a motion sensor stuck on is not
    the resident, as detection judges it)."""
    last: dict[str, float] = {}
    motion = MotionRuns()
    out = []
    for r in sorted(readings, key=lambda r: r.ts):
        if r.kind not in RESIDENT:
            continue
        if r.kind == "motion":
            if r.value < 1:
                motion.cleared(r.device, r.ts)
            elif not motion.stuck(r.device, r.ts):
                out.append(r)
            continue
        if r.kind in ("flush", "button"):
            if r.value >= 1:
                out.append(r)
            continue
        prev = last.get(r.device)
        last[r.device] = r.value
        if r.kind == "power":
            if r.value >= 20 and (prev is None or prev < 20):
                out.append(r)
        elif prev is None or r.value != prev:
            out.append(r)
    return out


def _between(readings: list[Reading], start: datetime, end: datetime) -> list[Reading]:
    """The readings (sorted by time) from `start` to `end`, both included."""
    return readings[bisect.bisect_left(readings, start, key=_ts):
                    bisect.bisect_right(readings, end, key=_ts)]


def _ts(reading: Reading) -> datetime:
    return reading.ts


def long_lie(home: Home, rng: random.Random) -> Injected | None:
    tz = home.tz
    resident = _acts(home.readings)
    doors = {d["id"] for d in home.devices() if d.get("role") in ("front_door", "back_door")}
    days = _days(home)
    for _ in range(200):
        moment = _local(rng.choice(days), time(rng.randrange(10, 19), rng.randrange(60)), tz)
        before = _between(resident, moment - timedelta(hours=1), moment)
        if len({r.device for r in before if r.device not in doors}) < 2 or \
                before[-1].device in doors or \
                any(start <= moment <= end for start, end in home.outings):
            continue
        onset = before[-1].ts
        return (_without(home.readings, onset + timedelta(microseconds=1), onset + LIE),
                {"start": onset, "end": onset + LIE})
    return None


def _home_at_night(home: Home, resident: list[Reading], moment: datetime) -> bool:
    """Was the resident at home at `moment` in the night? Not in an annotated outing, and
    seen inside since they last used the front or back door, by two devices or more (a
    stuck sensor alone in an empty house is nobody), within the 18 hours before."""
    if any(start <= moment <= end for start, end in home.outings):
        return False
    doors = {d["id"] for d in home.devices() if d.get("role") in ("front_door", "back_door")}
    before = _between(resident, moment - timedelta(hours=18), moment)
    before = [r for r in before if r.ts < moment]
    last_door = max((i for i, r in enumerate(before) if r.device in doors), default=-1)
    return len({r.device for r in before[last_door + 1:]}) >= 2


def not_up(home: Home, rng: random.Random) -> Injected | None:
    usual = usual_up(home)
    resident = _acts(home.readings)
    days = _days(home)
    for _ in range(200):
        # A morning after a night at home: nobody is "not up" in a house they are not in.
        day = rng.choice(days)
        if not _home_at_night(home, resident, _local(day, time(4), home.tz)):
            continue
        start = _local(day, usual, home.tz)
        return (_without(home.readings, _local(day, time(4), home.tz),
                         start + timedelta(hours=4)),
                {"start": start, "end": start + timedelta(hours=4),
                 "usual_up": usual.strftime("%H:%M")})
    return None


def night_wandering(home: Home, rng: random.Random) -> Injected | None:
    door = _device(home, lambda d: d.get("role") == "front_door")
    if door is None:
        return None
    resident = _acts(home.readings)
    days = _days(home)
    for _ in range(200):
        # Only someone at home can wander out of it (van Kasteren B was out on most of the
        # nights drawn before this check: the opening was his homecoming).
        at = _local(rng.choice(days), time(rng.randrange(1, 4), rng.randrange(60)), home.tz)
        if _home_at_night(home, resident, at):
            break
    else:
        return None
    out = _without(home.readings, at - timedelta(minutes=5), at + timedelta(hours=1))
    before = [r for r in out if r.device == door["id"] and r.ts < at]
    if before and max(before, key=lambda r: r.ts).value >= 1:
        # The recording has the door standing open (a reed switch left on): shut it first,
        # so that the injected opening is an opening.
        out.append(Reading(home.home, door["id"], door["kind"], 0.0, at - timedelta(seconds=20)))
    out += [Reading(home.home, door["id"], door["kind"], 1.0, at),
            Reading(home.home, door["id"], door["kind"], 0.0, at + timedelta(seconds=10))]
    return out, {"start": at, "end": at + timedelta(hours=1)}


def uti(home: Home, rng: random.Random) -> Injected | None:
    bed = _device(home, lambda d: d["kind"] == "bed")
    flush = _device(home, lambda d: d["kind"] == "flush")
    if bed is None and flush is None:
        return None
    pir = _device(home, lambda d: d["kind"] == "motion" and d.get("room") == "bathroom")
    days = _days(home)
    first = rng.choice(days[: max(1, len(days) - 7)])
    out = list(home.readings)
    for night, extra in enumerate((1, 1, 2, 2, 3, 3, 3)):
        for _ in range(extra):
            t = _local(first + timedelta(days=night + 1), time(rng.randrange(1, 5),
                                                               rng.randrange(60)), home.tz)
            if bed is not None:
                out += [Reading(home.home, bed["id"], "bed", 0.0, t),
                        Reading(home.home, bed["id"], "bed", 1.0, t + timedelta(minutes=6))]
            if pir is not None:
                out.append(Reading(home.home, pir["id"], "motion", 1.0,
                                   t + timedelta(minutes=1)))
            if flush is not None:
                out.append(Reading(home.home, flush["id"], "flush", 1.0,
                                   t + timedelta(minutes=3)))
    start = _local(first + timedelta(days=1), time(0), home.tz)
    return out, {"start": start, "end": start + timedelta(days=6, hours=6)}


def skipped_meals(home: Home, rng: random.Random) -> Injected | None:
    kitchen = {d["id"] for d in home.devices() if d["kind"] in RESIDENT and (
        d.get("role") in KITCHEN_ROLES or d.get("room") == "kitchen")}
    if not kitchen or not any(d.get("role") in KITCHEN_ROLES for d in home.devices()):
        return None
    days = _days(home)
    first = rng.choice(days[: max(1, len(days) - 4)])
    out = list(home.readings)
    for i in range(4):
        d = first + timedelta(days=i)
        out = _without(out, _local(d, time(6), home.tz), _local(d, time(22), home.tz),
                       lambda r: r.device in kitchen)
    start = _local(first, time(6), home.tz)
    return out, {"start": start, "end": _local(first + timedelta(days=3), time(22), home.tz)}


INJECTORS: dict[str, Callable[[Home, random.Random], Injected | None]] = {
    "long_lie": long_lie, "not_up": not_up, "night_wandering": night_wandering,
    "uti": uti, "skipped_meals": skipped_meals}


def read_bundle(bundle: Path) -> list[Home]:
    by_home: dict[str, list[Reading]] = defaultdict(list)
    with open(bundle / "readings.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = parse_jsonl_line(line)
                by_home[r.home].append(r)
    wakings: dict[str, list[datetime]] = defaultdict(list)
    outings: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    annotated = bundle / "activities.jsonl"
    if annotated.exists():
        for line in annotated.read_text(encoding="utf-8").splitlines():
            act = json.loads(line) if line.strip() else {}
            what = str(act.get("activity", "")).lower().replace("_", " ")
            if what in SLEEP:
                wakings[act["home"]].append(parse_ts(act["end"]))
            elif what in OUT:
                outings[act["home"]].append((parse_ts(act["start"]), parse_ts(act["end"])))
    homes = []
    for path in sorted((bundle / "homes").glob("*.y*ml")):
        description = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = description["home"]
        homes.append(Home(name, description, by_home.get(name, []), wakings.get(name, []),
                          outings.get(name, [])))
    return homes


def inject(bundle: Path, out: Path, seed: int, copies: int = 3,
           kinds: tuple[str, ...] = KINDS) -> dict[str, int]:
    """Write the injected bundle; returns how many labels of each kind."""
    (out / "homes").mkdir(parents=True, exist_ok=True)
    readings: list[Reading] = []
    labels: list[dict[str, Any]] = []
    made: dict[str, int] = defaultdict(int)

    def add(home: Home, home_id: str, rows: list[Reading]) -> None:
        description = {**home.description, "home": home_id}
        (out / "homes" / f"{home_id}.yaml").write_text(
            yaml.safe_dump(description, sort_keys=False, default_flow_style=None))
        readings.extend(_rename(rows, home_id))

    for recorded in read_bundle(bundle):
        if not recorded.readings:
            continue
        for view in VIEWS:
            home = _view(recorded, view)
            if home is None:
                continue
            reference = recorded.home if view == "full" else f"{recorded.home}-{view}"
            add(home, reference, home.readings)
            for kind in kinds:
                for i in range(copies):
                    rng = random.Random(f"{seed}:{recorded.home}:{view}:{kind}:{i}")
                    done = INJECTORS[kind](home, rng)
                    if done is None:
                        continue
                    rows, span = done
                    copy_id = f"{reference}-{kind.replace('_', '')}{i}"[:64]
                    add(home, copy_id, rows)
                    labels.append({"home": copy_id, "kind": kind,
                                   "start": format_ts(span.pop("start")),
                                   "end": format_ts(span.pop("end")),
                                   "detail": {"reference": reference, "view": view, **span}})
                    made[kind] += 1
    readings.sort(key=lambda r: (r.ts, r.home, r.device))
    with open(out / "readings.jsonl", "w", encoding="utf-8") as f:
        f.writelines(r.to_jsonl() + "\n" for r in readings)
    with open(out / "labels.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(lab) + "\n" for lab in labels)
    return dict(made)
