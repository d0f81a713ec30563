"""The console's people: who may log in, with which role, for which homes.

Roles: `operator` (every home, or the homes listed), `family` and `neighbour` (only their
homes), `technical` (device faults only), `admin` (everything). Passwords are hashed with
Argon2id (argon2-cffi, the password-hashing competition's winner, with its own salts and
parameters in each hash); API tokens are random and kept only as their SHA-256, so neither
can be read back from the store. The table is the console's own, in the data folder's store.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from telecare.alert import Alert
from telecare.db import Conn, Transaction

ROLES = ("operator", "family", "neighbour", "technical", "admin")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS console_users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    homes TEXT NOT NULL,          -- JSON list; empty: every home (operator, technical, admin)
    password_hash TEXT,
    token_hash TEXT UNIQUE,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS console_used_links (   -- acknowledge links work once without a login
    token_hash TEXT PRIMARY KEY,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS console_audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    who TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id TEXT,
    detail TEXT
);
"""
_hasher = PasswordHasher()


@dataclass(frozen=True)
class User:
    name: str
    role: str
    homes: tuple[str, ...]

    def sees_home(self, home: str) -> bool:
        if self.role in ("family", "neighbour"):
            return home in self.homes
        return not self.homes or home in self.homes

    def sees(self, alert: Alert) -> bool:
        """Family and neighbours see their homes' alerts but never device faults (those are
        for the technical team); the technical team sees only device faults."""
        if not self.sees_home(alert.home):
            return False
        technical = alert.evidence.get("audience") == "technical"
        if self.role == "technical":
            return technical
        return not (technical and self.role in ("family", "neighbour"))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Users:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        conn.executescript(_SCHEMA)

    def add(self, name: str, role: str, homes: list[str], password: str | None,
            with_token: bool = False) -> str | None:
        """Add or replace a person; returns their new API token if asked for (shown once)."""
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if role in ("family", "neighbour") and not homes:
            raise ValueError(f"a {role} must be given their homes (--homes H1,H2)")
        if password is None and not with_token:
            raise ValueError("give a password, a token, or both")
        token = secrets.token_urlsafe(32) if with_token else None
        with Transaction(self.conn) as c:
            c.execute("INSERT INTO console_users VALUES (?,?,?,?,?,?) ON CONFLICT (name) DO"
                      " UPDATE SET role = excluded.role, homes = excluded.homes,"
                      " password_hash = excluded.password_hash, token_hash ="
                      " excluded.token_hash, created = excluded.created",
                      (name, role, json.dumps(sorted(homes)),
                       _hasher.hash(password) if password is not None else None,
                       _token_hash(token) if token else None, time.time()))
        return token

    def _user(self, row: tuple[str, str, str] | None) -> User | None:
        return User(row[0], row[1], tuple(json.loads(row[2]))) if row else None

    def get(self, name: str) -> User | None:
        return self._user(self.conn.execute(
            "SELECT name, role, homes FROM console_users WHERE name = ?", (name,)).fetchone())

    def login(self, name: str, password: str) -> User | None:
        row = self.conn.execute("SELECT name, role, homes, password_hash FROM console_users"
                                " WHERE name = ?", (name,)).fetchone()
        if row is None or row[3] is None:
            _hasher.hash(password)  # the same work as a real check: names are not guessable
            return None
        try:
            _hasher.verify(row[3], password)
        except (VerificationError, InvalidHashError):
            return None
        return self._user(row[:3])

    def by_token(self, token: str) -> User | None:
        return self._user(self.conn.execute(
            "SELECT name, role, homes FROM console_users WHERE token_hash = ?",
            (_token_hash(token),)).fetchone())

    def use_link(self, token: str) -> bool:
        """Mark an acknowledge link used; False if it was used before."""
        with Transaction(self.conn) as c:
            return bool(c.execute("INSERT OR IGNORE INTO console_used_links VALUES (?,?)",
                                  (_token_hash(token), time.time())).rowcount)

    def audit(self, who: str, action: str, alert_id: str | None, detail: str | None = None
              ) -> None:
        with Transaction(self.conn) as c:
            c.execute("INSERT INTO console_audit (at, who, action, alert_id, detail) VALUES"
                      " (?,?,?,?,?)", (time.time(), who, action, alert_id, detail))

    def audit_log(self, limit: int = 50) -> list[tuple[float, str, str, str | None, str | None]]:
        return self.conn.execute("SELECT at, who, action, alert_id, detail FROM console_audit"
                                 " ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
