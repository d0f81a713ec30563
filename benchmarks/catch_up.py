"""Benchmark: catching up a backlog, and calls for help made during it, in one run.

    .venv/bin/python benchmarks/catch_up.py [--homes 2000] [--days 2] [--presses 50]
                                            [--bundle DIR] [--keep DIR]

The situation after an outage: every home's readings of the last `--days` days are queued in
`telecare run`'s persistent session on a real Mosquitto before the service starts. Then:
1. `telecare backtest` over the same readings, timed: detection's rate with no broker and no
   database, the yardstick for the live pipeline;
2. `telecare run` starts into the backlog; one second after it has subscribed, and every
   second after, a pendant press in another home (event time: now), `--presses` in all;
   each press's latency is from its publish to the first contact's webhook receiving that
   home's pendant alert;
3. the backlog is drained when every reading is stored and detection has read them all
   (polled from `/healthz`); the end-to-end rate is readings over that time.
Prints the figures side by side; `--json` writes them too.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import yaml  # noqa: E402

from benchmarks.bulk_publish import bulk_publish  # noqa: E402
from tests.conftest import Mosquitto, WebhookReceiver, _free_port  # noqa: E402
from tests.e2e.test_run_end_to_end import Service  # noqa: E402

BIN = Path(sys.executable).parent
TELECARE = str(BIN / "telecare")


def simulate(out: Path, homes: int, days: int, webhook: str) -> None:
    # The readings end at today's midnight, so a press made now comes just after them.
    start = (date.today() - timedelta(days=days)).isoformat()
    subprocess.run([TELECARE, "simulate", "--homes", str(homes), "--days", str(days),
                    "--seed", "11", "--out", str(out), "--start", start, "--layout", "full",
                    "--network", "clean", "--webhook", webhook], check=True,
                   capture_output=True)


def point_webhooks(config: Path, webhook: str) -> None:
    for path in (config / "homes").glob("*.yaml"):
        data = yaml.safe_load(path.read_text())
        data["contacts"] = [{"name": "carer", "webhook": webhook}]
        path.write_text(yaml.safe_dump(data))


def publish_file(port: int, readings: Path) -> int:
    """Every line as an MQTT message at QoS 1; returns how many, once all are acknowledged."""
    def messages() -> Iterator[tuple[str, bytes]]:
        with readings.open() as f:
            for line in f:
                obj = json.loads(line)
                yield (f"telecare/v1/{obj.pop('home')}/{obj.pop('device')}/{obj.pop('kind')}",
                       json.dumps(obj).encode())

    return bulk_publish("127.0.0.1", port, messages(), client_id="bench-backlog")


def healthz(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            return dict(json.loads(r.read()))
    except Exception as exc:  # 503 carries the same JSON
        body = getattr(exc, "read", lambda: b"{}")()
        try:
            return dict(json.loads(body or b"{}"))
        except ValueError:
            return {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=2000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--presses", type=int, default=50)
    parser.add_argument("--bundle", type=Path, default=None,
                        help="a bundle made by an earlier run (its readings must end before now)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    receiver = WebhookReceiver()
    work = Path(tempfile.mkdtemp(prefix="telecare-catchup-"))
    bundle = args.bundle or work / "bundle"
    if args.bundle is None:
        simulate(bundle, args.homes, args.days, receiver.url)
    point_webhooks(bundle, receiver.url)
    readings = bundle / "readings.jsonl"
    total = sum(1 for _ in readings.open())
    homes = sorted(p.stem for p in (bundle / "homes").glob("*.yaml"))

    began = time.perf_counter()
    subprocess.run([TELECARE, "backtest", "--readings", str(readings), "--config", str(bundle),
                    "--out", str(work / "backtest.jsonl")], check=True, capture_output=True)
    backtest_s = time.perf_counter() - began

    broker = Mosquitto()
    broker.start()
    port = _free_port()
    run_args = ("--config", str(bundle), "--data", str(work / "data"), "--mqtt", broker.url,
                "--metrics-port", str(port), "--log-level", "info")
    first = Service(*run_args)
    assert first.wait_log("subscribed to telecare/v1/#", 60), "".join(first.lines)
    first.proc.send_signal(signal.SIGTERM)
    first.proc.wait(60)

    began = time.perf_counter()
    sent = publish_file(broker.port, readings)
    publish_s = time.perf_counter() - began

    service = Service(*run_args)
    started = time.perf_counter()
    pressed: dict[str, float] = {}
    presser = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-presser")
    presser.connect("127.0.0.1", broker.port)
    presser.loop_start()
    assert service.wait_log("subscribed to telecare/v1/+/+/button", 60), "".join(service.lines)
    subscribed_s = time.perf_counter() - started

    def press_all() -> None:
        for home in random.Random(2).sample(homes, args.presses):
            time.sleep(1.0)
            payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "value": 1, "seq": 1})
            pressed[home] = time.time()
            presser.publish(f"telecare/v1/{home}/pendant/button", payload, qos=1)

    pressing = threading.Thread(target=press_all, daemon=True)
    pressing.start()
    samples: list[tuple[float, dict[str, Any]]] = []
    drained_s: float | None = None
    while time.perf_counter() - started < 3600:
        time.sleep(1.0)
        report = healthz(port)
        samples.append((time.perf_counter() - started, report.get("backlog", {})))
        with_presses = total + len(pressed)
        stored = _stored(work / "data")
        detect = report.get("backlog", {}).get("detect", {})
        if stored >= with_presses and not pressing.is_alive() and \
                detect.get("readings", 1) == 0:
            drained_s = time.perf_counter() - started
            break
    stop_began = time.perf_counter()
    service.proc.send_signal(signal.SIGTERM)
    code = service.proc.wait(120)
    stop_s = time.perf_counter() - stop_began
    presser.loop_stop()
    broker.stop()
    (work / "service.log").write_text("".join(service.lines))

    firsts: dict[str, float] = {}
    count: dict[str, int] = {}
    with receiver.lock:
        for at, body, _ in receiver.posts:
            if body.get("rule") == "pendant" and body.get("status") == "firing" and \
                    body["home"] in pressed:
                firsts.setdefault(body["home"], at)
                count[body["home"]] = count.get(body["home"], 0) + 1
    lat = sorted((firsts[h] - t) * 1000 for h, t in pressed.items() if h in firsts)

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")

    result = {
        "homes": len(homes), "readings": total, "published": sent,
        "publish_s": round(publish_s, 1), "backtest_s": round(backtest_s, 1),
        "backtest_rate": round(total / backtest_s),
        "subscribed_after_s": round(subscribed_s, 1),
        "drained_s": round(drained_s, 1) if drained_s else None,
        "live_rate": round(total / drained_s) if drained_s else None,
        "live_vs_backtest": round(total / drained_s / (total / backtest_s), 2)
        if drained_s else None,
        "presses": len(pressed), "alerted": len(lat), "missing": len(pressed) - len(lat),
        "notified_twice": sum(1 for n in count.values() if n > 1),
        "press_ms": {"p50": round(statistics.median(lat), 1) if lat else None,
                     "p90": round(q(0.9), 1), "p99": round(q(0.99), 1),
                     "max": round(lat[-1], 1) if lat else None},
        "stop_s": round(stop_s, 1), "exit": code,
        "backlog_samples": samples[:: max(1, len(samples) // 20)],
    }
    print(json.dumps({k: v for k, v in result.items() if k != "backlog_samples"}, indent=1))
    print(f"the service's log: {work / 'service.log'}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


def _stored(data: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(data / "telecare.db", timeout=5) as conn:
            return int(conn.execute("SELECT max(rowid) FROM readings").fetchone()[0] or 0)
    except sqlite3.Error:
        return 0


if __name__ == "__main__":
    main()
