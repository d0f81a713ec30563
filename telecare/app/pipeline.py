"""The live pipeline: ingest, detect and alerts stages, alone or together, until told to stop.

Stages hand over through the embedded store (the reading log, the alert-event log), so each
can run in its own process (`telecare ingest`, `telecare detect`, `telecare alerts`; `telecare
run` starts ingest, routine detection and the urgent judge as child processes,
`telecare.app.processes`) or as threads
of one (`telecare run --single-process`). A stage wakes the next at once (an event, shared
between processes where they are apart) instead of waiting for its next poll. Each ingest
also holds the priority lane (calls for help on a session of their own) and each detection
its urgent judge. Stopping is clean: the subscribers stop taking messages first, then
detection goes on a moment with what was stored, then alerts route and send what detection
raised."""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from alerts.notifiers import Notifier, default_notifiers
from alerts.service import AlertService
from detect.service import DetectService
from detect.urgent import UrgentJudge
from ingest.influx import InfluxForwarder, InfluxTarget
from ingest.mapping import SourceMapper
from ingest.service import IngestService
from ingest.store import ReadingStore
from ingest.subscriber import MqttSubscriber
from ingest.urgent import UrgentIngest
from telecare.app.retention import RETENTION, DailyPrune
from telecare.config import Config
from telecare.db import alert_store_url, connect, connect_alert_store
from telecare.mqtt import BrokerUrl, Protocol
from telecare.natslog import NatsLog
from telecare.natspublisher import NatsPublisher
from telecare.reading import TOPIC_PREFIX, URGENT_TOPICS
from telecare.stage import StageStatus, Wake

log = logging.getLogger(__name__)
STAGES = ("ingest", "detect", "alerts")  # and "forward", alone: the log on NATS to InfluxDB


class Pipeline:
    def __init__(self, config: Config, data_dir: Path, broker: BrokerUrl | None,
                 protocol: Protocol = "5", stages: Sequence[str] = STAGES,
                 notifiers: Sequence[Notifier] | None = None,
                 share_group: str | None = None, topic: str | list[str] = f"{TOPIC_PREFIX}/#",
                 influx: InfluxTarget | None = None, partition: tuple[int, int] = (0, 1),
                 hold_s: float | None = None, worker: str = "",
                 retention: timedelta | None = RETENTION,
                 wakes: Mapping[str, Wake] | None = None,
                 log_url: str | None = None) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.broker = broker
        self.protocol = protocol
        self.stages = tuple(stages)
        self.notifiers = notifiers
        self.share_group = share_group
        self.topic = topic  # everything under telecare/v1, so bad topics are dead-lettered too
        self.influx = influx
        self.partition = partition
        self.worker = worker  # tells apart ingest workers that share one data folder
        # With several ingest workers a home's readings may be committed a little out of
        # order: let detection wait a moment and sort. One worker needs no wait.
        self.hold_s = hold_s if hold_s is not None else (1.0 if share_group else 0.0)
        self.retention = retention  # readings kept this long after arrival (None: forever)
        # Stages in other processes are woken through these ("detect", "urgent", "alerts").
        self.wakes = dict(wakes or {})
        # The reading log on NATS JetStream (`telecare.natslog`) instead of the local store:
        # ingest appends to it, detection reads its share of it, the forwarder follows it.
        self.log_url = log_url
        self._logs: list[NatsLog | NatsPublisher] = []
        self.pruner: DailyPrune | None = None
        self.forwarder: InfluxForwarder | None = None
        self._stops = {name: threading.Event()
                       for name in ("forward", "detect", "detect-urgent", "alerts")}
        self.ingest: IngestService | None = None
        self.subscriber: MqttSubscriber | None = None
        self.urgent_ingest: UrgentIngest | None = None
        self.urgent_subscriber: MqttSubscriber | None = None
        self.detect: DetectService | None = None
        self.urgent: UrgentJudge | None = None
        self.alerts: AlertService | None = None
        self._threads: dict[str, threading.Thread] = {}

    def _log(self, name: str, lane: str = "routine") -> NatsLog:
        assert self.log_url is not None
        opened = NatsLog(self.log_url, name=name, lane=lane).open()
        self._logs.append(opened)
        return opened

    def _alert_store(self) -> Any:
        """Past one machine (`--db`), the alert store on PostgreSQL, where detection commits
        its alerts with its checkpoint; else None: the local store holds both."""
        return connect_alert_store(self.data_dir) if alert_store_url() else None

    def _publisher(self, name: str) -> NatsPublisher:
        """Ingest's appends, by a process of its own (`telecare.natspublisher`)."""
        assert self.log_url is not None
        opened = NatsPublisher(self.log_url, name=name).open()
        self._logs.append(opened)
        return opened

    def start(self) -> None:
        wakes = self.wakes
        if self.log_url is not None and self.hold_s:
            # The stream keeps a home's readings in the order they were logged; there is no
            # local arrival order to settle.
            self.hold_s = 0.0
        if "alerts" in self.stages:
            notifiers = self.notifiers or default_notifiers(
                str(self.broker) if self.broker else None, self.protocol)
            self.alerts = AlertService(connect_alert_store(self.data_dir), self.config,
                                       notifiers, data_dir=self.data_dir)
            self.alerts.wake = wakes.get("alerts", self.alerts.wake)
        wake_alerts = self.alerts.wake if self.alerts else wakes.get("alerts")
        # "detect" is routine detection and the urgent judge together; "detect-routine" and
        # "detect-urgent" are each alone (`telecare run` gives each a process of its own).
        on_alerts = wake_alerts.set if wake_alerts else None
        share = f"{self.partition[0]}-of-{self.partition[1]}"
        if "detect" in self.stages or "detect-routine" in self.stages:
            self.detect = DetectService(
                connect(self.data_dir), self.config, on_alerts, partition=self.partition,
                hold_s=self.hold_s,
                log_reader=self._log(f"telecare-detect-{share}").reader(self.partition)
                if self.log_url is not None else None, db=self._alert_store())
            self.detect.wake = wakes.get("detect", self.detect.wake)
        if "detect" in self.stages or "detect-urgent" in self.stages:
            self.urgent = UrgentJudge(
                connect(self.data_dir), self.config, on_alerts, partition=self.partition,
                log_reader=self._log(f"telecare-urgent-{share}", "urgent").reader(
                    self.partition, prompt=True) if self.log_url is not None else None,
                db=self._alert_store())
            self.urgent.wake = wakes.get("urgent", self.urgent.wake)
        wake_detect = self.detect.wake if self.detect else wakes.get("detect")
        wake_urgent = self.urgent.wake if self.urgent else wakes.get("urgent")
        if "forward" in self.stages:
            if self.influx is None or self.log_url is None:
                raise ValueError("the forward stage follows the reading log on NATS (--log) "
                                 "into InfluxDB (--influx): it needs both")
            share = f"{self.partition[0]}-of-{self.partition[1]}"
            self.forwarder = InfluxForwarder(
                connect(self.data_dir), self.config, self.influx,
                log_reader=self._log(f"telecare-forward-{share}").reader(
                    self.partition, name=f"forward-{share}"))
        if "ingest" in self.stages:
            if self.broker is None:
                raise ValueError("the ingest stage needs a broker")
            if self.influx is not None and self.log_url is None:
                self.forwarder = InfluxForwarder(connect(self.data_dir), self.config,
                                                 self.influx)
            next_stages: list[Wake] = [w for w in (wake_detect,) if w is not None]
            if self.forwarder is not None:
                next_stages.append(self.forwarder.wake)

            def wake_next() -> None:
                for event in next_stages:
                    event.set()

            mapper = SourceMapper(self.config.homes.values())
            digest = hashlib.sha256(str(self.data_dir.resolve()).encode()).hexdigest()[:10]
            self.ingest = IngestService(
                ReadingStore(connect(self.data_dir)), on_stored=wake_next,
                accepting=self.forwarder.accepting if self.forwarder else None,
                known_home=self.config.known, mapper=mapper,
                log=self._publisher(f"telecare-ingest-{digest}") if self.log_url else None)
            topics = [self.topic] if isinstance(self.topic, str) else list(self.topic)
            topics += mapper.topics()  # bridges' and hubs' topics (the homes' `sources:`)
            if self.share_group:
                topics = [f"$share/{self.share_group}/{t}" for t in topics]
            client_id = f"telecare-ingest-{digest}" + (f"-{self.worker}" if self.worker else "")
            self.subscriber = MqttSubscriber(self.broker, client_id, topics,
                                             self.ingest.handle, self.protocol)
            self.ingest.worker = client_id
            self.ingest.waiting_since = self.subscriber.waiting_since
            # The priority lane: calls for help on a session of their own, so that none waits
            # behind a backlog queued for the routine session.
            self.urgent_ingest = UrgentIngest(
                ReadingStore(connect(self.data_dir)),
                on_stored=wake_urgent.set if wake_urgent else None,
                known_home=self.config.known,
                mapper=SourceMapper(self.config.homes.values()),
                log=self._log(f"telecare-ingest-{digest}-urgent", "urgent")
                if self.log_url else None)
            urgent_topics = list(URGENT_TOPICS) + mapper.urgent
            if self.share_group:
                urgent_topics = [f"$share/{self.share_group}/{t}" for t in urgent_topics]
            self.urgent_subscriber = MqttSubscriber(
                self.broker, client_id + "-urgent", urgent_topics, self.urgent_ingest.handle,
                self.protocol, max_in_flight=100, batch_size=50, linger_s=0.0,
                keepalive_s=30)  # no backlog on this session: a dead link is found sooner
        services: tuple[tuple[str, Any], ...] = (
            ("forward", self.forwarder), ("detect", self.detect),
            ("detect-urgent", self.urgent), ("alerts", self.alerts))
        for name, service in services:
            if service is not None:
                t = threading.Thread(target=service.run, args=(self._stops[name],), name=name,
                                     daemon=True)
                service.status.thread = t
                t.start()
                self._threads[name] = t
        if self.urgent_subscriber is not None:
            self.urgent_subscriber.start()
        if self.subscriber is not None:
            self.subscriber.start()
        if "ingest" in self.stages and self.retention is not None:
            self.pruner = DailyPrune(lambda: connect(self.data_dir), self.retention)
            self.pruner.start()
        # Every home's configuration and rules are loaded and live as long as the process:
        # taken out of the garbage collector's reach, so its full collections (which walked
        # all of them, hundreds of milliseconds at 10,000 homes) stop holding up a call for
        # help. (Collected first: garbage frozen would never be freed.)
        gc.collect()
        gc.freeze()

    def wait_connected(self, timeout: float = 10.0) -> bool:
        return all(s is None or s.subscribed.wait(timeout)
                   for s in (self.urgent_subscriber, self.subscriber))

    def statuses(self) -> dict[str, StageStatus]:
        out = {}
        for name, service in (("ingest", self.ingest), ("ingest-urgent", self.urgent_ingest),
                              ("forward", self.forwarder), ("detect", self.detect),
                              ("detect-urgent", self.urgent), ("alerts", self.alerts)):
            if service is not None:
                out[name] = service.status
        if self.alerts is not None:
            out["deliver"] = self.alerts.delivery
        return out

    def snapshot(self) -> dict[str, Any]:
        """How this process's stages stand, as plain data (for /healthz and /metrics, and
        for a parent process when the stages run as processes of their own)."""
        snap: dict[str, Any] = {"stages": {n: s.report() for n, s in self.statuses().items()},
                                "why": []}
        if self.ingest is not None:
            snap["ingest"] = {
                "counters": dict(self.ingest.counters),
                "dead_letter_codes": dict(self.ingest.dead_letter_codes),
                "lag_s": self.ingest.newest_event_lag_s(),
                "in_flight": sum(s.in_flight() for s in (self.subscriber,
                                                         self.urgent_subscriber) if s),
                "urgent_stored": self.urgent_ingest.counters["stored"]
                if self.urgent_ingest else 0}
        if self.subscriber is not None:
            snap["broker"] = {
                "connected": self.subscriber.connected.is_set(),
                "subscribed": self.subscriber.subscribed.is_set(),
                "priority_lane_subscribed": self.urgent_subscriber is None
                or self.urgent_subscriber.subscribed.is_set()}
        if self._logs:
            snap["log"] = {"connected": all(opened.connected.is_set() for opened in self._logs)}
        if self.forwarder is not None:
            snap["forward"] = {"spool": self.forwarder.backlog(),
                               "healthy": self.forwarder.healthy,
                               "accepting": self.forwarder.backlog()
                               < self.forwarder.spool_limit}
        if self.urgent is not None:
            snap["urgent"] = {"raised": self.urgent.raised}
        if self.detect is not None:
            detect: dict[str, Any] = {
                "rule_errors": dict(self.detect.detector.rule_errors),
                "skipped_unknown": self.detect.skipped_unknown,
                # Messages on the stream that are not readings of ours: passed over, counted.
                "log_undecodable": getattr(self.detect.log_reader, "undecodable", 0)}
            try:
                if self.detect.log_reader is not None:
                    # (the stream's count; its age in event time is not asked of the servers)
                    detect.update(backlog=self.detect.backlog())
                else:
                    detect.update(backlog=self.detect.backlog(),
                                  event_s=round(self.detect.backlog_event_s(), 1),
                                  age_s=round(self.detect.backlog_age_s(), 1))
            except Exception as exc:  # the store may be unreadable: say so, do not crash
                snap["why"].append(f"detect: cannot read the backlog ({type(exc).__name__})")
            snap["detect"] = detect
        if self.alerts is not None:
            alerts: dict[str, Any] = {"notifications": []}
            try:
                alerts["notifications"] = [[ch, st, n] for (ch, st), n in
                                           sorted(self.alerts.counts().items())]
                alerts["backlog"] = self.alerts.backlog()
            except Exception as exc:
                snap["why"].append(f"alerts: cannot read the store ({type(exc).__name__})")
            snap["alerts"] = alerts
        return snap

    def fatal(self) -> str | None:
        """Why the process cannot go on (a stage gave up, or its thread is gone), if so."""
        for name, status in self.statuses().items():
            if status.fatal is not None:
                return status.fatal
            if name in self._threads and not self._stops[name].is_set() and not status.alive():
                return f"{name}: its thread has stopped"
        return None

    def stop(self) -> bool:
        """Stop in flow order, each stage draining what the one before it finished; True
        only if every stage drained and stopped in time."""
        clean = True
        if self.pruner is not None:
            self.pruner.stop.set()
        for subscriber in (self.urgent_subscriber, self.subscriber):
            if subscriber is not None:
                subscriber.stop()
        for name, service in (("forward", self.forwarder), ("detect-urgent", self.urgent),
                              ("detect", self.detect), ("alerts", self.alerts)):
            self._stops[name].set()
            if service is not None:
                service.wake.set()
                self._threads[name].join(60)
                if self._threads[name].is_alive():
                    log.error("the %s stage did not stop within 60 s", name)
                    clean = False
                elif service.status.error is not None:
                    log.error("the %s stage stopped with work left (%s): it resumes from its "
                              "last commit at the next start", name, service.status.error)
                    clean = False
        for opened in self._logs:
            opened.close()
        if clean:
            log.info("pipeline stopped cleanly (%s)", "+".join(self.stages))
        else:
            log.error("pipeline stopped with work left; nothing committed is lost")
        return clean
