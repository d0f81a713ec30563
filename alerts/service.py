"""The alerts stage: turn each alert change into notifications and deliver them.

Two small steps composed in plain code, each durable in the embedded store:
1. route: for each new alert event, one outbox row per contact and channel (unique, so a
   restart never queues a second notification for the same person and change), committed
   together with the stage's cursor;
2. deliver: send due outbox rows; a retryable failure is tried again with back-off, a
   permanent one (or one that keeps failing) is marked failed and reported. One channel
   failing never holds back another: each row stands alone.
Every change also gets a log line, whoever else hears of it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alerts.notifiers import DeliveryError, LogNotifier, Notifier, WebhookNotifier
from alerts.store import AlertStore
from telecare.alert import Alert
from telecare.config import Config
from telecare.db import Transaction

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    event_seq INTEGER NOT NULL,
    alert_id TEXT NOT NULL,
    status TEXT NOT NULL,
    contact TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending, sent, failed
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL,
    UNIQUE (alert_id, status, contact, channel)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt);
CREATE TABLE IF NOT EXISTS alerts_meta (key TEXT PRIMARY KEY, value TEXT);
"""
MAX_ATTEMPTS = 12


@dataclass(frozen=True)
class Delivery:
    alert_id: str
    status: str
    contact: str
    channel: str
    state: str
    attempts: int
    last_error: str | None


def backoff_s(attempts: int) -> float:
    return float(min(2 ** attempts, 300))


class AlertService:
    def __init__(self, conn: sqlite3.Connection, config: Config,
                 notifiers: Sequence[Notifier] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.conn = conn
        self.config = config
        self.store = AlertStore(conn)
        conn.executescript(_SCHEMA)
        self.notifiers = {n.channel: n for n in (notifiers or [WebhookNotifier()])}
        self.log_notifier = LogNotifier()
        self.clock = clock
        self.wake = threading.Event()
        row = conn.execute("SELECT value FROM alerts_meta WHERE key='cursor'").fetchone()
        self.cursor = int(row[0]) if row else 0

    def route(self) -> int:
        events = self.store.events_since(self.cursor)
        if not events:
            return 0
        now = self.clock()
        with Transaction(self.conn) as c:
            for seq, alert in events:
                home = self.config.home(alert.home)
                for contact in home.contacts:
                    for channel, notifier in self.notifiers.items():
                        target = notifier.target(contact)
                        if target:
                            c.execute(
                                "INSERT OR IGNORE INTO outbox (event_seq, alert_id, status,"
                                " contact, channel, target, next_attempt) VALUES (?,?,?,?,?,?,?)",
                                (seq, alert.id, alert.status, contact.name, channel, target, now),
                            )
            self.cursor = events[-1][0]
            c.execute("INSERT OR REPLACE INTO alerts_meta VALUES ('cursor', ?)",
                      (str(self.cursor),))
        for _, alert in events:
            self.log_notifier.send(alert, "")
        return len(events)

    def deliver(self) -> int:
        now = self.clock()
        rows = self.conn.execute(
            "SELECT o.id, o.channel, o.target, o.contact, o.attempts, e.body FROM outbox o"
            " JOIN alert_events e ON e.seq = o.event_seq"
            " WHERE o.state = 'pending' AND o.next_attempt <= ? ORDER BY o.id LIMIT 100",
            (now,),
        ).fetchall()
        for row_id, channel, target, contact, attempts, body in rows:
            alert = Alert.from_json_obj(json.loads(body))
            notifier = self.notifiers.get(channel)
            attempts += 1
            try:
                if notifier is None:
                    raise DeliveryError(f"no notifier for channel {channel}", False)
                notifier.send(alert, target)
            except DeliveryError as exc:
                give_up = not exc.retryable or attempts >= MAX_ATTEMPTS
                state = "failed" if give_up else "pending"
                self.conn.execute(
                    "UPDATE outbox SET state=?, attempts=?, next_attempt=?, last_error=?"
                    " WHERE id=?",
                    (state, attempts, self.clock() + backoff_s(attempts), exc.reason, row_id),
                )
                if give_up:
                    log.error("could not notify %s of %s by %s: %s (gave up after %d tries)",
                              contact, alert.id, channel, exc.reason, attempts)
                else:
                    log.warning("notifying %s of %s by %s failed: %s; retrying",
                                contact, alert.id, channel, exc.reason)
                continue
            self.conn.execute(
                "UPDATE outbox SET state='sent', attempts=?, sent_at=? WHERE id=?",
                (attempts, self.clock(), row_id),
            )
        return len(rows)

    def step(self) -> int:
        return self.route() + self.deliver()

    def deliveries(self) -> list[Delivery]:
        rows = self.conn.execute(
            "SELECT alert_id, status, contact, channel, state, attempts, last_error FROM outbox"
            " ORDER BY id"
        ).fetchall()
        return [Delivery(*r) for r in rows]

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        while not stop.is_set():
            if self.step() == 0:
                self.wake.wait(poll_s)
                self.wake.clear()
        self.step()  # one last pass for what detection committed before it stopped
