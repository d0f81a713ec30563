"""Device health, for the technical team, never the family: a device gone silent for much
longer than it usually reports, and a battery running low.

Only devices that report on a schedule can be judged silent (heartbeats, thermometers,
contacts and bed mats with their check-ins, plugs); a device's usual interval is learned
from its own reports (a running median of recent gaps), with a floor per kind.

A hub that knows when a device drops off its network (Zigbee2MQTT's availability, Home
Assistant's `unavailable`) says so with a `heartbeat` reading of that device, 0 offline and 1
online: offline is raised at once, without waiting for the silence to grow long.

A PIR or a flush sensor speaks only when something happens, so its silence means nothing by
itself, but its silence while the rest of the home is busy does: it is judged by how many
activity events the other devices saw since its own last event, against the most it has
usually let pass (learned per device; daytime events only), and only after
`QUIET_EVENT_SENSOR` hours.

A motion sensor that reports without a break for over an hour is stuck on (see
`detect.activity.MotionRuns`): detection stops taking it for the resident, and the technical
team is told once, until it has reported as usual for a day.
"""

from __future__ import annotations

import heapq
import statistics
from datetime import datetime, timedelta
from typing import Any

from detect.activity import Activity
from detect.localtime import hours_minutes, when
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import Duration, HomeConfig, RuleSettings, Severity
from telecare.reading import Reading, format_ts, parse_ts

SCHEDULED = {"heartbeat": 5, "temperature": 10, "humidity": 10, "contact": 60, "bed": 60,
             "chair": 60, "power": 30}  # typical minutes between reports
STATE_KINDS = frozenset({"contact", "bed", "chair", "power"})  # may report changes only
TECHNICAL = {"audience": "technical"}
LEARN_GAPS = 48  # reports seen (two days of hourly check-ins) before silence is judged
EVENT_ONLY = frozenset({"motion", "flush"})
QUIET_EVENT_SENSOR = timedelta(hours=6)
MIN_OTHER_EVENTS = 80  # never fewer events elsewhere than this before a sensor is suspect
LEARN_EVENT_GAPS = 100  # gaps learned before an event-only sensor is judged
STUCK_CLEARED = timedelta(hours=24)  # ordinary reports this long after the last stuck one


class DeviceHealthSettings(RuleSettings):
    """For the technical team, never the family."""

    severity: Severity = "low"
    offline_after_min: Duration = timedelta(minutes=30)  # never offline sooner than this
    battery_below: float = 20
    battery_replaced: float = 50


class DeviceHealth(Rule):
    name = "device_offline"

    def __init__(self, home: HomeConfig, settings: DeviceHealthSettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.last: dict[str, datetime] = {}
        self.kind: dict[str, str] = {}
        self.gaps: dict[str, list[float]] = {}  # recent gaps in minutes
        self.offline: dict[str, Alert] = {}
        self.low: dict[str, Alert] = {}
        self.stuck: dict[str, Alert] = {}
        self.stuck_seen: dict[str, datetime] = {}  # each motion sensor's latest stuck report
        self._limits: dict[str, timedelta] = {}
        self._next: datetime | None = None  # cached: asked after every reading
        # When each regular, online device is overdue, and a heap of those times (stale
        # entries are skipped): a device's time moves only when it reports or goes offline,
        # so the earliest is kept without looking at every device after every report.
        self._due: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        # Event-only sensors: activity events elsewhere since each one's last event, and the
        # counts seen between its events before (the most it usually lets pass).
        self.others_since: dict[str, int] = {}
        self.event_seen: dict[str, datetime] = {}
        self.event_gaps: dict[str, list[int]] = {}
        self._usual_most: dict[str, int] = {}
        self._reports: dict[str, int] = {}  # not saved: only paces relearning
        # State devices: of the last reports, how many repeated the value before (a
        # check-in). A reed switch or mat that reports only changes never repeats itself.
        self.values: dict[str, float] = {}
        self.repeats: dict[str, list[int]] = {}
        self._is_regular: dict[str, bool] = {}  # cached: changes only when the device reports

    def _limit(self, device: str) -> timedelta:
        found = self._limits.get(device)
        if found is None:
            typical = float(SCHEDULED.get(self.kind[device], 60))
            gaps = self.gaps.get(device) or []
            if len(gaps) >= 5:
                typical = max(typical, statistics.median(gaps))
            found = self._limits[device] = max(self.settings.offline_after_min,
                                               timedelta(minutes=typical * 4))
        return found

    def _regular(self, device: str) -> bool:
        found = self._is_regular.get(device)
        if found is None:
            found = self._is_regular[device] = self._judge_regular(device)
        return found

    def _judge_regular(self, device: str) -> bool:
        """Has this device shown that it reports on a schedule? Many contacts, mats and
        plugs report only changes: hours of silence at night are normal for them. Only a
        device whose recent gaps all stayed within twice its kind's interval is judged."""
        gaps = self.gaps.get(device) or []
        if self.kind[device] in STATE_KINDS:
            # A state device that has not repeated itself in a quarter of its reports only
            # reports changes (a busy day's door can look regular for hours: it is not).
            seen = self.repeats.get(device) or []
            if sum(seen) * 4 < max(len(seen), 1):
                return False
        return len(gaps) >= LEARN_GAPS and \
            max(gaps) <= 2 * SCHEDULED.get(self.kind[device], 60)

    def _set_due(self, device: str) -> None:
        """Recompute when `device` is overdue (after it reported, went offline or came
        back), then the earliest of all."""
        if device in self.offline or device not in self.last or not self._regular(device):
            self._due.pop(device, None)
        else:
            due = self._due[device] = self.last[device] + self._limit(device)
            heapq.heappush(self._heap, (due, device))
        self._refresh()

    def _refresh(self) -> None:
        if len(self._heap) > 4 * len(self._due) + 16:  # mostly stale: rebuild
            self._heap = [(t, d) for d, t in self._due.items()]
            heapq.heapify(self._heap)
        while self._heap and self._due.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        self._next = self._heap[0][0] if self._heap else None

    def _recompute(self) -> None:
        """Every device's overdue time afresh (after a restore)."""
        self._due, self._heap = {}, []
        for device in list(self.last):
            self._set_due(device)
        self._refresh()

    def _hub_says(self, reading: Reading) -> list[Alert]:
        """A hub's word on one of its devices: offline now, or online again."""
        key = reading.device
        if reading.value < 1:
            if key in self.offline:
                return []
            kind = self.kind.get(key) or getattr(self.home.device(key), "kind", "device")
            self.offline[key] = self.firing(
                reading.ts, self.settings.severity,
                f"{key} ({kind}) dropped off the hub's network at {when(reading.ts, self.tz)}"
                ": the hub reports it offline. Check its battery and that it is in range.",
                {"device": key, "hub_reports": "offline", **TECHNICAL}, key=key)
            self._set_due(key)
            return [self.offline[key]]
        if key not in self.offline:
            return []
        alert = self.offline.pop(key)
        self._set_due(key)
        return [alert.resolve(reading.ts, f"The hub reports {key} online again at "
                                          f"{when(reading.ts, self.tz)}.")]

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        out: list[Alert] = []
        key = reading.device
        device = self.home.device(key)
        if reading.kind == "heartbeat" and device is not None and device.kind != "heartbeat":
            return self._hub_says(reading)
        if reading.kind in SCHEDULED:
            prev = self.last.get(key)
            if prev is None or reading.ts > prev:
                if prev is not None:
                    gaps = self.gaps.setdefault(key, [])
                    gaps.append((reading.ts - prev).total_seconds() / 60)
                    del gaps[:-LEARN_GAPS]
                    self._reports[key] = self._reports.get(key, 0) + 1
                    if self._reports[key] % 6 == 0:
                        self._limits.pop(key, None)  # relearn the usual interval now and then
                self.last[key] = reading.ts
                self.kind[key] = reading.kind
                self._is_regular.pop(key, None)
                if reading.kind in STATE_KINDS:
                    seen = self.repeats.setdefault(key, [])
                    seen.append(int(self.values.get(key) == reading.value))
                    del seen[:-LEARN_GAPS]
                    self.values[key] = reading.value
                self._set_due(key)
            if key in self.offline:
                alert = self.offline.pop(key)
                self._set_due(key)
                out.append(alert.resolve(reading.ts, f"{key} reported again at "
                                                     f"{when(reading.ts, self.tz)}."))
        if reading.kind == "motion" and reading.value >= 1:
            out.extend(self._stuck_on(reading, activity))
        if activity is not None:
            out.extend(self._event_sensors(reading, activity))
        if reading.battery is not None:
            if reading.battery < self.settings.battery_below and key not in self.low:
                self.low[key] = self.firing(
                    reading.ts, self.settings.severity,
                    f"The battery of {key} is at {reading.battery:g}% "
                    f"({when(reading.ts, self.tz)}): replace it within a few days, before the "
                    "sensor stops reporting.",
                    {"device": key, "battery": reading.battery, **TECHNICAL},
                    key=key, rule="low_battery")
                out.append(self.low[key])
            elif reading.battery >= self.settings.battery_replaced and key in self.low:
                alert = self.low.pop(key)
                out.append(alert.resolve(reading.ts, f"Battery of {key} at "
                                                     f"{reading.battery:g}%: replaced."))
        return out

    def _stuck_on(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        """Movement the activity tracker did not take for the resident is a sensor stuck on."""
        key = reading.device
        if activity is None:
            self.stuck_seen[key] = reading.ts
        if activity is None and key not in self.stuck:
            self.stuck[key] = self.firing(
                reading.ts, self.settings.severity,
                f"{key} (motion) has reported movement without a break for over an hour "
                f"(at {when(reading.ts, self.tz)}): it is probably stuck on (sunlight, a heater "
                "or a curtain in its view, or a fault). Its reports are not taken as the "
                "resident's until it pauses. Check it.",
                {"device": key, **TECHNICAL}, key=key, rule="sensor_stuck")
            return [self.stuck[key]]
        # Resolved after a day of ordinary reports: a sensor stuck on most afternoons (in
        # the sun: van Kasteren C's bathtub sensor) is one fault to fix, not one a day.
        if activity is not None and key in self.stuck and \
                reading.ts - self.stuck_seen.get(key, reading.ts) >= STUCK_CLEARED:
            return [self.stuck.pop(key).resolve(
                reading.ts, f"{key} has reported movement as usual since "
                            f"{when(self.stuck_seen[key], self.tz)}.")]
        return []

    def _event_sensors(self, reading: Reading, activity: Activity) -> list[Alert]:
        out: list[Alert] = []
        key = reading.device
        if reading.kind in EVENT_ONLY:
            if key in self.others_since:
                gaps = self.event_gaps.setdefault(key, [])
                gaps.append(self.others_since[key])
                del gaps[:-200]
                self._usual_most[key] = sorted(gaps)[int(0.99 * (len(gaps) - 1))]
            self.others_since[key] = 0
            self.event_seen[key] = reading.ts
            self.kind[key] = reading.kind
            if key in self.offline:
                alert = self.offline.pop(key)
                out.append(alert.resolve(reading.ts, f"{key} saw activity again at "
                                                     f"{when(reading.ts, self.tz)}."))
        # Only daytime events elsewhere count: a night of bedroom and toilet trips says
        # nothing about the kitchen sensor.
        if not 7 <= reading.ts.astimezone(self.tz).hour < 22:
            return out
        for device in self.others_since:
            if device == key:
                continue
            self.others_since[device] += 1
            if device in self.offline or device in self.stuck or \
                    device not in self._usual_most or \
                    len(self.event_gaps[device]) < LEARN_EVENT_GAPS:
                continue
            usual_most = self._usual_most[device]
            last = self.event_seen[device]
            if self.others_since[device] <= max(MIN_OTHER_EVENTS, 2 * usual_most) or \
                    reading.ts - last < QUIET_EVENT_SENSOR:
                continue
            self.offline[device] = self.firing(
                reading.ts, self.settings.severity,
                f"{device} ({self.kind[device]}) has seen nothing since "
                f"{when(last, self.tz)}, while the other sensors saw "
                f"{self.others_since[device]} events (it usually sees something within "
                f"{usual_most}). It may be faulty, out of battery or covered. Check it.",
                {"device": device, "last_event": format_ts(last),
                 "events_elsewhere_since": self.others_since[device],
                 "usual_most_events_between": usual_most, **TECHNICAL},
                key=device)
            out.append(self.offline[device])
        return out

    def next_deadline(self) -> datetime | None:
        return self._next

    def on_deadline(self, now: datetime) -> list[Alert]:
        out = []
        for device, last in sorted(self.last.items()):
            if device in self.offline or last + self._limit(device) > now or \
                    not self._regular(device):
                continue
            self.offline[device] = self.firing(
                now, self.settings.severity,
                f"{device} ({self.kind[device]}) has not reported since "
                f"{when(last, self.tz)}: {hours_minutes(now - last)}, when it usually reports "
                f"every {hours_minutes(self._limit(device) / 4)}. Check its battery, power and "
                "the hub.",
                {"device": device, "last_report": format_ts(last), **TECHNICAL}, key=device)
            out.append(self.offline[device])
            self._due.pop(device, None)
        self._refresh()
        return out

    def state(self) -> dict[str, Any]:
        return {"last": {d: format_ts(t) for d, t in self.last.items()}, "kind": self.kind,
                "gaps": self.gaps, "others_since": self.others_since,
                "event_seen": {d: format_ts(t) for d, t in self.event_seen.items()},
                "event_gaps": self.event_gaps, "values": self.values,
                "repeats": self.repeats,
                "offline": {d: a.to_json_obj() for d, a in self.offline.items()},
                "low": {d: a.to_json_obj() for d, a in self.low.items()},
                "stuck": {d: a.to_json_obj() for d, a in self.stuck.items()},
                "stuck_seen": {d: format_ts(t) for d, t in self.stuck_seen.items()}}

    def load(self, state: dict[str, Any]) -> None:
        self.last = {d: parse_ts(t) for d, t in state.get("last", {}).items()}
        self.kind = dict(state.get("kind", {}))
        self.gaps = {d: list(g) for d, g in state.get("gaps", {}).items()}
        self.others_since = dict(state.get("others_since", {}))
        self.event_seen = {d: parse_ts(t) for d, t in state.get("event_seen", {}).items()}
        self.event_gaps = {d: list(g) for d, g in state.get("event_gaps", {}).items()}
        self.values = dict(state.get("values", {}))
        self.repeats = {d: list(g) for d, g in state.get("repeats", {}).items()}
        self._usual_most = {d: sorted(g)[int(0.99 * (len(g) - 1))]
                            for d, g in self.event_gaps.items() if g}
        self.offline = {d: Alert.from_json_obj(a) for d, a in state.get("offline", {}).items()}
        self.low = {d: Alert.from_json_obj(a) for d, a in state.get("low", {}).items()}
        self.stuck = {d: Alert.from_json_obj(a) for d, a in state.get("stuck", {}).items()}
        self.stuck_seen = {d: parse_ts(t) for d, t in state.get("stuck_seen", {}).items()}
        self._limits = {}
        self._is_regular = {}
        self._recompute()


SPEC = RuleSpec("device_health", DeviceHealthSettings, DeviceHealth)
