"""Messages from bridges and hubs (Zigbee2MQTT, Home Assistant, vendor JSON) made readings.

`SourceMapper` is built from the homes' `sources:` (`telecare.sources`). For each message on a
topic a source owns it gives the readings it stands for, or says why none (a bridge's own
topics, a motion sensor repeating that it is still on), or raises `BadReading` naming the
mapping and the reason, so ingest dead-letters it like a bad native payload. The readings then
go through the same judging (`telecare.reading`), de-duplication, storage and detection as
native ones.

The traps of real bridges, and what is done about each:
- Zigbee2MQTT's `contact: true` means closed; ours is 1 = open: `contact` is inverted.
- A motion sensor's state repeats `occupancy: true` while it stays on (and with every battery
  or light-level report): a reading when it turns on, then at most one per `repeat` (a minute)
  while it stays on, as a PIR that keeps re-triggering is read natively; `false` is none.
- Event time: `last_seen` (ISO 8601, or epoch milliseconds) when the bridge sends it, else the
  arrival time, marked as such (`Reading.on_arrival`). A retained message delivered on
  subscribing is old news: with no time of its own it is not taken as happening now.
- Home Assistant statestream sends a state, then (with `publish_timestamps`) its
  `last_updated` on a topic of its own: the state waits for its time. What waits is handed to
  ingest (`take_pending`) to be stored with the batch, so a restart between the two loses
  nothing.
- Availability (`{base}/{name}/availability`, Home Assistant's `unavailable`) becomes a
  `heartbeat` reading of that device, 1 online and 0 offline, for device health.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jmespath

from telecare.config import HomeConfig
from telecare.reading import (
    MAX_PAYLOAD_BYTES,
    TOPIC_PREFIX,
    URGENT_KINDS,
    BadReading,
    Reading,
    check_not_future,
    load_json,
    parse_payload,
    reading_from_checked,
)
from telecare.sources import (
    EVENT_KINDS,
    Z2M_FIELDS,
    HaEntity,
    HomeAssistant,
    JsonDevice,
    JsonSource,
    Z2mDevice,
    Zigbee2Mqtt,
)

# Zigbee2MQTT's `battery_low` with no percentage: taken as these, enough to raise and to clear
# the low-battery alert (below 20%, at least 50%). The device reports no finer figure.
BATTERY_LOW_PERCENT = (60.0, 10.0)
_ON = {"on": 1.0, "off": 0.0, "open": 1.0, "closed": 0.0, "true": 1.0, "false": 0.0,
       "detected": 1.0, "clear": 0.0}
# Sensors that stay on for a while after what they saw (a PIR, a vibration sensor): read as
# one event when they turn on. Never a button or a fall detector: every press counts.
ON_OFF_EVENTS = frozenset({"motion", "flush"})
MOTION_REPEAT = timedelta(seconds=60)  # as a PIR kept busy re-triggers, read natively
_MS_EPOCH = 1e11  # a number above this is milliseconds (Zigbee2MQTT's `last_seen: epoch`)
Result = tuple[list[Reading], str | None]  # readings, and why none when there are none


@dataclass(frozen=True)
class _Route:
    home: HomeConfig
    source: Zigbee2Mqtt | HomeAssistant | JsonSource


def _ts_of(raw: Any, what: str) -> Any:
    """A time as the contract takes it (RFC 3339 text or Unix seconds): milliseconds too."""
    if isinstance(raw, int | float) and not isinstance(raw, bool) and raw > _MS_EPOCH:
        return raw / 1000
    if raw is None or isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise BadReading("bad_ts", f"{what} is {str(raw)[:40]!r}: expected ISO 8601 or epoch")
    return raw


def _battery(obj: dict[str, Any]) -> float | None:
    raw = obj.get("battery")
    if isinstance(raw, int | float) and not isinstance(raw, bool) and math.isfinite(raw):
        return float(min(max(raw, 0.0), 100.0))  # some bridges say 100.5 or -1
    low = obj.get("battery_low")
    return BATTERY_LOW_PERCENT[low] if isinstance(low, bool) else None


def _text_value(text: str, values: dict[str, float], what: str) -> float | None:
    """A state given in words: the mapping's own words first, then on/off and numbers.
    None: a state that says nothing (`unknown`)."""
    if text in values:
        return values[text]
    low = text.strip().lower()
    if low in _ON:
        return _ON[low]
    if low in ("unknown", "none", ""):
        return None
    try:
        value = float(low)
    except ValueError:
        raise BadReading("bad_value", f"{what} is {text[:40]!r}, which is not in its value "
                         f"map ({', '.join(values) or 'none given'}), on/off or a number") \
            from None
    return value


class SourceMapper:
    """Topic routing and message mapping for every home's sources. Holds what it must
    remember between messages: whether each motion sensor was on, and Home Assistant states
    waiting for their time."""

    def __init__(self, homes: Iterable[HomeConfig]) -> None:
        self.trees: dict[str, _Route] = {}  # Zigbee2MQTT base -> route
        self.exact: dict[str, list[_Route]] = {}
        self.urgent: list[str] = []  # exact topics that may carry a call for help
        # Looked up per message, so built once here: (home, device) -> kind; a bridge's
        # friendly names -> their entries; a statestream entity's topic base -> the entity;
        # each JSON expression compiled.
        self._kinds: dict[tuple[str, str], str] = {}
        self._names: dict[str, dict[str, list[Z2mDevice]]] = {}
        self._entities: dict[str, HaEntity] = {}
        self._paths: dict[str, Any] = {}
        for home in homes:
            kinds = {d.id: d.kind for d in home.devices}
            self._kinds.update({(home.home, d): k for d, k in kinds.items()})
            for source in home.sources:
                route = _Route(home, source)
                if isinstance(source, Zigbee2Mqtt):
                    names = self._names.setdefault(source.base, {})
                    for d in source.devices:
                        names.setdefault(d.name, []).append(d)
                    self.trees[source.base] = route
                    self.urgent += sorted({f"{source.base}/{d.name}" for d in source.devices
                                           if kinds[d.device] in URGENT_KINDS})
                else:
                    for topic in source.topics():
                        self.exact.setdefault(topic, []).append(route)
                    if isinstance(source, JsonSource):
                        self.urgent += sorted({d.topic for d in source.devices
                                               if kinds[d.device] in URGENT_KINDS})
                        for js in source.devices:
                            for expression in (js.value, js.time):
                                if expression is not None:
                                    self._paths[expression] = jmespath.compile(expression)
                    else:
                        self._entities.update({source.entity_base(e.entity): e
                                               for e in source.entities})
                        self.urgent += [t for e in source.entities
                                        if kinds[e.device] in URGENT_KINDS
                                        for t in source.topics()
                                        if t.startswith(source.entity_base(e.entity) + "/")]
        self.urgent = sorted(set(self.urgent))
        # (home, device) -> (was on, time of the last reading made from it)
        self._on: dict[tuple[str, str], tuple[bool, datetime | None]] = {}
        # Home Assistant: "home|entity" -> (state text, arrival) waiting for its last_updated
        self.pending: dict[str, tuple[str, float]] = {}
        # Where a state not in `pending` may be found: the store, when several ingest workers
        # share a subscription and the state went to another one (None: nowhere else).
        self.pending_lookup: Callable[[str], tuple[str, float] | None] | None = None
        self._pending_changed: dict[str, tuple[str, float] | None] = {}

    def topics(self) -> list[str]:
        """What to subscribe to, besides the contract's own topics."""
        return sorted([f"{base}/#" for base in self.trees] + list(self.exact))

    def home_of(self, topic: str) -> str | None:
        found = self._route(topic)
        return found[0].home.home if found else None

    def _route(self, topic: str) -> tuple[_Route, list[_Route]] | None:
        routes = self.exact.get(topic)
        if routes:
            return routes[0], routes
        parts = topic.split("/")
        for k in range(len(parts) - 1, 0, -1):
            route = self.trees.get("/".join(parts[:k]))
            if route is not None:
                return route, [route]
        return None

    def judge(self, topic: str, payload: bytes, arrived: float, retained: bool = False,
              now: datetime | None = None) -> Result:
        """Any message ingest takes: the contract's own topics judged as ever
        (`telecare.reading`), a source's mapped; BadReading if it is bad input."""
        if topic.startswith(f"{TOPIC_PREFIX}/"):
            return [parse_payload(topic, payload, now=now)], None
        return self.map(topic, payload, arrived, retained, now)

    def take_pending(self) -> dict[str, tuple[str, float] | None]:
        """Changes to the waiting states since last asked (None: no longer waiting)."""
        out, self._pending_changed = self._pending_changed, {}
        return out

    def map(self, topic: str, payload: bytes, arrived: float, retained: bool = False,
            now: datetime | None = None) -> Result:
        found = self._route(topic)
        if found is None:
            raise BadReading("bad_topic", f"topic {topic[:120]!r} is neither "
                             "telecare/v1/home/device/kind nor any home's source")
        route, routes = found
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise BadReading("too_large", f"{route.source.type} source {route.source.name!r}: "
                             f"payload is {len(payload)} bytes; the limit is 4096")
        source = route.source
        try:
            if isinstance(source, Zigbee2Mqtt):
                readings, why = self._zigbee2mqtt(route.home, source, topic, payload, arrived,
                                                  retained)
            elif isinstance(source, HomeAssistant):
                readings, why = self._home_assistant(route.home, source, topic, payload,
                                                     arrived, retained)
            else:
                readings, why = self._json(routes, topic, payload, arrived, retained)
            if now is not None:
                readings = [check_not_future(r, now) for r in readings]
        except BadReading as bad:
            raise BadReading(bad.code, f"{source.type} source {source.name!r} of home "
                             f"{route.home.home!r}: {bad.detail}") from None
        except Exception as exc:  # noqa: BLE001
            # A mapping that fails on a message it was not written for (a JMESPath function
            # given the wrong type, say) sets that message aside; it must not hold up the
            # batch, and with it every other home's readings.
            raise BadReading("mapping_failed", f"{source.type} source {source.name!r} of home "
                             f"{route.home.home!r}: {type(exc).__name__}: "
                             f"{str(exc)[:200]}") from None
        return readings, why

    # Zigbee2MQTT -------------------------------------------------------------------------

    def _zigbee2mqtt(self, home: HomeConfig, source: Zigbee2Mqtt, topic: str, payload: bytes,
                     arrived: float, retained: bool) -> Result:
        rest = topic[len(source.base) + 1:]
        if rest == "bridge" or rest.startswith("bridge/"):
            return [], "bridge"
        names = self._names[source.base]
        entries = names.get(rest, [])
        if not entries and rest.endswith("/availability"):
            entries = names.get(rest[:-len("/availability")], [])
            if entries:
                return self._availability(home, entries, payload, arrived, retained)
        if not entries:
            return [], "unmapped"
        obj = load_json(payload)
        if not isinstance(obj, dict):
            raise BadReading("not_object", f"{rest!r}: payload is a JSON "
                             f"{type(obj).__name__}, not an object")
        raw_ts: Any = obj.get("last_seen")
        if raw_ts is None:
            if retained:
                return [], "retained_without_time"
            raw_ts = arrived
        else:
            raw_ts = _ts_of(raw_ts, f"{rest!r}: last_seen")
        battery = _battery(obj)
        out: list[Reading] = []
        for entry in entries:
            reading = self._z2m_entry(home, entry, obj, raw_ts, battery, rest)
            if reading is not None:
                out.append(reading)
        if not out:
            return out, "no_reading"  # a motion sensor still on, a button's empty action...
        if obj.get("last_seen") is None:
            out = [_on_arrival(r) for r in out]
        return out, None

    def _z2m_entry(self, home: HomeConfig, entry: Z2mDevice, obj: dict[str, Any], raw_ts: Any,
                   battery: float | None, name: str) -> Reading | None:
        kind = self._kinds[(home.home, entry.device)]  # a device of the home: checked at load
        field = entry.field or Z2M_FIELDS[kind]
        raw = obj.get(field)
        if raw is None:
            return None  # not in this message (or not reported yet: Zigbee2MQTT sends null)
        what = f"{name!r} -> {entry.device}: {field}"
        if entry.actions:
            if not isinstance(raw, str):
                raise BadReading("bad_value", f"{what} is {str(raw)[:40]!r}, not an action")
            if raw not in entry.actions:
                return None  # another action (or the empty one that clears it)
            value = 1.0
        elif isinstance(raw, bool):
            value = float(raw)
            if entry.invert if entry.invert is not None else field == "contact":
                value = 1.0 - value
        elif isinstance(raw, int | float):
            value = float(raw)
        elif isinstance(raw, str):
            found = _text_value(raw, {}, what)
            if found is None:
                return None
            value = found
        else:
            raise BadReading("bad_value", f"{what} is a JSON {type(raw).__name__}")
        reading = _reading(home.home, entry.device, kind, raw_ts, value, battery)
        if kind in ON_OFF_EVENTS:
            return self._edge(reading, entry.repeat)
        if kind in EVENT_KINDS and value < 1:
            return None  # a button or fall detector back at rest
        return reading

    def _edge(self, reading: Reading, repeat: timedelta = MOTION_REPEAT) -> Reading | None:
        """An on/off sensor read as events: one when it turns on, then (motion) at most one
        per `repeat` while it stays on; none when it turns off."""
        key = (reading.home, reading.device)
        was_on, last = self._on.get(key, (False, None))
        if reading.value < 1:
            self._on[key] = (False, last)
            return None
        repeat_due = (reading.kind == "motion" and last is not None
                      and reading.ts - last >= repeat)
        if was_on and not repeat_due and reading.ts != last:
            return None  # (the same one again is a redelivery: stored once by its identity)
        self._on[key] = (True, reading.ts)
        return reading

    def _availability(self, home: HomeConfig, entries: list[Z2mDevice], payload: bytes,
                      arrived: float, retained: bool) -> Result:
        if retained:
            return [], "retained_without_time"
        text = payload.decode("utf-8", "replace").strip()
        if text.startswith("{"):
            obj = load_json(payload)
            text = str(obj.get("state", "")) if isinstance(obj, dict) else ""
        if text not in ("online", "offline"):
            raise BadReading("bad_value", f"availability is {text[:40]!r}: expected online or "
                             "offline")
        value = 1.0 if text == "online" else 0.0
        devices = sorted({e.device for e in entries})
        return [_on_arrival(_reading(home.home, d, "heartbeat", arrived, value, None))
                for d in devices], None

    # Home Assistant statestream ----------------------------------------------------------

    def _home_assistant(self, home: HomeConfig, source: HomeAssistant, topic: str,
                        payload: bytes, arrived: float, retained: bool) -> Result:
        base, _, leaf = topic.rpartition("/")
        entity = self._entities[base]
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise BadReading("bad_utf8", f"{entity.entity}: payload is not UTF-8") from None
        key = f"{home.home}|{entity.entity}"
        if leaf == "state":
            if not source.timestamps:
                if retained:
                    return [], "retained_without_time"
                out = self._ha_reading(home, entity, text, arrived)
                return [_on_arrival(r) for r in out], (None if out else "no_reading")
            self.pending[key] = (text, arrived)
            self._pending_changed[key] = (text, arrived)
            return [], "awaiting_time"
        waiting = self._waiting(key)
        if waiting is None:
            return [], "time_without_state"
        self._pending_changed[key] = None
        out = self._ha_reading(home, entity, waiting[0], _ts_of(text.strip('"'),
                                                                f"{entity.entity} last_updated"))
        return out, None if out else "no_reading"

    def _waiting(self, key: str) -> tuple[str, float] | None:
        """The state waiting for this time, no longer waiting. One taken in this batch is
        in memory only; one from before is in the store, which is the truth when several
        workers share the subscription (another may have taken a newer state, or paired
        the one this worker remembers)."""
        mine = self.pending.pop(key, None)
        if self._pending_changed.get(key) is not None or self.pending_lookup is None:
            return mine
        return self.pending_lookup(key)

    def _ha_reading(self, home: HomeConfig, entity: HaEntity, text: str,
                    raw_ts: Any) -> list[Reading]:
        kind = self._kinds[(home.home, entity.device)]
        if text == "unavailable":
            return [_reading(home.home, entity.device, "heartbeat", raw_ts, 0.0, None)]
        value = _text_value(text, entity.values, f"{entity.entity} -> {entity.device}: state")
        if value is None:
            return []
        reading = _reading(home.home, entity.device, kind, raw_ts, value, None)
        if kind in ON_OFF_EVENTS:
            # A binary sensor's `on` is said again when only its attributes change.
            found = self._edge(reading)
            return [found] if found is not None else []
        if kind in EVENT_KINDS and value < 1:
            return []
        return [reading]

    # Any other JSON ----------------------------------------------------------------------

    def _json(self, routes: list[_Route], topic: str, payload: bytes, arrived: float,
              retained: bool) -> Result:
        obj = load_json(payload)
        out: list[Reading] = []
        tried: list[str] = []
        for route in routes:
            home, source = route.home, route.source
            assert isinstance(source, JsonSource)
            for entry in source.devices:
                if entry.topic != topic:
                    continue
                tried.append(entry.value)
                found, reading = self._json_entry(home, entry, obj, arrived)
                if not found:
                    continue
                if reading is None:
                    return [], "no_reading"
                if entry.time is None and retained:
                    return [], "retained_without_time"
                out.append(reading)
        if not out and tried:
            raise BadReading("no_match", f"no device's value expression found anything in the "
                             f"payload ({', '.join(repr(t) for t in tried)})")
        return out, None

    def _json_entry(self, home: HomeConfig, entry: JsonDevice, obj: Any,
                    arrived: float) -> tuple[bool, Reading | None]:
        """Whether the device's expression found anything in this message (if not, it is
        another device's), and its reading (None: a state that makes no reading)."""
        raw = self._paths[entry.value].search(obj)
        if raw is None:
            return False, None
        kind = self._kinds[(home.home, entry.device)]
        what = f"{entry.device}: value {entry.value!r}"
        if isinstance(raw, bool):
            value: float | None = entry.values.get(str(raw).lower(), float(raw))
        elif isinstance(raw, int | float):
            value = entry.values.get(str(raw), float(raw))
        elif isinstance(raw, str):
            value = _text_value(raw, entry.values, what)
        else:
            raise BadReading("bad_value", f"{what} found a JSON {type(raw).__name__}")
        if value is None or (kind in EVENT_KINDS and value < 1):
            return True, None
        if entry.time is None:
            return True, _on_arrival(_reading(home.home, entry.device, kind, arrived,
                                              value, None))
        raw_ts = self._paths[entry.time].search(obj)
        if raw_ts is None:
            raise BadReading("missing_ts", f"{entry.device}: time {entry.time!r} found nothing")
        return True, _reading(home.home, entry.device, kind,
                              _ts_of(raw_ts, f"{entry.device}: time {entry.time!r}"), value,
                              None)


def _reading(home: str, device: str, kind: str, raw_ts: Any, value: float,
             battery: float | None) -> Reading:
    obj: dict[str, Any] = {"ts": raw_ts, "value": value}
    if battery is not None:
        obj["battery"] = battery
    return reading_from_checked(home, device, kind, obj)


def _on_arrival(reading: Reading) -> Reading:
    """The same reading, marked as stamped with its arrival time (no time of its own)."""
    return Reading(reading.home, reading.device, reading.kind, reading.value, reading.ts,
                   reading.seq, reading.battery, on_arrival=True)

