"""The first rules, driven through the engine in event time."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from detect.engine import Detector
from telecare.alert import Alert
from telecare.reading import Reading
from tests.builders import config_for, every, only, reading, utc

# The acute rules alone: the routine rules and device health have their own tests.
ACUTE = only("pendant", "fall", "cold_home", "hot_home", "inactivity", "night_door", "news2")
H = timedelta(hours=1)
M = timedelta(minutes=1)


def run(detector: Detector, readings: list[Reading]) -> list[Alert]:
    out: list[Alert] = []
    for r in sorted(readings, key=lambda r: r.ts):
        out.extend(detector.process(r))
    return out


def heartbeats(start: str, end: str, home: str = "h001") -> list[Reading]:
    return [reading("hub", "heartbeat", 1, t, home) for t in every(utc(start), utc(end), 5 * M)]


# --- pendant and fall ---------------------------------------------------------------------


def test_a_pendant_press_raises_one_critical_alert_at_the_press(tmp_path: Path) -> None:
    t = utc("2026-01-05 14:00")
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)), [reading("pendant", "button", 1, t)])
    assert [(a.rule, a.severity, a.status, a.raised_at) for a in alerts] == \
        [("pendant", "critical", "firing", t)]
    assert "pendant alarm was pressed at Mon 5 Jan 14:00" in alerts[0].message


def test_presses_close_together_are_one_call_for_help_and_later_ones_a_new_one(
        tmp_path: Path) -> None:
    t = utc("2026-01-05 14:00")
    presses = [t, t + 20 * timedelta(seconds=1), t + 2 * M, t + 30 * M]
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)),
                 [reading("pendant", "button", 1, p) for p in presses])
    assert [a.raised_at for a in alerts] == [t, t + 30 * M]
    assert len({a.id for a in alerts}) == 2


def test_a_fall_detector_event_is_critical_and_a_zero_is_not_an_event(tmp_path: Path) -> None:
    t = utc("2026-01-05 14:00")
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)),
                 [reading("wrist", "fall", 0, t), reading("wrist", "fall", 1, t + M)])
    assert [(a.rule, a.severity) for a in alerts] == [("fall", "critical")]


# --- cold home ----------------------------------------------------------------------------


def temps(device: str, start: str, values: list[float], step: timedelta = 10 * M
          ) -> list[Reading]:
    t0 = utc(start)
    return [reading(device, "temperature", v, t0 + i * step) for i, v in enumerate(values)]


def test_a_room_below_16_for_an_hour_raises_cold_home_once_then_resolves(tmp_path: Path) -> None:
    values = [17.0] * 3 + [15.5] * 9 + [16.2] * 2 + [16.8] * 2
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)),
                 temps("bedroom-temp", "2026-01-05 01:00", values))
    fired = [a for a in alerts if a.status == "firing"]
    assert len(fired) == 1 and fired[0].rule == "cold_home"
    assert fired[0].raised_at == utc("2026-01-05 01:30") + H  # first cold reading + 1 h
    assert "bedroom has been below 16 °C since Mon 5 Jan 01:30" in fired[0].message
    resolved = [a for a in alerts if a.status == "resolved"]
    # 16.2 is inside the hysteresis band; 16.8 clears it.
    assert len(resolved) == 1 and resolved[0].resolved_at == utc("2026-01-05 03:20")
    assert resolved[0].id == fired[0].id


def test_a_cold_spell_shorter_than_the_hour_raises_nothing(tmp_path: Path) -> None:
    values = [17.0] + [15.0] * 5 + [17.0] * 10
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)),
                 temps("lounge-temp", "2026-01-05 01:00", values))
    assert alerts == []


def test_cold_home_fires_on_time_even_when_the_cold_room_goes_quiet(tmp_path: Path) -> None:
    # One cold reading, then only heartbeats: the timer still fires at +1 h in event time.
    readings = temps("lounge-temp", "2026-01-05 01:00", [15.0]) + \
        heartbeats("2026-01-05 01:01", "2026-01-05 03:00")
    alerts = [a for a in run(Detector(config_for(tmp_path, rules=ACUTE)), readings)
              if a.rule != "device_offline"]  # the silent thermometer is also offline
    assert [(a.rule, a.raised_at) for a in alerts] == [("cold_home", utc("2026-01-05 02:00"))]


# --- inactivity ---------------------------------------------------------------------------


def test_no_activity_for_the_threshold_in_waking_hours_raises_inactivity(tmp_path: Path) -> None:
    last = utc("2026-01-05 10:00")
    readings = [reading("kitchen-pir", "motion", 1, last)] + \
        heartbeats("2026-01-05 10:01", "2026-01-05 15:00")
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)), readings)
    assert [(a.rule, a.severity, a.raised_at) for a in alerts] == \
        [("inactivity", "high", last + 3 * H)]
    assert alerts[0].evidence["last_activity_at"] == "2026-01-05T10:00:00Z"


def test_activity_resolves_the_inactivity_alert(tmp_path: Path) -> None:
    readings = [reading("kitchen-pir", "motion", 1, utc("2026-01-05 10:00"))] + \
        heartbeats("2026-01-05 10:01", "2026-01-05 14:00") + \
        [reading("kitchen-pir", "motion", 1, utc("2026-01-05 14:02"))]
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)), readings)
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert alerts[1].resolved_at == utc("2026-01-05 14:02")


def test_a_repeated_unchanged_door_state_is_not_activity(tmp_path: Path) -> None:
    readings = [reading("kitchen-pir", "motion", 1, utc("2026-01-05 10:00")),
                reading("front-door", "contact", 0, utc("2026-01-05 10:05"))]
    readings += [reading("front-door", "contact", 0, t)
                 for t in every(utc("2026-01-05 11:00"), utc("2026-01-05 15:00"), H)]
    readings += heartbeats("2026-01-05 10:06", "2026-01-05 15:00")
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)), readings)
    assert [(a.rule, a.raised_at) for a in alerts] == [("inactivity", utc("2026-01-05 13:00"))]


def test_no_alert_while_the_resident_is_in_bed_or_out(tmp_path: Path) -> None:
    in_bed = [reading("bed-mat", "bed", 1, utc("2026-01-05 13:00"))] + \
        heartbeats("2026-01-05 13:01", "2026-01-05 20:00")
    assert run(Detector(config_for(tmp_path / "a", rules=ACUTE)), in_bed) == []
    gone_out = [reading("kitchen-pir", "motion", 1, utc("2026-01-05 09:58")),
                reading("front-door", "contact", 1, utc("2026-01-05 10:00")),
                reading("front-door", "contact", 0, utc("2026-01-05 10:01"))] + \
        heartbeats("2026-01-05 10:02", "2026-01-05 20:00")
    assert run(Detector(config_for(tmp_path / "b", rules=ACUTE)), gone_out) == []


def test_the_night_does_not_count_towards_inactivity(tmp_path: Path) -> None:
    # Last seen 21:30 (GMT = London), no bed mat in use: 30 min tonight + 2.5 h tomorrow.
    readings = [reading("kitchen-pir", "motion", 1, utc("2026-01-05 21:30"))] + \
        heartbeats("2026-01-05 21:31", "2026-01-06 12:00")
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)), readings)
    assert [a.raised_at for a in alerts] == [utc("2026-01-06 09:30")]


def test_a_kettle_switching_on_is_activity_but_staying_on_is_not(tmp_path: Path) -> None:
    readings = [reading("kettle-plug", "power", 0, utc("2026-01-05 09:00")),
                reading("kettle-plug", "power", 2000, utc("2026-01-05 10:00")),
                reading("kettle-plug", "power", 2000, utc("2026-01-05 11:00"))] + \
        heartbeats("2026-01-05 09:01", "2026-01-05 14:00")
    alerts = run(Detector(config_for(tmp_path, rules=ACUTE)), readings)
    assert [a.raised_at for a in alerts] == [utc("2026-01-05 13:00")]


def test_another_homes_readings_move_event_time_on_for_a_silent_home(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=ACUTE)
    readings = [reading("kitchen-pir", "motion", 1, utc("2026-01-05 10:00"), home="h001")] + \
        heartbeats("2026-01-05 10:01", "2026-01-05 14:00", home="h999")
    alerts = run(Detector(config), readings)
    assert [(a.home, a.rule) for a in alerts] == [("h001", "inactivity")]


# --- state across restarts ----------------------------------------------------------------


def test_restoring_saved_state_gives_the_same_alerts_as_running_through(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=ACUTE)
    readings = [reading("kitchen-pir", "motion", 1, utc("2026-01-05 10:00"))] + \
        temps("lounge-temp", "2026-01-05 10:05", [15.0] * 12) + \
        heartbeats("2026-01-05 10:06", "2026-01-05 14:00") + \
        [reading("kitchen-pir", "motion", 1, utc("2026-01-05 14:02"))]
    readings.sort(key=lambda r: r.ts)
    straight = run(Detector(config), readings)

    first = Detector(config)
    half = len(readings) // 2
    out = run(first, readings[:half])
    saved = {h: first.state_of(h) for h in first.homes}
    second = Detector(config)
    second.load(first.watermark_text(), saved)
    out += run(second, readings[half:])
    assert [a.to_json() for a in out] == [a.to_json() for a in straight]
    assert {a.rule for a in straight} == {"inactivity", "cold_home"}
