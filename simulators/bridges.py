"""A recorded or simulated home re-published as a real bridge or hub would publish it.

`telecare bridge BUNDLE --as zigbee2mqtt|home_assistant|json --out DIR` writes DIR/homes
(each home's file with a `sources:` section for that bridge) and DIR/messages.jsonl (one MQTT
message a line: `{"ts", "topic", "payload"}`, in event order), which `telecare replay`
publishes as they are. A developer replays a real recording the way an installed home would
send it, and the pipeline's alerts can be compared with the native form's.

How each bridge is imitated (the traps included, so the mapping is tested on them):
- Zigbee2MQTT: one device per friendly name, state messages with `last_seen` (ISO 8601);
  `contact: true` for closed; a motion sensor sends `occupancy: true` on each detection,
  restates it 20 s later (a light-level report) and clears it (`false`) when its timeout ends
  (90 s, or sooner when the next detection comes within a minute and a half); a flush is a
  vibration sensor's `vibration: true` and then `false`; a button's press is `action: single`.
- Home Assistant statestream with `publish_timestamps`: `state` (`on`/`off`, numbers), then
  `last_updated`; a binary sensor goes back to `off` between detections.
- vendor JSON: a topic per device (`hubs/{home}/{device}`), `{"data": {"state": ...},
  "time": ...}`, words for states.
The topics follow the shipped broker ACL's per-home patterns (`deploy/mosquitto/acl.example`).
Kinds a bridge has no form for (a gateway's heartbeat) stay on the contract's own topics.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from telecare.reading import Reading, format_ts, parse_jsonl_line

BRIDGES = ("zigbee2mqtt", "home_assistant", "json")
Message = tuple[Any, str, str]  # (event time, topic, payload text)
_TIMEOUT = timedelta(seconds=90)  # a Zigbee motion sensor's occupancy timeout
_RETRIGGER = timedelta(seconds=60)
_STATE_WORDS = {"contact": ("closed", "open"), "bed": ("empty", "occupied"),
                "chair": ("empty", "occupied")}
_BINARY = frozenset({"motion", "contact", "bed", "chair", "flush", "button", "fall"})
_Z2M_KINDS = frozenset({"motion", "contact", "bed", "chair", "flush", "button", "fall", "power",
                        "temperature", "humidity", "heart_rate", "spo2", "resp_rate",
                        "systolic_bp", "body_temperature", "weight"})


def friendly(device: str) -> str:
    """A friendly name as a person gives one in Zigbee2MQTT ("Basin pir")."""
    return device.replace("-", " ").replace("_", " ").capitalize()


def entity(kind: str, device: str) -> str:
    domain = "binary_sensor" if kind in _BINARY else "sensor"
    return f"{domain}.{device.lower().replace('-', '_')}"


def sources_for(home: dict[str, Any], bridge: str) -> list[dict[str, Any]]:
    """The `sources:` section for a home's devices behind `bridge`."""
    devices = [d for d in home.get("devices", []) if d["kind"] in _Z2M_KINDS]
    hid = home["home"]
    if bridge == "zigbee2mqtt":
        entries = []
        for d in devices:
            entry: dict[str, Any] = {"name": friendly(d["id"]), "device": d["id"]}
            if d["kind"] in ("button", "fall"):
                entry["actions"] = ["single" if d["kind"] == "button" else "fall"]
            entries.append(entry)
        return [{"type": "zigbee2mqtt", "base": f"zigbee2mqtt/{hid}", "devices": entries}]
    if bridge == "home_assistant":
        return [{"type": "home_assistant", "prefix": f"ha/{hid}", "timestamps": True,
                 "entities": [{"entity": entity(d["kind"], d["id"]), "device": d["id"]}
                              for d in devices]}]
    entries = []
    for d in devices:
        entry = {"topic": f"hubs/{hid}/{d['id']}", "device": d["id"], "value": "data.state",
                 "time": "time"}
        if d["kind"] in _STATE_WORDS:
            closed, opened = _STATE_WORDS[d["kind"]]
            entry["values"] = {closed: 0, opened: 1}
        elif d["kind"] in _BINARY:
            entry["values"] = {"detected": 1}
        entries.append(entry)
    return [{"type": "json", "name": "acme-hub", "devices": entries}]


def _follow_ups(readings: list[Reading]) -> dict[int, Reading | None]:
    """For each reading, the same device's next one (by index), for timeouts."""
    by_device: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(readings):
        by_device[(r.home, r.device)].append(i)
    nxt: dict[int, Reading | None] = {}
    for idx in by_device.values():
        for a, b in zip(idx, [*idx[1:], None], strict=True):
            nxt[a] = readings[b] if b is not None else None
    return nxt


def _off_after(r: Reading, following: Reading | None, longest: timedelta) -> Any:
    """When an on/off sensor that saw `r` goes back to off: its timeout, or half way to its
    next detection when that comes sooner."""
    if following is None:
        return r.ts + longest
    return r.ts + min(longest, (following.ts - r.ts) / 2)


def messages(readings: Iterable[Reading], homes: dict[str, dict[str, Any]],
             bridge: str) -> list[Message]:
    """The MQTT messages `bridge` would have published for these readings."""
    ordered = sorted(readings, key=lambda r: r.ts)
    nxt = _follow_ups(ordered)
    out: list[Message] = []
    for i, r in enumerate(ordered):
        home = homes.get(r.home)
        if home is None or r.kind not in _Z2M_KINDS:
            out.append((r.ts, r.topic, json.dumps(r.payload())))
            continue
        if bridge == "zigbee2mqtt":
            out += _zigbee2mqtt(r, nxt[i])
        elif bridge == "home_assistant":
            out += _home_assistant(r, nxt[i])
        else:
            out += _vendor(r, nxt[i])
    out.sort(key=lambda m: m[0])  # stable: a state and what follows it keep their order
    return out


def _zigbee2mqtt(r: Reading, following: Reading | None) -> list[Message]:
    topic = f"zigbee2mqtt/{r.home}/{friendly(r.device)}"

    def msg(at: Any, **fields: Any) -> Message:
        body = {**fields, "linkquality": 96, "last_seen": format_ts(at)}
        if r.battery is not None:
            body["battery"] = r.battery
        return (at, topic, json.dumps(body))

    if r.kind == "motion":
        out = [msg(r.ts, occupancy=True, illuminance=40)]
        retrigger = following is not None and following.ts - r.ts == _RETRIGGER
        if following is None or following.ts - r.ts >= 2 * timedelta(seconds=20):
            # A light-level report while still on: the same occupancy, said again.
            out.append(msg(r.ts + timedelta(seconds=20), occupancy=True, illuminance=41))
        if not retrigger:
            out.append(msg(_off_after(r, following, _TIMEOUT), occupancy=False, illuminance=41))
        return out
    if r.kind == "flush":
        return [msg(r.ts, vibration=True),
                msg(_off_after(r, following, _TIMEOUT), vibration=False)]
    if r.kind in ("button", "fall"):
        return [msg(r.ts, action="single" if r.kind == "button" else "fall")]
    if r.kind == "contact":
        return [msg(r.ts, contact=not r.value)]
    if r.kind in ("bed", "chair"):
        return [msg(r.ts, occupancy=bool(r.value))]
    if r.kind == "power":
        return [msg(r.ts, power=r.value, state="ON" if r.value else "OFF")]
    return [msg(r.ts, **{r.kind: r.value})]


def _home_assistant(r: Reading, following: Reading | None) -> list[Message]:
    base = f"ha/{r.home}/{entity(r.kind, r.device).replace('.', '/')}"

    def state(at: Any, text: str) -> list[Message]:
        # statestream: the state, then its last_updated (Python's isoformat, +00:00)
        return [(at, f"{base}/state", text),
                (at, f"{base}/last_updated", at.isoformat())]

    if r.kind in ("motion", "flush", "button", "fall"):
        return state(r.ts, "on") + state(_off_after(r, following, timedelta(seconds=30)),
                                          "off")
    if r.kind in _BINARY:
        return state(r.ts, "on" if r.value else "off")
    return state(r.ts, f"{r.value:g}")


def _vendor(r: Reading, following: Reading | None) -> list[Message]:
    if r.kind in _STATE_WORDS:
        value: Any = _STATE_WORDS[r.kind][int(r.value)]
    elif r.kind in _BINARY:
        value = "detected"
    else:
        value = r.value
    body = {"data": {"state": value}, "time": format_ts(r.ts), "hub": "acme-7"}
    return [(r.ts, f"hubs/{r.home}/{r.device}", json.dumps(body))]


def write_bridged(bundle: Path, out: Path, bridge: str) -> int:
    """Write `out/homes/*.yaml` (with sources) and `out/messages.jsonl`; returns how many
    messages."""
    if bridge not in BRIDGES:
        raise ValueError(f"bridge {bridge!r} is not one of {', '.join(BRIDGES)}")
    homes: dict[str, dict[str, Any]] = {}
    (out / "homes").mkdir(parents=True, exist_ok=True)
    for path in sorted((bundle / "homes").glob("*.yaml")):
        home = yaml.safe_load(path.read_text(encoding="utf-8"))
        home["sources"] = sources_for(home, bridge)
        homes[home["home"]] = home
        (out / "homes" / path.name).write_text(yaml.safe_dump(home, sort_keys=False),
                                               encoding="utf-8")
    with open(bundle / "readings.jsonl", encoding="utf-8") as f:
        readings = [parse_jsonl_line(line) for line in f if line.strip()]
    sent = messages(readings, homes, bridge)
    with open(out / "messages.jsonl", "w", encoding="utf-8") as f:
        for at, topic, payload in sent:
            f.write(json.dumps({"ts": format_ts(at), "topic": topic, "payload": payload}) + "\n")
    return len(sent)
