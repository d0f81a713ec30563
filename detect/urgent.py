"""Detection's priority lane: calls for help judged the moment they are stored.

Ingest's priority lane (`ingest.urgent`) stores presses and falls in the priority log ahead of
any backlog. This judge follows that log with a cursor of its own and decides each one with
the home's own call-for-help rules (`CallForHelp`: the same settings, the same repeat window),
kept here as a copy with their own saved state: the routine detector may be hours behind in
event time, and its rules must meet each press in its place among the home's readings.

When the routine lane reaches the same press, its rule raises the same alert, with the same
id and words; the alert store already holds it, so the alerts stage tells nobody twice. The
two copies agree because they see the same presses in the same order, and each decides a
press only from the presses before it.

Each step commits the alerts it raised, its cursor and its rules' state in one transaction: a
restart resumes from there, nothing raised twice, nothing skipped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from alerts.store import AlertStore
from detect.checkpoint import SET_META
from detect.rules import build_rules
from detect.rules.call_for_help import CallForHelp
from ingest.store import ReadingStore
from telecare.alert import Alert
from telecare.clock import Clock, wall_clock
from telecare.config import Config
from telecare.db import Conn, Transaction
from telecare.reading import format_ts, parse_ts
from telecare.readlog import LogReader, partition_of
from telecare.stage import StageStatus, Wake

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS detect_urgent (
    home TEXT NOT NULL,
    rule TEXT NOT NULL,
    last_event TEXT,
    PRIMARY KEY (home, rule)
);
CREATE TABLE IF NOT EXISTS detect_meta (key TEXT PRIMARY KEY, value TEXT);
"""


class UrgentJudge:
    """`partition=(i, n)`: judges only the homes of detection worker i of n."""

    def __init__(self, conn: Conn, config: Config,
                 on_alerts: Callable[[], None] | None = None,
                 partition: tuple[int, int] = (0, 1), clock: Clock = wall_clock,
                 log_reader: LogReader | None = None, db: Conn | None = None) -> None:
        # `conn`: the local store (the calls for help ingest stored, when there is no log);
        # `db`: the alert store, where the judge's alerts and position are committed
        # together (PostgreSQL past one machine; by default the local store).
        self.conn = db if db is not None else conn
        # Past one machine: this worker's share of the priority lane's stream on NATS; the
        # cursor is then the stream position, kept apart from a local one.
        self.log_reader = log_reader
        self.config = config
        self.on_alerts = on_alerts
        self.partition = partition
        self.clock = clock
        self.conn.executescript(_SCHEMA)
        self.readings = ReadingStore(conn)  # type: ignore[arg-type]
        self.alerts = AlertStore(self.conn, clock)
        self.key = ("urgent_cursor" if log_reader is None else "urgent_log_cursor") + (
            "" if partition == (0, 1) else f":{partition[0]}/{partition[1]}")
        self.status = StageStatus("detect-urgent")
        self.wake: Wake = threading.Event()
        self.raised = 0
        self.failures = 0  # rule exceptions contained here, per press
        self._restore()

    def _restore(self) -> None:
        row = self.conn.execute("SELECT value FROM detect_meta WHERE key = ?",
                                (self.key,)).fetchone()
        self.cursor = int(row[0]) if row and row[0] is not None else 0
        self._rules: dict[str, list[CallForHelp]] = {}
        if self.log_reader is not None:
            self.log_reader.seek(self.cursor)

    def _mine(self, home: str) -> bool:
        index, count = self.partition
        return self.config.known(home) and (count == 1 or partition_of(home, count) == index)

    def rules(self, home: str) -> list[CallForHelp]:
        found = self._rules.get(home)
        if found is None:
            found = [r for r in build_rules(self.config.home(home)) if isinstance(r, CallForHelp)]
            saved = dict(self.conn.execute("SELECT rule, last_event FROM detect_urgent WHERE"
                                           " home = ?", (home,)).fetchall())
            for rule in found:
                raw = saved.get(rule.name)
                rule.last_event = parse_ts(raw) if raw else None
            self._rules[home] = found
        return found

    def step(self) -> int:
        """Judge the calls for help stored since the last step; return how many were read."""
        if self.log_reader is not None:
            rows = self.log_reader.fetch(200, 0.5)
        else:
            rows = [(rowid, r) for rowid, _, r in self.readings.urgent_since(self.cursor)]
        if not rows:
            return 0
        raised: list[Alert] = []
        moved: set[str] = set()
        for _, reading in rows:
            if not self._mine(reading.home):
                continue
            for rule in self.rules(reading.home):
                try:
                    raised.extend(rule.observe(reading, None))
                except Exception as exc:  # one home's bad press must not stop the lane
                    # The routine lane meets the same press; its engine contains the failure
                    # and raises the technical team's rule_failed alert.
                    self.failures += 1
                    log.error("rule %s failed on the priority lane for home %s: %s",
                              rule.name, reading.home, type(exc).__name__)
                moved.add(reading.home)
        cursor = rows[-1][0]
        with Transaction(self.conn) as c:
            self.alerts.record_in(c, raised)
            c.executemany("INSERT INTO detect_urgent VALUES (?,?,?) ON CONFLICT (home, rule) DO"
                          " UPDATE SET last_event = excluded.last_event",
                          [(home, rule.name, format_ts(rule.last_event)
                            if rule.last_event else None)
                           for home in moved for rule in self._rules[home]])
            c.execute(SET_META, (self.key, str(cursor)))
        self.cursor = cursor
        if self.log_reader is not None:
            self.log_reader.commit(cursor)
        self.raised += len(raised)
        for alert in raised:
            log.info("alert %s firing (%s, %s; on the priority lane)", alert.id, alert.rule,
                     alert.severity)
        if raised and self.on_alerts is not None:
            self.on_alerts()
        return len(rows)

    def run(self, stop: threading.Event, poll_s: float = 0.05) -> None:
        """Until `stop`: judge what the priority lane stored; woken by ingest in the same
        process, else a light poll (an indexed look at the newest rows) every `poll_s`."""
        while not stop.is_set() and self.status.fatal is None:
            took = self.status.attempt(stop, "judging calls for help", self.step,
                                       self._restore)
            if not took and self.log_reader is None:  # (a stream's fetch waits itself)
                self.wake.wait(poll_s)
                self.wake.clear()
        self.status.last("judging calls for help", self.step)
