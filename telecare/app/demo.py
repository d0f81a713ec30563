"""`telecare demo`: one simulated home through the live pipeline, end to end, on this machine.

Two simulated winter days (a pendant press in the afternoon, a heating failure that night, a
fall and a long lie the next morning) are published over real MQTT (Mosquitto if one answers
on the default port, else the embedded broker), ingested, stored, detected and sent to a
carer's webhook served here; each alert is printed as it reaches the carer, in plain words.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import click
import yaml

from detect.rules import load_config
from telecare.app.broker import free_port, resolve_broker
from telecare.reading import Reading

START = date(2026, 1, 12)
SCENARIOS = [("pendant", 0), ("cold_home", 0), ("long_lie", 1)]


class CarerWebhook:
    """Stands in for the carer's phone: a real HTTP server receiving the alert POSTs."""

    def __init__(self, tz_name: str) -> None:
        self.received: list[tuple[float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                at = time.time()
                self.send_response(204)
                self.end_headers()
                outer.on_alert(at, json.loads(body))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.tz_name = tz_name
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def on_alert(self, at: float, alert: dict[str, Any]) -> None:
        with self.lock:
            self.received.append((at, alert))
        status = alert["status"].upper()
        head = f"{alert['severity'].upper()} {alert['rule']}" if status == "FIRING" else \
            f"RESOLVED {alert['rule']}"
        words = alert.get("resolution") if status == "RESOLVED" else alert["message"]
        click.echo(f"\n>>> to the carer: [{head}] home {alert['home']}, raised "
                   f"{alert['raised_at']}\n    {words}")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


def _demo_config(workdir: Path, webhook: str) -> tuple[Path, dict[str, Any]]:
    text = resources.files("configs").joinpath("demo/homes/demo.yaml").read_text("utf-8")
    home = yaml.safe_load(text)
    home["contacts"] = [{"name": "Asha (daughter)", "webhook": webhook}]
    config_dir = workdir / "config"
    (config_dir / "homes").mkdir(parents=True)
    (config_dir / "homes" / "demo.yaml").write_text(yaml.safe_dump(home, sort_keys=False))
    return config_dir, home


class DemoConsole:
    """The care team's web console on the demo's data, with a throwaway operator login."""

    def __init__(self, config: Any, data: Path) -> None:
        import secrets

        from telecare.app.console.users import Users
        from telecare.db import connect

        self.password = secrets.token_urlsafe(9)
        Users(connect(data)).add("demo", "operator", [], self.password)
        self.config, self.data = config, data
        self.port = free_port()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        from telecare.app.console.web import Console, serve

        self.thread = threading.Thread(
            target=serve, args=(Console(self.config, self.data), "127.0.0.1", self.port,
                                self.stop), name="console", daemon=True)
        self.thread.start()

    def open_alerts(self) -> int | None:
        """Log in as the demo operator and count the queue's open alerts, as a browser would
        (None if the console did not answer)."""
        import re

        import requests

        session = requests.Session()
        try:
            page = session.get(self.url + "login", timeout=5).text
            token = re.search(r'name="token" value="([^"]+)"', page)
            queue = session.post(self.url + "login", timeout=5, data={
                "name": "demo", "password": self.password,
                "token": token.group(1) if token else ""})
        except requests.RequestException:
            return None
        if queue.status_code != 200 or 'id="queue"' not in queue.text:
            return None
        return queue.text.count('class="alert ')

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(10)


def run_demo(speed: float = 4000.0, seed: int = 7, keep_console: bool = False) -> bool:
    from simulators.devices import SimDevice
    from simulators.home import simulate_home
    from simulators.replay import Publisher, replay
    from telecare.app.pipeline import Pipeline

    workdir = Path(tempfile.mkdtemp(prefix="telecare-demo-"))
    carer = CarerWebhook("Europe/London")
    carer.start()
    config_dir, home = _demo_config(workdir, carer.url)
    config = load_config(config_dir)
    devices = [SimDevice(d["id"], d["kind"], d.get("room", ""), d.get("role"))
               for d in home["devices"]]
    sim = simulate_home("demo", seed, START, 2, SCENARIOS, home["timezone"], devices=devices)
    url, embedded, protocol = resolve_broker(None, "auto")
    click.echo(f"Telecare demo: home 'demo' ({len(devices)} sensors), 2 simulated days from "
               f"{START}, {len(sim.readings)} readings, replayed {speed:g}x faster than real "
               f"time over MQTT at {url} ({'embedded broker' if embedded else 'running broker'})"
               f".\nInjected: " + "; ".join(
                   f"{lab.kind} at {lab.start:%a %H:%M} UTC" for lab in sim.labels))
    pipeline = Pipeline(config, workdir / "data", url, protocol)
    pipeline.start()
    console = DemoConsole(config, workdir / "data")
    console.start()
    click.echo(f"Care team's console: {console.url} (log in as demo, password "
               f"{console.password})")
    ok = False
    try:
        if not pipeline.wait_connected(15):
            click.echo("could not connect to the broker", err=True)
            return False
        published: dict[str, float] = {}

        def on_published(r: Reading, at: float) -> None:
            if r.kind == "button" and r.value >= 1:
                published.setdefault(r.ts.isoformat(), at)

        with Publisher(url, "telecare-demo-bad") as pub:  # two bad messages, set aside
            pub.publish("telecare/v1/demo/kitchen-pir/motion", b"{not json").wait_for_publish(5)
            pub.publish("telecare/v1/demo/x/warp_drive", b'{"ts": 1, "value": 1}'
                        ).wait_for_publish(5)
        sent = replay(sim.readings, url, speed=speed, progress=False, on_published=on_published)
        _wait_until_quiet(pipeline, sent + 2, 30)
        shown = console.open_alerts()
        ok = _summary(sim.readings, sim.labels, pipeline, carer, published, shown)
        if keep_console:
            click.echo(f"The console stays up at {console.url} until Ctrl-C.")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    finally:
        console.close()
        pipeline.stop()
        carer.stop()
        if embedded is not None:
            embedded.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return ok


def _wait_until_quiet(pipeline: Any, published: int, timeout: float) -> None:
    """Until ingest has judged every published message, detection has read every stored
    reading, and nothing waits to be sent."""
    deadline = time.monotonic() + timeout
    conn = pipeline.detect.conn
    counters = pipeline.ingest.counters
    while time.monotonic() < deadline:
        landed = counters["stored"] + counters["duplicates"] + counters["dead_lettered"]
        if landed < published:
            time.sleep(0.1)
            continue
        stored = conn.execute("SELECT coalesce(max(rowid), 0) FROM readings").fetchone()[0]
        pending = conn.execute(
            "SELECT count(*) FROM notifications WHERE state='pending'").fetchone()[0]
        events = conn.execute("SELECT coalesce(max(seq), 0) FROM alert_events").fetchone()[0]
        if pipeline.detect.cursor >= stored and pending == 0 and \
                pipeline.alerts.cursor >= events:
            return
        time.sleep(0.2)


def _summary(readings: list[Reading], labels: list[Any], pipeline: Any, carer: CarerWebhook,
             published: dict[str, float], console_shown: int | None) -> bool:
    counters = pipeline.ingest.counters
    with carer.lock:
        received = list(carer.received)
    firing = Counter(a["rule"] for _, a in received if a["status"] == "firing")
    resolved = Counter(a["rule"] for _, a in received if a["status"] == "resolved")
    latencies = []
    for at, alert in received:
        if alert["rule"] == "pendant" and alert["status"] == "firing":
            from telecare.reading import parse_ts

            sent = published.get(parse_ts(alert["raised_at"]).isoformat())
            if sent is not None:
                latencies.append(at - sent)
    click.echo("\n=== Summary ===")
    click.echo(f"readings published {len(readings)}; received {counters['received']}, stored "
               f"{counters['stored']}, duplicates dropped {counters['duplicates']}, "
               f"dead-lettered {counters['dead_lettered']} (the 2 bad messages sent on purpose)")
    click.echo("alerts that reached the carer: " + ", ".join(
        f"{rule} x{n}" for rule, n in sorted(firing.items())) + "; all-clears: " + ", ".join(
        f"{rule} x{n}" for rule, n in sorted(resolved.items())))
    expected = {"pendant", "cold_home", "inactivity"}
    missing = expected - set(firing)
    fast = bool(latencies) and max(latencies) < 1.0
    if latencies:
        click.echo(f"pendant press -> carer's webhook: {max(latencies) * 1000:.0f} ms after the "
                   f"press was published (goal: under 1 s) {'OK' if fast else 'TOO SLOW'}")
    if missing:
        click.echo(f"MISSING alerts: {', '.join(sorted(missing))}")
    everything = counters["stored"] + counters["duplicates"] == len(readings)
    if not everything:
        click.echo("NOT every published reading was stored")
    click.echo(f"console: {console_shown} open alerts in the queue" if console_shown
               else "console: its queue DID NOT SHOW the open alerts")
    ok = not missing and fast and everything and counters["dead_lettered"] == 2 and \
        bool(console_shown)
    click.echo("demo " + ("passed" if ok else "FAILED"))
    return ok
