"""Devices: what a home's sensors send when its resident acts.

PIRs fire on movement with a re-trigger hold-off; door contacts and bed mats report changes of
state and an hourly unchanged-state check-in; plugs report watts on change and every half hour;
thermometers report every ten minutes; the hub sends a heartbeat every five. Each device
counts its messages (`seq`), battery devices report a slowly draining battery, and now and
then a message is sent twice, as a real radio link does.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from simulators.resident import Act
from telecare.reading import Reading

PIR_HOLD_OFF = timedelta(seconds=60)
CHECK_IN = {"contact": timedelta(hours=1), "bed": timedelta(hours=1),
            "chair": timedelta(hours=1), "power": timedelta(minutes=30)}
HEARTBEAT = timedelta(minutes=5)
MAINS_KINDS = frozenset({"power", "heartbeat"})
# Mean minutes between PIR triggers while the resident is in a room doing this.
MOVE_EVERY_MIN = {"tv": 7.0, "nap": 0.0, "sleep": 0.0, "bedtime": 1.0, "lie": 0.0}


@dataclass(frozen=True)
class SimDevice:
    id: str
    kind: str
    room: str
    role: str | None = None

    def as_config(self) -> dict[str, str]:
        out = {"id": self.id, "kind": self.kind, "room": self.room}
        if self.role:
            out["role"] = self.role
        return out


@dataclass
class Event:
    ts: datetime
    device: str
    kind: str
    value: float


class Renderer:
    """Turns acts into device events for one home's layout."""

    def __init__(self, devices: list[SimDevice], rng: random.Random) -> None:
        self.devices = devices
        self.rng = rng
        self.by_room_kind = {(d.room, d.kind): d for d in devices}
        self.by_role = {d.role: d for d in devices if d.role}
        self.events: list[Event] = []
        self._last_pir: dict[str, datetime] = {}
        self._in_bed = True
        self._room: str | None = None

    def _emit(self, ts: datetime, device: SimDevice | None, value: float) -> None:
        if device is not None:
            self.events.append(Event(ts, device.id, device.kind, value))

    def _motion(self, ts: datetime, room: str) -> None:
        pir = self.by_room_kind.get((room, "motion"))
        if pir is None:
            return
        last = self._last_pir.get(pir.id)
        if last is not None and ts - last < PIR_HOLD_OFF:
            return  # the PIR is still in its hold-off after the last trigger
        self._last_pir[pir.id] = ts
        self._emit(ts, pir, 1)

    def _s(self, seconds: float) -> timedelta:
        return timedelta(seconds=seconds)

    def act(self, act: Act) -> None:
        rng = self.rng
        if act.what != "sleep" and self._in_bed:
            self._emit(act.start, self.by_role.get("bed"), 0)
            self._in_bed = False
        moved = act.room != self._room and self._room is not None and act.what != "sleep"
        if moved and rng.random() < 0.7:
            self._motion(act.start - self._s(rng.uniform(3, 10)), "hall")
        self._room = act.room
        if act.what == "out":
            door = self.by_role.get("front_door")
            self._motion(act.start - self._s(20), "hall")
            self._emit(act.start, door, 1)
            self._emit(act.start + self._s(rng.uniform(8, 25)), door, 0)
            self._emit(act.end - self._s(rng.uniform(8, 25)), door, 1)
            self._emit(act.end, door, 0)
            self._motion(act.end + self._s(5), "hall")
            return
        if act.what == "sleep":
            if not self._in_bed:
                self._emit(act.start, self.by_role.get("bed"), 1)
                self._in_bed = True
            return
        if act.what == "lie":
            return  # on the floor: nothing a sensor sees
        self._motion(act.start + self._s(rng.uniform(1, 8)), act.room)
        every = MOVE_EVERY_MIN.get(act.what, 1.5) / max(act.pace, 0.1)
        if every > 0:
            t = act.start + self._s(rng.uniform(1, 8))
            while True:
                t += self._s(rng.expovariate(1 / (every * 60)))
                if t >= act.end:
                    break
                self._motion(t, act.room)
        if act.what == "toilet":
            self._emit(act.end - self._s(rng.uniform(10, 30)), self.by_role.get("toilet"), 1)
        elif act.what == "kettle":
            on = act.start + self._s(rng.uniform(20, 60))
            self._emit(on, self.by_role.get("kettle"), round(rng.uniform(1850, 2200)))
            self._emit(on + self._s(rng.uniform(150, 240)), self.by_role.get("kettle"), 0)
        elif act.what == "meal":
            fridge = self.by_role.get("fridge")
            opened = act.start + self._s(rng.uniform(30, 120))
            self._emit(opened, fridge, 1)
            self._emit(opened + self._s(rng.uniform(10, 40)), fridge, 0)
            micro = self.by_role.get("microwave")
            if micro is not None and rng.random() < 0.6:
                on = opened + self._s(rng.uniform(60, 180))
                self._emit(on, micro, round(rng.uniform(700, 900)))
                self._emit(on + self._s(rng.uniform(90, 240)), micro, 0)
        elif act.what == "bedtime":
            self._emit(act.end, self.by_role.get("bed"), 1)
            self._in_bed = True


def check_ins(events: list[Event], devices: list[SimDevice], start: datetime, end: datetime,
              rng: random.Random) -> list[Event]:
    """Periodic unchanged-state reports for state devices and plugs, and hub heartbeats."""
    out: list[Event] = []
    changes: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        changes[e.device].append(e)
    for d in devices:
        period = CHECK_IN.get(d.kind) or (HEARTBEAT if d.kind == "heartbeat" else None)
        if period is None:
            continue
        own = sorted(changes.get(d.id, []), key=lambda e: e.ts)
        state = 1.0 if d.kind == "bed" else 0.0
        i = 0
        t = start + timedelta(seconds=rng.uniform(0, period.total_seconds()))
        while t < end:
            while i < len(own) and own[i].ts <= t:
                state = own[i].value
                i += 1
            out.append(Event(t, d.id, d.kind, 1.0 if d.kind == "heartbeat" else state))
            t += period
    return out


class Batteries:
    """Each battery device starts somewhere between half and full and drains slowly (coin
    cells last one to three years); a scenario can make one run flat and be replaced."""

    def __init__(self, devices: list[SimDevice], start: datetime, rng: random.Random) -> None:
        self.start = start
        self.level0 = {d.id: rng.uniform(50, 100) for d in devices if d.kind not in MAINS_KINDS}
        self.per_day = {d: rng.uniform(0.05, 0.2) for d in self.level0}
        # device -> (from, level at from, per day, replaced at)
        self.flat: dict[str, tuple[datetime, float, float, datetime]] = {}

    def level(self, device: str, ts: datetime) -> int | None:
        if device not in self.level0:
            return None
        flat = self.flat.get(device)
        if flat is not None and ts >= flat[0]:
            since, at, per_day, replaced = flat
            if ts >= replaced:
                return 100
            days = (ts - since).total_seconds() / 86400
            return max(round(at - per_day * days), 0)
        days = (ts - self.start).total_seconds() / 86400
        return max(round(self.level0[device] - self.per_day[device] * days), 1)


def to_readings(home: str, events: Iterable[Event], batteries: Batteries) -> list[Reading]:
    """Number each device's messages and add battery levels."""
    ordered = sorted(events, key=lambda e: (e.ts, e.device, e.kind))
    seq: dict[str, int] = defaultdict(int)
    out: list[Reading] = []
    for e in ordered:
        seq[e.device] += 1
        ts = e.ts.replace(microsecond=(e.ts.microsecond // 1000) * 1000)
        level = batteries.level(e.device, ts)
        out.append(Reading(home, e.device, e.kind, float(e.value), ts, seq[e.device],
                           None if level is None else float(level)))
    return out
