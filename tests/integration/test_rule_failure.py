"""A rule that raises on one home's readings, in the live pipeline on a real Mosquitto: a
pendant press in another home still reaches its carer within a second, and /healthz names
the failing rule."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from detect.rules import load_config
from detect.rules.inactivity import Inactivity
from telecare.app.ops import serve_ops
from telecare.app.pipeline import Pipeline
from telecare.mqtt import BrokerUrl
from tests.builders import write_home
from tests.conftest import Mosquitto, WebhookReceiver


class Broken(Exception):
    pass


def test_a_rule_failing_in_one_home_leaves_a_press_elsewhere_alerting_within_a_second(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver, unique_home: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    sick, well = f"{unique_home}a", f"{unique_home}b"
    root = tmp_path / "config"
    for home in (sick, well):
        write_home(root, home, contacts=[{"name": "Carer", "webhook": webhook.url}])
    original = Inactivity.observe

    def observe(self: Inactivity, reading: object, act: object) -> object:
        if self.home.home == sick:
            raise Broken("a bug that only this home's readings reach")
        return original(self, reading, act)  # type: ignore[arg-type]

    monkeypatch.setattr(Inactivity, "observe", observe)
    pipeline = Pipeline(load_config(root), tmp_path / "data", BrokerUrl.parse(mosquitto.url),
                        "5", topic=[f"telecare/v1/{h}/#" for h in (sick, well)])
    pipeline.start()
    ops = serve_ops(pipeline, 0)
    port = ops.server_address[1]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    try:
        assert pipeline.wait_connected(10)
        now = datetime.now(UTC)
        for i in range(20):
            client.publish(f"telecare/v1/{sick}/kitchen-pir/motion",
                           json.dumps({"ts": (now - timedelta(minutes=30 - i)).isoformat(),
                                       "value": 1}), qos=1).wait_for_publish(5)
        assert webhook.wait_for(lambda a: any(x["rule"] == "rule_failed" for x in a) or
                                pipeline.detect is not None and
                                pipeline.detect.detector.rule_errors["inactivity"] >= 20, 10)
        sent = time.time()
        client.publish(f"telecare/v1/{well}/pendant/button",
                       json.dumps({"ts": now.isoformat(), "value": 1}), qos=1)
        assert webhook.wait_for(lambda a: any(x["rule"] == "pendant" and x["home"] == well
                                              for x in a), 5)
        arrived = next(t for t, a, _ in webhook.posts if a["rule"] == "pendant")
        assert arrived - sent < 1.0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            report = json.loads(r.read())
        assert report["failing_rules"] == {"inactivity": 20}
        assert report["degraded"] == ["rule inactivity failed 20 time(s)"]
        assert report["stages"]["detect"]["ok"] is True
    finally:
        client.loop_stop()
        client.disconnect()
        ops.shutdown()
        assert pipeline.stop()
