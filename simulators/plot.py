"""`telecare plot`: a home's days as a timeline, so a person can see a routine at a glance.

One row a day (local dates), time of day across; within a row, a lane per kind of sensor:
time in bed as a grey bar, movement coloured by room, doors, appliances, the toilet, the
pendant. Labelled scenarios are shaded over the hours they cover and named at the left.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import matplotlib

matplotlib.use("Agg")  # files only: no screen needed
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from telecare.config import HomeConfig  # noqa: E402
from telecare.reading import Reading, parse_ts  # noqa: E402

LANES = {"bed": 0.85, "motion": 0.68, "contact": 0.5, "power": 0.34, "flush": 0.2,
         "button": 0.08, "chair": 0.85}
ROOM_COLOURS = ["#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
SCENARIO_COLOURS = {
    "pendant": "#d62728", "long_lie": "#d62728", "not_up": "#ff7f0e",
    "night_wandering": "#d62728", "cold_home": "#1f77b4", "heatwave": "#ff7f0e",
    "uti": "#9467bd", "skipped_meals": "#bcbd22", "decline": "#8c564b", "vitals": "#e377c2",
    "device_offline": "#7f7f7f", "flat_battery": "#7f7f7f", "visitor": "#2ca02c",
    "hospital": "#17becf",
}


def _hours(ts: datetime, tz: ZoneInfo) -> tuple[date, float]:
    local = ts.astimezone(tz)
    return local.date(), local.hour + local.minute / 60 + local.second / 3600


def _spans(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[date, float, float]]:
    """Split [start, end) into per-local-day pieces of (day, from hour, to hour)."""
    out = []
    t = start
    while t < end:
        day, h0 = _hours(t, tz)
        next_midnight = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz)
        piece_end = min(end, next_midnight)
        h1 = 24.0 if piece_end == next_midnight else _hours(piece_end, tz)[1]
        out.append((day, h0, h1))
        t = piece_end
    return out


@dataclass(frozen=True)
class Drawn:
    days: int
    labels: list[str]  # the scenario kinds shaded on the drawn days


def plot_home(readings: list[Reading], home: HomeConfig, labels: list[dict[str, Any]],
              out: Path, first: date | None = None, days: int | None = None,
              title: str | None = None) -> Drawn:
    """Draw the timeline to `out` (PNG)."""
    tz = home.tz
    own = sorted((r for r in readings if r.home == home.home), key=lambda r: r.ts)
    if not own:
        raise ValueError(f"no readings for home {home.home}")
    start_day = first or _hours(own[0].ts, tz)[0]
    last_day = _hours(own[-1].ts, tz)[0]
    n_days = days or (last_day - start_day).days + 1
    day_index = {start_day + timedelta(days=i): i for i in range(n_days)}

    fig, ax = plt.subplots(figsize=(14, max(3.0, 0.32 * n_days + 1.5)), dpi=110)
    def room_of(device_id: str) -> str:
        device = home.device(device_id)
        return (device.room if device else None) or "?"

    rooms = sorted({room_of(r.device) for r in own if r.kind == "motion"})
    room_colour = {room: ROOM_COLOURS[i % len(ROOM_COLOURS)] for i, room in enumerate(rooms)}

    shaded: list[str] = []
    for lab in labels:
        if lab["home"] != home.home:
            continue
        colour = SCENARIO_COLOURS.get(lab["kind"], "#ff7f0e")
        spans = _spans(parse_ts(lab["start"]), parse_ts(lab["end"]), tz)
        for k, (day, h0, h1) in enumerate(spans):
            if day in day_index:
                y = day_index[day]
                ax.axvspan(h0, max(h1, h0 + 0.15), ymin=0, ymax=1, alpha=0)  # keep x-limits
                ax.fill_between([h0, max(h1, h0 + 0.15)], y, y + 1, color=colour, alpha=0.22,
                                lw=0)
                if lab["kind"] not in shaded[-1:]:
                    shaded.append(lab["kind"])
                if k == 0:
                    ax.text(min(h0 + 0.1, 21.0), y + 0.55, lab["kind"], fontsize=7,
                            color=colour, fontweight="bold")

    bed_since: dict[str, datetime] = {}
    ticks: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    last_state: dict[str, float] = {}
    for r in own:
        if r.kind in ("bed", "chair"):
            if r.value >= 1 and r.device not in bed_since:
                bed_since[r.device] = r.ts
            elif r.value < 1 and r.device in bed_since:
                for day, h0, h1 in _spans(bed_since.pop(r.device), r.ts, tz):
                    if day in day_index:
                        lane = day_index[day] + LANES[r.kind]
                        ax.plot([h0, h1], [lane, lane], color="#999999", lw=3.5,
                                solid_capstyle="butt")
            continue
        if r.kind not in LANES:
            continue
        changed = r.kind in ("motion", "flush", "button") or last_state.get(r.device) != r.value
        last_state[r.device] = r.value
        if not changed or (r.kind in ("motion", "flush", "button") and r.value < 1):
            continue
        if r.kind == "power" and r.value < 20:
            continue
        day, h = _hours(r.ts, tz)
        if day not in day_index:
            continue
        key = (r.kind, room_of(r.device) if r.kind == "motion" else "")
        ticks[key].append((h, day_index[day] + LANES[r.kind]))

    styles = {"contact": ("|", "black", 8), "power": ("s", "#ff7f0e", 3),
              "flush": ("v", "#1f3fbf", 4), "button": ("*", "#d62728", 12)}
    for (kind, room), points in ticks.items():
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        if kind == "motion":
            ax.scatter(xs, ys, marker="|", s=30, color=room_colour[room], lw=0.8)
        else:
            marker, colour, size = styles[kind]
            ax.scatter(xs, ys, marker=marker, s=size * 4, color=colour, lw=0.8)

    ax.set_xlim(0, 24)
    ax.set_ylim(n_days, 0)
    ax.set_xticks(range(0, 25, 2))
    ax.set_xlabel(f"time of day ({home.timezone})")
    ax.set_yticks([i + 0.5 for i in range(n_days)])
    ax.set_yticklabels([(start_day + timedelta(days=i)).strftime("%a %d %b")
                        for i in range(n_days)], fontsize=7)
    for i in range(n_days + 1):
        ax.axhline(i, color="#dddddd", lw=0.5)
    handles = [Patch(color="#999999", label="in bed / chair")]
    handles += [Patch(color=c, label=f"movement: {room}") for room, c in room_colour.items()]
    handles += [Patch(color="black", label="door/cupboard"),
                Patch(color="#ff7f0e", label="appliance on"),
                Patch(color="#1f3fbf", label="toilet flush"),
                Patch(color="#d62728", label="pendant")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.06 - 1.2 / n_days),
              ncol=6, fontsize=7, frameon=False)
    ax.set_title(title or f"Home {home.home}: {n_days} days", fontsize=10)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return Drawn(n_days, shaded)
