"""`telecare simulate`: a scenario bundle that `--config DIR` runs on as it is.

DIR/readings.jsonl  every home's readings (contract section 2), in event-time order
DIR/labels.jsonl    the ground truth: each injected event's home, kind, start and end
DIR/homes/*.yaml    each home's description (contract section 4)
"""

from __future__ import annotations

import heapq
import json
import random
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import yaml

from simulators.home import LAYOUTS, SimulatedHome, simulate_home
from simulators.network import Network
from simulators.scenarios import SCENARIOS, SPAN_DAYS
from telecare.reading import Reading


@dataclass(frozen=True)
class BundleSummary:
    homes: int
    days: int
    readings: int
    labels: dict[str, int]


def choose_scenarios(seed: int, home: str, days: int, fixed: list[tuple[str, int]],
                     rate: float, kinds: tuple[str, ...]) -> list[tuple[str, int]]:
    """Fixed scenarios for every home, plus random ones at `rate` per home-day. Random ones
    start after a week of ordinary life (a baseline to learn from), fit inside the bundle,
    and never overlap another scenario or the day either side of it."""
    chosen = [(k, d) for k, d in fixed if 0 <= d < days]
    if rate > 0 and kinds:
        rng = random.Random(f"{seed}:{home}:scenarios")
        busy: set[int] = set()
        for k, d in chosen:
            busy.update(range(d - 1, d + SPAN_DAYS[k] + 1))
        for day in range(7, days):
            if rng.random() >= rate:
                continue
            kind = rng.choice(kinds)
            span = range(day - 1, day + SPAN_DAYS[kind] + 1)
            if day + SPAN_DAYS[kind] < days and not busy.intersection(span):
                chosen.append((kind, day))
                busy.update(span)
    return sorted(chosen, key=lambda kd: kd[1])


def _arrivals(readings: list[Reading]) -> list[tuple[tuple[datetime, str, int], Reading]]:
    """A merge key that never goes down within one home's arrival-ordered stream: the latest
    event time seen so far (close to when the message reached the broker)."""
    out = []
    latest: datetime | None = None
    for i, r in enumerate(readings):
        latest = r.ts if latest is None or r.ts > latest else latest
        out.append(((latest, r.home, i), r))
    return out


def write_bundle(out: Path, homes: list[SimulatedHome]) -> BundleSummary:
    out.mkdir(parents=True, exist_ok=True)
    (out / "homes").mkdir(exist_ok=True)
    # In arrival order (each home's stream merged by when it would reach the broker), which
    # is the order a live service sees; late and repeated messages stay where they arrived.
    streams = [_arrivals(h.readings) for h in homes]
    readings = [r for _, r in heapq.merge(*streams, key=lambda ar: ar[0])]
    with open(out / "readings.jsonl", "w", encoding="utf-8") as f:
        f.writelines(r.to_jsonl() + "\n" for r in readings)
    counts: dict[str, int] = {}
    with open(out / "labels.jsonl", "w", encoding="utf-8") as f:
        for h in homes:
            for label in h.labels:
                f.write(json.dumps(label.to_json_obj()) + "\n")
                counts[label.kind] = counts.get(label.kind, 0) + 1
    for h in homes:
        text = yaml.safe_dump(h.description(), sort_keys=False, default_flow_style=None)
        (out / "homes" / f"{h.home}.yaml").write_text(text, encoding="utf-8")
    return BundleSummary(len(homes), 0, len(readings), counts)


def simulate_bundle(out: Path, homes: int, days: int, seed: int, start: date,
                    fixed: list[tuple[str, int]], rate: float,
                    kinds: tuple[str, ...] = SCENARIOS, webhook: str | None = None,
                    network: Network | None = None, layout: str | None = None
                    ) -> BundleSummary:
    made = []
    for i in range(1, homes + 1):
        home = f"h{i:03d}"
        scenarios = choose_scenarios(seed, home, days, fixed, rate, kinds)
        devices = LAYOUTS[layout]() if layout else None
        sim = simulate_home(home, seed, start, days, scenarios, devices=devices, network=network)
        if webhook:
            sim.contacts = [{"name": "Carer", "webhook": webhook}]
        made.append(sim)
    summary = write_bundle(out, made)
    return BundleSummary(summary.homes, days, summary.readings, summary.labels)
