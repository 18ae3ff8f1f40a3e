"""End to end with the real Prometheus and Alertmanager from Debian's packages: Prometheus scrapes
``cascade-monitor demo``, evaluates the shipped alerting rules (deploy/prometheus/rules/cascade.yml)
on the demo's simulated crash, and Alertmanager, configured from deploy/alertmanager/alertmanager.yml,
posts the alert to a local webhook receiver in its webhook format (version 4); once the demo stops,
the same group is posted again as resolved.

Every process is real and owned by a fixture that stops it (and kills it on failure); the test ends by
checking that no process mentioning its ports or temporary directory is left.

The binaries come from ``apt-get install prometheus prometheus-alertmanager`` (Debian names the
Alertmanager binary ``prometheus-alertmanager``). Without them the test skips, unless
CASCADE_REQUIRE_PROMETHEUS=1 (set by .ci/run) makes their absence a failure.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from monitor.app.broker import port_open
from tests.conftest import free_port

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "cascade.yml"
ALERTMANAGER_FILE = DEPLOY / "alertmanager" / "alertmanager.yml"

# The demo: a 270 s crash scenario played in 60 s. Its pairs' liquidation surge passes 20 (the
# LiquidationSurgeCritical level) within the crash's first half on every seed the demo ships, so
# Prometheus and Alertmanager have tens of seconds before the demo stops.
DEMO_DURATION_S = 60.0
DEMO_SPEED = 4.5
DEMO_SEED = 2
DEMO_EXCHANGES = ("binance", "bybit")
DEMO_SYMBOLS = ("BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP")

ALERT = "LiquidationSurgeCritical"  # cascade_liquidation_surge >= 20, severity critical
SEVERITY = "critical"
RULE_HOLD = "1s"  # replaces every `for:` of the shipped rules (see the test's docstring)
RECEIVER = "cascade-webhook"  # the shipped Alertmanager receiver


# ---- processes ------------------------------------------------------------------------------


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    why = f"{' / '.join(names)} not installed (apt-get install prometheus prometheus-alertmanager)"
    if os.environ.get("CASCADE_REQUIRE_PROMETHEUS") == "1":
        pytest.fail(why)
    pytest.skip(why)


@dataclass
class Service:
    """A subprocess in its own session (so a kill reaches its children), logging to a file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str
    started_at: float = field(default_factory=time.monotonic)
    exited_at: float | None = None

    def poll(self) -> int | None:
        rc = self.proc.poll()
        if rc is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
        return rc

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} log ({self.log}):\n" + "\n".join(text.splitlines()[-lines:])

    def wait(self, timeout_s: float) -> int:
        rc = self.proc.wait(timeout=timeout_s)
        self.poll()
        return rc

    def stop(self, sig: int = signal.SIGTERM, grace_s: float = 15.0) -> int:
        """Signal the process, wait up to ``grace_s``, then kill its whole session. Idempotent."""
        if self.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.wait(10)
        return self.proc.returncode


def launch(
    name: str, argv: list[str], log: Path, url: str, env: dict[str, str] | None = None
) -> Service:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
    return Service(name, proc, log, url)


def processes_mentioning(*needles: str) -> list[str]:
    """Live processes (other than this one) whose command line contains any of ``needles``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmd for n in needles):
            found.append(f"{entry.name}: {cmd.strip()}")
    return found


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def api(prometheus: Service, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    body = http_json(f"{prometheus.url}/api/v1/{path}{query}")
    assert body["status"] == "success", body
    return body["data"]


def wait_ready(service: Service, timeout_s: float = 30.0) -> None:
    """Poll ``/-/ready`` until it answers 200, failing early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert service.poll() is None, f"{service.name} exited\n{service.tail()}"
        try:
            with urllib.request.urlopen(f"{service.url}/-/ready", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{service.name} not ready\n{service.tail()}"
        time.sleep(0.1)


def launch_ready(name: str, argv: list[str], log: Path, url: str) -> Iterator[Service]:
    """``launch``, wait until ``/-/ready`` answers, yield the service and stop it after: the body of
    a fixture (``yield from``)."""
    service = launch(name, argv, log, url)
    try:
        wait_ready(service)
        yield service
    finally:
        service.stop()


# ---- the webhook receiver -------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    posts: queue.Queue[tuple[str, dict[str, Any]]]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.put((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@dataclass
class Receiver:
    server: _Server
    thread: threading.Thread
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/alerts"

    def await_post(
        self, match: Callable[[dict[str, Any]], bool], timeout_s: float, check: Callable[[], None]
    ) -> dict[str, Any]:
        """The first webhook body ``match`` accepts, waiting at most ``timeout_s``; ``check`` runs
        between deliveries and fails the test early (a process died, the demo ended long ago)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                path, body = self.server.posts.get(timeout=0.25)
            except queue.Empty:
                check()
                continue
            assert path == "/alerts", path  # the path of the shipped receiver URL
            self.seen.append(body)
            if match(body):
                return body
        raise AssertionError(f"no matching webhook within {timeout_s:.0f}s; received {self.seen}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.posts = queue.Queue()
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True)
    thread.start()
    try:
        yield Receiver(server, thread)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# ---- Alertmanager, Prometheus and the demo --------------------------------------------------


def alertmanager_config(receiver_url: str) -> str:
    """The shipped config with the webhook pointed at the test's receiver and the batching
    delays shortened (group_wait 0s, group_interval 1s), so delivery fits in the demo."""
    text = ALERTMANAGER_FILE.read_text()
    text, n_url = re.subn(r"(url: )http://127\.0\.0\.1:9099/alerts", rf"\g<1>{receiver_url}", text)
    text, n_wait = re.subn(r"(group_wait: )\S+", r"\g<1>0s", text)
    text, n_interval = re.subn(r"(group_interval: )\S+", r"\g<1>1s", text)
    assert (n_url, n_wait, n_interval) == (1, 2, 1), "deploy/alertmanager/alertmanager.yml changed"
    return text


def shipped_rules() -> dict[str, str]:
    """alert name -> expression, as written in the shipped rules file."""
    text = RULES_FILE.read_text()
    rules = dict(re.findall(r"^\s+- alert: (\w+)\n\s+expr: (.+)$", text, flags=re.MULTILINE))
    assert len(rules) == 21 and ALERT in rules, rules
    return rules


def held_rules() -> set[str]:
    """The shipped rules with a ``for:``."""
    text = RULES_FILE.read_text()
    return set(re.findall(r"^\s+- alert: (\w+)\n\s+expr: .+\n\s+for: ", text, flags=re.M))


def rules_with_short_holds() -> str:
    text, n = re.subn(r"^(\s+for: )\S+$", rf"\g<1>{RULE_HOLD}", RULES_FILE.read_text(), flags=re.M)
    assert n == len(held_rules()) and ALERT in held_rules()
    return text


@pytest.fixture
def alertmanager(tmp_path: Path, receiver: Receiver) -> Iterator[Service]:
    am = binary("prometheus-alertmanager", "alertmanager")
    config = tmp_path / "alertmanager.yml"
    config.write_text(alertmanager_config(receiver.url))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    yield from launch_ready(
        "alertmanager",
        [am, f"--config.file={config}", f"--storage.path={tmp_path / 'alertmanager'}",
         f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={url}",
         "--cluster.listen-address="],
        tmp_path / "alertmanager.log",
        url,
    )  # fmt: skip


@pytest.fixture
def demo_metrics_port() -> int:
    return free_port()


@pytest.fixture
def prometheus(tmp_path: Path, alertmanager: Service, demo_metrics_port: int) -> Iterator[Service]:
    prom = binary("prometheus")
    rules = tmp_path / "cascade.yml"
    rules.write_text(rules_with_short_holds())
    am_target = alertmanager.url.removeprefix("http://")
    config = {  # JSON is YAML
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am_target]}]}]},
        "scrape_configs": [
            {
                "job_name": "cascade-demo",
                "static_configs": [{"targets": [f"127.0.0.1:{demo_metrics_port}"]}],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config, indent=2))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    yield from launch_ready(
        "prometheus",
        [prom, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'prometheus'}", f"--web.listen-address=127.0.0.1:{port}",
         f"--web.external-url={url}"],
        tmp_path / "prometheus.log",
        url,
    )  # fmt: skip


@dataclass
class Demo:
    service: Service
    broker_port: int
    metrics_port: int


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("cascade-monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor.app.cli"]


@pytest.fixture
def demo(tmp_path: Path, prometheus: Service, demo_metrics_port: int) -> Iterator[Demo]:
    """The demo with its own embedded-broker port and state directory, started once Prometheus
    and Alertmanager are ready. Teardown: SIGINT (the demo stops its broker), else kill and
    ``broker down``."""
    broker_port = free_port()
    env = {  # as a user runs it: no CASCADE_MONITOR* from outside, no asyncio debug mode
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CASCADE_MONITOR") and k != "PYTHONASYNCIODEBUG"
    } | {
        "CASCADE_MONITOR__BROKER__PORT": str(broker_port),
        "CASCADE_MONITOR__BROKER__DATA_DIR": str(tmp_path / "broker"),
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    service = launch(
        "demo",
        [*_cli(), "demo", "--duration", str(DEMO_DURATION_S), "--speed", str(DEMO_SPEED),
         "--seed", str(DEMO_SEED), "--metrics-port", str(demo_metrics_port), "--no-table"],
        tmp_path / "demo.log",
        f"http://127.0.0.1:{demo_metrics_port}/metrics",
        env,
    )  # fmt: skip
    try:
        yield Demo(service, broker_port, demo_metrics_port)
    finally:
        service.stop(signal.SIGINT)
        subprocess.run(
            [*_cli(), "broker", "down"], env=env, capture_output=True, timeout=60, check=False
        )
        left = processes_mentioning(
            str(tmp_path / "broker"),
            f"127.0.0.1:{broker_port}",
            f"--metrics-port {demo_metrics_port}",
        )
        for line in left:
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        assert not left, f"processes left behind (killed): {left}"


# ---- the test -------------------------------------------------------------------------------


def _timestamp(text: str) -> datetime:
    """RFC 3339 with up to nanoseconds, as Prometheus and Alertmanager write it."""
    m = re.fullmatch(r"(.+T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{m.group(3).replace('Z', '+00:00')}")


def _diagnosis(prometheus: Service, demo: Demo) -> str:
    try:
        peaks = api(
            prometheus, "query",
            query="max by (exchange, symbol) (max_over_time(cascade_branching_ratio[10m]))",
        )["result"]  # fmt: skip
        peak = ", ".join(
            f"{r['metric']['exchange']} {r['metric']['symbol']}: {r['value'][1]}" for r in peaks
        )
    except (OSError, AssertionError) as exc:
        peak = repr(exc)
    return f"highest branching ratio per pair seen by Prometheus: {peak}\n{demo.service.tail()}"


@pytest.mark.integration
def test_prometheus_fires_a_shipped_rule_on_the_demo_and_alertmanager_posts_it(
    tmp_path: Path, receiver: Receiver, alertmanager: Service, prometheus: Service, demo: Demo
) -> None:
    """The demo's crash drives a pair's liquidation surge (its 60 s liquidation rate over the
    1,000 USD/s floor: the demo starts cold) past 20: Prometheus fires the shipped
    LiquidationSurgeCritical rule and Alertmanager posts it, then posts it resolved after the
    demo stops. Nothing in the demo disconnects or lags.

    Two documented changes to the shipped files, nothing else:

    The pipeline-health rules are loaded and evaluated with the rest; the demo runs normally, so
    none of them fires besides the always-firing Watchdog.

    * rules: every ``for:`` (5 s to 2 min of wall time) becomes 1 s. The demo plays a
      4.5-minute crash in 60 s, so a shipped hold of a minute never elapses. 1 s still goes through
      pending -> firing (two evaluations 1 s apart); the holds themselves are unit-tested with
      promtool (test_prometheus.py). Expressions, labels and annotations are the shipped ones.
    * Alertmanager: the webhook URL points at the receiver; group_wait 0s, group_interval 1s
      (instead of 10 s / 30 s) so the notification is not delayed past the end of the demo.
    """
    expressions = shipped_rules()

    def stack_running() -> None:
        for s in (alertmanager, prometheus):
            assert s.poll() is None, f"{s.name} exited\n{s.tail()}"

    def still_running() -> None:
        stack_running()
        if demo.service.poll() is not None:
            assert demo.service.exited_at is not None
            ended_s = time.monotonic() - demo.service.exited_at
            assert ended_s < 15, f"demo ended {ended_s:.0f}s ago, no alert\n" + _diagnosis(
                prometheus, demo
            )

    def firing(body: dict[str, Any]) -> bool:
        return bool(body["status"] == "firing" and body["commonLabels"].get("alertname") == ALERT)

    firing_body = receiver.await_post(firing, DEMO_DURATION_S + 45, still_running)
    fired_after_s = time.monotonic() - demo.service.started_at
    # Prometheus's view, at once: the next evaluation is a second away
    alerts = api(prometheus, "alerts")["alerts"]
    groups = api(prometheus, "rules", type="alert")["groups"]

    # -- the webhook, field by field (Alertmanager webhook format, version 4)
    assert firing_body["version"] == "4"
    assert firing_body["receiver"] == RECEIVER
    assert firing_body["externalURL"] == alertmanager.url
    assert firing_body["truncatedAlerts"] == 0
    (alert,) = firing_body["alerts"]  # grouped by alertname, exchange, symbol: one alert
    labels = alert["labels"]
    exchange, symbol = labels["exchange"], labels["symbol"]
    assert exchange in DEMO_EXCHANGES and symbol in DEMO_SYMBOLS, labels
    assert labels == {
        "alertname": ALERT,
        "severity": SEVERITY,
        "exchange": exchange,
        "symbol": symbol,
        "job": "cascade-demo",
        "instance": f"127.0.0.1:{demo.metrics_port}",
    }
    group = {"alertname": ALERT, "exchange": exchange, "symbol": symbol}
    assert firing_body["groupLabels"] == group
    group_text = ", ".join(f'{k}="{v}"' for k, v in group.items())
    # the critical sub-route (group_wait 0s) of the root route {}
    assert firing_body["groupKey"] == '{}/{severity="critical"}:{' + group_text + "}"
    assert firing_body["commonLabels"] == labels
    assert alert["status"] == "firing"
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"]), alert
    assert alert["annotations"]["summary"] == f"Liquidations surging on {exchange} {symbol}"
    m = re.fullmatch(  # the text says the shipped hold, 5 s
        r"Liquidations at (\d+)x their normal rate \(>= 20 for 5 s\)\.",
        alert["annotations"]["description"],
    )
    assert m and int(m.group(1)) >= 20, alert["annotations"]
    assert firing_body["commonAnnotations"] == alert["annotations"]
    generator = urllib.parse.urlsplit(alert["generatorURL"])
    assert f"{generator.scheme}://{generator.netloc}{generator.path}" == f"{prometheus.url}/graph"
    # the expression that fired is the shipped one, byte for byte
    assert urllib.parse.parse_qs(generator.query)["g0.expr"] == [expressions[ALERT]]

    # -- Prometheus: the same alert firing, every shipped rule loaded and evaluated cleanly
    (prom_alert,) = [a for a in alerts if a["labels"] == labels]
    assert prom_alert["state"] == "firing"
    assert prom_alert["annotations"] == alert["annotations"]
    assert float(prom_alert["value"]) >= 20
    assert f"{float(prom_alert['value']):.0f}" == m.group(1)
    # startsAt is when the hold elapsed: 1 s after pending began (sent with millisecond precision)
    held = _timestamp(alert["startsAt"]) - _timestamp(prom_alert["activeAt"])
    assert held.total_seconds() >= 0.999, (alert["startsAt"], prom_alert["activeAt"])
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    assert sorted(rules) == sorted(expressions)
    for name, rule in rules.items():
        assert rule["health"] == "ok", rule
        assert rule["query"] == expressions[name], rule
        assert rule["duration"] == (1 if name in held_rules() else 0), rule
    # the demo runs normally: no health alert besides the always-firing Watchdog
    unhealthy = [a["labels"] for a in alerts if a["labels"].get("category") == "health"]
    assert [u["alertname"] for u in unhealthy] == ["Watchdog"], unhealthy
    assert rules[ALERT]["state"] == "firing"
    assert rules[ALERT]["labels"] == {"severity": SEVERITY}
    assert labels in [a["labels"] for a in rules[ALERT]["alerts"]]

    # -- the demo ends on its own (and stops its broker); the alert resolves and is posted again
    assert demo.service.wait(DEMO_DURATION_S + 30) == 0, demo.service.tail()
    margin_s = (demo.service.exited_at or 0.0) - demo.service.started_at - fired_after_s
    assert not port_open("127.0.0.1", demo.broker_port), "the demo left its broker running"

    def resolved(body: dict[str, Any]) -> bool:
        return bool(body["status"] == "resolved" and body["groupKey"] == firing_body["groupKey"])

    resolved_body = receiver.await_post(resolved, 20, stack_running)
    (done,) = resolved_body["alerts"]
    assert done["status"] == "resolved"
    assert done["labels"] == labels and done["fingerprint"] == alert["fingerprint"]
    assert done["startsAt"] == alert["startsAt"]
    assert _timestamp(done["endsAt"]) > _timestamp(done["startsAt"])

    # -- everything stops cleanly and nothing is left behind
    assert prometheus.stop() == 0, prometheus.tail()
    assert alertmanager.stop() == 0, alertmanager.tail()
    left = processes_mentioning(str(tmp_path), f"127.0.0.1:{demo.broker_port}")
    assert not left, left
    print(
        f"{ALERT} {exchange} {symbol} posted {fired_after_s:.1f}s after the demo started, "
        f"{margin_s:.1f}s before it ended; value {prom_alert['value']}"
    )
