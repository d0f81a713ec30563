"""A real recorded home re-published as real bridges and hubs publish (Zigbee2MQTT, a Home
Assistant statestream, a vendor's JSON hub), through a real Mosquitto into `telecare run`,
gives exactly the readings and alerts that the home's native form gives."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Mosquitto, stored_rows
from tests.e2e.test_run_end_to_end import ORDONEZ, TELECARE, Service, stop

Run = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def _caught_up(data: Path, expected: int) -> bool:
    """Every reading stored, and detection's saved cursor past the last of them."""
    stored = stored_rows(data, "SELECT count(*), coalesce(max(rowid), 0) FROM readings")
    if not stored or stored[0][0] < expected:
        return False
    cursor = stored_rows(data, "SELECT value FROM detect_meta WHERE key = 'cursor'")
    return bool(cursor) and int(cursor[0][0]) >= stored[0][1]


def run_home(config: Path, stream: Path, data: Path, broker: Mosquitto, expected: int) -> Run:
    """The stream through `telecare run`: (stored readings, alerts) once detection is done."""
    service = Service("--config", str(config), "--data", str(data), "--mqtt", broker.url)
    try:
        assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
        subprocess.run([TELECARE, "replay", str(stream), "--mqtt", broker.url,
                        "--no-progress"], check=True, capture_output=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _caught_up(data, expected):
            time.sleep(0.2)
        assert _caught_up(data, expected), (stored_rows(data, "SELECT count(*) FROM readings"),
                                            "".join(service.lines[-20:]))
    finally:
        stop(service)
    readings = stored_rows(data, "SELECT home, device, kind, ts_us, value FROM readings ORDER BY 1,"
                            " 2, 3, 4, 5")
    alerts = stored_rows(data, "SELECT id, rule, severity, status, raised_at, body FROM alerts"
                          " ORDER BY id")
    return readings, [(*a[:5], json.loads(a[5])["message"]) for a in alerts]


def real_home_with_crises(root: Path) -> Path:
    """Both Ordonez homes as recorded (all their devices), and copies of them with crises
    injected (a long lie, nobody up, night wandering, skipped meals, a rise in night-time
    toileting), and a pendant press: a bundle whose native form raises alerts of many rules."""
    assert ORDONEZ.is_dir(), f"the real recordings are expected at {ORDONEZ}"
    recorded, injected = root / "recorded", root / "injected"
    subprocess.run([TELECARE, "import-ordonez", str(ORDONEZ), "--out", str(recorded)],
                   check=True, capture_output=True)
    subprocess.run([TELECARE, "inject", str(recorded), "--out", str(injected), "--seed", "5",
                    "--copies", "1"], check=True, capture_output=True)
    bundle = root / "bundle"
    (bundle / "homes").mkdir(parents=True)
    # The full views (all devices) of the homes whose alerts differ most: as recorded, a
    # long lie, night wandering, a rise in night-time toileting, skipped meals.
    chosen = ("ordonez-a", "ordonez-a-longlie0", "ordonez-a-nightwandering0",
              "ordonez-b-uti0", "ordonez-b-skippedmeals0")
    homes = [injected / "homes" / f"{h}.yaml" for h in chosen]
    for path in homes:
        home = yaml.safe_load(path.read_text())
        if home["home"] == "ordonez-a":
            home["devices"].append({"id": "pendant", "kind": "button", "role": "pendant"})
        (bundle / "homes" / path.name).write_text(yaml.safe_dump(home))
    keep = {p.stem for p in homes}
    lines = [line for line in (injected / "readings.jsonl").read_text().splitlines()
             if json.loads(line)["home"] in keep]
    press = {"ts": "2011-12-02T16:40:05Z", "home": "ordonez-a", "device": "pendant",
             "kind": "button", "value": 1}
    (bundle / "readings.jsonl").write_text("\n".join([*lines, json.dumps(press)]) + "\n")
    return bundle


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory, mosquitto: Mosquitto
           ) -> tuple[Path, Run]:
    root = tmp_path_factory.mktemp("native")
    bundle = real_home_with_crises(root)
    lines = (bundle / "readings.jsonl").read_text().splitlines()
    return bundle, run_home(bundle, bundle / "readings.jsonl", root / "data", mosquitto,
                            len(set(lines)))


@pytest.mark.parametrize("bridge", ["zigbee2mqtt", "home_assistant", "json"])
def test_a_real_home_through_a_bridge_gives_the_native_forms_alerts(
        bridge: str, native: tuple[Path, Run], tmp_path: Path, mosquitto: Mosquitto) -> None:
    bundle, (native_readings, native_alerts) = native
    rules = {a[1] for a in native_alerts}
    assert {"inactivity", "not_up", "night_door", "meals", "night_toilet", "pendant"} <= rules, \
        rules
    out = tmp_path / bridge
    subprocess.run([TELECARE, "bridge", str(bundle), "--as", bridge, "--out", str(out)],
                   check=True, capture_output=True)
    sent = [json.loads(line) for line in (out / "messages.jsonl").read_text().splitlines()]
    assert not any(m["topic"].startswith("telecare/") for m in sent)  # all through the bridge
    readings, alerts = run_home(out, out / "messages.jsonl", tmp_path / "data", mosquitto,
                                len(native_readings))
    assert readings == native_readings
    assert alerts == native_alerts
