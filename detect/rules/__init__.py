"""The rule table: every rule, one line each, and what is made from it.

A rule lives in one module with its settings (a `RuleSettings` subclass, defaults in the
fields) and a `RuleSpec`; listing the spec here is all that enabling it takes: a home's plan
can then name it under `rules:`, `telecare check` checks its settings, and every home gets
it. Order is the order rules see each reading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from detect.rules import (
    call_for_help,
    device_health,
    inactivity,
    news2_rule,
    night_door,
    not_up,
    room_temperature,
    routine,
)
from detect.rules.base import Rule, RuleSpec
from telecare import config

RULES: tuple[RuleSpec[Any], ...] = (
    call_for_help.PENDANT,
    call_for_help.FALL,
    room_temperature.COLD_HOME,
    room_temperature.HOT_HOME,
    inactivity.SPEC,
    night_door.SPEC,
    news2_rule.SPEC,
    device_health.SPEC,
    not_up.SPEC,
    routine.NIGHT_TOILET,
    routine.MEALS,
    routine.DECLINE,
    routine.UNUSUAL_DAY,
)
TABLE: config.RuleTable = {spec.name: spec.settings for spec in RULES}


def build_rules(home: config.HomeConfig) -> list[Rule]:
    """The home's enabled rules, each made with the home's settings for it."""
    return [spec.make(home, home.rules[spec.name]) for spec in RULES
            if home.rules[spec.name].enabled]


def load_config(root: str | Path) -> config.Config:
    """A configuration directory checked against this rule table."""
    return config.load_config(root, TABLE)


def default_rules() -> config.Rules:
    """Every rule's own defaults (a home with no plan and no rules.yaml)."""
    found = config.check_rules(TABLE, {}, "defaults", "", [])
    assert found is not None, "a rule's defaults do not pass its own checks"
    return found


__all__ = ["RULES", "TABLE", "Rule", "RuleSpec", "build_rules", "default_rules",
           "load_config"]
