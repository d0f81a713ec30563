"""The embedded default broker: amqtt, a pure-Python MQTT 3.1.1 broker, in a thread of its own.

Used only when no broker was named and none answers on the default port, so that the main
job speaks real MQTT on a machine where nothing was installed by hand. Production runs on
Mosquitto or a broker cluster (`deploy/`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any

from telecare.mqtt import DEFAULT_URL, BrokerUrl, Protocol, probe_protocol

log = logging.getLogger(__name__)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Any = None

    @property
    def url(self) -> BrokerUrl:
        return BrokerUrl(self.host, self.port, False)

    def start(self, timeout: float = 15.0) -> None:
        from amqtt.broker import Broker

        # amqtt logs every connection at INFO and tracebacks on some disconnects: keep quiet.
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def serve() -> None:
            asyncio.set_event_loop(loop)

            async def start() -> None:
                self._broker = Broker({
                    "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
                    "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                                {"allow_anonymous": True}},
                })
                await self._broker.start()

            try:
                loop.run_until_complete(start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name="embedded-broker", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("embedded broker did not start in time")
        if failure:
            raise RuntimeError(f"embedded broker failed to start: {failure[0]}")
        log.info("embedded MQTT broker listening on %s", self.url)

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._broker is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), loop).result(10)
        except Exception:  # shutting down anyway
            log.debug("embedded broker shutdown raised", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None


def resolve_broker(mqtt_url: str | None, protocol: str, embedded_ok: bool = True
                   ) -> tuple[BrokerUrl, EmbeddedBroker | None, Protocol]:
    """The broker to use, and the embedded one if we had to start it."""
    embedded = None
    url = BrokerUrl.parse(mqtt_url or DEFAULT_URL)
    if mqtt_url is None and embedded_ok and not port_open(url.host, url.port):
        embedded = EmbeddedBroker(url.host, url.port)
        embedded.start()
        log.info("no broker answered at %s: started the embedded one", url)
    chosen: Protocol
    if embedded is not None:
        chosen = "3.1.1"
    elif protocol == "auto":
        chosen = probe_protocol(url)
    else:
        chosen = protocol  # type: ignore[assignment]
    return url, embedded, chosen
