"""The detection engine: every home's rules, driven by event time.

Each home has its own clock: the latest event time of its own readings. Before a reading is
observed, every deadline of its home earlier than the reading's time fires, at the deadline's
own time. A home that has gone quiet (a long lie in a home with no heartbeat) is moved on by
the stream's shared clock: the latest of the homes' own clocks, unless that one is more than
the silence limit ahead of every other home's, when it is a lone outlier (a device stamped a
year ahead) and the next latest counts. So no single home's wrong clock moves another home's
time, while one home's heartbeats still move on a neighbour that has gone quiet. A long lie is
caught when the stream moves past it, not when some wall clock says so; and the live service
and a backtest over the same readings raise the same alerts with the same times and ids.

A rule that raises an exception is contained: the error is counted per rule, reported once per
home as a low alert to the technical team, and the home's other rules and every other home go
on. A deadline whose handler failed is not retried until the rule's deadline moves.

Readings that arrive late (older than the watermark) are still observed; each rule decides
what a late reading means for it (an old door state does not undo a newer one).
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from detect.activity import ActivityTracker
from detect.rules import Rule, build_rules
from telecare.alert import Alert, alert_id
from telecare.config import Config, HomeConfig
from telecare.reading import Reading, format_ts, parse_ts

log = logging.getLogger(__name__)
RULE_FAILED = "rule_failed"


class HomeDetector:
    """One home's activity tracker and rules. `errors` counts failures by rule name (shared
    by every home of a `Detector`, for /metrics)."""

    def __init__(self, home: HomeConfig, errors: Counter[str] | None = None) -> None:
        self.home = home
        self.activity = ActivityTracker(home, home.rules.inactivity.power_on_watts)
        self.rules: list[Rule] = build_rules(home)
        self.last_seen: datetime | None = None  # latest event time of this home's readings
        self.errors: Counter[str] = errors if errors is not None else Counter()
        self.self_reporting = any(d.kind in SELF_REPORTING for d in home.devices)
        self.deadline: datetime | None = None  # next_deadline() as of the last scheduling
        self.queued: datetime | None = None  # the deadline this home has in the timer queue
        self.reported: set[str] = set()  # rules whose failure was raised as an alert
        self.failed_deadline: dict[str, datetime] = {}  # rule -> deadline whose handler failed

    def _failed(self, rule: Rule, at: datetime, exc: Exception, where: str) -> list[Alert]:
        """Count and log a rule's failure (the exception's type, never the reading's values);
        the first time for this home and rule, raise a low alert for the technical team."""
        self.errors[rule.name] += 1
        if rule.name in self.reported:  # counted in /metrics; the log said it once
            log.debug("rule %s failed again on home %s", rule.name, self.home.home)
            return []
        log.error("rule %s failed on home %s while %s: %s", rule.name, self.home.home, where,
                  type(exc).__name__)
        self.reported.add(rule.name)
        return [Alert(
            id=alert_id(self.home.home, RULE_FAILED, rule.name, at), home=self.home.home,
            rule=RULE_FAILED, severity="low", raised_at=at, status="firing",
            message=f"The {rule.name.replace('_', ' ')} check stopped working for this home "
                    f"({type(exc).__name__} while {where}); the other checks go on. A "
                    "technician should look at the service's log.",
            evidence={"audience": "technical", "failed_rule": rule.name,
                      "error": type(exc).__name__, "while": where})]

    def observe(self, reading: Reading) -> list[Alert]:
        act = self.activity.classify(reading)
        out: list[Alert] = []
        for rule in self.rules:
            try:
                out.extend(rule.observe(reading, act))
            except Exception as exc:  # one rule's bug must not stop the others
                out.extend(self._failed(rule, reading.ts, exc, "reading"))
        return out

    def _deadline_of(self, rule: Rule) -> datetime | None:
        try:
            d = rule.next_deadline()
        except Exception:
            self.errors[rule.name] += 1
            return None
        if d is not None and self.failed_deadline and self.failed_deadline.get(rule.name) == d:
            return None  # its handler failed at this deadline: wait until it moves
        return d

    def next_deadline(self) -> datetime | None:
        deadlines = [d for d in (self._deadline_of(r) for r in self.rules) if d is not None]
        return min(deadlines) if deadlines else None

    def fire_due(self, now: datetime, inclusive: bool) -> list[Alert]:
        out: list[Alert] = []
        for rule in self.rules:
            # A rule may set a new deadline when woken; wake it until it has none due.
            for _ in range(100):
                d = self._deadline_of(rule)
                if d is None or d > now or (d == now and not inclusive):
                    break
                try:
                    changes = rule.on_deadline(d)
                except Exception as exc:
                    self.failed_deadline[rule.name] = d
                    out.extend(self._failed(rule, d, exc, "woken at its deadline"))
                    break
                out.extend(changes)
                if not changes and self._deadline_of(rule) == d:
                    break  # the rule declined; do not spin
        out.sort(key=lambda a: (a.raised_at, a.rule))
        return out

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "last_seen": format_ts(self.last_seen) if self.last_seen else None,
            "activity": self.activity.state(),
            "rules": {},
        }
        for rule in self.rules:
            try:
                out["rules"][rule.name] = rule.state()
            except Exception:  # its last good state stays saved; the others are kept
                self.errors[rule.name] += 1
        if self.reported:
            out["reported"] = sorted(self.reported)
        return out

    def load(self, state: dict[str, Any]) -> None:
        self.activity.load(state.get("activity", {}))
        self.last_seen = parse_ts(state["last_seen"]) if state.get("last_seen") else None
        self.reported = set(state.get("reported", []))
        for rule in self.rules:
            try:
                rule.load(state.get("rules", {}).get(rule.name, {}))
            except Exception as exc:  # a state it cannot read: it starts afresh
                log.error("rule %s could not restore its state for home %s: %s", rule.name,
                          self.home.home, type(exc).__name__)
                self.errors[rule.name] += 1


# A home heard nothing from for this long is offline, not inactive: its timers wait for its
# next reading instead of firing on other homes' time. (Its own heartbeats and thermometers
# keep its clock going while it is online.) A home with no device that reports on its own
# (no gateway heartbeat, no thermometer) is silent every night: a late riser in a real home
# was silent 13 h from bed to rising, so such homes are given twice as long.
SILENCE_LIMIT = timedelta(hours=12)
SELF_REPORTING = frozenset({"heartbeat", "temperature", "humidity"})


class Detector:
    """All homes. Feed readings with `process`; move every home's time on with `advance_to`.

    `watermark` is the furthest the shared clock has gone: it moves quiet homes' timers,
    and no single home's outlying clock can move it."""

    def __init__(self, config: Config, silence_limit: timedelta = SILENCE_LIMIT) -> None:
        self.config = config
        self.silence_limit = silence_limit
        self.homes: dict[str, HomeDetector] = {}
        self.watermark: datetime | None = None
        self._timers: list[tuple[datetime, str]] = []
        self._top: list[tuple[datetime, str]] = []  # the two latest home clocks, latest first
        self.touched: set[str] = set()  # homes whose state changed since the last checkpoint
        self.rule_errors: Counter[str] = Counter()

    def home(self, home: str) -> HomeDetector:
        found = self.homes.get(home)
        if found is None:
            found = self.homes[home] = HomeDetector(self.config.home(home), self.rule_errors)
        return found

    def _schedule(self, home: str) -> None:
        detector = self.homes[home]
        deadline = detector.deadline = detector.next_deadline()
        if deadline is not None and deadline != detector.queued:  # queue each deadline once
            heapq.heappush(self._timers, (deadline, home))
            detector.queued = deadline

    def _silence(self, detector: HomeDetector) -> timedelta:
        return self.silence_limit if detector.self_reporting else 2 * self.silence_limit

    def _home_clock_moved(self, home: str, clock: datetime) -> None:
        """Keep the two latest home clocks (each home's clock only moves forward)."""
        top = [(t, h) for t, h in self._top if h != home]
        top.append((clock, home))
        top.sort(reverse=True)
        self._top = top[:2]

    def shared_clock(self) -> datetime | None:
        """The latest home clock, unless it is more than the silence limit ahead of the next
        one: then that lone clock is an outlier (a device a year ahead) and the next counts."""
        if not self._top:
            return None
        if len(self._top) == 1 or self._top[0][0] - self._top[1][0] <= self.silence_limit:
            return self._top[0][0]
        return self._top[1][0]

    def process(self, reading: Reading) -> list[Alert]:
        detector = self.home(reading.home)
        out: list[Alert] = []
        last = detector.last_seen
        if last is None or reading.ts > last:
            if last is not None:
                # The home's own time moves: its deadlines before this reading fire first
                # (none past the silence limit: an offline home is not judged inactive).
                # (Rules change their deadlines only when observed or woken, after which the
                # home is scheduled again: the cached deadline says whether any is due.)
                limit = last + self._silence(detector)
                due = detector.deadline
                if due is not None and due <= min(reading.ts, limit):
                    out.extend(detector.fire_due(min(reading.ts, limit),
                                                 inclusive=reading.ts > limit))
            detector.last_seen = reading.ts
            self._home_clock_moved(reading.home, reading.ts)
        shared = self.shared_clock()
        if shared is not None:
            out.extend(self._fire_timers(shared, inclusive=False))
        out.extend(detector.observe(reading))
        self.touched.add(reading.home)
        self._schedule(reading.home)
        return out

    def advance_to(self, now: datetime, inclusive: bool = True) -> list[Alert]:
        """Move the shared clock to `now` (an outside clock: the end of a recording, a test)
        and fire every home's deadlines before it (or at it)."""
        return self._fire_timers(now, inclusive)

    def _fire_timers(self, now: datetime, inclusive: bool) -> list[Alert]:
        if self.watermark is None or now > self.watermark:
            self.watermark = now
        out: list[Alert] = []
        while self._timers:
            deadline, home = self._timers[0]
            if deadline > now or (deadline == now and not inclusive):
                break
            heapq.heappop(self._timers)
            detector = self.homes[home]
            if detector.queued == deadline:
                detector.queued = None  # out of the queue: scheduling puts it back if due
            if detector.deadline != deadline:
                continue  # stale: the home's deadline moved since this was scheduled
            if detector.last_seen is not None and deadline > detector.last_seen + \
                    self._silence(detector):
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
            detector = self.home(home)
            detector.load(state)
            if detector.last_seen is not None:
                self._home_clock_moved(home, detector.last_seen)
            self._schedule(home)

    def watermark_text(self) -> str | None:
        return format_ts(self.watermark) if self.watermark else None
