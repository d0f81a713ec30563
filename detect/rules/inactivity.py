"""Inactivity: no resident activity for too long in waking hours while the resident is at home.

This is what catches a long lie after an undetected fall. Only waking-hours time counts
towards the threshold (the resident's local time), so a quiet night does not raise it, and
the clock is paused while the resident is in bed (a bed mat shows occupied) or has gone out
(the last thing that happened was the front or back door). The deadline is a timer in event
time: it fires when the home's stream passes it even if this home sends nothing more.

The limit is the resident's own: a long lie cannot be told from their quietest ordinary
spell at home until just past it, so once `LEARN_DAYS` days are known the limit is the
longest ordinary quiet spell they had at home, starting within two hours of the same time of
day, in the last `KEEP_DAYS` days, plus `MARGIN`; the plan's `threshold` is the floor, and
its `sparse_threshold` (doors and appliances only) or `resting_threshold` the ceiling. While
learning, the plan's own value applies. A spell during which an alert was raised is not
learned from.

Waking hours end at the resident's own bedtime, not at a fixed hour: each night's main rest
(quiet spells of an hour or more, joined across short trips, holding 04:00 and lasting
`MAIN_REST`) tells when they went to bed, and once `LEARN_DAYS` days and `BED_NIGHTS` nights
are known the waking hours run to the earlier quartile of those bedtimes (the plan's
`waking_hours` end is the earliest, `LATEST_END` the latest). Someone who goes to bed at
01:30 and falls at 17:00 is not left on the floor until the next morning because the plan
said 22:00. Spells are kept with their instants, so what they count as waking time follows
the window when it moves.

A morning's quiet in the bedroom (a lie-in with a mat that does not see them, or none) is
learned for the mornings only: it does not raise the limit for the rest of the day, where a
fall in the evening would wait behind it.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from detect.activity import Activity, sees_going_out, sees_presence
from detect.localtime import add_window_time, hours_minutes, when, window_time_between
from detect.rules.base import Rule, RuleSpec
from telecare.alert import Alert
from telecare.config import Duration, HomeConfig, RuleSettings, Severity, Window
from telecare.reading import Reading, format_ts, parse_ts

LEARN_DAYS = 7
KEEP_DAYS = 28
MARGIN = timedelta(minutes=30)
SHORTEST_KEPT = timedelta(minutes=20)  # shorter spells never set the limit: not kept
NEAR_HOURS = 2.0
# The night's main rest, which tells the bedtime: pieces of quiet of REST_PIECE or more,
# joined across trips of TRIP or less, holding 04:00 (NIGHT_CORE) and lasting MAIN_REST.
REST_PIECE = timedelta(hours=1)
TRIP = timedelta(minutes=20)
NIGHT_CORE = 4.0  # hours after midnight, local
MAIN_REST = timedelta(hours=3)
BED_NIGHTS = 5  # bedtimes known before the waking hours follow them
LATEST_END = 27.0  # 03:00 the next day, in hours from the evening's midnight
# Quiet in the bedroom that began before this hour is a morning's: van Kasteren B's lie-in
# from 10:16 to 13:39 (silent mats) was learned as a 3 h 23 min ordinary spell "by day", and
# a fall at 18:26 then waited 3 h 53 min, past his bedtime.
MORNING_UNTIL = 12.0


class InactivitySettings(RuleSettings):
    severity: Severity = "high"
    threshold: Duration = timedelta(hours=3)  # waking-hours time; paused in bed or out
    resting_threshold: Duration = timedelta(hours=6)  # sitting on a chair with a mat
    # Homes with no PIR, bed or chair sensor: only doors and plugs show activity there, and
    # hours pass between a meal and the next.
    sparse_threshold: Duration = timedelta(hours=7)
    waking_hours: Window = Window(start=time(7), end=time(22))
    power_on_watts: float = 20  # an appliance crossing this from below: the resident acting


class Inactivity(Rule):
    name = "inactivity"

    def __init__(self, home: HomeConfig, settings: InactivitySettings) -> None:
        super().__init__(home)
        self.settings = settings
        self.last: Activity | None = None
        self.open: Alert | None = None
        self._deadline: datetime | None = None
        self.sparse = not sees_presence(home)
        # With no front or back door watched, going out cannot be told from a lie: every
        # outing is a quiet spell. Such a home gets the sparse limit while it learns
        # (Ordonez A and B with their motion sensors only: 9 and 4 alerts in the learning
        # week at the 3 h limit, most of them an afternoon out); its own spells after.
        self.blind_out = not sees_going_out(home)
        self.threshold = settings.sparse_threshold if self.sparse or self.blind_out \
            else settings.threshold
        self.ceiling = settings.sparse_threshold if self.sparse else \
            max(settings.threshold, settings.resting_threshold)
        # The resident's quiet spells at home: [local day ordinal, start hour, waking minutes,
        # 1 if it lay wholly within one day's waking hours, start and end (epoch seconds)].
        self.spells: list[list[float]] = []
        self.first_day: int | None = None  # local day ordinal of the first activity seen
        self._cache: dict[tuple[int, int], tuple[timedelta, timedelta | None]] = {}
        # Bedtimes: [local ordinal of the night's morning, hours from the evening's midnight
        # (01:30 is 25.5)]; and the rest being joined up, [start, end] in epoch seconds.
        self.bedtimes: list[list[float]] = []
        self.rest: list[float] | None = None
        self.window = (settings.waking_hours.start, settings.waking_hours.end)

    def _learn(self, last: Activity | None, now: datetime, flagged: bool) -> None:
        day = now.astimezone(self.tz).toordinal()
        if self.first_day is None:
            self.first_day = day
        if last is None:
            return
        self._note_rest(last, now)
        if last.exit_door or last.in_bed or flagged or \
                now - last.ts < SHORTEST_KEPT:  # most gaps: seconds, never worth keeping
            return
        # Kept whatever part of it fell in waking hours: the window may move to cover it.
        spell = self._spell(last.ts.timestamp(), now.timestamp())
        if last.room == "bedroom" and spell[1] < MORNING_UNTIL:
            spell[3] = 0  # a morning in the bedroom: near the mornings only
        self.spells.append(spell)
        self.spells = [s for s in self.spells if s[0] > day - KEEP_DAYS]
        self._cache.clear()

    def _spell(self, start: float, end: float) -> list[float]:
        """A quiet spell between two instants (epoch seconds), measured in waking hours."""
        begin, until = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        quiet = window_time_between(begin, until, self.window[0], self.window[1], self.tz)
        local = begin.astimezone(self.tz)
        # All of it inside one day's waking hours as the plan has them: an evening in front
        # of the television before a late bedtime raises the evening's limit, not the day's.
        plan = self.settings.waking_hours
        by_day = int(local.date() == until.astimezone(self.tz).date() and
                     window_time_between(begin, until, plan.start, plan.end, self.tz)
                     == until - begin)
        return [local.toordinal(), round(local.hour + local.minute / 60, 2),
                round(quiet.total_seconds() / 60, 1), by_day, start, end]

    def _note_rest(self, last: Activity, now: datetime) -> None:
        """Join the night's quiet into its main rest, and learn the bedtime from it."""
        if last.exit_door or last.in_chair:
            # Out, or sitting up in the armchair (an evening in front of the television):
            # the quiet that follows is not the night's rest.
            self.rest = None
            return
        if now - last.ts < REST_PIECE and not last.in_bed:
            return  # (a stir in bed, a mat's pulse under a restless sleeper, is still rest)
        start, end = last.ts.timestamp(), now.timestamp()
        if self.rest is not None and start - self.rest[1] <= TRIP.total_seconds():
            self.rest[1] = end  # a short trip between two pieces of rest: one rest
        else:
            self.rest = [start, end]
        if end - self.rest[0] < MAIN_REST.total_seconds():
            return
        begin = datetime.fromtimestamp(self.rest[0], UTC).astimezone(self.tz)
        hour = begin.hour + begin.minute / 60
        evening = hour >= NIGHT_CORE + 12  # went to bed before midnight
        morning = begin.date() + timedelta(days=1) if evening else begin.date()
        core = datetime.combine(morning, time(int(NIGHT_CORE)), tzinfo=self.tz).timestamp()
        if not (self.rest[0] <= core <= end) or \
                any(b[0] == morning.toordinal() for b in self.bedtimes):
            return
        self.bedtimes.append([morning.toordinal(), round(hour if evening else hour + 24, 2)])
        self.bedtimes = [b for b in self.bedtimes if b[0] > morning.toordinal() - KEEP_DAYS]
        self._follow_bedtime(morning.toordinal())

    def _follow_bedtime(self, day: int) -> None:
        """Waking hours end at the earlier quartile of their bedtimes, once enough are known;
        the spells kept are measured again in the new window."""
        plan = self.settings.waking_hours
        window = (plan.start, plan.end)
        plan_end = plan.end.hour + plan.end.minute / 60
        plan_end += 24 if plan_end < NIGHT_CORE + 12 else 0
        if len(self.bedtimes) >= BED_NIGHTS and self.first_day is not None and \
                day - self.first_day >= LEARN_DAYS:
            quartile = sorted(b[1] for b in self.bedtimes)[len(self.bedtimes) // 4]
            latest = min(LATEST_END, plan.start.hour + 24 - 1)  # the window must close
            minutes = round(min(max(quartile, plan_end), latest) * 60) % (24 * 60)
            window = (plan.start, time(minutes // 60, minutes % 60))
        if window == self.window:
            return
        self.window = window
        self.spells = [self._measured_again(s) if len(s) > 5 else s for s in self.spells]
        self._cache.clear()

    def _measured_again(self, spell: list[float]) -> list[float]:
        """A kept spell in the current waking hours; whether it counts for the whole day
        was settled when it was learned."""
        again = self._spell(spell[4], spell[5])
        again[3] = spell[3]
        return again

    def learned(self, at: datetime) -> tuple[timedelta, timedelta | None]:
        """The limit for a quiet spell that starts at `at`, and the longest ordinary spell
        it rests on (None while learning, or with no spell near that time of day)."""
        local = at.astimezone(self.tz)
        day = local.toordinal()
        if self.first_day is None or day - self.first_day < LEARN_DAYS:
            return self.threshold, None
        # Asked at every activity: the answer for this day and quarter hour is kept until a
        # new spell is learned.
        key = (day, local.hour * 4 + local.minute // 15)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._learned(day, local.hour + local.minute / 60)
        return found

    def _learned(self, day: int, hour: float) -> tuple[timedelta, timedelta | None]:
        # The longest of their spells that began near this time of day (an evening's spell
        # runs on into the morning's waking hours), and never less than the longest they
        # had wholly by day at any time: a few weeks hold too few spells of each hour to
        # trust one hour's longest alone.
        recent = [sp for sp in self.spells if sp[0] > day - KEEP_DAYS]
        near = [sp[2] for sp in recent if min(abs(sp[1] - hour), 24 - abs(sp[1] - hour))
                <= NEAR_HOURS]
        by_day = [sp[2] for sp in recent if len(sp) > 3 and sp[3]]
        if not near and not by_day:
            return self.settings.threshold, timedelta(0)
        longest = timedelta(minutes=max(near + by_day))
        limit = min(max(longest + MARGIN, self.settings.threshold), self.ceiling)
        return limit, longest

    def observe(self, reading: Reading, activity: Activity | None) -> list[Alert]:
        if activity is None or (self.last is not None and activity.ts < self.last.ts):
            return []
        if activity.away and not activity.exit_door:
            return []  # gone out, and no sure sign of life yet (see ActivityTracker)
        # A spell flagged against their own learned limit is not learned from; one flagged
        # against the plan's default while learning still is (a late riser is not ill
        # every morning of the first week).
        flagged = self.open is not None and \
            self.open.evidence.get("longest_ordinary_minutes") is not None
        self._learn(self.last, activity.ts, flagged)
        self.last = activity
        self._deadline = self._compute_deadline()
        if self.open is None:
            return []
        resolved = self.open.resolve(
            activity.ts,
            f"Activity again at {when(activity.ts, self.tz)}: {activity.what}, after "
            f"{hours_minutes(activity.ts - self.open.raised_at)} of alert "
            f"({hours_minutes(activity.ts - self._open_since())} with no activity seen).",
        )
        self.open = None
        return [resolved]

    def _open_since(self) -> datetime:
        assert self.open is not None
        return parse_ts(self.open.evidence["last_activity_at"])

    def _compute_deadline(self) -> datetime | None:
        last = self.last
        if last is None or last.exit_door or last.in_bed:
            return None  # no history yet, gone out, or resting in bed
        return add_window_time(last.ts, self._threshold(last), self.window[0], self.window[1],
                               self.tz)

    def _threshold(self, last: Activity) -> timedelta:
        # Sitting in a chair with a pressure mat (watching TV, dozing) is resting, not lying
        # on the floor: allow longer, but not for ever.
        # Once their own spells are learned they include the chair's (the same resident's
        # ordinary afternoon in front of the television): the learned limit serves for both.
        limit, longest = self.learned(last.ts)
        if last.in_chair and longest is None:
            return max(limit, self.settings.resting_threshold)
        return limit

    def next_deadline(self) -> datetime | None:
        return None if self.open is not None else self._deadline

    def on_deadline(self, now: datetime) -> list[Alert]:
        last = self.last
        if self.open is not None or last is None or self._deadline is None:
            return []
        threshold = hours_minutes(self._threshold(last))
        _, longest = self.learned(last.ts)
        if longest is None:
            kind = " for a home with only door and appliance sensors" if self.sparse else \
                " for a home where going out is not seen" if self.blind_out else ""
            basis = f"the limit in their plan{kind} while their own routine is being learned"
        elif longest:
            basis = (f"longer than any ordinary quiet spell of theirs at this time of day in "
                     f"the last {KEEP_DAYS} days (the longest: {hours_minutes(longest)})")
        else:
            basis = "the limit in their plan (they are seldom this quiet at this time of day)"
        message = (
            f"No activity seen at home since {when(last.ts, self.tz)} "
            f"(last: {last.what}), and the resident has not gone out. "
            f"That is {threshold} of waking hours, {basis}. "
            "They may have fallen: call them now, and send someone if there is no answer."
        )
        self.open = self.firing(
            self._deadline, self.settings.severity, message,
            {
                "last_activity_at": format_ts(last.ts),
                "last_activity": last.what,
                "last_device": last.device,
                "threshold_minutes": self._threshold(last).total_seconds() / 60,
                "longest_ordinary_minutes": None if longest is None
                else longest.total_seconds() / 60,
                "waking_hours": [self.window[0].strftime("%H:%M"),
                                 self.window[1].strftime("%H:%M")],
            },
        )
        return [self.open]

    def state(self) -> dict[str, Any]:
        last = self.last
        return {
            "last": None if last is None else {
                "ts": format_ts(last.ts), "device": last.device, "room": last.room,
                "what": last.what, "exit_door": last.exit_door, "in_bed": last.in_bed,
                "in_chair": last.in_chair, "kind": last.kind,
                "role": last.role, "away": last.away,
            },
            "open": self.open.to_json_obj() if self.open else None,
            "spells": self.spells, "first_day": self.first_day,
            "bedtimes": self.bedtimes, "rest": self.rest,
            "window": [self.window[0].strftime("%H:%M"), self.window[1].strftime("%H:%M")],
        }

    def load(self, state: dict[str, Any]) -> None:
        raw = state.get("last")
        self.last = None if raw is None else Activity(
            ts=parse_ts(raw["ts"]), device=raw["device"], room=raw["room"], what=raw["what"],
            exit_door=raw["exit_door"], in_bed=raw["in_bed"], in_chair=raw.get("in_chair", False),
            kind=raw.get("kind", ""), role=raw.get("role"), away=raw.get("away", False),
        )
        self.open = Alert.from_json_obj(state["open"]) if state.get("open") else None
        self.spells = [list(s) for s in state.get("spells", [])]
        self.first_day = state.get("first_day")
        self.bedtimes = [list(b) for b in state.get("bedtimes", [])]
        self.rest = state.get("rest")
        # The window the saved spells were measured in; measured again only if the plan's
        # waking hours have changed since (not for every late sleeper at every start-up).
        plan = self.settings.waking_hours
        saved = state.get("window")
        self.window = (time.fromisoformat(saved[0]), time.fromisoformat(saved[1])) if saved \
            else (plan.start, plan.end)
        if self.bedtimes:
            self._follow_bedtime(int(self.bedtimes[-1][0]))
        self._deadline = self._compute_deadline()


SPEC = RuleSpec("inactivity", InactivitySettings, Inactivity)
