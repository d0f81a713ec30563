"""The detection engine: every home's rules, driven by one event-time clock.

The clock is the watermark: the latest event time seen on the stream. Before a reading is
observed, every rule deadline earlier than the reading's time fires, at the deadline's own
time. So a long lie is caught when the stream moves past it (another device, another home, a
gateway heartbeat), not when some wall clock says so; and the live service and a backtest over
the same readings raise the same alerts with the same times and ids.

Readings that arrive late (older than the watermark) are still observed; each rule decides
what a late reading means for it (an old door state does not undo a newer one).
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from typing import Any

from detect.activity import ActivityTracker
from detect.rules import Rule, build_rules
from telecare.alert import Alert
from telecare.config import Config, HomeConfig
from telecare.reading import Reading, format_ts, parse_ts


class HomeDetector:
    """One home's activity tracker and rules."""

    def __init__(self, home: HomeConfig) -> None:
        self.home = home
        self.activity = ActivityTracker(home, home.rules.inactivity.power_on_watts)
        self.rules: list[Rule] = build_rules(home)
        self.last_seen: datetime | None = None  # latest event time of this home's readings

    def observe(self, reading: Reading) -> list[Alert]:
        act = self.activity.classify(reading)
        out: list[Alert] = []
        for rule in self.rules:
            out.extend(rule.observe(reading, act))
        return out

    def next_deadline(self) -> datetime | None:
        deadlines = [d for d in (r.next_deadline() for r in self.rules) if d is not None]
        return min(deadlines) if deadlines else None

    def fire_due(self, now: datetime, inclusive: bool) -> list[Alert]:
        out: list[Alert] = []
        for rule in self.rules:
            # A rule may set a new deadline when woken; wake it until it has none due.
            for _ in range(100):
                d = rule.next_deadline()
                if d is None or d > now or (d == now and not inclusive):
                    break
                changes = rule.on_deadline(d)
                out.extend(changes)
                if not changes and rule.next_deadline() == d:
                    break  # the rule declined; do not spin
        out.sort(key=lambda a: (a.raised_at, a.rule))
        return out

    def state(self) -> dict[str, Any]:
        return {
            "last_seen": format_ts(self.last_seen) if self.last_seen else None,
            "activity": self.activity.state(),
            "rules": {rule.name: rule.state() for rule in self.rules},
        }

    def load(self, state: dict[str, Any]) -> None:
        self.activity.load(state.get("activity", {}))
        self.last_seen = parse_ts(state["last_seen"]) if state.get("last_seen") else None
        for rule in self.rules:
            rule.load(state.get("rules", {}).get(rule.name, {}))


# A home heard nothing from for this long is offline, not inactive: its timers wait for its
# next reading instead of firing on other homes' time. (Its own heartbeats and thermometers
# keep its clock going while it is online.)
SILENCE_LIMIT = timedelta(hours=12)


class Detector:
    """All homes. Feed readings with `process`; move time on with `advance_to`."""

    def __init__(self, config: Config, silence_limit: timedelta = SILENCE_LIMIT) -> None:
        self.config = config
        self.silence_limit = silence_limit
        self.homes: dict[str, HomeDetector] = {}
        self.watermark: datetime | None = None
        self._timers: list[tuple[datetime, str]] = []
        self.touched: set[str] = set()  # homes whose state changed since the last checkpoint

    def home(self, home: str) -> HomeDetector:
        found = self.homes.get(home)
        if found is None:
            found = self.homes[home] = HomeDetector(self.config.home(home))
        return found

    def _schedule(self, home: str) -> None:
        deadline = self.homes[home].next_deadline()
        if deadline is not None:
            heapq.heappush(self._timers, (deadline, home))

    def process(self, reading: Reading) -> list[Alert]:
        out = self.advance_to(reading.ts, inclusive=False)
        detector = self.home(reading.home)
        if detector.last_seen is None or reading.ts > detector.last_seen:
            detector.last_seen = reading.ts
        out.extend(detector.observe(reading))
        self.touched.add(reading.home)
        self._schedule(reading.home)
        return out

    def advance_to(self, now: datetime, inclusive: bool = True) -> list[Alert]:
        """Move the watermark to `now` and fire every deadline before it (or at it)."""
        if self.watermark is not None and now <= self.watermark and not inclusive:
            return []
        if self.watermark is None or now > self.watermark:
            self.watermark = now
        out: list[Alert] = []
        while self._timers:
            deadline, home = self._timers[0]
            if deadline > now or (deadline == now and not inclusive):
                break
            heapq.heappop(self._timers)
            detector = self.homes[home]
            if detector.next_deadline() != deadline:
                continue  # stale: the home's deadline moved since this was scheduled
            if detector.last_seen is not None and deadline > detector.last_seen + \
                    self.silence_limit:
                continue  # offline: rescheduled when the home is heard from again
            out.extend(detector.fire_due(deadline, inclusive=True))
            self.touched.add(home)
            self._schedule(home)
        return out

    def state_of(self, home: str) -> dict[str, Any]:
        return self.homes[home].state()

    def load(self, watermark: str | None, homes: dict[str, dict[str, Any]]) -> None:
        self.watermark = parse_ts(watermark) if watermark else None
        for home, state in homes.items():
            self.home(home).load(state)
            self._schedule(home)

    def watermark_text(self) -> str | None:
        return format_ts(self.watermark) if self.watermark else None
