"""Benchmark: the console's queue under load, in one run on this machine.

    .venv/bin/python benchmarks/console_queue.py [--homes 1000] [--clients 50]

1. Server time of the queue: 1,000 homes with one open alert each (routed, so each has its
   escalation and notifications), the queue page and its fragment asked 20 times each by a
   logged-in operator through the real HTTP server (uvicorn), as the first request after a
   change (rendered afresh) and again (the rendering shared by everyone with that view); the
   time is the request's wall time on the loopback, which is nearly all server.
2. Fan-out: `--clients` event-stream clients logged in (plain HTTP clients reading
   `/events`, each then fetching `/queue` as the page's script does), then one alert is
   added; the time from its commit until each client has the new queue, p50 and p99. Done
   with 10 open alerts and with the 1,000.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alerts.store import AlertStore  # noqa: E402
from detect.rules import load_config  # noqa: E402
from telecare.alert import Alert  # noqa: E402
from telecare.app.console.users import Users  # noqa: E402
from telecare.app.console.web import Console, serve  # noqa: E402
from telecare.db import Transaction, connect  # noqa: E402
from tests.builders import write_home  # noqa: E402
from tests.conftest import _free_port  # noqa: E402


def login(base: str) -> requests.Session:
    s = requests.Session()
    token = re.search(r'name="token" value="([^"]+)"', s.get(f"{base}/login").text)
    assert token
    s.post(f"{base}/login", data={"name": "op", "password": "pw", "token": token.group(1)})
    return s


def add_alerts(data: Path, homes: list[str], tag: str) -> float:
    store = AlertStore(connect(data))
    now = datetime.now(UTC)
    with Transaction(store.conn) as c:
        store.record_in(c, [Alert(f"{h}:inactivity:{tag}", h, "inactivity", "high", now,
                                  "firing", f"No activity seen at {h} since 07:00.", {})
                            for h in homes])
    return time.time()


def fan_out(base: str, data: Path, clients: int, tag: str) -> list[float]:
    sessions = [login(base) for _ in range(clients)]
    got: list[float] = []
    ready = threading.Barrier(clients + 1)
    lock = threading.Lock()

    def client(s: requests.Session) -> None:
        r = s.get(f"{base}/events", stream=True, timeout=30)
        ready.wait()
        for chunk in r.iter_content(chunk_size=None):
            if b"changed" in chunk:
                page = s.get(f"{base}/queue", timeout=30).text
                if tag in page:
                    with lock:
                        got.append(time.time())
                    r.close()
                    return

    threads = [threading.Thread(target=client, args=(s,), daemon=True) for s in sessions]
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(0.5)  # every stream has read its first line and is waiting
    at = add_alerts(data, ["h0000"], tag)
    for t in threads:
        t.join(30)
    return sorted(g - at for g in got)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--homes", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        homes = [f"h{i:04d}" for i in range(args.homes)]
        for h in homes:
            write_home(root / "config", h, contacts=[
                {"name": "Asha", "webhook": "http://127.0.0.1:9/a"},
                {"name": "Ben", "webhook": "http://127.0.0.1:9/b"}],
                escalation={"ack_within": "10m"})
        config = load_config(root / "config")
        data = root / "data"
        Users(connect(data)).add("op", "operator", [], "pw")
        console = Console(config, data)
        port = _free_port()
        stop = threading.Event()
        threading.Thread(target=serve, args=(console, "127.0.0.1", port, stop),
                         daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(f"{base}/login", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)

        add_alerts(data, homes[:10], "small")
        console.service.route()
        small = fan_out(base, data, args.clients, "fanout-small")
        add_alerts(data, homes[10:], "big")
        console.service.route()
        s = login(base)
        for path in ("/", "/queue"):
            for fresh in (True, False):
                times = []
                for _ in range(20):
                    if fresh:  # as after a change: nothing rendered yet at this version
                        console._rendered.clear()
                    t0 = time.perf_counter()
                    r = s.get(f"{base}{path}")
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 200
                n = r.text.count('class="alert ')
                print(f"{path:7} {n} open alerts, {'first after a change' if fresh else 'again'}"
                      f": median {statistics.median(times) * 1000:.0f} ms, max "
                      f"{max(times) * 1000:.0f} ms ({len(r.content) // 1024} KiB)")
        big = fan_out(base, data, args.clients, "fanout-big")
        for name, got in (("10 open alerts", small), (f"{args.homes} open alerts", big)):
            if len(got) < args.clients:
                print(f"fan-out, {name}: only {len(got)} of {args.clients} clients updated")
                continue
            p99 = got[min(len(got) - 1, int(0.99 * len(got)))]
            print(f"fan-out to {args.clients} clients, {name}: p50 "
                  f"{statistics.median(got) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
        stop.set()


if __name__ == "__main__":
    main()
