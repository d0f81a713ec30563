"""No personal data in the logs: a whole `telecare run` at debug level, with a contact whose
webhook fails and one whose e-mail cannot be sent, a pendant press, a cold room and a
malformed message; then every log line is scanned for the home file's personal fields and
the readings' values."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.conftest import Mosquitto, WebhookReceiver
from tests.e2e.test_run_end_to_end import Service, stop
from tests.e2e.test_silent_stops import Publisher


def test_the_logs_of_a_whole_run_carry_no_names_addresses_or_values(
        tmp_path: Path, mosquitto: Mosquitto, webhook: WebhookReceiver, unique_home: str
) -> None:
    failing = WebhookReceiver(status=500)
    private = {
        "name": "Asha Okonkwo-Privat", "email": "asha.privat@example.org",
        "failing": failing.url, "phone": "07700900461", "neighbour": "Bernard Quillfeather",
    }
    config = tmp_path / "config"
    (config / "homes").mkdir(parents=True)
    (config / "homes" / f"{unique_home}.yaml").write_text(yaml.safe_dump({
        "home": unique_home, "timezone": "Europe/London",
        "devices": [{"id": "pendant", "kind": "button", "role": "pendant"},
                    {"id": "lounge-temp", "kind": "temperature", "room": "lounge"}],
        "contacts": [
            {"name": private["name"], "webhook": webhook.url, "email": private["email"]},
            {"name": private["neighbour"], "role": "neighbour", "webhook": failing.url,
             "apprise": [f"json://127.0.0.1:9/{private['phone']}"]}],
        "x-resident": "Mrs Eudora Privatename, 12 Nowhere Lane",
    }))
    service = Service("--config", str(config), "--data", str(tmp_path / "data"), "--mqtt",
                      mosquitto.url, "--log-level", "debug")
    pub = Publisher(mosquitto.port)
    try:
        assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
        now = datetime.now(UTC).replace(microsecond=0)
        for i in range(8):
            pub.send(unique_home, "lounge-temp", "temperature", 13.77,
                     now - timedelta(hours=2) + timedelta(minutes=10 * i))
        pub.send(unique_home, "pendant", "button", 1, now - timedelta(minutes=1))
        pub.client.publish(f"telecare/v1/{unique_home}/lounge-temp/temperature",
                           json.dumps({"ts": now.isoformat(), "value": "39.91 degrees"}),
                           qos=1).wait_for_publish(5)
        assert webhook.wait_for(lambda a: {x["rule"] for x in a} >= {"pendant", "cold_home"},
                                30)
        deadline = time.monotonic() + 20  # the failing channels have been tried and logged
        while time.monotonic() < deadline and not any("failed" in line and "contact 2"
                                                      in line for line in service.lines):
            time.sleep(0.1)
    finally:
        pub.close()
        stop(service)
        failing.close()
    log = "".join(service.lines)
    assert "contact 2 (neighbour)" in log  # the failure is told, by place and role
    secrets = [*private.values(), "Eudora", "Nowhere Lane", "13.77", "39.91"]
    leaked = [s for s in secrets if s in log]
    assert leaked == [], [line for line in service.lines if any(s in line for s in leaked)]
