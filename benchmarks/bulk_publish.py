"""Publish a large backlog to an MQTT broker quickly, at QoS 1, for the benchmarks.

paho-mqtt publishes about 4,000 messages a second from one Python thread, so queuing the
millions of readings of an outage would take longer than the benchmark itself. This writes
MQTT 3.1.1 PUBLISH packets straight onto the socket, many per send, with up to `window`
awaiting the broker's PUBACK (packet ids 1..65,535 cycle; the window keeps them unique),
and returns once the broker has acknowledged every message. A benchmark tool only: the
services themselves use paho-mqtt.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterable


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _length(len(body)) + body


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def bulk_publish(host: str, port: int, messages: Iterable[tuple[str, bytes]],
                 client_id: str = "bulk-publisher", window: int = 20_000,
                 timeout: float = 120.0) -> int:
    """Publish every (topic, payload) at QoS 1; return how many, all acknowledged."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # CONNECT: MQTT 3.1.1, clean session, no keep-alive (no pings to tell from PUBACKs).
    sock.sendall(_packet(0x10, _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0)
                         + _string(client_id)))
    connack = sock.recv(4)
    if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"the broker refused the connection: {connack!r}")
    acked = [0]
    cond = threading.Condition()
    failure: list[BaseException] = []

    def read_acks() -> None:
        buffer = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                whole = len(buffer) // 4  # PUBACK: 0x40 0x02 id id
                if whole:
                    buffer = buffer[whole * 4:]
                    with cond:
                        acked[0] += whole
                        cond.notify_all()
        except OSError as exc:
            failure.append(exc)
            with cond:
                cond.notify_all()

    reader = threading.Thread(target=read_acks, daemon=True)
    reader.start()
    sent = 0
    out: list[bytes] = []
    size = 0
    for topic, payload in messages:
        pid = sent % 65535 + 1
        packet = _packet(0x32, _string(topic) + struct.pack("!H", pid) + payload)
        out.append(packet)
        size += len(packet)
        sent += 1
        if size >= 65536:
            sock.sendall(b"".join(out))
            out, size = [], 0
            with cond:
                if not cond.wait_for(lambda n=sent: acked[0] >= n - window or failure,
                                     timeout):
                    raise TimeoutError(f"the broker acknowledged {acked[0]} of {sent}")
    if out:
        sock.sendall(b"".join(out))
    with cond:
        if not cond.wait_for(lambda: acked[0] >= sent or failure, timeout):
            raise TimeoutError(f"the broker acknowledged {acked[0]} of {sent}")
    if failure:
        raise failure[0]
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return sent
