"""NEWS2 from home vital signs: a trigger at a single parameter of 3, a total of 5, and 7.

The latest value of each parameter measured within `window` is scored (see `detect.news2`).
One alert per episode at each level: if the score climbs to a higher level, the open alert
is resolved as superseded and a more severe one raised; it resolves when a full set of
recent measurements no longer triggers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from detect.activity import Activity
from detect.localtime import when
from detect.news2 import NAMES, PARAMETERS, UNITS, Score, score
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import Duration, HomeConfig, RuleSettings, Severity
from telecare.reading import Reading, format_ts, parse_ts

LEVEL_WORDS = {
    1: "one vital sign is far from normal (a NEWS2 parameter scoring 3): ask a clinician "
       "to review today",
    2: "NEWS2 {total}: urgent clinical review is needed (GP or 111 now)",
    3: "NEWS2 {total}: this is an emergency (call 999)",
}


class News2Settings(RuleSettings):
    """Royal College of Physicians NEWS2 from home vital signs."""

    severity_single_3: Severity = "medium"  # one parameter scoring 3: urgent clinical review
    severity_5: Severity = "high"  # total 5-6: urgent response
    severity_7: Severity = "critical"  # total 7 or more: emergency
    window: Duration = timedelta(hours=1)  # parameters measured this close form a set
    min_parameters: int = Field(default=3, ge=1, le=5)  # fewer: no total (a 3 still counts)


class News2(Rule):
    name = "news2"

    def __init__(self, home: HomeConfig, settings: News2Settings) -> None:
        super().__init__(home)
        self.settings = settings
        self.latest: dict[str, tuple[datetime, float]] = {}
        self.open: Alert | None = None
        self.open_level = 0

    def _severity(self, level: int) -> str:
        return {1: self.settings.severity_single_3, 2: self.settings.severity_5,
                3: self.settings.severity_7}[level]

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if reading.kind not in PARAMETERS:
            return []
        prev = self.latest.get(reading.kind)
        if prev is not None and reading.ts < prev[0]:
            return []
        self.latest[reading.kind] = (reading.ts, reading.value)
        recent = {k: v for k, (t, v) in self.latest.items()
                  if reading.ts - t <= self.settings.window}
        result = score(recent, self.settings.min_parameters)
        level = result.level()
        out: list[Alert] = []
        if self.open is not None and (level > self.open_level or
                                      (level == 0 and result.total is not None)):
            words = ("Superseded: the score rose." if level > self.open_level else
                     f"Vital signs settled: NEWS2 {result.total} at {when(reading.ts, self.tz)}.")
            out.append(self.open.resolve(reading.ts, words))
            self.open, self.open_level = None, 0
        if level > 0 and self.open is None:
            self.open = self._raise(reading.ts, result, level)
            self.open_level = level
            out.append(self.open)
        return out

    def _raise(self, now: datetime, result: Score, level: int) -> Alert:
        parts = ", ".join(f"{NAMES[k]} {v:g}{UNITS[k]} (scores {s})"
                          for k, (v, s) in result.parts.items())
        missing = ", ".join(NAMES[k] for k in result.missing)
        total = "not totalled" if result.total is None else str(result.total)
        message = (f"Vital signs at {when(now, self.tz)}: {parts}. "
                   + LEVEL_WORDS[level].format(total=total).capitalize() + ". "
                   + (f"Not measured: {missing}. " if missing else "")
                   + "Consciousness and oxygen use are not measured at home (scored as "
                     "alert, on air): the real score can only be higher.")
        return self.firing(
            now, self._severity(level), message,
            {"news2_total": result.total, "level": level,
             "parameters": {k: {"value": v, "score": s} for k, (v, s) in result.parts.items()},
             "missing": list(result.missing),
             "assumed": {"consciousness": "alert", "oxygen": "air"}},
            key=f"L{level}")

    def state(self) -> dict[str, Any]:
        return {"latest": {k: [format_ts(t), v] for k, (t, v) in self.latest.items()},
                "open": self.open.to_json_obj() if self.open else None,
                "open_level": self.open_level}

    def load(self, state: dict[str, Any]) -> None:
        self.latest = {k: (parse_ts(t), float(v)) for k, (t, v) in
                       state.get("latest", {}).items()}
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
        self.open_level = int(state.get("open_level", 0))


SPEC = RuleSpec("news2", News2Settings, News2)
