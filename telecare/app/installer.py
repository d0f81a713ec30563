"""For an installer checking a new home: what each device is read from (`telecare devices`),
and what a live bridge's messages would become (`telecare listen`), before any of it is
stored or detected on.

`listen` subscribes on a clean session of its own (nothing is taken from the service's
queue) to the home's native topics and its sources' topics, and prints each message with the
readings the pipeline would make of it, or why none, or why it is bad input.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from ingest.mapping import SourceMapper
from telecare.config import HomeConfig
from telecare.mqtt import BrokerUrl, make_client
from telecare.reading import TOPIC_PREFIX, BadReading
from telecare.sources import Z2M_FIELDS, HomeAssistant, JsonSource, Zigbee2Mqtt

_NOTES = {"motion": "a reading when it turns on, then one a minute while it stays on",
          "flush": "a reading when it turns on"}


def device_sources(home: HomeConfig) -> list[dict[str, Any]]:
    """One row per device: what it is and every place its readings come from."""
    rows: dict[str, dict[str, Any]] = {
        d.id: {"device": d.id, "kind": d.kind, "room": d.room, "role": d.role,
               "from": [f"native: {TOPIC_PREFIX}/{home.home}/{d.id}/{d.kind}"]}
        for d in home.devices}
    for source in home.sources:
        label = f"{source.type} {source.name!r}"
        if isinstance(source, Zigbee2Mqtt):
            for entry in source.devices:
                kind = rows[entry.device]["kind"]
                field = entry.field or Z2M_FIELDS[kind]
                notes = []
                inverted = entry.invert if entry.invert is not None else field == "contact"
                if inverted:
                    notes.append("inverted: true is closed")
                if entry.actions:
                    notes.append(f"actions {', '.join(entry.actions)} press it")
                if kind in _NOTES and not entry.actions:
                    notes.append(_NOTES[kind])
                rows[entry.device]["from"].append(
                    f"{label}: {source.base}/{entry.name} field {field}"
                    + (f" ({'; '.join(notes)})" if notes else "")
                    + f"; availability at {source.base}/{entry.name}/availability")
        elif isinstance(source, HomeAssistant):
            for ha in source.entities:
                when = "stamped with its last_updated" if source.timestamps else \
                    "stamped on arrival (statestream publish_timestamps is off)"
                words = f", words {ha.values}" if ha.values else ""
                rows[ha.device]["from"].append(
                    f"{label}: {source.entity_base(ha.entity)}/state ({when}{words})")
        elif isinstance(source, JsonSource):
            for js in source.devices:
                when = f"time {js.time!r}" if js.time else "stamped on arrival"
                words = f", words {js.values}" if js.values else ""
                rows[js.device]["from"].append(
                    f"{label}: {js.topic} value {js.value!r} ({when}{words})")
    return list(rows.values())


def describe(home: HomeConfig) -> str:
    """`device_sources` as text for a person."""
    lines = [f"home {home.home} ({home.timezone}): {len(home.devices)} devices, "
             f"{len(home.sources)} sources"]
    for row in device_sources(home):
        what = ", ".join(x for x in (row["kind"], row["room"], row["role"]) if x)
        lines.append(f"  {row['device']} ({what})")
        lines += [f"      <- {src}" for src in row["from"]]
    return "\n".join(lines)


def explain(mapper: SourceMapper, topic: str, payload: bytes, at: float, retained: bool
            ) -> list[str]:
    """The lines `listen` prints for one message."""
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")
    head = f"{stamp} {topic}{' (retained)' if retained else ''}"
    try:
        readings, why = mapper.judge(topic, payload, at, retained, now=datetime.now(UTC))
        mapper.take_pending()
    except BadReading as bad:
        return [head, f"    BAD INPUT {bad.code}: {bad.detail}"]
    if not readings:
        return [head, f"    no reading ({why})"]
    return [head] + [f"    -> {r.to_jsonl()}" for r in readings]


def listen(home: HomeConfig, url: BrokerUrl, emit: Callable[[str], None],
           count: int | None = None, seconds: float | None = None,
           ready: Callable[[], None] | None = None) -> int:
    """Print what each message for `home` would become, until `count` messages or `seconds`
    have passed; returns how many were seen."""
    mapper = SourceMapper([home])
    topics = [f"{TOPIC_PREFIX}/{home.home}/#", *mapper.topics()]
    done = threading.Event()
    seen = [0]
    lock = threading.Lock()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        client.subscribe([(t, 0) for t in topics])

    def on_subscribe(*_: Any) -> None:
        emit(f"listening to {', '.join(topics)}")
        if ready is not None:
            ready()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with lock:
            for line in explain(mapper, msg.topic, bytes(msg.payload), time.time(),
                                bool(msg.retain)):
                emit(line)
            seen[0] += 1
            if count is not None and seen[0] >= count:
                done.set()

    client = make_client(url, f"telecare-listen-{os.getpid()}", "3.1.1")
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect(url.host, url.port, keepalive=30)
    client.loop_start()
    try:
        done.wait(seconds)
    finally:
        client.disconnect()
        client.loop_stop()
    return seen[0]


def as_json(home: HomeConfig) -> str:
    return json.dumps(device_sources(home), indent=2)
