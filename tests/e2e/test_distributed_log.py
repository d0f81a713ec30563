"""Past one machine: an ingest worker and two detection workers as processes of their own,
each with its own data folder (nothing shared on disk), over a real three-node NATS JetStream
cluster and a real Mosquitto. During the replay one NATS node is SIGKILLed and one detection
worker is SIGKILLed and started again; afterwards the two workers between them have raised
exactly the alerts `telecare backtest` gives on the same readings, and a forwarder has put
every reading into the time-series database (victoria-metrics) once."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import Mosquitto, NatsCluster, VictoriaMetrics, _free_port

BIN = Path(sys.executable).parent
TELECARE = str(BIN / "telecare")


class Worker:
    """`telecare <stage> ...` in a process of its own, its log lines kept."""

    def __init__(self, stage: str, *args: str) -> None:
        self.stage, self.args = stage, args
        self.lines: list[str] = []
        self.port = _free_port()
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [TELECARE, self.stage, *self.args, "--metrics-port", str(self.port)],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)

    def health(self) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                        timeout=2) as resp:
                return dict(json.loads(resp.read()))
        except urllib.error.HTTPError as err:
            return dict(json.loads(err.read()))
        except OSError:
            return {}

    def wait(self, what: Any, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if what():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.1)
        return False

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return -9
        return self.proc.returncode


def alerts_in(data: Path) -> set[tuple[str, str]]:
    if not (data / "telecare.db").exists():
        return set()
    conn = sqlite3.connect(data / "telecare.db")
    try:
        return {(i, at) for i, at in conn.execute("SELECT id, raised_at FROM alerts")}
    except sqlite3.OperationalError:
        return set()
    finally:
        conn.close()


def in_database(server: VictoriaMetrics, homes: list[str]) -> list[tuple[str, str, str, int]]:
    """Every sample of these homes: (home, device, kind, time in ms)."""
    out = []
    for home in homes:
        for series in server.export(f'{{__name__=~".*_value",home="{home}"}}'):
            labels = series["metric"]
            kind = labels["__name__"].removesuffix("_value")
            out += [(home, labels["device"], kind, ts) for ts in series["timestamps"]]
    return out


def assert_each_reading_once(server: VictoriaMetrics, readings: Path, forward: Worker,
                             timeout_s: float) -> None:
    """Every reading the homes sent is in the time-series database, once."""
    sent = set()
    for line in readings.read_text().splitlines():
        r = json.loads(line)
        sent.add((r["home"], r["device"], r["kind"],
                  round(datetime.fromisoformat(r["ts"]).timestamp() * 1000)))
    homes = sorted({h for h, _, _, _ in sent})
    assert forward.wait(lambda: len(in_database(server, homes)) >= len(sent), timeout_s), \
        "".join(forward.lines[-20:])
    got = in_database(server, homes)
    assert len(got) == len(set(got)) and set(got) == sent


def test_two_detection_workers_on_a_nats_cluster_raise_what_backtest_raises_through_kills(
        tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics) -> None:
    bundle = tmp_path / "bundle"
    subprocess.run([TELECARE, "simulate", "--homes", "12", "--days", "4", "--seed", "5",
                    "--out", str(bundle), "--scenario", "pendant@1", "--scenario",
                    "cold_home@2", "--scenario", "long_lie@3", "--layout", "mixed"],
                   check=True, capture_output=True)
    subprocess.run([TELECARE, "backtest", "--readings", str(bundle / "readings.jsonl"),
                    "--config", str(bundle), "--out", str(tmp_path / "expected.jsonl")],
                   check=True, capture_output=True)
    expected = {(a["id"], a["raised_at"]) for a in
                map(json.loads, (tmp_path / "expected.jsonl").read_text().splitlines())}
    assert len(expected) > 30

    cluster = NatsCluster(3)
    cluster.start()
    log = cluster.url("replicas=3&partitions=4")
    common = ["--config", str(bundle), "--log", log]
    detects = [Worker("detect", *common, "--data", str(tmp_path / f"detect{i}"),
                      "--partition", f"{i}/2") for i in range(2)]
    ingest = Worker("ingest", *common, "--data", str(tmp_path / "ingest"), "--mqtt",
                    mosquitto.url)
    forward = Worker("forward", *common, "--data", str(tmp_path / "forward"), "--influx",
                     victoria.url)
    workers = [ingest, *detects, forward]
    try:
        assert ingest.wait(lambda: ingest.health().get("subscribed")), "".join(ingest.lines)
        replay = subprocess.Popen([TELECARE, "replay", str(bundle / "readings.jsonl"), "--mqtt",
                                   mosquitto.url, "--no-progress"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Mid-way: a NATS node and a detection worker killed outright.
        first = detects[0]
        assert first.wait(lambda: len(alerts_in(tmp_path / "detect0")) >= 3, 120), \
            "".join(first.lines)
        cluster.kill(1)
        first.kill()
        first.start()
        assert replay.wait(300) == 0

        def done() -> bool:
            raised = alerts_in(tmp_path / "detect0") | alerts_in(tmp_path / "detect1")
            return expected <= raised and all(
                d.health().get("detect_backlog_readings") == 0 for d in detects)

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not done():
            time.sleep(0.5)
        raised = [alerts_in(tmp_path / "detect0"), alerts_in(tmp_path / "detect1")]
        assert raised[0] | raised[1] == expected, ("".join(first.lines[-20:]),
                                                  "".join(detects[1].lines[-20:]))
        assert not raised[0] & raised[1]  # each home's alerts from one worker only
        assert all(d.health().get("log_connected") for d in detects)
        # The ingest worker stored no reading of its own: they are in the log.
        conn = sqlite3.connect(tmp_path / "ingest" / "telecare.db")
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 0
        conn.close()
        assert_each_reading_once(victoria, bundle / "readings.jsonl", forward, 60)
    finally:
        codes = [w.stop() for w in workers]
        cluster.stop()
    assert codes == [0] * len(workers), ["".join(w.lines[-40:]) for w in workers]
