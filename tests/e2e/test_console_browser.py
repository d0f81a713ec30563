"""The console in a real browser: Debian's Chromium driven by Playwright, `telecare run
--console-port` on a real Mosquitto, a pendant press published over MQTT.

Two operators are logged in at once: the press appears in both queues within a second; the
first acknowledges, the second's page shows who took it within a second, and the next person
in the home's escalation chain is never told. A family member sees only their own home. At a
phone's width nothing runs off the side; axe-core finds no serious or critical violation."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import Mosquitto, WebhookReceiver, _free_port
from tests.e2e.test_run_end_to_end import TELECARE, Service, stop

ACK_WITHIN_S = 4  # the chain's next person is told if nobody takes it in this long


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is not installed: run .ci/run (it installs it)",
                    pytrace=False)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), headless=True,
                              args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


WATCH = """sel => {
  window.__seen = null;
  const look = () => { if (window.__seen === null && document.querySelector(sel))
                         window.__seen = Date.now(); };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true,
                                                     attributes: true});
  look();
}"""


def _watch(page: Page, selector: str) -> None:
    """Have the page note the moment (its wall clock) `selector` first matches: Playwright's
    own waiting polls on animation frames, which a browser slows for pages in the
    background, so its return time is not when the page changed."""
    page.evaluate(WATCH, selector)


def _seen_after(page: Page, selector: str, since: float) -> float:
    page.wait_for_selector(selector, timeout=5000)
    return float(page.evaluate("() => window.__seen")) / 1000 - since


def _press(broker: Mosquitto, home: str) -> float:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", int(broker.url.rsplit(":", 1)[1]))
    client.loop_start()
    payload = json.dumps({"ts": datetime.now(UTC).isoformat(), "value": 1})
    sent = time.time()
    client.publish(f"telecare/v1/{home}/pendant/button", payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()
    return sent


def _login(browser: Browser, base: str, name: str, **context: Any) -> Page:
    page = browser.new_context(**context).new_page()
    page.goto(f"{base}/login")
    page.fill("#name", name)
    page.fill("#password", f"pw-{name}")
    page.click("button[type=submit]")
    page.wait_for_selector("#queue")
    page.wait_for_function("() => window.htmx !== undefined")
    return page


def test_two_operators_see_a_press_within_a_second_and_one_acknowledgement_stops_the_chain(
        browser: Browser, mosquitto: Mosquitto, webhook: WebhookReceiver,
        tmp_path: Path) -> None:
    config, data = tmp_path / "config", tmp_path / "data"
    (config / "homes").mkdir(parents=True)
    nxt = WebhookReceiver()  # the second person in each home's chain
    homes = {"cons1": "Ama", "cons2": "Kofi"}
    for home, first in homes.items():
        (config / "homes" / f"{home}.yaml").write_text(yaml.safe_dump({
            "home": home, "timezone": "Europe/London",
            "devices": [{"id": "pendant", "kind": "button", "role": "pendant"}],
            "contacts": [{"name": first, "webhook": webhook.url},
                         {"name": "Next", "webhook": nxt.url}],
            "escalation": {"ack_within": f"{ACK_WITHIN_S}s"}}))
    env = dict(os.environ)
    for name, role, its in (("ada", "operator", ""), ("bo", "operator", ""),
                            ("fam", "family", "cons2")):
        env[f"PW_{name}"] = f"pw-{name}"
        subprocess.run([TELECARE, "user", "add", name, "--role", role, "--homes", its,
                        "--config", str(config), "--data", str(data),
                        "--password-env", f"PW_{name}"], check=True, env=env,
                       capture_output=True)
    port = _free_port()
    service = Service("--config", str(config), "--data", str(data), "--mqtt", mosquitto.url,
                      "--console-port", str(port))
    base = f"http://127.0.0.1:{port}"
    try:
        assert service.wait_log("subscribed to telecare/v1/#"), "".join(service.lines)
        assert service.wait_log("console on"), "".join(service.lines)
        a = _login(browser, base, "ada")
        b = _login(browser, base, "bo")
        family = _login(browser, base, "fam")
        selector = 'li.alert[data-alert^="cons1:pendant"]'
        for page in (a, b):
            _watch(page, selector)
        sent = _press(mosquitto, "cons1")
        seen_a, seen_b = _seen_after(a, selector, sent), _seen_after(b, selector, sent)
        assert seen_a < 1.0 and seen_b < 1.0, (seen_a, seen_b)
        assert "Critical" in a.inner_text(selector)
        taken = f'{selector}[data-taken="yes"]'
        _watch(b, taken)
        clicked = time.time()
        a.click(f"{selector} button.ack")
        shown = _seen_after(b, taken, clicked)
        assert shown < 1.0, shown
        print(f"press shown after {seen_a:.3f} s and {seen_b:.3f} s; the acknowledgement "
              f"after {shown:.3f} s")
        assert "Taken by ada" in b.inner_text(selector)
        # The family member of the other home sees nothing of it; then their own home's press.
        _press(mosquitto, "cons2")
        family.wait_for_selector('li.alert[data-alert^="cons2:pendant"]', timeout=5000)
        assert family.query_selector(selector) is None
        # Nobody takes the second press: its chain moves on to the next person after
        # ACK_WITHIN_S. The first press came earlier, so its chain would have moved first:
        # once the next person hears of the second, they would have heard of the first.
        assert nxt.wait_for(lambda got: any(g["home"] == "cons2" for g in got),
                            ACK_WITHIN_S + 10), nxt.alerts()
        assert [g for g in nxt.alerts() if g["home"] == "cons1"] == []
        assert any(g["home"] == "cons1" for g in webhook.alerts())  # the first was told
    finally:
        stop(service)
        nxt.close()


def test_the_queue_at_a_phones_width_and_for_a_screen_reader(
        browser: Browser, tmp_path: Path) -> None:
    from axe_playwright_python.sync_playwright import Axe

    from alerts.store import AlertStore
    from detect.rules import load_config
    from telecare.alert import Alert
    from telecare.app.console.users import Users
    from telecare.app.console.web import Console, serve
    from telecare.db import Transaction, connect
    from tests.builders import write_home

    write_home(tmp_path / "config", "phone1")
    config = load_config(tmp_path / "config")
    data = tmp_path / "data"
    store = AlertStore(connect(data))
    raised = datetime.now(UTC)
    with Transaction(store.conn) as c:
        store.record_in(c, [Alert(f"phone1:{rule}:1", "phone1", rule, sev, raised,  # type: ignore[arg-type]
                                  "firing", f"A long message about {rule} at the home, in "
                                  "plain words a carer understands, since 07:00.")
                            for rule, sev in (("pendant", "critical"), ("inactivity", "high"),
                                              ("cold_home", "medium"))])
    Users(connect(data)).add("phone", "operator", [], "pw-phone")
    import threading

    stop_console = threading.Event()
    port = _free_port()
    thread = threading.Thread(target=serve, args=(Console(config, data), "127.0.0.1", port,
                                                  stop_console), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    page = None
    while page is None:
        try:
            page = _login(browser, base, "phone", viewport={"width": 375, "height": 740})
        except Exception:
            assert time.monotonic() < deadline, "the console did not start"
            time.sleep(0.1)
    try:
        page.screenshot(path=str(tmp_path / "queue-375px.png"), full_page=True)
        assert (tmp_path / "queue-375px.png").stat().st_size > 10_000
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= 375, f"the page is {overflow} px wide at a 375 px screen"
        assert page.get_attribute("#queue", "aria-live") == "polite"
        for path in ("/report", "/audit", "/homes/phone1", "/"):  # the queue last: keys
            page.goto(f"{base}{path}")
            results = Axe().run(page)
            bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]])
                   for v in results.response["violations"]
                   if v["impact"] in ("serious", "critical")]
            assert bad == [], (path, bad)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 375, (path, width)
        # By keyboard alone: Tab reaches the first alert's Acknowledge button.
        for _ in range(20):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.classList.contains('ack')"):
                break
        else:
            pytest.fail("Tab never reached an Acknowledge button")
    finally:
        stop_console.set()
        thread.join(10)
