"""The priority lane's ingest: calls for help on a subscription and session of their own.

The routine subscriber's broker queue may hold hours of readings after an outage; a pendant
press must not wait behind them. So ingest keeps a second MQTT session that subscribes only to
the urgent kinds (`telecare.reading.URGENT_TOPICS`); the broker queues each press for both
sessions, and this one has nothing else queued. A press taken here is stored in the priority
log (`urgent_readings`) and detection's urgent judge is woken. The same message also reaches
the routine lane in its turn and is stored there, in its place among the home's readings, so
the home's rules see it in event order; the alert it raises then has the same id as the one
raised here, so nobody is told twice.

Only what the routine lane would store is kept here; anything it would set aside (a bad
payload, an unknown home) is left to the routine lane, which dead-letters it with its reason,
so nothing is set aside twice. What this lane skipped is counted.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from ingest.mapping import SourceMapper
from ingest.store import ReadingStore
from telecare.clock import Clock, wall_clock
from telecare.reading import BadReading, Reading
from telecare.readlog import ReadingLog
from telecare.stage import StageStatus, Unavailable, describe

log = logging.getLogger(__name__)


class UrgentIngest:
    def __init__(self, store: ReadingStore, clock: Clock = wall_clock,
                 on_stored: Callable[[], None] | None = None,
                 known_home: Callable[[str], bool] | None = None,
                 mapper: SourceMapper | None = None, log: ReadingLog | None = None) -> None:
        self.store = store
        # Past one machine: the priority lane's stream on NATS (`telecare.natslog`, lane
        # "urgent"), which detection's urgent judges follow. None: the local store.
        self.log = log
        # Its own mapper (a Home Assistant state waits for its time here too, in memory: if
        # this lane loses one in a restart, the routine lane still has it).
        self.mapper = mapper if mapper is not None else SourceMapper([])
        self.clock = clock
        self.on_stored = on_stored
        self.known_home = known_home
        self.status = StageStatus("ingest-urgent")
        self.counters: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle(self, messages: list[tuple[str, bytes, float, bool]]) -> bool:
        """Each message is (topic, payload, arrival time as Unix seconds, retained); True
        once stored."""
        if not messages:
            return True
        now = self.clock()
        readings: list[Reading] = []
        arrived: list[datetime] = []
        for topic, payload, at, retained in messages:
            try:
                found, _ = self.mapper.judge(topic, payload, at, retained, now=now)
                self.mapper.take_pending()  # kept in memory only, see above
            except BadReading:
                self.counters["left_to_routine_lane"] += 1  # it dead-letters them, once
                continue
            for reading in found:
                if self.known_home is not None and not self.known_home(reading.home):
                    self.counters["left_to_routine_lane"] += 1
                    continue
                readings.append(reading)
                arrived.append(datetime.fromtimestamp(at, UTC))
        try:
            with self._lock:
                if not readings:
                    new = 0
                elif self.log is not None:
                    new = self.log.append(readings, arrived)
                else:
                    new = self.store.add_urgent(readings, arrived)
        except (sqlite3.Error, Unavailable) as exc:
            self.counters["store_errors"] += 1
            self.status.failed(exc)
            log.error("could not store a call for help (%s); the broker keeps it until it can "
                      "be", describe(exc))
            return False
        self.status.ok()
        self.counters["received"] += len(messages)
        self.counters["stored"] += new
        if new and self.on_stored is not None:
            self.on_stored()
        return True
