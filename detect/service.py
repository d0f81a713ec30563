"""The live detect stage: follows the reading log in arrival order, runs the engine, and
commits the alerts it raised together with its checkpoint."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from alerts.store import AlertStore
from detect.checkpoint import Checkpoint
from detect.engine import Detector
from ingest.store import ReadingStore
from telecare.clock import Clock, wall_clock
from telecare.config import Config
from telecare.db import Conn, PerThread, Transaction
from telecare.reading import Reading, format_ts
from telecare.readlog import LogReader, partition_of
from telecare.stage import StageStatus, Wake

log = logging.getLogger(__name__)


class DetectService:
    """`partition=(i, n)`: this worker follows the homes with `partition_of(home, n) == i`,
    so each home's state lives in exactly one worker however many there are.

    `hold_s`, with several ingest workers on a shared subscription: the broker hands a
    home's messages to the workers in turn, and they may arrive out of order by a few
    milliseconds. Detection reads in arrival order up to the workers' arrival watermark
    (everything that arrived before it is stored), and a reading is handed on only once
    `hold_s` of arrivals have settled after it, together with any later-arriving reading
    of the same home that is older: so each home's readings reach detection in event-time
    order as long as the workers' arrival skew stays under `hold_s`.

    Calls for help do not wait for the settle nor for any backlog: they are judged on the
    priority lane (`detect.urgent`) as soon as they are stored.

    Alerts are committed after every batch; the checkpoint (cursor, watermark, the state of
    each home touched since the last one) at most every `checkpoint_s` while catching up, and
    after every batch once caught up. A restart resumes from the checkpoint and reads again
    what came after it: detection is a function of the readings in log order, so it raises the
    same alerts with the same ids, which the store already holds (nobody is told twice), and
    a closed alert stays closed.

    `log_reader`: the reading log is elsewhere (NATS JetStream, `telecare.natslog`) and this
    is this worker's share of it; the checkpoint's cursor is then the stream position, and the
    share is acknowledged up to each checkpoint. The local store keeps only detection's own
    state and the alerts."""

    def __init__(self, conn: sqlite3.Connection, config: Config,
                 on_alerts: Callable[[], None] | None = None, batch: int = 500,
                 partition: tuple[int, int] = (0, 1), hold_s: float = 0.0,
                 clock: Clock = wall_clock, checkpoint_s: float = 5.0,
                 drain_s: float = 2.0, log_reader: LogReader | None = None,
                 db: Conn | None = None) -> None:
        # `conn`: the local store (the readings, when there is no log); `db`: the alert
        # store, where the alerts raised and the checkpoint are committed together
        # (PostgreSQL past one machine; by default the local store).
        self.conn = db if db is not None else conn
        self.readings = ReadingStore(conn)
        self.alerts = AlertStore(self.conn)
        self.partition = partition
        self.log_reader = log_reader
        share = "" if partition == (0, 1) else f"{partition[0]}/{partition[1]}"
        # A stream position is no rowid: a folder that switched logs starts its cursor afresh.
        self.checkpoint = Checkpoint(self.conn, f"log:{share}" if log_reader is not None else share)
        self.config = config
        self.detector = Detector(config)  # replaced by the checkpoint's state in _restore
        self.on_alerts = on_alerts
        self.batch = batch
        self.hold = timedelta(seconds=hold_s)
        self.clock = clock
        self.checkpoint_s = checkpoint_s
        self.drain_s = drain_s  # at stop, go on this long with what is stored, then save
        self.observed: Callable[[Reading], None] | None = None  # a hook for tests and tracing
        self.status = StageStatus("detect")
        self.skipped_unknown = 0  # stored readings of homes with no file: not detected on
        self._restore()
        self.wake: Wake = threading.Event()
        self._asked = PerThread(conn, ReadingStore)  # for backlog questions from elsewhere

    def _restore(self) -> None:
        """Detection's state as last committed: at start, and after a step that failed part
        way (its in-memory changes are thrown away and the same readings read again)."""
        cursor, watermark, homes = self.checkpoint.load()
        self.arrived_upto, self.band_done = self.checkpoint.arrived_upto()
        index, count = self.partition
        homes = {h: s for h, s in homes.items()
                 if (count == 1 or partition_of(h, count) == index) and self.config.known(h)}
        self.cursor = cursor
        self.saved_at = time.monotonic()
        self.save_cost = 0.0  # how long the last checkpoint took (wall seconds)
        self.save_cost_per_home = 0.0
        errors = self.detector.rule_errors
        self.detector = Detector(self.config)
        self.detector.rule_errors = errors  # counts for /metrics outlive a restore
        self.detector.load(watermark, homes)
        if self.log_reader is not None:
            self.log_reader.seek(cursor)

    def _settled(self, complete: datetime
                 ) -> tuple[int, int, list[tuple[int, Reading]], set[int]]:
        top, _, fetched = self.readings.arrived(self.cursor, self.arrived_upto, complete)
        settled = int(((complete - self.hold) - datetime(1970, 1, 1, tzinfo=UTC))
                      / timedelta(microseconds=1))
        if self.arrived_upto is not None:
            settled = max(settled, self.arrived_upto)
        fresh = [(rowid, at, r) for rowid, at, r in fetched if rowid not in self.band_done]
        take = [(rowid, r) for rowid, at, r in fresh if at <= settled]
        newest: dict[str, datetime] = {}
        for _, r in take:
            newest[r.home] = max(newest.get(r.home, r.ts), r.ts)
        band = [(rowid, r) for rowid, at, r in fresh if at > settled]
        early = [(rowid, r) for rowid, r in band if r.home in newest and r.ts <= newest[r.home]]
        # Band readings handed on now are remembered, so the next read (which sees the band
        # again) does not hand them on twice.
        still_in_band = {rowid for rowid, at, _ in fetched if at > settled}
        band_done = (self.band_done & still_in_band) | {rowid for rowid, _ in early}
        return top, settled, take + early, band_done

    def backlog(self) -> int:
        if self.log_reader is not None:
            return self.log_reader.pending()
        return max(self._asked.get().max_rowid() - self.cursor, 0)

    def backlog_event_s(self) -> float:
        """How far behind detection is in event time: the newest stored reading's time
        minus the stream time detection has reached."""
        newest = self._asked.get().newest_event()
        at = self.detector.watermark
        if newest is None or at is None:
            return 0.0
        return max((newest - at).total_seconds(), 0.0)

    def backlog_age_s(self) -> float:
        """How long the oldest reading detection has not yet read has been stored."""
        at = self._asked.get().received_after(self.cursor)
        return 0.0 if at is None else max((self.clock() - at).total_seconds(), 0.0)

    def step(self) -> int:
        """Process one batch of new readings; return how many."""
        arrived_upto: int | None = None
        band_done = self.band_done
        if self.log_reader is not None:
            rows = self.log_reader.fetch(self.batch, timeout_s=0.5)
            cursor = rows[-1][0] if rows else self.cursor
        elif self.hold:
            now = self.clock()
            # Several ingest workers: take, in arrival order, what arrived before every live
            # worker's arrival watermark: nothing that arrived earlier can still be on its way.
            watermark = self.readings.arrival_watermark(now)
            cutoff = min(now - self.hold, watermark) if watermark else now - self.hold
            cursor, arrived_upto, rows, band_done = self._settled(cutoff)
        else:
            rows = self.readings.since(self.cursor, self.batch)
            cursor = rows[-1][0] if rows else self.cursor
        if not rows:
            # Nothing to hand on; where reading got to moves on all the same (it need not be
            # saved: the last saved position is consistent, and reading again from it is safe).
            self.cursor, self.arrived_upto, self.band_done = cursor, arrived_upto, band_done
            self.save()  # caught up: what the last batches changed, if not saved yet
            return 0
        index, count = self.partition
        mine = [r for _, r in rows if count == 1 or partition_of(r.home, count) == index]
        known = [r for r in mine if self.config.known(r.home)]
        self.skipped_unknown += len(mine) - len(known)  # stored before their file went
        mine = known
        mine.sort(key=lambda r: r.ts)  # stable: equal times keep arrival order
        changes = []
        oks = []
        for reading in mine:
            if self.observed is not None:
                self.observed(reading)
            changes.extend(self.detector.process(reading))
            if reading.kind == "button" and reading.value >= 1:
                device = self.detector.config.home(reading.home).device(reading.device)
                if device is not None and device.role == "ok_button":
                    oks.append((reading.home, format_ts(reading.ts)))
        self.cursor, self.arrived_upto, self.band_done = cursor, arrived_upto, band_done
        caught_up = len(rows) < self.batch
        # While catching up, at most every checkpoint_s, and never more than a tenth of the
        # time (2,000 homes' state is megabytes of JSON).
        every = max(self.checkpoint_s, 10 * self.save_cost)
        states = self._states() if caught_up or \
            time.monotonic() - self.saved_at >= every else None
        if changes or oks or states is not None:
            with Transaction(self.conn) as c:
                self.alerts.record_in(c, changes)
                for home, at in oks:
                    self.alerts.record_ok_in(c, home, at)
                if states is not None:
                    self._save_in(c, states)
            if states is not None:
                self._saved()
        elif self.log_reader is not None and caught_up:
            self._commit_log()  # nothing of this share's homes changed: let the log go on
        if changes:
            for alert in changes:
                log.info("alert %s %s (%s, %s)", alert.id, alert.status, alert.rule,
                         alert.severity)
            if self.on_alerts is not None:
                self.on_alerts()
        return len(rows)

    def _states(self) -> list[tuple[str, str]]:
        """The touched homes' states, encoded, outside any transaction."""
        began = time.monotonic()
        rows = self.checkpoint.encode({h: self.detector.state_of(h)
                                       for h in self.detector.touched})
        self.save_cost = time.monotonic() - began
        if rows:
            self.save_cost_per_home = self.save_cost / len(rows)
        return rows

    def _save_in(self, c: Conn, states: list[tuple[str, str]]) -> None:
        self.checkpoint.save_in(c, self.cursor, self.detector.watermark_text(), states,
                                self.arrived_upto, self.band_done)

    def _saved(self) -> None:
        self.detector.touched.clear()
        self.saved_at = time.monotonic()
        self._commit_log()

    def _commit_log(self) -> None:
        if self.log_reader is not None:
            self.log_reader.commit(self.cursor)

    def save(self) -> None:
        """Checkpoint now what was processed since the last checkpoint."""
        if self.detector.touched:
            states = self._states()
            with Transaction(self.conn) as c:
                self._save_in(c, states)
            self._saved()

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Until `stop`: step, wait for news when idle. A step that fails is undone (the
        state as last committed is restored) and tried again after a back-off, so a full
        disk or a locked database holds detection up but never stops it for good."""
        while not stop.is_set() and self.status.fatal is None:
            took = self.status.attempt(stop, "detection step", self.step, self._restore)
            if took == 0 and self.log_reader is None:  # (a log's fetch waits for news itself)
                self.wake.wait(poll_s)
                self.wake.clear()

        def drain() -> None:
            # What ingest stored before it stopped, for a moment only: with a backlog the
            # rest waits in the store for the next start, and stopping stays quick.
            until = time.monotonic() + self.drain_s
            while time.monotonic() < until and self.step():
                pass
            expected = self.save_cost_per_home * len(self.detector.touched)
            if expected < self.drain_s:
                self.save()
            else:
                # After a backlog every home's state is due, which takes longer than a stop
                # should: the next start reads again from the last checkpoint instead.
                log.info("stopping without a last checkpoint (it would take about %.1f s); the"
                         " next start reads again from the one before", expected)

        self.status.last("detection", drain)
