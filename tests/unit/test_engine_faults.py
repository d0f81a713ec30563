"""The engine under faults: a clock a year ahead in one home, and a rule that raises."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from detect.engine import RULE_FAILED, Detector
from detect.rules.room_temperature import RoomTemperature
from telecare.alert import Alert
from telecare.reading import Reading
from tests.builders import every, only, reading, utc, write_home

M = timedelta(minutes=1)
ACUTE = only("pendant", "fall", "cold_home", "hot_home", "inactivity", "night_door", "news2")


def three_homes(tmp_path: Path) -> Path:
    root = tmp_path / "config"
    for home in ("h001", "h002", "h003"):
        write_home(root, home, rules=ACUTE)
    return root


def ordinary_day(home: str) -> list[Reading]:
    """Seen at 10:00, then only heartbeats and a cooling lounge: a long lie and a cold home."""
    out = [reading("kitchen-pir", "motion", 1, utc("2026-01-05 10:00"), home)]
    out += [reading("hub", "heartbeat", 1, t, home)
            for t in every(utc("2026-01-05 10:01"), utc("2026-01-05 16:00"), 5 * M)]
    out += [reading("lounge-temp", "temperature", 14.0, t, home)
            for t in every(utc("2026-01-05 11:00"), utc("2026-01-05 14:00"), 10 * M)]
    return out


def run(detector: Detector, readings: list[Reading]) -> list[Alert]:
    out: list[Alert] = []
    for r in sorted(readings, key=lambda r: r.ts):
        out.extend(detector.process(r))
    return out


def test_a_reading_a_year_ahead_in_one_home_moves_no_other_homes_time(tmp_path: Path) -> None:
    from detect.rules import load_config

    config = load_config(three_homes(tmp_path))
    stream = [r for home in ("h001", "h002", "h003") for r in ordinary_day(home)]
    control = run(Detector(config), stream)
    assert {(a.home, a.rule) for a in control} >= {("h001", "inactivity"), ("h002", "cold_home")}

    for rogue_home in ("h003", "nofile"):  # a home with a file, and one with none
        rogue = reading("hub", "heartbeat", 1, utc("2027-01-05 10:30"), rogue_home)
        # In the stream's order the rogue reading comes early (the device's clock is wrong,
        # not the order it was sent in): put it first after 10:30 by giving it pride of place.
        ordered = sorted(stream, key=lambda r: r.ts)
        at = next(i for i, r in enumerate(ordered) if r.ts >= utc("2026-01-05 10:30"))
        detector = Detector(load_config(three_homes(tmp_path)))
        out: list[Alert] = []
        for r in ordered[:at] + [rogue] + ordered[at:]:
            out.extend(detector.process(r))
        others = [a.to_json() for a in out if a.home in ("h001", "h002")]
        assert others == [a.to_json() for a in control if a.home in ("h001", "h002")], rogue_home


class Broken(Exception):
    pass


def test_a_rule_that_raises_is_reported_once_and_the_others_go_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detect.rules import load_config

    config = load_config(three_homes(tmp_path))

    def explode(self: RoomTemperature, r: Reading, act: object) -> list[Alert]:
        if r.home == "h002" and self.name == "cold_home":
            raise Broken("boom")
        return []

    monkeypatch.setattr(RoomTemperature, "observe", explode)
    detector = Detector(config)
    stream = [r for home in ("h001", "h002") for r in ordinary_day(home)]
    stream.append(reading("pendant", "button", 1, utc("2026-01-05 12:00"), "h002"))
    out = run(detector, stream)
    failed = [a for a in out if a.rule == RULE_FAILED]
    assert [(a.home, a.severity, a.evidence["failed_rule"], a.evidence["audience"])
            for a in failed] == [("h002", "low", "cold_home", "technical")]
    assert "cold home check stopped working" in failed[0].message
    assert {(a.home, a.rule) for a in out} >= {("h002", "pendant"), ("h002", "inactivity"),
                                               ("h001", "inactivity")}
    assert detector.rule_errors["cold_home"] > 1  # every failure counted, one alert
    # Reported once across a restart too.
    saved = {h: detector.state_of(h) for h in detector.homes}
    again = Detector(config)
    again.load(detector.watermark_text(), saved)
    later = run(again, [reading("lounge-temp", "temperature", 14.0, utc("2026-01-05 17:00"),
                                "h002")])
    assert [a for a in later if a.rule == RULE_FAILED] == []


def test_a_deadline_handler_that_raises_does_not_spin(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from detect.rules import load_config
    from detect.rules.inactivity import Inactivity

    def explode(self: Inactivity, now: object) -> list[Alert]:
        raise Broken("boom")

    monkeypatch.setattr(Inactivity, "on_deadline", explode)
    detector = Detector(load_config(three_homes(tmp_path)))
    out = run(detector, ordinary_day("h001"))
    assert [a.rule for a in out if a.rule == RULE_FAILED] == [RULE_FAILED]
    assert detector.rule_errors["inactivity"] == 1
