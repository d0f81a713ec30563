"""The console's pages, forms and API through FastAPI's test client (the browser tests are in
tests/e2e/test_console_browser.py): logins, CSRF, who sees which home, the same alerts service
as the CLI, the API's 401 and 404."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from alerts.store import AlertStore
from telecare.alert import Alert
from telecare.app.console.users import Users
from telecare.app.console.web import Console, make_app
from telecare.db import Transaction, connect
from tests.builders import config_for, write_home

RAISED = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def alert(home: str, rule: str, severity: str, **evidence: str) -> Alert:
    return Alert(f"{home}:{rule}:1", home, rule, severity, RAISED, "firing",  # type: ignore[arg-type]
                 f"{rule} at {home}", dict(evidence))


@pytest.fixture
def console(tmp_path: Path) -> Console:
    config = config_for(tmp_path, "h001", contacts=[
        {"name": "Asha", "webhook": "http://127.0.0.1:9/a"},
        {"name": "Ben", "webhook": "http://127.0.0.1:9/b"}],
        escalation={"ack_within": "10m"})
    write_home(tmp_path / "config", "h002")
    from detect.rules import load_config

    config = load_config(tmp_path / "config")
    data = tmp_path / "data"
    store = AlertStore(connect(data))
    with Transaction(store.conn) as c:
        store.record_in(c, [alert("h001", "pendant", "critical"),
                            alert("h001", "cold_home", "medium"),
                            alert("h002", "inactivity", "high"),
                            alert("h001", "device_offline", "low", audience="technical")])
    users = Users(connect(data))
    users.add("olu", "operator", [], "pw-olu")
    users.add("fay", "family", ["h001"], "pw-fay")
    users.add("tec", "technical", [], "pw-tec")
    return Console(config, data)


def login(client: TestClient, name: str, password: str) -> str:
    page = client.get("/login").text
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token
    client.post("/login", data={"name": name, "password": password, "token": token.group(1)})
    home = client.get("/")
    assert home.status_code == 200, home.text
    found = re.search(r'name="token" value="([^"]+)"', home.text)
    assert found
    return found.group(1)


def test_pages_need_a_login_and_a_wrong_password_is_refused(console: Console) -> None:
    client = TestClient(make_app(console))
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/login"
    page = client.get("/login").text
    token = re.search(r'name="token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    wrong = client.post("/login", data={"name": "olu", "password": "nope", "token": token},
                        follow_redirects=False)
    assert wrong.headers["location"] == "/login?failed=1"
    cookie = client.cookies.get("telecare_session")
    assert cookie is not None


def test_the_queue_is_by_severity_in_words_and_acknowledging_goes_through_the_service(
        console: Console) -> None:
    client = TestClient(make_app(console))
    token = login(client, "olu", "pw-olu")
    page = client.get("/").text
    order = [m for m in re.findall(r'data-alert="([^"]+)"', page)]
    assert order == ["h001:pendant:1", "h002:inactivity:1", "h001:cold_home:1",
                     "h001:device_offline:1"]
    assert ">Critical<" in page and ">High<" in page  # words, not colour alone
    # A form without its token is refused; with it, the alert is acknowledged by this person.
    assert client.post("/alerts/h001:pendant:1/ack", data={}).status_code == 403
    done = client.post("/alerts/h001:pendant:1/ack", data={"token": token},
                       follow_redirects=False)
    assert done.status_code == 303
    story = console.service.story("h001:pendant:1")
    assert [a[0] for a in story["acks"]] == ["olu"]  # type: ignore[union-attr]
    assert "Taken by olu" in client.get("/").text
    assert console.users.audit_log()[0][1:4] == ("olu", "acknowledge", "h001:pendant:1")


def test_family_see_only_their_home_and_never_device_faults(console: Console) -> None:
    client = TestClient(make_app(console))
    token = login(client, "fay", "pw-fay")
    page = client.get("/").text
    assert set(re.findall(r'data-alert="([^"]+)"', page)) == {"h001:pendant:1",
                                                              "h001:cold_home:1"}
    # Another home's alert, or a fault for the technical team: as if it did not exist.
    assert client.post("/alerts/h002:inactivity:1/ack", data={"token": token}).status_code \
        == 404
    tech = TestClient(make_app(console))
    login(tech, "tec", "pw-tec")
    assert re.findall(r'data-alert="([^"]+)"', tech.get("/").text) == ["h001:device_offline:1"]


def test_the_api_takes_bearer_tokens_401_without_404_for_another_homes_alert(
        console: Console) -> None:
    token = console.users.add("fay-api", "family", ["h001"], None, with_token=True)
    client = TestClient(make_app(console))
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.get("/api/v1/alerts", headers={"Authorization": "Bearer wrong"}
                      ).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    got = client.get("/api/v1/alerts?status=firing", headers=auth).json()
    assert {a["id"] for a in got} == {"h001:pendant:1", "h001:cold_home:1"}
    assert set(got[0]) >= {"id", "home", "rule", "severity", "raised_at", "status", "message",
                           "evidence"}
    assert client.post("/api/v1/alerts/h002:inactivity:1/ack", headers=auth,
                       json={"by": "Fay"}).status_code == 404
    ok = client.post("/api/v1/alerts/h001:cold_home:1/ack", headers=auth,
                     json={"by": "Fay", "note": "on my way"})
    assert ok.json() == {"id": "h001:cold_home:1", "acknowledged_by": "Fay"}
    acks = console.service.story("h001:cold_home:1")["acks"]
    assert [(a[0], a[2]) for a in acks] == [("Fay", "on my way")]  # type: ignore[union-attr]


def test_a_hold_from_the_console_pauses_the_chain_and_says_until_when(
        console: Console) -> None:
    console.service.route()  # the escalation rows, as the running alerts stage makes them
    client = TestClient(make_app(console))
    token = login(client, "olu", "pw-olu")
    page = client.get("/").text
    assert 'action="/alerts/h001:pendant:1/hold"' in page
    client.post("/alerts/h001:pendant:1/hold", data={"token": token, "minutes": "15"})
    story = console.service.story("h001:pendant:1")
    assert [h[0] for h in story["holds"]] == ["olu"]  # type: ignore[union-attr]
    assert story["escalation"][0] == "held"  # type: ignore[index]
    assert "Held by olu until" in client.get("/").text
    too_long = client.post("/alerts/h001:pendant:1/hold", data={"token": token,
                                                                "minutes": "100000"})
    assert too_long.status_code == 422


def test_response_times_and_the_audit_log_pages(console: Console) -> None:
    client = TestClient(make_app(console))
    token = login(client, "olu", "pw-olu")
    client.post("/alerts/h001:pendant:1/ack", data={"token": token})
    report = client.get("/report").text
    assert "Response times" in report and ">h001<" in report and ">h002<" in report
    assert "97.5% of calls answered within 60 s" in report
    audit = client.get("/audit").text
    assert "acknowledge" in audit and "h001:pendant:1" in audit and ">olu<" in audit
    family = TestClient(make_app(console))
    login(family, "fay", "pw-fay")
    assert family.get("/audit").status_code == 404  # not for family members
    theirs = family.get("/report").text
    assert ">h001<" in theirs and ">h002<" not in theirs


def test_every_alert_notice_carries_a_signed_link_that_acknowledges_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from alerts.service import AlertService
    from detect.rules import load_config
    from telecare.links import read_ack_token
    from tests.conftest import WebhookReceiver

    monkeypatch.setenv("TELECARE_CONSOLE_URL", "https://console.example.org/")
    monkeypatch.setenv("TELECARE_CONSOLE_SECRET", "a-test-key-of-some-length")
    asha = WebhookReceiver()
    try:
        config = load_config(write_home(tmp_path / "config", "h001", contacts=[
            {"name": "Asha", "webhook": asha.url}]))
        data = tmp_path / "data"
        service = AlertService(connect(data), config)
        with Transaction(service.conn) as c:
            service.store.record_in(c, [alert("h001", "inactivity", "high")])
        service.step()
        assert asha.wait_for(lambda got: len(got) == 1, 10)
        link = asha.posts[0][2]["X-Telecare-Ack-URL"]
        assert link.startswith("https://console.example.org/ack/")
        assert asha.posts[0][1]["id"] == "h001:inactivity:1"  # the body: the alert object
    finally:
        asha.close()
    path = link.removeprefix("https://console.example.org")
    client = TestClient(make_app(Console(config, data)))
    page = client.get(path)
    assert page.status_code == 200 and "I'm dealing with it (as Asha)" in page.text
    assert console_acks(data, "h001:inactivity:1") == []  # opening the link changes nothing
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    done = client.post(path, data={"token": token})
    assert "Acknowledged as Asha" in done.text
    assert console_acks(data, "h001:inactivity:1") == ["Asha"]
    again = client.post(path, data={"token": token})
    assert again.status_code == 410 and "has been used" in again.text
    forged = client.get(path[:-3] + "xyz")
    assert forged.status_code == 404
    secret = "a-test-key-of-some-length"
    assert read_ack_token(secret, path.rsplit("/", 1)[1], timedelta(seconds=-1)) == "expired"


def console_acks(data: Path, alert_id: str) -> list[str]:
    rows = connect(data).execute("SELECT by_whom FROM acknowledgements WHERE alert_id = ?",
                                 (alert_id,)).fetchall()
    return [r[0] for r in rows]


def test_a_homes_page_shows_its_plan_day_devices_and_alerts(console: Console) -> None:
    from ingest.store import ReadingStore
    from telecare.reading import Reading

    store = ReadingStore(connect(console.data_dir))
    t = datetime(2026, 11, 28, 9, 5, tzinfo=UTC)
    store.add([Reading("h001", "kitchen-pir", "motion", 1.0, t),
               Reading("h001", "kitchen-pir", "motion", 1.0, t.replace(minute=40)),
               Reading("h001", "pendant", "button", 0.0, t, battery=64.0),
               Reading("h001", "lounge-temp", "temperature", 19.5, t)], t)
    client = TestClient(make_app(console))
    login(client, "fay", "pw-fay")
    page = client.get("/homes/h001").text
    assert "Asha (family)" in page and "Ben (family)" in page  # who is told, in order
    assert "If nobody acknowledges within 10 min" in page
    assert re.search(r'<th scope="row">kitchen</th>(<td class="">\s*</td>)*'
                     r'<td class="busy">2</td>', page)  # two readings in the 09:00 hour
    assert "lounge" not in re.findall(r'<th scope="row">(\w+)</th><td', page)  # not activity
    assert "64%" in page and "Sat 28 Nov 09:05" in page  # battery and last report
    assert "pendant, Sat 28 Nov 07:00: firing" in page
    assert "device offline" not in page  # a fault for the technical team, not the family
    assert client.get("/homes/h002").status_code == 404


def test_the_queue_filters_by_who_has_it_and_takes_useful_too(console: Console) -> None:
    client = TestClient(make_app(console))
    token = login(client, "olu", "pw-olu")
    client.post("/alerts/h001:pendant:1/ack", data={"token": token})
    ids = lambda q: re.findall(r'data-alert="([^"]+)"', client.get(q).text)  # noqa: E731
    assert ids("/queue?taken=olu") == ["h001:pendant:1"]
    assert "h001:pendant:1" not in ids("/queue?taken=no")
    assert ids("/?taken=yes&home=h001") == ["h001:pendant:1"]
    client.post("/alerts/h001:cold_home:1/feedback", data={"token": token,
                                                           "verdict": "useful"})
    verdicts = console.service.story("h001:cold_home:1")["feedback"]
    assert [(v[0], v[1]) for v in verdicts] == [("olu", "useful")]  # type: ignore[union-attr]
