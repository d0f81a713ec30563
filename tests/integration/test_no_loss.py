"""At-least-once from the broker to the time-series database, with de-duplication: nothing
lost and nothing doubled while the ingest process is killed and the database is down."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from simulators.replay import Publisher
from telecare.mqtt import BrokerUrl
from tests.builders import write_home
from tests.conftest import Mosquitto, VictoriaMetrics

TELECARE = str(Path(sys.executable).parent / "telecare")
TOTAL = 100_000
DEVICES = 10
T0_MS = 1_767_600_000_000  # 2026-01-05T08:00:00Z
# The routine lane's subscription, not the urgent lane's (which comes first): before the
# first start has it, the new session has nothing to queue for, and MQTT drops what is sent.
ROUTINE_SUBSCRIBED = "subscribed to telecare/v1/#"


def start_ingest(config: Path, data: Path, mqtt: str, influx: str, log: Path
                 ) -> subprocess.Popen[bytes]:
    out = open(log, "ab")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen([TELECARE, "ingest", "--config", str(config), "--data", str(data),
                             "--mqtt", mqtt, "--influx", influx, "--mqtt-protocol", "5"],
                            stdout=out, stderr=out)


def wait_log(log: Path, text: str, count: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count(text) >= count:
            return True
        time.sleep(0.05)
    return False


def stored(data: Path, home: str) -> tuple[int, int]:
    with sqlite3.connect(data / "telecare.db", timeout=30) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT device || ':' || seq) FROM readings WHERE home=?",
            (home,)).fetchone()
    return int(rows), int(distinct)


def in_database(server: VictoriaMetrics, home: str) -> tuple[int, int]:
    samples = distinct = 0
    for series in server.export(f'{{__name__="power_value",home="{home}"}}'):
        samples += len(series["timestamps"])
        distinct += len(set(series["timestamps"]))
    return samples, distinct


def publish_all(url: BrokerUrl, home: str, done: threading.Event) -> None:
    with Publisher(url, f"no-loss-{home}") as pub:
        pending = []
        for i in range(TOTAL):
            device = f"plug{i % DEVICES}"
            payload = {"ts": (T0_MS + i * 10) / 1000, "value": i % 3000, "seq": i // DEVICES}
            pending.append(pub.publish(f"telecare/v1/{home}/{device}/power",
                                       json.dumps(payload).encode()))
            if len(pending) >= 500:
                for info in pending:
                    info.wait_for_publish(60)
                pending = []
                time.sleep(0.1)  # about 4,000 a second: the kills land mid-stream
        for info in pending:
            info.wait_for_publish(60)
    done.set()


def test_100000_readings_through_two_ingest_kills_and_30s_of_database_down_arrive_once(
        tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics, unique_home: str
) -> None:
    config = write_home(tmp_path / "config", unique_home)
    data, log = tmp_path / "data", tmp_path / "ingest.log"
    ingest = start_ingest(config, data, mosquitto.url, victoria.url, log)
    assert wait_log(log, ROUTINE_SUBSCRIBED, 1), log.read_text()
    done = threading.Event()
    publisher = threading.Thread(target=publish_all,
                                 args=(BrokerUrl.parse(mosquitto.url), unique_home, done))
    publisher.start()
    try:
        time.sleep(3)
        ingest.send_signal(signal.SIGKILL)  # first kill, mid-stream
        ingest.wait(10)
        time.sleep(1)
        ingest = start_ingest(config, data, mosquitto.url, victoria.url, log)
        assert wait_log(log, ROUTINE_SUBSCRIBED, 2)
        time.sleep(2)
        victoria.stop()  # the database goes away for 30 s
        down_since = time.monotonic()
        time.sleep(3)
        ingest.send_signal(signal.SIGKILL)  # second kill, while the database is down
        ingest.wait(10)
        time.sleep(1)
        ingest = start_ingest(config, data, mosquitto.url, victoria.url, log)
        assert wait_log(log, ROUTINE_SUBSCRIBED, 3)
        time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
        victoria.start()
        publisher.join(300)
        assert done.is_set(), "the publisher did not finish"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if stored(data, unique_home)[0] >= TOTAL and \
                    in_database(victoria, unique_home)[1] >= TOTAL:
                break
            time.sleep(1)
    finally:
        ingest.send_signal(signal.SIGTERM)
        ingest.wait(60)
        if victoria.proc is None:
            victoria.start()
    rows, distinct = stored(data, unique_home)
    assert (rows, distinct) == (TOTAL, TOTAL)
    samples, distinct_samples = in_database(victoria, unique_home)
    assert (samples, distinct_samples) == (TOTAL, TOTAL)
    text = log.read_text(errors="replace")
    assert "time-series database write failed" in text  # it really was down meanwhile
    assert "draining the spool" in text
