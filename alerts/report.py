"""Response figures: how fast alerts reached a person, were taken on, and were closed.

From the embedded store: an alert's start is when the alerts stage logged it as firing; the
first notification is the first notice that reached anyone; acknowledgement is the first
person taking it on; resolution is its resolved event. Per severity and per home: how many,
the median and 90th percentile of each time, and the share acknowledged within 60 s and
180 s, set against the social-alarm industry's yardstick for answering calls (97.5% within
60 s, 99% within 180 s; TSA / TEC Quality code of practice). Feedback is counted beside.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.service import SCHEMA
from alerts.store import AlertStore
from telecare.alert import SEVERITIES
from telecare.db import Conn

YARDSTICK = ((60.0, 0.975), (180.0, 0.99))


@dataclass
class Times:
    count: int = 0
    notified_s: list[float] = field(default_factory=list)
    acked_s: list[float] = field(default_factory=list)
    resolved_s: list[float] = field(default_factory=list)
    useful: int = 0
    false_alarm: int = 0

    def row(self) -> dict[str, Any]:
        def q(values: list[float], p: float) -> float | None:
            if not values:
                return None
            s = sorted(values)
            return round(s[min(len(s) - 1, int(p * len(s)))], 1)

        def within(limit: float) -> float | None:
            # Of all alerts, the share acknowledged within the limit (never acknowledged
            # counts as not within).
            return round(sum(v <= limit for v in self.acked_s) / self.count, 3) \
                if self.count else None

        return {
            "alerts": self.count,
            "first_notification_median_s": round(statistics.median(self.notified_s), 2)
            if self.notified_s else None,
            "first_notification_p90_s": q(self.notified_s, 0.9),
            "acknowledged": len(self.acked_s),
            "ack_median_s": round(statistics.median(self.acked_s), 1) if self.acked_s else None,
            "ack_p90_s": q(self.acked_s, 0.9),
            "ack_within_60s": within(60),
            "ack_within_180s": within(180),
            "resolved_median_min": round(statistics.median(self.resolved_s) / 60, 1)
            if self.resolved_s else None,
            "feedback_useful": self.useful,
            "feedback_false_alarm": self.false_alarm,
        }


def gather(conn: Conn) -> tuple[dict[str, Times], dict[str, Times]]:
    """Figures by severity and by home."""
    AlertStore(conn)  # their tables exist even where the alerts stage has not run yet
    conn.executescript(SCHEMA)
    fired = {a: (h, s, us / 1e6) for a, h, s, us in conn.execute(
        "SELECT e.alert_id, a.home, a.severity, e.logged_us FROM alert_events e JOIN alerts a"
        " ON a.id = e.alert_id WHERE e.status = 'firing'")}

    def first(query: str) -> dict[str, float]:
        return {a: t for a, t in conn.execute(query) if t is not None}

    notified = first("SELECT alert_id, MIN(sent_at) FROM notifications WHERE state='sent' AND"
                     " status='firing' GROUP BY alert_id")
    acked = first("SELECT alert_id, MIN(at) FROM acknowledgements GROUP BY alert_id")
    resolved = {a: us / 1e6 for a, us in conn.execute(
        "SELECT alert_id, logged_us FROM alert_events WHERE status='resolved'")}
    verdicts: dict[str, list[str]] = defaultdict(list)
    for a, v in conn.execute("SELECT alert_id, verdict FROM feedback"):
        verdicts[a].append(v)
    by_sev: dict[str, Times] = defaultdict(Times)
    by_home: dict[str, Times] = defaultdict(Times)
    for alert_id, (home, severity, start) in fired.items():
        for t in (by_sev[severity], by_home[home]):
            t.count += 1
            if alert_id in notified:
                t.notified_s.append(max(0.0, notified[alert_id] - start))
            if alert_id in acked:
                t.acked_s.append(max(0.0, acked[alert_id] - start))
            if alert_id in resolved:
                t.resolved_s.append(max(0.0, resolved[alert_id] - start))
            t.useful += verdicts[alert_id].count("useful")
            t.false_alarm += verdicts[alert_id].count("false_alarm")
    return dict(by_sev), dict(by_home)


def format_report(by_sev: dict[str, Times], by_home: dict[str, Times]) -> str:
    head = (f"{'':<12}{'alerts':>7}{'notify p50':>11}{'p90':>7}{'acked':>7}{'ack p50':>9}"
            f"{'<=60s':>7}{'<=180s':>8}{'closed p50':>12}{'useful':>8}{'false':>7}")
    lines = ["Response figures (seconds unless said; 'closed' in minutes)", head]

    def line(name: str, t: Times) -> str:
        r = t.row()

        def f(v: Any, pct: bool = False) -> str:
            return "-" if v is None else (f"{v:.1%}" if pct else f"{v:g}")
        return (f"{name:<12}{r['alerts']:>7}{f(r['first_notification_median_s']):>11}"
                f"{f(r['first_notification_p90_s']):>7}{r['acknowledged']:>7}"
                f"{f(r['ack_median_s']):>9}{f(r['ack_within_60s'], True):>7}"
                f"{f(r['ack_within_180s'], True):>8}{f(r['resolved_median_min']):>12}"
                f"{r['feedback_useful']:>8}{r['feedback_false_alarm']:>7}")

    for sev in reversed(SEVERITIES):
        if sev in by_sev:
            lines.append(line(sev, by_sev[sev]))
    lines.append("")
    for home in sorted(by_home):
        lines.append(line(home, by_home[home]))
    crit = by_sev.get("critical")
    if crit is not None and crit.count:
        lines.append("")
        for limit, goal in YARDSTICK:
            share = sum(v <= limit for v in crit.acked_s) / crit.count
            verdict = "meets" if share >= goal else "misses"
            lines.append(f"critical alerts acknowledged within {limit:.0f} s: {share:.1%} "
                         f"({verdict} the industry's {goal:.1%})")
    return "\n".join(lines)


def plot_report(by_sev: dict[str, Times], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for sev in reversed(SEVERITIES):
        t = by_sev.get(sev)
        if t is None:
            continue
        for ax, values in ((axes[0], t.notified_s), (axes[1], t.acked_s)):
            if values:
                xs = sorted(values)
                ax.step(xs, [(i + 1) / t.count for i in range(len(xs))], where="post",
                        label=f"{sev} ({t.count})")
    axes[0].set_title("time to first notification")
    axes[1].set_title("time to acknowledgement")
    for limit, goal in YARDSTICK:
        axes[1].plot([limit], [goal], "k+", markersize=12)
    for ax in axes:
        ax.set_xlabel("seconds")
        ax.set_ylabel("share of alerts")
        ax.set_xscale("symlog")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
