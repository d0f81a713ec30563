"""The reading log on real NATS JetStream servers (`telecare.natslog`): one node of a test's
own, or a three-node cluster with a replicated stream of which one node is killed."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from ingest.service import IngestService
from ingest.store import ReadingStore
from telecare.db import connect
from telecare.natslog import NatsLog
from telecare.reading import Reading
from telecare.readlog import partition_of
from telecare.stage import Unavailable
from tests.conftest import NatsCluster

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 2, tzinfo=UTC)


def readings(homes: int, each: int, start: int = 0) -> list[Reading]:
    return [Reading(f"nh{h:03d}", "hall", "motion", 1.0, T0 + timedelta(seconds=10 * i))
            for i in range(start, start + each) for h in range(homes)]


def read_all(log: NatsLog, share: tuple[int, int], after: int = 0,
             quiet_s: float = 1.0) -> list[tuple[int, Reading]]:
    """Everything of a share after `after`, as detection reads it: a fetch the servers could
    not answer (a cluster electing a leader) is tried again from the last position read."""
    reader = log.reader(share)
    reader.seek(after)
    got: list[tuple[int, Reading]] = []
    for _ in range(20):
        try:
            while batch := reader.fetch(1000, quiet_s):
                got += batch
            return got
        except Unavailable:
            reader.seek(got[-1][0] if got else after)
    raise AssertionError("the log stayed unavailable")


def test_a_resent_reading_is_logged_once_and_each_share_reads_its_own_homes_in_order(
        nats_server: NatsCluster) -> None:
    log = NatsLog(nats_server.url("partitions=8")).open()
    try:
        sent = readings(40, 50)
        assert sum(log.append(sent[i:i + 500], [NOW] * len(sent[i:i + 500]))
                   for i in range(0, len(sent), 500)) == 2000
        # An ingest worker that crashed before acknowledging the broker sends a batch again.
        assert log.append(sent[700:1200], [NOW] * 500) == 0
        shares = [read_all(log, (i, 2)) for i in range(2)]
    finally:
        log.close()
    assert sum(len(s) for s in shares) == 2000
    for i, share in enumerate(shares):
        positions = [pos for pos, _ in share]
        assert positions == sorted(positions)
        by_home: dict[str, list[datetime]] = defaultdict(list)
        for _, r in share:
            by_home[r.home].append(r.ts)
            assert partition_of(r.home, 2) == i  # a home belongs to one worker, as in SQLite
        assert all(ts == sorted(ts) and len(ts) == 50 for ts in by_home.values())
    assert {r for s in shares for _, r in s} == set(sent)


def test_a_reader_goes_on_just_after_the_position_it_committed(
        nats_server: NatsCluster) -> None:
    log = NatsLog(nats_server.url()).open()
    try:
        log.append(readings(5, 40), [NOW] * 200)
        reader = log.reader((0, 1))
        reader.seek(0)
        first = reader.fetch(120, 1.0)
        assert len(first) == 120 and reader.pending() == 200
        reader.commit(first[-1][0])
        assert reader.pending() == 80  # what the consumer still owes: the backlog
        # A restart: a new reader from the committed position reads the rest, once.
        again = read_all(log, (0, 1), after=first[-1][0])
        assert [r for _, r in first + again] == readings(5, 40)
        # A share that cannot be spread evenly over the stream's partitions is refused.
        with pytest.raises(ValueError, match="evenly"):
            log.reader((0, 3))
    finally:
        log.close()


def test_nothing_is_lost_or_logged_twice_when_one_node_of_three_is_killed() -> None:
    cluster = NatsCluster(3)
    cluster.start()
    log = NatsLog(cluster.url("replicas=3&partitions=4"), timeout_s=5).open()
    try:
        sent = readings(20, 300)  # 6,000
        batches = [sent[i:i + 200] for i in range(0, len(sent), 200)]
        for n, batch in enumerate(batches):
            if n == 10:
                cluster.kill(0)  # a node of three gone: the stream has its quorum still
            while True:  # as ingest does: a batch not logged is sent again, whole
                try:
                    log.append(batch, [NOW] * len(batch))
                    break
                except Unavailable:
                    continue
        got = read_all(log, (0, 1), quiet_s=2.0)
    finally:
        log.close()
        cluster.stop()
    assert len(got) == len(sent)
    assert sorted((r.home, r.ts) for _, r in got) == sorted((r.home, r.ts) for r in sent)


def test_ingest_holds_a_batch_back_while_the_log_is_unreachable(
        nats_server: NatsCluster, tmp_path: object) -> None:
    from pathlib import Path

    log = NatsLog(nats_server.url(), timeout_s=0.3).open()
    store = ReadingStore(connect(Path(str(tmp_path)) / "data"))
    service = IngestService(store, log=log, clock=lambda: NOW)
    message = ("telecare/v1/nh001/hall/motion", b'{"ts": "2026-03-01T08:00:00Z", "value": 1}',
               NOW.timestamp(), False)
    bad = ("telecare/v1/nh001/hall/motion", b'{"ts": "yesterday", "value": 1}',
           NOW.timestamp(), False)
    try:
        assert service.handle([message, bad])
        assert service.counters["stored"] == 1
        assert store.count() == 0  # readings live in the log; the local store keeps the bad
        assert store.dead_letter_count() == 1
        nats_server.kill(0)
        for _ in range(12):  # more than a stage's fatal count: the log's outage passes
            assert not service.handle([message])
        assert service.counters["log_errors"] == 12
        assert service.status.fatal is None and service.status.error is not None
        # Back: the held batch goes in, once.
        nats_server.start(0)
        ok = threading.Event()
        for _ in range(100):
            if service.handle([message]):
                ok.set()
                break
            threading.Event().wait(0.1)
        assert ok.is_set()
        assert service.status.error is None
        got = read_all(log, (0, 1))
        assert [r.ts for _, r in got] == [datetime(2026, 3, 1, 8, tzinfo=UTC)]
    finally:
        log.close()


def test_a_call_for_help_on_the_priority_stream_is_judged_ahead_of_a_routine_backlog_once(
        nats_server: NatsCluster, tmp_path: object) -> None:
    """Past one machine the priority lane is a stream of its own: the urgent judge raises the
    press's alert while the routine stream still holds thousands of readings before it, and
    the routine detector, reaching the press in its place, raises the same alert (same id),
    which nobody is told of twice."""
    from pathlib import Path

    from alerts.store import AlertStore
    from detect.service import DetectService
    from detect.urgent import UrgentJudge
    from tests.builders import write_home

    root = Path(str(tmp_path))
    from detect.rules import load_config

    config = load_config(write_home(root / "cfg", "nh001"))
    url = nats_server.url("partitions=4")
    routine, urgent = NatsLog(url).open(), NatsLog(url, lane="urgent").open()
    try:
        backlog = [Reading("nh001", "kitchen-pir", "motion", 1.0, T0 + timedelta(seconds=5 * i))
                   for i in range(20_000)]
        press = Reading("nh001", "pendant", "button", 1.0, T0 + timedelta(seconds=5 * 20_000))
        for i in range(0, len(backlog), 1000):
            routine.append(backlog[i:i + 1000], [NOW] * 1000)
        routine.append([press], [NOW])  # its place in the home's readings
        assert urgent.append([press], [NOW]) == 1  # and the priority lane, at once

        judge = UrgentJudge(connect(root / "data"), config, log_reader=urgent.reader())
        assert judge.step() == 1 and judge.raised == 1
        store = AlertStore(connect(root / "data"))
        first = [(a.id, a.rule) for a in store.all_firing()]
        assert [rule for _, rule in first] == ["pendant"]

        detect = DetectService(connect(root / "data"), config, log_reader=routine.reader())
        assert detect.backlog() == 20_001  # none of the routine stream was read yet
        while detect.step():
            pass
        assert detect.backlog() == 0
        assert [a.id for a in store.all() if a.rule == "pendant"] == [first[0][0]]
        events = connect(root / "data").execute(
            "SELECT status FROM alert_events WHERE alert_id = ?", (first[0][0],)).fetchall()
        assert events == [("firing",)]  # the same alert; one change to tell
        # A restarted judge reads nothing again.
        assert UrgentJudge(connect(root / "data"), config,
                           log_reader=urgent.reader()).step() == 0
    finally:
        routine.close()
        urgent.close()


def test_a_log_unreachable_at_start_is_waited_for_not_fatal(tmp_path: object) -> None:
    """A worker started while its NATS servers are down (or electing a leader) starts all
    the same; its first appends fail as Unavailable, and work once a server is there."""
    cluster = NatsCluster(1)  # configured, not started yet
    try:
        log = NatsLog(cluster.url(), timeout_s=0.5).open()  # no exception
        reader = log.reader((0, 1))
        reader.seek(0)
        with pytest.raises(Unavailable):
            log.append(readings(1, 1), [NOW])
        with pytest.raises(Unavailable):
            reader.fetch(10, 0.1)
        cluster.start()
        for _ in range(100):
            try:
                assert log.append(readings(1, 3), [NOW] * 3) == 3
                break
            except Unavailable:
                threading.Event().wait(0.1)
        got = read_all(log, (0, 1))
        assert [r for _, r in got] == readings(1, 3)
        log.close()
    finally:
        cluster.stop()


def test_ingest_appends_through_a_publisher_process_that_is_started_again_if_killed(
        nats_server: NatsCluster) -> None:
    import os
    import signal

    from telecare.natspublisher import NatsPublisher

    publisher = NatsPublisher(nats_server.url(), timeout_s=2).open()
    log = NatsLog(nats_server.url()).open()
    try:
        sent = readings(10, 30)
        assert publisher.append(sent[:200], [NOW] * 200) == 200
        assert publisher.append(sent[100:], [NOW] * 200) == 100  # half of it was logged
        assert publisher.connected.is_set()
        child = publisher._child
        assert child is not None and child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        # The next batch finds it gone: a new one is started and the batch is logged.
        again = readings(10, 2, start=30)
        assert publisher.append(again, [NOW] * 20) == 20
        got = read_all(log, (0, 1))
        assert sorted((r.home, r.ts) for _, r in got) == \
            sorted((r.home, r.ts) for r in sent + again)
        nats_server.kill(0)
        with pytest.raises(Unavailable):
            publisher.append(readings(1, 1, start=99), [NOW])
        assert not publisher.connected.is_set()
    finally:
        publisher.close()
        log.close()


def test_a_message_that_is_not_a_reading_is_passed_over_not_fatal(
        nats_server: NatsCluster) -> None:
    import asyncio

    import nats as nats_client

    log = NatsLog(nats_server.url("partitions=1")).open()
    try:
        log.append(readings(1, 2), [NOW] * 2)

        async def intrude() -> None:  # someone else publishing under the stream's subjects
            nc = await nats_client.connect(nats_server.url())
            js = nc.jetstream()
            for junk in (b"not json", b"[1, 2]", b'{"home": "x"}'):
                await js.publish("telecare.readings.0.nh000", junk)
            await nc.close()

        asyncio.run(intrude())
        log.append(readings(1, 2, start=2), [NOW] * 2)
        reader = log.reader()
        reader.seek(0)
        got = reader.fetch(100, 1.0)
        assert [r for _, r in got] == readings(1, 4)
        assert reader.undecodable == 3
    finally:
        log.close()
