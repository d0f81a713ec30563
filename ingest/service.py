"""The ingest stage: judge each MQTT message, store it or set it aside, count what happened.

`handle` is the subscriber's handler. It returns True once the message has landed: stored,
recognised as a duplicate, or dead-lettered with its reason. It returns False only when the
store could not be written, so the message stays unacknowledged and comes again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from ingest.store import ReadingStore
from telecare.reading import BadReading, parse_payload

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def wall_clock() -> datetime:
    return datetime.now(UTC)


class IngestService:
    def __init__(self, store: ReadingStore, clock: Clock = wall_clock,
                 on_stored: Callable[[], None] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.on_stored = on_stored
        self.counters: Counter[str] = Counter()
        self.dead_letter_codes: Counter[str] = Counter()
        self._lock = threading.Lock()  # one SQLite connection, possibly several callers

    def handle(self, topic: str, payload: bytes) -> bool:
        received_at = self.clock()
        self.counters["received"] += 1
        try:
            reading = parse_payload(topic, payload)
        except BadReading as bad:
            return self._dead_letter(topic, payload, bad, received_at)
        try:
            with self._lock:
                new = self.store.add([reading], received_at)[0]
        except sqlite3.Error as exc:
            self.counters["store_errors"] += 1
            log.error("could not store a reading (%s); it will be redelivered", exc)
            return False
        self.counters["stored" if new else "duplicates"] += 1
        if new and self.on_stored is not None:
            self.on_stored()
        return True

    def _dead_letter(self, topic: str, payload: bytes, bad: BadReading,
                     received_at: datetime) -> bool:
        try:
            with self._lock:
                self.store.add_dead_letter(topic, payload, bad.code, bad.detail, received_at)
        except sqlite3.Error as exc:
            self.counters["store_errors"] += 1
            log.error("could not keep a dead letter (%s); it will be redelivered", exc)
            return False
        self.counters["dead_lettered"] += 1
        self.dead_letter_codes[bad.code] += 1
        # The code and topic only: the detail may quote a health value.
        log.warning("dead-lettered a message on %s: %s", topic[:200], bad.code)
        return True
