"""Every query of the shipped dashboards, run through a real Prometheus's HTTP API on the demo.

Debian's Prometheus scrapes ``cascade-monitor demo`` (the 60 s crash, as tests/test_alertmanager.py
runs it) every second with the shipped rule files loaded unchanged (deploy/prometheus/rules/
cascade.yml and recording.yml). Once the demo has ended, each panel target and annotation query is
evaluated over the demo's window with its variables set to real values (the crash's pair, every
exchange) and must return series whose labels fill its legend. One demo run serves every check.

Two kinds of query may be empty, each with its reason: those on a metric the generator's table of
pending metrics lists while the monitor does not export it yet (``PENDING_METRICS``, the reason
there), and those ``EMPTY_IN_THE_DEMO`` lists (the demo is too short for them, or does not run what
exports them). Both still have to be valid PromQL that Prometheus evaluates.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from monitor.app.report import PrometheusSource, make_report
from monitor.app.report import Window as ReportWindow
from tests.conftest import free_port
from tests.grafana.boards import RULES, Query, generator_common, metrics_in, queries
from tests.test_alertmanager import (
    Service,
    _cli,
    binary,
    launch,
    launch_ready,
    processes_mentioning,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

# the same 270 s scenario as 60 s at speed 4.5, played over 90 s: the simulator stamps events
# with the wall clock (speed compresses the scenario, not time), and feed saturation is defined
# 60 s (its time constant) after a pair's first event; a 60 s run gave it a few samples or none
DEMO = ("--duration", "90", "--speed", "3", "--seed", "2")
EXCHANGE, SYMBOL = "bybit", "BTC-USDT-PERP"  # the demo's crash, on its aggregated feed
VARIABLES = {  # dashboard variables -> the values the panels are evaluated with
    "$exchange": EXCHANGE,
    "$symbol": SYMBOL,
    "$__rate_interval": "4s",  # Grafana: max(interval + scrape interval, 4 x scrape interval)
    "$__interval": "2s",
}
PIPELINE_EXCHANGES = "binance|bybit"  # the pipeline dashboard's multi-value $exchange, both set
STEP_S = 2.0

# Queries legitimately empty on the demo: "<dashboard uid> / <panel title>[ / <refId>]" -> why.
EMPTY_IN_THE_DEMO: dict[str, str] = {
    "cascade-pair / Liquidation-rate z-score / A": "the demo starts cold, as a new deployment does: "
    "the z-score needs an hour of the pair's history (risk.baseline_warmup_s), and the surge reads "
    "against its floor meanwhile (docs/risk-models.md §9.3)",
    "cascade-pair / Volatility / B": "the jump share is given after 30 five-second returns of "
    "the pair (bv_min_returns, consumers/models/bipower.py); on the demo it is exported for no "
    "pair",
    "cascade-pair / VPIN / A": "VPIN's buckets are 1/50 of an hour's volume: the first value "
    "comes after about an hour",
    "cascade-pipeline / Parse errors by reason / A": "the simulator sends only well-formed frames "
    "(tests/test_misbehaviour.py sends garbage and checks the counters)",
    "cascade-pipeline / Reconnects by cause / A": "no socket drops in the demo "
    "(tests/test_misbehaviour.py drops and stalls sockets)",
    "cascade-pipeline / Events applied and skipped / B": "no event is too late, invalid or over "
    "the pair capacity in the demo",
    "cascade-pipeline / Dead letters / A": "the demo's receiver takes every alert (the counter is "
    "created at the first dead letter)",
    "cascade-pipeline / Components up / A": "only the supervisor of `cascade-monitor run` exports "
    "it; the demo runs everything in one process (tests/monitor/app/test_run.py)",
    "cascade-pipeline / Component restarts / A": "as Components up",
}


@dataclass
class Window:
    prometheus: Service
    start: float  # the demo's first scrape
    end: float  # its last successful scrape
    names: frozenset[str]  # every metric name Prometheus holds


def _get(service: Service, path: str, **params: str) -> Any:
    url = f"{service.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # a bad query: 400 with Prometheus's reason
        body = json.loads(exc.read())
    assert body["status"] == "success", f"{params}: {body.get('error')}"
    return body["data"]


@pytest.fixture(scope="module")
def window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Window]:
    """Prometheus (shipped rule files, 1 s scrapes) and the demo, run to its end."""
    tmp = tmp_path_factory.mktemp("live")
    prom_bin = binary("prometheus")
    metrics_port, prom_port, broker_port = free_port(), free_port(), free_port()
    config = {  # JSON is YAML
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES / "cascade.yml"), str(RULES / "recording.yml")],
        "scrape_configs": [{"job_name": "cascade-demo",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}]}],
    }  # fmt: skip
    (tmp / "prometheus.yml").write_text(json.dumps(config))
    url = f"http://127.0.0.1:{prom_port}"
    prom = launch_ready(
        "prometheus",
        [prom_bin, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", f"--web.external-url={url}"],
        tmp / "prometheus.log", url,
    )  # fmt: skip
    prometheus = next(prom)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CASCADE_MONITOR") and k != "PYTHONASYNCIODEBUG"} | {
        "CASCADE_MONITOR__BROKER__PORT": str(broker_port),
        "CASCADE_MONITOR__BROKER__DATA_DIR": str(tmp / "broker"),
        "XDG_STATE_HOME": str(tmp / "state"),
    }  # fmt: skip
    demo = launch("demo", [*_cli(), "demo", *DEMO, "--metrics-port", str(metrics_port),
                           "--no-table"], tmp / "demo.log", "", env)  # fmt: skip
    try:
        assert demo.wait(240) == 0, demo.tail()
        time.sleep(2.5)  # two evaluations of the rules after the last scrape
        up = _get(prometheus, "query_range", query="up == 1", start=str(time.time() - 600),
                  end=str(time.time()), step="1")["result"]  # fmt: skip
        assert up, prometheus.tail()
        stamps = [float(t) for t, _ in up[0]["values"]]
        names = frozenset(_get(prometheus, "label/__name__/values"))
        yield Window(prometheus, min(stamps), max(stamps), names)
    finally:
        demo.stop(signal.SIGINT)
        subprocess.run([*_cli(), "broker", "down"], env=env, capture_output=True, timeout=60,
                       check=False)  # fmt: skip
        next(prom, None)  # stops Prometheus
        left = processes_mentioning(str(tmp), f"127.0.0.1:{broker_port}")
        for line in left:
            os.kill(int(line.split(":", 1)[0]), signal.SIGKILL)
        assert not left, f"processes left behind (killed): {left}"


def expand(q: Query) -> str:
    """The query as Grafana sends it with the variables set."""
    expr = q.expr
    if q.dashboard == "cascade-pipeline":
        expr = expr.replace('=~"$exchange"', f'=~"{PIPELINE_EXCHANGES}"')
    for name, value in sorted(VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(name, value)
    assert "$" not in re.sub(r'"[^"]*"', "", expr), f"variable left in {expr}"
    return expr


def evaluate(w: Window, q: Query) -> list[dict[str, Any]]:
    expr = expand(q)
    if q.instant:
        return list(_get(w.prometheus, "query", query=expr, time=str(w.end))["result"])
    return list(_get(w.prometheus, "query_range", query=expr, start=str(w.start),
                     end=str(w.end), step=str(STEP_S))["result"])  # fmt: skip


def pending_reason(q: Query, names: frozenset[str]) -> str | None:
    pending = generator_common().PENDING_METRICS
    missing = [n for n in metrics_in(q.expr) if n in pending and n not in names]
    return "; ".join(f"{n}: {pending[n]}" for n in missing) or None


QUERIES = queries()


def test_the_exemptions_name_real_queries() -> None:
    keys = {q.key for q in QUERIES}
    assert set(EMPTY_IN_THE_DEMO) <= keys, set(EMPTY_IN_THE_DEMO) - keys


@pytest.mark.parametrize("q", QUERIES, ids=[q.key for q in QUERIES])
def test_dashboard_query_returns_series_on_the_demo(window: Window, q: Query) -> None:
    result = evaluate(window, q)  # valid PromQL, evaluated, whatever follows
    why = pending_reason(q, window.names) or EMPTY_IN_THE_DEMO.get(q.key)
    if why is not None:
        if result:  # no longer empty: the exemption is stale
            pytest.fail(f"{q.key} returns series now: remove its exemption ({why})")
        pytest.skip(f"empty on the demo: {why}")
    assert result, f"{q.key}: no series for {expand(q)}"
    # every series names its legend's labels (an unknown label renders as an empty string)
    for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", q.legend):
        assert all(label in s["metric"] for s in result), (q.key, label, result[0]["metric"])


def test_the_report_draws_the_demo_crash(window: Window, tmp_path: Path) -> None:
    """`cascade-monitor report` on the same Prometheus: the crash pair's window, with the alert
    transitions the demo's rules emitted on its venue."""
    source = PrometheusSource(window.prometheus.url)
    span = ReportWindow(EXCHANGE, SYMBOL, window.start, window.end)
    data = source.load(span)
    for quantity in ("price", "mark", "liq_long", "liq_short", "score", "branching_ratio"):
        assert data.series[quantity].t, quantity
    assert any(k.startswith("component:") for k in data.series)
    assert max(data.series["liq_long"].v) > max(data.series["liq_short"].v)  # a long squeeze
    # the monitor's own transitions (marked for any pair of the venue) and the shipped Prometheus
    # rules firing on the pair (the surge rules hold 5 s: they fire within the demo)
    own = [a for a in data.alerts if a.text.endswith(f"any {EXCHANGE} pair")]
    prom = [a for a in data.alerts if a.text.endswith(" firing") and a not in own]
    assert own and len(own) + len(prom) == len(data.alerts), data.alerts
    png, page = make_report(source, span, tmp_path / "demo-crash")
    assert png.read_bytes().startswith(b"\x89PNG") and "Alert marks" in page.read_text()
