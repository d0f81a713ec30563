"""`telecare simulate`: a scenario bundle that `--config DIR` runs on as it is.

DIR/readings.jsonl  every home's readings (contract section 2), in event-time order
DIR/labels.jsonl    the ground truth: each injected event's home, kind, start and end
DIR/homes/*.yaml    each home's description (contract section 4)
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from simulators.home import SimulatedHome, simulate_home
from simulators.scenarios import SCENARIOS


@dataclass(frozen=True)
class BundleSummary:
    homes: int
    days: int
    readings: int
    labels: dict[str, int]


def choose_scenarios(seed: int, home: str, days: int, fixed: list[tuple[str, int]],
                     rate: float, kinds: tuple[str, ...]) -> list[tuple[str, int]]:
    """Fixed scenarios for every home, plus random ones at `rate` per home-day. Random ones
    keep off the first day (so a new home has some ordinary life first) and never share a
    day with another scenario."""
    chosen = [(k, d) for k, d in fixed if 0 <= d < days]
    if rate > 0 and kinds:
        rng = random.Random(f"{seed}:{home}:scenarios")
        busy = {d for _, d in chosen}
        for day in range(1, days):
            if rng.random() < rate and day not in busy and day - 1 not in busy:
                chosen.append((rng.choice(kinds), day))
                busy.add(day)
    return sorted(chosen, key=lambda kd: kd[1])


def write_bundle(out: Path, homes: list[SimulatedHome]) -> BundleSummary:
    out.mkdir(parents=True, exist_ok=True)
    (out / "homes").mkdir(exist_ok=True)
    readings = sorted((r for h in homes for r in h.readings), key=lambda r: (r.ts, r.home))
    with open(out / "readings.jsonl", "w", encoding="utf-8") as f:
        for r in readings:
            f.write(r.to_jsonl() + "\n")
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
                    ) -> BundleSummary:
    made = []
    for i in range(1, homes + 1):
        home = f"h{i:03d}"
        scenarios = choose_scenarios(seed, home, days, fixed, rate, kinds)
        sim = simulate_home(home, seed, start, days, scenarios)
        if webhook:
            sim.contacts = [{"name": "Carer", "webhook": webhook}]
        made.append(sim)
    summary = write_bundle(out, made)
    return BundleSummary(summary.homes, days, summary.readings, summary.labels)
