"""What a home's sensors can and cannot see: one line per crisis, at enrolment and start-up.

A rule with nothing to judge must not guess: a home without a front-door contact cannot
show night wandering, one without a flush sensor, bed mat or bathroom motion sensor cannot
show night-time toileting rising. `coverage` says so from the home's description alone
(contract section 3), so the care team knows what the service can promise for this home,
and `telecare evaluate` counts a crisis injected where the sensors cannot see it apart from
recall.
"""

from __future__ import annotations

from dataclasses import dataclass

from detect.activity import kitchen_use, sees_going_out
from telecare.config import HomeConfig

VITALS = frozenset({"heart_rate", "spo2", "resp_rate", "systolic_bp", "body_temperature"})
ACTIVITY = frozenset({"motion", "contact", "bed", "chair", "power", "flush"})


@dataclass(frozen=True)
class Sight:
    crisis: str  # plain words: "night wandering"
    seen: str  # "yes", "partly" or "no"
    how: str  # with what, or what is missing


def coverage(home: HomeConfig) -> list[Sight]:
    """Each crisis the service watches for, and whether this home's sensors can see it."""
    kinds = {d.kind for d in home.devices}
    in_room = {(d.kind, d.room) for d in home.devices}
    out: list[Sight] = []

    def sight(crisis: str, seen: str, how: str) -> None:
        out.append(Sight(crisis, seen, how))

    calls = [d for d in home.devices if d.kind == "button" and d.role != "ok_button"]
    sight("call for help", "yes" if calls else "no",
          "pendant or pull cord" if calls else "no pendant or pull cord")
    sight("fall (worn detector)", "yes" if "fall" in kinds else "no",
          "fall detector" if "fall" in kinds else "no fall detector: a fall shows only as "
          "a long lie")
    exits = sees_going_out(home)
    if "motion" in kinds and not exits:
        # Seen in the PIR-only views of real homes: every outing longer than their
        # quietest spell at home looked like a lie.
        sight("long lie", "partly", "motion sensors but no front or back door contact: "
              "time out cannot be told from a lie, so a long outing may raise it")
    elif "motion" in kinds:
        sight("long lie", "yes", "motion sensors")
    elif kinds & ACTIVITY:
        sight("long lie", "partly", "doors, mats and appliances only: a lie shows later, "
              "between their uses")
    else:
        sight("long lie", "no", "no sensor of the resident's doings")
    if kinds & {"motion", "bed"}:
        sight("not up", "yes", "bed mat" if "bed" in kinds else "motion sensors")
    elif kinds & ACTIVITY:
        sight("not up", "partly", "the first door or appliance use of the morning")
    else:
        sight("not up", "no", "no sensor of the resident's doings")
    sight("night wandering", "yes" if exits else "no",
          "front or back door contact" if exits else
          "no contact with role front_door or back_door")
    temps = "temperature" in kinds
    sight("cold or hot home", "yes" if temps else "no",
          "room thermometers" if temps else "no room thermometer")
    if "flush" in kinds:
        sight("night toileting", "yes", "toilet flush sensor")
    elif "bed" in kinds or ("motion", "bathroom") in in_room:
        sight("night toileting", "partly",
              "trips out of bed" if "bed" in kinds else "bathroom motion sensor")
    else:
        sight("night toileting", "no", "no flush sensor, bed mat or bathroom motion sensor")
    if any(kitchen_use(d.kind, d.room, d.role) for d in home.devices):
        sight("skipped meals", "yes", "kitchen cupboards, fridge or appliances")
    elif ("motion", "kitchen") in in_room:
        sight("skipped meals", "partly", "kitchen motion sensor only")
    else:
        sight("skipped meals", "no", "no sensor in the kitchen")
    sight("decline", "yes" if kinds & ACTIVITY else "no",
          "the day's activity" if kinds & ACTIVITY else "no sensor of the resident's doings")
    vitals = sorted(kinds & VITALS)
    sight("vital signs (NEWS2)",
          "yes" if len(vitals) >= 3 else "partly" if vitals else "no",
          ", ".join(v.replace("_", " ") for v in vitals) if vitals else "no vital-sign "
          "monitor")
    return out


def can_see(home: HomeConfig, crisis: str) -> bool:
    """Whether this home's sensors see `crisis` at all (yes or partly)."""
    return any(s.crisis == crisis and s.seen != "no" for s in coverage(home))


def coverage_line(home: HomeConfig) -> str:
    """One line: what the home can see, and what it cannot."""
    sights = coverage(home)
    seen = [s.crisis + ("" if s.seen == "yes" else " (partly)") for s in sights
            if s.seen != "no"]
    unseen = [f"{s.crisis} ({s.how})" for s in sights if s.seen == "no"]
    return (f"{home.home}: sees {', '.join(seen) or 'nothing'}; "
            f"cannot see {', '.join(unseen) or 'nothing it watches for'}")
