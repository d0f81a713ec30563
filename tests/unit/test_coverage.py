"""`telecare coverage`: what each home's sensors can and cannot see, from its description."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from detect.coverage import can_see, coverage
from detect.rules import load_config
from telecare.app.cli import main
from tests.builders import write_home


def _home(tmp_path: Path, devices: list[dict[str, str]]) -> Path:
    root = tmp_path / "config"
    (root / "homes").mkdir(parents=True)
    (root / "homes" / "h009.yaml").write_text(yaml.safe_dump(
        {"home": "h009", "timezone": "Europe/London", "devices": devices}))
    return root


def test_a_home_of_doors_and_cupboards_sees_some_crises_partly_and_names_what_it_cannot(
        tmp_path: Path) -> None:
    root = _home(tmp_path, [
        {"id": "door", "kind": "contact", "room": "hall"},  # no role: not known as the exit
        {"id": "cupboard", "kind": "contact", "room": "kitchen"},
        {"id": "toilet", "kind": "flush", "room": "bathroom"}])
    home = load_config(root).homes["h009"]
    seen = {s.crisis: s.seen for s in coverage(home)}
    assert seen["long lie"] == "partly" and seen["not up"] == "partly"
    assert seen["night toileting"] == "yes" and seen["skipped meals"] == "yes"
    assert seen["night wandering"] == "no" and seen["call for help"] == "no"
    assert not can_see(home, "night wandering") and can_see(home, "long lie")
    out = CliRunner().invoke(main, ["coverage", "--config", str(root)])
    assert out.exit_code == 0, out.output
    assert "cannot see call for help (no pendant or pull cord)" in out.output
    assert "night wandering (no contact with role front_door or back_door)" in out.output


def test_coverage_as_json_for_one_home_and_an_unknown_home_is_an_error(tmp_path: Path) -> None:
    root = write_home(tmp_path / "config")
    out = CliRunner().invoke(main, ["coverage", "--config", str(root), "--home", "h001",
                                    "--json"])
    assert out.exit_code == 0, out.output
    crises = {c["crisis"]: c["seen"] for c in json.loads(out.output)["crises"]}
    assert crises["call for help"] == "yes" and crises["night wandering"] == "yes"
    assert crises["vital signs (NEWS2)"] == "no"
    bad = CliRunner().invoke(main, ["coverage", "--config", str(root), "--home", "h404"])
    assert bad.exit_code != 0 and "no home 'h404'" in bad.output


def test_motion_sensors_without_a_door_contact_see_a_long_lie_only_partly(
        tmp_path: Path) -> None:
    # The PIR-only views of real homes: with no exit door seen, time out looks like a lie.
    root = _home(tmp_path, [{"id": "hall-pir", "kind": "motion", "room": "hall"},
                            {"id": "kitchen-pir", "kind": "motion", "room": "kitchen"}])
    home = load_config(root).homes["h009"]
    lie = next(s for s in coverage(home) if s.crisis == "long lie")
    assert lie.seen == "partly" and "time out cannot be told from a lie" in lie.how
