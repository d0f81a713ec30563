"""Vital signs from a telehealth kit: measured morning and evening, more often when unwell.

Each resident has their own healthy baseline. During a deterioration episode the values move
steadily towards a sepsis-like picture (fast heart and breathing, fever, low oxygen
saturation and blood pressure), enough to reach an urgent NEWS2 score by its end.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from simulators.devices import Event, SimDevice

# kind -> (baseline low, baseline high, change at the worst of an episode, noise sd, decimals)
VITALS = {
    "heart_rate": (62, 78, +45, 3.0, 0),
    "spo2": (95, 98, -7, 0.6, 0),
    "resp_rate": (13, 17, +11, 1.0, 0),
    "systolic_bp": (118, 142, -42, 5.0, 0),
    "body_temperature": (36.3, 36.9, +2.1, 0.15, 1),
}


def vital_devices() -> list[SimDevice]:
    return [
        SimDevice("oximeter-hr", "heart_rate", "lounge"),
        SimDevice("oximeter-spo2", "spo2", "lounge"),
        SimDevice("resp-monitor", "resp_rate", "bedroom"),
        SimDevice("bp-cuff", "systolic_bp", "lounge"),
        SimDevice("thermometer", "body_temperature", "lounge"),
    ]


def measure(rng: random.Random, devices: list[SimDevice], times: list[datetime],
            episodes: list[tuple[datetime, datetime]]) -> list[Event]:
    own = [d for d in devices if d.kind in VITALS]
    if not own:
        return []
    base = {d.kind: rng.uniform(VITALS[d.kind][0], VITALS[d.kind][1]) for d in own}
    out: list[Event] = []
    for t in times:
        worst = 0.0
        for start, end in episodes:
            if start <= t < end:
                worst = max(worst, (t - start) / (end - start))
        for d in own:
            _, _, change, sd, decimals = VITALS[d.kind]
            value = base[d.kind] + change * worst + rng.gauss(0, sd)
            if d.kind == "spo2":
                value = min(value, 100.0)
            at = t + timedelta(seconds=rng.uniform(0, 90))
            out.append(Event(at, d.id, d.kind, round(value, decimals)))
    return out
