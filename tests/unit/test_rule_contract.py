"""The contract every rule in the table keeps, checked over the table itself: a rule added
with its one line is held to it with no test of its own written first.

A simulated month of two homes with vital signs, a crisis of every kind the simulator makes
and a worn fall detector's alarm is run straight through, and again with every home's
detection state saved as JSON and restored into a new detector twice on the way (as the
live service checkpoints and restarts). Each rule must have raised something, and the same
alerts, with the same ids, times and outcomes, both ways.

(That a rule does not learn from what it flagged is checked rule by rule where it learns:
the baselines' flagged days, inactivity's flagged spells, night door's flagged outings.)
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest
import yaml

from detect.backtest import read_readings
from detect.engine import Detector
from detect.rules import RULES, load_config
from telecare.alert import Alert
from telecare.reading import Reading
from tests.unit.test_backtest import simulate

SCENARIOS = ("decline@8", "device_offline@12", "flat_battery@13", "uti@14", "pendant@15",
             "cold_home@17", "heatwave@18", "long_lie@19", "night_wandering@20", "vitals@21",
             "not_up@22", "skipped_meals@24")
# What each rule raises, where that is not its own name.
RAISES = {"device_health": {"device_offline", "low_battery"}}
Outcome = list[tuple[str, str, str, datetime | None]]


def _run(detector: Detector, readings: list[Reading], out: dict[str, Alert]) -> None:
    for reading in readings:
        for alert in detector.process(reading):
            out[alert.id] = alert


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Outcome, Outcome]:
    root = tmp_path_factory.mktemp("contract")
    bundle = simulate(root / "b", "--homes", "2", "--days", "30", "--seed", "77",
                      "--layout", "vitals", *[a for s in SCENARIOS for a in ("--scenario", s)])
    # The simulator has no worn fall detector: give the first home one, and one fall.
    home_file = bundle / "homes" / "h001.yaml"
    home = yaml.safe_load(home_file.read_text())
    home["devices"].append({"id": "fall-watch", "kind": "fall", "room": "worn"})
    home_file.write_text(yaml.safe_dump(home, sort_keys=False))
    config = load_config(bundle)
    with open(bundle / "readings.jsonl", encoding="utf-8") as f:
        readings = read_readings(f, Counter())
    readings.append(Reading("h001", "fall-watch", "fall", 1.0,
                            datetime(2026, 1, 28, 10, 0, tzinfo=UTC)))
    readings.sort(key=lambda r: r.ts)

    straight: dict[str, Alert] = {}
    _run(Detector(config), readings, straight)

    restored: dict[str, Alert] = {}
    detector = Detector(config)
    cuts = [0, len(readings) * 2 // 5, len(readings) * 3 // 4, len(readings)]
    for start, end in zip(cuts, cuts[1:], strict=False):
        if start:  # checkpoint as the live service does, and start a new detector from it
            saved = json.dumps({h: detector.state_of(h) for h in detector.homes})
            watermark = detector.watermark_text()
            detector = Detector(config)
            detector.load(watermark, json.loads(saved))
        _run(detector, readings[start:end], restored)

    def outcome(alerts: dict[str, Alert]) -> Outcome:
        return sorted((a.rule, a.id, a.status, a.resolved_at) for a in alerts.values())
    return outcome(straight), outcome(restored)


@pytest.mark.parametrize("rule", [spec.name for spec in RULES])
def test_a_rule_raises_the_same_alerts_when_its_state_is_saved_and_restored_on_the_way(
        rule: str, runs: tuple[Outcome, Outcome]) -> None:
    straight, restored = runs
    names = RAISES.get(rule, {rule})
    mine = [a for a in straight if a[0] in names]
    assert mine, f"the contract bundle never exercises {rule}: give it a scenario"
    assert [a for a in restored if a[0] in names] == mine


def test_every_rule_in_the_table_has_settings_with_working_defaults() -> None:
    for spec in RULES:
        settings = spec.settings()  # every field has its default
        assert settings.enabled is True, spec.name
