"""`telecare inject`: crises injected into copies of a recorded home, beside the reference."""

from __future__ import annotations

import json
from pathlib import Path

from detect.evaluate import evaluate
from simulators.inject import RESIDENT, inject, read_bundle
from tests.unit.test_backtest import simulate


def test_copies_carry_one_labelled_crisis_each_and_the_reference_is_the_recording(
        tmp_path: Path) -> None:
    bundle = simulate(tmp_path / "b", "--homes", "1", "--days", "12", "--seed", "41",
                      "--rate", "0", "--layout", "full")
    made = inject(bundle, tmp_path / "inj", seed=3, copies=1)
    assert made == {"long_lie": 3, "not_up": 3, "night_wandering": 2, "uti": 2,
                    "skipped_meals": 2}  # the PIR-only view has no door, flush or kitchen
    homes = {h.home: h for h in read_bundle(tmp_path / "inj")}
    original = read_bundle(bundle)[0]
    assert [r.ts for r in homes["h001"].readings] == sorted(r.ts for r in original.readings)
    labels = [json.loads(x) for x in (tmp_path / "inj" / "labels.jsonl").read_text()
              .splitlines()]
    lie = next(lab for lab in labels if lab["kind"] == "long_lie" and
               lab["detail"]["view"] == "full")
    copy = homes[lie["home"]]
    inside = [r for r in copy.readings if lie["start"] < r.ts.isoformat().replace(
        "+00:00", "Z") < lie["end"]]
    assert inside and not [r for r in inside if r.kind in RESIDENT]  # heartbeats go on
    pirs = homes["h001-pirs"]
    assert {d["kind"] for d in pirs.devices()} <= {"motion", "temperature", "heartbeat",
                                                  "humidity"}
    # Same bundle, same seed: same bytes.
    inject(bundle, tmp_path / "again", seed=3, copies=1)
    assert (tmp_path / "inj" / "readings.jsonl").read_bytes() == \
        (tmp_path / "again" / "readings.jsonl").read_bytes()
    ev = evaluate(tmp_path / "inj")
    assert ev.kinds["long_lie [full]"].caught == 1


def test_not_up_is_injected_at_the_annotated_waking_time_where_the_recording_has_one(
        tmp_path: Path) -> None:
    from datetime import date, datetime, timedelta
    from zoneinfo import ZoneInfo

    bundle = simulate(tmp_path / "b", "--homes", "1", "--days", "12", "--seed", "41",
                      "--rate", "0", "--layout", "full")
    zone = ZoneInfo(read_bundle(bundle)[0].description["timezone"])
    # Annotated like Ordonez's and van Kasteren's recordings: a sleep ending 04:10 (home
    # from a night out), then another till 10:15 (the real getting up).
    rows = []
    for i in range(12):
        day = date(2026, 1, 5) + timedelta(days=i)
        for start, end in (("00:30", "04:10"), ("04:30", "10:15")):
            rows.append({"home": "h001", "activity": "Sleeping",
                         "start": datetime.combine(day, datetime.strptime(start, "%H:%M")
                                                   .time(), zone).isoformat(),
                         "end": datetime.combine(day, datetime.strptime(end, "%H:%M")
                                                 .time(), zone).isoformat()})
    (bundle / "activities.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    inject(bundle, tmp_path / "inj", seed=3, copies=1, kinds=("not_up",))
    labels = [json.loads(x) for x in (tmp_path / "inj" / "labels.jsonl").read_text()
              .splitlines()]
    assert labels and {lab["detail"]["usual_up"] for lab in labels} == {"10:15"}


def test_a_long_lie_is_never_injected_into_an_empty_house(tmp_path: Path) -> None:
    """A sensor stuck on while the resident is at work is not someone at home to fall
    (van Kasteren's house C: a bathtub sensor reporting all day after he left)."""
    import random
    from datetime import UTC, datetime, timedelta

    from simulators.inject import Home, long_lie
    from telecare.reading import Reading

    description = {"home": "h1", "timezone": "UTC", "devices": [
        {"id": "bath-pir", "kind": "motion", "room": "bathroom"},
        {"id": "kitchen-pir", "kind": "motion", "room": "kitchen"},
        {"id": "fridge", "kind": "contact", "room": "kitchen", "role": "fridge"}]}
    start = datetime(2026, 1, 5, tzinfo=UTC)
    stuck = [Reading("h1", "bath-pir", "motion", 1.0, start + timedelta(minutes=m))
             for m in range(0, 20 * 24 * 60)]
    assert long_lie(Home("h1", description, stuck), random.Random(1)) is None
    # One device besides it is not enough: a motion sensor on without a break for hours is
    # the sensor, not a second sign of the resident (detection judges it so too).
    kitchen = [Reading("h1", "kitchen-pir", "motion", 1.0,
                       start + timedelta(days=d, hours=10, minutes=m))
               for d in range(20) for m in range(0, 60, 10)]
    home = Home("h1", description, sorted(stuck + kitchen, key=lambda r: r.ts))
    assert long_lie(home, random.Random(1)) is None
    # Two devices about the house in the mornings make it someone at home...
    fridge = [Reading("h1", "fridge", "contact", float(m % 20 == 0),
                      start + timedelta(days=d, hours=10, minutes=m + 5))
              for d in range(20) for m in range(0, 60, 10)]
    home = Home("h1", description, sorted(stuck + kitchen + fridge, key=lambda r: r.ts))
    assert long_lie(home, random.Random(1)) is not None
    # ... unless the recording's annotations say they were out then.
    out = [(start + timedelta(days=d, hours=9), start + timedelta(days=d, hours=19))
           for d in range(20)]
    home = Home("h1", description, home.readings, outings=out)
    assert long_lie(home, random.Random(1)) is None


def test_night_wandering_and_not_up_are_only_injected_where_someone_is_home_at_night(
        tmp_path: Path) -> None:
    """Van Kasteren's house B: out on most nights, so an injected 'wandering' was read,
    rightly, as him coming home, and a 'not up' fell on a morning he was away."""
    import random
    from datetime import UTC, datetime, timedelta

    from simulators.inject import Home, night_wandering, not_up
    from telecare.reading import Reading

    description = {"home": "h1", "timezone": "UTC", "devices": [
        {"id": "door", "kind": "contact", "room": "hall", "role": "front_door"},
        {"id": "bath-pir", "kind": "motion", "room": "bathroom"},
        {"id": "kitchen-pir", "kind": "motion", "room": "kitchen"}]}
    start = datetime(2026, 1, 5, tzinfo=UTC)

    def day(d: int, out_at_night: bool) -> list[Reading]:
        base = start + timedelta(days=d)
        rows = [Reading("h1", dev, "motion", 1.0, base + timedelta(hours=h))
                for h in range(9, 20) for dev in ("bath-pir", "kitchen-pir")]
        if out_at_night:  # out of the door at 20:00, back at 08:00 the next day
            rows += [Reading("h1", "door", "contact", v, base + timedelta(hours=20, seconds=s))
                     for v, s in ((1.0, 0), (0.0, 10))]
            rows += [Reading("h1", "door", "contact", v, base + timedelta(hours=32, seconds=s))
                     for v, s in ((1.0, 0), (0.0, 10))]
        return rows

    away = Home("h1", description, [r for d in range(20) for r in day(d, True)])
    assert night_wandering(away, random.Random(1)) is None
    assert not_up(away, random.Random(1)) is None
    home = Home("h1", description, [r for d in range(20) for r in day(d, False)])
    assert night_wandering(home, random.Random(1)) is not None
    assert not_up(home, random.Random(1)) is not None
