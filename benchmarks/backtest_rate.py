"""Benchmark: backtest speed (readings per second) and detection memory per home, 1,000 homes.

    .venv/bin/python benchmarks/backtest_rate.py [--bundle DIR] [--homes 1000] [--days 3]

Simulates the bundle if DIR has none (not timed). Then, in one process: parse and sort the
readings (timed apart), run the detector over them with every default rule (timed: readings
per second), and measure the detector's memory as the growth of the process's resident set
over the run, divided by the homes; also the size of each home's saved state (the JSON the
live service checkpoints). The whole `telecare backtest` command is timed too, for the rate
a user sees.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from detect.backtest import read_readings  # noqa: E402
from detect.engine import Detector  # noqa: E402
from detect.rules import load_config  # noqa: E402

BIN = Path(sys.executable).parent


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bundle", type=Path, default=None)
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    bundle = args.bundle or Path(tempfile.mkdtemp(prefix="telecare-bt-"))
    if not (bundle / "readings.jsonl").exists():
        subprocess.run([str(BIN / "telecare"), "simulate", "--homes", str(args.homes),
                        "--days", str(args.days), "--seed", str(args.seed), "--out",
                        str(bundle)], check=True)
    config = load_config(bundle)

    t0 = time.perf_counter()
    with open(bundle / "readings.jsonl", encoding="utf-8") as f:
        readings = read_readings(f, Counter())
    readings.sort(key=lambda r: r.ts)
    t1 = time.perf_counter()
    gc.collect()
    before = rss_mb()
    detector = Detector(config)
    alerts = 0
    t2 = time.perf_counter()
    for reading in readings:
        alerts += len(detector.process(reading))
    t3 = time.perf_counter()
    gc.collect()
    after = rss_mb()
    homes = len(detector.homes)
    state_bytes = sum(len(json.dumps(detector.state_of(h))) for h in detector.homes)

    t4 = time.perf_counter()
    subprocess.run([str(BIN / "telecare"), "backtest", "--readings",
                    str(bundle / "readings.jsonl"), "--config", str(bundle), "--out",
                    str(bundle / "alerts.jsonl")], check=True, capture_output=True)
    t5 = time.perf_counter()

    n = len(readings)
    print(f"{homes} homes, {n:,} readings, {alerts} alert changes")
    print(f"parse + sort: {t1 - t0:.1f} s ({n / (t1 - t0):,.0f} readings/s)")
    print(f"detection: {t3 - t2:.1f} s ({n / (t3 - t2):,.0f} readings/s)")
    print(f"telecare backtest, whole command: {t5 - t4:.1f} s ({n / (t5 - t4):,.0f} readings/s)")
    print(f"detector memory: {after - before:.0f} MB over the run = "
          f"{(after - before) * 1024 / homes:.0f} KB per home; saved state "
          f"{state_bytes / homes / 1024:.1f} KB per home (JSON)")
    print(f"readings held for the sort: {before:.0f} MB resident before detection")


if __name__ == "__main__":
    main()
