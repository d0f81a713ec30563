"""Bridges and hubs mapped by configuration: real Zigbee2MQTT payload shapes (as the device
pages at zigbee2mqtt.io list their exposes), Home Assistant statestream, vendor JSON; checked
at load with exact errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from detect.rules import load_config
from ingest.mapping import SourceMapper
from telecare.config import ConfigError
from telecare.reading import BadReading, Reading
from tests.builders import write_home

T0 = datetime(2026, 11, 28, 7, 15, tzinfo=UTC).timestamp()  # arrival time in the tests
NOW = datetime(2026, 11, 28, 7, 20, tzinfo=UTC)

DEVICES = [
    {"id": "hall-pir", "kind": "motion", "room": "hall"},
    {"id": "landing-pir", "kind": "motion", "room": "landing"},
    {"id": "front-door", "kind": "contact", "room": "hall", "role": "front_door"},
    {"id": "back-door", "kind": "contact", "room": "kitchen", "role": "back_door"},
    {"id": "kettle-plug", "kind": "power", "room": "kitchen", "role": "kettle"},
    {"id": "lounge-temp", "kind": "temperature", "room": "lounge"},
    {"id": "lounge-humidity", "kind": "humidity", "room": "lounge"},
    {"id": "pendant", "kind": "button", "room": "worn", "role": "pendant"},
    {"id": "ok-button", "kind": "button", "room": "hall", "role": "ok_button"},
]
Z2M = {"type": "zigbee2mqtt", "name": "z2m", "base": "z2m/h001", "devices": [
    {"name": "Hall motion", "device": "hall-pir"},             # Aqara RTCGQ11LM
    {"name": "Landing motion", "device": "landing-pir"},       # Sonoff SNZB-03
    {"name": "Front door", "device": "front-door"},            # Aqara MCCGQ11LM
    {"name": "Back door", "device": "back-door"},              # Sonoff SNZB-04
    {"name": "Kettle plug", "device": "kettle-plug"},          # smart plug
    {"name": "Lounge climate", "device": "lounge-temp"},       # Aqara WSDCGQ11LM
    {"name": "Lounge climate", "device": "lounge-humidity"},
    {"name": "Button", "device": "pendant", "actions": ["hold", "double"]},  # Aqara WXKG11LM
    {"name": "Button", "device": "ok-button", "actions": ["single"]},
]}


def mapper_for(tmp_path: Path, *sources: dict[str, Any], devices: list[Any] = DEVICES
               ) -> SourceMapper:
    write_home(tmp_path, "h001", devices=devices, sources=list(sources))
    return SourceMapper(load_config(tmp_path).homes.values())


def state(m: SourceMapper, name: str, payload: dict[str, Any] | str, at: float = T0,
          retained: bool = False, base: str = "z2m/h001") -> list[Reading]:
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    return m.map(f"{base}/{name}", raw.encode(), at, retained, now=NOW)[0]


def test_aqara_and_sonoff_motion_sensors_give_motion_once_on_then_a_minute_apart(
        tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    aqara = {"battery": 100, "voltage": 3045, "illuminance": 12, "illuminance_lux": 12,
             "device_temperature": 21, "power_outage_count": 4, "linkquality": 120,
             "occupancy": True}
    first = state(m, "Hall motion", aqara)
    assert [(r.device, r.kind, r.value, r.battery) for r in first] == \
        [("hall-pir", "motion", 1.0, 100.0)]
    assert first[0].on_arrival and first[0].ts.timestamp() == T0
    # The state repeats while it stays on (a light-level report, 20 s on): no new movement...
    assert state(m, "Hall motion", {**aqara, "illuminance": 14}, T0 + 20) == []
    # ...but a sensor still on a minute later is someone still moving, as a PIR re-triggers.
    assert len(state(m, "Hall motion", aqara, T0 + 65)) == 1
    assert state(m, "Hall motion", {**aqara, "occupancy": False}, T0 + 155) == []
    assert len(state(m, "Hall motion", aqara, T0 + 160)) == 1  # on again
    sonoff = {"battery": 100, "battery_low": False, "voltage": 3100, "occupancy": True,
              "linkquality": 87, "tamper": False}
    got = state(m, "Landing motion", sonoff)
    assert [(r.device, r.value, r.battery) for r in got] == [("landing-pir", 1.0, 100.0)]


def test_door_contact_true_means_closed_so_it_is_inverted(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    aqara = {"battery": 91, "contact": True, "device_temperature": 20, "linkquality": 102,
             "power_outage_count": 1, "voltage": 2985}
    assert [r.value for r in state(m, "Front door", aqara)] == [0.0]  # closed
    assert [r.value for r in state(m, "Front door", {**aqara, "contact": False})] == [1.0]
    # Sonoff SNZB-04 with only `battery_low`: taken as low, enough for the battery alert.
    sonoff = {"battery_low": True, "contact": False, "linkquality": 60, "tamper": False,
              "voltage": 2400}
    got = state(m, "Back door", sonoff)
    assert [(r.device, r.value) for r in got] == [("back-door", 1.0)]
    assert got[0].battery is not None and got[0].battery < 20


def test_plug_power_and_a_climate_sensors_two_readings(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    plug = {"current": 8.7, "energy": 1.52, "power": 2010.5, "state": "ON", "voltage": 231,
            "linkquality": 144}
    assert [(r.kind, r.value) for r in state(m, "Kettle plug", plug)] == [("power", 2010.5)]
    aqara = {"battery": 97, "humidity": 54.31, "pressure": 1011.2, "temperature": 19.84,
             "voltage": 3005, "linkquality": 90}
    got = state(m, "Lounge climate", aqara)
    assert sorted((r.device, r.value) for r in got) == [("lounge-humidity", 54.31),
                                                        ("lounge-temp", 19.84)]


def test_a_buttons_actions_press_the_pendant_or_say_im_ok(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    press = {"action": "hold", "battery": 100, "voltage": 3042, "linkquality": 78}
    assert [(r.device, r.kind, r.value) for r in state(m, "Button", press)] == \
        [("pendant", "button", 1.0)]
    assert [r.device for r in state(m, "Button", {**press, "action": "single"})] == \
        ["ok-button"]
    # The empty action that clears it, and one nobody mapped: no reading, not bad input.
    assert state(m, "Button", {**press, "action": ""}) == []
    assert state(m, "Button", {**press, "action": "triple"}) == []
    # The button is on the priority lane.
    assert "z2m/h001/Button" in m.urgent


def test_last_seen_is_the_event_time_in_iso_8601_or_epoch_milliseconds(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    door = {"contact": False, "battery": 90}
    iso = state(m, "Front door", {**door, "last_seen": "2026-11-28T08:14:02.250+01:00"})
    assert iso[0].ts == datetime(2026, 11, 28, 7, 14, 2, 250000, tzinfo=UTC)
    assert not iso[0].on_arrival
    epoch = state(m, "Front door", {**door, "last_seen": 1764314042250})
    assert epoch[0].ts == datetime.fromtimestamp(1764314042.25, UTC)
    # A clock from the future is refused, naming the mapping.
    with pytest.raises(BadReading) as bad:
        state(m, "Front door", {**door, "last_seen": "2027-01-01T00:00:00Z"})
    assert bad.value.code == "future_ts" and "'z2m'" in bad.value.detail


def test_retained_state_without_time_is_old_news_not_movement_now(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    assert state(m, "Hall motion", {"occupancy": True}, retained=True) == []
    with_time = state(m, "Hall motion", {"occupancy": True, "last_seen": 1764314000000},
                      retained=True)
    assert len(with_time) == 1  # its own time: stored (or found a duplicate) at that time


def test_availability_feeds_device_health_in_both_forms(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    off = state(m, "Front door/availability", "offline")
    assert [(r.device, r.kind, r.value) for r in off] == [("front-door", "heartbeat", 0.0)]
    on = state(m, "Lounge climate/availability", '{"state":"online"}')
    assert sorted((r.device, r.value) for r in on) == [("lounge-humidity", 1.0),
                                                       ("lounge-temp", 1.0)]
    with pytest.raises(BadReading):
        state(m, "Front door/availability", "maybe")


def test_bridge_topics_and_unmapped_devices_are_counted_not_bad(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, Z2M)
    assert m.map("z2m/h001/bridge/state", b'{"state":"online"}', T0) == ([], "bridge")
    assert m.map("z2m/h001/Neighbours lamp", b'{"state":"ON"}', T0) == ([], "unmapped")
    with pytest.raises(BadReading) as bad:
        m.map("z2m/h001/Front door", b'{"contact": "ajar"}', T0)
    assert bad.value.code == "bad_value"
    assert "zigbee2mqtt source 'z2m' of home 'h001'" in bad.value.detail


HA = {"type": "home_assistant", "name": "ha", "prefix": "homeassistant", "timestamps": True,
      "entities": [{"entity": "binary_sensor.hall_motion", "device": "hall-pir"},
                   {"entity": "binary_sensor.front_door", "device": "front-door"},
                   {"entity": "sensor.lounge_temperature", "device": "lounge-temp"},
                   {"entity": "input_button.pendant", "device": "pendant",
                    "values": {"pressed": 1}}]}


def test_home_assistant_states_take_their_last_updated_time(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, HA)
    base = "homeassistant/binary_sensor/front_door"
    assert m.map(f"{base}/state", b"on", T0, True) == ([], "awaiting_time")
    assert m.take_pending() == {"h001|binary_sensor.front_door": ("on", T0)}
    got, _ = m.map(f"{base}/last_updated", b"2026-11-28T07:14:59.123456+00:00", T0)
    assert [(r.device, r.value) for r in got] == [("front-door", 1.0)]
    assert got[0].ts == datetime(2026, 11, 28, 7, 14, 59, 123456, tzinfo=UTC)
    assert m.take_pending() == {"h001|binary_sensor.front_door": None}
    temp = "homeassistant/sensor/lounge_temperature"
    m.map(f"{temp}/state", b"19.5", T0)
    got, _ = m.map(f"{temp}/last_updated", b"2026-11-28T07:15:00+00:00", T0)
    assert [(r.kind, r.value) for r in got] == [("temperature", 19.5)]
    m.map(f"{base}/state", b"unavailable", T0)
    got, _ = m.map(f"{base}/last_updated", b"2026-11-28T07:16:00+00:00", T0)
    assert [(r.kind, r.value) for r in got] == [("heartbeat", 0.0)]
    assert "homeassistant/input_button/pendant/state" in m.urgent


def test_home_assistant_without_timestamps_stamps_arrival_and_skips_retained(
        tmp_path: Path) -> None:
    m = mapper_for(tmp_path, {**HA, "timestamps": False})
    topic = "homeassistant/binary_sensor/hall_motion/state"
    assert m.map(topic, b"on", T0, True) == ([], "retained_without_time")
    got, _ = m.map(topic, b"on", T0)
    assert got[0].on_arrival and got[0].value == 1.0
    assert m.map(topic, b"on", T0 + 5)[0] == []  # said again (an attribute changed)
    assert m.map(topic, b"off", T0 + 30)[0] == []  # motion is an event: off is none
    assert len(m.map(topic, b"on", T0 + 40)[0]) == 1  # on again: movement again
    with pytest.raises(BadReading) as bad:
        m.map("homeassistant/sensor/lounge_temperature/state", b"warm", T0)
    assert "home_assistant source 'ha'" in bad.value.detail


HUB = {"type": "json", "name": "vendor-hub", "devices": [
    {"topic": "acme/h001/events", "device": "front-door",
     "value": "sensors[?id=='door1'] | [0].state", "time": "ts",
     "values": {"open": 1, "closed": 0}},
    {"topic": "acme/h001/events", "device": "hall-pir",
     "value": "sensors[?id=='pir1'] | [0].motion", "time": "ts"},
    {"topic": "acme/h001/climate", "device": "lounge-temp", "value": "data.t"},
]}


def test_vendor_json_by_jmespath_with_a_value_map_and_its_own_time(tmp_path: Path) -> None:
    m = mapper_for(tmp_path, HUB)
    msg = {"ts": 1764314100, "sensors": [{"id": "door1", "state": "open"},
                                         {"id": "pir1", "motion": True}]}
    got, _ = m.map("acme/h001/events", json.dumps(msg).encode(), T0)
    assert sorted((r.device, r.value) for r in got) == [("front-door", 1.0), ("hall-pir", 1.0)]
    assert all(r.ts == datetime.fromtimestamp(1764314100, UTC) for r in got)
    got, _ = m.map("acme/h001/climate", b'{"data": {"t": 18.5}}', T0)
    assert got[0].value == 18.5 and got[0].on_arrival
    with pytest.raises(BadReading) as bad:  # a word the value map does not know
        m.map("acme/h001/events", b'{"ts": 1764314100, "sensors": [{"id": "door1", '
              b'"state": "ajar"}]}', T0)
    assert "json source 'vendor-hub'" in bad.value.detail and "'ajar'" in bad.value.detail
    with pytest.raises(BadReading) as bad:  # nothing any device's expression can find
        m.map("acme/h001/events", b'{"ts": 1764314100, "other": 1}', T0)
    assert bad.value.code == "no_match"


def test_sources_are_checked_at_load_with_their_place(tmp_path: Path) -> None:
    cases = [
        ({**Z2M, "devices": [{"name": "Hall motion", "device": "hall-pri"}]},
         "sources.0.devices.0: device 'hall-pri' is not in this home's devices"),
        ({**Z2M, "devices": [{"name": "Button", "device": "pendant"}]},
         "list the actions that press it"),
        ({**Z2M, "base": "z2m/#"}, "must be a plain MQTT topic"),
        ({**Z2M, "base": "telecare/v1/h001"}, "may not be under telecare/"),
        ({**Z2M, "type": "zigbee"}, "sources.0"),
        ({**HUB, "devices": [{**HUB["devices"][0], "value": "sensors[?id=="}]},
         "is not a JMESPath expression"),
        ({**HA, "entities": [{"entity": "hall motion", "device": "hall-pir"}]},
         "is not a Home Assistant entity id"),
    ]
    for i, (source, expected) in enumerate(cases):
        root = tmp_path / str(i)
        write_home(root, "h001", devices=DEVICES, sources=[source])
        with pytest.raises(ConfigError) as err:
            load_config(root)
        assert any(expected in p and "h001.yaml" in p for p in err.value.problems), \
            (expected, err.value.problems)


def test_two_homes_cannot_share_a_bridges_topics(tmp_path: Path) -> None:
    write_home(tmp_path, "h001", devices=DEVICES, sources=[Z2M])
    write_home(tmp_path, "h002", devices=DEVICES,
               sources=[{**Z2M, "base": "z2m/h001/extra"}])
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert any("overlaps one of home 'h001'" in p for p in err.value.problems), \
        err.value.problems


def test_a_bridge_topic_outside_the_shipped_acl_patterns_is_warned_of(tmp_path: Path) -> None:
    write_home(tmp_path / "a", "h001", devices=DEVICES, sources=[Z2M])
    warned = load_config(tmp_path / "a").warnings
    assert any("sources.0: topic 'z2m/h001' is outside the per-home patterns" in w
               for w in warned), warned
    write_home(tmp_path / "b", "h001", devices=DEVICES,
               sources=[{**Z2M, "base": "zigbee2mqtt/h001"},
                        {**HA, "prefix": "ha/h001"},
                        {**HUB, "devices": [{**d, "topic": d["topic"].replace("acme", "hubs")}
                                            for d in HUB["devices"]]}])
    assert not [w for w in load_config(tmp_path / "b").warnings if "sources" in w]


def _ingest(tmp_path: Path, *sources: dict[str, Any]) -> Any:
    from ingest.service import IngestService
    from ingest.store import ReadingStore
    from telecare.db import connect

    write_home(tmp_path / "config", "h001", devices=DEVICES, sources=list(sources))
    config = load_config(tmp_path / "config")
    store = ReadingStore(connect(tmp_path / "data"))
    return IngestService(store, clock=lambda: NOW, known_home=config.known,
                         mapper=SourceMapper(config.homes.values()))


def test_a_payload_that_does_not_fit_its_mapping_is_dead_lettered_with_its_name(
        tmp_path: Path) -> None:
    service = _ingest(tmp_path, Z2M)
    assert service.handle([("z2m/h001/Front door", b'{"contact": "ajar"}', T0, False),
                           ("z2m/h001/Front door", b'{"contact": false}', T0, False),
                           ("z2m/h001/bridge/logging", b'{"level": "info"}', T0, False)])
    letters = service.store.dead_letters()
    assert [(d.topic, d.code) for d in letters] == [("z2m/h001/Front door", "bad_value")]
    assert "zigbee2mqtt source 'z2m' of home 'h001'" in letters[0].reason
    assert [(r.device, r.value) for r in service.store.export()] == [("front-door", 1.0)]
    assert service.counters["source_bridge"] == 1 and service.counters["dead_lettered"] == 1


def test_a_home_assistant_state_waiting_for_its_time_survives_a_restart(
        tmp_path: Path) -> None:
    first = _ingest(tmp_path, HA)
    base = "homeassistant/binary_sensor/front_door"
    assert first.handle([(f"{base}/state", b"on", T0, False)])  # acknowledged, no reading yet
    assert first.store.count() == 0
    again = _ingest(tmp_path, HA)  # a new process on the same store
    assert again.handle([(f"{base}/last_updated", b"2026-11-28T07:14:59+00:00", T0 + 1, False)])
    assert [(r.device, r.value, r.ts) for r in again.store.export()] == \
        [("front-door", 1.0, datetime(2026, 11, 28, 7, 14, 59, tzinfo=UTC))]
    assert again.store.pending() == {}


def test_the_readmes_example_home_with_sources_loads_without_warnings(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("```yaml\nhome: h001", 1)[1].split("```", 1)[0]
    (tmp_path / "homes").mkdir()
    (tmp_path / "homes" / "h001.yaml").write_text("home: h001" + example)
    config = load_config(tmp_path)
    assert [s.type for s in config.homes["h001"].sources] == \
        ["zigbee2mqtt", "home_assistant", "json"]
    assert not [w for w in config.warnings if "sources" in w]


def test_a_state_taken_by_one_ingest_worker_meets_its_time_at_another(tmp_path: Path) -> None:
    """Two workers on a shared subscription and one store: the broker may hand a state to
    one and its last_updated to the other."""
    one = _ingest(tmp_path, HA)
    other = _ingest(tmp_path, HA)  # started at the same time: nothing stored yet
    base = "homeassistant/binary_sensor/front_door"
    assert one.handle([(f"{base}/state", b"on", T0, False)])
    assert other.handle([(f"{base}/last_updated", b"2026-11-28T07:14:59+00:00", T0, False)])
    assert [(r.device, r.value) for r in other.store.export()] == [("front-door", 1.0)]
    assert other.store.pending() == {}
    # The next change goes the other way round: the first worker must not pair its time
    # with the state it remembers from before ("on"), which the other already used.
    assert other.handle([(f"{base}/state", b"off", T0 + 60, False)])
    assert one.handle([(f"{base}/last_updated", b"2026-11-28T07:15:59+00:00", T0 + 60, False)])
    assert [(r.value, r.ts.minute) for r in one.store.export()] == [(1.0, 14), (0.0, 15)]


def test_a_mapping_that_fails_on_an_odd_message_sets_it_aside_not_the_batch(
        tmp_path: Path) -> None:
    odd = {"type": "json", "name": "odd-hub", "devices": [
        {"topic": "hubs/h001/t", "device": "lounge-temp", "value": "abs(data.t)"}]}
    service = _ingest(tmp_path, odd, Z2M)
    assert service.handle([("hubs/h001/t", b'{"data": {"t": "warm"}}', T0, False),
                           ("z2m/h001/Front door", b'{"contact": false}', T0, False)])
    assert [(d.code, "odd-hub" in d.reason) for d in service.store.dead_letters()] == \
        [("mapping_failed", True)]
    assert [r.device for r in service.store.export()] == ["front-door"]
