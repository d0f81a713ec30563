"""Benchmark: pendant press to the first contact's webhook, through `telecare run`, under the
load of 1,000 homes, in one run on this machine.

    .venv/bin/python benchmarks/pendant_latency.py [--homes 1000] [--presses 200] [--rate 500]
                                                   [--share-group G] [--nats 3]

A real Mosquitto; `telecare run` in its own process (ingest, detect, alerts, one worker);
1,000 homes configured, each with a contact whose webhook is a local HTTP receiver. A
background publisher sends every home's sensor traffic (movement, room temperatures, hub
heartbeats, event time = now) at `--rate` messages a second, far above the ~12 a second that
1,000 real homes send (about 1,000 readings per home-day). Meanwhile `--presses` pendant
presses, one per home, a quarter of a second apart; latency is the time from the publish
call to the webhook receiving that home's alert. Prints p50, p90, p99 and the maximum.

With `--nats N` the reading log is on NATS JetStream (a cluster of N nodes started here,
replicas N): ingest publishes to the streams (calls for help on their own) and detection
follows them, the distributed path of `deploy/README.md`, here all in `telecare run`. With
`--postgres` too, the alert store is on a PostgreSQL started here: the urgent judge commits
the alert there, and the alerts stage (another process) is woken by NOTIFY.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import yaml  # noqa: E402

from tests.conftest import (  # noqa: E402
    Mosquitto,
    NatsCluster,
    PostgresServer,
    WebhookReceiver,
    _free_port,
)

BIN = Path(sys.executable).parent


def first_pendant_alerts(receiver: WebhookReceiver) -> dict[str, float]:
    """When each home's pendant alert first reached the webhook."""
    arrived: dict[str, float] = {}
    with receiver.lock:
        for at, body, _ in receiver.posts:
            if body.get("rule") == "pendant" and body.get("status") == "firing":
                arrived.setdefault(body["home"], at)
    return arrived


def write_homes(config: Path, homes: int, webhook: str) -> None:
    (config / "homes").mkdir(parents=True)
    for i in range(homes):
        home = f"b{i:04d}"
        data = {"home": home, "timezone": "Europe/London",
                "devices": [{"id": "pendant", "kind": "button", "room": "worn",
                             "role": "pendant"},
                            {"id": "hall-pir", "kind": "motion", "room": "hall"},
                            {"id": "lounge-temp", "kind": "temperature", "room": "lounge"},
                            {"id": "hub", "kind": "heartbeat", "room": "hall"}],
                "contacts": [{"name": "carer", "webhook": webhook}]}
        (config / "homes" / f"{home}.yaml").write_text(yaml.safe_dump(data))


def background(port: int, homes: int, rate: float, stop: threading.Event) -> list[int]:
    sent = [0]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-background")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    rng = random.Random(1)
    seq = 0
    start = time.perf_counter()
    while not stop.is_set():
        due = start + sent[0] / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        home = f"b{rng.randrange(homes):04d}"
        device, kind, value = rng.choice([("hall-pir", "motion", 1.0),
                                          ("lounge-temp", "temperature", 20.5),
                                          ("hub", "heartbeat", 1.0)])
        seq += 1
        payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "value": value,
                              "seq": seq})
        client.publish(f"telecare/v1/{home}/{device}/{kind}", payload, qos=1)
        sent[0] += 1
    client.loop_stop()
    client.disconnect()
    return sent


def healthy(port: int) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--share-group", default=None,
                        help="run as a shared-subscription worker (multi-worker mode: "
                             "detection holds readings 1 s to settle; calls for help skip it)")
    parser.add_argument("--nats", type=int, default=0,
                        help="the reading log on a NATS cluster of this many nodes")
    parser.add_argument("--postgres", action="store_true",
                        help="the alert store on a PostgreSQL started here")
    args = parser.parse_args()
    cluster = None
    if args.nats:
        cluster = NatsCluster(args.nats)
        cluster.start()
    postgres = None
    env = dict(os.environ)
    if args.postgres:
        postgres = PostgresServer()
        postgres.start()
        env.update(TELECARE_DB_URL=postgres.database(), TELECARE_DB_USER="telecare")

    broker = Mosquitto()
    broker.start()
    receiver = WebhookReceiver()
    work = Path(tempfile.mkdtemp(prefix="telecare-bench-"))
    write_homes(work / "config", args.homes, receiver.url)
    port = _free_port()
    service = subprocess.Popen(
        [str(BIN / "telecare"), "run", "--config", str(work / "config"), "--data",
         str(work / "data"), "--mqtt", broker.url, "--log-level", "warning",
         *(["--share-group", args.share_group] if args.share_group else []),
         *(["--log", cluster.url(f"replicas={args.nats}")] if cluster else []),
         "--metrics-port", str(port)],
        stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    stop = threading.Event()
    sent: list[int] = []
    try:
        began = time.time()  # until it has loaded every home and subscribed
        while time.time() - began < 120 and not healthy(port):
            time.sleep(0.2)
        bg = threading.Thread(target=lambda: sent.extend(
            background(broker.port, args.homes, args.rate, stop)), daemon=True)
        bg.start()
        time.sleep(5)  # the pipeline under load before the first press
        presser = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-presser")
        presser.connect("127.0.0.1", broker.port)
        presser.loop_start()
        pressed: dict[str, float] = {}
        homes = random.Random(2).sample(range(args.homes), args.presses)
        for i in homes:
            home = f"b{i:04d}"
            payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "value": 1, "seq": 1})
            pressed[home] = time.time()
            presser.publish(f"telecare/v1/{home}/pendant/button", payload, qos=1)
            time.sleep(0.25)
        deadline = time.time() + 30
        while len(first_pendant_alerts(receiver)) < len(pressed) and time.time() < deadline:
            time.sleep(0.1)
        presser.loop_stop()
    finally:
        stop.set()
        time.sleep(0.5)
        service.send_signal(signal.SIGTERM)
        service.wait(60)
        broker.stop()
        if cluster is not None:
            cluster.stop()
        if postgres is not None:
            postgres.close()
    arrived = first_pendant_alerts(receiver)
    lat = sorted((arrived[h] - t) * 1000 for h, t in pressed.items() if h in arrived)
    missing = len(pressed) - len(lat)
    elapsed = len(pressed) * 0.25 + 5

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))]

    print(f"homes {args.homes}, background {sent[0] if sent else 0} readings in ~{elapsed:.0f} s "
          f"(target {args.rate:g}/s), presses {len(pressed)}, arrived {len(lat)}, "
          f"missing {missing}")
    order = list(pressed)
    slowest = sorted(((arrived[h] - t) * 1000, order.index(h)) for h, t in pressed.items()
                     if h in arrived)[-3:]
    print("slowest: " + ", ".join(f"press #{i} {ms:.0f} ms" for ms, i in reversed(slowest)))
    if lat:
        print(f"press -> webhook: p50 {statistics.median(lat):.1f} ms, p90 {q(0.9):.1f} ms, "
              f"p99 {q(0.99):.1f} ms, max {lat[-1]:.1f} ms; within 1 s: "
              f"{sum(x <= 1000 for x in lat)}/{len(pressed)}")


if __name__ == "__main__":
    main()
