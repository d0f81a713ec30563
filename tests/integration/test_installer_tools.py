"""An installer's tools for a new home: `telecare devices` says what each device is read
from; `telecare listen` shows, on a real Mosquitto, what a live bridge's messages would become
(readings, nothing and why, or bad input and why), storing nothing."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from tests.conftest import Mosquitto
from tests.e2e.test_run_end_to_end import TELECARE


def _home(root: Path, home: str) -> Path:
    (root / "homes").mkdir(parents=True)
    (root / "homes" / f"{home}.yaml").write_text(yaml.safe_dump({
        "home": home, "timezone": "Europe/London",
        "devices": [{"id": "front-door", "kind": "contact", "role": "front_door"},
                    {"id": "pendant", "kind": "button", "role": "pendant"}],
        "sources": [{"type": "zigbee2mqtt", "base": f"zigbee2mqtt/{home}", "devices": [
            {"name": "Front door", "device": "front-door"},
            {"name": "Button", "device": "pendant", "actions": ["hold"]}]}]}))
    return root


def test_devices_lists_each_devices_topic_field_and_traps(tmp_path: Path) -> None:
    config = _home(tmp_path, "inst1")
    out = subprocess.run([TELECARE, "devices", "--config", str(config), "--home", "inst1"],
                         check=True, capture_output=True, text=True).stdout
    assert "zigbee2mqtt/inst1/Front door field contact (inverted: true is closed)" in out
    assert "zigbee2mqtt/inst1/Button field action (actions hold press it)" in out
    rows = json.loads(subprocess.run(
        [TELECARE, "devices", "--config", str(config), "--home", "inst1", "--json"],
        check=True, capture_output=True, text=True).stdout)
    assert [r["device"] for r in rows] == ["front-door", "pendant"]
    wrong = subprocess.run([TELECARE, "devices", "--config", str(config), "--home", "inst2"],
                           capture_output=True, text=True)
    assert wrong.returncode != 0 and "no home 'inst2'" in wrong.stderr


def test_listen_prints_what_each_live_message_would_become(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    config = _home(tmp_path, "inst3")
    proc = subprocess.Popen([TELECARE, "listen", "--config", str(config), "--home", "inst3",
                             "--mqtt", mosquitto.url, "--count", "4", "--seconds", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    listening = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("listening to"):
                listening.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert listening.wait(15), lines
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect("127.0.0.1", int(mosquitto.url.rsplit(":", 1)[1]))
    pub.loop_start()
    for topic, payload in (
            ("zigbee2mqtt/inst3/Front door",
             {"contact": False, "battery": 90, "last_seen": "2026-11-28T07:15:00Z"}),
            ("zigbee2mqtt/inst3/Button", {"action": "single", "battery": 90}),
            ("zigbee2mqtt/inst3/Front door", {"contact": "ajar"}),
            ("zigbee2mqtt/inst3/bridge/state", {"state": "online"})):
        pub.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)
    pub.loop_stop()
    assert proc.wait(30) == 0
    reader.join(10)  # it has read all once the pipe is closed
    text = "".join(lines)
    assert '-> {"ts": "2026-11-28T07:15:00Z", "home": "inst3", "device": "front-door", ' \
        '"kind": "contact", "value": 1, "battery": 90}' in text
    assert "no reading (no_reading)" in text  # the action nobody mapped
    assert "BAD INPUT bad_value" in text and "'ajar'" in text
    assert "no reading (bridge)" in text
