"""Benchmark: loading 10,000 homes' configuration, as each process of a service does at start.

    .venv/bin/python benchmarks/config_load.py [--homes 10000]

Each figure is a fresh process timing `load_config` (imports excluded): `cold` with an empty
cache folder (every home file parsed by PyYAML, as at the first start after an install or
after every file changed), `warm` with the cache the cold run left (`telecare.yamlcache`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMED = """
import sys, time
from detect.rules import load_config
began = time.perf_counter()
config = load_config(sys.argv[1])
print(len(config.homes), time.perf_counter() - began)
"""


def timed(config: Path, cache: Path) -> float:
    out = subprocess.run([sys.executable, "-c", TIMED, str(config)], check=True,
                         capture_output=True, text=True, cwd=ROOT,
                         env={"TELECARE_CACHE_DIR": str(cache), "PATH": "/usr/bin:/bin"}
                         ).stdout.split()
    return float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="telecare-bench-config-"))
    subprocess.run([str(Path(sys.executable).parent / "telecare"), "simulate", "--homes",
                    str(args.homes), "--days", "1", "--out", str(work / "config")],
                   check=True, capture_output=True)
    cache = work / "cache"
    cold = [timed(work / "config", work / f"empty-{i}") for i in range(2)]
    warm = [timed(work / "config", cache) for _ in range(4)][1:]  # the first fills it
    print(json.dumps({"homes": args.homes, "cold_s": round(min(cold), 2),
                      "warm_s": round(min(warm), 2), "warm_runs_s": [round(w, 2) for w in warm]},
                     indent=2))


if __name__ == "__main__":
    main()
