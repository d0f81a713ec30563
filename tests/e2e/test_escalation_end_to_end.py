"""End to end, in real time: a pendant press through `telecare run` on a real Mosquitto goes
down the home's escalation chain to real webhooks at the plan's times; SIGKILL and restart
mid-chain resume it with no duplicate and no step missed; an acknowledgement with
`telecare ack` stops it; the resident's own "I'm OK" button stands a non-critical alert down.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml

from tests.conftest import Mosquitto, WebhookReceiver
from tests.e2e.test_run_end_to_end import TELECARE, Service

STEP_S = 4.0


def write_home(config: Path, home: str, people: list[tuple[str, WebhookReceiver]]) -> None:
    (config / "homes").mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "home": home, "timezone": "Europe/London",
        "devices": [{"id": "pendant", "kind": "button", "room": "worn", "role": "pendant"},
                    {"id": "ok", "kind": "button", "room": "hall", "role": "ok_button"},
                    {"id": "hall-pir", "kind": "motion", "room": "hall"},
                    {"id": "lounge-temp", "kind": "temperature", "room": "lounge"},
                    {"id": "hub", "kind": "heartbeat", "room": "hall"}],
        "contacts": [{"name": name, "role": "family", "webhook": r.url} for name, r in people],
        "escalation": {"ack_within": f"{STEP_S:g}s", "repeat": ["10m"]},
    }
    (config / "homes" / f"{home}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def publish(url: int, home: str, device: str, kind: str, value: float, ts: datetime,
            seq: int) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", url)
    client.loop_start()
    info = client.publish(f"telecare/v1/{home}/{device}/{kind}",
                          json.dumps({"ts": ts.isoformat(), "value": value, "seq": seq}), qos=1)
    info.wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def first_post(r: WebhookReceiver, timeout: float = 30.0) -> float:
    assert r.wait_for(lambda posts: len(posts) >= 1, timeout), "nothing arrived"
    return r.posts[0][0]


def keys(r: WebhookReceiver) -> list[str]:
    return [h["Idempotency-Key"] for _, _, h in r.posts]


def test_the_chain_survives_sigkill_and_an_acknowledgement_stops_it(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    config, data = tmp_path / "config", tmp_path / "data"
    a, b, c = WebhookReceiver(), WebhookReceiver(), WebhookReceiver()
    x, y = WebhookReceiver(), WebhookReceiver()
    write_home(config, "kill", [("A", a), ("B", b), ("C", c)])
    write_home(config, "acked", [("X", x), ("Y", y)])
    args = ("--config", str(config), "--data", str(data), "--mqtt", mosquitto.url)

    service = Service(*args)
    assert service.wait_log("running"), "".join(service.lines)
    now = datetime.now(UTC)
    publish(mosquitto.port, "kill", "pendant", "button", 1, now, 1)
    publish(mosquitto.port, "acked", "pendant", "button", 1, now, 1)
    told_a = first_post(a)
    first_post(x)
    # X takes it on at once: Y must never be asked.
    acked = subprocess.run([TELECARE, "ack", x.alerts()[0]["id"], "--by", "X",
                            "--config", str(config), "--data", str(data)],
                           capture_output=True, text=True)
    assert acked.returncode == 0, acked.stderr

    # Killed before B's turn: the restarted service must still ask B at A + 4 s.
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait(10)
    service = Service(*args)
    told_b = first_post(b)
    assert told_b - told_a >= STEP_S - 0.5
    # Killed again right after B: C is asked once, at B + 4 s.
    service.proc.send_signal(signal.SIGKILL)
    service.proc.wait(10)
    service = Service(*args)
    told_c = first_post(c)
    assert told_c - told_b >= STEP_S - 0.5
    time.sleep(2 * STEP_S)
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(30) == 0

    for r in (a, b, c):
        assert [p["id"] for p in r.alerts()] == [r.alerts()[0]["id"]], keys(r)
        assert len(keys(r)) == len(set(keys(r)))
    assert y.posts == []
    assert [h["X-Telecare-Notice"] for _, _, h in x.posts] == ["alert"]


def test_the_residents_ok_button_stands_down_a_cold_home_alert(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    config, data = tmp_path / "config", tmp_path / "data"
    carer = WebhookReceiver()
    write_home(config, "okhome", [("carer", carer)])
    service = Service("--config", str(config), "--data", str(data), "--mqtt", mosquitto.url)
    assert service.wait_log("running"), "".join(service.lines)
    # The lounge at 15 C for over an hour (event time): cold_home, medium.
    day = datetime(2026, 1, 5, 10, tzinfo=UTC)
    for i in range(16):
        publish(mosquitto.port, "okhome", "lounge-temp", "temperature", 15.0,
                day.replace(minute=0) + timedelta(minutes=5 * i), i)

    def cold(posts: list[dict[str, Any]]) -> list[str]:
        return [x["status"] for x in posts if x["rule"] == "cold_home"]

    assert carer.wait_for(lambda p: cold(p) == ["firing"])
    publish(mosquitto.port, "okhome", "ok", "button", 1, day + timedelta(minutes=80), 1)
    assert carer.wait_for(lambda p: cold(p) == ["firing", "resolved"])
    resolved = [x for x in carer.alerts() if x["rule"] == "cold_home"][1]
    assert resolved["resolution"] == "Closed by the resident: they answered \"I'm OK\" from " \
                                     "their own device"
    assert all(x["rule"] != "pendant" for x in carer.alerts())  # "I'm OK" is not a call
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(30) == 0
