"""A call for help never waits behind a backlog: `telecare run` on a real Mosquitto, with a
backlog of routine readings queued in its persistent session before it starts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.conftest import Mosquitto, WebhookReceiver, _free_port
from tests.e2e.test_run_end_to_end import Service, stop
from tests.e2e.test_silent_stops import healthz, wait_until

BACKLOG = 100_000
HOMES = 100


def write_homes(config: Path, prefix: str, webhook: str) -> list[str]:
    (config / "homes").mkdir(parents=True)
    names = [f"{prefix}{i:03d}" for i in range(HOMES)]
    for home in names:
        data = {"home": home, "timezone": "Europe/London",
                "devices": [{"id": "pendant", "kind": "button", "room": "worn",
                             "role": "pendant"},
                            {"id": "hall-pir", "kind": "motion", "room": "hall"},
                            {"id": "lounge-temp", "kind": "temperature", "room": "lounge"}],
                "contacts": [{"name": "carer", "webhook": webhook}]}
        (config / "homes" / f"{home}.yaml").write_text(yaml.safe_dump(data))
    return names


def publish_all(port: int, messages: list[tuple[str, str]]) -> None:
    """Publish at QoS 1 and return once the broker has acknowledged every message."""
    acked = [0]
    lock = threading.Condition()

    def on_publish(*_: object) -> None:
        with lock:
            acked[0] += 1
            lock.notify_all()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bulk-{time.time_ns()}")
    client.max_inflight_messages_set(1000)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    for start in range(0, len(messages), 1000):  # packet ids wrap at 65,535: in chunks
        chunk = messages[start:start + 1000]
        for topic, payload in chunk:
            client.publish(topic, payload, qos=1)
        with lock:
            upto = start + len(chunk)
            assert lock.wait_for(lambda n=upto: acked[0] >= n, 60), \
                f"the broker acknowledged {acked[0]} of {upto}"
    client.loop_stop()
    client.disconnect()


def stored(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])


@pytest.mark.parametrize("mode", [(), ("--single-process",)], ids=["processes", "threads"])
def test_a_press_behind_a_backlog_of_100000_readings_is_alerted_before_half_is_stored(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver,
        unique_home: str, mode: tuple[str, ...]) -> None:
    config, data = tmp_path / "config", tmp_path / "data"
    homes = write_homes(config, unique_home[:40] + "-", webhook.url)
    args = ("--config", str(config), "--data", str(data), "--mqtt", mosquitto.url, *mode)

    # A first start makes the service's persistent sessions; then it is away.
    first = Service(*args)
    assert first.wait_log("subscribed to telecare/v1/+/+/button"), "".join(first.lines)
    assert first.wait_log("subscribed to telecare/v1/#"), "".join(first.lines)
    stop(first)

    # An outage's worth of routine readings queue up for it, then one press.
    start = datetime.now(UTC) - timedelta(days=2)
    step = timedelta(days=2) / (BACKLOG // HOMES)
    routine = []
    for i in range(BACKLOG):
        home = homes[i % HOMES]
        ts = start + step * (i // HOMES)
        device, kind, value = (("hall-pir", "motion", 1) if i % 3 else
                               ("lounge-temp", "temperature", 20.5))
        routine.append((f"telecare/v1/{home}/{device}/{kind}",
                        json.dumps({"ts": ts.isoformat(), "value": value})))
    publish_all(mosquitto.port, routine)
    pressed_home = homes[37]
    press_ts = datetime.now(UTC)
    publish_all(mosquitto.port, [(f"telecare/v1/{pressed_home}/pendant/button",
                                  json.dumps({"ts": press_ts.isoformat(), "value": 1,
                                              "seq": 1}))])

    port = _free_port()
    service = Service(*args, "--metrics-port", str(port))
    try:
        def pendant_alerts() -> list[dict[str, object]]:
            return [a for a in webhook.alerts()
                    if a["rule"] == "pendant" and a["home"] == pressed_home]

        assert webhook.wait_for(lambda _: bool(pendant_alerts()), timeout=60), \
            "".join(service.lines)
        stored_when_alerted = stored(data / "telecare.db")
        print(f"stored when the press was alerted: {stored_when_alerted} of {BACKLOG}")
        assert stored_when_alerted < BACKLOG / 2, stored_when_alerted
        assert any("on the priority lane" in line for line in service.lines)

        # The catch-up is visible: each stage's backlog, in readings and event time.
        report = wait_until(lambda: (r := healthz(port)[1]) and "event_s" in
                            r["backlog"].get("ingest", {}) and r, 10) or healthz(port)[1]
        assert set(report["backlog"]) == {"ingest", "detect", "alerts"}, report
        assert report["backlog"]["ingest"]["event_s"] > 3600  # two days' readings to go
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert 'telecare_backlog_readings{stage="detect"}' in metrics
        assert 'telecare_backlog_event_seconds{stage="ingest"}' in metrics
    finally:
        # Stopped in the middle of the backlog: quickly, and losing nothing.
        began = time.monotonic()
        stop(service)
        stop_s = time.monotonic() - began
    assert stop_s < 10, stop_s
    assert stored(data / "telecare.db") < BACKLOG + 1

    service = Service(*args)
    try:
        # The routine lane catches up: every reading stored (the press too, in its place),
        # detection through all of them, and its own pendant alert is the same alert.
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and stored(data / "telecare.db") < BACKLOG + 1:
            time.sleep(0.5)
        assert stored(data / "telecare.db") == BACKLOG + 1
        with sqlite3.connect(data / "telecare.db") as conn:
            while time.monotonic() < deadline:
                cursor = conn.execute("SELECT value FROM detect_meta WHERE key = 'cursor'"
                                      ).fetchone()
                if cursor and int(cursor[0]) >= BACKLOG + 1:
                    break
                time.sleep(0.5)
            events = conn.execute("SELECT alert_id FROM alert_events WHERE alert_id LIKE ?"
                                  " AND status = 'firing'",
                                  (f"{pressed_home}:pendant:%",)).fetchall()
        assert cursor and int(cursor[0]) >= BACKLOG + 1, "detection did not catch up"
        assert len(events) == 1  # so no second notice was ever due
        assert len(pendant_alerts()) == 1
        assert pendant_alerts()[0]["id"] == events[0][0]
    finally:
        stop(service)


def test_the_stage_processes_of_a_killed_telecare_run_stop_by_themselves(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver,
        unique_home: str) -> None:
    """Left running, they would hold the service's broker client id against its restart."""
    config = tmp_path / "config"
    write_homes(config, unique_home[:40] + "-", webhook.url)
    service = Service("--config", str(config), "--data", str(tmp_path / "data"), "--mqtt",
                      mosquitto.url)
    assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
    children = subprocess.run(["pgrep", "-P", str(service.proc.pid), "-f", "spawn_main"],
                              capture_output=True, text=True).stdout.split()
    assert len(children) == 3  # ingest, routine detection, the urgent judge
    service.proc.kill()
    service.proc.wait()

    def alive(pid: str) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
        except FileNotFoundError:
            return False

    assert wait_until(lambda: not any(alive(p) for p in children), 20), children
