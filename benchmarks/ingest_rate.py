"""Benchmark: sustained ingest rate against a real Mosquitto, in one run on this machine.

    .venv/bin/python benchmarks/ingest_rate.py [--messages 100000]

Three consumers drain the same number of QoS 1 messages (about 110 bytes, 100 homes) that
were published beforehand into their persistent sessions, so the publisher's own speed does
not enter the figures:
  bare      a paho-mqtt subscriber (MQTT v5, QoS 1, persistent session) that only counts
  ingest-1  `telecare ingest`: judge, de-duplicate, store in SQLite, acknowledge after commit
  ingest-2  two `telecare ingest` workers on an MQTT v5 shared subscription, one data folder
Each consumer runs in its own process(es). Rates are messages per second from the first
message to the last; the ratios against `bare` are what carries over to other machines.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from simulators.replay import Publisher  # noqa: E402
from telecare.mqtt import BrokerUrl  # noqa: E402
from tests.builders import write_home  # noqa: E402
from tests.conftest import Mosquitto  # noqa: E402

BIN = Path(sys.executable).parent
BARE = r'''
import sys, time, threading
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
port, client_id, topic, total = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
count = 0; first = None; done = threading.Event()
def on_message(c, u, m):
    global count, first
    if first is None: first = time.perf_counter()
    count += 1
    if count >= total: done.set()
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
c.on_message = on_message
c.on_connect = lambda c, u, f, r, p: c.subscribe(topic, qos=1)
props = Properties(PacketTypes.CONNECT); props.SessionExpiryInterval = 3600
props.ReceiveMaximum = 1000
c.connect("127.0.0.1", port, clean_start=False, properties=props)
c.loop_start(); done.wait(600); end = time.perf_counter(); c.disconnect(); c.loop_stop()
print(count, end - first)
'''


def make_session(port: int, client_id: str, topic: str) -> None:
    """Connect once with a persistent session and subscribe, so the broker queues for us."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    c.connect("127.0.0.1", port, clean_start=False, properties=props)
    c.loop_start()
    c.subscribe(topic, qos=1)[1]
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()


def publish(port: int, prefix: str, total: int) -> float:
    started = time.perf_counter()
    with Publisher(BrokerUrl("127.0.0.1", port, False), f"bench-pub-{prefix}") as pub:
        infos = []
        for i in range(total):
            home = f"{prefix}{i % 100:03d}"
            payload = {"ts": 1767600000 + i / 100, "value": 1, "seq": i // 100, "battery": 88}
            infos.append(pub.publish(f"telecare/v1/{home}/kitchen-pir/motion",
                                     json.dumps(payload).encode()))
            if len(infos) >= 2000:
                for info in infos:
                    info.wait_for_publish(60)
                infos = []
        for info in infos:
            info.wait_for_publish(60)
    return time.perf_counter() - started


def stored(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def drain_time(done: Callable[[], int], total: int, limit_s: float = 900) -> float:
    """Seconds from the first of `total` handled (as `done()` counts them) to the last."""
    started = time.perf_counter()
    first = None
    while True:
        n = done()
        if first is None and n > 0:
            first = time.perf_counter()
        if n >= total:
            break
        if time.perf_counter() - started > limit_s:
            raise RuntimeError(f"only {n} of {total} handled")
        time.sleep(0.05)
    assert first is not None
    return time.perf_counter() - first


def run_ingest(port: int, workers: int, total: int, work: Path, prefix: str) -> float:
    config = work / f"config-{prefix}"
    for i in range(100):
        write_home(config, f"{prefix}{i:03d}")
    data = work / f"data-{prefix}"
    share = ["--share-group", f"g{prefix}"] if workers > 1 else []
    # Create the sessions first (start and stop each worker), then fill them.
    procs = []
    for w in range(workers):
        args = [str(BIN / "telecare"), "ingest", "--config", str(config), "--data", str(data),
                "--mqtt", f"mqtt://127.0.0.1:{port}", "--mqtt-protocol", "5",
                "--worker-id", f"w{w}", "--log-level", "warning", *share]
        procs.append(args)
    for args in procs:
        p = subprocess.Popen(args)
        time.sleep(2.5)
        p.terminate()
        p.wait(30)
    publish(port, prefix, total)
    before = stored(data / "telecare.db")
    running = [subprocess.Popen(args) for args in procs]
    took = drain_time(lambda: stored(data / "telecare.db") - before, total)
    for p in running:
        p.terminate()
        p.wait(30)
    return took  # from the first stored reading to the last, as for the bare subscriber


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    total = args.messages
    broker = Mosquitto()
    broker.start()
    work = Path(tempfile.mkdtemp(prefix="telecare-bench-"))
    try:
        # bare: a persistent session filled beforehand, drained by a counting subscriber
        bare_topic = "telecare/v1/#"
        make_session(broker.port, "bench-bare", bare_topic)
        pub_s = publish(broker.port, "bare", total)
        out = subprocess.run([sys.executable, "-c", BARE, str(broker.port), "bench-bare",
                              bare_topic, str(total)], capture_output=True, text=True,
                             check=True).stdout.split()
        bare_rate = int(out[0]) / float(out[1])
        # The bare session must not queue the ingest runs' messages: end it.
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare",
                        protocol=mqtt.MQTTv5)
        c.connect("127.0.0.1", broker.port, clean_start=True)
        c.disconnect()
        one = total / run_ingest(broker.port, 1, total, work, "one")
        two = total / run_ingest(broker.port, 2, total, work, "two")
        print(json.dumps({
            "messages": total,
            "publish_rate_msg_s": round(total / pub_s),
            "bare_paho_msg_s": round(bare_rate),
            "ingest_1_worker_msg_s": round(one),
            "ingest_2_workers_msg_s": round(two),
            "ratio_1_worker_to_bare": round(one / bare_rate, 2),
            "ratio_2_workers_to_bare": round(two / bare_rate, 2),
            "cores": os.cpu_count(),
        }, indent=2))
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
