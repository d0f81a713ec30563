"""Hostile input at scale: a million fuzzed messages mixed with 10,000 valid readings, through
a real Mosquitto into `telecare run`, in one run on this machine.

    .venv/bin/python benchmarks/fuzz_flood.py [--fuzz 1000000] [--valid 10000] [--seed 1]

Each fuzzed message is made to be refused for a known reason (malformed JSON, random bytes,
NaN, wrong types, values out of range, a clock a year ahead, unknown kinds, bad ids, payloads
over 4 KiB, and a flood of made-up home ids), so the run can check that every rejection is
counted under its own reason. Checks: the process survives; exactly the valid readings are
stored; the count of each reason in /metrics equals what was sent; resident memory (RSS)
before and after the flood. Prints the figures; exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
import yaml  # noqa: E402

from tests.conftest import Mosquitto, _free_port  # noqa: E402

BIN = Path(sys.executable).parent
HOMES = [f"f{i:03d}" for i in range(10)]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fuzzed(rng: random.Random, now: datetime) -> Iterator[tuple[str, bytes, str]]:
    """Endless (topic, payload, the reason it must be refused for)."""
    ts = now.isoformat()
    good_topic = "telecare/v1/{}/lounge-temp/temperature"
    while True:
        home = rng.choice(HOMES)
        pick = rng.randrange(11)
        if pick == 0:
            yield good_topic.format(home), rng.randbytes(rng.randrange(1, 200)) + b"\xff", \
                "bad_utf8"
        elif pick == 1:
            yield good_topic.format(home), b'{"ts": "' + ts.encode() + b'", "value": ', \
                "bad_json"
        elif pick == 2:
            yield good_topic.format(home), json.dumps({"ts": ts, "value": "warm"}).encode(), \
                "bad_value"
        elif pick == 3:
            yield good_topic.format(home), \
                json.dumps({"ts": ts, "value": rng.uniform(200, 1e9)}).encode(), "bad_value"
        elif pick == 4:
            ahead = (now + timedelta(days=rng.randrange(1, 3650))).isoformat()
            yield good_topic.format(home), json.dumps({"ts": ahead, "value": 20}).encode(), \
                "future_ts"
        elif pick == 5:
            yield f"telecare/v1/{home}/d1/{rng.choice(['smell', 'Motion', 'x' * 30])}", \
                json.dumps({"ts": ts, "value": 1}).encode(), "unknown_kind"
        elif pick == 6:
            yield f"telecare/v1/{home}/bad device/motion", \
                json.dumps({"ts": ts, "value": 1}).encode(), "bad_device"
        elif pick == 7:
            yield good_topic.format(home), json.dumps({"ts": ts, "value": 20,
                                                       "pad": "x" * 5000}).encode(), \
                "too_large"
        elif pick == 8:
            yield good_topic.format(home), b"[1, 2, 3]", "not_object"
        elif pick == 9:
            yield good_topic.format(home), json.dumps({"ts": "yesterday", "value": 1}).encode(), \
                "bad_ts"
        else:  # a flood of made-up homes: each id new
            yield good_topic.format(f"ghost{rng.getrandbits(40):x}"), \
                json.dumps({"ts": ts, "value": 20}).encode(), "unknown_home"


def metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("telecare_ingest_dead_letter_reasons_total{") or \
                line.startswith("telecare_ingest_received_total "):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fuzz", type=int, default=1_000_000)
    ap.add_argument("--valid", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="telecare-fuzz-"))
    (work / "config" / "homes").mkdir(parents=True)
    for home in HOMES:
        (work / "config" / "homes" / f"{home}.yaml").write_text(yaml.safe_dump({
            "home": home, "timezone": "Europe/London",
            "devices": [{"id": "lounge-temp", "kind": "temperature", "room": "lounge"}]}))
    broker = Mosquitto()
    broker.start()
    port = _free_port()
    service = subprocess.Popen(
        [str(BIN / "telecare"), "run", "--config", str(work / "config"), "--data",
         str(work / "data"), "--mqtt", broker.url, "--metrics-port", str(port),
         "--log-level", "error"], stderr=open(work / "service.log", "w"))  # noqa: SIM115 (lives as long as the service)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                metrics(port)
                break
            except OSError:
                time.sleep(0.2)
        now = datetime.now(UTC)
        valid_at = sorted(rng.sample(range(args.fuzz + args.valid), args.valid))
        time.sleep(1)
        rss_start = rss_mb(service.pid)
        sent: Counter[str] = Counter()
        source = fuzzed(rng, now)
        next_valid = 0
        infos = []
        started = time.monotonic()
        for i in range(args.fuzz + args.valid):
            if next_valid < len(valid_at) and valid_at[next_valid] == i:
                home = HOMES[next_valid % len(HOMES)]
                ts = (now - timedelta(hours=3) + timedelta(seconds=next_valid)).isoformat()
                topic = f"telecare/v1/{home}/lounge-temp/temperature"
                payload = json.dumps({"ts": ts, "value": 19.5, "seq": next_valid}).encode()
                next_valid += 1
            else:
                topic, payload, reason = next(source)
                sent[reason] += 1
            infos.append(client.publish(topic, payload, qos=1))
            if len(infos) >= 5000:
                for info in infos:
                    info.wait_for_publish(60)
                infos = []
            if i % 100_000 == 0 and i:
                print(f"  {i:,} published, {i / (time.monotonic() - started):,.0f}/s, "
                      f"RSS {rss_mb(service.pid):.0f} MB", flush=True)
        for info in infos:
            info.wait_for_publish(60)
        published = time.monotonic() - started
        total = args.fuzz + args.valid
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            m = metrics(port)
            if m.get("telecare_ingest_received_total", 0) >= total:
                break
            time.sleep(1)
        drained = time.monotonic() - started
        rss_end = rss_mb(service.pid)
        m = metrics(port)
        alive = service.poll() is None
    finally:
        client.loop_stop()
        client.disconnect()
        service.send_signal(signal.SIGTERM)
        code = service.wait(120)
        broker.stop()
    with sqlite3.connect(work / "data" / "telecare.db") as conn:
        stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        kept = conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        flood = conn.execute("SELECT coalesce(sum(count), 0) FROM dead_letter_overflow"
                             ).fetchone()[0]
        overflow_rows = conn.execute("SELECT count(*) FROM dead_letter_overflow").fetchone()[0]
    counted = {k.split('reason="')[1].rstrip('"}'): int(v) for k, v in m.items()
               if "reason=" in k}
    print(f"published {total:,} messages ({args.fuzz:,} fuzzed, {args.valid:,} valid) in "
          f"{published:.0f} s; all taken in after {drained:.0f} s")
    print(f"service alive throughout: {alive}; exit status on SIGTERM: {code}")
    print(f"readings stored: {stored:,} (valid sent: {args.valid:,})")
    print(f"set aside: {kept:,} kept one by one + {flood:,} counted past the flood limit "
          f"({overflow_rows} counter rows) = {kept + flood:,}")
    print(f"{'reason':14} {'sent':>9} {'counted':>9}")
    ok = alive and code == 0 and stored == args.valid and kept + flood == args.fuzz
    for reason in sorted(set(sent) | set(counted)):
        print(f"{reason:14} {sent[reason]:>9,} {counted.get(reason, 0):>9,}")
        ok &= sent[reason] == counted.get(reason, 0)
    print(f"RSS of telecare run: {rss_start:.0f} MB before the flood, {rss_end:.0f} MB after")
    print("all checks passed" if ok else "A CHECK FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
