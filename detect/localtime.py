"""The resident's own clock: daily windows in their time zone, across DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def window_on(day: datetime, start: time, end: time, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The window that opens on local date `day` (a window may run past midnight), in UTC.
    Local times are turned into instants by the zone's rules for that date, so a window that
    opens at 07:00 opens at 07:00 local time on both sides of a clock change."""
    d = day.date()
    opens = datetime.combine(d, start, tzinfo=tz)
    closes = datetime.combine(d if end > start else d + timedelta(days=1), end, tzinfo=tz)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def add_window_time(start: datetime, amount: timedelta, window_start: time, window_end: time,
                    tz: ZoneInfo) -> datetime:
    """The instant at which `amount` of in-window time has passed since `start`."""
    if window_start == window_end:  # a window of the whole day
        return start + amount
    remaining = amount
    day = start.astimezone(tz) - timedelta(days=1)
    for _ in range(800):  # bounded: enough for any threshold of up to a year
        opens, closes = window_on(day, window_start, window_end, tz)
        lo = max(opens, start)
        if closes > lo:
            if lo + remaining <= closes:
                return lo + remaining
            remaining -= closes - lo
        day = day + timedelta(days=1)
    raise ValueError("threshold too long for the waking window")


def window_time_between(start: datetime, end: datetime, window_start: time,
                        window_end: time, tz: ZoneInfo) -> timedelta:
    """How much in-window time lies between two instants."""
    if end <= start:
        return timedelta(0)
    if window_start == window_end:
        return end - start
    total = timedelta(0)
    day = start.astimezone(tz) - timedelta(days=1)
    for _ in range(800):
        opens, closes = window_on(day, window_start, window_end, tz)
        if opens >= end:
            break
        lo, hi = max(opens, start), min(closes, end)
        if hi > lo:
            total += hi - lo
        day = day + timedelta(days=1)
    return total


def in_window(ts: datetime, window_start: time, window_end: time, tz: ZoneInfo) -> bool:
    local = ts.astimezone(tz).time()
    if window_start == window_end:
        return True
    if window_start < window_end:
        return window_start <= local < window_end
    return local >= window_start or local < window_end


def when(ts: datetime, tz: ZoneInfo, now: datetime | None = None) -> str:
    """Plain words for an instant in the resident's time: '07:42' today, else 'Tue 3 Mar 07:42'."""
    local = ts.astimezone(tz)
    hm = local.strftime("%H:%M")
    if now is not None and now.astimezone(tz).date() == local.date():
        return hm
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b')} {hm}"


def hours_minutes(delta: timedelta) -> str:
    minutes = int(round(delta.total_seconds() / 60))
    h, m = divmod(minutes, 60)
    if h and m:
        return f"{h} h {m} min"
    return f"{h} h" if h else f"{m} min"
