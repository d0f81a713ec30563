"""`telecare backtest`: the live detection over recorded readings, in event time.

Readings are judged exactly as ingest judges them (bad lines are counted and skipped, never
fatal), de-duplicated by the same key, put in event-time order (ties keep file order), and fed
to the same `Detector`. The output is one line per alert occurrence, in its final state,
ordered by `raised_at` then `id`: same input, same bytes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from detect.engine import Detector
from telecare.alert import Alert
from telecare.config import Config
from telecare.reading import BadReading, Reading, parse_jsonl_line


@dataclass
class BacktestResult:
    alerts: list[Alert]
    readings: int = 0
    duplicates: int = 0
    bad_lines: Counter[str] = field(default_factory=Counter)


def read_readings(lines: Iterable[str], bad: Counter[str]) -> list[Reading]:
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(parse_jsonl_line(line))
        except BadReading as exc:
            bad[exc.code] += 1
    return out


def run_backtest(lines: Iterable[str], config: Config) -> BacktestResult:
    bad: Counter[str] = Counter()
    return backtest_readings(read_readings(lines, bad), config, bad)


def backtest_readings(readings: list[Reading], config: Config,
                      bad: Counter[str] | None = None) -> BacktestResult:
    """Backtest readings already parsed; sorts the list in place, by event time."""
    bad = bad if bad is not None else Counter()
    readings.sort(key=lambda r: r.ts)  # stable: equal times keep file order
    seen: set[str] = set()
    detector = Detector(config)
    final: dict[str, Alert] = {}
    duplicates = 0
    for reading in readings:
        key = reading.dedupe_key()
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        for alert in detector.process(reading):
            final[alert.id] = alert
    alerts = sorted(final.values(), key=lambda a: (a.raised_at, a.id))
    return BacktestResult(alerts, len(readings) - duplicates, duplicates, bad)
