"""What real recordings taught the rules: each resident's own limits, and sensors as they
really behave (mats left pressed, reed switches that report only changes, a motion sensor
misfiring in an empty home, a resident who goes out at night)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from detect.engine import Detector
from telecare.reading import Reading
from tests.builders import DEVICES, config_for, every, only, reading
from tests.unit.test_routine_rules import START, at, day_of_life, run

H = timedelta(hours=1)
M = timedelta(minutes=1)
# The standard home without its front-door contact: going out is not seen.
NO_DOOR = [d for d in DEVICES if d.get("role") != "front_door"]


def quiet_afternoons(n: int, quiet_h: float) -> list:
    """Ordinary days, each with an afternoon in which nothing stirs for `quiet_h` hours."""
    out = []
    for i in range(n):
        day = START + timedelta(days=i)
        out += [r for r in day_of_life(day)
                if not (at(day, "13:00") < r.ts < at(day, "13:00") + quiet_h * H)
                or r.kind == "heartbeat"]
    return out


def test_the_inactivity_limit_is_learned_from_the_residents_own_quiet_spells(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("inactivity"))
    # Two weeks of afternoons with 4 h of quiet: the plan's 3 h would call each a long lie.
    readings = quiet_afternoons(14, 4.0)
    alerts = run(Detector(config), readings)
    learning = [a for a in alerts if a.evidence.get("longest_ordinary_minutes") is None]
    learned = [a for a in alerts if a.evidence.get("longest_ordinary_minutes") is not None]
    assert len(learning) >= 1  # the first week: the plan's limit, and it says so
    assert "while their own routine is being learned" in learning[0].message
    assert learned == []  # from the second week their own afternoons are ordinary
    # A fall at 13:00 on day 15: caught just past their longest ordinary spell.
    fall_day = START + timedelta(days=14)
    lie = [r for r in day_of_life(fall_day) if r.ts <= at(fall_day, "13:00")
           or r.kind == "heartbeat"]
    detector = Detector(config)
    out = run(detector, readings + lie)
    caught = [a for a in out if a.raised_at.date() == fall_day]
    assert len(caught) == 1
    longest = caught[0].evidence["longest_ordinary_minutes"]
    assert longest >= 240  # their afternoons (the gap between events is a little longer)
    assert caught[0].evidence["threshold_minutes"] == min(longest + 30, 360)
    assert "longer than any ordinary quiet spell of theirs" in caught[0].message


def test_a_lone_motion_sensor_after_the_door_does_not_bring_the_resident_home(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("inactivity"))
    day = START
    out = [reading("kitchen-pir", "motion", 1, at(day, "09:00")),
           reading("front-door", "contact", 1, at(day, "09:30")),
           reading("front-door", "contact", 0, at(day, "09:30") + M)]
    # The kitchen sensor misfires every minute for an hour in the empty home.
    out += [reading("kitchen-pir", "motion", 1, t)
            for t in every(at(day, "11:00"), at(day, "12:00"), M)]
    out += [reading("hub", "heartbeat", 1, t) for t in every(at(day, "09:00"),
                                                              at(day, "20:00"), 5 * M)]
    assert run(Detector(config), out) == []
    # A second device stirring is someone home: then the clock runs.
    out.append(reading("bedroom-pir", "motion", 1, at(day, "12:01")))
    alerts = run(Detector(config), out)
    assert [a.rule for a in alerts] == ["inactivity"]


def test_a_mat_left_pressed_does_not_keep_the_resident_in_bed(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("inactivity"))
    day = START
    out = [reading("bed-mat", "bed", 1, at(day, "08:00")),  # a bag on the bed, say
           reading("kitchen-pir", "motion", 1, at(day, "09:00"))]
    out += [reading("hub", "heartbeat", 1, t) for t in every(at(day, "09:00"),
                                                              at(day, "14:00"), 5 * M)]
    alerts = run(Detector(config), out)
    assert [(a.rule, a.raised_at) for a in alerts] == [("inactivity", at(day, "12:00"))]


def test_a_trip_in_the_night_and_back_to_bed_is_not_getting_up_but_a_nap_later_is(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("not_up"))
    base = []
    for i in range(10):
        base += day_of_life(START + timedelta(days=i))
    late = START + timedelta(days=10)
    # 05:00 up for 25 min (a trip, pottering), back to bed, then stays there.
    trip = [reading("bed-mat", "bed", 0, at(late, "05:00"))]
    trip += [reading("kitchen-pir", "motion", 1, t)
             for t in every(at(late, "05:01"), at(late, "05:26"), 2 * M)]
    trip.append(reading("bed-mat", "bed", 1, at(late, "05:27")))
    lie_in = [r for r in day_of_life(late, up=None)]
    alerts = run(Detector(config), base + lie_in + trip)
    assert [a.raised_at for a in alerts] == [at(late, "09:30")]
    # Up at 07:30 and active an hour, then a nap: that morning was a getting up.
    nap = [r for r in day_of_life(late) if r.ts < at(late, "08:40")]
    nap.append(reading("bed-mat", "bed", 1, at(late, "08:45")))
    nap += [reading("hub", "heartbeat", 1, t) for t in every(at(late, "08:45"),
                                                              at(late, "12:00"), 5 * M)]
    assert run(Detector(config), base + nap) == []


def test_going_out_at_night_is_learned_from_night_time_homecomings(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("night_door"))

    def outing(day: date, leave: str, back: str) -> list:
        return [reading("kitchen-pir", "motion", 1, at(day, leave) - 5 * M),
                reading("front-door", "contact", 1, at(day, leave)),
                reading("front-door", "contact", 0, at(day, leave) + M),
                reading("front-door", "contact", 1, at(day + timedelta(days=1), back)),
                reading("front-door", "contact", 0, at(day + timedelta(days=1), back) + M),
                reading("kitchen-pir", "motion", 1, at(day + timedelta(days=1), back) + 2 * M)]

    # Out from 23:30 to 02:30 on four nights (the first, before any was known, is told of
    # at 23:45 and not learned from).
    nights = [r for i in range(4) for r in outing(START + timedelta(days=i), "23:30", "02:30")]
    beats = [reading("hub", "heartbeat", 1, t) for t in
             every(at(START, "00:00"), at(START + timedelta(days=6), "00:00"), 5 * M)]
    # Then, seen at home in the evening, out at 23:40 on night 5 and back at 01:00, before
    # the night is over: one of their nights out.
    tonight = START + timedelta(days=5)
    evening = tonight - timedelta(days=1)
    walk = [reading("kitchen-pir", "motion", 1, at(evening, "22:50")),
            reading("bedroom-pir", "motion", 1, at(evening, "23:00")),
            reading("front-door", "contact", 1, at(evening, "23:40")),
            reading("front-door", "contact", 0, at(evening, "23:40") + M),
            reading("front-door", "contact", 1, at(tonight, "01:00")),
            reading("kitchen-pir", "motion", 1, at(tonight, "01:02"))]
    alerts = run(Detector(config), nights + beats + walk)
    assert [a.raised_at for a in alerts] == [at(START, "23:45")]  # the first night only
    # Without that history the same door is an alert at 23:55.
    alerts = run(Detector(config), beats + walk)
    assert [a.raised_at for a in alerts] == [at(evening, "23:55")]
    walk = [reading("front-door", "contact", 1, at(tonight, "03:00")),
            reading("front-door", "contact", 0, at(tonight, "03:00") + M),
            reading("front-door", "contact", 1, at(tonight, "04:00")),
            reading("kitchen-pir", "motion", 1, at(tonight, "04:02"))]
    # Nights out that end by 01:00 make no habit of a 03:00 door from a sleeping house
    # (van Kasteren's house C: home by 02:00 from evenings out, never out later).
    early = [r for i in range(3) for r in outing(START + timedelta(days=i), "21:00", "01:00")]
    asleep = [reading("kitchen-pir", "motion", 1, at(tonight, "00:30") - 2 * H),
              reading("bed-mat", "bed", 1, at(tonight, "00:30") - H)]  # home, in bed
    alerts = run(Detector(config), early + beats + asleep + walk)
    assert [a.raised_at for a in alerts] == [at(tonight, "03:15")]


def test_one_who_goes_out_at_night_leaving_at_another_hour_is_told_of_at_once(
        tmp_path: Path) -> None:
    # Ordonez B goes out late in the evening and comes home at about 02:00 on many nights.
    # A night she is home (seen indoors at 23:30) and the door opens at 01:45 with nothing
    # after it: she is not coming home, she is leaving, at an hour she never leaves. It
    # waited for the end of the night (06:00) because she is often out at 01:45.
    config = config_for(tmp_path, rules=only("night_door"))
    nights = []
    for i in range(4):
        day = START + timedelta(days=i)
        back = at(day + timedelta(days=1), "02:30")
        nights += [reading("kitchen-pir", "motion", 1, at(day, "23:10")),
                   reading("front-door", "contact", 1, at(day, "23:15")),
                   reading("front-door", "contact", 0, at(day, "23:15") + M),
                   reading("front-door", "contact", 1, back),
                   reading("front-door", "contact", 0, back + M),
                   reading("kitchen-pir", "motion", 1, back + 3 * M)]
    tonight = START + timedelta(days=5)
    evening = tonight - timedelta(days=1)
    beats = [reading("hub", "heartbeat", 1, t) for t in
             every(at(START, "00:00"), at(tonight, "08:00"), 5 * M)]
    home = [reading("kitchen-pir", "motion", 1, at(evening, "23:30")),
            reading("bedroom-pir", "motion", 1, at(evening, "23:40"))]
    leaves = [reading("front-door", "contact", 1, at(tonight, "01:45")),
              reading("front-door", "contact", 0, at(tonight, "01:45") + M)]
    # (The first night out, before any was known, was told of at 23:30: not learned from.)
    alerts = [a for a in run(Detector(config), nights + beats + home + leaves)
              if a.raised_at > at(evening, "12:00")]
    assert [a.raised_at for a in alerts] == [at(tonight, "02:00")]
    # Leaving at her usual hour waits for the end of the night, as before.
    usual = [reading("front-door", "contact", 1, at(evening, "23:45")),
             reading("front-door", "contact", 0, at(evening, "23:46"))]
    alerts = [a for a in run(Detector(config), nights + beats + home + usual)
              if a.raised_at > at(evening, "12:00")]
    assert [a.raised_at for a in alerts] == [at(tonight, "06:00")]
    assert "They often go out at this time of night" in alerts[0].message


def test_a_reed_switch_that_reports_only_changes_is_never_called_offline(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("device_health"))
    out = []
    for i in range(6):  # a busy door by day, silent by night, for six days
        day = START + timedelta(days=i)
        for j, t in enumerate(every(at(day, "08:00"), at(day, "20:00"), 20 * M)):
            out.append(reading("front-door", "contact", j % 2, t))
    out += [reading("hub", "heartbeat", 1, t) for t in
            every(at(START, "00:00"), at(START + timedelta(days=6), "00:00"), 5 * M)]
    alerts = run(Detector(config), out)
    assert [a for a in alerts if a.evidence.get("device") == "front-door"] == []


def test_a_kitchen_watched_only_by_a_motion_sensor_still_shows_skipped_meals(
        tmp_path: Path) -> None:
    devices = [{"id": "kitchen-pir", "kind": "motion", "room": "kitchen"},
               {"id": "hall-pir", "kind": "motion", "room": "hall"},
               {"id": "hub", "kind": "heartbeat", "room": "hall"}]
    config = config_for(tmp_path, rules=only("meals"), devices=devices)

    def day(d: date, visits: int) -> list:
        out = [reading("hub", "heartbeat", 1, t) for t in every(at(d, "00:00"),
                                                                 at(d, "23:59"), 30 * M)]
        for i in range(visits):  # each visit: a few minutes of movement
            t = at(d, "08:00") + i * (12 * H / max(visits, 1))
            out += [reading("kitchen-pir", "motion", 1, t + k * M) for k in range(4)]
        out += [reading("hall-pir", "motion", 1, at(d, "08:00") + k * H) for k in range(12)]
        return out

    readings = [r for i in range(10) for r in day(START + timedelta(days=i), 6)]
    readings += [r for i in range(10, 12) for r in day(START + timedelta(days=i), 1)]
    alerts = run(Detector(config), readings)
    assert [a.rule for a in alerts] == ["meals"]
    assert "uses of the kitchen (movement in the kitchen)" in alerts[0].message


def test_weekend_mornings_are_learned_apart_from_weekdays(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("not_up"))
    history = [r for i in range(20) for r in day_of_life(
        START + timedelta(days=i),
        up="09:30" if (START + timedelta(days=i)).weekday() >= 5 else "07:00")]
    sunday, monday = START + timedelta(days=20), START + timedelta(days=21)
    assert (sunday.weekday(), monday.weekday()) == (6, 0)
    # A Sunday lie-in till 10:30 is ordinary for them (weekdays' 07:00 + 2 h would not be);
    # a Monday with nobody up is caught at the weekday time.
    readings = history + day_of_life(sunday, up="10:30") + day_of_life(monday, up=None)
    alerts = run(Detector(config), readings)
    assert [a.raised_at for a in alerts] == [at(monday, "09:00")]
    assert "07:00 on weekdays" in alerts[0].message


def night_owl_day(day: date, up: bool = True) -> list:
    """Home from a night out at 04:00, asleep till 11:00 on a mat that pulses under a
    restless sleeper (pressed, released), up at 11:00; out again at 20:00."""
    out = [reading("hub", "heartbeat", 1, t) for t in
           every(at(day, "00:00"), at(day, "00:00") + 24 * H, 30 * M)]
    out += [reading("front-door", "contact", 1, at(day, "04:00")),
            reading("front-door", "contact", 0, at(day, "04:00") + M)]
    out += [reading("kitchen-pir", "motion", 1, at(day, "04:02") + i * 4 * M) for i in range(3)]
    rise = at(day, "11:00") if up else at(day, "15:00")
    for t in every(at(day, "04:20"), rise, 20 * M):
        out += [reading("bed-mat", "bed", 1, t), reading("bed-mat", "bed", 0, t + M / 6)]
    out += [reading("kitchen-pir", "motion", 1, t) for t in
            every(rise + 5 * M, at(day, "19:55"), 10 * M)]
    out += [reading("kettle-plug", "power", 2000, rise + 10 * M),
            reading("kettle-plug", "power", 0, rise + 13 * M)]
    out += [reading("front-door", "contact", 1, at(day, "20:00")),
            reading("front-door", "contact", 0, at(day, "20:00") + M)]
    return out


def test_a_night_homecoming_and_a_restless_mat_are_not_getting_up(tmp_path: Path) -> None:
    # His plan says he rises late, so the first mornings (still learning) are quiet too.
    config = config_for(tmp_path, rules=only("not_up", not_up={"default_up_by": "12:00"}))
    days = [r for i in range(10) for r in night_owl_day(START + timedelta(days=i))]
    late = START + timedelta(days=10)
    alerts = run(Detector(config), days + night_owl_day(late, up=False))
    # Learned with hindsight: the night's rest ended at 11:00, not at 04:00 when he came
    # home, nor at a pulse of the mat. So the morning he stays in bed is caught at 13:00.
    assert [a.rule for a in alerts] == ["not_up"]
    assert at(late, "13:00") <= alerts[0].raised_at <= at(late, "13:10")  # 11:00-11:05 + 2 h
    assert "around 11:0" in alerts[0].message


SPARSE = [{"id": "front-door", "kind": "contact", "room": "hall", "role": "front_door"},
          {"id": "fridge", "kind": "contact", "room": "kitchen", "role": "fridge"},
          {"id": "kettle-plug", "kind": "power", "room": "kitchen", "role": "kettle"},
          {"id": "toilet", "kind": "flush", "room": "bathroom"}]


def sparse_day(day: date, up: bool = True) -> list:
    """Doors and plugs only: kettle and fridge from 08:00, the bins out at 20:47 (the door,
    then nothing till morning)."""
    out = []
    if up:
        out += [reading("toilet", "flush", 1, at(day, "08:00")),
                reading("kettle-plug", "power", 2000, at(day, "08:05")),
                reading("kettle-plug", "power", 0, at(day, "08:08")),
                reading("fridge", "contact", 1, at(day, "08:10")),
                reading("fridge", "contact", 0, at(day, "08:11")),
                reading("fridge", "contact", 1, at(day, "13:00")),
                reading("fridge", "contact", 0, at(day, "13:01"))]
    return out + [reading("front-door", "contact", 1, at(day, "20:47")),
                  reading("front-door", "contact", 0, at(day, "20:48"))]


def test_with_doors_only_a_door_then_a_quiet_night_does_not_excuse_the_morning(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, devices=SPARSE, rules=only("not_up"))
    days = [r for i in range(10) for r in sparse_day(START + timedelta(days=i))]
    late = START + timedelta(days=10)
    alerts = run(Detector(config), days + sparse_day(late, up=False) +
                 [reading("fridge", "contact", 1, at(late, "16:00"))])
    # Nothing says they went out at 20:47 rather than took the bins out: judged, and the
    # alert says what was seen last.
    assert [a.rule for a in alerts] == ["not_up"]
    assert at(late, "10:00") <= alerts[0].raised_at <= at(late, "10:10")  # ~08:00 + 2 h
    assert "The last thing seen was the front door" in alerts[0].message


def test_with_doors_only_a_door_then_a_quiet_night_is_out_for_one_who_goes_out_at_night(
        tmp_path: Path) -> None:
    # Van Kasteren B with his contacts only: often out for the night (the door in the
    # evening, the door again in the morning, nothing between), and "not up by 13:30, the
    # last thing seen was the front door" on 7 mornings of 26. Two nights out seen in the
    # last four weeks: the door and then a quiet night is another night out for him.
    config = config_for(tmp_path, devices=SPARSE, rules=only("not_up"))
    days = []
    for i in range(10):
        day = START + timedelta(days=i)
        days += sparse_day(day)
        if i in (3, 6):  # home at 07:30 the next morning
            back = at(day + timedelta(days=1), "07:30")
            days += [reading("front-door", "contact", 1, back),
                     reading("front-door", "contact", 0, back + M)]
    late = START + timedelta(days=10)
    alerts = run(Detector(config), days + sparse_day(late, up=False) +
                 [reading("fridge", "contact", 1, at(late, "16:00"))])
    assert alerts == []


def test_a_bed_mat_pulsing_under_a_restless_sleeper_is_not_toilet_trips(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("night_toilet"))
    readings = [r for i in range(14) for r in day_of_life(START + timedelta(days=i))]
    for i in range(14, 17):
        day = START + timedelta(days=i)
        readings += day_of_life(day, night_trips=0)
        # Pressed and released every 3 minutes from 01:00 to 04:00, nobody out of the bedroom
        # (van Kasteren's house B: "22 trips to the toilet last night").
        for t in every(at(day, "01:00"), at(day, "04:00"), 3 * M):
            readings += [reading("bed-mat", "bed", 0, t), reading("bed-mat", "bed", 1, t + 2.5 * M)]
    assert [a for a in run(Detector(config), readings) if a.rule == "night_toilet"] == []


def test_a_stuck_bathroom_sensor_and_a_kitchen_misfire_are_not_toilet_trips(
        tmp_path: Path) -> None:
    # Van Kasteren's house B: the bathroom sensor on all night (a report a minute), a mat
    # that reads empty between presses, the kitchen sensor firing now and then: "22 trips to
    # the toilet last night" for one real trip. A trip must show at the toilet, afresh.
    devices = [*DEVICES, {"id": "bathroom-pir", "kind": "motion", "room": "bathroom"}]
    config = config_for(tmp_path, devices=devices, rules=only("night_toilet"))
    readings = [r for i in range(14) for r in day_of_life(START + timedelta(days=i))]
    for i in range(14, 17):
        day = START + timedelta(days=i)
        readings += day_of_life(day, night_trips=0)
        readings += [reading("bathroom-pir", "motion", 1, t)
                     for t in every(at(day, "00:30"), at(day, "06:00"), M)]
        for t in every(at(day, "01:00"), at(day, "04:00"), 10 * M):
            readings += [reading("bed-mat", "bed", 0, t), reading("bed-mat", "bed", 1, t + 4 * M),
                         reading("kitchen-pir", "motion", 1, t + 2 * M)]
    assert [a for a in run(Detector(config), readings) if a.rule == "night_toilet"] == []
    # Trips that do show at the toilet (the flush) are still counted, stuck sensor or not.
    for i in range(17, 20):
        day = START + timedelta(days=i)
        readings += day_of_life(day, night_trips=5)
        readings += [reading("bathroom-pir", "motion", 1, t)
                     for t in every(at(day, "00:30"), at(day, "06:00"), M)]
    alerts = [a for a in run(Detector(config), readings) if a.rule == "night_toilet"]
    assert len(alerts) == 1 and alerts[0].evidence["trips_last_night"] == 5


def late_evenings(n: int, bed: str = "01:00", until: str = "00:45") -> list:
    """Days of someone who keeps late hours, as all four real residents we have do: about the
    house every 20 min from 09:30 until `until`, in bed at `bed`, up at 09:30."""
    out = []
    for i in range(n):
        day = START + timedelta(days=i)
        end = at(day + timedelta(days=1), until) if until < "12:00" else at(day, until)
        out += [reading("hub", "heartbeat", 1, t) for t in every(at(day, "00:00"),
                                                                  at(day, "00:00") + 24 * H,
                                                                  30 * M)]
        out += [reading("bed-mat", "bed", 0, at(day, "09:30"))]
        out += [reading("kitchen-pir", "motion", 1, t)
                for t in every(at(day, "09:35"), end, 20 * M)]
        bedtime = at(day + timedelta(days=1), bed) if bed < "12:00" else at(day, bed)
        out.append(reading("bed-mat", "bed", 1, bedtime))
    return out


def test_waking_hours_end_at_the_residents_own_bedtime(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("inactivity"))
    weeks = late_evenings(14)
    assert run(Detector(config), weeks) == []  # late evenings are ordinary
    # A fall at 19:00 on day 15. With waking hours ending at the plan's 22:00 the clock
    # stopped there and the alert waited for the next morning; this resident is up until
    # 01:00, so the evening counts and the alert comes that evening.
    day = START + timedelta(days=14)
    lie = [r for r in late_evenings(15)[len(weeks):] if r.ts <= at(day, "19:00")
           or r.kind == "heartbeat"]
    alerts = run(Detector(config), weeks + lie)
    assert [a.rule for a in alerts] == ["inactivity"]
    assert alerts[0].raised_at < at(day, "23:00")
    assert alerts[0].evidence["waking_hours"][1] == "01:00"


def test_an_early_night_for_a_late_sleeper_is_not_a_long_lie(tmp_path: Path) -> None:
    config = config_for(tmp_path, rules=only("inactivity"))
    weeks = late_evenings(14)
    day = START + timedelta(days=14)
    early = [r for r in late_evenings(15, bed="23:00", until="22:50")[len(weeks):]
             if r.ts < at(day + timedelta(days=1), "00:00")]
    assert run(Detector(config), weeks + early) == []


def test_an_evening_in_the_armchair_is_not_taken_for_the_bedtime(tmp_path: Path) -> None:
    devices = [*DEVICES, {"id": "armchair", "kind": "chair", "room": "lounge"}]
    config = config_for(tmp_path, rules=only("inactivity"), devices=devices)
    out = []
    for i in range(14):  # into the chair at 20:00, nothing seen until bed at 01:00
        day = START + timedelta(days=i)
        out += [reading("hub", "heartbeat", 1, t) for t in every(at(day, "00:00"),
                                                                  at(day, "00:00") + 24 * H,
                                                                  30 * M)]
        out += [reading("bed-mat", "bed", 0, at(day, "09:30"))]
        out += [reading("kitchen-pir", "motion", 1, t)
                for t in every(at(day, "09:35"), at(day, "20:00"), 20 * M)]
        out += [reading("armchair", "chair", 1, at(day, "20:00")),
                reading("armchair", "chair", 0, at(day + timedelta(days=1), "00:55")),
                reading("bed-mat", "bed", 1, at(day + timedelta(days=1), "01:00"))]
    detector = Detector(config)
    assert run(detector, out) == []
    state = next(r for r in detector.homes["h001"].rules if r.name == "inactivity").state()
    assert {b[1] for b in state["bedtimes"][-7:]} == {25.0}  # 01:00, not the chair at 20:00



def test_home_again_when_a_second_device_follows_the_first_ones_latest_report(
        tmp_path: Path) -> None:
    """Ordonez B: home through the front door at 13:39, about the hall (its sensor) until
    13:54, the fridge at 14:12, then a fall. The half hour runs from the hall sensor's latest
    report, not its first, so she is home and the long lie is seen."""
    config = config_for(tmp_path, rules=only("inactivity"))
    day = START
    door = at(day, "13:39")
    out = [reading("kitchen-pir", "motion", 1, at(day, "09:00")),
           reading("front-door", "contact", 1, at(day, "09:30")),
           reading("front-door", "contact", 0, at(day, "09:30") + M),
           reading("front-door", "contact", 1, door),
           reading("front-door", "contact", 0, door + M)]
    out += [reading("bedroom-pir", "motion", 1, door + t * M) for t in (1, 6, 9, 15)]
    out.append(reading("kettle-plug", "power", 2000, door + 33 * M))  # 18 min after
    out += [reading("hub", "heartbeat", 1, t) for t in every(at(day, "09:00"),
                                                              at(day, "21:00"), 5 * M)]
    alerts = run(Detector(config), out)
    assert [a.rule for a in alerts] == ["inactivity"]
    assert alerts[0].evidence["last_activity_at"] == "2026-01-05T14:12:00Z"


def test_a_late_sleepers_learned_bedtime_survives_a_restart(tmp_path: Path) -> None:
    """Saved and restored mid-way (as the service checkpoints), the same alerts and window."""
    import json

    config = config_for(tmp_path, rules=only("inactivity"))
    weeks = late_evenings(14)
    day = START + timedelta(days=14)
    lie = [r for r in late_evenings(15)[len(weeks):] if r.ts <= at(day, "19:00")
           or r.kind == "heartbeat"]
    straight = run(Detector(config), weeks + lie)
    first = Detector(config)
    before = run(first, weeks)
    watermark = first.watermark_text()
    saved = json.dumps({h: first.state_of(h) for h in first.homes})
    second = Detector(config)
    second.load(watermark, json.loads(saved))
    after = run(second, lie)
    assert [a.to_json_obj() for a in before + after] == [a.to_json_obj() for a in straight]
    assert after[0].evidence["waking_hours"] == ["07:00", "01:00"]


def late_night(evening: date) -> list:
    """Up in the kitchen from 20:00 until 03:20 the next morning, into bed at 03:31."""
    bedtime = at(evening + timedelta(days=1), "03:30")
    return ([reading("kitchen-pir", "motion", 1, t)
             for t in every(at(evening, "20:00"), bedtime, 10 * M)]
            + [reading("bed-mat", "bed", 1, bedtime + M)])


def test_in_the_learning_week_a_late_night_is_allowed_its_rest(tmp_path: Path) -> None:
    # Real residents (van Kasteren B; Ordonez A on her second morning) came home or went to
    # bed at 02:00-05:00 in their first week and rose at 11:00-12:30: each was called "not
    # up" at the plan's 10:30 while their own time was still being learned.
    config = config_for(tmp_path, rules=only("not_up"))
    history = [r for i in range(3) for r in day_of_life(START + timedelta(days=i))]
    evening, late = START + timedelta(days=2), START + timedelta(days=3)
    history = [r for r in history if r.ts != at(evening, "22:30")]  # not to bed at 22:30
    night = late_night(evening)
    assert run(Detector(config), history + night +
               day_of_life(late, up="11:00", night_trips=0)) == []
    # Not up at all: called once 8 h of rest and the 2 h margin are over, counted from the
    # last doing before bed (03:20); the alert says why it waited.
    alerts = run(Detector(config), history + night + day_of_life(late, up=None, night_trips=0)
                 [:48])
    assert [a.raised_at for a in alerts] == [at(late, "13:20")]
    assert "They went to bed late (" in alerts[0].message
    # (03:20 local is 03:20 UTC in January.)
    assert alerts[0].evidence["rest_began_at"] == f"{late.isoformat()}T03:20:00Z"
    # An ordinary night in the same week: the plan's 10:30 as before.
    alerts = run(Detector(config), history[:-1] + day_of_life(late, up=None)[:48])
    assert [a.raised_at for a in alerts] == [at(late, "10:30")]


def test_a_trip_in_the_night_does_not_make_the_night_late(tmp_path: Path) -> None:
    # The injected crisis: a toilet trip at 01:00 (bridged as in hindsight), then nobody up.
    config = config_for(tmp_path, rules=only("not_up"))
    history = [r for i in range(10) for r in day_of_life(START + timedelta(days=i))]
    late = START + timedelta(days=10)
    alerts = run(Detector(config), history + day_of_life(late, up=None)[:48])
    assert [a.raised_at for a in alerts] == [at(late, "09:30")]
    assert alerts[0].evidence["rest_began_at"] is None


def test_where_going_out_is_not_seen_the_learning_week_allows_an_afternoon_out(
        tmp_path: Path) -> None:
    # Motion sensors and no front-door contact (Ordonez A and B with only their motion
    # sensors): an afternoon out is four quiet hours like a lie. While the home is learned,
    # the plan's 3 h called every outing a long lie (13 and 4 alerts); it allows the sparse
    # limit (7 h) until the resident's own spells are known.
    config = config_for(tmp_path, rules=only("inactivity"), devices=NO_DOOR)
    week = quiet_afternoons(6, 4.0)
    assert run(Detector(config), week) == []
    # With the door watched, the same afternoons are a lie until learned, as before.
    with_door = config_for(tmp_path / "door", rules=only("inactivity"))
    assert len(run(Detector(with_door), week)) == 6
    # A day with nothing from 10:00 in the doorless home still raises it, at 7 h.
    day = START + timedelta(days=6)
    lie = [r for r in day_of_life(day) if r.ts <= at(day, "10:00") or r.kind == "heartbeat"]
    alerts = run(Detector(config), week + lie)
    assert [a.raised_at.date() for a in alerts] == [day]
    assert alerts[0].evidence["threshold_minutes"] == 7 * 60
    assert "for a home where going out is not seen" in alerts[0].message


BATHROOM_PIR = {"id": "bathroom-pir", "kind": "motion", "room": "bathroom"}


def test_a_motion_sensor_on_for_hours_does_not_hide_a_long_lie(tmp_path: Path) -> None:
    # Van Kasteren's houses: motion sensors stuck on, a report a minute, for 2 to 220 hours
    # (the bathroom's for nine days while he was away). Taken for the resident, such a sensor
    # hid any silence beside it; past an hour without a break it is the sensor's doing.
    config = config_for(tmp_path, devices=[*DEVICES, BATHROOM_PIR], rules=only("inactivity"))
    day = START
    morning = [r for r in day_of_life(day) if r.ts <= at(day, "10:00") or r.kind == "heartbeat"]
    stuck = [reading("bathroom-pir", "motion", 1, t)
             for t in every(at(day, "09:30"), at(day, "20:00"), M)]
    alerts = run(Detector(config), morning + stuck)
    assert [a.rule for a in alerts] == ["inactivity"]
    # Its first hour counted (a person can be busy in one room that long): the plan's 3 h
    # run from 10:30.
    assert alerts[0].evidence["last_activity"] == "movement in the bathroom"
    assert at(day, "13:29") <= alerts[0].raised_at <= at(day, "13:31")
    # A sensor that pauses now and then is someone moving about: no alert.
    moving = [reading("bathroom-pir", "motion", 1, t)
              for t in every(at(day, "09:30"), at(day, "20:00"), M)
              if (t - at(day, "09:30")) % (40 * M) < 30 * M]
    assert run(Detector(config), morning + moving) == []


def test_a_sensor_on_since_before_the_door_does_not_bring_the_resident_home(
        tmp_path: Path) -> None:
    # Van Kasteren's house C: the bathtub sensor came on minutes before he left and stayed on
    # for nine hours; with the couch mat's twitches it read as two devices, someone home, and
    # the afternoon out as a long lie.
    config = config_for(tmp_path, devices=[*DEVICES, BATHROOM_PIR], rules=only("inactivity"))
    day = START
    out = [r for r in day_of_life(day) if r.ts <= at(day, "13:50") or r.kind == "heartbeat"]
    out += [reading("bathroom-pir", "motion", 1, t)
            for t in every(at(day, "13:53"), at(day, "23:00"), M)]
    out += [reading("front-door", "contact", 1, at(day, "14:00")),
            reading("front-door", "contact", 0, at(day, "14:00") + M / 2)]
    out += [reading("bedroom-pir", "motion", 1, at(day, t)) for t in ("14:05", "15:29")]
    assert run(Detector(config), out) == []
    # A second device that was not already on when the door went: home, and the clock runs.
    out.append(reading("kitchen-pir", "motion", 1, at(day, "15:35")))
    assert [a.rule for a in run(Detector(config), out)] == ["inactivity"]


def test_a_sensor_that_sees_the_resident_come_in_before_the_door_reports_brings_them_home(
        tmp_path: Path) -> None:
    # Van Kasteren's house B: the kitchen sensor saw him 13 s before the front door's contact
    # reported, and went on seeing him cooking (the stove's lid); a fall at 13:10 was missed,
    # as if that sensor had been on since before he came in.
    config = config_for(tmp_path, devices=[*DEVICES, BATHROOM_PIR], rules=only("inactivity"))
    day = START
    home = [r for r in day_of_life(day) if r.ts <= at(day, "11:00") or r.kind == "heartbeat"]
    home += [reading("front-door", "contact", 1, at(day, "11:05")),
             reading("front-door", "contact", 0, at(day, "11:05") + M / 2)]  # out
    back = at(day, "13:00")
    came_in = [reading("kitchen-pir", "motion", 1, t)
               for t in every(back - timedelta(seconds=13), back + 8 * M, M / 3)]
    came_in += [reading("front-door", "contact", 1, back),
                reading("front-door", "contact", 0, back + timedelta(seconds=5)),
                reading("kettle-plug", "power", 1500, back + 5 * M),
                reading("kettle-plug", "power", 0, back + 8 * M)]
    alerts = run(Detector(config), home + came_in)
    assert [a.rule for a in alerts] == ["inactivity"]
    # The same sensor on from a minute and more before the door saw no one come in.
    early = [reading("kitchen-pir", "motion", 1, t)
             for t in every(back - 3 * M, back, M / 3)]
    assert run(Detector(config), home + early + came_in) == []


def test_a_bed_mat_that_pulses_as_the_sleeper_turns_over_keeps_them_in_bed(
        tmp_path: Path) -> None:
    # Van Kasteren's mats read "pressed" for a second at a time, all night: each release
    # was "got out of bed", and a late sleeper's morning in bed ran the inactivity clock
    # from the last twitch (van Kasteren B: an alert at 10:59 while he slept until 11:38).
    config = config_for(tmp_path, rules=only("inactivity"))
    day = START + timedelta(days=1)
    out = [r for r in day_of_life(START) if r.ts < at(START, "22:00")]
    out += [reading("hub", "heartbeat", 1, t) for t in every(at(day, "00:00"),
                                                              at(day, "14:00"), 30 * M)]
    for t in every(at(START, "23:30"), at(day, "08:00"), 25 * M):  # then still until 11:30
        out += [reading("bed-mat", "bed", 1, t), reading("bed-mat", "bed", 0, t + timedelta(
            seconds=1))]
    out += [reading("kitchen-pir", "motion", 1, at(day, "11:40"))]
    assert run(Detector(config), out) == []
    # Off the mat for longer than a pulse is getting up: then the clock runs as before.
    up = [r for r in out if r.ts < at(day, "08:00") or r.kind == "heartbeat"] + [
        reading("bed-mat", "bed", 1, at(day, "08:00")),
        reading("bed-mat", "bed", 0, at(day, "08:05"))]
    assert [a.rule for a in run(Detector(config), up)] == ["inactivity"]


def test_a_restless_sleepers_bedtime_is_learned_from_a_mat_that_pulses(
        tmp_path: Path) -> None:
    # Each twitch of a pulsing mat broke the night into pieces shorter than an hour, so no
    # night's rest was found and van Kasteren B, in bed at 01:00 to 03:00, kept the plan's
    # waking hours to 22:00: an evening lie at 18:30 waited for the next morning.
    config = config_for(tmp_path, rules=only("inactivity"))
    readings = [r for r in late_evenings(14) if r.kind != "bed"]
    for i in range(14):
        night = at(START + timedelta(days=i + 1), "01:00")
        for t in every(night, night + 8 * H, 15 * M):
            readings += [reading("bed-mat", "bed", 1, t),
                         reading("bed-mat", "bed", 0, t + timedelta(seconds=1))]
    detector = Detector(config)
    run(detector, readings)
    rule = next(r for r in detector.home("h001").rules if r.name == "inactivity")
    assert rule.window[1].strftime("%H:%M") == "01:00"


def test_a_motion_sensor_stuck_on_is_told_to_the_technical_team_once_per_fault(
        tmp_path: Path) -> None:
    config = config_for(tmp_path, devices=[*DEVICES, BATHROOM_PIR], rules=only("device_health"))
    day = START
    out = [reading("bathroom-pir", "motion", 1, t)
           for t in every(at(day, "09:30"), at(day, "20:00"), M)]
    # Paused, then ordinary visits; stuck again for two hours the next afternoon: the same
    # fault, still open. Ordinary for a day after that: resolved.
    out.append(reading("bathroom-pir", "motion", 1, at(day, "20:30")))
    out += [reading("bathroom-pir", "motion", 1, t)
            for t in every(at(day + timedelta(days=1), "14:00"),
                           at(day + timedelta(days=1), "16:00"), M)]
    visits = [at(day + timedelta(days=d), "08:00") for d in (2, 3)]
    out += [reading("bathroom-pir", "motion", 1, t) for t in visits]
    alerts = [a for a in run(Detector(config), out) if a.rule == "sensor_stuck"]
    assert len(alerts) == 1
    stuck = alerts[0]
    assert stuck.severity == "low" and stuck.evidence["audience"] == "technical"
    assert at(day, "10:30") < stuck.raised_at <= at(day, "10:32")
    assert stuck.status == "resolved" and stuck.resolved_at == visits[1]


def _lie_in(day: date) -> list[Reading]:
    """A day out of bed at 08:00 and in the bedroom, unseen by the mat, until 11:40."""
    out = [r for r in day_of_life(day, up="11:40")
           if not (r.device == "bed-mat" and r.ts == at(day, "11:40"))]
    return out + [reading("bed-mat", "bed", 0, at(day, "08:00")),
                  reading("bedroom-pir", "motion", 1, at(day, "08:01"))]


def test_a_morning_in_the_bedroom_does_not_lengthen_the_evening_limit(tmp_path: Path) -> None:
    # Van Kasteren's house B: a lie-in from 10:16 to 13:39 with the mats silent was learned as
    # his longest ordinary quiet spell by day, so a fall at 18:26 would be called after
    # 3 h 53 min: past his bedtime, and not until the next morning.
    config = config_for(tmp_path, rules=only("inactivity"))
    learning: list[Reading] = []
    for i in range(8):
        day = START + timedelta(days=i)
        learning += _lie_in(day) if i == 2 else day_of_life(day)
    fall_day = START + timedelta(days=8)
    fall = [r for r in day_of_life(fall_day) if r.ts < at(fall_day, "18:30")
            or r.kind == "heartbeat"] + [reading("kitchen-pir", "motion", 1,
                                                 at(fall_day, "18:30"))]
    fall += [reading("hub", "heartbeat", 1, t) for t in every(
        at(fall_day + timedelta(days=1), "00:00"), at(fall_day + timedelta(days=1), "10:00"),
        30 * M)]
    alerts = [a for a in run(Detector(config), learning + fall)
              if a.raised_at >= at(fall_day, "00:00")]
    assert [(a.rule, a.raised_at) for a in alerts] == [("inactivity", at(fall_day, "21:30"))]
    # The mornings keep it: the same lie-in once learned is no alarm.
    again = learning + day_of_life(fall_day) + _lie_in(fall_day + timedelta(days=1))
    assert [a for a in run(Detector(config), again) if a.raised_at >= at(fall_day, "00:00")] \
        == []


def test_a_silence_of_days_is_one_not_up_call_where_going_out_is_not_seen(
        tmp_path: Path) -> None:
    # Van Kasteren B's nine days away, in a view of his motion sensors only: with no door to
    # say he had gone, "not up" was raised every morning. The first morning is judged; after
    # a day more of nothing the silence has been told, and it is what a week away looks like.
    config = config_for(tmp_path, rules=only("not_up"), devices=NO_DOOR)
    days = [r for i in range(10) for r in day_of_life(START + timedelta(days=i))]
    gone = START + timedelta(days=10)
    last_evening = [r for r in day_of_life(gone) if r.ts <= at(gone, "20:00")]
    away = [r for i in range(1, 4) for r in day_of_life(gone + timedelta(days=i))
            if r.kind == "heartbeat"]
    back = day_of_life(gone + timedelta(days=4))
    alerts = run(Detector(config), days + last_evening + away + back)
    assert [a.raised_at.date() for a in alerts] == [gone + timedelta(days=1)]
