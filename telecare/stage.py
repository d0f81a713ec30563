"""How a stage's loop reports on itself and lives through errors: `StageStatus`.

Each stage's loop calls `ok()` after a pass that worked and `failed(exc)` when one raised; the
answer is how long to wait before trying again (doubling from half a second to 30 s). A
database that is full, read-only or locked (`sqlite3.OperationalError`), or a server that
cannot be reached for now (`Unavailable`), is a condition that passes: the stage waits as long
as it takes and resumes by itself. Anything else that fails `max_failures` times running makes
the stage `fatal`: the process then stops with `EXIT_STAGE_FAILED`, so that systemd or compose
restarts it, instead of living on as a shell that looks healthy. `/healthz` reads the status:
alive, the error in words, since when.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

EXIT_STAGE_FAILED = 3  # the process's exit status when a stage could not go on


class Unavailable(Exception):
    """A store or log on another machine that cannot be reached for now (a server down, a
    cluster electing a leader): waited out like a locked database, never fatal."""


class Wake(Protocol):
    """How one stage wakes the next: a `threading.Event` within a process, a
    `multiprocessing` event between the processes of `telecare run`."""

    def set(self) -> None: ...

    def clear(self) -> None: ...

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def describe(exc: BaseException) -> str:
    """The error in words for logs and /healthz: its type and, for the database, SQLite's
    message (which names the condition, never a reading's values)."""
    if isinstance(exc, sqlite3.Error | Unavailable):
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return type(exc).__name__


class StageStatus:
    def __init__(self, name: str, max_failures: int = 10) -> None:
        self.name = name
        self.max_failures = max_failures
        self.failures = 0  # running, since the last pass that worked
        self.error: str | None = None
        self.failing_since: float | None = None  # wall-clock seconds
        self.last_ok: float | None = None
        self.fatal: str | None = None
        self.thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def ok(self) -> None:
        with self._lock:
            self.failures, self.error, self.failing_since = 0, None, None
            self.last_ok = time.time()

    def failed(self, exc: BaseException) -> float:
        """Note a failed pass; return the wait before the next try."""
        with self._lock:
            self.failures += 1
            self.error = describe(exc)
            if self.failing_since is None:
                self.failing_since = time.time()
            passing = isinstance(exc, sqlite3.OperationalError | Unavailable)
            if not passing and self.failures >= self.max_failures:
                self.fatal = f"{self.name}: {self.error} ({self.failures} times running)"
            return min(0.5 * 2 ** min(self.failures - 1, 6), 30.0)

    def attempt(self, stop: threading.Event, what: str, step: Callable[[], T],
                undo: Callable[[], None] | None = None) -> T | None:
        """One pass of a stage's loop: `step()`'s result, or None after a failure, which
        is noted and logged, `undo` run (to throw away a half-done pass), and waited out."""
        try:
            result = step()
        except Exception as exc:
            delay = self.failed(exc)
            log.error("%s failed (%s); retrying in %.1f s", what, describe(exc), delay)
            if undo is not None:
                try:
                    undo()
                except Exception as again:
                    log.error("could not undo the failed %s (%s)", what, describe(again))
            stop.wait(delay)
            return None
        self.ok()
        return result

    def last(self, what: str, step: Callable[[], object]) -> None:
        """A stage's last pass before it stops: a failure is noted and logged (the work
        resumes from the last commit at the next start), never raised."""
        try:
            step()
            self.ok()  # an error of an earlier pass is behind it: the work is done
        except Exception as exc:
            log.error("%s could not finish before stopping (%s): it resumes from its last "
                      "commit at the next start", what, describe(exc))
            self.failed(exc)

    def alive(self) -> bool:
        return self.thread is None or self.thread.is_alive()

    def report(self) -> dict[str, object]:
        out: dict[str, object] = {"alive": self.alive(), "ok": self.error is None
                                  and self.fatal is None and self.alive()}
        if self.error is not None:
            out["error"] = self.error
            out["failing_for_s"] = round(time.time() - (self.failing_since or time.time()), 1)
        if self.fatal is not None:
            out["fatal"] = self.fatal
        return out
