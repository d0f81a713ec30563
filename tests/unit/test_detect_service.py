"""The detection stage over the store: with several ingest workers it holds readings back
for a settle, but a call for help on the priority lane is raised at once."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.store import AlertStore
from detect.rules import load_config
from detect.service import DetectService
from detect.urgent import UrgentJudge
from ingest.store import ReadingStore
from telecare.db import connect
from telecare.reading import parse_jsonl_line
from tests.builders import config_for, only, reading, write_home


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def events(conn: object) -> list[tuple[str, str]]:
    return list(conn.execute(  # type: ignore[attr-defined]
        "SELECT alert_id, status FROM alert_events ORDER BY seq"))


def test_a_press_on_the_priority_lane_is_raised_at_once_and_the_routine_lane_adds_nothing(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("pendant", "inactivity"))
    conn = connect(tmp_path / "data")
    store = ReadingStore(conn)
    clock = Clock()
    service = DetectService(conn, config, hold_s=1.0, clock=clock)
    judge = UrgentJudge(connect(tmp_path / "data"), config, clock=clock)
    t = clock.now - timedelta(milliseconds=50)
    presses = [reading("pendant", "button", 1, t),
               reading("pendant", "button", 1, t + timedelta(minutes=2))]  # the same call
    store.add_urgent(presses, [clock.now] * 2)
    assert judge.step() == 2
    first = (f"h001:pendant:{t:%Y%m%dT%H%M%S}.950Z", "firing")
    assert events(conn) == [first]
    # The routine lane, behind: the same readings in their place among the home's.
    store.add([reading("kitchen-pir", "motion", 1, t - timedelta(seconds=1)), *presses],
              clock.now, arrived=[clock.now] * 3)
    service.step()
    assert service.detector.watermark is None  # not settled yet
    clock.now += timedelta(seconds=5)
    while service.step():
        pass
    assert service.detector.watermark is not None
    assert events(conn) == [first]

    # A restart of the judge: nothing judged twice, and the repeat window remembered.
    again = UrgentJudge(connect(tmp_path / "data"), config, clock=clock)
    assert again.step() == 0
    store.add_urgent([reading("pendant", "button", 1, t + timedelta(minutes=5))], [clock.now])
    assert again.step() == 1
    assert events(conn) == [first]
    later = t + timedelta(minutes=30)
    store.add_urgent([reading("pendant", "button", 1, later)], [clock.now])
    again.step()
    assert events(conn)[-1] == (f"h001:pendant:{later:%Y%m%dT%H%M%S}.950Z", "firing")


def test_without_a_settle_there_is_no_separate_path(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("pendant"))
    conn = connect(tmp_path / "data")
    store = ReadingStore(conn)
    service = DetectService(conn, config)
    AlertStore(conn)
    t = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    store.add([reading("pendant", "button", 1, t)], t)
    service.step()
    assert events(conn) == [("h001:pendant:20260105T140000Z", "firing")]


def test_a_restart_between_checkpoints_reads_again_and_tells_nobody_twice(
        tmp_path: Path) -> None:
    """Alerts are committed every batch, the checkpoint only now and then: a crash between
    two checkpoints replays the readings after the last one. The same alerts come again with
    the same ids, the log holds each change once, and the end state is the uncrashed one's."""
    bundle = tmp_path / "bundle"
    subprocess.run([sys.executable, "-m", "telecare.app.cli", "simulate", "--out", str(bundle),
                    "--homes", "3", "--days", "3", "--seed", "21", "--layout", "full",
                    "--scenario", "long_lie@1", "--scenario", "cold_home@2",
                    "--scenario", "pendant@0"], check=True, capture_output=True)
    config = load_config(bundle)
    readings = sorted((parse_jsonl_line(x) for x in (bundle / "readings.jsonl").open()),
                      key=lambda r: r.ts)

    def run(data: Path, crash_after: int | None) -> list[tuple[str, str]]:
        conn = connect(data)
        store = ReadingStore(conn)
        AlertStore(conn)
        now = datetime(2027, 1, 1, tzinfo=UTC)
        store.add(readings, now)
        service = DetectService(conn, config, batch=200, checkpoint_s=1e9)
        steps = 0
        while service.step():
            steps += 1
            if steps == crash_after:
                # Killed: whatever was not checkpointed is gone with the process.
                saved = conn.execute("SELECT value FROM detect_meta WHERE key = 'cursor'"
                                     ).fetchone()
                assert service.cursor > (int(saved[0]) if saved else 0)
                service = DetectService(connect(data), config, batch=200, checkpoint_s=1e9)
        return events(conn)

    clean = run(tmp_path / "clean", None)
    assert len(clean) >= 3
    for crash in (5, len(readings) // 200 - 2):
        crashed = run(tmp_path / f"crash{crash}", crash)
        assert crashed == clean


def test_a_rule_failing_on_the_priority_lane_for_one_home_does_not_stop_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_for(tmp_path, rules=only("pendant"))
    write_home(tmp_path, "h002")
    config = load_config(tmp_path)
    conn = connect(tmp_path / "data")
    store = ReadingStore(conn)
    AlertStore(conn)
    judge = UrgentJudge(connect(tmp_path / "data"), config)
    broken = judge.rules("h001")[0]
    monkeypatch.setattr(broken, "observe", lambda *a: 1 / 0)
    t = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    store.add_urgent([reading("pendant", "button", 1, t),
                      reading("pendant", "button", 1, t, home="h002")], [t, t])
    assert judge.step() == 2
    assert events(conn) == [("h002:pendant:20260105T140000Z", "firing")]
    assert judge.failures == 1
