"""Past one machine, every stage twice: two ingest, two detection and two alerts workers as
processes of their own, each with its own data folder (nothing shared on disk), over a real
three-node NATS JetStream cluster, one real PostgreSQL and a real Mosquitto; a forwarder puts
the log into the time-series database. 100,000 readings of 1,000 homes are replayed; during
the run a NATS node and a detection worker are SIGKILLed (the worker started again) and
PostgreSQL is restarted. Afterwards: the alerts are exactly those `telecare backtest` gives,
every one was told to the carer once and only once, and every reading is in the time-series
database once."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from tests.conftest import (
    Mosquitto,
    NatsCluster,
    PostgresServer,
    VictoriaMetrics,
    WebhookReceiver,
)
from tests.e2e.test_distributed_log import TELECARE, Worker, assert_each_reading_once

HOMES, COPIES, READINGS = 125, 8, 100_000


def thousand_homes(tmp_path: Path, webhook: str) -> Path:
    """1,000 homes' readings, 100 each: a simulated day of 125 homes (a pendant press in
    each, at its own time), from 08:00 on, each home copied 8 times under new names (the
    simulator takes a minute for 1,000 homes' whole day; a copy is as good a load)."""
    day = tmp_path / "day"
    subprocess.run([TELECARE, "simulate", "--homes", str(HOMES), "--days", "1", "--seed", "5",
                    "--out", str(day), "--scenario", "pendant@0", "--layout", "mixed",
                    "--webhook", webhook], check=True, capture_output=True)
    lines = [line for line in (day / "readings.jsonl").read_text().splitlines()
             if json.loads(line)["ts"] >= "2026-01-05T08:00"][:READINGS // COPIES]
    bundle = tmp_path / "bundle"
    (bundle / "homes").mkdir(parents=True)
    for plan in (day / "homes").glob("*.yaml"):
        text = plan.read_text()
        for k in range(COPIES):
            name = f"{plan.stem}x{k}"
            (bundle / "homes" / f"{name}.yaml").write_text(
                text.replace(f"home: {plan.stem}\n", f"home: {name}\n", 1))
    out = []
    for line in lines:
        reading = json.loads(line)
        for k in range(COPIES):
            out.append(json.dumps({**reading, "home": f"{reading['home']}x{k}"}))
    (bundle / "readings.jsonl").write_text("\n".join(out) + "\n")
    return bundle


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    try:
        with psycopg.connect(url, user="telecare", connect_timeout=3) as conn:
            return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]
    except psycopg.Error:  # restarting, or the tables not made yet
        return []


def test_every_stage_twice_over_nats_and_postgresql_through_kills_and_a_restart(
        tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics,
        monkeypatch: pytest.MonkeyPatch) -> None:
    carer = WebhookReceiver()
    bundle = thousand_homes(tmp_path, carer.url)
    readings = (bundle / "readings.jsonl").read_text().splitlines()
    assert len(readings) == READINGS
    subprocess.run([TELECARE, "backtest", "--readings", str(bundle / "readings.jsonl"),
                    "--config", str(bundle), "--out", str(tmp_path / "expected.jsonl")],
                   check=True, capture_output=True)
    expected = {(a["id"], a["raised_at"]) for a in
                map(json.loads, (tmp_path / "expected.jsonl").read_text().splitlines())}
    assert len(expected) > 50

    monkeypatch.setenv("TELECARE_DB_USER", "telecare")  # the workers inherit it
    postgres = PostgresServer()
    postgres.start()
    db = postgres.database()
    cluster = NatsCluster(3)
    cluster.start()
    common = ["--config", str(bundle), "--log", cluster.url("replicas=3&partitions=4")]
    on_db = [*common, "--db", db]

    def alerts() -> set[tuple[str, str]]:
        return {(str(i), str(at)) for i, at in rows(db, "SELECT id, raised_at FROM alerts")}

    ingests = [Worker("ingest", *common, "--data", str(tmp_path / f"ingest{i}"), "--mqtt",
                      mosquitto.url, "--share-group", "telecare", "--worker-id", f"i{i}")
               for i in range(2)]
    detects = [Worker("detect", *on_db, "--data", str(tmp_path / f"detect{i}"),
                      "--partition", f"{i}/2") for i in range(2)]
    alerting = [Worker("alerts", *on_db, "--data", str(tmp_path / f"alerts{i}"))
                for i in range(2)]
    forward = Worker("forward", *common, "--data", str(tmp_path / "forward"), "--influx",
                     victoria.url)
    workers = [*ingests, *detects, *alerting, forward]
    try:
        for ingest in ingests:
            assert ingest.wait(lambda i=ingest: i.health().get("subscribed")), \
                "".join(ingest.lines)
        replay = subprocess.Popen([TELECARE, "replay", str(bundle / "readings.jsonl"),
                                   "--mqtt", mosquitto.url, "--no-progress"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Mid-way: a NATS node and a detection worker killed outright, PostgreSQL restarted.
        first = detects[0]
        assert first.wait(lambda: len(alerts()) >= 5, 180), "".join(first.lines[-20:])
        cluster.kill(1)
        first.kill()
        first.start()
        postgres.restart()
        assert replay.wait(300) == 0

        def settled() -> bool:
            told = {a["id"] for a in carer.alerts()}
            return expected <= alerts() and {i for i, _ in expected} <= told and all(
                d.health().get("detect_backlog_readings") == 0 for d in detects)

        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not settled():
            time.sleep(0.5)
        raised = alerts()
        assert raised == expected, ("".join(first.lines[-20:]),
                                    "".join(detects[1].lines[-20:]))
        # The carer was told of every alert, and heard nothing twice (each notice has its
        # own idempotency key: a repeat would show as the same key again).
        keys = Counter(h["Idempotency-Key"] for _, _, h in carer.posts)
        assert {k: n for k, n in keys.items() if n > 1} == {}
        told = {a["id"] for _, a, h in carer.posts if h["X-Telecare-Notice"] == "alert"}
        assert told == {i for i, _ in expected}
        pending = rows(db, "SELECT state, count(*) FROM notifications GROUP BY state")
        assert dict(pending).keys() <= {"sent", "pending"}  # pending: all-clears on their way
        # The ingest workers stored no reading of their own: they are in the log.
        for i in range(2):
            assert not (tmp_path / f"ingest{i}" / "telecare.db").exists() or \
                _count(tmp_path / f"ingest{i}") == 0
        assert_each_reading_once(victoria, bundle / "readings.jsonl", forward, 120)
    finally:
        codes = [w.stop() for w in workers]
        cluster.stop()
        postgres.close()
    assert codes == [0] * len(workers), ["".join(w.lines[-40:]) for w in workers]


def _count(data: Path) -> int:
    import sqlite3

    conn = sqlite3.connect(data / "telecare.db")
    try:
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    finally:
        conn.close()
