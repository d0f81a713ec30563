"""Broker addresses and paho-mqtt clients built the same way for every service.

`mqtt://host:port` or `mqtts://host:port` (TLS). Credentials never sit in a URL on a command
line: they come from TELECARE_MQTT_USERNAME / TELECARE_MQTT_PASSWORD, and a private CA for TLS
from TELECARE_MQTT_CA_FILE.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

DEFAULT_URL = "mqtt://127.0.0.1:1883"
Protocol = Literal["5", "3.1.1"]


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"broker URL {url!r} must start mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"broker URL {url!r} has no host")
        if parts.username or parts.password:
            raise ValueError(
                "put broker credentials in TELECARE_MQTT_USERNAME/PASSWORD, not the URL")
        tls = parts.scheme == "mqtts"
        return cls(parts.hostname, parts.port or (8883 if tls else 1883), tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def make_client(url: BrokerUrl, client_id: str, protocol: Protocol = "5",
                persistent: bool = False, manual_ack: bool = False) -> mqtt.Client:
    proto = mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311
    kwargs: dict[str, object] = {}
    if proto == mqtt.MQTTv311:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=proto,
        manual_ack=manual_ack, **kwargs,  # type: ignore[arg-type]
    )
    user = os.environ.get("TELECARE_MQTT_USERNAME")
    if user:
        client.username_pw_set(user, os.environ.get("TELECARE_MQTT_PASSWORD"))
    if url.tls:
        context = ssl.create_default_context(cafile=os.environ.get("TELECARE_MQTT_CA_FILE"))
        client.tls_set_context(context)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def probe_protocol(url: BrokerUrl, timeout: float = 5.0) -> Protocol:
    """MQTT v5 where the broker speaks it (Mosquitto), else 3.1.1 (the embedded amqtt)."""
    import threading

    answered = threading.Event()
    result: list[bool] = []

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object,
                   properties: object) -> None:
        result.append(not getattr(reason, "is_failure", True))
        answered.set()

    def on_disconnect(*_: object) -> None:
        answered.set()

    client = make_client(url, f"telecare-probe-{os.getpid()}", "5")
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(url.host, url.port, keepalive=10)
        client.loop_start()
        answered.wait(timeout)
    except OSError:
        return "5"
    finally:
        client.disconnect()
        client.loop_stop()
    return "5" if result and result[0] else "3.1.1"
