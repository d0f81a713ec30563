"""The radio and the internet between a home and the broker: most messages arrive within a
second or two, some are late (a gateway's store-and-forward after a dropout), a few are sent
twice, and a very few are lost. The output is in arrival order, which is the order a live
service sees; event time (`ts`) is never changed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from telecare.reading import Reading

# A pendant or fall detector retries until its hub acknowledges: never lost, only late.
NEVER_LOST = frozenset({"button", "fall"})


@dataclass(frozen=True)
class Network:
    duplicate_p: float = 0.002
    late_p: float = 0.02  # 2 s .. 1 min late
    very_late_p: float = 0.003  # 1 .. 15 min late
    lost_p: float = 0.0005

    @classmethod
    def clean(cls) -> Network:
        return cls(0.0, 0.0, 0.0, 0.0)


def deliver(readings: list[Reading], network: Network, rng: random.Random) -> list[Reading]:
    arrivals: list[tuple[float, int, Reading]] = []
    for i, r in enumerate(readings):
        if r.kind not in NEVER_LOST and rng.random() < network.lost_p:
            continue
        roll = rng.random()
        if roll < network.very_late_p:
            delay = rng.uniform(60, 900)
        elif roll < network.very_late_p + network.late_p:
            delay = rng.uniform(2, 60)
        else:
            delay = rng.uniform(0.05, 1.5)
        at = (r.ts + timedelta(seconds=delay)).timestamp()
        arrivals.append((at, i, r))
        if rng.random() < network.duplicate_p:
            arrivals.append((at + rng.uniform(0.1, 5), i, r))
    arrivals.sort(key=lambda a: (a[0], a[1]))
    return [r for _, _, r in arrivals]
