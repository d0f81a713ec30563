"""The rules, and `build_rules`, which makes a home's enabled rules from its settings."""

from __future__ import annotations

from collections.abc import Callable

from detect.rules.base import Rule
from detect.rules.call_for_help import CallForHelp
from detect.rules.device_health import DeviceHealth
from detect.rules.inactivity import Inactivity
from detect.rules.news2_rule import News2
from detect.rules.night_door import NightDoor
from detect.rules.not_up import NotUp
from detect.rules.room_temperature import RoomTemperature
from detect.rules.routine import Decline, Meals, NightToilet, UnusualDay
from telecare.config import HomeConfig


def build_rules(home: HomeConfig) -> list[Rule]:
    s = home.rules
    makers: list[tuple[bool, Callable[[], Rule]]] = [
        (s.pendant.enabled, lambda: CallForHelp(home, s.pendant, "pendant", "button")),
        (s.fall.enabled, lambda: CallForHelp(home, s.fall, "fall", "fall")),
        (s.cold_home.enabled, lambda: RoomTemperature(home, s.cold_home)),
        (s.hot_home.enabled, lambda: RoomTemperature(home, s.hot_home)),
        (s.inactivity.enabled, lambda: Inactivity(home, s.inactivity)),
        (s.night_door.enabled, lambda: NightDoor(home, s.night_door)),
        (s.news2.enabled, lambda: News2(home, s.news2)),
        (s.device_health.enabled, lambda: DeviceHealth(home, s.device_health)),
        (s.not_up.enabled, lambda: NotUp(home, s.not_up)),
        (s.night_toilet.enabled, lambda: NightToilet(home, s.night_toilet)),
        (s.meals.enabled, lambda: Meals(home, s.meals)),
        (s.decline.enabled, lambda: Decline(home, s.decline)),
        (s.unusual_day.enabled, lambda: UnusualDay(home, s.unusual_day)),
    ]
    return [make() for enabled, make in makers if enabled]


__all__ = ["Rule", "build_rules"]
