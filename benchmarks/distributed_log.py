"""Benchmark: the reading log on NATS JetStream, side by side in one run on this machine.

    .venv/bin/python benchmarks/distributed_log.py [--messages 100000] [--homes 60 --days 5]

Ingest (MQTT to the log): the same number of QoS 1 messages (100 homes, about 110 bytes) are
queued beforehand in a persistent session on a real Mosquitto, then drained by
  bare        a paho-mqtt subscriber that only counts (as in benchmarks/ingest_rate.py)
  ingest-log  `telecare ingest --log nats://...`: judge, publish to JetStream with
              Nats-Msg-Id, wait for every PubAck, then acknowledge the MQTT batch
Detection (the log to alerts): a simulated bundle's readings are logged once, then drained by
  detect-1    one `telecare detect --log ... --partition 0/1` from an empty checkpoint
  detect-2    two workers (`0/2`, `1/2`) at once, each with its own data folder
and `telecare backtest` on the same readings for reference. Rates are per second from the
first message (or reading) handled to the last; the ratios carry over to other machines.
One nats-server node (R1); each worker in a process of its own. With `--postgres` the
detection workers commit their alerts and checkpoints to a PostgreSQL started here (a fresh
database for each drain) instead of their own SQLite files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest_rate import BARE, drain_time, make_session, publish  # noqa: E402

from telecare.natslog import STREAM, NatsLog  # noqa: E402
from telecare.reading import parse_jsonl_line  # noqa: E402
from tests.builders import write_home  # noqa: E402
from tests.conftest import Mosquitto, NatsCluster, PostgresServer  # noqa: E402

BIN = Path(sys.executable).parent
TELECARE = str(BIN / "telecare")


def consumer_state(log: NatsLog, durable: str) -> tuple[int, int, int] | None:
    """(delivered, pending, waiting for ack) of a consumer; None if it is not there yet."""
    import nats.js.errors

    async def ask() -> tuple[int, int, int] | None:
        assert log._js is not None
        try:
            info = await log._js.consumer_info(STREAM, durable)
        except nats.js.errors.NotFoundError:
            return None
        return (int(info.delivered.stream_seq), int(info.num_pending or 0),
                int(info.num_ack_pending or 0))

    return log._run(ask())


def ingest_to_log(port: int, url: str, total: int, work: Path) -> float:
    config = work / "config-log"
    for i in range(100):
        write_home(config, f"log{i:03d}")
    args = [TELECARE, "ingest", "--config", str(config), "--data", str(work / "data-log"),
            "--mqtt", f"mqtt://127.0.0.1:{port}", "--mqtt-protocol", "5", "--log", url,
            "--log-level", "warning"]
    p = subprocess.Popen(args)  # makes the session (and the stream), then goes
    time.sleep(2.5)
    p.terminate()
    p.wait(30)
    publish(port, "log", total)
    log = NatsLog(url).open()
    before = log.last_sequence()
    running = subprocess.Popen(args)
    took = drain_time(lambda: log.last_sequence() - before, total)
    running.terminate()
    running.wait(30)
    log.close()
    return took


def detect_drain(url: str, bundle: Path, work: Path, workers: int, tag: str,
                 db: str | None = None) -> float:
    log = NatsLog(url).open()
    env = dict(os.environ)
    if db is not None:
        env.update(TELECARE_DB_URL=db, TELECARE_DB_USER="telecare")
    durables = [f"detect-{i}-of-{workers}" for i in range(workers)]
    procs = [subprocess.Popen([TELECARE, "detect", "--config", str(bundle), "--data",
                               str(work / f"detect-{tag}-{i}"), "--log", url, "--partition",
                               f"{i}/{workers}", "--log-level", "warning"], env=env)
             for i in range(workers)]
    first: float | None = None
    started = time.perf_counter()
    try:
        while True:
            states = [consumer_state(log, d) for d in durables]
            if first is None and any(s is not None and s[0] > 0 for s in states):
                first = time.perf_counter()
            if all(s is not None and s[0] > 0 and s[1] == 0 and s[2] == 0 for s in states):
                break
            if time.perf_counter() - started > 1800:
                raise RuntimeError(f"not drained: {states}")
            time.sleep(0.05)
        end = time.perf_counter()
    finally:
        for p in procs:
            p.terminate()
            p.wait(60)
        log.close()
    assert first is not None
    return end - first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--homes", type=int, default=60)
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--part", choices=["all", "ingest", "detect"], default="all")
    parser.add_argument("--postgres", action="store_true",
                        help="detection commits to a PostgreSQL started here")
    args = parser.parse_args()
    postgres = PostgresServer() if args.postgres else None
    if postgres is not None:
        postgres.start()
    figures: dict[str, object] = {"cores": os.cpu_count()}
    total = args.messages
    work = Path(tempfile.mkdtemp(prefix="telecare-bench-log-"))
    broker = Mosquitto()
    broker.start()
    nats_node = NatsCluster(1)
    nats_node.start()
    url = nats_node.url("partitions=16")
    try:
        if args.part in ("all", "ingest"):
            make_session(broker.port, "bench-bare", "telecare/v1/#")
            publish(broker.port, "bare", total)
            out = subprocess.run([sys.executable, "-c", BARE, str(broker.port), "bench-bare",
                                  "telecare/v1/#", str(total)], capture_output=True, text=True,
                                 check=True).stdout.split()
            bare_rate = int(out[0]) / float(out[1])
            import paho.mqtt.client as mqtt

            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-bare",
                            protocol=mqtt.MQTTv5)
            c.connect("127.0.0.1", broker.port, clean_start=True)  # end the bare session
            c.disconnect()
            log_rate = total / ingest_to_log(broker.port, url, total, work)
            figures.update({"messages": total, "bare_paho_msg_s": round(bare_rate),
                            "ingest_to_jetstream_msg_s": round(log_rate),
                            "ratio_ingest_log_to_bare": round(log_rate / bare_rate, 2)})
        if args.part in ("all", "detect"):
            bundle = work / "bundle"
            subprocess.run([TELECARE, "simulate", "--homes", str(args.homes), "--days",
                            str(args.days), "--seed", "11", "--out", str(bundle), "--rate",
                            "0.1"], check=True, capture_output=True)
            lines = (bundle / "readings.jsonl").read_text().splitlines()
            readings = sorted((parse_jsonl_line(line) for line in lines), key=lambda r: r.ts)
            log = NatsLog(url).open()
            now = datetime.now(UTC)
            for i in range(0, len(readings), 1000):
                log.append(readings[i:i + 1000], [now] * len(readings[i:i + 1000]))
            log.close()
            logged = len({r.dedupe_key() for r in readings})
            began = time.perf_counter()
            subprocess.run([TELECARE, "backtest", "--readings", str(bundle / "readings.jsonl"),
                            "--config", str(bundle), "--out", str(work / "expected.jsonl")],
                           check=True, capture_output=True)
            backtest_s = time.perf_counter() - began
            one = logged / detect_drain(url, bundle, work, 1, "one",
                                        postgres.database() if postgres else None)
            two = logged / detect_drain(url, bundle, work, 2, "two",
                                        postgres.database() if postgres else None)
            figures.update({"alert_store": "postgresql" if postgres else "embedded",
                            "readings_logged": logged,
                            "backtest_readings_s (whole command)": round(logged / backtest_s),
                            "detect_1_worker_readings_s": round(one),
                            "detect_2_workers_readings_s": round(two),
                            "ratio_2_workers_to_1": round(two / one, 2)})
        print(json.dumps(figures, indent=2))
    finally:
        nats_node.stop()
        broker.stop()
        if postgres is not None:
            postgres.close()
        asyncio.set_event_loop(None)


if __name__ == "__main__":
    main()
