"""A resident's own baseline: robust statistics over their recent days.

Median and median absolute deviation (MAD) of a daily figure over the last `days` days that
were not flagged: a day that raised a warning never becomes part of what is "usual", so a
slow change cannot teach the baseline to accept itself. Until `min_days` days are known the
baseline says it is warming up, and rules fall back to their defaults. It is saved with the
detector's state (so it persists and is updated once a day), and versioned: `version` counts
the days it has taken in, and an alert's evidence names the version and the newest day.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pydantic import Field

from telecare.config import Duration, RuleSettings, Severity


def mad(values: list[float]) -> float:
    """Median absolute deviation from the median."""
    m = statistics.median(values)
    return float(statistics.median(abs(v - m) for v in values))


def robust_spread(values: list[float], floor: float = 1.0) -> float:
    """The MAD scaled to a standard deviation (x1.4826), never taken below `floor`: a count
    that is nearly always the same would otherwise make one extra event look enormous."""
    return max(floor, 1.4826 * mad(values))


@dataclass
class Baseline:
    days: int = 28
    min_days: int = 7
    history: list[tuple[str, float, bool]] = field(default_factory=list)  # day, value, flagged
    version: int = 0  # days ever added: with the newest day, says which data it has seen

    def add(self, day: str, value: float, flagged: bool) -> None:
        self.history.append((day, value, flagged))
        del self.history[:-(self.days * 3)]  # keep enough for an older window too
        self.version += 1

    def describe(self) -> dict[str, Any]:
        """What the baseline is, for an alert's evidence: version, days used, through when."""
        return {"version": self.version, "days_used": len(self.values()),
                "through": self.history[-1][0] if self.history else None}

    def values(self, skip_recent: int = 0, span: int | None = None) -> list[float]:
        """Unflagged values, leaving out the newest `skip_recent` days, over `span` days."""
        span = span or self.days
        end = len(self.history) - skip_recent
        window = self.history[max(0, end - span):max(0, end)]
        return [v for _, v, flagged in window if not flagged]

    def entries(self) -> list[tuple[str, float]]:
        """(day, value) of the unflagged days in the window, oldest first."""
        return [(d, v) for d, v, flagged in self.history[-self.days:] if not flagged]

    def ready(self, skip_recent: int = 0) -> bool:
        return len(self.values(skip_recent)) >= self.min_days

    def median(self, skip_recent: int = 0) -> float:
        return float(statistics.median(self.values(skip_recent)))

    def z(self, value: float, floor: float = 1.0) -> float:
        """How many robust standard deviations `value` lies above the median."""
        return (value - self.median()) / robust_spread(self.values(), floor)

    def usual_range(self) -> str:
        vals = sorted(self.values())
        lo, hi = vals[len(vals) // 4], vals[(3 * len(vals)) // 4]
        return f"{lo:g}" if lo == hi else f"{lo:g} to {hi:g}"

    def state(self) -> dict[str, Any]:
        return {"history": [list(h) for h in self.history], "version": self.version}

    def load(self, state: dict[str, Any]) -> None:
        self.history = [(str(d), float(v), bool(f)) for d, v, f in state.get("history", [])]
        self.version = int(state.get("version", len(self.history)))


class RoutineSettings(RuleSettings):
    """Settings of the rules that judge the routine against the resident's own baseline."""

    severity: Severity = "medium"
    baseline_days: int = Field(default=28, ge=7, le=365)
    min_days: int = Field(default=7, ge=3, le=365)
    # A day with this much time out is neither judged nor learned from.
    away_skip: Duration = timedelta(hours=12)
