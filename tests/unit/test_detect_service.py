"""The detection stage over the store: with several ingest workers it holds readings back
for a settle, but a call for help on the priority lane is raised at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alerts.store import AlertStore
from detect.service import DetectService
from detect.urgent import UrgentJudge
from ingest.store import ReadingStore
from telecare.db import connect
from tests.builders import config_for, only, reading


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
