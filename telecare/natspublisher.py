"""Ingest's appends to the reading log on NATS, made by a process of its own.

In one process, the MQTT client's thread (paho, in Python) and the NATS client's (nats-py,
in Python: a publish and a PubAck to match for every reading) took turns on one interpreter
lock: ingest to JetStream drained a queued session at about half the rate of a bare paho
subscriber, where ingest to SQLite (whose work runs outside the lock) kept about 0.8. Here
the parent only encodes each batch (one orjson call) and waits on a pipe, its lock free for
the MQTT client; a child process publishes (`telecare.natslog.NatsLog`) and answers how many
readings were new, or why it could not.

A batch is answered within the log's timeout or taken as not logged (`Unavailable`; ingest
then leaves it unacknowledged, and a re-send is dropped by the stream as a duplicate). Each
request carries a number, so a late answer to an abandoned batch is never taken for another's.
A child that died is started again at the next batch; a parent that died ends its child (the
pipe closes).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

import orjson

from telecare.natslog import NatsLog, from_row, to_row
from telecare.reading import Reading
from telecare.stage import Unavailable

log = logging.getLogger(__name__)


def _serve(url: str, name: str, timeout_s: float, conn: Connection) -> None:
    """The child: append each batch it is sent; answer [number, new] or [number, why]."""
    nats_log = NatsLog(url, timeout_s=timeout_s, name=name).open()
    try:
        while True:
            try:
                request = conn.recv_bytes()
            except (EOFError, OSError):
                return  # the parent is gone
            number, rows = orjson.loads(request)
            if number < 0:
                return  # asked to stop
            pairs = [from_row(row) for row in rows]
            readings = [reading for reading, _ in pairs]
            arrived = [at for _, at in pairs]
            try:
                answer: list[object] = [number, nats_log.append(readings, arrived)]
            except Unavailable as exc:
                answer = [number, str(exc)]
            except Exception as exc:  # named back, never silent
                answer = [number, f"reading log: {type(exc).__name__}"]
            try:
                conn.send_bytes(orjson.dumps(answer))
            except (BrokenPipeError, OSError):
                return
    finally:
        nats_log.close()


class NatsPublisher:
    """`telecare.readlog.ReadingLog`'s append, by a child process (see the module)."""

    def __init__(self, url: str, timeout_s: float = 10.0, name: str = "telecare") -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.name = name
        self.connected = threading.Event()  # the last batch was logged
        self._ctx = mp.get_context("spawn")  # no fork of a process with threads
        self._child: BaseProcess | None = None
        self._conn: Connection | None = None
        self._number = 0

    def open(self) -> NatsPublisher:
        self._start()
        return self

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._child = self._ctx.Process(target=_serve, name="telecare-log-publisher",
                                        args=(self.url, self.name, self.timeout_s, child),
                                        daemon=True)
        self._child.start()
        child.close()
        self._conn = parent

    def append(self, readings: Sequence[Reading], arrived: Sequence[datetime]) -> int:
        if not readings:
            return 0
        if self._child is None or not self._child.is_alive() or self._conn is None:
            log.warning("the reading log's publisher process is gone; starting it again")
            self._start()
        assert self._conn is not None
        self._number += 1
        rows = [to_row(r, at) for r, at in zip(readings, arrived, strict=True)]
        try:
            self._conn.send_bytes(orjson.dumps([self._number, rows]))
            # Room for the child's own timeout, and its start (an interpreter) on first use.
            deadline = time.monotonic() + self.timeout_s + 15
            while self._conn.poll(max(deadline - time.monotonic(), 0)):
                number, answer = orjson.loads(self._conn.recv_bytes())
                if number != self._number:
                    continue  # the late answer to a batch given up on
                if isinstance(answer, int):
                    self.connected.set()
                    return answer
                self.connected.clear()
                raise Unavailable(str(answer))
        except (EOFError, OSError) as exc:
            self.connected.clear()
            raise Unavailable(f"reading log: its publisher process failed "
                              f"({type(exc).__name__})") from exc
        self.connected.clear()
        raise Unavailable("reading log: no answer from its publisher process in time")

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.send_bytes(orjson.dumps([-1, []]))
        if self._child is not None:
            self._child.join(15)
            if self._child.is_alive():
                self._child.kill()
                self._child.join(5)
        if self._conn is not None:
            self._conn.close()
        self._child = self._conn = None
