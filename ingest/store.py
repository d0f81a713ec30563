"""The embedded reading store: readings, de-duplication, and the dead-letter place.

Readings are kept in arrival order (`rowid`), which is the order detection is handed them;
`ts` is the event time. A reading whose dedupe key was seen before is not stored again, so
redelivery after a crash or a broker restart is harmless.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telecare.db import Transaction
from telecare.reading import Reading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
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
);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts_us);
CREATE TABLE IF NOT EXISTS dead_letter_overflow (
    source TEXT NOT NULL,
    code TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_us INTEGER NOT NULL,
    last_us INTEGER NOT NULL,
    PRIMARY KEY (source, code)
);
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


def _us(ts: datetime) -> int:
    return int(round(ts.timestamp() * 1_000_000))


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
            overflow: list[tuple[str, str]] | None = None) -> list[bool]:
        """Store readings and dead letters in one transaction; for each reading, True if new,
        False if a duplicate. `overflow` counts (source, code) of dead letters past the
        per-source limit: counted, not kept one by one."""
        received = _us(received_at)
        out = []
        with Transaction(self.conn) as c:
            for r in readings:
                cur = c.execute(
                    "INSERT OR IGNORE INTO readings (dedupe_key, home, device, kind, ts_us, value,"
                    " seq, battery, received_us) VALUES (?,?,?,?,?,?,?,?,?)",
                    (r.dedupe_key(), r.home, r.device, r.kind, _us(r.ts), r.value, r.seq,
                     r.battery, received),
                )
                out.append(cur.rowcount == 1)
            for d in dead or []:
                c.execute(
                    "INSERT INTO dead_letters (received_us, topic, payload, payload_size, code,"
                    " reason) VALUES (?,?,?,?,?,?)",
                    (_us(d.received_at), d.topic[:1024], d.payload[:DEAD_LETTER_KEEP_BYTES],
                     d.payload_size, d.code, d.reason),
                )
            for source, code in overflow or []:
                c.execute(
                    "INSERT INTO dead_letter_overflow VALUES (?,?,1,?,?) ON CONFLICT (source, code)"
                    " DO UPDATE SET count = count + 1, last_us = excluded.last_us",
                    (source, code, received, received),
                )
        return out

    def add_dead_letter(self, topic: str, payload: bytes, code: str, reason: str,
                        received_at: datetime) -> None:
        self.add([], received_at,
                 [DeadLetter(received_at, topic, payload, len(payload), code, reason)])

    def overflow_counts(self) -> dict[tuple[str, str], int]:
        rows = self.conn.execute("SELECT source, code, count FROM dead_letter_overflow")
        return {(s, c): n for s, c, n in rows}

    def max_rowid(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(rowid), 0) FROM readings").fetchone()[0])

    def since(self, after_rowid: int, limit: int = 1000) -> list[tuple[int, Reading]]:
        """Readings stored after `after_rowid`, in arrival order: detection's input."""
        rows = self.conn.execute(
            "SELECT rowid, home, device, kind, ts_us, value, seq, battery FROM readings"
            " WHERE rowid > ? ORDER BY rowid LIMIT ?",
            (after_rowid, limit),
        ).fetchall()
        return [(row[0], _row_reading(row[1:])) for row in rows]

    def export(self, since: datetime | None = None, until: datetime | None = None
               ) -> Iterator[Reading]:
        """Every stored reading in event-time order, optionally within [since, until)."""
        low = _us(since) if since else -(2**62)
        high = _us(until) if until else 2**62
        cur = self.conn.execute(
            "SELECT home, device, kind, ts_us, value, seq, battery FROM readings"
            " WHERE ts_us >= ? AND ts_us < ? ORDER BY ts_us, rowid",
            (low, high),
        )
        for row in cur:
            yield _row_reading(row)

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


def _row_reading(row: tuple[Any, ...]) -> Reading:
    home, device, kind, ts_us, value, seq, battery = row
    return Reading(home, device, kind, float(value), _from_us(ts_us), seq, battery)
