"""Each scenario kind is labelled and leaves its mark on the readings where a person (and a
detector) could see it."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from detect.rules import default_rules
from simulators.home import SimulatedHome, simulate_home, vitals_layout
from simulators.network import Network
from simulators.plot import plot_home
from simulators.scenarios import SCENARIOS, SPAN_DAYS
from telecare.config import HomeConfig
from telecare.reading import Reading

START = date(2026, 1, 5)
DAY = 5  # the scenario starts after five ordinary days
LONDON = ZoneInfo("Europe/London")


def sim(kind: str, seed: int = 1) -> SimulatedHome:
    return simulate_home("h001", seed, START, DAY + SPAN_DAYS[kind] + 2, [(kind, DAY)],
                         devices=vitals_layout(), network=Network.clean())


def within(readings: list[Reading], start: datetime, end: datetime, **match: Any
           ) -> list[Reading]:
    return [r for r in readings if start <= r.ts < end
            and all(getattr(r, k) == v for k, v in match.items())]


def resident_events(readings: list[Reading]) -> list[Reading]:
    return [r for r in readings if r.kind in ("motion", "flush", "button")
            or (r.kind in ("contact", "power") and r.value > 0)]


def night_flushes(home: SimulatedHome, day: int) -> int:
    night_from = datetime(2026, 1, 5, 23, 30, tzinfo=LONDON) + timedelta(days=day)
    return len(within(home.readings, night_from, night_from + timedelta(hours=6),
                      kind="flush"))


@pytest.mark.parametrize("kind", SCENARIOS)
def test_every_scenario_kind_is_labelled_and_visible_in_the_readings(kind: str) -> None:
    home = sim(kind)
    (label,) = [lab for lab in home.labels if lab.kind == kind]
    assert label.start < label.end
    r, s, e = home.readings, label.start, label.end
    if kind == "pendant":
        assert within(r, s, s + timedelta(minutes=2), kind="button", value=1.0)
    elif kind in ("long_lie", "hospital"):
        inside = [x for x in resident_events(within(r, s + timedelta(minutes=1), e))
                  if x.device != "front-door"]
        assert inside == []
    elif kind == "not_up":
        assert within(r, s, e, kind="bed", value=1.0)  # check-ins: still in bed
        assert not within(r, s, e, kind="bed", value=0.0)
    elif kind == "night_wandering":
        assert within(r, s - timedelta(seconds=1), s + timedelta(minutes=1), device="front-door",
                      value=1.0)
        assert not within(r, s + timedelta(minutes=2), e - timedelta(minutes=2), kind="motion")
    elif kind == "cold_home":
        assert min(x.value for x in within(r, s, e, kind="temperature")) < 15.0
    elif kind == "heatwave":
        assert max(x.value for x in within(r, s, e, kind="temperature")) > 27.0
    elif kind == "uti":
        before = statistics.fmean(night_flushes(home, d) for d in range(DAY))
        during = statistics.fmean(night_flushes(home, DAY + d) for d in range(2, 5))
        assert during >= before + 2
    elif kind == "skipped_meals":
        def kettle(a: datetime, b: datetime) -> int:
            return len([x for x in within(r, a, b, device="kettle-plug") if x.value > 1000])
        assert kettle(s, e) < 0.6 * kettle(s - (e - s), s)
    elif kind == "decline":
        first_week = len(within(r, s, s + timedelta(days=7), kind="motion"))
        last_week = len(within(r, e - timedelta(days=7), e, kind="motion"))
        assert last_week < 0.8 * first_week
    elif kind == "vitals":
        early = within(r, s, s + timedelta(hours=12), kind="heart_rate")
        late = within(r, e - timedelta(hours=12), e, kind="heart_rate")
        assert statistics.fmean(x.value for x in late) > statistics.fmean(
            x.value for x in early) + 25
        assert min(x.value for x in within(r, e - timedelta(hours=12), e, kind="spo2")) <= 93
    elif kind == "device_offline":
        device = label.detail["device"]
        assert not within(r, s, e, device=device)
        assert within(r, s - timedelta(hours=12), s, device=device)
    elif kind == "flat_battery":
        device = label.detail["device"]
        levels = [x.battery for x in within(r, s, e, device=device)]
        assert levels and min(b for b in levels if b is not None) <= 5
        after = within(r, e, e + timedelta(days=1), device=device)
        assert after and after[0].battery == 100
    elif kind == "visitor":
        per_hour_in = len(within(r, s, e, kind="motion")) / ((e - s).total_seconds() / 3600)
        per_hour_before = len(within(r, s - (e - s), s, kind="motion")) / (
            (e - s).total_seconds() / 3600)
        assert per_hour_in > 1.3 * per_hour_before


def test_the_timeline_picture_shades_every_labelled_scenario(tmp_path: Path) -> None:
    scenarios = [("pendant", 1), ("cold_home", 3), ("uti", 6), ("device_offline", 12)]
    home = simulate_home("h001", 5, START, 16, scenarios, devices=vitals_layout())
    config = HomeConfig.model_validate({**home.description(), "rules": default_rules()})
    labels = [lab.to_json_obj() for lab in home.labels]
    out = tmp_path / "timeline.png"
    drawn = plot_home(home.readings, config, labels, out)
    assert drawn.days == 16
    assert sorted(drawn.labels) == sorted(k for k, _ in scenarios)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
