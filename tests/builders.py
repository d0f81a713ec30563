"""Small builders for tests: a home's configuration and readings in a few words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from detect.rules import TABLE, load_config
from telecare.config import Config
from telecare.reading import Reading

DEVICES = [
    {"id": "bedroom-pir", "kind": "motion", "room": "bedroom"},
    {"id": "kitchen-pir", "kind": "motion", "room": "kitchen"},
    {"id": "front-door", "kind": "contact", "room": "hall", "role": "front_door"},
    {"id": "kettle-plug", "kind": "power", "room": "kitchen", "role": "kettle"},
    {"id": "bed-mat", "kind": "bed", "room": "bedroom", "role": "bed"},
    {"id": "toilet", "kind": "flush", "room": "bathroom"},
    {"id": "pendant", "kind": "button", "room": "worn", "role": "pendant"},
    {"id": "lounge-temp", "kind": "temperature", "room": "lounge"},
    {"id": "bedroom-temp", "kind": "temperature", "room": "bedroom"},
    {"id": "hub", "kind": "heartbeat", "room": "hall"},
]


def write_home(root: Path, home: str = "h001", timezone: str = "Europe/London",
               **extra: Any) -> Path:
    (root / "homes").mkdir(parents=True, exist_ok=True)
    data = {"home": home, "timezone": timezone, "devices": DEVICES, **extra}
    (root / "homes" / f"{home}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return root


RULES = tuple(TABLE)  # every rule a plan can switch


def only(*rules: str, **settings: dict[str, Any]) -> dict[str, Any]:
    """A home's `rules:` plan with every rule but these switched off (settings merged in)."""
    return {r: {"enabled": r in rules, **settings.get(r, {})} for r in RULES}


def config_for(tmp_path: Path, home: str = "h001", **extra: Any) -> Config:
    return load_config(write_home(tmp_path / "config", home, **extra))


def utc(text: str) -> datetime:
    """'2026-01-05 09:30' as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def reading(device: str, kind: str, value: float, ts: datetime, home: str = "h001",
            seq: int | None = None) -> Reading:
    return Reading(home, device, kind, float(value), ts, seq)


def every(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out = []
    t = start
    while t < end:
        out.append(t)
        t += step
    return out
