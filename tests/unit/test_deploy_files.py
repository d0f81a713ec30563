"""The distributed deployment's files hold together (no Docker engine runs here, so what can
be checked without one is checked): every telecare command in the compose file is one the CLI
takes; no two workers share a volume; every file it mounts exists; Prometheus scrapes every
worker that serves /metrics; the dashboards ask only for metrics the workers export and for
data sources that are provisioned."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from telecare.app.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "distributed"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text()))


def telecare_services() -> dict[str, list[str]]:
    return {name: shlex.split(s["command"]) for name, s in compose()["services"].items()
            if s.get("image") == "telecare:latest"}


def test_every_telecare_command_in_the_compose_file_is_one_the_cli_takes() -> None:
    services = telecare_services()
    assert {"ingest-0", "ingest-1", "detect-0", "detect-1", "alerts-0", "alerts-1",
            "forward-0", "console"} <= set(services)
    for name, argv in services.items():
        assert argv[0] == "telecare", name
        command = main.commands[argv[1]]  # type: ignore[attr-defined]
        command.make_context(argv[1], argv[2:])  # raises on an unknown or malformed option


def test_no_two_workers_share_a_volume_so_each_could_be_on_a_host_of_its_own() -> None:
    seen: dict[str, str] = {}
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(("/", ".")):
                continue  # a read-only file or folder from the host
            assert source not in seen, f"{name} and {seen[source]} share {source}"
            seen[source] = name
    assert set(seen) == set(compose()["volumes"])


def test_every_file_the_compose_file_mounts_from_the_repository_exists() -> None:
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), source


def test_prometheus_scrapes_every_worker_that_serves_metrics() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"]
               for t in group["targets"]}
    serving = {f"{name}:{argv[argv.index('--metrics-port') + 1]}"
               for name, argv in telecare_services().items() if "--metrics-port" in argv}
    assert targets == serving


def test_the_dashboards_ask_for_exported_metrics_and_provisioned_sources() -> None:
    ops = (Path(__file__).resolve().parents[2] / "telecare" / "app" / "ops.py").read_text()
    gauges = set(re.findall(r'GaugeMetricFamily\(\s*"(telecare_[a-z_]+)"', ops))
    counters = set(re.findall(r'CounterMetricFamily\(\s*"(telecare_[a-z_]+)"', ops))
    counters |= {f"telecare_ingest_{n}" for n in re.findall(r'\("([a-z_]+)", "', ops)}
    exported = gauges | {f"{c}_total" for c in counters}
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text())
    uids = {s["uid"] for s in sources["datasources"]}
    dashboards = [json.loads(p.read_text())
                  for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")]
    assert len({d["uid"] for d in dashboards}) == len(dashboards) >= 2
    asked = set()
    for dashboard in dashboards:
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids
            for target in panel["targets"]:
                asked |= set(re.findall(r"telecare_[a-z_]+", target.get("expr", "")))
    assert asked and asked <= exported, asked - exported
