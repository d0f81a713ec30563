"""The rules, and `build_rules`, which makes a home's enabled rules from its settings."""

from __future__ import annotations

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
    rules: list[Rule] = []
    if s.pendant.enabled:
        rules.append(CallForHelp(home, s.pendant, "pendant", "button"))
    if s.fall.enabled:
        rules.append(CallForHelp(home, s.fall, "fall", "fall"))
    if s.cold_home.enabled:
        rules.append(RoomTemperature(home, s.cold_home))
    if s.hot_home.enabled:
        rules.append(RoomTemperature(home, s.hot_home))
    if s.inactivity.enabled:
        rules.append(Inactivity(home, s.inactivity))
    if s.night_door.enabled:
        rules.append(NightDoor(home, s.night_door))
    if s.news2.enabled:
        rules.append(News2(home, s.news2))
    if s.device_health.enabled:
        rules.append(DeviceHealth(home, s.device_health))
    for settings, rule in ((s.not_up, NotUp), (s.night_toilet, NightToilet),
                           (s.meals, Meals), (s.decline, Decline),
                           (s.unusual_day, UnusualDay)):
        if settings.enabled:
            rules.append(rule(home, settings))
    return rules


__all__ = ["Rule", "build_rules"]
