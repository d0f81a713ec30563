"""The reading log's narrow interface: ingest appends readings, detection reads its share.

The embedded default is the local store (`ingest.store.ReadingStore`, SQLite, whose `rowid`
is the position), which the stages use directly; past one machine NATS JetStream gives this
interface (`telecare.natslog`, whose stream sequence is the position), and each stage takes
it where given (`log=`, `log_reader=`). A position only grows; a reader that committed its
alerts and position together and then restarts reads again from the position it committed,
so nothing is skipped and (alert ids being a function of the readings) nothing is raised
twice.

Homes are shared out by `partition_of`, the same function everywhere: a detection worker `I/N`
owns the homes with `partition_of(home, N) == I`, so each home's state lives in one worker.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from telecare.reading import Reading


def partition_of(home: str, partitions: int) -> int:
    """Which share a home belongs to: stable across processes, machines and restarts."""
    return zlib.crc32(home.encode()) % partitions


class ReadingLog(Protocol):
    def append(self, readings: Sequence[Reading], arrived: Sequence[datetime]) -> int:
        """Durable once it returns (else it raises, and the caller keeps the batch to send
        again); returns how many were new (a re-sent reading is dropped, not logged twice)."""
        ...


class LogReader(Protocol):
    def seek(self, after: int) -> None:
        """Read from just after `after` (a position committed earlier; 0: the beginning)."""
        ...

    def fetch(self, limit: int, timeout_s: float) -> list[tuple[int, Reading]]:
        """The next readings of this share in log order, as (position, reading), waiting up
        to `timeout_s` for the first; [] if none came."""
        ...

    def commit(self, upto: int) -> None:
        """Everything up to `upto` is done with (its alerts and the reader's checkpoint are
        committed): the log may let it go. Never raises: the position is the reader's own."""
        ...

    def pending(self) -> int:
        """How many readings of this share are logged but not yet committed by the reader."""
        ...
