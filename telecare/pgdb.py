"""The alert store on PostgreSQL, past one machine: the same tables and SQL as the embedded
store, on a server that every worker reaches.

The stages write their SQL once, in the part of SQL that SQLite and PostgreSQL share
(`INSERT ... ON CONFLICT`, `?` parameters); `PgConnection` runs it on psycopg 3 (the
maintained PostgreSQL adapter, chosen over hand-written protocol code) with the few
differences translated in one place: `?` becomes `%s`, `INSERT OR IGNORE` becomes `ON CONFLICT
DO NOTHING`, and a schema's SQLite types become PostgreSQL's (a Unix time in seconds needs
DOUBLE PRECISION, microseconds need BIGINT). What only a server shared by several workers
needs (row locks, `SKIP LOCKED` claims, advisory locks that keep a log's sequence numbers in
commit order, LISTEN/NOTIFY) is asked for by the stages through `shared(conn)`.

The URL is `postgresql://host:port/dbname` (`--db` or `TELECARE_DB_URL`); the user and
password come from `TELECARE_DB_USER` and `TELECARE_DB_PASSWORD` (or libpq's own PGUSER and
PGPASSWORD), never from the URL, which ends up in process lists and logs.
"""

from __future__ import annotations

import functools
import os
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import make_conninfo

SCHEMES = ("postgresql", "postgres")


class DbUrlError(ValueError):
    pass


def check_url(url: str) -> str:
    """The URL as given, once it is one this backend takes; else a DbUrlError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise DbUrlError(f"--db {url!r}: expected postgresql://host:port/dbname")
    if parts.password or parts.username:
        raise DbUrlError("--db: put no user or password in the URL (it ends up in process "
                         "lists and logs); set TELECARE_DB_USER and TELECARE_DB_PASSWORD")
    if not parts.hostname:
        raise DbUrlError(f"--db {url!r}: no host")
    return url


def open_raw(url: str, timeout_s: float = 10.0) -> psycopg.Connection[Any]:
    """A psycopg connection (autocommit) with the credentials from the environment."""
    found = {}
    if os.environ.get("TELECARE_DB_USER"):
        found["user"] = os.environ["TELECARE_DB_USER"]
    if os.environ.get("TELECARE_DB_PASSWORD"):
        found["password"] = os.environ["TELECARE_DB_PASSWORD"]
    return psycopg.connect(make_conninfo(url, **found), autocommit=True,
                           connect_timeout=max(int(timeout_s), 1))


_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b"), "BIGSERIAL PRIMARY KEY"),
          (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGSERIAL PRIMARY KEY"),
          (re.compile(r"\bINTEGER\b"), "BIGINT"),
          (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))
_OR_IGNORE = re.compile(r"^\s*INSERT OR IGNORE INTO\b", re.IGNORECASE)


@functools.lru_cache(maxsize=512)
def translate(sql: str, with_params: bool) -> str:
    """One statement in the shared SQL, as PostgreSQL takes it."""
    if sql.strip().upper() == "BEGIN IMMEDIATE":
        return "BEGIN"
    if _OR_IGNORE.match(sql):
        sql = _OR_IGNORE.sub("INSERT INTO", sql) + " ON CONFLICT DO NOTHING"
    if with_params:
        # psycopg's placeholders are %s; a literal % (LIKE 'cursor:%') is written %%.
        sql = sql.replace("%", "%%").replace("?", "%s")
    return sql


def translate_schema(script: str) -> list[str]:
    """A schema script's statements, with SQLite's types as PostgreSQL's."""
    for pattern, replacement in _TYPES:
        script = pattern.sub(replacement, script)
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def lock_key(name: str) -> int:
    """A stable 32-bit key for pg_advisory_xact_lock, the same in every worker."""
    return zlib.crc32(name.encode())


class PgConnection:
    """A psycopg connection that takes the shared SQL. Autocommit, like the embedded store's
    connections: a transaction is `telecare.db.Transaction`'s BEGIN ... COMMIT."""

    dialect = "postgresql"

    def __init__(self, url: str, connect_timeout_s: float = 10.0) -> None:
        self.url = check_url(url)
        self.connect_timeout_s = connect_timeout_s
        self.in_transaction = False
        self.raw = open_raw(url, connect_timeout_s)

    def reopen(self) -> PgConnection:
        """Another connection to the same database, for another thread."""
        return PgConnection(self.url, self.connect_timeout_s)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> psycopg.Cursor[Any]:
        statement = translate(sql, params is not None)
        word = statement.split(None, 1)[0].upper()
        if word == "ROLLBACK" and (self.raw.closed or self.raw.broken):
            self.in_transaction = False  # the server has let go of it already
            return self.raw.cursor()
        self._revive()
        if word in ("BEGIN", "SELECT") and not self.in_transaction:
            try:
                found = self.raw.execute(statement, params)
            except psycopg.OperationalError:
                if not self.raw.broken:
                    raise
                # The server restarted since this connection's last use (it learns so only
                # now): the statement starts a transaction or only reads, so it is asked
                # again, once, on a new connection.
                self._revive()
                found = self.raw.execute(statement, params)
            self.in_transaction = word == "BEGIN"
            return found
        if word in ("COMMIT", "ROLLBACK"):
            self.in_transaction = False
        return self.raw.execute(statement, params)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        self._revive()
        cur = self.raw.cursor()
        cur.executemany(translate(sql, True), params)
        return cur

    def executescript(self, script: str) -> None:
        """A schema, made once however many workers start at the same moment (two
        CREATE TABLE IF NOT EXISTS at once can collide in PostgreSQL's catalogue)."""
        self._revive()
        with self.raw.transaction():
            self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("schema"),))
            for statement in translate_schema(script):
                self.raw.execute(statement)

    def _revive(self) -> None:
        """After the server restarted, a broken connection is made again, outside a
        transaction only: a transaction cut short fails (and is tried again whole by the
        stage, like a locked database); its remaining statements are never run one by one
        on a new connection."""
        if self.raw.closed or self.raw.broken:
            if self.in_transaction:
                raise psycopg.OperationalError("the connection to PostgreSQL was lost in a "
                                               "transaction")
            self.raw = open_raw(self.url, self.connect_timeout_s)

    def close(self) -> None:
        self.raw.close()


def shared(conn: object) -> bool:
    """Whether a connection's store is shared by workers on several machines (PostgreSQL),
    so that claims and row locks are needed; the embedded store has one writer at a time."""
    return getattr(conn, "dialect", "sqlite") == "postgresql"


def xact_lock(conn: object, name: str) -> None:
    """Within a transaction on a shared store: wait for the named lock, held to the commit.
    Used where a log's sequence numbers must be handed out in commit order (a reader that
    follows `seq > cursor` would otherwise step over a row committed late) and where one
    worker at a time should do a step. Nothing on the embedded store (BEGIN IMMEDIATE has
    already made this the only writer)."""
    if shared(conn):
        conn.execute("SELECT pg_advisory_xact_lock(?)", (lock_key(name),))  # type: ignore[attr-defined]


def notify(conn: object, channel: str) -> None:
    """Tell the listeners on a shared store (delivered at commit); nothing embedded."""
    if shared(conn):
        conn.execute(f"NOTIFY {channel}")  # type: ignore[attr-defined]


class Listener:
    """Calls `on_notice` whenever one of `channels` is notified, on a thread and a
    connection of its own; after a lost connection it connects again (and calls `on_notice`
    once, since a notice may have been missed meanwhile)."""

    def __init__(self, url: str, channels: Sequence[str],
                 on_notice: Callable[[], None]) -> None:
        self.url = url
        self.channels = tuple(channels)
        self.on_notice = on_notice
        self.stopped = threading.Event()
        self.listening = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Listener:
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                with open_raw(self.url, 5) as conn:
                    for channel in self.channels:
                        conn.execute(f"LISTEN {channel}")
                    self.listening.set()
                    self.on_notice()
                    while not self.stopped.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.on_notice()
            except psycopg.Error:
                self.listening.clear()
                self.stopped.wait(1.0)

    def stop(self) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(5)
