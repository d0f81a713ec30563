"""The simulator is repeatable: same seed, same bytes; another seed, another stream."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import date
from pathlib import Path

from detect.backtest import read_readings
from detect.rules import load_config
from simulators.bundle import simulate_bundle
from simulators.summary import summarise


def bundle(path: Path, seed: int) -> Path:
    simulate_bundle(path, homes=3, days=4, seed=seed, start=date(2026, 1, 5),
                    fixed=[("pendant", 1), ("cold_home", 2)], rate=0.0)
    return path


def test_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    a, b = bundle(tmp_path / "a", 3), bundle(tmp_path / "b", 3)
    for name in ("readings.jsonl", "labels.jsonl", "homes/h001.yaml"):
        assert (a / name).read_bytes() == (b / name).read_bytes()


def test_a_different_seed_gives_a_different_stream_with_the_same_statistics(
        tmp_path: Path) -> None:
    summaries = []
    streams = []
    for seed in (3, 4):
        path = tmp_path / str(seed)
        simulate_bundle(path, homes=8, days=10, seed=seed, start=date(2026, 1, 5), fixed=[],
                        rate=0.0, layout="full")
        streams.append((path / "readings.jsonl").read_bytes())
        readings = read_readings((path / "readings.jsonl").open(), Counter())
        summaries.append(summarise(readings, load_config(path), 10))
    assert streams[0] != streams[1]
    a, b = summaries
    for kind in ("motion", "flush", "power", "contact", "bed", "temperature", "heartbeat"):
        assert abs(a.per_home_day[kind] - b.per_home_day[kind]) / a.per_home_day[kind] < 0.12
    assert abs(statistics.median(a.wake_h) - statistics.median(b.wake_h)) < 0.75
    assert abs(statistics.median(a.bed_h) - statistics.median(b.bed_h)) < 0.75
    assert abs(statistics.fmean(a.night_trips) - statistics.fmean(b.night_trips)) < 0.4
    assert len(a.wake_h) >= 8 * 9  # a night found for nearly every home-day


def test_the_bundle_is_a_config_directory_and_labels_name_each_injection(tmp_path: Path) -> None:
    path = bundle(tmp_path / "a", 5)
    config = load_config(path)
    assert sorted(config.homes) == ["h001", "h002", "h003"]
    labels = [json.loads(x) for x in (path / "labels.jsonl").read_text().splitlines()]
    assert sorted({(x["home"], x["kind"]) for x in labels}) == sorted(
        (h, k) for h in ["h001", "h002", "h003"] for k in ["pendant", "cold_home"])
    assert all(x["start"] < x["end"] for x in labels)


def test_a_simulated_day_has_a_plausible_routine(tmp_path: Path) -> None:
    path = bundle(tmp_path / "a", 6)
    readings = [json.loads(x) for x in (path / "readings.jsonl").read_text().splitlines()]
    home_days = 3 * 4
    flushes = sum(r["kind"] == "flush" for r in readings) / home_days
    kettle_on = sum(r["device"] == "kettle-plug" and r["value"] > 1000 for r in readings)
    assert 4 <= flushes <= 12  # toilet visits a day, night trips included
    assert 3 <= kettle_on / home_days <= 6
