"""Detection's durable progress: how far into the reading log it has got, its watermark, and
each home's rule state. Saved in the same transaction as the alerts it raised, so a restart
resumes exactly where the last commit left off: nothing raised twice, nothing skipped."""

from __future__ import annotations

import json
from typing import Any

import orjson

from telecare.db import Conn

# orjson writes the same JSON as json.dumps(sort_keys=True), several times faster: a backlog's
# checkpoint holds every home's state.
_SORTED = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_SCHEMA = """
CREATE TABLE IF NOT EXISTS detect_state (home TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS detect_meta (key TEXT PRIMARY KEY, value TEXT);
"""

SET_META = ("INSERT INTO detect_meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET"
            " value = excluded.value")


class Checkpoint:
    """`partition` names a detection worker's share ("" for a single worker): each worker
    keeps its own cursor and watermark; home states are each home's own."""

    def __init__(self, conn: Conn, partition: str = "") -> None:
        self.conn = conn
        self.suffix = f":{partition}" if partition else ""
        conn.executescript(_SCHEMA)

    def load(self) -> tuple[int, str | None, dict[str, dict[str, Any]]]:
        meta = dict(self.conn.execute("SELECT key, value FROM detect_meta").fetchall())
        homes = {h: json.loads(s) for h, s in
                 self.conn.execute("SELECT home, state FROM detect_state").fetchall()}
        return (int(meta.get(f"cursor{self.suffix}") or 0), meta.get(f"watermark{self.suffix}"),
                homes)

    def slowest_cursor(self) -> int | None:
        """The furthest back any detection worker's cursor stands (None: none has run)."""
        rows = self.conn.execute("SELECT value FROM detect_meta WHERE key = 'cursor' OR key"
                                 " LIKE 'cursor:%'").fetchall()
        return min(int(r[0]) for r in rows) if rows else None

    def arrived_upto(self) -> tuple[int | None, set[int]]:
        """Where reading in arrival order got to, and the readings past it already taken."""
        meta = dict(self.conn.execute("SELECT key, value FROM detect_meta").fetchall())
        upto = meta.get(f"arrived{self.suffix}")
        band = json.loads(meta.get(f"band{self.suffix}") or "[]")
        return (int(upto) if upto is not None else None), set(band)

    @staticmethod
    def encode(homes: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
        """Home states as the rows `save_in` writes: done before the transaction, so the
        write lock is held only for the writing (a backlog's checkpoint is megabytes)."""
        return [(h, orjson.dumps(s, option=_SORTED).decode()) for h, s in homes.items()]

    def save_in(self, conn: Conn, cursor: int, watermark: str | None,
                homes: dict[str, dict[str, Any]] | list[tuple[str, str]],
                arrived_upto: int | None = None, band_done: set[int] | None = None) -> None:
        """Write within the caller's transaction; `homes` as states or `encode`d rows."""
        if arrived_upto is not None:
            conn.execute(SET_META,
                         (f"arrived{self.suffix}", str(arrived_upto)))
            conn.execute(SET_META,
                         (f"band{self.suffix}", json.dumps(sorted(band_done or ()))))
        conn.execute(SET_META,
                     (f"cursor{self.suffix}", str(cursor)))
        conn.execute(SET_META,
                     (f"watermark{self.suffix}", watermark))
        rows = self.encode(homes) if isinstance(homes, dict) else homes
        conn.executemany("INSERT INTO detect_state VALUES (?, ?) ON CONFLICT (home) DO UPDATE"
                         " SET state = excluded.state", rows)
