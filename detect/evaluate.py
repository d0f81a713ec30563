"""`telecare evaluate DIR`: how well detection does on a labelled scenario bundle.

Backtest runs over the bundle's readings; each label is matched with the alerts of the rules
that should catch its kind, raised from shortly before its onset until its end (plus a grace
for conditions a rule can only see afterwards). Per scenario kind: recall, and the median and
90th-percentile delay from onset to the first matching alert. False alerts: alerts raised on
home-days with no labelled event at all, per home-week, by severity. Alerts during the
not-a-crisis scenarios (a visitor, a hospital stay) are counted apart: each one is a false
alarm a carer would have received.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from detect.backtest import run_backtest
from telecare.alert import SEVERITIES, Alert
from telecare.config import load_config
from telecare.reading import parse_ts

# Which rules catch each scenario kind; an empty tuple: not a crisis, nothing should fire.
EXPECTED: dict[str, tuple[str, ...]] = {
    "pendant": ("pendant",),
    "long_lie": ("inactivity", "fall"),
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

    def row(self) -> dict[str, Any]:
        d = sorted(self.delays_min)
        return {
            "labels": self.labels,
            "caught": self.caught,
            "recall": round(self.caught / self.labels, 3) if self.labels else None,
            "delay_median_min": round(statistics.median(d), 1) if d else None,
            "delay_p90_min": round(d[min(len(d) - 1, int(0.9 * len(d)))], 1) if d else None,
            **({"alerts_during": self.alerts_during} if self.alerts_during else {}),
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
    with open(bundle / "readings.jsonl", encoding="utf-8") as f:
        result = run_backtest(f, config)
    labels = [json.loads(x) for x in (bundle / "labels.jsonl").read_text().splitlines()
              if x.strip()]
    return score(result.alerts, labels, config.homes, _days_of(result.alerts, bundle))


def _days_of(alerts: list[Alert], bundle: Path) -> tuple[date, date]:
    first = last = None
    with open(bundle / "readings.jsonl", encoding="utf-8") as f:
        for line in f:
            ts = json.loads(line)["ts"]
            first = ts if first is None or ts < first else first
            last = ts if last is None or ts > last else last
    assert first and last, "no readings"
    return parse_ts(first).date(), parse_ts(last).date()


def score(alerts: list[Alert], labels: list[dict[str, Any]], homes: dict[str, Any],
          span: tuple[date, date]) -> Evaluation:
    by_home: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        by_home[a.home].append(a)
    kinds: dict[str, KindResult] = defaultdict(KindResult)
    labelled_days: dict[str, set[date]] = defaultdict(set)
    for lab in labels:
        start, end = parse_ts(lab["start"]), parse_ts(lab["end"])
        d = (start - timedelta(days=1)).date()
        while d <= (end + timedelta(days=1)).date():
            labelled_days[lab["home"]].add(d)
            d += timedelta(days=1)
        result = kinds[lab["kind"]]
        rules = EXPECTED.get(lab["kind"], ())
        if not rules:
            result.labels += 1
            result.alerts_during += sum(start <= a.raised_at <= end
                                        for a in by_home[lab["home"]])
            continue
        result.labels += 1
        matches = [a for a in by_home[lab["home"]] if a.rule in rules
                   and start - EARLY <= a.raised_at <= end + grace(lab["kind"])]
        if matches:
            result.caught += 1
            first = min(a.raised_at for a in matches)
            result.delays_min.append(max((first - onset(lab)).total_seconds() / 60, 0.0))
    days = (span[1] - span[0]).days + 1
    clean = 0
    false: Counter[str] = Counter()
    false_alerts = []
    for home in homes:
        for i in range(days):
            if span[0] + timedelta(days=i) not in labelled_days[home]:
                clean += 1
        for a in by_home[home]:
            if a.raised_at.date() not in labelled_days[home]:
                false[a.severity] += 1
                false_alerts.append(a.to_json_obj())
    return Evaluation(dict(kinds), clean, false, false_alerts, len(alerts))


def format_table(ev: Evaluation) -> str:
    lines = [f"{'scenario':<16}{'labels':>7}{'caught':>7}{'recall':>8}{'median':>9}{'p90':>9}"
             "  (delay from onset, minutes)"]
    for kind, r in sorted(ev.kinds.items(), key=lambda kv: (kv[0] not in ACUTE, kv[0])):
        row = r.row()
        if not EXPECTED.get(kind):
            lines.append(f"{kind:<16}{row['labels']:>7}{'-':>7}{'-':>8}{'-':>9}{'-':>9}"
                         f"  not a crisis: {r.alerts_during} alert(s) during")
            continue
        rec = f"{row['recall']:.0%}" if row["recall"] is not None else "-"
        med = f"{row['delay_median_min']:.0f}" if row["delay_median_min"] is not None else "-"
        p90 = f"{row['delay_p90_min']:.0f}" if row["delay_p90_min"] is not None else "-"
        lines.append(f"{kind:<16}{row['labels']:>7}{row['caught']:>7}{rec:>8}{med:>9}{p90:>9}")
    per_week = ev.false_per_home_week()
    lines.append("")
    lines.append(f"false alerts per home-week on {ev.home_days_clean} home-days without a "
                 "labelled event: " + ", ".join(f"{s} {v:g}" for s, v in per_week.items()))
    lines.append(f"medium-or-higher false alerts per home-month: "
                 f"{ev.medium_plus_per_home_month():g}")
    return "\n".join(lines)
