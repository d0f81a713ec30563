"""An MQTT subscriber that acknowledges a message only after its batch has landed.

As in Telegraf's mqtt_consumer: the subscription is made in on_connect, so every reconnect
resubscribes; QoS 1 with a persistent session (MQTT v5: clean start off and a session expiry
interval; 3.1.1: clean session off), so the broker keeps what arrives while the service is
down; manual acknowledgement, so a message whose write failed is redelivered; and a cap on
messages in flight (MQTT v5 Receive Maximum, and a bounded queue to the writer).

The network thread only queues messages. A writer thread takes them in batches (up to
`batch_size`, or whatever came within `linger_s`), hands each batch to the handler in one go
(one transaction), and acknowledges the whole batch once the handler says it landed. While
the handler cannot write, nothing is acknowledged and the queue fills: the broker holds the
rest. That is the back-pressure; nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from telecare.mqtt import BrokerUrl, Protocol, make_client

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 7 * 24 * 3600  # the broker keeps our queue this long while we are away
# topic, payload, when it arrived (Unix seconds), and whether the broker sent it as a retained
# message on subscribing (old news, not something that just happened)
Message = tuple[str, bytes, float, bool]
# (generation, mid, qos, topic, payload, arrived, retained): generation tells which connection
_Item = tuple[int, int, int, str, bytes, float, bool]


class MqttSubscriber:
    """`handler(messages) -> bool`: True when every message of the batch is stored (or
    dead-lettered) and may be acknowledged; False when it could not be written."""

    def __init__(self, url: BrokerUrl, client_id: str, topic: str | list[str],
                 handler: Callable[[list[Message]], bool], protocol: Protocol = "5",
                 max_in_flight: int = 1000, batch_size: int = 500,
                 linger_s: float = 0.005, keepalive_s: int = 60) -> None:
        self.url = url
        self.client_id = client_id
        self.topics = [topic] if isinstance(topic, str) else list(topic)
        self.handler = handler
        self.protocol = protocol
        self.max_in_flight = max_in_flight
        self.batch_size = batch_size
        self.linger_s = linger_s
        # While a backlog pours in, the broker's answer to a keep-alive ping waits behind
        # tens of thousands of readings already on their way (9 s measured, 300,000 queued):
        # with 30 s paho gave up on the connection mid-catch-up. 60 s leaves room.
        self.keepalive_s = keepalive_s
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # the broker granted the subscription
        self._client: mqtt.Client | None = None
        self._stopping = threading.Event()
        # A deque: appends and pops are atomic, and cheaper per message than queue.Queue's
        # locks; the writer is woken by an event, the network loop held by a bound.
        self._queue: deque[_Item] = deque()
        self._ready = threading.Event()
        self._held: float | None = None
        self._generation = 0
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        self._stopping.clear()
        client = make_client(self.url, self.client_id, self.protocol, persistent=True,
                             manual_ack=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        if self.protocol == "5":
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            props.ReceiveMaximum = self.max_in_flight
            client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive_s,
                                 clean_start=False, properties=props)
        else:
            client.connect_async(self.url.host, self.url.port, keepalive=self.keepalive_s)
        self._client = client
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer",
                                        daemon=True)
        self._writer.start()
        client.loop_start()

    def stop(self) -> None:
        """Stop taking messages, write and acknowledge what was taken, then disconnect.
        Anything not acknowledged stays with the broker for the next start."""
        client = self._client
        if client is None:
            return
        client.on_message = lambda *a: None  # take nothing more
        self._stopping.set()
        if self._writer is not None:
            self._writer.join(30)
        client.disconnect()
        client.loop_stop()
        self._client = None
        self.connected.clear()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            log.error("broker refused connection: %s", reason)
            return
        self._generation += 1
        self.subscribed.clear()
        client.subscribe([(t, 1) for t in self.topics])
        if getattr(flags, "session_present", False):
            # The broker kept our session, subscriptions and all: we are subscribed already.
            # (After an outage its SUBACK can wait behind the queued backlog: /healthz must
            # not say "not subscribed" through the whole catch-up.)
            self.subscribed.set()
        self.connected.set()
        log.info("connected to %s; subscribing to %s", self.url, self._named())

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                      properties: Any) -> None:
        refused = [r for r in reasons if getattr(r, "is_failure", False)]
        if refused:
            log.error("broker refused the subscription: %s", refused[0])
            return
        self.subscribed.set()
        # Said once the broker has granted it: from here a message published is kept for us.
        log.info("subscribed to %s", self._named())

    def _named(self) -> str:
        """The topics for a log line: a bridge per home can make thousands."""
        shown = ", ".join(self.topics[:4])
        more = len(self.topics) - 4
        return shown + (f" and {more} more" if more > 0 else "")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                       properties: Any) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        item = (self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload), time.time(),
                bool(msg.retain))
        if len(self._queue) >= self.max_in_flight:
            self._held = item[5]  # received, not yet queued: still counts as waiting
            while len(self._queue) >= self.max_in_flight and not self._stopping.is_set():
                time.sleep(0.001)  # the writer is behind: hold the network loop; broker waits
        self._queue.append(item)
        self._held = None
        if not self._ready.is_set():
            self._ready.set()

    def in_flight(self) -> int:
        """Messages taken from the broker, not yet written."""
        return len(self._queue)

    def waiting_since(self) -> float | None:
        """Arrival time of the oldest message queued for the writer, if any."""
        held = self._held
        try:
            head = self._queue[0][5]
        except IndexError:
            return held
        return head if held is None else min(head, held)

    def _take_batch(self) -> list[_Item]:
        if not self._queue:
            self._ready.clear()
            if not self._queue and not self._ready.wait(0.2):
                return []
        if len(self._queue) < self.batch_size:
            time.sleep(self.linger_s)  # let a batch gather: one commit for many messages
        batch: list[_Item] = []
        while self._queue and len(batch) < self.batch_size:
            batch.append(self._queue.popleft())
        return batch

    def _write_loop(self) -> None:
        announced = False
        while True:
            if not announced:
                try:
                    announced = bool(self.handler([]))  # here, and nothing waiting yet
                except Exception:
                    log.exception("handler failed")
            batch = self._take_batch()
            if not batch:
                if self._stopping.is_set():
                    return
                try:
                    self.handler([])  # idle: say so, so detection need not wait for us
                except Exception:
                    log.exception("handler failed")
                continue
            messages = [(topic, payload, at, retained)
                        for _, _, _, topic, payload, at, retained in batch]
            delay = 0.1
            while True:
                try:
                    landed = self.handler(messages)
                except Exception:  # a handler bug must not stop the writer
                    log.exception("handler failed")
                    landed = False
                if landed:
                    break
                if self._stopping.wait(delay):
                    return  # stopping with this batch unacknowledged: the broker keeps it
                delay = min(delay * 2, 5.0)
            client = self._client
            if client is None:
                return
            for generation, mid, qos, *_ in batch:
                # An ack for a message of an earlier connection would name a packet id the
                # broker may have reused: skip it; the broker redelivers and we de-duplicate.
                if qos > 0 and generation == self._generation:
                    client.ack(mid, qos)
