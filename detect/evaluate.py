"""`telecare evaluate DIR`: how well detection does on a labelled scenario bundle.

Backtest runs over the bundle's readings; each label is matched with the alerts of the rules
that should catch its kind, raised from shortly before its onset until its end (plus a grace
for conditions a rule can only see afterwards). Per scenario kind: recall, and the median and
90th-percentile delay from onset to the first matching alert (for vital signs, from when
they first reached a NEWS2 trigger: the deterioration starts days before that). False
alerts: alerts raised on home-days with no labelled event at all, per home-week, by
severity. Alerts during the not-a-crisis scenarios (a visitor, a hospital stay) are counted
apart: each one is a false alarm a carer would have received.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from detect import news2
from detect.backtest import backtest_readings, read_readings
from detect.coverage import can_see
from detect.rules import load_config
from telecare.alert import SEVERITIES, Alert
from telecare.config import HomeConfig
from telecare.reading import Reading, parse_ts

# Which rules catch each scenario kind; an empty tuple: not a crisis, nothing should fire.
EXPECTED: dict[str, tuple[str, ...]] = {
    "pendant": ("pendant",),
    "long_lie": ("inactivity", "fall", "not_up"),
    "not_up": ("not_up", "inactivity"),
    "night_wandering": ("night_door",),
    "cold_home": ("cold_home",),
    "heatwave": ("hot_home",),
    "uti": ("night_toilet",),
    "skipped_meals": ("meals",),
    "decline": ("decline",),
    "vitals": ("news2",),
    "device_offline": ("device_offline",),
    "flat_battery": ("low_battery", "device_offline"),
    "visitor": (),
    "hospital": (),
}
# The crisis each kind is, in `detect.coverage`'s words: a label in a home whose sensors
# cannot see it at all is counted as unseen, apart from recall: no rule could see it.
CRISIS: dict[str, str] = {
    "pendant": "call for help", "long_lie": "long lie", "not_up": "not up",
    "night_wandering": "night wandering", "cold_home": "cold or hot home",
    "heatwave": "cold or hot home", "uti": "night toileting", "skipped_meals": "skipped meals",
    "decline": "decline", "vitals": "vital signs (NEWS2)",
}
SAME_TIME = timedelta(minutes=1)  # an alert this close to one of the reference's is background
ACUTE = {"pendant", "long_lie", "not_up", "night_wandering", "cold_home", "heatwave", "vitals"}
EARLY = timedelta(minutes=5)  # an alert a little before the label's start still counts


def onset(label: dict[str, Any]) -> datetime:
    detail = label.get("detail") or {}
    for key in ("first_below_16c", "first_above_26c"):
        if detail.get(key):
            return parse_ts(detail[key])
    return parse_ts(label["start"])


def grace(kind: str) -> timedelta:
    """How long after a label's end a matching alert still counts (gradual patterns are seen
    in the morning after the night that completes them)."""
    return timedelta(days=2) if kind in ("uti", "skipped_meals", "decline") else \
        timedelta(hours=2)


@dataclass
class KindResult:
    labels: int = 0
    caught: int = 0
    delays_min: list[float] = field(default_factory=list)
    alerts_during: int = 0  # for not-a-crisis kinds
    unseen: int = 0  # labels in homes without the sensors to see them

    def row(self) -> dict[str, Any]:
        d = sorted(self.delays_min)
        return {
            "labels": self.labels,
            "caught": self.caught,
            "recall": round(self.caught / self.labels, 3) if self.labels else None,
            "delay_median_min": round(statistics.median(d), 1) if d else None,
            "delay_p90_min": round(d[min(len(d) - 1, int(0.9 * len(d)))], 1) if d else None,
            **({"alerts_during": self.alerts_during} if self.alerts_during else {}),
            **({"unseen_no_sensor": self.unseen} if self.unseen else {}),
        }


@dataclass
class Evaluation:
    kinds: dict[str, KindResult]
    home_days_clean: int
    false_by_severity: Counter[str]
    false_alerts: list[dict[str, Any]]
    alerts_total: int

    def false_per_home_week(self) -> dict[str, float]:
        weeks = self.home_days_clean / 7 or 1.0
        return {s: round(self.false_by_severity[s] / weeks, 3) for s in SEVERITIES}

    def medium_plus_per_home_month(self) -> float:
        months = self.home_days_clean / 30.44 or 1.0
        n = sum(self.false_by_severity[s] for s in ("medium", "high", "critical"))
        return round(n / months, 3)

    def to_json_obj(self) -> dict[str, Any]:
        return {
            "scenarios": {k: r.row() for k, r in sorted(self.kinds.items())},
            "clean_home_days": self.home_days_clean,
            "false_alerts_per_home_week": self.false_per_home_week(),
            "false_medium_or_higher_per_home_month": self.medium_plus_per_home_month(),
            "alerts_total": self.alerts_total,
        }


def evaluate(bundle: Path) -> Evaluation:
    config = load_config(bundle)
    bad: Counter[str] = Counter()
    with open(bundle / "readings.jsonl", encoding="utf-8") as f:
        readings = read_readings(f, bad)  # read once: for the backtest and for the figures
    assert readings, "no readings"
    result = backtest_readings(readings, config, bad)  # sorts them by event time
    labels = [json.loads(x) for x in (bundle / "labels.jsonl").read_text().splitlines()
              if x.strip()]
    span = (readings[0].ts.date(), readings[-1].ts.date())
    spans: dict[str, tuple[date, date]] = {}
    for r in readings:  # in event-time order: the first and last day each home was heard
        d = r.ts.date()
        spans[r.home] = (spans[r.home][0], d) if r.home in spans else (d, d)
    return score(result.alerts, labels, config.homes, span,
                 _news2_thresholds(readings, labels), spans)


def _news2_thresholds(readings: list[Reading], labels: list[dict[str, Any]]
                      ) -> dict[int, datetime]:
    """For each vitals label, when the vital signs first reached a NEWS2 trigger (a total of
    5, or one parameter scoring 3): the rule's threshold, from which its delay is judged.
    Worked out from the readings here, apart from the rule: the latest value of each
    parameter within the hour."""
    wanted = {i: lab for i, lab in enumerate(labels) if lab["kind"] == "vitals"}
    if not wanted:
        return {}
    homes = {lab["home"] for lab in wanted.values()}
    series: dict[str, list[tuple[datetime, str, float]]] = defaultdict(list)
    for r in readings:
        if r.home in homes and r.kind in news2.PARAMETERS:
            series[r.home].append((r.ts, r.kind, r.value))
    out: dict[int, datetime] = {}
    for i, lab in wanted.items():
        start, end = parse_ts(lab["start"]), parse_ts(lab["end"])
        latest: dict[str, tuple[datetime, float]] = {}
        for ts, kind, value in sorted(series[lab["home"]]):
            if ts > end:
                break
            latest[kind] = (ts, value)
            recent = {k: v for k, (t, v) in latest.items() if ts - t <= timedelta(hours=1)}
            if ts >= start and news2.score(recent).level() >= 1:
                out[i] = ts
                break
    return out


def score(alerts: list[Alert], labels: list[dict[str, Any]], homes: dict[str, HomeConfig],
          span: tuple[date, date], thresholds: dict[int, datetime] | None = None,
          spans: dict[str, tuple[date, date]] | None = None) -> Evaluation:
    """`thresholds`: for some labels (by index), when the rule's threshold was reached; the
    delay is counted from there instead of from the label's onset. `spans`: each home's own
    first and last day (recordings of different homes cover different dates)."""
    thresholds = thresholds or {}
    by_home: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        by_home[a.home].append(a)
    kinds: dict[str, KindResult] = defaultdict(KindResult)
    labelled_days: dict[str, set[date]] = defaultdict(set)
    for index, lab in enumerate(labels):
        start, end = parse_ts(lab["start"]), parse_ts(lab["end"])
        d = (start - timedelta(days=1)).date()
        while d <= (end + timedelta(days=1)).date():
            labelled_days[lab["home"]].add(d)
            d += timedelta(days=1)
        view = (lab.get("detail") or {}).get("view")
        result = kinds[lab["kind"] if view is None else f"{lab['kind']} [{view}]"]
        rules = EXPECTED.get(lab["kind"], ())
        if not rules:
            result.labels += 1
            result.alerts_during += sum(start <= a.raised_at <= end
                                        for a in by_home[lab["home"]])
            continue
        described = homes.get(lab["home"])
        crisis = CRISIS.get(lab["kind"])
        if crisis and described is not None and not can_see(described, crisis):
            result.unseen += 1
            continue
        result.labels += 1
        reference = (lab.get("detail") or {}).get("reference")
        background = by_home.get(reference, []) if reference else []
        matches = [a for a in by_home[lab["home"]] if a.rule in rules
                   and start - EARLY <= a.raised_at <= end + grace(lab["kind"])
                   and not any(b.rule == a.rule and abs(b.raised_at - a.raised_at) <= SAME_TIME
                               for b in background)]
        if matches:
            result.caught += 1
            first = min(a.raised_at for a in matches)
            begin = thresholds.get(index) or onset(lab)
            result.delays_min.append(max((first - begin).total_seconds() / 60, 0.0))
    clean = 0
    false: Counter[str] = Counter()
    false_alerts = []
    # Injected copies repeat their reference's ordinary days: only the reference counts them.
    copies = {lab["home"] for lab in labels if (lab.get("detail") or {}).get("reference")}
    for home in homes:
        if home in copies:
            continue
        day_one, day_last = (spans or {}).get(home, span)
        for i in range((day_last - day_one).days + 1):
            if day_one + timedelta(days=i) not in labelled_days[home]:
                clean += 1
        for a in by_home[home]:
            if a.raised_at.date() not in labelled_days[home]:
                false[a.severity] += 1
                false_alerts.append(a.to_json_obj())
    return Evaluation(dict(kinds), clean, false, false_alerts, len(alerts))


def _base(kind: str) -> str:
    """The scenario kind of a table row ("long_lie [pirs]" -> "long_lie")."""
    return kind.split(" [")[0]


def format_table(ev: Evaluation) -> str:
    w = max([16] + [len(k) + 1 for k in ev.kinds])  # rows of layout views are longer
    lines = [f"{'scenario':<{w}}{'labels':>7}{'caught':>7}{'recall':>8}{'median':>9}{'p90':>9}"
             "  (delay from onset, minutes)"]
    for kind, r in sorted(ev.kinds.items(), key=lambda kv: (_base(kv[0]) not in ACUTE, kv[0])):
        row = r.row()
        if not EXPECTED.get(_base(kind)):
            lines.append(f"{kind:<{w}}{row['labels']:>7}{'-':>7}{'-':>8}{'-':>9}{'-':>9}"
                         f"  not a crisis: {r.alerts_during} alert(s) during")
            continue
        rec = f"{row['recall']:.0%}" if row["recall"] is not None else "-"
        med = f"{row['delay_median_min']:.0f}" if row["delay_median_min"] is not None else "-"
        p90 = f"{row['delay_p90_min']:.0f}" if row["delay_p90_min"] is not None else "-"
        unseen = f"  + {r.unseen} in homes without the sensors to see it" if r.unseen else ""
        lines.append(f"{kind:<{w}}{row['labels']:>7}{row['caught']:>7}{rec:>8}{med:>9}{p90:>9}"
                     f"{unseen}")
    per_week = ev.false_per_home_week()
    lines.append("")
    lines.append(f"false alerts per home-week on {ev.home_days_clean} home-days without a "
                 "labelled event: " + ", ".join(f"{s} {v:g}" for s, v in per_week.items()))
    lines.append(f"medium-or-higher false alerts per home-month: "
                 f"{ev.medium_plus_per_home_month():g}")
    return "\n".join(lines)
