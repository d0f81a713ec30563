"""The care circle: escalation along the plan's chain, acknowledgement, reminders, quiet
hours in each contact's own time zone, the resident's "I'm OK", feedback. Real HTTP
receivers; the service's clock is injected."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.service import AlertService
from detect.rules import load_config
from telecare.alert import Alert
from telecare.db import Transaction, connect_alert_store
from tests.builders import utc, write_home
from tests.conftest import WebhookReceiver

# Every test here on both alert stores: the embedded one and PostgreSQL.
pytestmark = pytest.mark.usefixtures("alert_store")

MIN = 60.0


class Clock:
    def __init__(self, at: str = "2026-01-05 14:00") -> None:
        self.now = utc(at).timestamp()

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def an_alert(severity: str = "high", rule: str = "inactivity", n: int = 1) -> Alert:
    return Alert(f"h001:{rule}:{n}", "h001", rule, severity,  # type: ignore[arg-type]
                 utc("2026-01-05 13:59"), "firing", f"No activity seen ({n}).", {})


def circle(tmp_path: Path, people: list[dict[str, Any]], escalation: dict[str, Any] | None,
           clock: Clock) -> AlertService:
    extra: dict[str, Any] = {"contacts": people}
    if escalation is not None:
        extra["escalation"] = escalation
    config = load_config(write_home(tmp_path / "config", **extra))
    return AlertService(connect_alert_store(tmp_path / "data"), config, clock=clock)


def record(service: AlertService, *alerts: Alert) -> None:
    with Transaction(service.conn) as c:
        service.store.record_in(c, list(alerts))


def heard(r: WebhookReceiver) -> list[tuple[str, str]]:
    return [(a["id"], h["X-Telecare-Notice"]) for _, a, h in r.posts]


PLAN = {"ack_within": "10m", "repeat": ["5m", "15m"]}


def three(tmp_path: Path, clock: Clock, plan: dict[str, Any] | None = PLAN
          ) -> tuple[AlertService, WebhookReceiver, WebhookReceiver, WebhookReceiver]:
    daughter, neighbour, responder = WebhookReceiver(), WebhookReceiver(), WebhookReceiver()
    service = circle(tmp_path, [
        {"name": "daughter", "webhook": daughter.url},
        {"name": "neighbour", "role": "neighbour", "webhook": neighbour.url},
        {"name": "responder", "role": "professional", "webhook": responder.url},
    ], plan, clock)
    return service, daughter, neighbour, responder


def test_an_unacknowledged_alert_goes_down_the_chain_at_the_plans_times(tmp_path: Path) -> None:
    clock = Clock()
    service, daughter, neighbour, responder = three(tmp_path, clock)
    record(service, an_alert())
    service.step()
    assert heard(daughter) == [("h001:inactivity:1", "alert")]
    assert heard(neighbour) == [] and heard(responder) == []
    clock.now += 9 * MIN
    service.step()
    assert heard(neighbour) == []  # not yet: 10 minutes to acknowledge
    clock.now += 1 * MIN
    service.step()
    assert heard(neighbour) == [("h001:inactivity:1", "alert")]
    assert heard(responder) == []
    clock.now += 10 * MIN
    service.step()
    assert heard(responder) == [("h001:inactivity:1", "alert")]


def test_an_acknowledged_alert_stops_the_chain_and_the_others_are_told_who(
        tmp_path: Path) -> None:
    clock = Clock()
    service, daughter, neighbour, responder = three(tmp_path, clock)
    record(service, an_alert())
    service.step()
    clock.now += 10 * MIN
    service.step()  # the neighbour is asked too
    clock.now += 1 * MIN
    assert service.acknowledge("h001:inactivity:1", "neighbour", "on my way")
    service.step()
    for _ in range(6):  # an hour on: nobody else is asked or reminded
        clock.now += 10 * MIN
        service.step()
    assert heard(responder) == []
    assert ("h001:inactivity:1", "acknowledged") in heard(daughter)
    assert daughter.posts[-1][2]["X-Telecare-Acknowledged-By"] == "neighbour"
    assert ("h001:inactivity:1", "acknowledged") not in heard(neighbour)
    reminders_after_ack = [h for h in heard(daughter)[2:] if h[1] == "reminder"]
    assert reminders_after_ack == []
    row = service.conn.execute("SELECT by_whom, note FROM acknowledgements").fetchall()
    assert row == [("neighbour", "on my way")]


def test_reminders_follow_the_schedule_and_its_last_interval_repeats(tmp_path: Path) -> None:
    clock = Clock()
    only_one = WebhookReceiver()
    service = circle(tmp_path, [{"name": "daughter", "webhook": only_one.url}],
                     {"ack_within": "10m", "repeat": ["5m", "15m"]}, clock)
    record(service, an_alert())
    start = clock.now
    service.step()
    for _ in range(60):  # one hour, minute by minute
        clock.now += MIN
        service.step()
    sent = [round((t - start) / MIN) for t, _, h in only_one.posts
            if h["X-Telecare-Notice"] == "reminder"]
    # Real time passes between the fake minutes; the posts land at 5, 20, 35 and 50 minutes.
    assert len(sent) == 4
    rounds = [h["Idempotency-Key"] for _, _, h in only_one.posts]
    assert rounds == ["h001:inactivity:1/firing"] + \
        [f"h001:inactivity:1/firing/repeat{i}" for i in range(1, 5)]
    due = service.conn.execute("SELECT round, created FROM notifications ORDER BY id").fetchall()
    assert [round((c - start) / MIN) for _, c in due] == [0, 5, 20, 35, 50]


def test_a_critical_alert_goes_to_the_professional_at_once_as_well(tmp_path: Path) -> None:
    clock = Clock()
    service, daughter, neighbour, responder = three(tmp_path, clock)
    record(service, an_alert("critical", "pendant"))
    service.step()
    assert heard(daughter) == [("h001:pendant:1", "alert")]
    assert heard(responder) == [("h001:pendant:1", "alert")]
    assert heard(neighbour) == []


def test_quiet_hours_in_the_contacts_own_zone_hold_a_high_alert_but_never_a_critical(
        tmp_path: Path) -> None:
    # 14:00 UTC is 06:00 in Los Angeles: the son is reachable from 08:00 his time.
    clock = Clock("2026-01-05 14:00")
    son = WebhookReceiver()
    service = circle(tmp_path, [{"name": "son", "webhook": son.url,
                                 "timezone": "America/Los_Angeles",
                                 "hours": {"start": "08:00", "end": "22:00"}}], None, clock)
    record(service, an_alert("high"), an_alert("critical", "pendant"))
    service.step()
    assert heard(son) == [("h001:pendant:1", "alert")]
    clock.now = utc("2026-01-05 15:59").timestamp()
    service.step()
    assert len(son.posts) == 1
    clock.now = utc("2026-01-05 16:00").timestamp()  # 08:00 in Los Angeles
    service.step()
    assert heard(son) == [("h001:pendant:1", "alert"), ("h001:inactivity:1", "alert")]


def test_without_an_escalation_plan_everyone_hears_at_once_as_the_contract_says(
        tmp_path: Path) -> None:
    clock = Clock()
    service, daughter, neighbour, responder = three(tmp_path, clock, plan=None)
    record(service, an_alert())
    service.step()
    for r in (daughter, neighbour, responder):
        assert heard(r) == [("h001:inactivity:1", "alert")]
    clock.now += 60 * MIN
    service.step()
    assert all(len(r.posts) == 1 for r in (daughter, neighbour, responder))  # no reminders


def test_device_faults_go_to_the_technical_team_only(tmp_path: Path) -> None:
    clock = Clock()
    family, tech = WebhookReceiver(), WebhookReceiver()
    service = circle(tmp_path, [{"name": "family", "webhook": family.url},
                                {"name": "tech", "role": "technical", "webhook": tech.url}],
                     None, clock)
    fault = Alert("h001:device_offline:pir:1", "h001", "device_offline", "low",
                  utc("2026-01-05 13:00"), "firing", "The hall sensor is silent.",
                  {"audience": "technical"})
    record(service, fault, an_alert())
    service.step()
    assert heard(tech) == [("h001:device_offline:pir:1", "alert")]
    assert heard(family) == [("h001:inactivity:1", "alert")]


def test_the_residents_im_ok_stands_down_a_non_critical_alert_and_is_recorded(
        tmp_path: Path) -> None:
    clock = Clock()
    service, daughter, _, _ = three(tmp_path, clock)
    record(service, an_alert("high"), an_alert("critical", "pendant"))
    service.step()
    assert service.resident_ok("h001") == ["h001:inactivity:1"]
    service.step()
    closed = service.store.get("h001:inactivity:1")
    assert closed is not None and closed.status == "resolved"
    assert closed.resolution == "Closed by the resident: they answered \"I'm OK\" from their " \
                                "own device"
    still = service.store.get("h001:pendant:1")
    assert still is not None and still.status == "firing"
    assert ("h001:inactivity:1", "resolved") in heard(daughter)


def test_feedback_is_stored_beside_the_alert(tmp_path: Path) -> None:
    clock = Clock()
    service, _, _, _ = three(tmp_path, clock)
    record(service, an_alert())
    assert service.feedback("h001:inactivity:1", "daughter", "false_alarm", "she was napping")
    assert not service.feedback("no-such-alert", "daughter", "useful")
    rows = service.conn.execute("SELECT alert_id, by_whom, verdict, why FROM feedback").fetchall()
    assert rows == [("h001:inactivity:1", "daughter", "false_alarm", "she was napping")]
    # As detection and tuning read it: beside the alert, by home and rule.
    ((alert, who, verdict, why),) = service.store.feedback(home="h001", rule="inactivity")
    assert (alert.id, who, verdict, why) == \
        ("h001:inactivity:1", "daughter", "false_alarm", "she was napping")
    assert service.store.feedback(rule="pendant") == []


def test_a_restart_mid_escalation_resumes_the_chain_without_repeating_a_step(
        tmp_path: Path) -> None:
    clock = Clock()
    service, daughter, neighbour, responder = three(tmp_path, clock)
    record(service, an_alert())
    service.step()
    clock.now += 10 * MIN
    service.route()
    service.escalate()  # the neighbour's notice is queued, then the process dies
    restarted = circle(tmp_path, service.config.home("h001").model_dump()["contacts"],
                       PLAN, clock)
    restarted.step()
    restarted.step()
    assert heard(neighbour) == [("h001:inactivity:1", "alert")]
    assert heard(daughter) == [("h001:inactivity:1", "alert"), ("h001:inactivity:1", "reminder")]
    clock.now += 10 * MIN
    restarted.step()
    assert heard(responder) == [("h001:inactivity:1", "alert")]
    for r in (daughter, neighbour, responder):
        keys = [h["Idempotency-Key"] for _, _, h in r.posts]
        assert len(keys) == len(set(keys))



def test_the_report_gives_time_to_notify_acknowledge_and_close_against_the_yardstick(
        tmp_path: Path) -> None:
    from alerts.report import format_report, gather

    clock = Clock()
    service, daughter, _, _ = three(tmp_path, clock)
    record(service, an_alert("critical", "pendant", 1), an_alert("critical", "pendant", 2))
    service.step()
    clock.now += 45
    service.acknowledge("h001:pendant:1", "daughter")
    clock.now += 200
    service.acknowledge("h001:pendant:2", "neighbour")
    clock.now += 600
    assert service.resolve_by_person("h001:pendant:1", "daughter", "helped up, unhurt")
    service.step()
    service.feedback("h001:pendant:1", "daughter", "useful")
    by_sev, by_home = gather(service.conn)
    row = by_sev["critical"].row()
    assert row["alerts"] == 2 and row["acknowledged"] == 2
    assert row["ack_within_60s"] == 0.5 and row["ack_within_180s"] == 0.5
    assert row["first_notification_median_s"] == 0.0  # sent in the same (fake) instant
    assert row["resolved_median_min"] == round(845 / 60, 1)
    assert row["feedback_useful"] == 1
    assert by_home["h001"].count == 2
    text = format_report(by_sev, by_home)
    assert "critical alerts acknowledged within 60 s: 50.0% (misses the industry's 97.5%)" \
        in text
    counts = service.counts()
    assert counts[("webhook", "sent")] >= 4


def test_telecare_report_prints_the_figures_and_draws_them(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from telecare.app.cli import main

    clock = Clock()
    service, _, _, _ = three(tmp_path, clock)
    record(service, an_alert("high"))
    service.step()
    clock.now += 30
    service.acknowledge("h001:inactivity:1", "daughter")
    picture = tmp_path / "report.png"
    result = CliRunner().invoke(main, ["report", "--config", str(tmp_path / "config"),
                                       "--data", str(tmp_path / "data"), "--plot",
                                       str(picture)])
    assert result.exit_code == 0, result.output
    high = next(line for line in result.output.splitlines() if line.startswith("high"))
    assert high.split()[1:2] == ["1"] and "30" in high.split()
    assert picture.stat().st_size > 10_000


def test_a_notice_that_cannot_be_delivered_is_reported_to_the_technical_team(
        tmp_path: Path) -> None:
    clock = Clock()
    wrong, tech = WebhookReceiver(status=404), WebhookReceiver()
    service = circle(tmp_path, [{"name": "Asha", "webhook": wrong.url},
                                {"name": "Installer", "role": "technical",
                                 "webhook": tech.url}], None, clock)
    record(service, an_alert())
    service.step()
    service.step()
    (told,) = tech.alerts()
    assert told["rule"] == "notification_failed" and told["severity"] == "low"
    assert told["message"].startswith("Could not reach Asha by webhook about the inactivity "
                                      "alert at home h001: webhook answered HTTP 404.")
    assert told["evidence"]["alerts"] == ["h001:inactivity:1"]


def test_an_alert_below_the_plans_escalation_severity_is_told_once_not_chased(
        tmp_path: Path) -> None:
    clock = Clock()
    service, daughter, neighbour, responder = three(tmp_path, clock)
    record(service, an_alert("low", "unusual_day"))
    service.step()
    for _ in range(6):
        clock.now += 10 * MIN
        service.step()
    for r in (daughter, neighbour, responder):
        assert heard(r) == [("h001:unusual_day:1", "alert")]


def test_an_mqtt_contact_without_a_broker_is_a_reported_failure_not_silence(
        tmp_path: Path) -> None:
    from alerts.notifiers import MqttNotifier

    config = load_config(write_home(tmp_path / "config",
                                    contacts=[{"name": "hub", "mqtt": "hub/h001"}]))
    service = AlertService(connect_alert_store(tmp_path / "data"), config, [MqttNotifier(None)],
                           clock=Clock())
    record(service, an_alert())
    service.step()
    (d,) = service.deliveries()
    assert (d.channel, d.state, d.last_error) == \
        ("mqtt", "failed", "no MQTT broker configured for notices (--mqtt)")


def test_a_hold_delays_the_chain_and_runs_out_by_itself(tmp_path: Path) -> None:
    """'Give me 20 minutes': nobody else is told while the hold lasts; when it runs out with
    nobody acknowledging, the chain goes on by itself (no forgotten acknowledgement)."""
    clock = Clock()
    service, daughter, neighbour, responder = three(tmp_path, clock)
    record(service, an_alert())
    service.step()
    assert heard(daughter) == [("h001:inactivity:1", "alert")]
    clock.now += 2 * MIN
    assert service.hold("h001:inactivity:1", "daughter", 20)
    for _ in range(21):  # 10 minutes would have told the neighbour; the hold says wait
        clock.now += 1 * MIN
        service.step()
        if clock.now < utc("2026-01-05 14:22").timestamp():
            assert heard(neighbour) == [], clock()
    assert heard(neighbour) == [("h001:inactivity:1", "alert")]  # at 14:22, it ran out
    story = service.story("h001:inactivity:1")
    assert [h[0] for h in story["holds"]] == ["daughter"]  # type: ignore[union-attr]
    assert story["escalation"][0] == "open"  # type: ignore[index]
    # A hold on an acknowledged alert holds nothing.
    service.acknowledge("h001:inactivity:1", "neighbour")
    assert not service.hold("h001:inactivity:1", "daughter", 20)
