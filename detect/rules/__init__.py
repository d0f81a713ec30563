"""The rules, and `build_rules`, which makes a home's enabled rules from its settings."""

from __future__ import annotations

from detect.rules.base import Rule
from detect.rules.call_for_help import CallForHelp
from detect.rules.cold_home import ColdHome
from detect.rules.inactivity import Inactivity
from telecare.config import HomeConfig


def build_rules(home: HomeConfig) -> list[Rule]:
    s = home.rules
    rules: list[Rule] = []
    if s.pendant.enabled:
        rules.append(CallForHelp(home, s.pendant, "pendant", "button"))
    if s.fall.enabled:
        rules.append(CallForHelp(home, s.fall, "fall", "fall"))
    if s.cold_home.enabled:
        rules.append(ColdHome(home, s.cold_home))
    if s.inactivity.enabled:
        rules.append(Inactivity(home, s.inactivity))
    return rules


__all__ = ["Rule", "build_rules"]
