"""Parsed home files kept between starts, so 10,000 homes' configuration loads in a second.

PyYAML, even with libyaml's parser, builds its objects in Python: 10,000 home files took about
5 s to parse, at every start of every process of `telecare run`, during which a fresh service
was not yet subscribed. What each file parsed to is kept in one JSON file under the user's
cache folder (`TELECARE_CACHE_DIR`, else `$XDG_CACHE_HOME/telecare`), one per configuration
directory, each entry under the BLAKE2 digest of the file's bytes: a file that changed in any
way is parsed again, so the cache can be stale only in what it saves, never in what it gives.
Only plain documents (mappings with text keys, lists, text, whole and finite numbers, true,
false, null) are kept; anything else (a date, a set) is parsed every time. A cache folder that
cannot be written is simply not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger(__name__)
VERSION = 1


def cache_dir() -> Path:
    chosen = os.environ.get("TELECARE_CACHE_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "telecare"


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


class ParsedCache:
    """`get(name, raw)` -> (found, document); `put(name, raw, document)`; `save()` once."""

    def __init__(self, root: Path) -> None:
        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
        self.path = cache_dir() / f"config-{key}.json"
        self.entries: dict[str, list[Any]] = {}
        self.kept: dict[str, list[Any]] = {}  # what this load saw: the next cache
        self.changed = False
        try:
            loaded = orjson.loads(self.path.read_bytes())
            if isinstance(loaded, dict) and loaded.get("version") == VERSION:
                self.entries = loaded.get("files") or {}
        except (OSError, orjson.JSONDecodeError):
            pass  # no cache yet, or an unreadable one: parse everything

    @staticmethod
    def digest(raw: bytes) -> str:
        return hashlib.blake2b(raw, digest_size=16).hexdigest()

    def get(self, name: str, raw: bytes) -> tuple[bool, Any]:
        entry = self.entries.get(name)
        if entry is not None and entry[0] == self.digest(raw):
            self.kept[name] = entry
            return True, entry[1]
        return False, None

    def put(self, name: str, raw: bytes, document: Any) -> None:
        if _plain(document):
            self.kept[name] = [self.digest(raw), document]
            self.changed = True

    def save(self) -> None:
        if not self.changed and len(self.kept) == len(self.entries):
            return
        tmp: str | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".config-")
            with os.fdopen(fd, "wb") as out:
                out.write(orjson.dumps({"version": VERSION, "files": self.kept}))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.debug("configuration cache not written (%s)", type(exc).__name__)
            if tmp is not None:  # (a full disk: no half-written file left behind)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
