"""What counts as the resident doing something, from a home's raw readings.

Activity is any resident-made event: movement, a door or cupboard changing state, a flush, an
appliance switching on, getting into or out of bed or a chair, a pendant press. A device
repeating an unchanged state (a periodic check-in) is not activity, nor is a room thermometer,
a vital sign, a fall detector or a gateway heartbeat, nor is a motion sensor that has reported
without a break for over an hour (stuck on: see `MotionRuns`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telecare.config import HomeConfig
from telecare.reading import Reading, format_ts, parse_ts

EXIT_ROLES = frozenset({"front_door", "back_door"})
KITCHEN_ROLES = frozenset({"kettle", "fridge", "microwave"})
# Sensors that see the resident at rest (and so through the night), not only their doings: a
# home without any is "doors and plugs only", and rules judge it more loosely.
PRESENCE_KINDS = frozenset({"motion", "bed", "chair"})
BACK_WITHIN = timedelta(minutes=30)
STATE_KINDS = frozenset({"contact", "bed", "chair"})
EVENT_KINDS = frozenset({"motion", "flush", "button"})
# A motion sensor re-reports about once a minute while it sees movement. Someone busy in one
# room still leaves it quiet now and then; in the four real homes recorded, no run a person
# made lasted half an hour, while sensors stuck on (in the sun, at a curtain or a heater, or
# failed) ran for 2 to 220 hours and kept an empty house looking lived in.
RUN_GAP = timedelta(minutes=2)  # a longer silence ends a run
STUCK_AFTER = timedelta(hours=1)  # a longer run is the sensor, not the resident
# Some bed mats (van Kasteren's) pulse for a second as the sleeper turns over, all night:
# "empty" that soon after "pressed" is a stir in bed, not getting up. (Occupancy mats hold
# "pressed" for hours, as Ordonez's do; their getting up is unchanged.)
PULSE = timedelta(seconds=10)
# A motion sensor by the door often sees someone coming in a moment before the door's contact
# reports them (van Kasteren B: the kitchen sensor 13 s before the front door, then cooking).
AT_THE_DOOR = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Activity:
    ts: datetime
    device: str
    room: str | None
    what: str  # plain words: "movement", "front door opened", "got into bed", ...
    exit_door: bool  # a front or back door: the resident may have gone out
    in_bed: bool  # after this event, is anyone in bed?
    in_chair: bool = False  # ... or sitting in a chair with a pressure mat?
    kind: str = ""  # the reading's kind: "motion", "contact", "bed", ...
    role: str | None = None  # the device's role: "fridge", "front_door", ...
    away: bool = False  # after this event, may the resident be out of the house?

    @property
    def kitchen(self) -> bool:
        """Someone making something (see `kitchen_use`)."""
        return kitchen_use(self.kind, self.room, self.role)


def kitchen_use(kind: str, room: str | None, role: str | None) -> bool:
    """Is a device's use someone making something: the kettle, fridge or microwave, or a
    cupboard, drawer or appliance in the kitchen? (A kitchen motion sensor is not.)"""
    return role in KITCHEN_ROLES or (room == "kitchen" and kind in ("contact", "power"))


def sees_presence(home: HomeConfig) -> bool:
    """Has the home a motion sensor, bed mat or chair mat (more than doors and plugs)?"""
    return any(d.kind in PRESENCE_KINDS for d in home.devices)


def sees_going_out(home: HomeConfig) -> bool:
    """Is a front or back door watched? Without one, an outing cannot be told from a lie."""
    return any(d.role in EXIT_ROLES for d in home.devices)


def _describe(kind: str, role: str | None, room: str | None, device: str, value: float) -> str:
    where = room or device
    if kind == "motion":
        return f"movement in the {where}"
    if kind == "flush":
        return "toilet flushed"
    if kind == "button":
        return "'I'm OK' button pressed" if role == "ok_button" else "pendant pressed"
    if kind == "power":
        return f"{(role or device).replace('_', ' ')} switched on"
    if kind == "contact":
        name = (role or device).replace("_", " ")
        return f"{name} {'opened' if value else 'closed'}"
    if kind in ("bed", "chair"):
        return f"{'got into' if value else 'got out of'} {kind}"
    return f"{kind} in the {where}"


class MotionRuns:
    """Each motion sensor's current run of reports (no silence longer than `RUN_GAP`), to
    tell a sensor stuck on from a person: past `STUCK_AFTER` into a run, its reports are the
    sensor's, until it falls silent for a moment."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[datetime, datetime]] = {}  # device: (run began, latest)

    def stuck(self, device: str, ts: datetime) -> bool:
        """Is this report (movement seen at `ts`) one of a stuck sensor's?"""
        run = self.runs.get(device)
        if run is not None and ts <= run[1]:
            return ts - run[0] > STUCK_AFTER  # a late or repeated report: judge, keep the run
        began = run[0] if run is not None and ts - run[1] <= RUN_GAP else ts
        self.runs[device] = (began, ts)
        return ts - began > STUCK_AFTER

    def began_before(self, device: str, ts: datetime | None) -> bool:
        """Is the device in a run of reports that began before `ts`?"""
        run = self.runs.get(device)
        return ts is not None and run is not None and run[0] < ts

    def cleared(self, device: str, ts: datetime) -> None:
        """The sensor says it sees no movement now: whatever follows is a new run."""
        run = self.runs.get(device)
        if run is not None and ts > run[1]:
            del self.runs[device]

    def state(self) -> dict[str, list[str]]:
        return {d: [format_ts(a), format_ts(b)] for d, (a, b) in self.runs.items()}

    def load(self, state: dict[str, list[str]]) -> None:
        self.runs = {d: (parse_ts(a), parse_ts(b)) for d, (a, b) in state.items()}


class ActivityTracker:
    """Keeps each state device's last value, to tell a change from a repeat."""

    def __init__(self, home: HomeConfig, power_on_watts: float) -> None:
        self.home = home
        self.power_on_watts = power_on_watts
        self.last_value: dict[str, float] = {}
        self.last_ts: dict[str, datetime] = {}
        self.bed_at: datetime | None = None  # the last time a bed mat became occupied
        self.elsewhere_at: datetime | None = None  # the last activity outside the bedroom
        self.out = False  # the front or back door, and no sign of life since
        self.pending: tuple[datetime, str] | None = None  # first sign of life after the door
        self.motion = MotionRuns()
        self.door_at: datetime | None = None  # the front or back door's latest passage
        self.pulsed: set[str] = set()  # bed mats whose latest "empty" was a moment's pulse

    def _away(self, ts: datetime, device: str, exit_door: bool) -> bool:
        """May the resident be out after this event? After the front or back door, yes,
        until a second device stirs within half an hour of a first's latest report (or the door
        again).
        One device alone is not a sign of life: a motion sensor misfiring in an empty home
        (a real one, stuck on for five hours in the sun) must not bring the resident home."""
        if exit_door:
            self.out, self.pending = True, None
            self.door_at = ts
        elif self.out and self.door_at is not None and \
                self.motion.began_before(device, self.door_at - AT_THE_DOOR):
            pass  # a motion sensor reporting on since before the door saw no one come in
        elif self.out:
            first = self.pending
            if first is None or ts - first[0] > BACK_WITHIN or device == first[1]:
                # The first device's latest report: someone walking about the hall for a
                # quarter of an hour, then the fridge 18 minutes later, is home.
                self.pending = (ts, device)
            else:
                self.out, self.pending = False, None
        return self.out

    @property
    def in_bed(self) -> bool:
        """A bed mat says occupied, and nothing has happened outside the bedroom since it
        last said so: a mat left pressed by a pillow or a bag does not keep the resident in
        bed while the kitchen is busy (seen in real homes with two mats per bed)."""
        if not any(v >= 1 for key, v in self.last_value.items() if key.endswith("|bed")):
            return False
        return self.bed_at is None or self.elsewhere_at is None or \
            self.elsewhere_at <= self.bed_at

    @property
    def in_chair(self) -> bool:
        return any(v >= 1 for key, v in self.last_value.items() if key.endswith("|chair"))

    def classify(self, r: Reading) -> Activity | None:
        key = f"{r.device}|{r.kind}"
        if r.kind not in STATE_KINDS and r.kind != "power" and r.kind not in EVENT_KINDS:
            return None
        if r.kind == "motion":
            if r.value < 1:
                self.motion.cleared(r.device, r.ts)
            changed = r.value >= 1 and not self.motion.stuck(r.device, r.ts)
        elif r.kind in EVENT_KINDS:
            changed = r.value >= 1
        else:
            prev_ts = self.last_ts.get(key)
            if prev_ts is not None and r.ts < prev_ts:
                return None  # a late report of an old state says nothing about now
            prev = self.last_value.get(key)
            pulse = False
            if r.kind == "bed" and prev is not None:
                if r.value < 1 <= prev and prev_ts is not None and r.ts - prev_ts <= PULSE:
                    pulse = True  # pressed for a moment: someone turning over, still in bed
                elif r.value >= 1 and key in self.pulsed:
                    prev = 0.0  # pressed again after a pulse: another stir in bed
            self.last_value[key] = 1.0 if pulse else r.value
            self.last_ts[key] = r.ts
            if pulse:
                self.pulsed.add(key)
            else:
                self.pulsed.discard(key)
            if r.kind == "power":
                was_on = prev is not None and prev >= self.power_on_watts
                changed = r.value >= self.power_on_watts and not was_on
            elif prev is None:
                # First report: an open door or an occupied bed is taken as a change; a closed
                # door is most likely a check-in.
                changed = r.value >= 1
            else:
                changed = r.value != prev
        if not changed:
            return None
        device = self.home.device(r.device)
        role = device.role if device else None
        room = device.room if device else None
        exit_door = role in EXIT_ROLES
        away = self._away(r.ts, r.device, exit_door)
        if r.kind == "bed" and self.last_value[key] >= 1:
            self.bed_at = r.ts
        elif r.kind != "bed" and room is not None and room != "bedroom" and \
                (self.elsewhere_at is None or r.ts > self.elsewhere_at):
            self.elsewhere_at = r.ts
        return Activity(
            ts=r.ts,
            device=r.device,
            room=room,
            what="moved in bed" if key in self.pulsed and r.value < 1 else
            _describe(r.kind, role, room, r.device, r.value),
            exit_door=exit_door,
            in_bed=self.in_bed,
            in_chair=self.in_chair,
            kind=r.kind,
            role=role,
            away=away,
        )

    def state(self) -> dict[str, Any]:
        return {
            "last_value": self.last_value,
            "last_ts": {k: format_ts(v) for k, v in self.last_ts.items()},
            "bed_at": format_ts(self.bed_at) if self.bed_at else None,
            "elsewhere_at": format_ts(self.elsewhere_at) if self.elsewhere_at else None,
            "out": self.out,
            "pending": [format_ts(self.pending[0]), self.pending[1]] if self.pending else None,
            "motion_runs": self.motion.state(),
            "door_at": format_ts(self.door_at) if self.door_at else None,
            "pulsed": sorted(self.pulsed),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.last_value = dict(state.get("last_value", {}))
        self.last_ts = {k: parse_ts(v) for k, v in state.get("last_ts", {}).items()}
        self.bed_at = parse_ts(state["bed_at"]) if state.get("bed_at") else None
        self.elsewhere_at = parse_ts(state["elsewhere_at"]) if state.get("elsewhere_at") \
            else None
        self.out = bool(state.get("out", False))
        pending = state.get("pending")
        self.pending = (parse_ts(pending[0]), pending[1]) if pending else None
        self.motion.load(state.get("motion_runs", {}))
        self.door_at = parse_ts(state["door_at"]) if state.get("door_at") else None
        self.pulsed = set(state.get("pulsed", []))
