"""Where a home's readings come from, when its devices do not speak the contract's topics.

A home file may name `sources:` (all checked at load, with exact errors, like the rest of the
configuration):

- `zigbee2mqtt`: a Zigbee2MQTT bridge's base topic (one per home, e.g. `z2m/h001`) and, for
  each device, its friendly name and the home's device it feeds. The field read from the
  bridge's state message follows the device's kind (`occupancy` for motion, `contact` for a
  door, `power`, `temperature`, `action` for a button...), or `field:` names another.
- `home_assistant`: a Home Assistant MQTT statestream (`{prefix}/{domain}/{object}/state`),
  entity by entity; `timestamps: true` when statestream's `publish_timestamps` is on, so each
  state is stamped with its `last_updated`.
- `json`: any other MQTT JSON, device by device: a topic, a JMESPath expression for the value
  (and optionally for the time), and a value map such as `{open: 1, closed: 0}`.

The models here only describe and check; `ingest.mapping` turns messages into readings.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, field_validator

# The field a Zigbee2MQTT state message carries for each of our kinds, unless `field:` says.
Z2M_FIELDS = {"motion": "occupancy", "contact": "contact", "bed": "occupancy",
              "chair": "occupancy", "flush": "vibration", "button": "action", "fall": "action",
              "power": "power", "temperature": "temperature", "humidity": "humidity",
              "heart_rate": "heart_rate", "spo2": "spo2", "resp_rate": "resp_rate",
              "systolic_bp": "systolic_bp", "body_temperature": "body_temperature",
              "weight": "weight"}
# Kinds that are events (1 = it happened): a message saying "off" is no reading at all.
EVENT_KINDS = frozenset({"motion", "flush", "button", "fall"})
_TOPIC_PART = re.compile(r"[^#+\x00]+")


def _plain_topic(what: str, v: str) -> str:
    """A topic (or its base) with no wildcards, not under our own `telecare/` tree."""
    v = v.strip("/")
    if not v or not _TOPIC_PART.fullmatch(v) or "//" in v:
        raise ValueError(f"{what} {v!r} must be a plain MQTT topic (no wildcards + or #)")
    if v.split("/")[0] in ("telecare", "$share", "$SYS"):
        raise ValueError(f"{what} {v!r} may not be under telecare/, $share/ or $SYS/")
    return v


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Z2mDevice(_Strict):
    """One Zigbee2MQTT device (by friendly name) feeding one of the home's devices. A sensor
    with several readings (temperature and humidity) is listed once per device it feeds."""

    name: str = Field(min_length=1)  # the friendly name: its state is at {base}/{name}
    device: str  # the home's device id (in `devices:`), whose kind says what is read
    field: str | None = None  # the state message's field; by default from the device's kind
    invert: bool | None = None  # by default only `contact` (Zigbee2MQTT: true = closed)
    actions: list[str] = Field(default_factory=list)  # for `action`: the ones that press it
    repeat: timedelta = timedelta(seconds=60)  # motion kept on: a reading this often

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if any(c in v for c in "#+\x00") or v.startswith("/") or v.endswith("/"):
            raise ValueError(f"friendly name {v!r} may not hold + or # or start or end with /")
        if v == "bridge" or v.startswith("bridge/"):
            raise ValueError("'bridge' is the bridge's own topic, not a device")
        return v


class Zigbee2Mqtt(_Strict):
    type: Literal["zigbee2mqtt"]
    name: str = "zigbee2mqtt"
    base: str  # the bridge's base topic, one per home (Zigbee2MQTT's `mqtt.base_topic`)
    devices: list[Z2mDevice] = Field(min_length=1)

    @field_validator("base")
    @classmethod
    def _base(cls, v: str) -> str:
        return _plain_topic("base", v)

    def topics(self) -> list[str]:
        return [f"{self.base}/#"]


class HaEntity(_Strict):
    entity: str  # `domain.object_id`, as Home Assistant names it
    device: str
    values: dict[str, float] = Field(default_factory=dict)  # state text -> value, if not on/off

    @field_validator("entity")
    @classmethod
    def _entity(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", v):
            raise ValueError(f"entity {v!r} is not a Home Assistant entity id like "
                             "binary_sensor.hall_motion")
        return v


class HomeAssistant(_Strict):
    type: Literal["home_assistant"]
    name: str = "home_assistant"
    prefix: str  # statestream's `base_topic`
    # statestream's `publish_timestamps`: each state is followed by its `last_updated`, which
    # is then its event time; without it the state is stamped when it arrives.
    timestamps: bool = False
    entities: list[HaEntity] = Field(min_length=1)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _plain_topic("prefix", v)

    def entity_base(self, entity: str) -> str:
        return f"{self.prefix}/{entity.replace('.', '/')}"

    def topics(self) -> list[str]:
        return [f"{self.entity_base(e.entity)}/{leaf}" for e in self.entities
                for leaf in (("state", "last_updated") if self.timestamps else ("state",))]


def _check_expression(v: str | None) -> str | None:
    if v is None:
        return v
    try:
        jmespath.compile(v)
    except JMESPathError as exc:
        raise ValueError(f"{v!r} is not a JMESPath expression: {str(exc).splitlines()[0]}") \
            from None
    return v


JmesPath = Annotated[str, Field(min_length=1)]


class JsonDevice(_Strict):
    """One device in a vendor's JSON. `value` and `time` are JMESPath expressions
    (https://jmespath.org): `state`, `data.temp`, `sensors[?id=='door1'] | [0].state`. A
    message in which the value expression finds nothing is not this device's (several devices
    may share a topic); one it finds but cannot read is dead-lettered with the reason."""

    topic: str
    device: str
    value: JmesPath
    time: str | None = None  # RFC 3339 text, or Unix seconds or milliseconds
    values: dict[str, float] = Field(default_factory=dict)  # e.g. {open: 1, closed: 0}

    @field_validator("topic")
    @classmethod
    def _topic(cls, v: str) -> str:
        return _plain_topic("topic", v)

    @field_validator("value", "time")
    @classmethod
    def _expression(cls, v: str | None) -> str | None:
        return _check_expression(v)


class JsonSource(_Strict):
    type: Literal["json"]
    name: str = "json"
    devices: list[JsonDevice] = Field(min_length=1)

    def topics(self) -> list[str]:
        return sorted({d.topic for d in self.devices})


Source = Annotated[Zigbee2Mqtt | HomeAssistant | JsonSource, Field(discriminator="type")]


def check_sources(sources: list[Any], kinds: dict[str, str]) -> None:
    """References within one home: every mapped device is one of the home's, a button has
    the actions that press it, names are unique. `kinds`: device id -> kind. ValueError with
    the place of the first problem."""
    names: set[str] = set()
    for i, source in enumerate(sources):
        where = f"sources.{i}"
        if source.name in names:
            raise ValueError(f"{where}: two sources are named {source.name!r}")
        names.add(source.name)
        entries = source.entities if isinstance(source, HomeAssistant) else source.devices
        for j, entry in enumerate(entries):
            at = f"{where}.{'entities' if isinstance(source, HomeAssistant) else 'devices'}.{j}"
            kind = kinds.get(entry.device)
            if kind is None:
                raise ValueError(f"{at}: device {entry.device!r} is not in this home's devices")
            if isinstance(entry, Z2mDevice):
                field = entry.field or Z2M_FIELDS.get(kind)
                if field is None:
                    raise ValueError(f"{at}: a {kind} device needs `field:` (no default)")
                if field == "action" and not entry.actions:
                    raise ValueError(f"{at}: {entry.device!r} is read from `action`: list the "
                                     "actions that press it, e.g. actions: [single]")


def source_roots(source: Any) -> list[tuple[str, bool]]:
    """The topics a source owns: (topic, True) for a whole tree under a base, (topic, False)
    for one exact topic. No two homes may own overlapping ones."""
    if isinstance(source, Zigbee2Mqtt):
        return [(source.base, True)]
    return [(t, False) for t in source.topics()]

