"""Notifiers against real servers: e-mail to a real SMTP server (aiosmtpd), Apprise to a real
HTTP endpoint, MQTT to a real Mosquitto; a failing or hanging channel does not hold back
the others."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller

from alerts.notifiers import AppriseNotifier, EmailNotifier, MqttNotifier, WebhookNotifier
from alerts.service import AlertService
from detect.rules import load_config
from telecare.alert import Alert
from telecare.db import Transaction, connect
from tests.builders import utc, write_home
from tests.conftest import Mosquitto, WebhookReceiver, _free_port


class Mailbox:
    """A real SMTP server on a free loopback port that keeps what it is sent."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, list[str], Message]] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any,  # noqa: N802
                                  envelope: Any) -> str:
                outer.messages.append((time.time(), list(envelope.rcpt_tos),
                                       message_from_bytes(envelope.content)))
                return "250 Message accepted"

        self.port = _free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{self.port}"

    def wait(self, n: int, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= n:
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.controller.stop()


def alert(rule: str, severity: str, message: str) -> Alert:
    return Alert(f"h001:{rule}:1", "h001", rule, severity,  # type: ignore[arg-type]
                 utc("2026-01-05 14:00"), "firing", message, {})


def service_for(tmp_path: Path, contacts: list[dict[str, Any]], notifiers: list[Any]
                ) -> AlertService:
    config = load_config(write_home(tmp_path / "config", contacts=contacts))
    return AlertService(connect(tmp_path / "data"), config, notifiers)


def record(service: AlertService, *alerts: Alert) -> None:
    with Transaction(service.conn) as c:
        service.store.record_in(c, list(alerts))


def test_email_reaches_a_real_smtp_server_in_plain_words_grouped_for_one_home(
        tmp_path: Path) -> None:
    box = Mailbox()
    try:
        service = service_for(tmp_path, [{"name": "Asha", "email": "asha@example.org"}],
                              [EmailNotifier(box.url, "telecare@example.org")])
        record(service,
               alert("cold_home", "medium", "The bedroom has been below 16 °C since 02:10."),
               alert("inactivity", "high", "No activity seen at home since 09:27."))
        service.step()
        assert box.wait(1)
        time.sleep(0.3)
        assert len(box.messages) == 1  # two alerts for one home: one message
        _, to, msg = box.messages[0]
        assert to == ["asha@example.org"]
        assert msg["Subject"] == "Please act: inactivity at home h001 (and 1 more for this home)"
        body = msg.get_payload(decode=True).decode()  # type: ignore[union-attr]
        assert body.index("No activity seen at home since 09:27.") < \
            body.index("The bedroom has been below 16 °C since 02:10.")  # most urgent first
        assert {d.state for d in service.deliveries()} == {"sent"}
    finally:
        box.close()


def test_a_refused_address_is_a_permanent_failure_reported_once(tmp_path: Path) -> None:
    class Refusing:
        async def handle_RCPT(self, server: Any, session: Any, envelope: Any,  # noqa: N802
                              address: str, options: Any) -> str:
            return "550 no such user here"

    port = _free_port()
    controller = Controller(Refusing(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        service = service_for(tmp_path, [{"name": "Asha", "email": "asha@example.org"}],
                              [EmailNotifier(f"smtp://127.0.0.1:{port}")])
        record(service, alert("inactivity", "high", "No activity."))
        service.step()
        (d,) = service.deliveries()
        assert (d.state, d.attempts, d.last_error) == \
            ("failed", 1, "mail server refused the address")
    finally:
        controller.stop()


class HangingReceiver:
    """An HTTP endpoint that takes `delay` seconds to answer, then answers 503."""

    def __init__(self, delay: float) -> None:
        self.calls: list[float] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)
                outer.calls.append(time.time())
                self.send_response(503)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        outer = self
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_hanging_channel_does_not_hold_back_email_and_its_failure_is_reported(
        tmp_path: Path) -> None:
    box = Mailbox()
    hanging = HangingReceiver(delay=3.0)
    try:
        service = service_for(
            tmp_path, [{"name": "Asha", "webhook": hanging.url, "email": "asha@example.org"}],
            [WebhookNotifier(timeout_s=10), EmailNotifier(box.url)])
        record(service, alert("pendant", "critical", "The pendant alarm was pressed."))
        stop = threading.Event()
        runner = threading.Thread(target=service.run, args=(stop, 0.1), daemon=True)
        started = time.time()
        runner.start()
        assert box.wait(1)
        mailed = box.messages[0][0]
        deadline = time.monotonic() + 20
        while not hanging.calls and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        runner.join(30)
        # The e-mail went while the webhook was still hanging.
        assert hanging.calls and mailed < hanging.calls[0]
        assert mailed - started < hanging.calls[0] - started
        states = {d.channel: (d.state, d.last_error) for d in service.deliveries()}
        assert states["email"] == ("sent", None)
        assert states["webhook"] == ("pending", "webhook answered HTTP 503")  # to be retried
    finally:
        box.close()


def test_apprise_delivers_through_a_real_endpoint(tmp_path: Path) -> None:
    endpoint = WebhookReceiver()
    target = endpoint.url.replace("http://", "json://")
    service = service_for(tmp_path, [{"name": "Asha", "apprise": [target]}],
                          [AppriseNotifier()])
    record(service, alert("night_door", "high", "The front door opened at 03:00."))
    service.step()
    assert endpoint.wait_for(lambda posts: len(posts) == 1, timeout=10)
    posted = endpoint.alerts()[0]
    assert posted["title"] == "Please act: night door at home h001"
    assert "The front door opened at 03:00." in posted["message"]


def test_mqtt_notifier_publishes_to_the_home_hubs_topic(tmp_path: Path, mosquitto: Mosquitto,
                                                        unique_home: str) -> None:
    topic = f"telecare/hub/{unique_home}/notices"
    got: list[dict[str, Any]] = []
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    listener.on_message = lambda c, u, m: got.append(json.loads(m.payload))
    listener.connect("127.0.0.1", mosquitto.port)
    listener.subscribe(topic, qos=1)
    listener.loop_start()
    try:
        time.sleep(0.3)
        service = service_for(tmp_path, [{"name": "hub", "mqtt": topic}],
                              [MqttNotifier(mosquitto.url)])
        record(service, alert("pendant", "critical", "The pendant alarm was pressed."))
        service.step()
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(m["id"], m["notice"]) for m in got] == [("h001:pendant:1", "alert")]
    finally:
        listener.loop_stop()
        listener.disconnect()


def test_a_signed_webhook_is_verified_by_the_receiver_and_a_forged_one_is_not(
        tmp_path: Path, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    import requests
    from standardwebhooks.webhooks import Webhook, WebhookVerificationError

    secret = "whsec_" + base64.b64encode(b"a per-contact key of 32 bytes!!!").decode()
    monkeypatch.setenv("ASHA_WEBHOOK_SECRET", secret)
    service = service_for(tmp_path, [{"name": "Asha", "webhook": webhook.url,
                                      "webhook_secret": "env:ASHA_WEBHOOK_SECRET"}],
                          [WebhookNotifier()])
    record(service, alert("pendant", "critical", "The pendant alarm was pressed."))
    service.step()
    assert webhook.wait_for(lambda a: len(a) == 1, 10)
    _, body, headers = webhook.posts[0]
    raw = json.dumps(body, separators=(", ", ": "))
    # The receiver's side, as the README shows it: the library verifies the three headers.
    receiver = Webhook(secret)
    assert receiver.verify(webhook.raw[0], headers)["rule"] == "pendant"
    assert headers["webhook-id"] == headers["Idempotency-Key"]
    # A forgery: the same headers on another body, or the right body signed with another key.
    with pytest.raises(WebhookVerificationError):
        receiver.verify(webhook.raw[0].replace("critical", "low"), headers)
    forged = Webhook("whsec_" + base64.b64encode(b"not the contact's key at all!!!!").decode())
    with pytest.raises(WebhookVerificationError):
        receiver.verify(raw, {**headers, "webhook-signature": forged.sign(
            headers["webhook-id"], datetime.now(UTC), webhook.raw[0])})
    # And an unsigned POST from anyone is refused by a receiver that checks.
    r = requests.post(webhook.url, data=webhook.raw[0], timeout=5)
    assert r.status_code < 300  # the test receiver takes anything ...
    with pytest.raises(WebhookVerificationError):
        receiver.verify(webhook.raw[-1], dict(webhook.posts[-1][2]))  # ... the check does not


def test_a_missing_signing_key_fails_the_webhook_and_says_where(
        tmp_path: Path, webhook: WebhookReceiver) -> None:
    service = service_for(tmp_path, [{"name": "Asha", "webhook": webhook.url,
                                      "webhook_secret": "env:TELECARE_TEST_UNSET_KEY"}],
                          [WebhookNotifier()])
    record(service, alert("pendant", "critical", "The pendant alarm was pressed."))
    service.step()
    failed = [d for d in service.deliveries() if d.channel == "webhook"]
    assert [(d.state, d.last_error) for d in failed] == [
        ("failed", "webhook secret: environment variable TELECARE_TEST_UNSET_KEY is not set")]
    assert webhook.posts == []
