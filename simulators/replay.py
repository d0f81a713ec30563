"""`telecare replay`: publish a JSON Lines stream to the broker, keeping event time.

Readings go out in the file's order (a simulated bundle is in arrival order, late and
repeated messages included) with their own `ts` unchanged; `speed` sets how fast the
wall clock runs against event time (1 = real time, 60 = an hour a minute, 0 = as fast as the
broker takes them). QoS 1 with a bounded number of messages in flight: paho stalls beyond
65,535 unacknowledged messages, and a bound keeps memory flat.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt
from tqdm import tqdm

from telecare.mqtt import BrokerUrl, make_client
from telecare.reading import Reading

log = logging.getLogger(__name__)
MAX_IN_FLIGHT = 1000


class Publisher:
    def __init__(self, url: BrokerUrl, client_id: str | None = None) -> None:
        self.url = url
        # 3.1.1 for publishing: every broker speaks it, the embedded one only it.
        self.client = make_client(url, client_id or f"telecare-replay-{os.getpid()}", "3.1.1")
        self.client.max_inflight_messages_set(MAX_IN_FLIGHT)
        self.client.max_queued_messages_set(MAX_IN_FLIGHT)
        self._connected = threading.Event()
        self.client.on_connect = lambda *a: self._connected.set()

    def __enter__(self) -> Publisher:
        self.client.connect(self.url.host, self.url.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(10):
            raise ConnectionError(f"no answer from the broker at {self.url}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        while True:
            info = self.client.publish(topic, payload, qos=qos)
            if info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
                return info
            time.sleep(0.005)  # in-flight window full: wait for acknowledgements


def replay(readings: Iterable[Reading], url: BrokerUrl, speed: float = 0.0, qos: int = 1,
           progress: bool = True,
           on_published: Callable[[Reading, float], None] | None = None) -> int:
    ordered = list(readings)  # in the order given: a late reading stays late
    if not ordered:
        return 0
    first = min(r.ts for r in ordered)
    latest = first
    started = time.monotonic()
    infos = []
    with Publisher(url) as pub:
        for r in tqdm(ordered, unit="msg", disable=not progress, desc="replay"):
            latest = max(latest, r.ts)
            if speed > 0:
                # Paced by the latest event time so far: a late reading goes out at once.
                due = started + (latest - first).total_seconds() / speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            infos.append(pub.publish(r.topic, json.dumps(r.payload()).encode(), qos))
            if on_published is not None:
                on_published(r, time.time())
            if len(infos) >= MAX_IN_FLIGHT:
                infos = [i for i in infos if not i.is_published()]
        for info in infos:
            info.wait_for_publish(30)
    return len(ordered)


def replay_messages(lines: Iterable[dict[str, str]], url: BrokerUrl, speed: float = 0.0,
                    qos: int = 1, progress: bool = True) -> int:
    """Publish ready-made MQTT messages (`{"ts", "topic", "payload"}`, as `telecare bridge`
    writes them) as they are, paced by their `ts` like readings."""
    from telecare.reading import parse_ts

    ordered = list(lines)
    if not ordered:
        return 0
    first = parse_ts(ordered[0]["ts"])
    started = time.monotonic()
    infos = []
    with Publisher(url) as pub:
        for m in tqdm(ordered, unit="msg", disable=not progress, desc="replay"):
            if speed > 0:
                due = started + (parse_ts(m["ts"]) - first).total_seconds() / speed
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            infos.append(pub.publish(m["topic"], m["payload"].encode(), qos))
            if len(infos) >= MAX_IN_FLIGHT:
                infos = [i for i in infos if not i.is_published()]
        for info in infos:
            info.wait_for_publish(30)
    return len(ordered)
