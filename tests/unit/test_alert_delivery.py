"""The alerts stage against real HTTP receivers: retries, permanent failures, no duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.service import AlertService
from detect.rules import load_config
from telecare.alert import Alert
from telecare.db import Transaction, connect_alert_store
from tests.builders import utc, write_home
from tests.conftest import WebhookReceiver

# Every test here on both alert stores: the embedded one and PostgreSQL.
pytestmark = pytest.mark.usefixtures("alert_store")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def alert(status: str = "firing") -> Alert:
    a = Alert("h001:pendant:1", "h001", "pendant", "critical", utc("2026-01-05 14:00"),
              "firing", "The pendant alarm was pressed.", {"device": "pendant"})
    return a if status == "firing" else a.resolve(utc("2026-01-05 14:30"), "Helped up.")


def setup(tmp_path: Path, *receivers: WebhookReceiver) -> tuple[AlertService, Clock]:
    contacts = [{"name": f"c{i}", "webhook": r.url} for i, r in enumerate(receivers)]
    config = load_config(write_home(tmp_path / "config", contacts=contacts))
    conn = connect_alert_store(tmp_path / "data")
    clock = Clock()
    return AlertService(conn, config, clock=clock), clock


def record(service: AlertService, *alerts: Alert) -> None:
    with Transaction(service.conn) as c:
        service.store.record_in(c, list(alerts))


def test_each_contact_gets_the_alert_json_once(tmp_path: Path) -> None:
    a, b = WebhookReceiver(), WebhookReceiver()
    service, _ = setup(tmp_path, a, b)
    record(service, alert())
    record(service, alert())  # re-derived after a restart: same occurrence, same change
    service.step()
    service.step()
    for r in (a, b):
        assert [x["id"] for x in r.alerts()] == ["h001:pendant:1"]
        assert r.posts[0][2]["Idempotency-Key"] == "h001:pendant:1/firing"
        assert r.alerts()[0]["message"] == "The pendant alarm was pressed."


def test_a_server_error_is_retried_with_backoff_until_it_lands(tmp_path: Path) -> None:
    flaky = WebhookReceiver(fail_first=2)
    service, clock = setup(tmp_path, flaky)
    record(service, alert())
    service.step()
    assert flaky.alerts() == []
    service.step()  # not due yet: back-off
    assert service.deliveries()[0].attempts == 1
    clock.now += 10
    service.step()
    clock.now += 10
    service.step()
    assert len(flaky.alerts()) == 1
    (d,) = service.deliveries()
    assert (d.state, d.attempts) == ("sent", 3)


def test_a_refused_channel_is_marked_failed_and_does_not_hold_back_others(tmp_path: Path) -> None:
    refused, fine = WebhookReceiver(status=404), WebhookReceiver()
    service, _ = setup(tmp_path, refused, fine)
    record(service, alert())
    service.step()
    assert len(fine.alerts()) == 1
    states = {d.contact: (d.state, d.last_error) for d in service.deliveries()}
    assert states["c0"] == ("failed", "webhook answered HTTP 404")
    assert states["c1"][0] == "sent"


def test_a_restarted_service_sends_what_was_pending_and_nothing_twice(tmp_path: Path) -> None:
    r = WebhookReceiver()
    service, _ = setup(tmp_path, r)
    record(service, alert())
    service.route()  # routed, not yet sent: then the process dies
    restarted, _ = setup(tmp_path, r)
    record(restarted, alert("resolved"))
    restarted.step()
    restarted.step()
    assert [(x["id"], x["status"]) for x in r.alerts()] == \
        [("h001:pendant:1", "firing"), ("h001:pendant:1", "resolved")]
