"""The `Reading` type and the one place where incoming sensor data is judged.

Every path that brings readings in (MQTT payloads, JSON Lines for replay and backtest) goes
through `parse_payload` or `parse_jsonl_line`. A rejection raises `BadReading` with a short
machine code (safe to log: it carries no health values) and a detail a person can read (kept
with the dead letter, not logged, because it may quote a health value).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

TOPIC_PREFIX = "telecare/v1"
SUBSCRIPTION = f"{TOPIC_PREFIX}/+/+/+"
MAX_PAYLOAD_BYTES = 4096
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

# kind -> (lowest, highest) accepted value. Bounds are wide physical plausibility limits, not
# clinical ranges: a value outside them is a broken device or a hostile payload, not a patient.
KIND_BOUNDS: dict[str, tuple[float, float]] = {
    "motion": (0, 1),
    "contact": (0, 1),
    "bed": (0, 1),
    "chair": (0, 1),
    "power": (0, 100_000),
    "flush": (0, 1),
    "button": (0, 1),
    "fall": (0, 1),
    "temperature": (-50, 70),
    "humidity": (0, 100),
    "heart_rate": (0, 300),
    "spo2": (0, 100),
    "resp_rate": (0, 100),
    "systolic_bp": (0, 350),
    "body_temperature": (25, 45),
    "weight": (0, 500),
    "heartbeat": (-math.inf, math.inf),
}
KINDS = frozenset(KIND_BOUNDS)
# Kinds whose value is a state or an event flag: only 0 and 1 make sense.
BINARY_KINDS = frozenset({"motion", "contact", "bed", "chair", "flush", "button", "fall"})
# Calls for help (a pendant or pull cord, a wearable fall detector): they travel on a lane of
# their own, ahead of any backlog of routine readings (`URGENT_TOPICS`).
URGENT_KINDS = ("button", "fall")
URGENT_TOPICS = tuple(f"{TOPIC_PREFIX}/+/+/{kind}" for kind in URGENT_KINDS)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
# Unix-seconds timestamps outside these years are a device with no clock set, or garbage.
_MIN_TS = datetime(2000, 1, 1, tzinfo=UTC).timestamp()
_MAX_TS = datetime(2100, 1, 1, tzinfo=UTC).timestamp()
# How far ahead of the receiving service's clock a device's clock may run before its reading
# is refused (`future_ts`): device clocks drift by seconds, a gateway's by a minute or two; a
# reading from further ahead would move event time for its home into a future that never came.
FUTURE_SLACK = timedelta(minutes=5)


class BadReading(ValueError):
    """A payload that is not a valid reading. `code` is loggable; `detail` is for people."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Reading:
    """One observation by one device, in event time (UTC)."""

    home: str
    device: str
    kind: str
    value: float
    ts: datetime
    seq: int | None = None
    battery: float | None = None
    # Stamped with its arrival time: its source sent no time of its own (a bridge without
    # `last_seen`). Not part of its identity; a resend of it cannot be told from a new one.
    on_arrival: bool = False

    @property
    def topic(self) -> str:
        return f"{TOPIC_PREFIX}/{self.home}/{self.device}/{self.kind}"

    def dedupe_key(self) -> str:
        """Identity for at-least-once de-duplication (contract section 1): by (seq, ts) when
        the device counts, so a counter that restarted (same seq, another time) is a new
        reading; else by the whole reading (a resend of an identical reading is the same)."""
        us = (self.ts - _EPOCH) // _MICROSECOND
        if self.seq is not None:
            return f"{self.home}|{self.device}|{self.kind}|s{self.seq}|t{us}"
        return f"{self.home}|{self.device}|{self.kind}|t{us}|v{self.value!r}"

    def payload(self) -> dict[str, Any]:
        """The MQTT payload form (contract section 1)."""
        out: dict[str, Any] = {"ts": format_ts(self.ts), "value": _plain_number(self.value)}
        if self.seq is not None:
            out["seq"] = self.seq
        if self.battery is not None:
            out["battery"] = _plain_number(self.battery)
        return out

    def to_json_obj(self) -> dict[str, Any]:
        """The JSON Lines form (contract section 2)."""
        obj: dict[str, Any] = {
            "ts": format_ts(self.ts),
            "home": self.home,
            "device": self.device,
            "kind": self.kind,
        }
        obj.update(self.payload())
        if self.on_arrival:
            obj["ts_source"] = "arrival"  # an extra field: readers of the contract ignore it
        return obj

    def to_jsonl(self) -> str:
        return json.dumps(self.to_json_obj(), separators=(", ", ": "))


def _plain_number(x: float) -> int | float:
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def format_ts(ts: datetime) -> str:
    """RFC 3339 in UTC, with only as many fractional digits as the instant has: stable text."""
    ts = ts.astimezone(UTC)
    if not ts.microsecond:
        spec = "seconds"
    elif ts.microsecond % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    return ts.isoformat(timespec=spec).replace("+00:00", "Z")


def parse_ts(raw: Any) -> datetime:
    """Parse the contract's `ts`: an RFC 3339 string with an offset, or Unix seconds."""
    if isinstance(raw, bool):
        raise BadReading("bad_ts", "ts is a boolean; expected RFC 3339 text or Unix seconds")
    if isinstance(raw, int | float):
        if not math.isfinite(raw) or not (_MIN_TS <= raw < _MAX_TS):
            raise BadReading("bad_ts", f"ts {raw!r} is not a Unix time between 2000 and 2100")
        return datetime.fromtimestamp(raw, UTC)
    if isinstance(raw, str):
        text = raw.strip()
        if len(text) > 40:
            raise BadReading("bad_ts", "ts text is too long to be RFC 3339")
        if text.endswith(("z", "Z")):
            text = text[:-1] + "+00:00"
        try:
            ts = datetime.fromisoformat(text)
        except ValueError:
            raise BadReading("bad_ts", f"ts {raw!r} is not RFC 3339") from None
        if ts.tzinfo is None:
            raise BadReading("bad_ts", f"ts {raw!r} has no UTC offset; local times are ambiguous")
        if not (_MIN_TS <= ts.timestamp() < _MAX_TS):
            raise BadReading("bad_ts", f"ts {raw!r} is not between 2000 and 2100")
        return ts.astimezone(UTC)
    raise BadReading("bad_ts", f"ts has type {type(raw).__name__}; expected text or number")


def load_json(raw: bytes | str) -> Any:
    # orjson: strict JSON (NaN and Infinity are refused, as JSON itself refuses them), a
    # bounded nesting depth, and about twice the speed of the standard library here.
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadReading("bad_json", f"not valid JSON: {str(exc)[:120]}") from None


def check_id(what: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise BadReading(
            f"bad_{what}", f"{what} {str(value)[:80]!r} must be 1 to 64 of A-Z a-z 0-9 _ -"
        )
    return value


def check_kind(value: Any) -> str:
    if value not in KINDS:
        raise BadReading("unknown_kind", f"kind {str(value)[:40]!r} is not in the vocabulary")
    return str(value)


def reading_from_fields(home: Any, device: Any, kind: Any, obj: Any) -> Reading:
    """Build a `Reading` from identity and a payload object, or raise `BadReading`."""
    return reading_from_checked(check_id("home", home), check_id("device", device),
                                check_kind(kind), obj)


def reading_from_checked(home: str, device: str, kind: str, obj: Any) -> Reading:
    """The payload's part of judging, once identity has been checked (here, or by a
    source's mapping from the home's own configuration)."""
    if not isinstance(obj, dict):
        raise BadReading("not_object", f"payload is a JSON {type(obj).__name__}, not an object")
    if "ts" not in obj:
        raise BadReading("missing_ts", "payload has no ts")
    if "value" not in obj:
        raise BadReading("missing_value", "payload has no value")
    ts = parse_ts(obj["ts"])
    raw_value = obj["value"]
    if isinstance(raw_value, bool):
        value = 1.0 if raw_value else 0.0
    elif isinstance(raw_value, int | float):
        value = float(raw_value)
    else:
        raise BadReading("bad_value", f"value has type {type(raw_value).__name__}; expected number")
    if not math.isfinite(value):
        raise BadReading("bad_value", "value is not a finite number")
    low, high = KIND_BOUNDS[kind]
    if kind in BINARY_KINDS and value not in (0.0, 1.0):
        raise BadReading("bad_value", f"{kind} value {value!r} must be 0 or 1")
    if not (low <= value <= high):
        raise BadReading("bad_value", f"{kind} value {value!r} outside {low:g}..{high:g}")
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 0):
        raise BadReading("bad_seq", f"seq {str(seq)[:40]!r} must be an integer >= 0")
    if seq is not None and seq >= 2**63:
        raise BadReading("bad_seq", "seq is larger than 2^63")
    battery = obj.get("battery")
    if battery is not None:
        if isinstance(battery, bool) or not isinstance(battery, int | float):
            raise BadReading("bad_battery", "battery must be a number 0..100")
        if not (math.isfinite(battery) and 0 <= battery <= 100):
            raise BadReading("bad_battery", f"battery {battery!r} must be 0..100")
        battery = float(battery)
    return Reading(home, device, kind, value, ts, seq, battery)


def parse_topic(topic: str) -> tuple[str, str, str]:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_PREFIX:
        raise BadReading("bad_topic", f"topic {topic[:120]!r} is not telecare/v1/home/device/kind")
    return parts[2], parts[3], parts[4]


def check_not_future(reading: Reading, now: datetime) -> Reading:
    """Refuse a reading stamped more than `FUTURE_SLACK` ahead of the receiver's clock."""
    if reading.ts > now + FUTURE_SLACK:
        ahead = (reading.ts - now).total_seconds()
        raise BadReading("future_ts", f"ts is {ahead:.0f} s ahead of the service's clock "
                         f"(at most {FUTURE_SLACK.total_seconds():.0f} s allowed): a device "
                         "clock that is wrong")
    return reading


def parse_payload(topic: str, payload: bytes, now: datetime | None = None) -> Reading:
    """Judge one MQTT message: topic identity plus a JSON payload of at most 4 KiB. With
    `now` (the receiving service's clock), a reading from the future is refused too."""
    home, device, kind = parse_topic(topic)
    check_id("home", home)
    check_id("device", device)
    check_kind(kind)
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise BadReading("too_large", f"payload is {len(payload)} bytes; the limit is 4096")
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BadReading("bad_utf8", "payload is not UTF-8") from None
    reading = reading_from_checked(home, device, kind, load_json(payload))
    return reading if now is None else check_not_future(reading, now)


def parse_jsonl_line(line: str) -> Reading:
    """Judge one JSON Lines reading (contract section 2)."""
    obj = load_json(line)
    if not isinstance(obj, dict):
        raise BadReading("not_object", "line is not a JSON object")
    return reading_from_fields(obj.get("home"), obj.get("device"), obj.get("kind"), obj)
