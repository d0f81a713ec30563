"""Readings forwarded to a real server of the InfluxDB write API, and the spool that holds
them while the database is away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from detect.rules import load_config
from ingest.influx import InfluxForwarder, InfluxTarget
from ingest.store import ReadingStore
from telecare.db import connect
from telecare.reading import Reading
from tests.builders import write_home
from tests.conftest import VictoriaMetrics


def readings(home: str, n: int) -> list[Reading]:
    t0 = datetime(2026, 1, 5, 8, tzinfo=UTC)
    return [Reading(home, "lounge-temp", "temperature", 18 + (i % 40) / 10,
                    t0 + timedelta(seconds=30 * i), i, 90.0) for i in range(n)]


def samples(server: VictoriaMetrics, home: str) -> dict[str, list[tuple[int, float]]]:
    """Series name -> (ms timestamp, value) pairs; and "room=..." -> [] for each room label."""
    out: dict[str, list[tuple[int, float]]] = {}
    for series in server.export(f'{{__name__=~"temperature_.*",home="{home}"}}'):
        out[series["metric"]["__name__"]] = list(zip(series["timestamps"], series["values"],
                                                     strict=True))
        out[f"room={series['metric']['room']}"] = []
    return out


def wait_for(predicate, timeout: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_readings_reach_the_database_with_tags_escaped_by_the_client(
        tmp_path: Path, victoria: VictoriaMetrics, unique_home: str) -> None:
    root = write_home(tmp_path / "config", unique_home)
    # A room name with the characters line protocol must escape.
    text = (root / "homes" / f"{unique_home}.yaml").read_text().replace(
        "room: lounge", "room: 'front room, east=1 side'")
    (root / "homes" / f"{unique_home}.yaml").write_text(text)
    config = load_config(root)
    conn = connect(tmp_path / "data")
    rs = readings(unique_home, 500)
    ReadingStore(conn).add(rs, datetime.now(UTC))
    fwd = InfluxForwarder(conn, config, InfluxTarget(victoria.url, "unused", "-", "telecare"))
    assert fwd.step() == 500 and fwd.step() == 0
    assert wait_for(lambda: len(samples(victoria, unique_home).get("temperature_value", []))
                    == 500)
    got = samples(victoria, unique_home)
    assert [k for k in got if k.startswith("room=")] == ["room=front room, east=1 side"]
    expected = sorted((int(r.ts.timestamp() * 1000), r.value) for r in rs)
    assert sorted(got["temperature_value"]) == expected
    assert len(got["temperature_battery"]) == 500


def test_while_the_database_is_down_readings_wait_and_the_spool_bound_stops_intake(
        tmp_path: Path, unique_home: str) -> None:
    config = load_config(write_home(tmp_path / "config", unique_home))
    conn = connect(tmp_path / "data")
    store = ReadingStore(conn)
    # Nothing listens on this port: the database is down.
    down = InfluxTarget("http://127.0.0.1:9", "unused", "-", "telecare")
    fwd = InfluxForwarder(conn, config, down, spool_limit=300, timeout_ms=500)
    store.add(readings(unique_home, 299), datetime.now(UTC))
    assert fwd.step() == -1 and not fwd.healthy
    assert fwd.accepting()  # 299 waiting, under the bound
    store.add(readings(unique_home, 301)[299:], datetime.now(UTC))
    assert not fwd.accepting()  # 301 waiting: intake stops, the broker holds the rest
    assert store.count() == 301  # nothing was dropped
