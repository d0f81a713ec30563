"""An MQTT subscriber that acknowledges a message only after its handler says it landed.

As in Telegraf's mqtt_consumer: the subscription is made in on_connect, so every reconnect
resubscribes; QoS 1 with a persistent session, so the broker keeps what arrives while the
service is down; manual acknowledgement, so a message whose write failed is redelivered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telecare.mqtt import BrokerUrl, Protocol, make_client

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue this long while we are away


class MqttSubscriber:
    """`handler(topic, payload) -> bool`: True when the message is stored (or dead-lettered)
    and may be acknowledged; False when it could not be written and must come again."""

    def __init__(self, url: BrokerUrl, client_id: str, topic: str,
                 handler: Callable[[str, bytes], bool], protocol: Protocol = "5",
                 max_in_flight: int = 1000) -> None:
        self.url = url
        self.client_id = client_id
        self.topic = topic
        self.handler = handler
        self.protocol = protocol
        self.max_in_flight = max_in_flight
        self.connected = threading.Event()
        self._client: mqtt.Client | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        self._stopping.clear()
        client = make_client(self.url, self.client_id, self.protocol, persistent=True,
                             manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        props = None
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self.max_in_flight  # the cap on unacknowledged messages
            client.connect_async(self.url.host, self.url.port, keepalive=30, clean_start=False,
                                 properties=props)
        else:
            client.connect_async(self.url.host, self.url.port, keepalive=30)
        self._client = client
        client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        client = self._client
        if client is not None:
            client.disconnect()
            client.loop_stop()
            self._client = None
        self.connected.clear()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        client.subscribe(self.topic, qos=1)
        self.connected.set()
        log.info("connected to %s, subscribed to %s", self.url, self.topic)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        delay = 0.1
        while True:
            try:
                landed = self.handler(msg.topic, bytes(msg.payload))
            except Exception:  # a handler bug must not take the network loop down
                log.exception("handler failed")
                landed = False
            if landed or self._stopping.is_set():
                break
            # The store is down: hold this message unacknowledged and try again. Holding the
            # network loop is the back-pressure: the broker keeps the rest for us meanwhile.
            self._stopping.wait(delay)
            delay = min(delay * 2, 5.0)
        if landed and msg.qos > 0:
            client.ack(msg.mid, msg.qos)
