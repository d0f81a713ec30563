"""Operations: Prometheus metrics, a health check, and structured logs.

`serve_ops(pipeline, port)` serves `/metrics` (Prometheus text format, via prometheus-client)
and `/healthz` (JSON; HTTP 200 when healthy, 503 when not) on loopback. Counters come straight
from the stages' own counts; nothing here carries a health value or a payload.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from telecare.app.pipeline import Pipeline


class PipelineCollector(Collector):
    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        p = self.pipeline
        if p.ingest is not None:
            c = p.ingest.counters
            for name, help_text in (
                ("received", "MQTT messages taken in"),
                ("stored", "readings stored (new)"),
                ("duplicates", "readings already stored (redelivered or resent)"),
                ("dead_lettered", "malformed messages set aside with a reason"),
                ("dead_letter_overflow", "malformed messages past a source's per-minute keep"),
                ("store_errors", "batches that could not be written (redelivered)"),
                ("refused_spool_full", "messages left with the broker while the spool was full"),
            ):
                yield CounterMetricFamily(f"telecare_ingest_{name}", help_text, value=c[name])
            codes = CounterMetricFamily("telecare_ingest_dead_letter_reasons",
                                        "malformed messages by reason", labels=["reason"])
            for code, n in sorted(p.ingest.dead_letter_codes.items()):
                codes.add_metric([code], n)
            yield codes
            lag = p.ingest.newest_event_lag_s()
            if lag is not None:
                yield GaugeMetricFamily("telecare_ingest_lag_seconds",
                                        "wall clock minus event time of the newest reading",
                                        value=lag)
        if p.forwarder is not None:
            yield GaugeMetricFamily("telecare_spool_readings",
                                    "readings waiting for the time-series database",
                                    value=p.forwarder.backlog())
            yield GaugeMetricFamily("telecare_database_up", "1 if the last write landed",
                                    value=1.0 if p.forwarder.healthy else 0.0)
        if p.detect is not None:
            yield GaugeMetricFamily("telecare_detect_backlog_readings",
                                    "stored readings detection has not yet read",
                                    value=p.detect.backlog())
            yield GaugeMetricFamily("telecare_detect_backlog_age_seconds",
                                    "how long the oldest unread reading has waited",
                                    value=p.detect.backlog_age_s())
            errors = CounterMetricFamily("telecare_rule_errors",
                                         "exceptions raised by a rule (contained)",
                                         labels=["rule"])
            for rule, n in sorted(p.detect.detector.rule_errors.items()):
                errors.add_metric([rule], n)
            yield errors
            yield CounterMetricFamily("telecare_detect_unknown_home_readings",
                                      "stored readings of homes with no file, not detected on",
                                      value=p.detect.skipped_unknown)
        readings = GaugeMetricFamily("telecare_backlog_readings",
                                     "work waiting per stage (ingest: taken from the broker, not"
                                     " yet written; detect: stored, not yet read; alerts: alert"
                                     " changes not routed plus notices due)", labels=["stage"])
        event_s = GaugeMetricFamily("telecare_backlog_event_seconds",
                                    "how far behind a stage is in event time (ingest: wall clock"
                                    " minus the newest stored reading's time; detect: that time"
                                    " minus where detection has got to)", labels=["stage"])
        for stage, figures in backlog(p).items():
            readings.add_metric([stage], figures.get("readings", 0))
            if "event_s" in figures:
                event_s.add_metric([stage], figures["event_s"])
        yield readings
        yield event_s
        up = GaugeMetricFamily("telecare_stage_up", "1 while a stage is alive and working",
                               labels=["stage"])
        for name, status in p.statuses().items():
            up.add_metric([name], 1.0 if status.report()["ok"] else 0.0)
        yield up
        if p.alerts is not None:
            notes = GaugeMetricFamily("telecare_notifications",
                                      "notifications by channel and state (pending, sent, "
                                      "failed, dropped)", labels=["channel", "state"])
            for (channel, state), n in sorted(p.alerts.counts().items()):
                notes.add_metric([channel, state], n)
            yield notes
        if p.subscriber is not None:
            yield GaugeMetricFamily("telecare_broker_connected", "1 while connected",
                                    value=1.0 if p.subscriber.connected.is_set() else 0.0)


def backlog(p: Pipeline) -> dict[str, dict[str, float]]:
    """Per stage: what waits (`readings`) and how far behind in event time (`event_s`)."""
    out: dict[str, dict[str, float]] = {}
    if p.ingest is not None:
        figures: dict[str, float] = {"readings": sum(
            s.in_flight() for s in (p.subscriber, p.urgent_subscriber) if s is not None)}
        lag = p.ingest.newest_event_lag_s()
        if lag is not None:
            figures["event_s"] = round(max(lag, 0.0), 1)
        out["ingest"] = figures
    if p.detect is not None:
        out["detect"] = {"readings": p.detect.backlog(),
                         "event_s": round(p.detect.backlog_event_s(), 1),
                         "age_s": round(p.detect.backlog_age_s(), 1)}
    if p.alerts is not None:
        waiting = p.alerts.backlog()
        out["alerts"] = {"readings": waiting["alert_changes"] + waiting["notices_due"],
                         **{k: float(v) for k, v in waiting.items()}}
    return out


def health(pipeline: Pipeline) -> tuple[bool, dict[str, Any]]:
    """The truth about each stage: alive, working or failing and why, subscribed, behind by
    how much. Not healthy until the broker has granted the subscription."""
    report: dict[str, Any] = {"stages": {}}
    why: list[str] = []
    for name, status in pipeline.statuses().items():
        stage = status.report()
        report["stages"][name] = stage
        if not stage["ok"]:
            why.append(f"{name}: {stage.get('fatal') or stage.get('error') or 'not running'}")
    if pipeline.subscriber is not None:
        report["broker_connected"] = pipeline.subscriber.connected.is_set()
        report["subscribed"] = pipeline.subscriber.subscribed.is_set()
        if not report["subscribed"]:
            why.append("ingest: not subscribed to the broker")
    if pipeline.urgent_subscriber is not None:
        report["priority_lane_subscribed"] = pipeline.urgent_subscriber.subscribed.is_set()
        if not report["priority_lane_subscribed"]:
            why.append("ingest: the priority lane (calls for help) is not subscribed")
    try:
        report["backlog"] = backlog(pipeline)
    except Exception as exc:  # the store may be unreadable: say so, do not crash
        why.append(f"cannot read the backlog ({type(exc).__name__})")
    if pipeline.forwarder is not None:
        report["database_up"] = pipeline.forwarder.healthy
        report["spool_readings"] = pipeline.forwarder.backlog()
        if not pipeline.forwarder.accepting():
            why.append("forward: the spool for the time-series database is full")
    if pipeline.detect is not None:
        try:
            report["detect_backlog_readings"] = pipeline.detect.backlog()
            report["detect_backlog_age_s"] = pipeline.detect.backlog_age_s()
        except Exception as exc:  # the store may be unreadable: say so, do not crash
            why.append(f"detect: cannot read the backlog ({type(exc).__name__})")
        failing = {r: n for r, n in pipeline.detect.detector.rule_errors.items() if n}
        if failing:
            # Degraded, not down: the other rules and homes go on, and a restart would not
            # mend a rule's bug. The technical team has a low alert for each home it hit.
            report["failing_rules"] = failing
            report["degraded"] = [f"rule {r} failed {n} time(s)" for r, n in failing.items()]
    ok = not why
    report["healthy"] = ok
    if why:
        report["why"] = why
    return ok, report


def serve_ops(pipeline: Pipeline, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    registry = CollectorRegistry()
    registry.register(PipelineCollector(pipeline))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if self.path == "/metrics":
                body, code, kind = generate_latest(registry), 200, "text/plain; version=0.0.4"
            elif self.path == "/healthz":
                ok, report = health(pipeline)
                body, code, kind = json.dumps(report).encode(), 200 if ok else 503, \
                    "application/json"
            else:
                body, code, kind = b"not found\n", 404, "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="ops-http", daemon=True).start()
    return server


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message (messages never carry values)."""

    def format(self, record: logging.LogRecord) -> str:
        obj = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z",
               "level": record.levelname.lower(), "logger": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        return json.dumps(obj)
