"""Labelled crises (and look-alikes that are not crises) injected into a resident's days.

Each scenario bends the simulation on a chosen day: the routine (`DayMods`, a later waking),
the acts themselves (a fall cuts the day short), the house (the heating fails), or a device
(it goes offline, its battery runs flat). Each writes a `Label` to `labels.jsonl`: the ground
truth of what happened, from when to when, for evaluation.

Scenario kinds, with how many days each spans:
  pendant          the pendant is pressed                                   1
  long_lie         a fall, and nobody comes for hours                       1
  not_up           still in bed by late morning                             1
  night_wandering  out of the front door at night, not back                 1
  cold_home        the heating fails on a winter night                      2
  heatwave         days of heat, the house too hot                          4
  uti              night-time toilet trips rising over several nights       5
  skipped_meals    meals and drinks missed over days                        4
  decline          a slow decline in activity over weeks                   21
  vitals           vital signs deteriorating towards an urgent NEWS2        3
  device_offline   a sensor stops reporting                                 2
  flat_battery     a sensor's battery runs flat, then is replaced           4
  visitor          a visitor stays: more activity, not a crisis             3
  hospital         the resident is away in hospital: no activity, not one   5
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.resident import Act, DayMods, local_instant
from telecare.reading import format_ts

AT_HOME_ACTS = frozenset({"tv", "meal", "kettle", "toilet", "wash"})
SPAN_DAYS = {
    "pendant": 1, "long_lie": 1, "not_up": 1, "night_wandering": 1, "cold_home": 2,
    "heatwave": 4, "uti": 5, "skipped_meals": 4, "decline": 21, "vitals": 3,
    "device_offline": 2, "flat_battery": 4, "visitor": 3, "hospital": 5,
}
SCENARIOS = tuple(SPAN_DAYS)
# Device kinds a home needs for the scenario to mean anything.
NEEDS: dict[str, set[str]] = {
    "pendant": {"button"}, "cold_home": {"temperature"}, "heatwave": {"temperature"},
    "vitals": {"heart_rate"},
}


def _ms(ts: datetime) -> datetime:
    """Whole milliseconds, as readings carry."""
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


@dataclass
class Label:
    home: str
    kind: str
    start: datetime
    end: datetime
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json_obj(self) -> dict[str, Any]:
        return {"home": self.home, "kind": self.kind, "start": format_ts(_ms(self.start)),
                "end": format_ts(_ms(self.end)), "detail": self.detail}


@dataclass
class Injection:
    """Everything the scenarios asked of one home's simulation."""

    home: str
    tz: ZoneInfo
    start: date
    rng: random.Random
    usual_wake_h: float
    devices: dict[str, str]  # device id -> kind
    mods: dict[int, DayMods] = field(default_factory=dict)
    wake_h: dict[int, float] = field(default_factory=dict)  # day -> local wake hour
    act_edits: list[Callable[[list[Act]], list[Act]]] = field(default_factory=list)
    extra: list[tuple[datetime, str, float]] = field(default_factory=list)  # ts, role, value
    heating_off: list[tuple[datetime, datetime]] = field(default_factory=list)
    heat: list[tuple[datetime, datetime]] = field(default_factory=list)
    offline: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    flat: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    vitals: list[tuple[datetime, datetime]] = field(default_factory=list)
    visitors: list[tuple[datetime, datetime]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)

    def day(self, i: int) -> date:
        return self.start + timedelta(days=i)

    def at(self, i: int, hours: float) -> datetime:
        return local_instant(self.day(i), hours, self.tz)

    def mod(self, i: int) -> DayMods:
        return self.mods.setdefault(i, DayMods())

    def label(self, kind: str, start: datetime, end: datetime, **detail: Any) -> Label:
        lab = Label(self.home, kind, start, end, dict(detail))
        self.labels.append(lab)
        return lab


def _moment(rng: random.Random, acts: list[Act], lo: datetime, hi: datetime) -> datetime | None:
    """A moment when the resident is at home and up, between lo and hi."""
    spans = [a for a in acts if a.what in AT_HOME_ACTS and a.end > lo and a.start < hi
             and a.end - a.start > timedelta(minutes=2)]
    if not spans:
        return None
    act = rng.choice(spans)
    start, end = max(act.start, lo), min(act.end, hi)
    return start + (end - start) * rng.uniform(0.1, 0.9)


def replace_span(acts: list[Act], start: datetime, end: datetime, act: Act) -> list[Act]:
    """Acts with [start, end) given over to `act`; acts cut by the edges are shortened."""
    out: list[Act] = []
    for a in acts:
        if a.end <= start or a.start >= end:
            out.append(a)
            continue
        if a.start < start:
            out.append(Act(a.start, start, a.room, a.what, a.pace))
        if a.end > end:
            out.append(Act(end, a.end, a.room, a.what, a.pace))
    out.append(act)
    out.sort(key=lambda a: a.start)
    return out


# --- acute ---------------------------------------------------------------------------------


def pendant(inj: Injection, day: int) -> None:
    rng = inj.rng

    def edit(acts: list[Act]) -> list[Act]:
        at = _moment(rng, acts, inj.at(day, 9), inj.at(day, 21))
        if at is not None:
            presses = 1 + (rng.random() < 0.5) + (rng.random() < 0.2)
            for i in range(presses):
                inj.extra.append((at + timedelta(seconds=25 * i), "pendant", 1))
            inj.label("pendant", at, at + timedelta(minutes=30), presses=presses)
        return acts

    inj.act_edits.append(edit)


def long_lie(inj: Injection, day: int) -> None:
    rng = inj.rng

    def edit(acts: list[Act]) -> list[Act]:
        fall = _moment(rng, acts, inj.at(day, 9), inj.at(day, 12))
        if fall is None:
            return acts
        found = fall + timedelta(hours=rng.uniform(5, 7))
        # A responder lets themselves in; the resident is helped up and the day goes on.
        inj.extra.append((found - timedelta(seconds=30), "front_door", 1))
        inj.extra.append((found - timedelta(seconds=10), "front_door", 0))
        inj.label("long_lie", fall, found, found_by="responder")
        return replace_span(acts, fall, found, Act(fall, found, "lounge", "lie"))

    inj.act_edits.append(edit)


def not_up(inj: Injection, day: int) -> None:
    """Unwell: still in bed long past the usual time, getting up around midday."""
    wake = inj.rng.uniform(12.0, 13.5)
    inj.wake_h[day] = wake
    inj.mod(day).vigour = 0.6
    inj.label("not_up", inj.at(day, inj.usual_wake_h), inj.at(day, wake),
              usual_wake=f"{int(inj.usual_wake_h):02d}:{round(inj.usual_wake_h % 1 * 60):02d}")


def night_wandering(inj: Injection, day: int) -> None:
    rng = inj.rng

    def edit(acts: list[Act]) -> list[Act]:
        leave = inj.at(day, 24 + rng.uniform(1.5, 4.0))
        back = leave + timedelta(minutes=rng.uniform(60, 150))
        inj.label("night_wandering", leave, back, returned_with="police")
        return replace_span(acts, leave, back, Act(leave, back, "hall", "out"))

    inj.act_edits.append(edit)


def cold_home(inj: Injection, day: int) -> None:
    fails = inj.at(day, 20 + inj.rng.uniform(-1, 1))
    fixed = inj.at(day, 24 + 11 + inj.rng.uniform(-1, 1.5))
    inj.heating_off.append((fails, fixed))
    inj.label("cold_home", fails, fixed, cause="heating failure")


def heatwave(inj: Injection, day: int) -> None:
    start, end = inj.at(day, 6), inj.at(day + SPAN_DAYS["heatwave"], 6)
    inj.heat.append((start, end))
    inj.heating_off.append((start, end))
    inj.label("heatwave", start, end)


# --- gradual -------------------------------------------------------------------------------


def uti(inj: Injection, day: int) -> None:
    nights = SPAN_DAYS["uti"]
    for i in range(nights):
        m = inj.mod(day + i)
        m.extra_night_trips = 1 + i  # 1, 2, 3, 4, 5 more trips a night than usual
        m.toilet_every = 0.6
    inj.label("uti", inj.at(day, 20), inj.at(day + nights, 10), extra_trips=list(range(1, 6)))


def skipped_meals(inj: Injection, day: int) -> None:
    n = SPAN_DAYS["skipped_meals"]
    for i in range(n):
        m = inj.mod(day + i)
        m.meal_keep = 0.25
        m.kettle_keep = 0.4
    inj.label("skipped_meals", inj.at(day, 0), inj.at(day + n, 0), meal_keep=0.25)


def decline(inj: Injection, day: int) -> None:
    n = SPAN_DAYS["decline"]
    for i in range(n):
        inj.mod(day + i).vigour = 1.0 - 0.5 * (i + 1) / n  # down to half by the end
    inj.label("decline", inj.at(day, 0), inj.at(day + n, 0), final_vigour=0.5)


def vitals(inj: Injection, day: int) -> None:
    start = inj.at(day, 8)
    end = inj.at(day + SPAN_DAYS["vitals"], 8)
    inj.vitals.append((start, end))
    inj.label("vitals", start, end, pattern="sepsis-like: HR, RR and temperature up, "
                                            "SpO2 and systolic BP down")


# --- technical and not-a-crisis -------------------------------------------------------------


def _pick_device(inj: Injection, kinds: tuple[str, ...]) -> str | None:
    candidates = sorted(d for d, k in inj.devices.items() if k in kinds)
    return inj.rng.choice(candidates) if candidates else None


def device_offline(inj: Injection, day: int) -> None:
    device = _pick_device(inj, ("motion", "temperature", "contact"))
    if device is None:
        return
    start = inj.at(day, inj.rng.uniform(6, 20))
    end = start + timedelta(hours=inj.rng.uniform(12, 36))
    inj.offline.append((device, start, end))
    inj.label("device_offline", start, end, device=device)


def flat_battery(inj: Injection, day: int) -> None:
    device = _pick_device(inj, ("motion", "contact", "temperature", "flush", "bed"))
    if device is None:
        return
    low = inj.at(day, 9)  # battery at 15% from here, draining 6% a day
    dead = low + timedelta(days=2.5)
    replaced = dead + timedelta(days=1)
    inj.flat.append((device, low, replaced))
    inj.offline.append((device, dead, replaced))
    inj.label("flat_battery", low, replaced, device=device, dead_at=format_ts(_ms(dead)))


def visitor(inj: Injection, day: int) -> None:
    n = SPAN_DAYS["visitor"]
    arrive, leave = inj.at(day, 11 + inj.rng.uniform(0, 3)), inj.at(day + n - 1, 15)
    inj.visitors.append((arrive, leave))
    inj.extra += [(arrive, "front_door", 1), (arrive + timedelta(seconds=20), "front_door", 0),
                  (leave, "front_door", 1), (leave + timedelta(seconds=20), "front_door", 0)]
    inj.label("visitor", arrive, leave, who="family staying")


def hospital(inj: Injection, day: int) -> None:
    rng = inj.rng
    n = SPAN_DAYS["hospital"]

    def edit(acts: list[Act]) -> list[Act]:
        leave = inj.at(day, rng.uniform(10, 12))
        back = inj.at(day + n - 1, rng.uniform(13, 16))
        inj.label("hospital", leave, back, planned=True)
        return replace_span(acts, leave, back, Act(leave, back, "hall", "out"))

    inj.act_edits.append(edit)


INJECTORS: dict[str, Callable[[Injection, int], None]] = {
    "pendant": pendant, "long_lie": long_lie, "not_up": not_up,
    "night_wandering": night_wandering, "cold_home": cold_home, "heatwave": heatwave,
    "uti": uti, "skipped_meals": skipped_meals, "decline": decline, "vitals": vitals,
    "device_offline": device_offline, "flat_battery": flat_battery, "visitor": visitor,
    "hospital": hospital,
}
