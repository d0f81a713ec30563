"""The reading log on NATS JetStream, for a pipeline past one machine.

One stream, `TELECARE_READINGS`, replicated across the cluster (`?replicas=3`), holds every
reading under `telecare.readings.<partition>.<home>`; the partition is `partition_of(home,
P)` with P fixed when the stream is made and kept in its metadata, so every worker computes
it the same way. A reading is published with `Nats-Msg-Id` set to its identity
(`Reading.dedupe_key`): a re-send within the stream's duplicate window (20 minutes) is
dropped by the server. `append` returns only once JetStream has acknowledged every reading
(PubAck), so ingest acknowledges an MQTT message only after its reading is in the log.

A detection worker `I/N` reads the partitions `p` with `p % N == I` (N divides P) through a
durable pull consumer. Its position in the stream is kept in its own checkpoint, committed
with its alerts; on start, and after a failed step, it re-creates the consumer from just
after that position (`seek`), so a home's readings reach it in stream order with nothing
skipped, and it acknowledges (ack-all) up to what its checkpoint holds, which is what the
consumer's pending count (the backlog) then shows.

nats-py is asyncio; the pipeline's stages are threads. Each `NatsLog` runs its own event loop
on a thread of its own and the calls here wait on it.

The URL: `nats://host1:4222,host2:4222?replicas=3&partitions=16`; a user and password, where
the servers ask for them, come from `TELECARE_LOG_USER` and `TELECARE_LOG_PASSWORD`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from telecare.reading import Reading
from telecare.readlog import partition_of
from telecare.stage import Unavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

STREAM = "TELECARE_READINGS"
SUBJECT = "telecare.readings"
# The priority lane: calls for help on a stream of their own, which no backlog of routine
# readings can hold up (the same readings reach the routine stream too, in their place).
LANES = {"routine": (STREAM, SUBJECT), "urgent": ("TELECARE_URGENT", "telecare.urgent")}
DEFAULT_PARTITIONS = 16
DUPLICATE_WINDOW_S = 20 * 60
DUPLICATE_IN_PROCESS = 10158  # JetStream's error code: that message id is being stored now
KEEP = timedelta(days=7)  # the log is for catching up; the time series keeps the history
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class LogUrl:
    servers: list[str]
    replicas: int = 1
    partitions: int = DEFAULT_PARTITIONS

    @classmethod
    def parse(cls, url: str) -> LogUrl:
        """`nats://h1:4222,h2:4222?replicas=3&partitions=16`; ValueError in words if not."""
        parts = urlsplit(url)
        if parts.scheme != "nats" or not parts.netloc:
            raise ValueError(f"a reading log URL is nats://host:port[,host:port...], not {url!r}")
        if "@" in parts.netloc:
            raise ValueError("put the reading log's credentials in TELECARE_LOG_USER and "
                             "TELECARE_LOG_PASSWORD, not in its URL")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"replicas", "partitions"}
        if unknown:
            raise ValueError(f"unknown reading log URL option(s): {', '.join(sorted(unknown))}"
                             " (known: replicas, partitions)")
        try:
            replicas = int(query.get("replicas", "1"))
            partitions = int(query.get("partitions", str(DEFAULT_PARTITIONS)))
        except ValueError:
            raise ValueError("replicas and partitions are whole numbers") from None
        if not 1 <= replicas <= 5 or not 1 <= partitions <= 1024:
            raise ValueError("replicas is 1 to 5 and partitions 1 to 1024")
        return cls([f"nats://{h}" for h in parts.netloc.split(",") if h], replicas, partitions)


def to_row(reading: Reading, arrived: datetime) -> list[Any]:
    """A reading and its arrival as the log carries them (and ingest's publisher process is
    handed them): a JSON array, times in whole microseconds."""
    return [reading.home, reading.device, reading.kind, reading.value,
            (reading.ts - _EPOCH) // _US, reading.seq, reading.battery, reading.on_arrival,
            (arrived - _EPOCH) // _US]


def from_row(row: list[Any]) -> tuple[Reading, datetime]:
    """`to_row` undone; ValueError or TypeError for anything that is not such a row."""
    home, device, kind, value, ts_us, seq, battery, on_arrival, arrived_us = row
    return (Reading(home, device, kind, float(value), _EPOCH + ts_us * _US, seq, battery,
                    bool(on_arrival)), _EPOCH + arrived_us * _US)


def encode(reading: Reading, arrived: datetime) -> bytes:
    return orjson.dumps(to_row(reading, arrived))


def decode(data: bytes) -> tuple[Reading, datetime]:
    return from_row(orjson.loads(data))


class NatsLog:
    """The reading log on JetStream (`telecare.readlog.ReadingLog`); `reader` gives a
    detection worker's share of it."""

    def __init__(self, url: str, timeout_s: float = 10.0, name: str = "telecare",
                 lane: str = "routine") -> None:
        self.url = LogUrl.parse(url)
        self.stream, self.subject_prefix = LANES[lane]
        self.timeout_s = timeout_s
        self.name = name
        self.partitions = self.url.partitions  # as the stream says, once open
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self.connected = threading.Event()
        self._closing = False
        self._stream_ready = False
        self._opening = asyncio.Lock()
        self._acks_prefix: str | None = None
        self._acks: dict[str, asyncio.Future[bool]] = {}
        self._acks_counter = 0

    # -- the event loop the client lives on
    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        """The coroutine's result; a server that cannot be reached or answer in time is
        `Unavailable` (the stage waits it out and tries again)."""
        if self._loop is None:
            coro.close()
            raise Unavailable("the reading log is not open")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout_s if timeout_s is not None else self.timeout_s + 5)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            future.cancel()
            raise Unavailable(f"reading log: {type(exc).__name__}"
                              f"{': ' + str(exc)[:80] if str(exc) else ''}") from exc

    def open(self) -> NatsLog:
        """Connect and make sure the stream is there (made with this URL's replicas and
        partitions if not; an existing stream keeps its own partitions)."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="nats-log",
                                            daemon=True)
            self._thread.start()
        try:
            self._run(self._ready())
        except Unavailable as exc:
            # A cluster electing a leader, a server restarting: the service starts all the
            # same and its stage waits (each use tries again), instead of dying at start.
            log.warning("reading log not ready yet (%s); trying again at each use", exc)
        return self

    async def _ready(self) -> None:
        """Connected, and the stream there (made with this URL's replicas and partitions if
        not; an existing stream keeps its own partitions). Cheap once done."""
        if self._stream_ready:
            return
        async with self._opening:
            if not self._stream_ready:
                await self._open()
                self._stream_ready = True

    async def _open(self) -> None:
        async def disconnected() -> None:
            self.connected.clear()
            if self._closing:
                return
            log.warning("reading log: disconnected from NATS; reconnecting")

        async def reconnected() -> None:
            self.connected.set()
            log.info("reading log: reconnected to NATS")

        async def error(exc: Exception) -> None:
            log.warning("reading log: %s %s", type(exc).__name__, str(exc)[:200])

        if self._nc is None:
            self._nc = await nats.connect(
                servers=self.url.servers, name=self.name, connect_timeout=self.timeout_s,
                allow_reconnect=True, max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                user=os.environ.get("TELECARE_LOG_USER"),
                password=os.environ.get("TELECARE_LOG_PASSWORD"),
                disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error)
            self._js = self._nc.jetstream(timeout=self.timeout_s)
            self.connected.set()
        js = self._js
        assert js is not None
        try:
            info = await js.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            config = StreamConfig(
                name=self.stream, subjects=[f"{self.subject_prefix}.>"],
                storage=StorageType.FILE,
                num_replicas=self.url.replicas, duplicate_window=DUPLICATE_WINDOW_S,
                max_age=KEEP.total_seconds(),
                metadata={"telecare_partitions": str(self.url.partitions)})
            try:
                info = await js.add_stream(config)
            except nats.js.errors.BadRequestError:
                info = await js.stream_info(self.stream)  # another worker made it meanwhile
        kept = (info.config.metadata or {}).get("telecare_partitions")
        self.partitions = int(kept) if kept else self.url.partitions

    def close(self) -> None:
        """Drain the connection, end the client's tasks, and end the loop and its thread."""
        loop = self._loop
        if loop is None:
            return
        self._closing = True
        try:
            self._run(self._shutdown(), 10)
        except Exception as exc:
            log.warning("reading log: could not close the connection cleanly (%s)",
                        type(exc).__name__)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        if not loop.is_running():
            loop.close()
        self._loop = None
        self._nc = self._js = None

    async def _shutdown(self) -> None:
        if self._nc is not None:
            # A flush (the last acknowledgements reach the server), not a drain: a drain waits
            # on the pull subscriptions' queues, which nobody reads any more.
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=2)
            with contextlib.suppress(Exception):
                await self._nc.close()
        # The client's own tasks (flusher, reader, pinger) end here, not when the loop is
        # gone (where they would complain of a closed loop).
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    # -- ingest's side
    def subject(self, home: str) -> str:
        return f"{self.subject_prefix}.{partition_of(home, self.partitions)}.{home}"

    def append(self, readings: Sequence[Reading], arrived: Sequence[datetime]) -> int:
        if not readings:
            return 0
        return self._run(asyncio.wait_for(self._append(readings, arrived), self.timeout_s),
                         self.timeout_s + 5)

    async def _append(self, readings: Sequence[Reading], arrived: Sequence[datetime]) -> int:
        await self._ready()
        nc = self._nc
        assert nc is not None
        if self._acks_prefix is None:
            # One subscription takes every PubAck, each matched to its publish by a counter
            # in the reply subject. (nats-py's publish_async draws a random token from the
            # OS per message, which took a third of the publishing thread, and raises a
            # server's error reply inside its handler, where the publish never hears of it.)
            self._acks_prefix = nc.new_inbox() + "."
            await nc.subscribe(self._acks_prefix + "*", cb=self._on_ack)
        waiting: list[str] = []
        futures = []
        # A reading twice in one batch (a device's resend) is sent once: two publishes of one
        # id at once get "duplicate message id is in process" from a clustered stream.
        seen: set[str] = set()
        loop = asyncio.get_running_loop()
        try:
            for reading, at in zip(readings, arrived, strict=True):
                key = reading.dedupe_key()
                if key in seen:
                    continue
                seen.add(key)
                self._acks_counter += 1
                token = str(self._acks_counter)
                future: asyncio.Future[bool] = loop.create_future()
                self._acks[token] = future
                waiting.append(token)
                futures.append(future)
                await nc.publish(self.subject(reading.home), encode(reading, at),
                                 reply=self._acks_prefix + token, headers={"Nats-Msg-Id": key})
            duplicates = await asyncio.gather(*futures)
        finally:
            for token in waiting:  # answered or given up on: not waited for any more
                self._acks.pop(token, None)
        return sum(1 for duplicate in duplicates if not duplicate)

    async def _on_ack(self, msg: Msg) -> None:
        """A PubAck (or the server's refusal) for one publish: True if it was a duplicate."""
        assert self._acks_prefix is not None
        future = self._acks.get(msg.subject[len(self._acks_prefix):])
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(Unavailable("reading log: no stream answered (503)"))
            return
        try:
            answer = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            future.set_exception(Unavailable("reading log: an answer that is not JSON"))
            return
        error = answer.get("error")
        if error is None:
            future.set_result(bool(answer.get("duplicate", False)))
        elif error.get("err_code") == DUPLICATE_IN_PROCESS:
            future.set_result(True)  # the same reading, in flight from an earlier send
        else:
            future.set_exception(Unavailable(
                f"reading log: the server refused a reading ({error.get('code')} "
                f"{error.get('err_code')}: {str(error.get('description'))[:80]})"))

    # -- detection's side
    def reader(self, share: tuple[int, int] = (0, 1), name: str | None = None,
               prompt: bool = False) -> NatsLogReader:
        return NatsLogReader(self, share, name, prompt)

    def last_sequence(self) -> int:
        return int(self._run(self._last_sequence()))

    async def _last_sequence(self) -> int:
        await self._ready()
        assert self._js is not None
        info = await self._js.stream_info(self.stream)
        return int(info.state.last_seq)


class NatsLogReader:
    """A detection worker's share of the log (`telecare.readlog.LogReader`)."""

    def __init__(self, log_: NatsLog, share: tuple[int, int], name: str | None = None,
                 prompt: bool = False) -> None:
        self.log = log_
        self.share = share
        self.subjects = self._subjects()  # (again once the stream's own partitions are known)
        # `prompt` (the priority lane): a fetch returns as soon as one reading is there. A
        # pull for a batch that finds one reading waits for the rest until the pull expires
        # (nats-py): a press waited up to half a second (p99 347 ms at 10,000 homes).
        self.prompt = prompt
        self.durable = name or f"detect-{share[0]}-of-{share[1]}"
        self._after = 0
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stale: JetStreamContext.PullSubscription | None = None
        self._last: Msg | None = None
        self._binding: asyncio.Lock | None = None  # made on the log's loop, at first use
        self.undecodable = 0

    def _subjects(self) -> list[str]:
        """This share's partitions of the stream; ValueError if the stream's partitions
        cannot be shared evenly by this many workers."""
        index, count = self.share
        partitions = self.log.partitions
        if partitions % count:
            raise ValueError(f"{count} detection workers cannot share the log's {partitions} "
                             f"partitions evenly: use a divisor of {partitions}")
        return [f"{self.log.subject_prefix}.{p}.*" for p in range(partitions)
                if p % count == index]

    def seek(self, after: int) -> None:
        """Read from just after `after` next; the consumer is made again at the next fetch
        (so a seek never waits on the servers, and a failed one is simply tried again)."""
        self._after = after
        self._stale, self._sub = self._sub or self._stale, None
        self._last = None

    async def _bind(self) -> JetStreamContext.PullSubscription:
        """The consumer, made where the reader stands if it is not yet (once: a fetch and a
        /healthz question may both ask at the same moment)."""
        if self._binding is None:
            self._binding = asyncio.Lock()
        async with self._binding:
            if self._sub is None:
                self._sub = await self._bind_now()
            return self._sub

    async def _bind_now(self) -> JetStreamContext.PullSubscription:
        await self.log._ready()
        self.subjects = self._subjects()
        js = self.log._js
        assert js is not None
        if self._stale is not None:
            # (a subscription on a dropped connection: nothing to undo)
            with contextlib.suppress(Exception):
                await self._stale.unsubscribe()
            self._stale = None
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_consumer(self.log.stream, self.durable)
        config = ConsumerConfig(
            durable_name=self.durable, name=self.durable, filter_subjects=self.subjects,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self._after + 1,
            ack_policy=AckPolicy.ALL, ack_wait=3600, max_ack_pending=-1, max_deliver=-1,
            num_replicas=0)  # 0: as many as the stream's
        await js.add_consumer(self.log.stream, config)
        return await js.pull_subscribe_bind(durable=self.durable, stream=self.log.stream)

    def fetch(self, limit: int, timeout_s: float) -> list[tuple[int, Reading]]:
        # (room for the consumer to be made again first: two API calls, each with its timeout)
        return self.log._run(self._fetch(limit, timeout_s), timeout_s + 3 * self.log.timeout_s)

    async def _fetch(self, limit: int, timeout_s: float) -> list[tuple[int, Reading]]:
        sub = self._sub if self._sub is not None else await self._bind()
        try:
            msgs = await sub.fetch(1 if self.prompt else limit, timeout=max(timeout_s, 0.01))
        except nats.errors.TimeoutError:
            return []
        if self.prompt and limit > 1:
            # What came with it, at once (a short pull: at most 5 ms more).
            with contextlib.suppress(nats.errors.TimeoutError):
                msgs += await sub.fetch(limit - 1, timeout=0.005)
        out = []
        for msg in msgs:
            try:
                out.append((int(msg.metadata.sequence.stream), decode(msg.data)[0]))
            except (ValueError, TypeError):
                # Not one of ingest's (someone else publishing under the stream's subjects):
                # passed over and counted, never a reason to stop reading the rest.
                self.undecodable += 1
                log.warning("reading log: passed over a message that is not a reading "
                            "(stream position %d)", msg.metadata.sequence.stream)
        if msgs:
            self._last = msgs[-1]
        return out

    def commit(self, upto: int) -> None:
        """Acknowledge up to `upto`. Never raises: the position is the reader's own (in its
        checkpoint); an acknowledgement lost now only leaves the pending count high until
        the next one."""
        last = self._last
        if last is not None and last.metadata.sequence.stream <= upto:
            try:
                self.log._run(last.ack())
            except Unavailable as exc:
                log.warning("reading log: could not acknowledge up to the checkpoint (%s)",
                            exc)
                return
            self._last = None

    def pending(self) -> int:
        return self.log._run(self._pending())

    async def _pending(self) -> int:
        if self._sub is None:
            await self._bind()
        js = self.log._js
        assert js is not None
        info = await js.consumer_info(self.log.stream, self.durable)
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
