"""NEWS2 (National Early Warning Score 2, Royal College of Physicians, 2017) from the vital
signs a home can measure.

Scored here: respiration rate, SpO2 (scale 1), systolic blood pressure, pulse, temperature.
Not measured at home, and said so in every result: consciousness (ACVPU) and whether the
person is on supplemental oxygen (scored as air). A total is given only when at least
three of the five parameters were measured recently; a single parameter scoring 3 counts
whatever else is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

PARAMETERS = ("resp_rate", "spo2", "systolic_bp", "heart_rate", "body_temperature")
NAMES = {"resp_rate": "breathing rate", "spo2": "oxygen saturation",
         "systolic_bp": "systolic blood pressure", "heart_rate": "pulse",
         "body_temperature": "temperature"}
UNITS = {"resp_rate": "/min", "spo2": "%", "systolic_bp": " mmHg", "heart_rate": "/min",
         "body_temperature": " °C"}


def band(kind: str, v: float) -> int:
    """The RCP NEWS2 score for one parameter."""
    if kind == "resp_rate":
        return 3 if v <= 8 else 1 if v <= 11 else 0 if v <= 20 else 2 if v <= 24 else 3
    if kind == "spo2":  # scale 1
        return 3 if v <= 91 else 2 if v <= 93 else 1 if v <= 95 else 0
    if kind == "systolic_bp":
        return 3 if v <= 90 else 2 if v <= 100 else 1 if v <= 110 else 0 if v <= 219 else 3
    if kind == "heart_rate":
        return 3 if v <= 40 else 1 if v <= 50 else 0 if v <= 90 else 1 if v <= 110 else \
            2 if v <= 130 else 3
    if kind == "body_temperature":
        return 3 if v <= 35.0 else 1 if v <= 36.0 else 0 if v <= 38.0 else 1 if v <= 39.0 \
            else 2
    raise ValueError(f"{kind} is not a NEWS2 parameter")


@dataclass(frozen=True)
class Score:
    total: int | None  # None: too few parameters measured for a total
    parts: dict[str, tuple[float, int]]  # kind -> (value, score)
    missing: tuple[str, ...]

    @property
    def red(self) -> list[str]:
        """Parameters scoring 3 on their own."""
        return [k for k, (_, s) in self.parts.items() if s == 3]

    def level(self) -> int:
        """0 none, 1 a single parameter at 3, 2 total 5-6 (urgent), 3 total 7+ (emergency)."""
        if self.total is not None and self.total >= 7:
            return 3
        if self.total is not None and self.total >= 5:
            return 2
        return 1 if self.red else 0


def score(latest: dict[str, float], min_parameters: int = 3) -> Score:
    parts = {k: (latest[k], band(k, latest[k])) for k in PARAMETERS if k in latest}
    missing = tuple(k for k in PARAMETERS if k not in latest)
    total = sum(s for _, s in parts.values()) if len(parts) >= min_parameters else None
    return Score(total, parts, missing)
