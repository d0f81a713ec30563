"""The ingest stage: judge each MQTT message, store it or set it aside, count what happened.

`handle` takes a batch from the subscriber and writes it in one transaction: readings
(de-duplicated by the store), and malformed messages as dead letters with their reason. It
returns True once the batch has landed, and False when it could not be written or the spool
towards the time-series database is full, so the batch stays unacknowledged with the broker.

A flood of bad messages from one source (a broken or hostile gateway) is kept aside up to
`dead_letter_limit` a minute per source; past that each is still counted (by source and
reason) but not kept one by one, so the flood costs the other homes little.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from ingest.mapping import SourceMapper
from ingest.store import DeadLetter, ReadingStore
from telecare.clock import Clock, wall_clock
from telecare.reading import BadReading, Reading
from telecare.readlog import ReadingLog
from telecare.stage import StageStatus, Unavailable, describe

log = logging.getLogger(__name__)


# Messages for homes with no file are accounted under one source, so a flood of made-up home
# ids costs one counter, not a row or a counter per id.
UNKNOWN_HOMES = "(unknown homes)"


def _source(topic: str) -> str:
    """Which gateway a message claims to come from, for flood accounting."""
    parts = topic.split("/", 3)
    return parts[2][:64] if len(parts) > 2 else "?"


class IngestService:
    def __init__(self, store: ReadingStore, clock: Clock = wall_clock,
                 on_stored: Callable[[], None] | None = None,
                 accepting: Callable[[], bool] | None = None,
                 dead_letter_limit: int = 600, worker: str = "ingest",
                 dead_letter_total_limit: int = 6000,
                 waiting_since: Callable[[], float | None] | None = None,
                 known_home: Callable[[str], bool] | None = None,
                 mapper: SourceMapper | None = None, log: ReadingLog | None = None) -> None:
        self.store = store
        # The reading log on another machine (NATS JetStream, `telecare.natslog`): readings go
        # there, and the local store keeps only what was set aside. None: the local store.
        self.log = log
        self.clock = clock
        self.on_stored = on_stored
        self.accepting = accepting  # False while the spool is full: stop acknowledging
        self.dead_letter_limit = dead_letter_limit
        self.dead_letter_total_limit = dead_letter_total_limit  # all sources, per minute
        self.worker = worker
        # Arrival time of the oldest message taken from the broker but not yet handed here
        # (None: none waiting). With it, each write also records this worker's arrival
        # watermark, which detection uses to put several workers' writes in order.
        self.waiting_since = waiting_since
        # Readings for a home with no file are set aside (`unknown_home`): nobody could be told
        # of its alerts, and a flood of made-up ids must not grow detection's state. None: any.
        self.known_home = known_home
        # Bridges and hubs (Zigbee2MQTT, Home Assistant, vendor JSON): their messages become
        # readings here, then go the way native ones go. A state waiting for its time from an
        # earlier batch is looked up in the store (`SourceMapper._waiting`).
        self.mapper = mapper if mapper is not None else SourceMapper([])
        self.mapper.pending_lookup = self._pending_one
        self.status = StageStatus("ingest")
        self.counters: Counter[str] = Counter()
        self.dead_letter_codes: Counter[str] = Counter()
        self._lock = threading.Lock()  # one SQLite connection, possibly several callers
        self._minute: int | None = None
        self._newest: datetime | None = None
        self._kept_this_minute: Counter[str] = Counter()

    def newest_event_lag_s(self) -> float | None:
        """Wall clock minus the event time of the newest reading taken in (for a replay of
        old recordings this is large by design)."""
        if self._newest is None:
            return None
        return (self.clock() - self._newest).total_seconds()

    def _pending_one(self, key: str) -> tuple[str, float] | None:
        with self._lock:
            return self.store.pending_one(key)

    def _judge(self, topic: str, payload: bytes, at: float, retained: bool,
               received_at: datetime) -> list[Reading]:
        """The readings one message stands for; BadReading if it is bad input."""
        readings, why = self.mapper.judge(topic, payload, at, retained, now=received_at)
        if why is not None:
            self.counters[f"source_{why}"] += 1  # a bridge's own topic, a sensor still on...
        for reading in readings:  # (a source's readings are for its own, known home)
            if self.known_home is not None and not self.known_home(reading.home):
                raise BadReading("unknown_home", "no home file describes this home; its "
                                 "readings are kept aside, not detected on")
        return readings

    def handle(self, messages: list[tuple[str, bytes, float, bool]]) -> bool:
        """Each message is (topic, payload, arrival time as Unix seconds, retained)."""
        if self.accepting is not None and not self.accepting():
            self.counters["refused_spool_full"] += len(messages)
            return False
        received_at = self.clock()
        minute = int(received_at.timestamp() // 60)
        if minute != self._minute:
            self._minute, self._kept_this_minute = minute, Counter()
        readings: list[Reading] = []
        arrived: list[datetime] = []
        dead: list[DeadLetter] = []
        overflow: list[tuple[str, str]] = []
        codes: Counter[str] = Counter()
        for topic, payload, at, retained in messages:
            try:
                found = self._judge(topic, payload, at, retained, received_at)
                readings.extend(found)
                arrived.extend([datetime.fromtimestamp(at, UTC)] * len(found))
            except BadReading as bad:
                codes[bad.code] += 1
                source = self.mapper.home_of(topic) or _source(topic)
                if self.known_home is not None and not self.known_home(source):
                    source = UNKNOWN_HOMES
                if (self._kept_this_minute[source] < self.dead_letter_limit
                        and self._kept_this_minute.total() < self.dead_letter_total_limit):
                    self._kept_this_minute[source] += 1
                    dead.append(DeadLetter(received_at, topic, payload, len(payload), bad.code,
                                           bad.detail))
                else:
                    overflow.append((source, bad.code))
        waiting = self.waiting_since() if self.waiting_since is not None else None
        low = datetime.fromtimestamp(waiting, UTC) if waiting is not None else received_at
        try:
            with self._lock:
                # With a log, the readings go there first (the batch is done once they are in
                # it, and only then) and the local store keeps what was set aside.
                logged = self.log.append(readings, arrived) if self.log is not None else None
                here = self.store.add(readings if logged is None else [], received_at, dead,
                                      overflow, arrived, (self.worker, low),
                                      self.mapper.take_pending())
                new = here if logged is None else logged
        except Unavailable as exc:
            self.counters["log_errors"] += 1
            self.status.failed(exc)
            log.error("could not log a batch (%s); the broker keeps it until it can be",
                      describe(exc))
            return False
        except sqlite3.Error as exc:
            self.counters["store_errors"] += 1
            self.status.failed(exc)
            log.error("could not store a batch (%s); the broker keeps it until it can be",
                      describe(exc))
            return False
        self.status.ok()
        stored = new
        if readings:
            # Future readings were refused above, so this lag is never far below zero.
            newest = max(r.ts for r in readings)
            self._newest = newest if self._newest is None else max(self._newest, newest)
        self.counters["received"] += len(messages)
        self.counters["stored"] += stored
        self.counters["duplicates"] += len(readings) - stored
        self.counters["dead_lettered"] += len(dead) + len(overflow)
        self.counters["dead_letter_overflow"] += len(overflow)
        self.dead_letter_codes.update(codes)
        for code, n in codes.items():
            # The code only: the detail may quote a health value.
            log.warning("dead-lettered %d message(s): %s", n, code)
        if stored and self.on_stored is not None:
            self.on_stored()
        return True
