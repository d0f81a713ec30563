"""The embedded store's connection: one SQLite file under the data directory.

SQLite in WAL mode needs no server, survives a killed process with every committed row, and
lets one writer and many readers work at once. Each stage owns its own tables (see
`ingest.store`, `detect.checkpoint`, `alerts.store`); they share the file so that a stage can
commit its output and its input cursor in one transaction.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

DB_NAME = "telecare.db"


class Conn(Protocol):
    """What the stages ask of a connection: the embedded store's `sqlite3.Connection`, or
    `telecare.pgdb.PgConnection` for the alert store on PostgreSQL."""

    def execute(self, sql: str, params: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Any, /) -> Any: ...

    def executescript(self, sql: str, /) -> Any: ...

    def close(self) -> None: ...


def alert_store_url() -> str | None:
    """The alert store's PostgreSQL URL (`--db` or TELECARE_DB_URL), if there is one."""
    return os.environ.get("TELECARE_DB_URL") or None


def connect_alert_store(data_dir: str | Path) -> Conn:
    """The alert store's connection (alerts and their events, notifications, escalations,
    acknowledgements, feedback, detection's checkpoints): PostgreSQL at TELECARE_DB_URL
    (`--db`) past one machine, else the embedded store in `data_dir`."""
    url = alert_store_url()
    if url:
        from telecare.pgdb import PgConnection

        return PgConnection(url)
    return connect(data_dir)


def default_data_dir(config_dir: str | Path) -> Path:
    """Where state lives when neither --data nor TELECARE_DATA_DIR says: one folder per
    configuration directory, so two deployments (or two scenario bundles) never share state."""
    env = os.environ.get("TELECARE_DATA_DIR")
    if env:
        return Path(env)
    resolved = Path(config_dir).resolve()
    digest = hashlib.sha256(str(resolved).encode()).hexdigest()[:10]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "telecare" / f"{resolved.name or 'root'}-{digest}"


def connect(data_dir: str | Path) -> sqlite3.Connection:
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path / DB_NAME, timeout=30, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    # NORMAL: a commit survives the process being killed (the WAL is in the OS's hands);
    # only a power cut can lose the last commits. FULL would fsync every commit.
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    # The de-duplication index of a month's readings is far bigger than SQLite's default
    # 2 MB page cache, and each new reading lands at a random place in it: with the default,
    # a backlog's inserts waited on page reads. 64 MB of cache and the file mapped in memory
    # keep the hot pages at hand (memory is only taken as pages are used).
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA mmap_size=268435456")
    return conn


class Transaction:
    """`with Transaction(conn):` BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error (BEGIN on
    PostgreSQL)."""

    # Any: the embedded store's own callers use what only sqlite3 has (total_changes).
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def __enter__(self) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def data_dir_of(conn: sqlite3.Connection) -> Path:
    """The data directory a connection's store lives in."""
    return Path(conn.execute("PRAGMA database_list").fetchone()[2]).parent


def reopener(conn: Conn) -> Callable[[], Any]:
    """How to open another connection to the store `conn` is on (for another thread)."""
    reopen = getattr(conn, "reopen", None)
    if reopen is not None:
        return reopen
    where = data_dir_of(conn)  # type: ignore[arg-type]
    return lambda: connect(where)


T = TypeVar("T")


class PerThread(Generic[T]):
    """`get()`: the same store, on a connection of the calling thread's own, made at its first
    call and kept. For questions asked from other threads (/healthz, /metrics, a child
    process's report, ingest's spool check): a stage's connection used from another thread
    once ended the stage's transaction under it."""

    def __init__(self, conn: Any, wrap: Callable[[Any], T]) -> None:
        self.reopen = reopener(conn)  # asked here, on the owner's thread
        self.wrap = wrap
        self._local = threading.local()

    def get(self) -> T:
        found: T | None = getattr(self._local, "value", None)
        if found is None:
            found = self._local.value = self.wrap(self.reopen())
        return found
