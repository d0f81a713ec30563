"""`telecare run` with ingest and detection in processes of their own.

Python runs one thread at a time in a process. With ingest and detection as threads of one
process, a backlog showed it: every SQLite call lets the other thread in for a whole switch
interval, and the 300-home catch-up stored only 2,600 readings a second while detection,
waiting its turn, kept up with it. So `telecare run` starts ingest (with its priority lane and
the time-series forwarder) and detection (with its urgent judge) as child processes
(multiprocessing, spawn), and keeps the alerts stage and /healthz and /metrics in the parent.
They hand over through the store exactly as before; the wake-ups that threads had from an
in-process event come from multiprocessing events. Each child sends the parent a snapshot of
its stages twice a second, which is what /healthz and /metrics report (a child whose snapshot
is late is reported as such).

Stopping is in flow order: ingest (it stops taking messages, writes and acknowledges what it
took; the rest waits in the broker), then detection (it goes on a moment with what is stored,
then saves its checkpoint), then alerts. A child that dies makes the parent stop with
`EXIT_STAGE_FAILED`, to be restarted; a child whose parent died stops by itself.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from alerts.notifiers import Notifier
from telecare.app.pipeline import Pipeline
from telecare.config import Config
from telecare.mqtt import BrokerUrl, Protocol
from telecare.stage import EXIT_STAGE_FAILED, Wake

log = logging.getLogger(__name__)
# The urgent judge has a process of its own: a full garbage collection in routine detection
# (every home's state: hundreds of milliseconds at 10,000 homes) must not hold up a call for
# help.
CHILDREN = {"ingest": ("ingest",), "detect": ("detect-routine",), "urgent": ("detect-urgent",)}
REPORT_S = 0.5  # a child's snapshot this often
LATE_S = 10.0  # a snapshot older than this: the child is stuck, and /healthz says so


@dataclass(frozen=True)
class ChildArgs:
    """What a child process needs to build its part of the pipeline (picklable)."""

    config_dir: str
    data_dir: str
    broker: BrokerUrl | None
    protocol: Protocol
    share_group: str | None = None
    influx_url: str | None = None
    partition: tuple[int, int] = (0, 1)
    worker: str = ""
    retention_days: int | None = 90
    log_level: str = "info"
    log_format: str = "text"
    log_url: str | None = None


def _child(role: str, args: ChildArgs, wakes: dict[str, Wake], stop: Wake,
           reports: Queue[tuple[str, dict[str, Any]]], parent: int) -> None:
    """A child process: its stages until the parent says stop (or is gone)."""
    # The parent decides when to stop (in flow order); a Ctrl-C reaches the whole group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from detect.rules import load_config
    from ingest.influx import InfluxTarget
    from telecare.app.ops import setup_logging

    setup_logging(args.log_level, args.log_format)
    # `parent` is the pid the parent gave: asking getppid() here would be too late if the
    # parent was killed while this process was still starting (seen: children watching pid 1).
    pipeline = Pipeline(
        load_config(args.config_dir), Path(args.data_dir), args.broker, args.protocol,
        CHILDREN[role], share_group=args.share_group,
        influx=InfluxTarget.from_env(args.influx_url) if role == "ingest" else None,
        partition=args.partition, worker=args.worker,
        retention=timedelta(days=args.retention_days) if args.retention_days else None,
        wakes=wakes, log_url=args.log_url)
    pipeline.start()
    threading.Thread(target=_watch_parent, args=(role, parent, pipeline), daemon=True,
                     name="watch-parent").start()
    code = 0
    try:
        while True:
            reports.put((role, pipeline.snapshot()))
            if stop.wait(REPORT_S):
                break
            fatal = pipeline.fatal()
            if fatal is not None:
                log.critical("the %s process cannot go on: %s", role, fatal)
                reports.put((role, pipeline.snapshot()))
                code = EXIT_STAGE_FAILED
                break
    finally:
        clean = pipeline.stop()
    sys.exit(code or (0 if clean else 1))


def _watch_parent(role: str, parent: int, pipeline: Pipeline) -> None:
    """A child whose parent died (killed) stops, then exits whatever happens. Checked apart
    from the main loop: a parent killed while holding a multiprocessing event's lock leaves
    every wait on that event blocked for good (seen: children of a SIGKILLed `telecare run`
    lived on, still connected to the broker with the service's client id)."""
    while os.getppid() == parent:
        time.sleep(REPORT_S)
    log.error("the %s process lost its parent: stopping", role)
    stopping = threading.Thread(target=pipeline.stop, daemon=True)
    stopping.start()
    stopping.join(10)  # what was committed is safe; what was not is redelivered or re-read
    os._exit(1)


class ProcessPipeline:
    """The pipeline's stages: ingest, routine detection and the urgent judge each in a child
    process, alerts in this one. Offers what the CLI and /healthz use of a `Pipeline`:
    start, wait_connected, snapshot, fatal, stop."""

    def __init__(self, config: Config, args: ChildArgs,
                 notifiers: list[Notifier] | None = None) -> None:
        self.config = config
        self.args = args
        self.notifiers = notifiers
        self.ctx = mp.get_context("spawn")  # no fork of a process with threads
        self.wakes: dict[str, Wake] = {n: self.ctx.Event() for n in ("detect", "urgent",
                                                                      "alerts")}
        self.stops: dict[str, Wake] = {role: self.ctx.Event() for role in CHILDREN}
        self.reports: Queue[tuple[str, dict[str, Any]]] = self.ctx.Queue()
        self.children: dict[str, BaseProcess] = {}
        self.snaps: dict[str, tuple[float, dict[str, Any]]] = {}
        self._closing = threading.Event()
        self.local = Pipeline(config, Path(args.data_dir), args.broker, args.protocol,
                              ("alerts",), notifiers=notifiers, wakes=self.wakes,
                              retention=None)

    def start(self) -> None:
        self.local.start()
        threading.Thread(target=self._collect, name="child-reports", daemon=True).start()
        for role in ("urgent", "detect", "ingest"):  # detection first: ingest wakes it
            child = self.ctx.Process(target=_child, name=f"telecare-{role}",
                                     args=(role, self.args, self.wakes, self.stops[role],
                                           self.reports, os.getpid()))
            child.start()
            self.children[role] = child

    def _collect(self) -> None:
        while not self._closing.is_set():
            try:
                role, snap = self.reports.get(timeout=0.5)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            self.snaps[role] = (time.monotonic(), snap)

    def wait_connected(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snaps.get("ingest")
            broker = got[1].get("broker", {}) if got else {}
            if broker.get("subscribed") and broker.get("priority_lane_subscribed"):
                return True
            if self.fatal() is not None:
                return False
            time.sleep(0.05)
        return False

    def snapshot(self) -> dict[str, Any]:
        snap = self.local.snapshot()
        for role, child in self.children.items():
            got = self.snaps.get(role)
            if not child.is_alive():
                snap["stages"][role] = {"alive": False, "ok": False,
                                        "error": f"its process exited (status "
                                                 f"{child.exitcode})"}
                continue
            if got is None:
                snap["stages"][role] = {"alive": True, "ok": False, "error": "starting"}
                continue
            at, child_snap = got
            late = time.monotonic() - at
            if late > LATE_S:
                snap["stages"][role] = {"alive": True, "ok": False,
                                        "error": f"no report from its process for {late:.0f} s"}
                continue
            snap["stages"].update(child_snap["stages"])
            snap["why"].extend(child_snap.get("why", []))
            for key in ("ingest", "broker", "forward", "detect", "urgent"):
                if key in child_snap:
                    snap[key] = child_snap[key]
            if "log" in child_snap:  # connected only if every process's link is
                was = snap.get("log", {"connected": True})["connected"]
                snap["log"] = {"connected": was and child_snap["log"]["connected"]}
        return snap

    def fatal(self) -> str | None:
        local = self.local.fatal()
        if local is not None:
            return local
        for role, child in self.children.items():
            if not child.is_alive() and not self.stops[role].is_set():
                got = self.snaps.get(role)
                why = [r["fatal"] for r in got[1]["stages"].values() if r.get("fatal")] \
                    if got else []
                return why[0] if why else \
                    f"{role}: its process exited (status {child.exitcode})"
        return None

    def stop(self) -> bool:
        """Stop in flow order; True only if every stage drained and stopped in time."""
        clean = True
        for role in ("ingest", "urgent", "detect"):
            child = self.children.get(role)
            self.stops[role].set()
            if child is None:
                continue
            child.join(60)
            if child.is_alive():
                log.error("the %s process did not stop within 60 s: killed", role)
                child.kill()
                child.join(5)
                clean = False
            elif child.exitcode != 0:
                log.error("the %s process stopped with status %s", role, child.exitcode)
                clean = False
        clean = self.local.stop() and clean
        self._closing.set()
        return clean
