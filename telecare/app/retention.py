"""Retention: the embedded store keeps readings for a configurable time after they arrived
(default 90 days), and only once every reader of the reading log (each detection worker, and
the forwarder to the time-series database where there is one) has passed them. Dead letters
are capped (the newest kept, the rest still counted); alerts and their history are kept.

`prune` runs daily inside `telecare run` / `telecare ingest`, and on demand as `telecare
prune`. The time-series database keeps its own retention (InfluxDB buckets)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from detect.checkpoint import Checkpoint
from ingest.influx import forwarded_upto
from ingest.store import ReadingStore

log = logging.getLogger(__name__)
RETENTION = timedelta(days=90)
KEEP_DEAD_LETTERS = 100_000


@dataclass(frozen=True)
class Pruned:
    readings: int
    dead_letters: int
    upto_rowid: int
    held_back_by: str | None  # the reader that kept newer readings, if any


def prune(conn: sqlite3.Connection, retention: timedelta = RETENTION,
          keep_dead_letters: int = KEEP_DEAD_LETTERS,
          now: datetime | None = None) -> Pruned:
    now = now or datetime.now(UTC)
    store = ReadingStore(conn)
    readers = {"detection": Checkpoint(conn).slowest_cursor(),
               "forwarder": forwarded_upto(conn)}
    if readers["detection"] is None:
        readers["detection"] = 0  # detection has not run on this store: it needs them all
    present = {name: at for name, at in readers.items() if at is not None}
    slowest = min(present, key=lambda n: present[n])
    upto = present[slowest]
    readings, dead = store.prune(now - retention, upto, keep_dead_letters)
    held = slowest if upto < store.max_rowid() else None
    return Pruned(readings, dead, upto, held)


class DailyPrune:
    """Prune once an hour after start, then every day, until stopped."""

    def __init__(self, connect: Callable[[], sqlite3.Connection],
                 retention: timedelta = RETENTION, every: timedelta = timedelta(days=1),
                 first_after: timedelta = timedelta(hours=1)) -> None:
        self.connect = connect
        self.retention = retention
        self.every = every
        self.first_after = first_after
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="prune", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        wait = self.first_after
        while not self.stop.wait(wait.total_seconds()):
            wait = self.every
            conn = self.connect()
            try:
                done = prune(conn, self.retention)
                log.info("pruned %d reading(s) older than %d days and %d dead letter(s)",
                         done.readings, self.retention.days, done.dead_letters)
            except sqlite3.Error as exc:  # a full disk, say: try again tomorrow
                log.error("pruning failed (%s); trying again in a day", type(exc).__name__)
            finally:
                conn.close()
