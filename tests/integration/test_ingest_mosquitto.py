"""Ingest against a real Mosquitto: bad input is set aside with reasons, good input is stored
exactly once, and the service keeps going."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from detect.rules import load_config
from ingest.store import ReadingStore
from simulators.replay import Publisher
from telecare.app.pipeline import Pipeline
from telecare.db import connect
from telecare.mqtt import BrokerUrl
from tests.builders import write_home
from tests.conftest import Mosquitto


def wait(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def good(home: str, i: int) -> tuple[str, bytes]:
    device, kind, value = [("kitchen-pir", "motion", 1), ("lounge-temp", "temperature", 19.5),
                           ("kettle-plug", "power", 2000)][i % 3]
    payload = {"ts": 1767600000 + i, "value": value, "seq": i}
    return f"telecare/v1/{home}/{device}/{kind}", json.dumps(payload).encode()


def malformed(home: str, i: int) -> tuple[str, bytes, str]:
    topic = f"telecare/v1/{home}/kitchen-pir/motion"
    ok = {"ts": 1767600000 + i, "value": 1}
    cases = [
        (topic, b'{"ts": 1767600000, "value": ', "bad_json"),
        (topic, json.dumps({"ts": 1767600000, "value": "on"}).encode(), "bad_value"),
        (topic, b'{"ts": 1767600000, "value": NaN}', "bad_json"),
        (f"telecare/v1/{home}/kitchen-pir/teleport", json.dumps(ok).encode(), "unknown_kind"),
        (f"telecare/v1/{home}/kitchen pir/motion", json.dumps(ok).encode(), "bad_device"),
        (topic, json.dumps({**ok, "pad": "x" * 5000}).encode(), "too_large"),
        (topic, json.dumps({"ts": "2026-01-05 09:00", "value": 1}).encode(), "bad_ts"),
        (f"telecare/v1/{home}/{'d' * 65}/motion", json.dumps(ok).encode(), "bad_device"),
        (f"telecare/v1/{home}/a/b/motion", json.dumps(ok).encode(), "bad_topic"),
        (topic, json.dumps({"ts": True, "value": 1}).encode(), "bad_ts"),
    ]
    return cases[i % len(cases)]


def test_1000_readings_with_50_malformed_store_exactly_950_and_dead_letter_50(
        tmp_path: Path, mosquitto: Mosquitto, unique_home: str) -> None:
    config = load_config(write_home(tmp_path / "config", unique_home))
    url = BrokerUrl.parse(mosquitto.url)
    pipeline = Pipeline(config, tmp_path / "data", url, "5", stages=("ingest",),
                        topic=f"telecare/v1/{unique_home}/#")
    pipeline.start()
    try:
        assert pipeline.wait_connected(10)
        expected_codes: Counter[str] = Counter()
        with Publisher(url) as pub:
            infos = []
            bad_i = 0
            for i in range(1000):
                if i % 20 == 7:  # 50 of the 1,000, spread through the stream
                    topic, payload, code = malformed(unique_home, bad_i)
                    bad_i += 1
                    expected_codes[code] += 1
                else:
                    topic, payload = good(unique_home, i)
                infos.append(pub.publish(topic, payload))
            for info in infos:
                info.wait_for_publish(10)
        assert pipeline.ingest is not None
        counters = pipeline.ingest.counters
        assert wait(lambda: counters["received"] >= 1000), counters
        store = ReadingStore(connect(tmp_path / "data"))
        assert store.count() == 950
        letters = store.dead_letters()
        assert len(letters) == 50
        assert Counter(d.code for d in letters) == expected_codes
        assert all(d.reason for d in letters)
        assert counters["dead_lettered"] == 50 and counters["stored"] == 950

        # Still up: a good reading after the flood is stored; a resend of one is not.
        with Publisher(url) as pub:
            pub.publish(*good(unique_home, 5000)).wait_for_publish(5)
            pub.publish(*good(unique_home, 1)).wait_for_publish(5)
        assert wait(lambda: counters["received"] >= 1002)
        assert store.count() == 951
        assert counters["duplicates"] == 1
    finally:
        pipeline.stop()


def test_readings_published_while_ingest_is_stopped_arrive_when_it_returns(
        tmp_path: Path, mosquitto: Mosquitto, unique_home: str) -> None:
    """The persistent MQTT v5 session (clean_start False plus a session expiry) keeps QoS 1
    messages for a stopped subscriber."""
    config = load_config(write_home(tmp_path / "config", unique_home))
    url = BrokerUrl.parse(mosquitto.url)

    def pipeline() -> Pipeline:
        return Pipeline(config, tmp_path / "data", url, "5", stages=("ingest",),
                        topic=f"telecare/v1/{unique_home}/#")

    first = pipeline()
    first.start()
    assert first.wait_connected(10)
    first.stop()
    with Publisher(url) as pub:
        for info in [pub.publish(*good(unique_home, i)) for i in range(300)]:
            info.wait_for_publish(10)
    second = pipeline()
    second.start()
    try:
        store = ReadingStore(connect(tmp_path / "data"))
        assert wait(lambda: store.count() == 300), store.count()
    finally:
        second.stop()
