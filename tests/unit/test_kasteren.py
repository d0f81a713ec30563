"""The van Kasteren reader, on a few lines written in the recordings' own format (the real
files are not ours to commit)."""

from __future__ import annotations

from pathlib import Path

from detect.rules import load_config
from simulators.kasteren import convert, sensor_for

LABELS = "ID\tlabel\n1\t' frontdoor'\n4\t' dead sensor'\n12\t'pressure mat bed  right'\n" \
    "19\t' PIR bathroom'\n6\t' toilet flush'\n3\t' fridge'\n"
SS = ("Start time          \tEnd time            \tID\tVal\n"
      "21-Jul-2009 13:30:12\t21-Jul-2009 13:30:13\t1\t1\n"
      "21-Jul-2009 13:31:00\t21-Jul-2009 13:33:30\t19\t1\n"
      "21-Jul-2009 13:32:00\t21-Jul-2009 13:32:02\t6\t1\n"
      "21-Jul-2009 13:40:00\t21-Jul-2009 13:40:00\t4\t1\n"
      "21-Jul-2009 23:00:00\t22-Jul-2009 07:00:00\t12\t1\n")


def test_house_intervals_become_contract_readings_in_amsterdam_time(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for house in ("KB House", "KC House"):
        (src / house).mkdir(parents=True)
        p = "KB" if house.startswith("KB") else "KC"
        (src / house / f"{p}_sensor_labels.csv").write_text(LABELS)
        (src / house / f"{p}_ss.csv").write_text(SS)
        (src / house / f"{p}_activity_labels.csv").write_text("ID\tlabel\n1\t'Leaving the house'\n")
        (src / house / f"{p}_as.csv").write_text(
            "Start time          \tEnd time            \tID\n"
            "21-Jul-2009 13:30:00\t21-Jul-2009 13:31:00\t1\n")
    homes = convert(src, tmp_path / "bundle")
    b = homes[0]
    got = [(r.device, r.kind, r.value, r.ts.isoformat()) for r in b.readings]
    assert got[:3] == [("frontdoor", "contact", 1.0, "2009-07-21T11:30:12+00:00"),
                       ("frontdoor", "contact", 0.0, "2009-07-21T11:30:13+00:00"),
                       ("bathroom-pir", "motion", 1.0, "2009-07-21T11:31:00+00:00")]
    assert sum(r.device == "bathroom-pir" for r in b.readings) == 3  # at 0, 60 and 120 s
    assert ("toilet-flush", "flush", 1.0, "2009-07-21T11:32:00+00:00") in got
    assert ("bed-right-mat", "bed", 0.0, "2009-07-22T05:00:00+00:00") in got
    assert not any("dead" in r.device for r in b.readings)
    config = load_config(tmp_path / "bundle")  # the bundle runs as it is
    assert config.homes["kasteren-b"].device("frontdoor").role == "front_door"  # type: ignore[union-attr]
    assert (tmp_path / "bundle" / "activities.jsonl").read_text().count("Leaving") == 2


def test_labels_say_what_a_sensor_is() -> None:
    assert sensor_for("dead sensor") is None
    assert sensor_for("couch, pressure mat") == sensor_for("couch, pressure mat")
    couch = sensor_for("couch, pressure mat")
    assert couch is not None and (couch.kind, couch.role) == ("chair", "chair")
    sink = sensor_for("sink upstairs, flush")
    assert sink is not None and sink.kind == "contact"  # water running, not the toilet
