"""The live detect stage: follows the reading log in arrival order, runs the engine, and
commits the alerts it raised together with its checkpoint."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable

from alerts.store import AlertStore
from detect.checkpoint import Checkpoint
from detect.engine import Detector
from ingest.store import ReadingStore
from telecare.config import Config
from telecare.db import Transaction

log = logging.getLogger(__name__)


class DetectService:
    def __init__(self, conn: sqlite3.Connection, config: Config,
                 on_alerts: Callable[[], None] | None = None, batch: int = 500) -> None:
        self.conn = conn
        self.readings = ReadingStore(conn)
        self.alerts = AlertStore(conn)
        self.checkpoint = Checkpoint(conn)
        self.detector = Detector(config)
        self.on_alerts = on_alerts
        self.batch = batch
        cursor, watermark, homes = self.checkpoint.load()
        self.cursor = cursor
        self.detector.load(watermark, homes)
        self.wake = threading.Event()

    def step(self) -> int:
        """Process one batch of new readings; return how many."""
        rows = self.readings.since(self.cursor, self.batch)
        if not rows:
            return 0
        changes = []
        for _, reading in rows:
            changes.extend(self.detector.process(reading))
        cursor = rows[-1][0]
        touched = {h: self.detector.state_of(h) for h in self.detector.touched}
        with Transaction(self.conn) as c:
            self.alerts.record_in(c, changes)
            self.checkpoint.save_in(c, cursor, self.detector.watermark_text(), touched)
        self.cursor = cursor
        self.detector.touched.clear()
        if changes:
            for alert in changes:
                log.info("alert %s %s (%s, %s)", alert.id, alert.status, alert.rule,
                         alert.severity)
            if self.on_alerts is not None:
                self.on_alerts()
        return len(rows)

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        while not stop.is_set():
            if self.step() == 0:
                self.wake.wait(poll_s)
                self.wake.clear()
        while self.step():  # drain what ingest stored before it stopped
            pass
