"""Forwarding stored readings to InfluxDB (or anything that takes its /api/v2/write).

The embedded store is the spool: ingest writes every reading there first and acknowledges
it; this forwarder follows the reading log with a durable cursor and writes batches to the
database. While the database is down or slow, readings wait in the store and drain when it
returns. The spool is bounded: once more than `spool_limit` readings wait, `accepting()`
turns False and ingest stops acknowledging, so the broker holds the rest. Nothing is dropped.

Past one machine the reading log is on NATS JetStream, which is then the spool: `telecare
forward --log ...` follows it (a share of it per forwarder with `--partition`), keeping its
position in its own folder. A batch written again after a crash overwrites the same points
(same series, same time), so the database holds each reading once.

Schema: a measurement per kind; tags home, device, room; a field `value` (and `battery`
when sent); nanosecond time. The client does all escaping; no line protocol is built here.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from ingest.store import ReadingStore
from telecare.config import Config
from telecare.db import PerThread, Transaction
from telecare.reading import Reading
from telecare.readlog import LogReader
from telecare.stage import StageStatus

log = logging.getLogger(__name__)
_SCHEMA = "CREATE TABLE IF NOT EXISTS forward_meta (key TEXT PRIMARY KEY, value TEXT);"


@dataclass(frozen=True)
class InfluxTarget:
    url: str
    token: str
    org: str
    bucket: str

    @classmethod
    def from_env(cls, url: str | None = None) -> InfluxTarget | None:
        url = url or os.environ.get("TELECARE_INFLUX_URL")
        if not url:
            return None
        return cls(url, os.environ.get("TELECARE_INFLUX_TOKEN", ""),
                   os.environ.get("TELECARE_INFLUX_ORG", "telecare"),
                   os.environ.get("TELECARE_INFLUX_BUCKET", "telecare"))


def _ns(ts: datetime) -> int:
    # Whole microseconds from the store, as an exact integer count of nanoseconds.
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def to_point(reading: Reading, room: str) -> Point:
    point = (Point(reading.kind).tag("home", reading.home).tag("device", reading.device)
             .tag("room", room).field("value", float(reading.value))
             .time(_ns(reading.ts), WritePrecision.NS))
    if reading.battery is not None:
        point = point.field("battery", float(reading.battery))
    return point


def forwarded_upto(conn: sqlite3.Connection) -> int | None:
    """How far the forwarder has got in the reading log (None: it has never run here)."""
    conn.executescript(_SCHEMA)
    row = conn.execute("SELECT value FROM forward_meta WHERE key='cursor'").fetchone()
    return int(row[0]) if row else None


class InfluxForwarder:
    def __init__(self, conn: sqlite3.Connection, config: Config, target: InfluxTarget,
                 batch: int = 5000, spool_limit: int = 2_000_000, timeout_ms: int = 10_000,
                 log_reader: LogReader | None = None) -> None:
        self.conn = conn
        self.config = config
        self.target = target
        self.batch = batch
        self.spool_limit = spool_limit
        self.status = StageStatus("forward")
        self.store = ReadingStore(conn)
        conn.executescript(_SCHEMA)
        # `log_reader`: the reading log is on NATS (`telecare.natslog`) and this forwarder
        # follows its share of it (`telecare forward`); the stream is then the spool, and the
        # position in it is kept here, apart from a local cursor's.
        self.log_reader = log_reader
        self.key = "cursor" if log_reader is None else "log_cursor"
        row = conn.execute("SELECT value FROM forward_meta WHERE key=?", (self.key,)).fetchone()
        self.cursor = int(row[0]) if row else 0
        if log_reader is not None:
            log_reader.seek(self.cursor)
        self.client = InfluxDBClient(url=target.url, token=target.token, org=target.org,
                                     timeout=timeout_ms)
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)
        self.wake = threading.Event()
        self._asked = PerThread(conn, ReadingStore)  # accepting() is asked by ingest's writer
        self.healthy = True
        self.written = 0
        self._known_max = self.store.max_rowid()

    def backlog(self) -> int:
        if self.log_reader is not None:
            return self.log_reader.pending()
        return max(self._known_max - self.cursor, 0)

    def note_stored(self, max_rowid: int) -> None:
        self._known_max = max(self._known_max, max_rowid)

    def accepting(self) -> bool:
        """Room left in the spool? Asked by ingest's writer, on its own connection."""
        self._known_max = self._asked.get().max_rowid()
        return self.backlog() < self.spool_limit

    def _room(self, home: str, device: str) -> str:
        found = self.config.home(home).device(device)
        return (found.room if found else None) or "unknown"

    def step(self) -> int:
        if self.log_reader is not None:
            rows = self.log_reader.fetch(self.batch, 0.5)
        else:
            rows = self.store.since(self.cursor, self.batch)
        if not rows:
            return 0
        points = [to_point(r, self._room(r.home, r.device)) for _, r in rows]
        try:
            self.write_api.write(bucket=self.target.bucket, org=self.target.org, record=points,
                                 write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except Exception as exc:  # the client raises many kinds; all mean "not written"
            if self.healthy:
                log.warning("time-series database write failed (%s); readings wait in the "
                            "spool", exc.__class__.__name__)
            self.healthy = False
            if self.log_reader is not None:
                self.log_reader.seek(self.cursor)  # the same readings again, next time
            return -1
        if not self.healthy:
            log.info("time-series database is back; draining the spool")
        self.healthy = True
        self.cursor = rows[-1][0]
        self.written += len(rows)
        with Transaction(self.conn) as c:
            c.execute("INSERT OR REPLACE INTO forward_meta VALUES (?, ?)",
                      (self.key, str(self.cursor)))
        self._known_max = max(self._known_max, self.cursor)
        if self.log_reader is not None:
            self.log_reader.commit(self.cursor)
        return len(rows)

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        delay = 0.5
        while not stop.is_set() and self.status.fatal is None:
            # A failure here is the local store's (a full disk); InfluxDB's is n < 0.
            n = self.status.attempt(stop, "forwarding", self.step)
            if n is None:
                continue
            if n < 0:
                stop.wait(delay)  # back off while the database is away
                delay = min(delay * 2, 10.0)
            elif n == 0:
                delay = 0.5
                if self.log_reader is None:  # (a log's fetch waits for news itself)
                    self.wake.wait(poll_s)
                    self.wake.clear()
            else:
                delay = 0.5
        def drain() -> None:
            while self.step() > 0:
                pass

        self.status.last("forwarding", drain)
        self.client.close()
