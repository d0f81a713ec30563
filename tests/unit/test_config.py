"""Configuration is checked at load time, with every problem named by file and place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from detect.rules import load_config
from telecare.config import ConfigError, parse_duration
from tests.builders import write_home

CONTRACT_EXAMPLE = """\
home: h001
timezone: Europe/London          # routines and quiet hours are in the resident's local time
devices:
  - {id: bedroom-pir, kind: motion, room: bedroom}
  - {id: kitchen-pir, kind: motion, room: kitchen}
  - {id: front-door, kind: contact, room: hall, role: front_door}
  - {id: kettle-plug, kind: power, room: kitchen, role: kettle}
  - {id: bed-mat, kind: bed, room: bedroom}
  - {id: toilet, kind: flush, room: bathroom}
contacts:
  - {name: "Asha (daughter)", webhook: "http://127.0.0.1:9000/alerts"}
"""


def test_the_contract_example_home_loads_with_default_rules(tmp_path: Path) -> None:
    (tmp_path / "homes").mkdir()
    (tmp_path / "homes" / "h001.yaml").write_text(CONTRACT_EXAMPLE)
    home = load_config(tmp_path).homes["h001"]
    assert home.device("front-door").role == "front_door"  # type: ignore[union-attr]
    assert home.rules.cold_home.below_c == 16.0
    assert home.rules.inactivity.threshold == timedelta(hours=3)
    assert home.contacts[0].webhook == "http://127.0.0.1:9000/alerts"


def test_a_homes_plan_overrides_defaults_for_that_home_only(tmp_path: Path) -> None:
    write_home(tmp_path, "h001", rules={"inactivity": {"threshold": "90m"}})
    write_home(tmp_path, "h002")
    config = load_config(tmp_path)
    assert config.homes["h001"].rules.inactivity.threshold == timedelta(minutes=90)
    assert config.homes["h002"].rules.inactivity.threshold == timedelta(hours=3)


def test_every_problem_is_reported_at_once_with_its_place(tmp_path: Path) -> None:
    write_home(tmp_path, "h001", timezone="Mars/Olympus")
    write_home(tmp_path, "h002", rules={"inactivty": {"threshold": "1h"}})
    write_home(tmp_path, "h003", rules={"cold_home": {"below_c": "cold"}})
    (tmp_path / "homes" / "h004.yaml").write_text("home: h005\ntimezone: UTC\n")
    (tmp_path / "homes" / "h006.yaml").write_text(
        "home: h006\ntimezone: UTC\ndevices:\n - {id: a, kind: motion}\n - {id: a, kind: bed}\n"
        " - {id: b, kind: lava}\n - {id: c, kind: contact, role: cat_flap}\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = "\n".join(info.value.problems)
    assert "h001.yaml: timezone: timezone 'Mars/Olympus' is not an IANA zone" in text
    assert "h002.yaml: rules.inactivty: no such rule" in text
    assert "h003.yaml: rules.cold_home.below_c" in text
    assert "h004.yaml: home 'h005' does not match the file name 'h004'" in text
    assert "h006.yaml: devices.2.kind: kind 'lava' is not in the vocabulary" in text
    assert "h006.yaml: devices.3.role: role 'cat_flap'" in text


def test_two_devices_with_one_id_are_refused(tmp_path: Path) -> None:
    (tmp_path / "homes").mkdir()
    (tmp_path / "homes" / "h1.yaml").write_text(
        "home: h1\ntimezone: UTC\ndevices:\n - {id: a, kind: motion}\n - {id: a, kind: bed}\n")
    with pytest.raises(ConfigError, match="device id 'a' is listed twice"):
        load_config(tmp_path)


@pytest.mark.parametrize(("text", "seconds"),
                         [("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), (45, 45)])
def test_durations_read_as_people_write_them(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_a_duration_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_a_circle_with_mistakes_is_refused_with_each_place_named(tmp_path: Path) -> None:
    write_home(tmp_path, "h001", contacts=[
        {"name": "Asha", "email": "asha-at-example", "timezone": "Europe/Londn"},
        {"name": "Ben", "role": "cousin", "mqtt": "hub/#", "min_severity": "urgent"},
    ], escalation={"ack_within": "10m", "repeat": ["10s"]})
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = "\n".join(info.value.problems)
    assert "h001.yaml: contacts.0.email: email 'asha-at-example' is not an e-mail address" \
        in text
    assert "h001.yaml: contacts.0.timezone: timezone 'Europe/Londn' is not an IANA zone" \
        in text
    assert "h001.yaml: contacts.1.role: role 'cousin' is not one of family" in text
    assert "h001.yaml: contacts.1.mqtt: mqtt topic 'hub/#' must be a plain topic" in text
    assert "h001.yaml: contacts.1.min_severity" in text
    assert "h001.yaml: escalation.repeat: repeat intervals must be at least 30s" in text


def _problems(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(root)
    return [p.replace(str(root) + "/", "") for p in info.value.problems]


def test_a_bad_value_in_rules_yaml_is_refused_there_even_when_every_home_overrides_it(
        tmp_path: Path) -> None:
    write_home(tmp_path, "h001", rules={"pendant": {"severity": "critical"}})
    (tmp_path / "rules.yaml").write_text("pendant: {severity: urgent}\n")
    assert _problems(tmp_path) == [
        "rules.yaml: pendant.severity: severity 'urgent' is not one of info, low, medium, "
        "high, critical"]


def test_misspelt_keys_in_a_home_file_are_refused_with_the_nearest_name(tmp_path: Path) -> None:
    (tmp_path / "homes").mkdir()
    (tmp_path / "homes" / "h001.yaml").write_text(
        CONTRACT_EXAMPLE.replace("contacts:", "contacs:")
        + "escalaton: {ack_within: 5m}\nrulez: {}\nx-installer: fitted 2026-11-02\n")
    assert _problems(tmp_path) == [
        "homes/h001.yaml: contacs: unknown key (did you mean 'contacts'?)",
        "homes/h001.yaml: escalaton: unknown key (did you mean 'escalation'?)",
        "homes/h001.yaml: rulez: unknown key (did you mean 'rules'?)",
    ]


def test_durations_must_be_positive_and_numbers_finite(tmp_path: Path) -> None:
    write_home(tmp_path, "h001", rules={"inactivity": {"threshold": 0},
                                        "cold_home": {"below_c": float("nan")},
                                        "hot_home": {"above_c": float("inf")}})
    assert _problems(tmp_path) == [
        "homes/h001.yaml: rules.cold_home.below_c: Input should be a finite number",
        "homes/h001.yaml: rules.hot_home.above_c: Input should be a finite number",
        "homes/h001.yaml: rules.inactivity.threshold: duration 0s must be more than zero",
    ]


def test_a_home_whose_critical_alerts_would_reach_nobody_is_warned_of(tmp_path: Path) -> None:
    write_home(tmp_path, "h001", contacts=[{"name": "Tech", "role": "technical",
                                           "webhook": "http://127.0.0.1:9/t"}])
    write_home(tmp_path, "h002")
    config = load_config(tmp_path)
    assert config.warnings == [
        "homes/h001.yaml: no contact outside the technical team can be reached: a critical "
        "alert (a pendant press) would reach nobody",
        "1 home(s) name no contact, so their alerts are recorded but told to nobody: h002",
    ]


def test_telecare_check_names_every_problem_and_starts_nothing(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from telecare.app.cli import main

    write_home(tmp_path, "h001", rules={"inactivity": {"threshold": "-1h"}})
    result = CliRunner().invoke(main, ["check", "--config", str(tmp_path)])
    assert result.exit_code == 1
    assert "homes/h001.yaml: rules.inactivity.threshold: '-1h' is not a duration" in \
        result.output
    (tmp_path / "homes" / "h001.yaml").unlink()
    write_home(tmp_path, "h001")
    result = CliRunner().invoke(main, ["check", "--config", str(tmp_path)])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == "ok: 1 home(s), 1 warning(s)"


def test_the_defaults_telecare_rules_prints_load_back_as_they_are(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from detect.rules import default_rules
    from telecare.app.cli import main

    printed = CliRunner().invoke(main, ["rules"])
    assert printed.exit_code == 0, printed.output
    assert "inactivity:" in printed.output and "threshold: 3h" in printed.output
    write_home(tmp_path, "h001")
    (tmp_path / "rules.yaml").write_text(printed.output)
    loaded = load_config(tmp_path).homes["h001"].rules
    defaults = default_rules()
    assert list(loaded) == list(defaults)
    assert all(loaded[name] == defaults[name] for name in defaults)


def test_the_homes_folder_given_as_the_configuration_is_refused(tmp_path: Path) -> None:
    # Given homes/ itself, the loader found no home files and every reading was detected as
    # from a home with no file (UTC, no devices): a backtest ran and was silently wrong.
    write_home(tmp_path, "h001")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "homes")
    assert "has h001.yaml but no homes/ folder" in "\n".join(info.value.problems)
    assert "h001" in load_config(tmp_path).homes


def test_parsed_home_files_are_kept_between_loads_and_a_changed_file_is_read_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from telecare import yamlcache

    monkeypatch.setenv("TELECARE_CACHE_DIR", str(tmp_path / "cache"))
    root = write_home(tmp_path / "cfg", "h001")
    write_home(root, "h002", rules={"inactivity": {"threshold": "4h"}})
    first = load_config(root)
    assert list((tmp_path / "cache").glob("config-*.json"))
    parsed = []
    real = yamlcache.ParsedCache.put
    monkeypatch.setattr(yamlcache.ParsedCache, "put",
                        lambda self, name, raw, doc: (parsed.append(name),
                                                      real(self, name, raw, doc))[1])
    again = load_config(root)
    assert parsed == []  # both from the cache
    assert again.homes["h002"].model_dump(exclude={"rules"}) == \
        first.homes["h002"].model_dump(exclude={"rules"})
    # Its own setting, and the directory's for the rules it does not override.
    assert again.homes["h002"].rules.inactivity.threshold == timedelta(hours=4)
    assert again.homes["h002"].rules.not_up == again.homes["h001"].rules.not_up
    # One byte changed (a room renamed): that file, and only that one, is read again.
    path = root / "homes" / "h001.yaml"
    path.write_text(path.read_text().replace("room: kitchen", "room: scullery", 1))
    changed = load_config(root)
    assert parsed == ["h001.yaml"]
    assert "scullery" in {d.room for d in changed.homes["h001"].devices}
    # A document that is not plain JSON (a YAML date) is never cached, and loads the same.
    path.write_text(path.read_text() + "installed: 2026-01-05\n")
    with pytest.raises(ConfigError, match="installed"):
        load_config(root)  # (an unknown key: named, from the file as it is now)


def test_a_cache_folder_that_cannot_be_written_only_costs_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("TELECARE_CACHE_DIR", str(blocked))
    root = write_home(tmp_path / "cfg", "h001")
    assert load_config(root).known("h001")
    assert load_config(root).known("h001")
