"""Operations: Prometheus metrics, a health check, and structured logs.

`serve_ops(pipeline, port)` serves `/metrics` (Prometheus text format, via prometheus-client)
and `/healthz` (JSON; HTTP 200 when healthy, 503 when not) on loopback. Counters come straight
from the stages' own counts; nothing here carries a health value or a payload.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class Snapshots(Protocol):
    """Anything that can say how the pipeline stands: a `Pipeline` in this process, or one
    whose stages run as processes of their own."""

    def snapshot(self) -> dict[str, Any]: ...


class PipelineCollector(Collector):
    def __init__(self, pipeline: Snapshots) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        snap = self.pipeline.snapshot()
        ingest = snap.get("ingest")
        if ingest is not None:
            c = ingest["counters"]
            for name, help_text in (
                ("received", "MQTT messages taken in"),
                ("stored", "readings stored (new)"),
                ("duplicates", "readings already stored (redelivered or resent)"),
                ("dead_lettered", "malformed messages set aside with a reason"),
                ("dead_letter_overflow", "malformed messages past a source's per-minute keep"),
                ("store_errors", "batches that could not be written (redelivered)"),
                ("refused_spool_full", "messages left with the broker while the spool was full"),
            ):
                yield CounterMetricFamily(f"telecare_ingest_{name}", help_text,
                                          value=c.get(name, 0))
            yield CounterMetricFamily("telecare_priority_lane_stored",
                                      "calls for help stored on the priority lane",
                                      value=ingest.get("urgent_stored", 0))
            codes = CounterMetricFamily("telecare_ingest_dead_letter_reasons",
                                        "malformed messages by reason", labels=["reason"])
            for code, n in sorted(ingest["dead_letter_codes"].items()):
                codes.add_metric([code], n)
            yield codes
            if ingest.get("lag_s") is not None:
                yield GaugeMetricFamily("telecare_ingest_lag_seconds",
                                        "wall clock minus event time of the newest reading",
                                        value=ingest["lag_s"])
        forward = snap.get("forward")
        if forward is not None:
            yield GaugeMetricFamily("telecare_spool_readings",
                                    "readings waiting for the time-series database",
                                    value=forward["spool"])
            yield GaugeMetricFamily("telecare_database_up", "1 if the last write landed",
                                    value=1.0 if forward["healthy"] else 0.0)
        detect = snap.get("detect")
        if detect is not None:
            yield GaugeMetricFamily("telecare_detect_backlog_readings",
                                    "stored readings detection has not yet read",
                                    value=detect.get("backlog", 0))
            yield GaugeMetricFamily("telecare_detect_backlog_age_seconds",
                                    "how long the oldest unread reading has waited",
                                    value=detect.get("age_s", 0.0))
            errors = CounterMetricFamily("telecare_rule_errors",
                                         "exceptions raised by a rule (contained)",
                                         labels=["rule"])
            for rule, n in sorted(detect["rule_errors"].items()):
                errors.add_metric([rule], n)
            yield errors
            yield CounterMetricFamily("telecare_detect_log_undecodable",
                                      "messages on the reading log that are not readings,"
                                      " passed over", value=detect.get("log_undecodable", 0))
            yield CounterMetricFamily("telecare_detect_unknown_home_readings",
                                      "stored readings of homes with no file, not detected on",
                                      value=detect["skipped_unknown"])
        urgent = snap.get("urgent")
        if urgent is not None:
            yield CounterMetricFamily("telecare_priority_lane_alerts",
                                      "alerts raised on the priority lane",
                                      value=urgent["raised"])
        readings = GaugeMetricFamily("telecare_backlog_readings",
                                     "work waiting per stage (ingest: taken from the broker, not"
                                     " yet written; detect: stored, not yet read; alerts: alert"
                                     " changes not routed plus notices due)", labels=["stage"])
        event_s = GaugeMetricFamily("telecare_backlog_event_seconds",
                                    "how far behind a stage is in event time (ingest: wall clock"
                                    " minus the newest stored reading's time; detect: that time"
                                    " minus where detection has got to)", labels=["stage"])
        for stage, figures in backlog(snap).items():
            readings.add_metric([stage], figures.get("readings", 0))
            if "event_s" in figures:
                event_s.add_metric([stage], figures["event_s"])
        yield readings
        yield event_s
        up = GaugeMetricFamily("telecare_stage_up", "1 while a stage is alive and working",
                               labels=["stage"])
        for name, report in snap["stages"].items():
            up.add_metric([name], 1.0 if report["ok"] else 0.0)
        yield up
        alerts = snap.get("alerts")
        if alerts is not None:
            notes = GaugeMetricFamily("telecare_notifications",
                                      "notifications by channel and state (pending, sent, "
                                      "failed, dropped)", labels=["channel", "state"])
            for channel, state, n in sorted(alerts["notifications"]):
                notes.add_metric([channel, state], n)
            yield notes
        broker = snap.get("broker")
        if broker is not None:
            yield GaugeMetricFamily("telecare_broker_connected", "1 while connected",
                                    value=1.0 if broker["connected"] else 0.0)


def backlog(snap: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per stage: what waits (`readings`) and how far behind in event time (`event_s`)."""
    out: dict[str, dict[str, float]] = {}
    ingest = snap.get("ingest")
    if ingest is not None:
        figures: dict[str, float] = {"readings": ingest.get("in_flight", 0)}
        if ingest.get("lag_s") is not None:
            figures["event_s"] = round(max(ingest["lag_s"], 0.0), 1)
        out["ingest"] = figures
    detect = snap.get("detect")
    if detect is not None and "backlog" in detect:
        out["detect"] = {"readings": detect["backlog"],
                         **{k: detect[k] for k in ("event_s", "age_s") if k in detect}}
    alerts = snap.get("alerts")
    if alerts is not None and "backlog" in alerts:
        waiting = alerts["backlog"]
        out["alerts"] = {"readings": waiting["alert_changes"] + waiting["notices_due"],
                         **{k: float(v) for k, v in waiting.items()}}
    return out


def health(pipeline: Snapshots) -> tuple[bool, dict[str, Any]]:
    """The truth about each stage: alive, working or failing and why, subscribed, behind by
    how much. Not healthy until the broker has granted the subscription."""
    snap = pipeline.snapshot()
    report: dict[str, Any] = {"stages": {}}
    why: list[str] = list(snap.get("why", []))
    for name, stage in snap["stages"].items():
        report["stages"][name] = stage
        if not stage["ok"]:
            why.append(f"{name}: {stage.get('fatal') or stage.get('error') or 'not running'}")
    broker = snap.get("broker")
    if broker is not None:
        report["broker_connected"] = broker["connected"]
        report["subscribed"] = broker["subscribed"]
        if not report["subscribed"]:
            why.append("ingest: not subscribed to the broker")
        report["priority_lane_subscribed"] = broker["priority_lane_subscribed"]
        if not report["priority_lane_subscribed"]:
            why.append("ingest: the priority lane (calls for help) is not subscribed")
    reading_log = snap.get("log")
    if reading_log is not None:
        report["log_connected"] = reading_log["connected"]
        if not reading_log["connected"]:
            why.append("the reading log (NATS) is not connected")
    forward = snap.get("forward")
    if forward is not None:
        report["database_up"] = forward["healthy"]
        report["spool_readings"] = forward["spool"]
        if not forward["accepting"]:
            why.append("forward: the spool for the time-series database is full")
    detect = snap.get("detect")
    if detect is not None:
        if "backlog" in detect:
            report["detect_backlog_readings"] = detect["backlog"]
            if "age_s" in detect:  # (not asked of a log on NATS)
                report["detect_backlog_age_s"] = detect["age_s"]
        failing = {r: n for r, n in detect["rule_errors"].items() if n}
        if failing:
            # Degraded, not down: the other rules and homes go on, and a restart would not
            # mend a rule's bug. The technical team has a low alert for each home it hit.
            report["failing_rules"] = failing
            report["degraded"] = [f"rule {r} failed {n} time(s)" for r, n in failing.items()]
    report["backlog"] = backlog(snap)
    ok = not why
    report["healthy"] = ok
    if why:
        report["why"] = why
    return ok, report


def serve_ops(pipeline: Snapshots, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
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


def setup_logging(level: str, fmt: str = "text") -> None:
    """Log lines to stderr, as text or one JSON object a line, at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
    # Libraries log what they send to: a notice's URL can hold a phone number or a token,
    # and a request's path a health value. Their debug and info lines stay out; Apprise
    # names the URL even in its warnings, so it says nothing (delivery failures are logged
    # by the alerts stage, by place and role).
    for name in ("urllib3", "requests", "amqtt", "transitions", "aiosmtpd", "paho"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.root.level))
    logging.getLogger("apprise").setLevel(logging.CRITICAL + 1)
