"""Signed, expiring links that acknowledge one alert, carried by every notice.

The alerts stage puts one in each alert and reminder it sends (when `TELECARE_CONSOLE_URL`
says where the console is); the console checks it. Both sign with the same key: the
environment's `TELECARE_CONSOLE_SECRET`, else one kept in the data folder (made once,
readable by its owner only). itsdangerous signs and dates the token (HMAC-SHA1 over a
key derived with the salt below), so a link cannot be forged for another alert or person and
stops working after `LINK_TTL`.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

LINK_TTL = timedelta(hours=24)
_SALT = "telecare-ack-link"


def console_secret(data_dir: str | Path) -> str:
    env = os.environ.get("TELECARE_CONSOLE_SECRET")
    if env:
        return env
    path = Path(data_dir) / "console.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def ack_token(secret: str, alert_id: str, contact: str) -> str:
    return URLSafeTimedSerializer(secret, salt=_SALT).dumps({"a": alert_id, "c": contact})


def read_ack_token(secret: str, token: str, max_age: timedelta = LINK_TTL
                   ) -> tuple[str, str] | str:
    """(alert id, contact) for a good link; else why not ("expired" or "invalid")."""
    try:
        data = URLSafeTimedSerializer(secret, salt=_SALT).loads(
            token, max_age=int(max_age.total_seconds()))
    except SignatureExpired:
        return "expired"
    except BadSignature:
        return "invalid"
    if not isinstance(data, dict) or not isinstance(data.get("a"), str) or \
            not isinstance(data.get("c"), str):
        return "invalid"
    return data["a"], data["c"]
