"""The embedded reading store: readings, de-duplication, and the dead-letter place.

Readings are kept in arrival order (`rowid`), which is the order detection is handed them;
`ts` is the event time. A reading whose dedupe key was seen before is not stored again, so
redelivery after a crash or a broker restart is harmless.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from telecare.db import Transaction
from telecare.reading import Reading

_READING_COLUMNS = """(
    rowid INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    home TEXT NOT NULL,
    device TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_us INTEGER NOT NULL,
    value REAL NOT NULL,
    seq INTEGER,
    battery REAL,
    received_us INTEGER NOT NULL
)"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS readings {_READING_COLUMNS};
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts_us);
CREATE INDEX IF NOT EXISTS readings_arrived ON readings (received_us);
-- The priority lane's log: calls for help as they came in on their own subscription, ahead of
-- any backlog. The same readings also reach `readings`, in their place, by the routine lane.
CREATE TABLE IF NOT EXISTS urgent_readings {_READING_COLUMNS};
CREATE TABLE IF NOT EXISTS ingest_workers (
    worker TEXT PRIMARY KEY,
    low_us INTEGER NOT NULL,   -- nothing this worker has yet to write arrived before this
    beat_us INTEGER NOT NULL   -- when it last said so
);
CREATE TABLE IF NOT EXISTS dead_letter_overflow (
    source TEXT NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    PRIMARY KEY (source, code)
);
-- Home Assistant states waiting for their time (`ingest.mapping`): stored with the batch that
-- took them, so a restart between a state and its time loses neither.
CREATE TABLE IF NOT EXISTS source_pending (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    arrived REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    received_us INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_size INTEGER NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL
);
"""
# A hostile payload can be large; what is kept aside is enough to see what it was.
DEAD_LETTER_KEEP_BYTES = 16 * 1024


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _us(ts: datetime) -> int:
    # Integer arithmetic: exact, where a float product can be a microsecond off.
    return (ts - _EPOCH) // _MICROSECOND


def _from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, UTC)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    received_at: datetime
    topic: str
    payload: bytes
    payload_size: int
    code: str
    reason: str


class ReadingStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(_SCHEMA)

    def add(self, readings: list[Reading], received_at: datetime,
            dead: list[DeadLetter] | None = None,
            overflow: list[tuple[str, str]] | None = None,
            arrived: list[datetime] | None = None,
            worker: tuple[str, datetime] | None = None,
            pending: dict[str, tuple[str, float] | None] | None = None) -> int:
        """Store readings and dead letters in one transaction; returns how many readings
        were new (the rest were duplicates). `overflow` counts (source, code) of dead letters
        past the per-source limit: counted, not kept one by one. `arrived`: each reading's own
        arrival time, where known (else `received_at`). `worker`: (name, low) for the
        arrival watermark of an ingest worker (see `arrival_watermark`). `pending`: source
        states now waiting for their time (None: no longer waiting)."""
        received = _us(received_at)
        rows = [(r.dedupe_key(), r.home, r.device, r.kind, _us(r.ts), r.value, r.seq, r.battery,
                 _us(arrived[i]) if arrived is not None else received)
                for i, r in enumerate(readings)]
        with Transaction(self.conn) as c:
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO readings (dedupe_key, home, device, kind, ts_us, value,"
                " seq, battery, received_us) VALUES (?,?,?,?,?,?,?,?,?)", rows)
            new = c.total_changes - before
            for d in dead or []:
                c.execute(
                    "INSERT INTO dead_letters (received_us, topic, payload, payload_size, code,"
                    " reason) VALUES (?,?,?,?,?,?)",
                    (_us(d.received_at), d.topic[:1024], d.payload[:DEAD_LETTER_KEEP_BYTES],
                     d.payload_size, d.code, d.reason),
                )
            for key, waiting in (pending or {}).items():
                if waiting is None:
                    c.execute("DELETE FROM source_pending WHERE key = ?", (key,))
                else:
                    c.execute("INSERT OR REPLACE INTO source_pending VALUES (?,?,?)",
                              (key, *waiting))
            if worker is not None:
                c.execute("INSERT OR REPLACE INTO ingest_workers VALUES (?,?,?)",
                          (worker[0], _us(worker[1]), _us(received_at)))
            for source, code in overflow or []:
                c.execute(
                    "INSERT INTO dead_letter_overflow VALUES (?,?,1,?,?) ON CONFLICT (source, code)"
                    " DO UPDATE SET count = count + 1, last_us = excluded.last_us",
                    (source, code, _us(received_at), _us(received_at)),
                )
        return new

    def add_urgent(self, readings: list[Reading], arrived: list[datetime]) -> int:
        """Store calls for help taken on the priority lane; returns how many were new."""
        rows = [(r.dedupe_key(), r.home, r.device, r.kind, _us(r.ts), r.value, r.seq, r.battery,
                 _us(at)) for r, at in zip(readings, arrived, strict=True)]
        with Transaction(self.conn) as c:
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO urgent_readings (dedupe_key, home, device, kind, ts_us,"
                " value, seq, battery, received_us) VALUES (?,?,?,?,?,?,?,?,?)", rows)
            return c.total_changes - before

    def pending(self) -> dict[str, tuple[str, float]]:
        """Source states waiting for their time, as the last batch left them."""
        rows = self.conn.execute("SELECT key, state, arrived FROM source_pending")
        return {key: (state, arrived) for key, state, arrived in rows}

    def pending_one(self, key: str) -> tuple[str, float] | None:
        row = self.conn.execute("SELECT state, arrived FROM source_pending WHERE key = ?",
                                (key,)).fetchone()
        return (row[0], row[1]) if row else None

    def devices_of(self, home: str) -> dict[str, tuple[datetime, float | None]]:
        """Each of a home's devices: its latest reading's time and latest battery (if any)."""
        rows = self.conn.execute(
            "SELECT device, max(ts_us), (SELECT battery FROM readings r2 WHERE r2.home = r.home"
            " AND r2.device = r.device AND battery IS NOT NULL ORDER BY ts_us DESC LIMIT 1)"
            " FROM readings r WHERE home = ? GROUP BY device", (home,)).fetchall()
        return {d: (_from_us(t), b) for d, t, b in rows}

    def day_of(self, home: str) -> list[tuple[str, str, datetime]]:
        """A home's last 24 hours of readings before its newest: (device, kind, time)."""
        row = self.conn.execute("SELECT max(ts_us) FROM readings WHERE home = ?",
                                (home,)).fetchone()
        if not row or row[0] is None:
            return []
        rows = self.conn.execute(
            "SELECT device, kind, ts_us FROM readings WHERE home = ? AND ts_us > ? ORDER BY"
            " ts_us", (home, row[0] - 24 * 3600 * 1_000_000)).fetchall()
        return [(d, k, _from_us(t)) for d, k, t in rows]

    def urgent_since(self, after_rowid: int, limit: int = 200
                     ) -> list[tuple[int, datetime, Reading]]:
        """Calls for help on the priority lane after `after_rowid`: (rowid, arrival, reading)."""
        rows = self.conn.execute(
            "SELECT rowid, home, device, kind, ts_us, value, seq, battery, received_us FROM"
            " urgent_readings WHERE rowid > ? ORDER BY rowid LIMIT ?", (after_rowid, limit)
        ).fetchall()
        return [(row[0], _from_us(row[8]), _row_reading(row[1:8])) for row in rows]

    def add_dead_letter(self, topic: str, payload: bytes, code: str, reason: str,
                        received_at: datetime) -> None:
        self.add([], received_at,
                 [DeadLetter(received_at, topic, payload, len(payload), code, reason)])

    def arrived(self, after_rowid: int, after_us: int | None, upto: datetime
                ) -> tuple[int, int, list[tuple[int, int, Reading]]]:
        """Readings that arrived up to `upto` and were not taken before, in arrival order.

        Taken before means: arrived at or before `after_us`, and stored at or before
        `after_rowid`. A row stored later but with an older arrival (a worker that was slow
        to write) is still found by its rowid: nothing is skipped. Returns the new
        (after_rowid, after_us) and the rows as (rowid, arrival in µs, reading)."""
        upto_us = _us(upto)
        low = after_us if after_us is not None else -(2**62)
        upto_us = max(upto_us, low)
        self.conn.execute("BEGIN")  # one snapshot: max(rowid) and the rows agree
        try:
            top = int(self.conn.execute("SELECT coalesce(max(rowid), 0) FROM readings")
                      .fetchone()[0])
            rows = self.conn.execute(
                "SELECT rowid, home, device, kind, ts_us, value, seq, battery, received_us"
                " FROM readings WHERE received_us > ? AND received_us <= ? AND rowid <= ?"
                " UNION SELECT rowid, home, device, kind, ts_us, value, seq, battery, received_us"
                " FROM readings WHERE rowid > ? AND rowid <= ? AND received_us <= ?"
                " ORDER BY 1",
                (low, upto_us, top, after_rowid, top, low),
            ).fetchall()
        finally:
            self.conn.execute("COMMIT")
        return top, upto_us, [(row[0], row[8], _row_reading(row[1:8])) for row in rows]

    def arrival_watermark(self, now: datetime, alive: float = 5.0) -> datetime | None:
        """The earliest arrival time that a live ingest worker may still have to write:
        every reading that arrived before it is already stored. None if no worker is live."""
        rows = self.conn.execute("SELECT min(low_us) FROM ingest_workers WHERE beat_us >= ?",
                                 (_us(now) - int(alive * 1_000_000),)).fetchone()
        return _from_us(rows[0]) if rows and rows[0] is not None else None

    def overflow_counts(self) -> dict[tuple[str, str], int]:
        rows = self.conn.execute("SELECT source, code, count FROM dead_letter_overflow")
        return {(s, c): n for s, c, n in rows}

    def received_after(self, rowid: int) -> datetime | None:
        """When the first reading stored after `rowid` arrived (None: there is none)."""
        row = self.conn.execute("SELECT received_us FROM readings WHERE rowid > ? ORDER BY"
                                " rowid LIMIT 1", (rowid,)).fetchone()
        return _from_us(row[0]) if row else None

    def newest_event(self) -> datetime | None:
        """The event time of the newest stored reading (an index look-up)."""
        row = self.conn.execute("SELECT max(ts_us) FROM readings").fetchone()
        return _from_us(row[0]) if row and row[0] is not None else None

    def max_rowid(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(rowid), 0) FROM readings").fetchone()[0])

    def since(self, after_rowid: int, limit: int = 1000,
              received_before: datetime | None = None) -> list[tuple[int, Reading]]:
        """Readings stored after `after_rowid`, in arrival order: detection's input. With
        `received_before`, only the leading run of rows received before then."""
        rows = self.conn.execute(
            "SELECT rowid, home, device, kind, ts_us, value, seq, battery, received_us"
            " FROM readings WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after_rowid, limit),
        ).fetchall()
        if received_before is not None:
            cutoff = _us(received_before)
            for i, row in enumerate(rows):
                if row[8] > cutoff:
                    rows = rows[:i]
                    break
        return [(row[0], _row_reading(row[1:8])) for row in rows]

    def export(self, since: datetime | None = None, until: datetime | None = None
               ) -> Iterator[Reading]:
        """Every stored reading in event-time order, optionally within [since, until)."""
        low = _us(since) if since else -(2**62)
        high = _us(until) if until else 2**62
        cur = self.conn.execute(
            "SELECT home, device, kind, ts_us, value, seq, battery, received_us FROM readings"
            " WHERE ts_us >= ? AND ts_us < ? ORDER BY ts_us, rowid",
            (low, high),
        )
        for row in cur:
            # A reading whose source sent no time was stamped with its arrival: the two agree
            # to the microsecond, which a device's own clock never does by chance.
            yield _row_reading(row[:7], on_arrival=row[3] == row[7])

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM readings").fetchone()[0])

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.conn.execute(
            "SELECT received_us, topic, payload, payload_size, code, reason FROM dead_letters"
            " ORDER BY id"
        ).fetchall()
        return [DeadLetter(_from_us(r[0]), r[1], bytes(r[2]), r[3], r[4], r[5]) for r in rows]

    def dead_letter_count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0])

    def set_aside(self) -> dict[str, int]:
        """Everything ever set aside: kept one by one, counted past a flood's limit, and
        kept once but since pruned. Nothing set aside goes uncounted."""
        kept = self.dead_letter_count()
        flood = int(self.conn.execute("SELECT coalesce(sum(count), 0) FROM"
                                      " dead_letter_overflow").fetchone()[0])
        row = self.conn.execute("SELECT value FROM store_meta WHERE key ="
                                " 'dead_letters_pruned'").fetchone()
        pruned = int(row[0]) if row else 0
        return {"kept": kept, "counted_in_a_flood": flood, "pruned": pruned,
                "total": kept + flood + pruned}

    def prune(self, received_before: datetime, upto_rowid: int, keep_dead_letters: int,
              chunk: int = 20_000) -> tuple[int, int]:
        """Delete readings that arrived before `received_before` and that every reader of
        the log has passed (`upto_rowid`), a chunk per transaction so ingest is not held up;
        keep only the newest `keep_dead_letters` dead letters (the rest stay counted).
        Returns (readings, dead letters) deleted."""
        cutoff = _us(received_before)
        readings = 0
        low = int(self.conn.execute("SELECT coalesce(min(rowid), 0) FROM readings")
                  .fetchone()[0])
        while low <= upto_rowid:
            high = min(low + chunk - 1, upto_rowid)
            with Transaction(self.conn) as c:
                before = c.total_changes
                c.execute("DELETE FROM readings WHERE rowid BETWEEN ? AND ? AND"
                          " received_us < ?", (low, high, cutoff))
                readings += c.total_changes - before
            low = high + 1
        with Transaction(self.conn) as c:
            # The priority lane's copies are judged within moments of arriving.
            c.execute("DELETE FROM urgent_readings WHERE received_us < ?", (cutoff,))
            top = int(c.execute("SELECT coalesce(max(id), 0) FROM dead_letters").fetchone()[0])
            before = c.total_changes
            c.execute("DELETE FROM dead_letters WHERE id <= ?", (top - keep_dead_letters,))
            dead = c.total_changes - before
            c.execute("INSERT INTO store_meta VALUES ('dead_letters_pruned', ?) ON CONFLICT"
                      " (key) DO UPDATE SET value = value + excluded.value", (dead,))
        return readings, dead


def _row_reading(row: tuple[Any, ...], on_arrival: bool = False) -> Reading:
    home, device, kind, ts_us, value, seq, battery = row
    return Reading(home, device, kind, float(value), _from_us(ts_us), seq, battery, on_arrival)
