"""Labelled crises injected into a resident's days.

Each scenario changes what the resident does (or what the house does) on a chosen day and
returns a `Label`: the ground truth of what went wrong, from when to when, written to
`labels.jsonl` for evaluation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from simulators.resident import Act, local_instant
from telecare.reading import format_ts

SCENARIOS = ("pendant", "cold_home", "long_lie")
AT_HOME_ACTS = frozenset({"tv", "meal", "kettle", "toilet", "wash"})


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


def _ms(ts: datetime) -> datetime:
    """Whole milliseconds, as readings carry."""
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


@dataclass
class Injection:
    """What the scenarios did to one home: extra events, acts removed, heating failures."""

    extra: list[tuple[datetime, str, float]] = field(default_factory=list)  # (ts, role, value)
    heating_off: list[tuple[datetime, datetime]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


def _at_home_moment(rng: random.Random, acts: list[Act], lo: datetime, hi: datetime
                    ) -> datetime | None:
    spans = [a for a in acts if a.what in AT_HOME_ACTS and a.end > lo and a.start < hi
             and a.end - a.start > timedelta(minutes=2)]
    if not spans:
        return None
    act = rng.choice(spans)
    start, end = max(act.start, lo), min(act.end, hi)
    return start + (end - start) * rng.uniform(0.1, 0.9)


def pendant(rng: random.Random, home: str, acts: list[Act], day: date, tz: ZoneInfo,
            inj: Injection) -> list[Act]:
    at = _at_home_moment(rng, acts, local_instant(day, 9, tz), local_instant(day, 21, tz))
    if at is None:
        return acts
    presses = 1 + (rng.random() < 0.5) + (rng.random() < 0.2)
    for i in range(presses):
        inj.extra.append((at + timedelta(seconds=25 * i), "pendant", 1))
    inj.labels.append(Label(home, "pendant", at, at + timedelta(minutes=30),
                            {"presses": presses}))
    return acts


def cold_home(rng: random.Random, home: str, acts: list[Act], day: date, tz: ZoneInfo,
              inj: Injection) -> list[Act]:
    fails = local_instant(day, 21 + rng.uniform(-1, 1), tz)
    fixed = local_instant(day, 24 + 9 + rng.uniform(-1, 1.5), tz)
    inj.heating_off.append((fails, fixed))
    inj.labels.append(Label(home, "cold_home", fails, fixed, {"cause": "heating failure"}))
    return acts


def long_lie(rng: random.Random, home: str, acts: list[Act], day: date, tz: ZoneInfo,
             inj: Injection) -> list[Act]:
    fall = _at_home_moment(rng, acts, local_instant(day, 9, tz), local_instant(day, 12, tz))
    if fall is None:
        return acts
    found = fall + timedelta(hours=rng.uniform(5, 7))
    kept: list[Act] = []
    for a in acts:
        if a.end <= fall or a.start >= found:
            kept.append(a)
        elif a.start < fall:
            kept.append(Act(a.start, fall, a.room, a.what))  # the fall cuts this short
        elif a.end > found:
            kept.append(Act(found + timedelta(minutes=10), a.end, a.room, a.what))
    # A responder lets themselves in; the resident is helped up and the day goes on.
    inj.extra.append((found - timedelta(seconds=30), "front_door", 1))
    inj.extra.append((found - timedelta(seconds=10), "front_door", 0))
    inj.labels.append(Label(home, "long_lie", fall, found, {"found_by": "responder"}))
    return kept


INJECTORS = {"pendant": pendant, "cold_home": cold_home, "long_lie": long_lie}
