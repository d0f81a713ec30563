"""The ways alerting used to stop silently, each through `telecare run` on a real Mosquitto:
a full data disk, a year-ahead clock, a bad rules.yaml, a pendant whose counter restarted.
Each must end with every call for help alerted, nothing lost, and health telling the truth."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.conftest import Mosquitto, WebhookReceiver, _free_port
from tests.e2e.test_run_end_to_end import TELECARE, Service, stop


def home_file(config: Path, home: str, webhook: str) -> None:
    (config / "homes").mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "home": home, "timezone": "Europe/London",
        "devices": [{"id": "pendant", "kind": "button", "room": "worn", "role": "pendant"},
                    {"id": "hall-pir", "kind": "motion", "room": "hall"},
                    {"id": "hub", "kind": "heartbeat", "room": "hall"}],
        "contacts": [{"name": "Carer", "webhook": webhook}],
    }
    (config / "homes" / f"{home}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, home: str, device: str, kind: str, value: float, ts: datetime,
             seq: int | None = None) -> None:
        payload: dict[str, Any] = {"ts": ts.isoformat(), "value": value}
        if seq is not None:
            payload["seq"] = seq
        self.client.publish(f"telecare/v1/{home}/{device}/{kind}", json.dumps(payload),
                            qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    except urllib.error.URLError:
        return 0, {}  # not serving yet


def wait_until(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    return None


def presses(receiver: WebhookReceiver) -> list[str]:
    return sorted(a["raised_at"] for a in receiver.alerts() if a["rule"] == "pendant"
                  and a["status"] == "firing")


@contextlib.contextmanager
def small_disk(path: Path, size: str = "12m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a filler file until the disk refuses another byte."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        with contextlib.suppress(OSError):
            for _ in range(64):  # the last partial blocks
                f.write(b"\0" * 1024)
    return filler


def test_a_full_data_disk_holds_alerting_up_and_it_resumes_by_itself(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver, unique_home: str
) -> None:
    config = tmp_path / "config"
    home_file(config, unique_home, webhook.url)
    port = _free_port()
    now = datetime.now(UTC).replace(microsecond=0)
    with small_disk(tmp_path / "disk") as data:
        service = Service("--config", str(config), "--data", str(data), "--mqtt",
                          mosquitto.url, "--metrics-port", str(port))
        pub = Publisher(mosquitto.port)
        try:
            assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
            assert wait_until(lambda: healthz(port)[0] == 200, 20), healthz(port)
            pub.send(unique_home, "pendant", "button", 1, now - timedelta(hours=3), seq=1)
            assert webhook.wait_for(lambda a: len(a) == 1, 20)

            filler = fill(data)
            sent = 1
            # A burst bigger than any room left in SQLite's write-ahead log, then a press.
            for i in range(3000):
                pub.send(unique_home, "hall-pir", "motion", 1,
                         now - timedelta(hours=2, seconds=-i), seq=100 + i)
            pub.send(unique_home, "pendant", "button", 1, now - timedelta(hours=1), seq=2)
            sent += 3001
            code, report = wait_until(lambda: (r := healthz(port))[0] == 503 and r, 30) or \
                healthz(port)
            assert code == 503, report
            assert any("full" in why for why in report["why"]), report
            assert service.proc.poll() is None  # alive, waiting, not dead

            filler.unlink()  # space returns
            assert webhook.wait_for(lambda a: len(presses(webhook)) == 2, 60), \
                "".join(service.lines[-20:])
            pub.send(unique_home, "pendant", "button", 1, now, seq=3)
            sent += 1
            assert webhook.wait_for(lambda a: len(presses(webhook)) == 3, 20)
            assert wait_until(lambda: healthz(port)[0] == 200, 30), healthz(port)

            def count() -> int:
                with sqlite3.connect(data / "telecare.db") as conn:
                    return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])

            # The presses came on the priority lane; the routine lane catches up too.
            assert wait_until(lambda: count() == sent, 60), count()
        finally:
            pub.close()
            stop(service)
        with sqlite3.connect(data / "telecare.db") as conn:
            assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == sent
        assert os.path.exists(data / "telecare.db")


def test_a_bad_rules_yaml_stops_telecare_run_at_start_with_its_place(tmp_path: Path) -> None:
    config = tmp_path / "config"
    home_file(config, "h001", "http://127.0.0.1:9/x")
    (config / "rules.yaml").write_text("pendant: {severity: urgent}\n")
    done = subprocess.run([TELECARE, "run", "--config", str(config), "--data",
                           str(tmp_path / "data"), "--mqtt", "mqtt://127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert f"{config}/rules.yaml: pendant.severity: severity 'urgent' is not one of" in \
        done.stderr


def test_a_clock_a_year_ahead_is_set_aside_and_moves_no_home(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver, unique_home: str
) -> None:
    config = tmp_path / "config"
    home_file(config, unique_home, webhook.url)
    data = tmp_path / "data"
    now = datetime.now(UTC).replace(microsecond=0)
    service = Service("--config", str(config), "--data", str(data), "--mqtt", mosquitto.url)
    pub = Publisher(mosquitto.port)
    try:
        assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
        year = now + timedelta(days=365)
        pub.send(unique_home, "hub", "heartbeat", 1, year, seq=1)  # its own home
        pub.send(unique_home + "x", "hub", "heartbeat", 1, year, seq=1)  # no file either
        pub.send(unique_home + "x", "pendant", "button", 1, now, seq=1)  # no file: kept aside
        pub.send(unique_home, "pendant", "button", 1, now - timedelta(minutes=1), seq=2)
        assert webhook.wait_for(lambda a: len(presses(webhook)) == 1, 20)

        def set_aside() -> int:  # the routine lane's, which the press on its own lane passes
            with contextlib.closing(sqlite3.connect(data / "telecare.db", timeout=30)) as c:
                return int(c.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

        deadline = time.monotonic() + 20
        while set_aside() < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        pub.close()
        stop(service)
    with sqlite3.connect(data / "telecare.db") as conn:
        codes = sorted(r[0] for r in conn.execute("SELECT code FROM dead_letters"))
        assert codes == ["future_ts", "future_ts", "unknown_home"]
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 1


def test_a_pendant_whose_counter_restarted_still_alerts(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver, unique_home: str
) -> None:
    config = tmp_path / "config"
    home_file(config, unique_home, webhook.url)
    now = datetime.now(UTC).replace(microsecond=0)
    service = Service("--config", str(config), "--data", str(tmp_path / "data"), "--mqtt",
                      mosquitto.url)
    pub = Publisher(mosquitto.port)
    try:
        assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
        pub.send(unique_home, "pendant", "button", 1, now - timedelta(days=2), seq=7)
        pub.send(unique_home, "pendant", "button", 1, now - timedelta(days=2), seq=7)  # resend
        pub.send(unique_home, "pendant", "button", 1, now - timedelta(minutes=1), seq=7)
        assert webhook.wait_for(lambda a: len(presses(webhook)) == 2, 20)
        time.sleep(1.0)  # a third (the resend) would have come by now
        assert len(presses(webhook)) == 2
    finally:
        pub.close()
        service.proc.send_signal(signal.SIGTERM)
        assert service.proc.wait(30) == 0
