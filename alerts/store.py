"""Alert state in the embedded store.

`alerts` holds each occurrence's current state; `alert_events` is the append-only log of
changes (firing, resolved) that the alerts stage follows. An event is unique by (alert id,
status): a detection restart that re-derives a change cannot log it twice. `resident_ok`
holds the resident's own "I'm OK" presses, for the alerts stage to act on;
`acknowledgements` and `feedback` hold what people said of each alert, beside it.
"""

from __future__ import annotations

import json

from telecare.alert import Alert
from telecare.clock import Clock, wall_clock
from telecare.db import Conn
from telecare.pgdb import notify, xact_lock
from telecare.reading import format_ts

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    home TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    logged_us INTEGER NOT NULL,
    UNIQUE (alert_id, status)
);
CREATE TABLE IF NOT EXISTS acknowledgements (
    alert_id TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    at REAL NOT NULL,
    note TEXT,
    PRIMARY KEY (alert_id, by_whom)
);
CREATE TABLE IF NOT EXISTS feedback (
    alert_id TEXT NOT NULL,
    by_whom TEXT NOT NULL,
    verdict TEXT NOT NULL,          -- useful, false_alarm
    why TEXT,
    at REAL NOT NULL,
    PRIMARY KEY (alert_id, by_whom)
);
CREATE TABLE IF NOT EXISTS resident_ok (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    home TEXT NOT NULL,
    at TEXT NOT NULL,
    UNIQUE (home, at)
);
"""


class AlertStore:
    def __init__(self, conn: Conn,
                 clock: Clock = wall_clock) -> None:
        self.conn = conn
        self.clock = clock  # when a change is logged: the start of the response figures
        conn.executescript(_SCHEMA)

    def record_in(self, conn: Conn, changes: list[Alert]) -> None:
        """Record alert changes within the caller's transaction."""
        if not changes:
            return
        now_us = int(self.clock().timestamp() * 1_000_000)
        # On a shared store the log's sequence numbers must be handed out in commit order:
        # the alerts stage reads `seq > cursor`, and would step over an event committed
        # after a later one. One writer of events at a time (held to the commit).
        xact_lock(conn, "alert_events")
        notify(conn, "telecare_alerts")
        for alert in changes:
            body = alert.to_json()
            conn.execute(
                "INSERT INTO alerts (id, home, rule, severity, status, raised_at, body)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET status=excluded.status,"
                " body=excluded.body WHERE alerts.status != 'resolved'",  # closed stays closed
                (alert.id, alert.home, alert.rule, alert.severity, alert.status,
                 format_ts(alert.raised_at), body),
            )
            conn.execute(
                "INSERT OR IGNORE INTO alert_events (alert_id, status, body, logged_us)"
                " VALUES (?,?,?,?)",
                (alert.id, alert.status, body, now_us),
            )

    def record_ok_in(self, conn: Conn, home: str, at: str) -> None:
        """The resident pressed their "I'm OK" button (once per press, however often the
        reading is processed)."""
        xact_lock(conn, "resident_ok")  # in commit order, as the events above
        notify(conn, "telecare_alerts")
        conn.execute("INSERT OR IGNORE INTO resident_ok (home, at) VALUES (?,?)", (home, at))

    def oks_since(self, seq: int) -> list[tuple[int, str]]:
        return [(s, h) for s, h in self.conn.execute(
            "SELECT seq, home FROM resident_ok WHERE seq > ? ORDER BY seq", (seq,))]

    def events_since(self, seq: int, limit: int = 200) -> list[tuple[int, Alert]]:
        rows = self.conn.execute(
            "SELECT seq, body FROM alert_events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        ).fetchall()
        return [(s, Alert.from_json_obj(json.loads(b))) for s, b in rows]

    def all(self) -> list[Alert]:
        rows = self.conn.execute("SELECT body FROM alerts ORDER BY raised_at, id").fetchall()
        return [Alert.from_json_obj(json.loads(b)) for (b,) in rows]

    def of_home(self, home: str) -> list[Alert]:
        """One home's alerts, oldest first."""
        rows = self.conn.execute("SELECT body FROM alerts WHERE home = ? ORDER BY raised_at, id",
                                 (home,)).fetchall()
        return [Alert.from_json_obj(json.loads(b)) for (b,) in rows]

    def all_firing(self) -> list[Alert]:
        rows = self.conn.execute("SELECT body FROM alerts WHERE status = 'firing' ORDER BY"
                                 " raised_at, id").fetchall()
        return [Alert.from_json_obj(json.loads(b)) for (b,) in rows]

    def firing(self, home: str) -> list[Alert]:
        rows = self.conn.execute("SELECT body FROM alerts WHERE home = ? AND status = 'firing'"
                                 " ORDER BY raised_at, id", (home,)).fetchall()
        return [Alert.from_json_obj(json.loads(b)) for (b,) in rows]

    def feedback(self, home: str | None = None, rule: str | None = None
                 ) -> list[tuple[Alert, str, str, str | None]]:
        """People's verdicts beside their alerts, for detection and threshold tuning:
        (alert, who, useful or false_alarm, why)."""
        rows = self.conn.execute(
            "SELECT a.body, f.by_whom, f.verdict, f.why FROM feedback f JOIN alerts a ON"
            " a.id = f.alert_id WHERE (CAST(? AS TEXT) IS NULL OR a.home = ?) AND"
            " (CAST(? AS TEXT) IS NULL OR a.rule = ?) ORDER BY a.raised_at, f.by_whom",
            (home, home, rule, rule)).fetchall()
        return [(Alert.from_json_obj(json.loads(b)), w, v, y) for b, w, v, y in rows]

    def get(self, alert_id: str) -> Alert | None:
        row = self.conn.execute("SELECT body FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        return Alert.from_json_obj(json.loads(row[0])) if row else None
