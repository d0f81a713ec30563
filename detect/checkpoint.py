"""Detection's durable progress: how far into the reading log it has got, its watermark, and
each home's rule state. Saved in the same transaction as the alerts it raised, so a restart
resumes exactly where the last commit left off: nothing raised twice, nothing skipped."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS detect_state (home TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS detect_meta (key TEXT PRIMARY KEY, value TEXT);
"""


class Checkpoint:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(_SCHEMA)

    def load(self) -> tuple[int, str | None, dict[str, dict[str, Any]]]:
        meta = dict(self.conn.execute("SELECT key, value FROM detect_meta").fetchall())
        homes = {h: json.loads(s) for h, s in
                 self.conn.execute("SELECT home, state FROM detect_state").fetchall()}
        return int(meta.get("cursor") or 0), meta.get("watermark"), homes

    def save_in(self, conn: sqlite3.Connection, cursor: int, watermark: str | None,
                homes: dict[str, dict[str, Any]]) -> None:
        """Write within the caller's transaction."""
        conn.execute("INSERT OR REPLACE INTO detect_meta VALUES ('cursor', ?)", (str(cursor),))
        conn.execute("INSERT OR REPLACE INTO detect_meta VALUES ('watermark', ?)", (watermark,))
        conn.executemany("INSERT OR REPLACE INTO detect_state VALUES (?, ?)",
                         [(h, json.dumps(s, sort_keys=True)) for h, s in homes.items()])
