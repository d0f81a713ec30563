"""Waking-hours arithmetic is in the resident's zone, right across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from detect.localtime import add_window_time, in_window

LONDON = ZoneInfo("Europe/London")
WAKE, SLEEP = time(7), time(22)


def test_time_inside_the_window_counts_straight_through() -> None:
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 09:00 GMT
    assert add_window_time(start, timedelta(hours=3), WAKE, SLEEP, LONDON) == \
        datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_the_night_does_not_count() -> None:
    start = datetime(2026, 1, 5, 21, 0, tzinfo=UTC)  # one waking hour left today
    assert add_window_time(start, timedelta(hours=3), WAKE, SLEEP, LONDON) == \
        datetime(2026, 1, 6, 9, 0, tzinfo=UTC)


def test_spring_forward_the_window_opens_at_seven_local_which_is_six_utc() -> None:
    # Clocks go forward on Sunday 29 March 2026 at 01:00 UTC.
    start = datetime(2026, 3, 28, 21, 30, tzinfo=UTC)  # 21:30 GMT, 30 min left
    assert add_window_time(start, timedelta(hours=1), WAKE, SLEEP, LONDON) == \
        datetime(2026, 3, 29, 6, 30, tzinfo=UTC)  # 07:30 BST


def test_fall_back_the_window_opens_at_seven_local_which_is_seven_utc() -> None:
    # Clocks go back on Sunday 25 October 2026 at 01:00 UTC.
    start = datetime(2026, 10, 24, 20, 30, tzinfo=UTC)  # 21:30 BST, 30 min left
    assert add_window_time(start, timedelta(hours=1), WAKE, SLEEP, LONDON) == \
        datetime(2026, 10, 25, 7, 30, tzinfo=UTC)  # 07:30 GMT


def test_a_window_past_midnight_and_membership() -> None:
    assert in_window(datetime(2026, 1, 5, 23, 30, tzinfo=UTC), time(22), time(6), LONDON)
    assert not in_window(datetime(2026, 1, 5, 12, 0, tzinfo=UTC), time(22), time(6), LONDON)
    start = datetime(2026, 1, 5, 23, 0, tzinfo=UTC)
    assert add_window_time(start, timedelta(hours=8), time(22), time(6), LONDON) == \
        datetime(2026, 1, 6, 22, 0, tzinfo=UTC) + timedelta(hours=1)
