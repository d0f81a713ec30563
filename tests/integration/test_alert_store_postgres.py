"""The alert store on a real PostgreSQL, shared by alerts workers that could be on separate
machines (each has a data folder of its own): due notices are claimed, never sent twice and
never missed, through concurrent writers and a restart of the server; a worker is woken by
NOTIFY, not by its poll."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from alerts.service import AlertService
from alerts.store import AlertStore
from detect.rules import load_config
from telecare.alert import Alert
from telecare.config import Config
from telecare.db import Transaction
from telecare.pgdb import PgConnection
from tests.builders import utc, write_home
from tests.conftest import PostgresServer, WebhookReceiver


@pytest.fixture
def own_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgresServer]:
    """A server of this test's own: it is restarted mid-way."""
    monkeypatch.setenv("TELECARE_DB_USER", "telecare")
    server = PostgresServer()
    server.start()
    yield server
    server.close()


def alert(n: int) -> Alert:
    return Alert(f"h001:pendant:{n}", "h001", "pendant", "critical",
                 utc("2026-01-05 14:00") + timedelta(minutes=n), "firing",
                 f"The pendant alarm was pressed ({n}).", {"device": "pendant"})


def circle(tmp_path: Path, *receivers: WebhookReceiver) -> Config:
    contacts = [{"name": f"c{i}", "webhook": r.url} for i, r in enumerate(receivers)]
    return load_config(write_home(tmp_path / "config", contacts=contacts))


def record_with_retry(url: str, alerts: list[Alert]) -> None:
    """A detection worker's commits, one alert each, waiting out a server restart as
    detection does (the failed transaction is tried again whole)."""
    conn = PgConnection(url)
    store = AlertStore(conn)
    for a in alerts:
        while True:
            try:
                with Transaction(conn) as c:
                    store.record_in(c, [a])
                break
            except Exception:
                time.sleep(0.2)
        time.sleep(0.005)


def test_two_alerts_workers_tell_everyone_once_through_concurrent_writers_and_a_restart(
        tmp_path: Path, own_postgres: PostgresServer) -> None:
    url = own_postgres.database()
    a, b = WebhookReceiver(), WebhookReceiver()
    config = circle(tmp_path, a, b)
    workers = [AlertService(PgConnection(url), config, data_dir=tmp_path / f"alerts{i}")
               for i in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop, 0.2), daemon=True) for w in workers]
    for t in threads:
        t.start()
    # Two detection workers commit at once: the alerts stage follows the event log by
    # sequence number, which must not step over an event committed late.
    writers = [threading.Thread(target=record_with_retry,
                                args=(url, [alert(n) for n in range(k, 300, 2)]))
               for k in range(2)]
    for w in writers:
        w.start()
    assert a.wait_for(lambda got: len(got) >= 60, 60)
    own_postgres.restart()  # connections cut mid-way: every worker must find its way back
    for w in writers:
        w.join(120)
    expected = {f"h001:pendant:{n}" for n in range(300)}
    for r in (a, b):
        if not r.wait_for(lambda got: {x["id"] for x in got} >= expected, 120):
            missing = expected - {x["id"] for x in r.alerts()}
            rows = PgConnection(url).execute(
                "SELECT alert_id, contact, state, attempts, next_attempt, last_error FROM"
                " notifications WHERE alert_id = ANY(?)", (sorted(missing),)).fetchall()
            pytest.fail(f"{len(missing)} never arrived: {rows[:6]}")
    time.sleep(1.5)  # time enough for a second copy to arrive, were one on its way
    stop.set()
    for t in threads:
        t.join(30)
    for r in (a, b):
        twice = {k: v for k, v in Counter(x["id"] for x in r.alerts()).items() if v > 1}
        assert twice == {}
        assert len(r.alerts()) == 300
    done = Counter(d.state for d in workers[0].deliveries())
    assert done == {"sent": 600}


def test_an_alerts_worker_is_woken_by_a_new_alert_not_by_its_poll(
        tmp_path: Path, postgres: str) -> None:
    receiver = WebhookReceiver()
    worker = AlertService(PgConnection(postgres), circle(tmp_path, receiver),
                          data_dir=tmp_path / "alerts")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop, 60.0), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while worker.listener is None or not worker.listener.listening.is_set():
            assert time.monotonic() < deadline, "the worker never listened"
            time.sleep(0.02)
        # Listening, it has looked at the store once (at the first notice); its next poll
        # would be a minute away.
        began = time.monotonic()
        record_with_retry(postgres, [alert(1)])
        assert receiver.wait_for(lambda got: len(got) == 1, 20)
        took = time.monotonic() - began
        assert took < 10, took  # a poll would have taken a minute
    finally:
        stop.set()
        worker.wake.set()  # as the pipeline does at a stop
        thread.join(30)


def test_an_alerts_service_started_before_postgresql_waits_for_it_then_delivers(
        tmp_path: Path, own_postgres: PostgresServer) -> None:
    import subprocess
    import sys

    url = own_postgres.database()
    receiver = WebhookReceiver()
    config_dir = write_home(tmp_path / "config", contacts=[{"name": "c0",
                                                             "webhook": receiver.url}])
    own_postgres.stop()
    service = subprocess.Popen(
        [str(Path(sys.executable).parent / "telecare"), "alerts", "--config", str(config_dir),
         "--data", str(tmp_path / "alerts"), "--db", url],
        stderr=subprocess.PIPE, text=True)
    try:
        assert service.stderr is not None
        for line in service.stderr:  # a signal, not a sleep: it says it is waiting
            if "waiting for the alert store" in line:
                break
        assert service.poll() is None  # waiting, not failed
        own_postgres.start()
        record_with_retry(url, [alert(7)])
        assert receiver.wait_for(lambda got: [a["id"] for a in got] == ["h001:pendant:7"], 60)
    finally:
        service.terminate()
        assert service.wait(30) == 0


def test_a_worker_slow_to_send_keeps_its_claim_and_no_other_worker_sends_twice(
        tmp_path: Path, postgres: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each send takes 1.5 s and the lease is 2 s: the claim on what is still to send is
    renewed as the worker goes, so the second worker, polling all the while, takes none."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import alerts.service

    monkeypatch.setattr(alerts.service, "CLAIM_S", 2.0)
    heard: list[str] = []

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            time.sleep(1.5)
            heard.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    config = load_config(write_home(tmp_path / "config", contacts=[
        {"name": f"c{i}", "webhook": f"{base}/c{i}"} for i in range(3)]))
    first, second = (AlertService(PgConnection(postgres), config,
                                  data_dir=tmp_path / f"alerts{i}") for i in range(2))
    record_with_retry(postgres, [alert(1)])
    assert first.route() == 1
    sending = threading.Thread(target=first.deliver, args=("webhook",))
    sending.start()  # claims all three, then sends them one after another
    while not heard and sending.is_alive():
        time.sleep(0.01)
    stop = threading.Event()
    polling = threading.Thread(target=second.run, args=(stop, 0.2), daemon=True)
    polling.start()
    sending.join(30)
    stop.set()
    second.wake.set()
    polling.join(30)
    server.shutdown()
    assert sorted(heard) == ["/c0", "/c1", "/c2"]
