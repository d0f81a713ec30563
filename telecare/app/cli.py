"""The `telecare` command (contract section 6)."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections import Counter
from datetime import date, time, timedelta
from pathlib import Path
from time import monotonic as _monotonic
from typing import Any

import click
import yaml

from detect.backtest import read_readings
from detect.rules import default_rules, load_config
from telecare.app.broker import EmbeddedBroker, resolve_broker
from telecare.config import Config, ConfigError
from telecare.db import alert_store_url, connect, connect_alert_store, default_data_dir
from telecare.mqtt import DEFAULT_URL, BrokerUrl, Protocol, probe_protocol
from telecare.reading import BadReading, parse_jsonl_line, parse_ts
from telecare.stage import EXIT_STAGE_FAILED

log = logging.getLogger("telecare")


def _setup_logging(level: str, fmt: str = "text") -> None:
    from telecare.app.ops import setup_logging

    setup_logging(level, fmt)


def _load(config_dir: str) -> Config:
    try:
        return load_config(config_dir)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


config_option = click.option("--config", "config_dir", required=True,
                             type=click.Path(file_okay=False), help="configuration directory")
data_option = click.option("--data", "data_dir", envvar="TELECARE_DATA_DIR", default=None,
                           type=click.Path(file_okay=False),
                           help="where state lives (default: one folder per config directory)")
mqtt_option = click.option("--mqtt", "mqtt_url", envvar="TELECARE_MQTT_URL", default=None,
                           help=f"broker URL (default {DEFAULT_URL}; an embedded broker is "
                                "started there if none answers)")
protocol_option = click.option("--mqtt-protocol", type=click.Choice(["auto", "5", "3.1.1"]),
                               default="auto", envvar="TELECARE_MQTT_PROTOCOL",
                               show_default=True)


def _take_db(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """`--db URL`: checked here, then the place every part of this process (and of the
    processes it starts) finds the alert store, as TELECARE_DB_URL."""
    if not value:
        return
    from telecare.pgdb import DbUrlError, check_url

    try:
        check_url(value)
    except DbUrlError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    os.environ["TELECARE_DB_URL"] = value


db_option = click.option("--db", "db_url", envvar="TELECARE_DB_URL", default=None,
                         expose_value=False, callback=_take_db, is_eager=True,
                         help="postgresql://host:port/dbname: the alert store on PostgreSQL, "
                              "shared by workers on several machines (user and password from "
                              "TELECARE_DB_USER and TELECARE_DB_PASSWORD; default: the local "
                              "store)")


def _alert_conn(data: Path) -> Any:
    """The alert store for a one-off command: PostgreSQL (`--db`) or the local store; an
    unreachable server is a clear message, not a traceback."""
    try:
        return connect_alert_store(data)
    except Exception as exc:
        if alert_store_url() is None:
            raise
        raise click.ClickException(f"cannot reach the alert store (PostgreSQL): "
                                   f"{str(exc).splitlines()[0]}") from None


def _wait_for_alert_store(stop: threading.Event) -> bool:
    """A service started before its PostgreSQL (a whole deployment coming up at once) waits
    for it, saying so, instead of failing; False if told to stop meanwhile."""
    url = alert_store_url()
    if url is None:
        return True
    from telecare.pgdb import PgConnection

    said = 0.0
    while not stop.is_set():
        try:
            PgConnection(url, connect_timeout_s=5).close()
            return True
        except Exception as exc:
            if _monotonic() - said > 30:
                log.warning("waiting for the alert store (PostgreSQL): %s",
                            str(exc).splitlines()[0])
                said = _monotonic()
            stop.wait(2.0)
    return False


log_option = click.option("--log-level", default="info", envvar="TELECARE_LOG_LEVEL",
                          type=click.Choice(["debug", "info", "warning", "error"]))


@click.group()
@click.version_option(package_name="telecare")
def main() -> None:
    """Telecare pipeline: sensor readings in, alerts to the people who care out."""


@main.command()
@config_option
def check(config_dir: str) -> None:
    """Check a configuration directory as start-up does, starting nothing: every problem
    with its file and place, then the warnings."""
    try:
        config = load_config(config_dir)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for warning in config.warnings:
        click.echo(f"warning: {warning}")
    click.echo(f"ok: {len(config.homes)} home(s), {len(config.warnings)} warning(s)")


def _plain(value: Any) -> Any:
    """A setting as a plan would write it: durations as '1h30m', times as '07:00'."""
    if isinstance(value, timedelta):
        seconds, out = int(value.total_seconds()), ""
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            if seconds >= size:
                out += f"{seconds // size}{unit}"
                seconds %= size
        return out or "0s"
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@main.command()
def rules() -> None:
    """Every rule and its default settings, as a rules.yaml or a home's `rules:` would
    override them (the defaults live with each rule, in detect/rules/)."""
    defaults = default_rules()
    click.echo(yaml.safe_dump({name: _plain(defaults[name].model_dump(by_alias=True))
                               for name in defaults}, sort_keys=False), nl=False)


@main.command()
@config_option
@click.option("--home", "only_home", default=None, help="one home only")
@click.option("--json", "as_json", is_flag=True, help="one JSON object per home")
def coverage(config_dir: str, only_home: str | None, as_json: bool) -> None:
    """Which crises each home's sensors can see, and which they cannot (and why)."""
    from detect.coverage import coverage as sights
    from detect.coverage import coverage_line

    config = _load(config_dir)
    if only_home is not None and not config.known(only_home):
        raise click.ClickException(f"no home {only_home!r} in {config_dir}")
    for name in [only_home] if only_home else sorted(config.homes):
        home = config.homes[name]
        if as_json:
            click.echo(json.dumps({"home": name, "crises": [
                {"crisis": s.crisis, "seen": s.seen, "how": s.how} for s in sights(home)]}))
        else:
            click.echo(coverage_line(home))


@main.command()
@click.option("--readings", "readings_file", required=True, type=click.Path(dir_okay=False))
@config_option
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False))
def backtest(readings_file: str, config_dir: str, out_file: str) -> None:
    """The live detection over recorded readings, in event time; one alert per line."""
    from detect.backtest import run_backtest

    config = _load(config_dir)
    with open(readings_file, encoding="utf-8") as f:
        result = run_backtest(f, config)
    with open(out_file, "w", encoding="utf-8") as f:
        for alert in result.alerts:
            f.write(alert.to_json() + "\n")
    bad = sum(result.bad_lines.values())
    click.echo(f"{result.readings} readings ({result.duplicates} duplicates, {bad} bad lines"
               f"{': ' + json.dumps(dict(result.bad_lines)) if bad else ''}); "
               f"{len(result.alerts)} alerts -> {out_file}", err=True)


def _log_coverage(config: Config) -> None:
    """At start-up, what the homes' sensors cannot see: per home for a few homes, per
    crisis for many (the full list: `telecare coverage`)."""
    from detect.coverage import coverage, coverage_line

    homes = [config.homes[name] for name in sorted(config.homes)]
    if len(homes) <= 20:
        for home in homes:
            log.info("coverage: %s", coverage_line(home))
        return
    blind: dict[str, list[str]] = {}
    for home in homes:
        for sight in coverage(home):
            if sight.seen == "no":
                blind.setdefault(sight.crisis, []).append(home.home)
    for crisis, names in sorted(blind.items()):
        log.info("coverage: %d of %d homes cannot see %s (e.g. %s); see telecare coverage",
                 len(names), len(homes), crisis, ", ".join(names[:3]))


def _serve(config_dir: str, data_dir: str | None, mqtt_url: str | None, protocol: str,
           stages: tuple[str, ...], log_level: str, share_group: str | None = None,
           influx_url: str | None = None, metrics_port: int | None = None,
           log_format: str = "text", partition: str = "0/1", worker: str = "",
           retention_days: int = 90, processes: bool = True,
           console_port: int | None = None, log_url: str | None = None) -> None:
    from ingest.influx import InfluxTarget
    from telecare.app.pipeline import Pipeline
    from telecare.app.processes import ChildArgs, ProcessPipeline

    _setup_logging(log_level, log_format)
    config = _load(config_dir)
    for warning in config.warnings:
        log.warning("configuration: %s", warning)
    _log_coverage(config)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    url: BrokerUrl | None = None
    embedded: EmbeddedBroker | None = None
    chosen: Protocol = "5"
    if "ingest" in stages:
        url, embedded, chosen = resolve_broker(mqtt_url, protocol)
    elif mqtt_url:
        url = BrokerUrl.parse(mqtt_url)  # the alerts stage alone publishes MQTT notices
        chosen = probe_protocol(url) if protocol == "auto" else protocol  # type: ignore[assignment]
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        index, count = (int(x) for x in partition.split("/"))
        assert 0 <= index < count
    except (ValueError, AssertionError):
        raise click.BadParameter(f"{partition!r} is not I/N with 0 <= I < N",
                                 param_hint="--partition") from None
    if log_url is not None:
        from telecare.natslog import LogUrl

        try:
            LogUrl.parse(log_url)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--log") from None
        if influx_url and "ingest" in stages:
            raise click.UsageError("with --log, readings reach InfluxDB from the log: run "
                                   "`telecare forward --log ... --influx ...` (not ingest "
                                   "--influx)")
    if "forward" in stages and not (log_url and influx_url):
        raise click.UsageError("telecare forward follows the reading log on NATS (--log or "
                               "TELECARE_LOG_URL) into InfluxDB (--influx or "
                               "TELECARE_INFLUX_URL): it needs both")
    pipeline: Pipeline | ProcessPipeline
    if processes and set(stages) == {"ingest", "detect", "alerts"}:
        # Ingest and detection in processes of their own: one Python process runs one
        # thread at a time, and they starved each other through a backlog.
        pipeline = ProcessPipeline(config, ChildArgs(
            config_dir, str(data), url, chosen, share_group, influx_url, (index, count),
            worker, retention_days, log_level, log_format, log_url))
    else:
        pipeline = Pipeline(
            config, data, url, chosen, stages, share_group=share_group,
            influx=InfluxTarget.from_env(influx_url)
            if "ingest" in stages or "forward" in stages else None,
            partition=(index, count), worker=worker, retention=timedelta(days=retention_days),
            log_url=log_url)
    if not _wait_for_alert_store(stop):
        return
    pipeline.start()
    ops = None
    if metrics_port is not None:
        from telecare.app.ops import serve_ops

        # Loopback unless told otherwise: in a container, Prometheus scrapes from another
        # one (TELECARE_METRICS_HOST=0.0.0.0 on the deployment's private network).
        host = os.environ.get("TELECARE_METRICS_HOST") or "127.0.0.1"
        ops = serve_ops(pipeline, metrics_port, host)
        log.info("metrics on http://%s:%d/metrics, health on /healthz", host, metrics_port)
    if console_port is not None:
        _start_console(config, data, console_port, stop)
    if not pipeline.wait_connected(10.0):
        log.warning("the broker has not granted the subscription yet; still trying")
    log.info("running %s for %d homes; state in %s", "+".join(stages), len(config.homes), data)
    fatal: str | None = None
    clean = False
    try:
        while not stop.wait(1.0):
            fatal = pipeline.fatal()
            if fatal is not None:
                log.critical("cannot go on: %s; stopping (exit status %d) to be restarted",
                             fatal, EXIT_STAGE_FAILED)
                break
    finally:
        clean = pipeline.stop()
        if ops is not None:
            ops.shutdown()
        if embedded is not None:
            embedded.stop()
    if fatal is not None:
        sys.exit(EXIT_STAGE_FAILED)
    if not clean:
        sys.exit(1)


def _serve_command(name: str, stages: tuple[str, ...], doc: str) -> None:
    @main.command(name=name, help=doc)
    @config_option
    @data_option
    @db_option
    @mqtt_option
    @protocol_option
    @log_option
    @click.option("--share-group", default=None, envvar="TELECARE_SHARE_GROUP",
                  help="MQTT v5 shared-subscription group, for several ingest workers")
    @click.option("--influx", "influx_url", default=None, envvar="TELECARE_INFLUX_URL",
                  help="InfluxDB URL to forward readings to (token, org, bucket from "
                       "TELECARE_INFLUX_TOKEN/ORG/BUCKET)")
    @click.option("--metrics-port", default=None, type=int, envvar="TELECARE_METRICS_PORT",
                  help="serve Prometheus /metrics and /healthz on this loopback port")
    @click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
                  envvar="TELECARE_LOG_FORMAT")
    @click.option("--partition", default="0/1", envvar="TELECARE_DETECT_PARTITION",
                  show_default=True,
                  help="I/N: this detection worker follows the homes hashed to I of N")
    @click.option("--worker-id", "worker", default="", envvar="TELECARE_WORKER_ID",
                  help="a stable name per ingest worker, when several share a subscription")
    @click.option("--retention-days", default=90, show_default=True, type=click.IntRange(1),
                  envvar="TELECARE_RETENTION_DAYS",
                  help="readings are pruned daily this many days after they arrived")
    @click.option("--console-port", default=None, type=int, envvar="TELECARE_CONSOLE_PORT",
                  help="serve the care team's web console on this port too")
    @click.option("--log", "log_url", default=None, envvar="TELECARE_LOG_URL",
                  help="nats://host:port[,host:port...][?replicas=3]: the reading log on NATS "
                       "JetStream, for workers on several machines (default: the local store)")
    @click.option("--single-process", is_flag=True, envvar="TELECARE_SINGLE_PROCESS",
                  help="run: every stage as a thread of one process (by default ingest and "
                       "detection each get a process of their own)")
    def command(config_dir: str, data_dir: str | None, mqtt_url: str | None,
                mqtt_protocol: str, log_level: str, share_group: str | None,
                influx_url: str | None, metrics_port: int | None, log_format: str,
                partition: str, worker: str, retention_days: int,
                console_port: int | None, single_process: bool, log_url: str | None) -> None:
        _serve(config_dir, data_dir, mqtt_url, mqtt_protocol, stages, log_level, share_group,
               influx_url, metrics_port, log_format, partition, worker, retention_days,
               processes=not single_process, console_port=console_port, log_url=log_url)


def _start_console(config: Config, data: Path, port: int, stop: threading.Event,
                   host: str = "127.0.0.1") -> threading.Thread:
    from telecare.app.console.web import Console, serve

    console = Console(config, data, secure_cookies=bool(os.environ.get("TELECARE_CONSOLE_TLS")))
    thread = threading.Thread(target=serve, args=(console, host, port, stop), name="console",
                              daemon=True)
    thread.start()
    log.info("console on http://%s:%d/", host, port)
    return thread


@main.command()
@config_option
@data_option
@db_option
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--host", default="127.0.0.1", show_default=True,
              help="where to listen (put it behind a TLS proxy before opening it wider)")
@log_option
def console(config_dir: str, data_dir: str | None, port: int, host: str,
            log_level: str) -> None:
    """The care team's web console alone: the live alert queue, acknowledge, close and
    feedback, and the JSON API; beside a running `telecare run` on the same data folder."""
    _setup_logging(log_level)
    config = _load(config_dir)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if _wait_for_alert_store(stop):
        _start_console(config, data, port, stop, host).join()


@main.group()
def user() -> None:
    """The console's people."""


@user.command(name="add")
@config_option
@data_option
@db_option
@click.argument("name")
@click.option("--role", required=True,
              type=click.Choice(["operator", "family", "neighbour", "technical", "admin"]))
@click.option("--homes", default="", help="H1,H2: the homes they see (family and neighbours "
                                          "must have some; none: every home)")
@click.option("--token", "with_token", is_flag=True, help="also make an API token (shown once)")
@click.option("--password-env", default=None,
              help="read the password from this environment variable instead of asking")
def user_add(config_dir: str, data_dir: str | None, name: str, role: str, homes: str,
             with_token: bool, password_env: str | None) -> None:
    """Add (or replace) a person who may use the console or its API."""
    from telecare.app.console.users import Users

    config = _load(config_dir)
    chosen = [h for h in homes.split(",") if h]
    unknown = [h for h in chosen if h not in config.homes]
    if unknown:
        raise click.BadParameter(f"no such home: {', '.join(unknown)}", param_hint="--homes")
    if password_env:
        password: str | None = os.environ.get(password_env) or None
        if password is None:
            raise click.BadParameter(f"{password_env} is not set", param_hint="--password-env")
    elif with_token and not sys.stdin.isatty():
        password = None
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    try:
        token = Users(_alert_conn(data)).add(name, role, chosen, password, with_token)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{name} ({role}) added" + (f"; API token (shown once): {token}" if token else ""))


_serve_command("run", ("ingest", "detect", "alerts"),
               "The live pipeline (ingest, detect, alerts) until SIGTERM, then a clean stop.")
_serve_command("ingest", ("ingest",), "Only the ingest stage: MQTT to the store.")
_serve_command("detect", ("detect",), "Only the detect stage: stored readings to alerts.")
_serve_command("alerts", ("alerts",), "Only the alerts stage: alerts to the people told.")
_serve_command("forward", ("forward",), "Only the forwarder, past one machine: the reading "
               "log on NATS (--log) into InfluxDB (--influx), a share of it per --partition.")


@main.command()
@config_option
@data_option
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False))
@click.option("--since", default=None, help="RFC 3339; readings at or after")
@click.option("--until", default=None, help="RFC 3339; readings before")
def export(config_dir: str, data_dir: str | None, out_file: str, since: str | None,
           until: str | None) -> None:
    """Every stored reading as JSON Lines (contract section 2)."""
    from ingest.store import ReadingStore

    _load(config_dir)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    try:
        low = parse_ts(since) if since else None
        high = parse_ts(until) if until else None
    except BadReading as exc:
        raise click.BadParameter(exc.detail) from None
    store = ReadingStore(connect(data))
    n = 0
    with open(out_file, "w", encoding="utf-8") as f:
        for reading in store.export(low, high):
            f.write(reading.to_jsonl() + "\n")
            n += 1
    click.echo(f"{n} readings -> {out_file}", err=True)


def _parse_scenario(text: str) -> tuple[str, int]:
    from simulators.scenarios import SCENARIOS

    kind, _, day = text.partition("@")
    if kind not in SCENARIOS:
        raise click.BadParameter(f"{kind!r} is not one of {', '.join(SCENARIOS)}")
    try:
        return kind, int(day or 1)
    except ValueError:
        raise click.BadParameter(f"{text!r}: the day after @ must be a number") from None


@main.command()
@click.option("--homes", default=1, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 3650))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--start", default="2026-01-05", show_default=True,
              help="first local date (YYYY-MM-DD)")
@click.option("--scenario", "scenarios", multiple=True, metavar="KIND@DAY",
              help="inject KIND on day DAY (0-based) in every home; repeatable")
@click.option("--rate", default=None, type=click.FloatRange(0, 1),
              help="chance per home-day of a random scenario (default 0.05, or 0 when "
                   "--scenario is given)")
@click.option("--kinds", default=None,
              help="comma-separated scenario kinds that --rate draws from (default: all)")
@click.option("--webhook", default=None, help="give every home a contact with this webhook")
@click.option("--layout", type=click.Choice(["mixed", "full", "partial", "minimal", "vitals"]),
              default="mixed", show_default=True,
              help="devices in each home; mixed draws a layout per home")
@click.option("--network", type=click.Choice(["realistic", "clean"]), default="realistic",
              show_default=True,
              help="realistic: some messages late, repeated or lost; clean: none")
def simulate(homes: int, days: int, seed: int, out_dir: str, start: str,
             scenarios: tuple[str, ...], rate: float | None, kinds: str | None,
             webhook: str | None, layout: str, network: str) -> None:
    """Write a scenario bundle: readings.jsonl, labels.jsonl and homes/*.yaml."""
    from simulators.bundle import simulate_bundle
    from simulators.network import Network
    from simulators.scenarios import SCENARIOS

    fixed = [_parse_scenario(s) for s in scenarios]
    chosen = tuple(_parse_scenario(k)[0] for k in kinds.split(",")) if kinds else SCENARIOS
    if rate is None:
        rate = 0.0 if fixed else 0.05
    summary = simulate_bundle(Path(out_dir), homes, days, seed, date.fromisoformat(start),
                              fixed, rate, chosen, webhook=webhook,
                              layout=None if layout == "mixed" else layout,
                              network=Network.clean() if network == "clean" else Network())
    click.echo(f"{summary.homes} homes x {summary.days} days: {summary.readings} readings, "
               f"labels {json.dumps(summary.labels)} -> {out_dir}", err=True)


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="print the figures as JSON")
@click.option("--false-alerts", "false_file", default=None, type=click.Path(dir_okay=False),
              help="write the false alerts (JSON Lines) here, to read them")
def evaluate(bundle: str, as_json: bool, false_file: str | None) -> None:
    """Backtest a labelled bundle and score it: recall and delay per scenario kind, false
    alerts per home-week by severity."""
    from detect.evaluate import evaluate as run_evaluation
    from detect.evaluate import format_table

    ev = run_evaluation(Path(bundle))
    if false_file:
        with open(false_file, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(a) + "\n" for a in ev.false_alerts)
    click.echo(json.dumps(ev.to_json_obj(), indent=2) if as_json else format_table(ev))


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--copies", default=3, show_default=True, type=click.IntRange(1, 50),
              help="copies of each home per crisis kind and layout view")
def inject(bundle: str, out_dir: str, seed: int, copies: int) -> None:
    """Copies of a recorded home, each with one labelled crisis injected, in three layout
    views, beside the home as recorded (the reference); `telecare evaluate` scores it."""
    from simulators.inject import inject as run_inject

    made = run_inject(Path(bundle), Path(out_dir), seed, copies)
    click.echo(", ".join(f"{kind} {n}" for kind, n in sorted(made.items())) +
               f" labels -> {out_dir}", err=True)


def _converted(homes: list[Any], out_dir: str) -> None:
    """Say what a recording's reader made of each home."""
    for home in homes:
        odd = f", {home.odd_intervals} intervals end before they start" \
            if home.odd_intervals else ""
        click.echo(f"{home.home}: {len(home.readings)} readings from {home.sensors} sensors"
                   f"{odd} -> {out_dir}", err=True)


@main.command(name="import-kasteren")
@click.argument("source", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def import_kasteren(source: str, out_dir: str) -> None:
    """Convert van Kasteren's houses B and C (SOURCE holds `KB House/` and `KC House/`) into
    a bundle that --config runs on. The data is not ours to redistribute: keep it out of git."""
    from simulators.kasteren import convert

    _converted(convert(Path(source), Path(out_dir)), out_dir)


@main.command(name="import-ordonez")
@click.argument("source", type=click.Path(file_okay=False, exists=True))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def import_ordonez(source: str, out_dir: str) -> None:
    """Convert the two Ordonez homes (UCI ADL binary dataset) into a bundle that --config
    runs on: readings.jsonl, homes/*.yaml, activities.jsonl."""
    from simulators.ordonez import convert

    _converted(convert(Path(source), Path(out_dir)), out_dir)


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
def summarize(bundle: str) -> None:
    """Statistics of a bundle's lives: readings per home-day by kind, getting-up and bed
    times, night-time toilet trips."""
    from simulators.summary import summarise

    config = _load(bundle)
    bad: Counter[str] = Counter()
    with open(Path(bundle) / "readings.jsonl", encoding="utf-8") as f:
        readings = read_readings(f, bad)
    if not readings:
        raise click.ClickException("no readings in the bundle")
    span = max(r.ts for r in readings) - min(r.ts for r in readings)
    days = max(1, round(span.total_seconds() / 86400))
    click.echo(json.dumps(summarise(readings, config, days).describe(), indent=2))


@main.command()
@click.option("--config", "config_dir", required=True, type=click.Path(file_okay=False),
              help="configuration directory (a bundle is one)")
@click.option("--readings", "readings_file", default=None, type=click.Path(dir_okay=False),
              help="JSON Lines readings (default: readings.jsonl in the config directory)")
@click.option("--labels", "labels_file", default=None, type=click.Path(dir_okay=False),
              help="labels to shade (default: labels.jsonl in the config directory, if any)")
@click.option("--home", required=True)
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False))
@click.option("--from", "first", default=None, help="first local date (YYYY-MM-DD)")
@click.option("--days", default=None, type=click.IntRange(1, 400))
def plot(config_dir: str, readings_file: str | None, labels_file: str | None, home: str,
         out_file: str, first: str | None, days: int | None) -> None:
    """Draw a home's days as a timeline PNG (rooms and devices against time of day)."""
    from simulators.plot import plot_home

    config = _load(config_dir)
    if home not in config.homes:
        raise click.BadParameter(f"no home {home!r} in {config_dir}", param_hint="--home")
    path = Path(readings_file or Path(config_dir) / "readings.jsonl")
    bad: Counter[str] = Counter()
    with open(path, encoding="utf-8") as f:
        readings = [r for r in read_readings(f, bad) if r.home == home]
    lpath = Path(labels_file) if labels_file else Path(config_dir) / "labels.jsonl"
    labels = [json.loads(x) for x in lpath.read_text().splitlines() if x.strip()] \
        if lpath.exists() else []
    drawn = plot_home(readings, config.homes[home], labels, Path(out_file),
                      date.fromisoformat(first) if first else None, days)
    click.echo(f"{drawn.days} days of home {home}, scenarios shaded: "
               f"{', '.join(drawn.labels) or 'none'} -> {out_file}", err=True)


@main.command()
@click.argument("readings_file", type=click.Path(dir_okay=False, exists=True))
@click.option("--speed", default=0.0, show_default=True, type=click.FloatRange(0),
              help="event time per wall-clock time (1 real time, 60 an hour a minute); "
                   "0 as fast as the broker takes them")
@mqtt_option
@click.option("--qos", default=1, type=click.IntRange(0, 1), show_default=True)
@click.option("--progress/--no-progress", default=True)
def replay(readings_file: str, speed: float, mqtt_url: str | None, qos: int,
           progress: bool) -> None:
    """Publish a JSON Lines stream to the broker, keeping each reading's event time. A file
    of ready-made messages (`telecare bridge`'s messages.jsonl) is published as it is."""
    from simulators.replay import replay as do_replay
    from simulators.replay import replay_messages

    url = BrokerUrl.parse(mqtt_url or DEFAULT_URL)
    with open(readings_file, encoding="utf-8") as f:
        head = f.readline()
    if '"topic"' in head and '"payload"' in head:
        with open(readings_file, encoding="utf-8") as f:
            sent = [json.loads(line) for line in f if line.strip()]
        n = replay_messages(sent, url, speed, qos, progress)
        click.echo(f"published {n} messages to {url}", err=True)
        return
    bad = 0
    readings = []
    with open(readings_file, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    readings.append(parse_jsonl_line(line))
                except BadReading:
                    bad += 1
    n = do_replay(readings, url, speed, qos, progress)
    click.echo(f"published {n} readings to {url} ({bad} bad lines skipped)", err=True)


def _home(config_dir: str, home: str) -> Any:
    config = _load(config_dir)
    if home not in config.homes:
        raise click.ClickException(f"no home {home!r} in {config_dir}/homes (known: "
                                   f"{', '.join(sorted(config.homes)[:10]) or 'none'})")
    return config.homes[home]


@main.command()
@config_option
@click.option("--home", required=True, help="the home's id")
@click.option("--json", "as_json", is_flag=True, help="as JSON")
def devices(config_dir: str, home: str, as_json: bool) -> None:
    """What each of a home's devices is read from: its native topic and every source
    (Zigbee2MQTT name and field, Home Assistant entity, JSON topic and expression)."""
    from telecare.app.installer import as_json as sources_json
    from telecare.app.installer import describe

    found = _home(config_dir, home)
    click.echo(sources_json(found) if as_json else describe(found))


@main.command()
@config_option
@click.option("--home", required=True, help="the home's id")
@mqtt_option
@click.option("--count", type=click.IntRange(1), default=None,
              help="stop after this many messages")
@click.option("--seconds", type=click.FloatRange(0), default=None,
              help="stop after this long (default: until Ctrl-C)")
def listen(config_dir: str, home: str, mqtt_url: str | None, count: int | None,
           seconds: float | None) -> None:
    """Print the readings a home's live sources would produce, message by message, without
    storing anything: for an installer checking a new home."""
    from telecare.app.installer import listen as do_listen

    found = _home(config_dir, home)
    url = BrokerUrl.parse(mqtt_url or DEFAULT_URL)
    n = do_listen(found, url, lambda line: click.echo(line, nl=True), count, seconds)
    click.echo(f"{n} messages", err=True)


@main.command()
@click.argument("bundle", type=click.Path(file_okay=False, exists=True))
@click.option("--as", "bridge", required=True,
              type=click.Choice(["zigbee2mqtt", "home_assistant", "json"]),
              help="the bridge or hub to publish as")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def bridge(bundle: str, bridge: str, out_dir: str) -> None:
    """Re-publish a bundle's homes as a Zigbee2MQTT bridge, a Home Assistant statestream or a
    vendor's JSON hub would: OUT/homes (with `sources:`) and OUT/messages.jsonl, for
    `telecare replay` and `telecare run --config OUT`."""
    from simulators.bridges import write_bridged

    n = write_bridged(Path(bundle), Path(out_dir), bridge)
    click.echo(f"wrote {n} {bridge} messages and the homes' sources to {out_dir}", err=True)


@main.command()
@click.option("--speed", default=4000.0, show_default=True, type=click.FloatRange(1),
              help="how much faster than real time the simulated days run")
@click.option("--seed", default=7, show_default=True, type=int)
@click.option("--keep-console", is_flag=True,
              help="leave the care team's console running at the end, until Ctrl-C")
@log_option
def demo(speed: float, seed: int, keep_console: bool, log_level: str) -> None:
    """A simulated home through the live pipeline, on this machine, with nothing installed:
    prints each alert as it reaches the carer, then a summary; the care team's web console
    runs beside it (its address and a login are printed)."""
    from telecare.app.demo import run_demo

    _setup_logging("warning" if log_level == "info" else log_level)
    ok = run_demo(speed=speed, seed=seed, keep_console=keep_console)
    sys.exit(0 if ok else 1)


@main.command()
@config_option
@data_option
@db_option
def status(config_dir: str, data_dir: str | None) -> None:
    """What the store holds: readings, dead letters, alerts, notifications."""
    from alerts.store import AlertStore
    from ingest.store import ReadingStore

    _load(config_dir)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    readings = ReadingStore(connect(data))
    alerts = AlertStore(_alert_conn(data)).all()
    set_aside = readings.set_aside()
    click.echo(json.dumps({
        "data_dir": str(data),
        "readings": readings.count(),
        "dead_letters": set_aside["total"],
        "dead_letters_detail": set_aside,
        "alerts_firing": sum(a.status == "firing" for a in alerts),
        "alerts_resolved": sum(a.status == "resolved" for a in alerts),
    }, indent=2))


@main.command()
@config_option
@data_option
@click.option("--days", default=90, show_default=True, type=click.IntRange(1),
              help="keep readings this many days after they arrived")
@click.option("--keep-dead-letters", default=100_000, show_default=True,
              type=click.IntRange(0), help="how many of the newest dead letters to keep")
def prune(config_dir: str, data_dir: str | None, days: int, keep_dead_letters: int) -> None:
    """Delete old readings that every reader has passed, and cap the dead letters (they stay
    counted); alerts and their history are kept. `telecare run` does this daily."""

    from telecare.app.retention import prune as prune_store

    _load(config_dir)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    done = prune_store(connect(data), timedelta(days=days), keep_dead_letters)
    held = f"; newer ones wait for the {done.held_back_by}" if done.held_back_by else ""
    click.echo(f"pruned {done.readings} reading(s) that arrived over {days} days ago and "
               f"{done.dead_letters} dead letter(s){held}")


def _alert_service(config_dir: str, data_dir: str | None) -> Any:
    from alerts.service import acting_service

    config = _load(config_dir)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    return acting_service(_alert_conn(data), config)


@main.command()
@config_option
@data_option
@db_option
@click.argument("alert_id")
@click.option("--by", required=True, help="who is dealing with it (a contact's name)")
@click.option("--note", default=None, help="a word on what they are doing")
def ack(config_dir: str, data_dir: str | None, alert_id: str, by: str,
        note: str | None) -> None:
    """Acknowledge an alert: BY is dealing with it. The escalation and reminders stop and
    the others told hear who took it on."""
    if not _alert_service(config_dir, data_dir).acknowledge(alert_id, by, note):
        raise click.ClickException(f"no alert {alert_id}")
    click.echo(f"{alert_id} acknowledged by {by}")


@main.command()
@config_option
@data_option
@db_option
@click.argument("alert_id")
@click.option("--by", required=True)
@click.option("--outcome", required=True, help="how it ended, in plain words")
def close(config_dir: str, data_dir: str | None, alert_id: str, by: str, outcome: str) -> None:
    """Close (resolve) an alert by hand, with its outcome."""
    if not _alert_service(config_dir, data_dir).resolve_by_person(alert_id, by, outcome):
        raise click.ClickException(f"no firing alert {alert_id}")
    click.echo(f"{alert_id} closed by {by}")


@main.command()
@config_option
@data_option
@db_option
@click.argument("alert_id")
@click.option("--by", required=True)
@click.option("--useful", "verdict", flag_value="useful", help="the alert was worth having")
@click.option("--false-alarm", "verdict", flag_value="false_alarm",
              help="nothing was wrong")
@click.option("--why", default=None, help="a word of why")
def feedback(config_dir: str, data_dir: str | None, alert_id: str, by: str,
             verdict: str | None, why: str | None) -> None:
    """Say whether an alert was useful or a false alarm; kept beside the alert for tuning."""
    if verdict is None:
        raise click.UsageError("say --useful or --false-alarm")
    if not _alert_service(config_dir, data_dir).feedback(alert_id, by, verdict, why):
        raise click.ClickException(f"no alert {alert_id}")
    click.echo(f"feedback on {alert_id} from {by}: {verdict}")


@main.command(name="im-ok")
@config_option
@data_option
@click.argument("home")
def im_ok(config_dir: str, data_dir: str | None, home: str) -> None:
    """The resident says "I'm OK": stand down their home's alerts below critical."""
    done = _alert_service(config_dir, data_dir).resident_ok(home)
    click.echo(f"stood down: {', '.join(done) if done else 'nothing open below critical'}")


@main.command()
@config_option
@data_option
@db_option
@click.option("--json", "as_json", is_flag=True)
@click.option("--plot", "plot_file", default=None, type=click.Path(dir_okay=False),
              help="draw the times to notification and acknowledgement (PNG)")
def report(config_dir: str, data_dir: str | None, as_json: bool,
           plot_file: str | None) -> None:
    """Response figures: time to first notification, acknowledgement and resolution, per
    severity and per home, against the social-alarm industry's yardstick."""
    from alerts.report import format_report, gather, plot_report

    _load(config_dir)
    data = Path(data_dir) if data_dir else default_data_dir(config_dir)
    by_sev, by_home = gather(_alert_conn(data))
    if as_json:
        click.echo(json.dumps({"by_severity": {k: v.row() for k, v in by_sev.items()},
                               "by_home": {k: v.row() for k, v in by_home.items()}},
                              indent=2))
    else:
        click.echo(format_report(by_sev, by_home))
    if plot_file:
        plot_report(by_sev, Path(plot_file))
        click.echo(f"drawn: {plot_file}")


if __name__ == "__main__":
    main()
