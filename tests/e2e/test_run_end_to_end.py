"""End to end: a simulated home's scenarios through `telecare run` on a real Mosquitto, to a
real webhook; and the README's demo on the embedded broker."""

from __future__ import annotations

import atexit
import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import Mosquitto, WebhookReceiver

BIN = Path(sys.executable).parent
TELECARE = str(BIN / "telecare")


class Service:
    """`telecare run` in its own process, its log lines collected."""

    def __init__(self, *args: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([TELECARE, "run", *args], stderr=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        # A test that fails half way must not leave the service running after the suite
        # (one did, and went on using a CPU of the machine).
        atexit.register(self._kill)

    def _kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_log(self, text: str, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False


def stop(service: Service) -> None:
    service.proc.send_signal(signal.SIGTERM)
    code = service.proc.wait(30)
    assert code == 0, "".join(service.lines)
    assert any("pipeline stopped cleanly" in line for line in service.lines)


def stored(data: Path) -> int:
    with sqlite3.connect(data / "telecare.db") as conn:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])


def test_scenarios_through_telecare_run_reach_the_webhook_as_backtest_predicts(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver) -> None:
    bundle = tmp_path / "bundle"
    subprocess.run([TELECARE, "simulate", "--homes", "1", "--days", "2", "--seed", "99",
                    "--out", str(bundle), "--scenario", "pendant@0", "--scenario", "cold_home@0",
                    "--scenario", "long_lie@1", "--webhook", webhook.url,
                    "--layout", "full", "--network", "clean"], check=True,
                   capture_output=True)
    subprocess.run([TELECARE, "backtest", "--readings", str(bundle / "readings.jsonl"),
                    "--config", str(bundle), "--out", str(tmp_path / "expected.jsonl")],
                   check=True, capture_output=True)
    expected = [json.loads(x) for x in (tmp_path / "expected.jsonl").read_text().splitlines()]
    assert {a["rule"] for a in expected} == {"pendant", "cold_home", "inactivity"}

    data = tmp_path / "data"
    service = Service("--config", str(bundle), "--data", str(data), "--mqtt", mosquitto.url)
    try:
        assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
        subprocess.run([TELECARE, "replay", str(bundle / "readings.jsonl"), "--mqtt",
                        mosquitto.url, "--no-progress"], check=True, capture_output=True)

        def all_expected(alerts: list[dict]) -> bool:  # type: ignore[type-arg]
            got = {(a["id"], a["status"]) for a in alerts}
            return all((a["id"], "firing") in got for a in expected) and \
                all((a["id"], "resolved") in got for a in expected if a["status"] == "resolved")

        assert webhook.wait_for(all_expected, 60), (webhook.alerts(), "".join(service.lines))
        received = webhook.alerts()
        firing = [a for a in received if a["status"] == "firing"]
        # Live detection raised what backtest raised: same ids, same times, nothing more.
        assert sorted((a["id"], a["raised_at"]) for a in firing) == \
            sorted((a["id"], a["raised_at"]) for a in expected)
        pendant = next(a for a in firing if a["rule"] == "pendant")
        assert pendant["severity"] == "critical"
        assert "pendant alarm was pressed" in pendant["message"]
        # One notification per change: no repeats.
        assert len(received) == len({(a["id"], a["status"]) for a in received})
    finally:
        stop(service)

    # Stopped maybe before every reading was taken in: what the broker still held for the
    # persistent session arrives when the service comes back.
    sent = {line for line in (bundle / "readings.jsonl").read_text().splitlines()}
    again = Service("--config", str(bundle), "--data", str(data), "--mqtt", mosquitto.url)
    try:
        assert again.wait_log("subscribed to telecare/v1/#"), "".join(again.lines)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stored(data) < len(sent):
            time.sleep(0.1)
    finally:
        stop(again)
    # Nothing notified twice across the restart.
    received = webhook.alerts()
    assert len(received) == len({(a["id"], a["status"]) for a in received})

    # Every reading the home sent is stored once, and export gives them back.
    out = tmp_path / "export.jsonl"
    subprocess.run([TELECARE, "export", "--config", str(bundle), "--data", str(data), "--out",
                    str(out)], check=True, capture_output=True)
    exported = out.read_text().splitlines()
    assert len(exported) == len(set(exported))
    assert set(exported) == sent


def test_the_readme_demo_runs_on_the_embedded_broker_and_passes(tmp_path: Path) -> None:
    proc = subprocess.run([TELECARE, "demo", "--speed", "20000"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[CRITICAL pendant]" in proc.stdout
    assert "pendant press -> carer's webhook:" in proc.stdout
    assert "demo passed" in proc.stdout
    assert "Care team's console: http://127.0.0.1:" in proc.stdout
    assert re.search(r"console: [1-9]\d* open alerts in the queue", proc.stdout), proc.stdout


ORDONEZ = Path(__file__).resolve().parents[3] / "shared" / "data" / "real" / "ordonez"


def test_the_real_ordonez_homes_convert_replay_through_run_and_export_unchanged(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    assert ORDONEZ.is_dir(), f"the real recordings are expected at {ORDONEZ}"
    bundle = tmp_path / "ordonez"
    subprocess.run([TELECARE, "import-ordonez", str(ORDONEZ), "--out", str(bundle)],
                   check=True, capture_output=True)
    sent = (bundle / "readings.jsonl").read_text().splitlines()
    assert len(sent) > 4000
    data = tmp_path / "data"
    service = Service("--config", str(bundle), "--data", str(data), "--mqtt", mosquitto.url)
    try:
        assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
        subprocess.run([TELECARE, "replay", str(bundle / "readings.jsonl"), "--mqtt",
                        mosquitto.url, "--no-progress"], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and stored(data) < len(set(sent)):
            time.sleep(0.1)
    finally:
        stop(service)
    out = tmp_path / "export.jsonl"
    subprocess.run([TELECARE, "export", "--config", str(bundle), "--data", str(data), "--out",
                    str(out)], check=True, capture_output=True)
    assert sorted(out.read_text().splitlines()) == sorted(set(sent))
