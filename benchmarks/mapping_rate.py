"""Benchmark: ingest's rate for bridged homes against native ones, in one run on this machine.

    .venv/bin/python benchmarks/mapping_rate.py [--homes 20] [--days 7]

A simulated bundle (full layout) is re-published by `simulators.bridges` as each bridge would
send it (Zigbee2MQTT, a Home Assistant statestream with timestamps, a vendor JSON hub), and
each stream is handed to `IngestService.handle` in batches of 500, as the MQTT subscriber
hands them, storing into a fresh SQLite store. No broker: this measures judging, mapping and
storing. Figures: messages and readings per second, and each bridge's readings-per-second
against native's (the ratio is what carries over to other machines).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect.rules import load_config  # noqa: E402
from ingest.mapping import SourceMapper  # noqa: E402
from ingest.service import IngestService  # noqa: E402
from ingest.store import ReadingStore  # noqa: E402
from simulators.bridges import write_bridged  # noqa: E402
from telecare.db import connect  # noqa: E402

BIN = Path(sys.executable).parent


def measure(config_dir: Path, stream: Path, data: Path) -> tuple[int, int, float]:
    config = load_config(config_dir)
    store = ReadingStore(connect(data))
    service = IngestService(store, known_home=config.known,
                            mapper=SourceMapper(config.homes.values()))
    with open(stream, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if "topic" in rows[0]:
        messages = [(m["topic"], m["payload"].encode(), 0.0, False) for m in rows]
    else:
        from telecare.reading import reading_from_fields

        messages = [(r.topic, json.dumps(r.payload()).encode(), 0.0, False) for r in
                    (reading_from_fields(o["home"], o["device"], o["kind"], o) for o in rows)]
    start = time.perf_counter()
    for i in range(0, len(messages), 500):
        assert service.handle(messages[i:i + 500])
    took = time.perf_counter() - start
    return len(messages), store.count(), took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=20)
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bundle = root / "bundle"
        subprocess.run([str(BIN / "telecare"), "simulate", "--homes", str(args.homes),
                        "--days", str(args.days), "--seed", "3", "--out", str(bundle),
                        "--layout", "full", "--network", "clean"], check=True,
                       capture_output=True)
        results = {"native": measure(bundle, bundle / "readings.jsonl", root / "d-native")}
        for bridge in ("zigbee2mqtt", "home_assistant", "json"):
            out = root / bridge
            write_bridged(bundle, out, bridge)
            results[bridge] = measure(out, out / "messages.jsonl", root / f"d-{bridge}")
    base = results["native"][1] / results["native"][2]
    print(f"{'stream':16} {'messages':>9} {'readings':>9} {'msg/s':>9} {'readings/s':>11} "
          f"{'vs native':>9}")
    for name, (n, stored, took) in results.items():
        print(f"{name:16} {n:9d} {stored:9d} {n / took:9.0f} {stored / took:11.0f} "
              f"{stored / took / base:9.2f}")


if __name__ == "__main__":
    main()
