"""The failure-injection rig of the pipeline-health tests and of ``benchmarks/bench_health.py``:
a simulated Binance (a calm market, sped up so every stream is busy), the producer, the consumer
(in this process, or as a ``cascade-monitor consume`` OS process), the alert dispatcher with a
signed generic JSON sink (heartbeats on) to a local receiver, this process's ``/metrics`` and a
real Prometheus that scrapes it with the shipped rules (deploy/prometheus/rules/cascade.yml,
unchanged). A failure is injected, then both paths are awaited:

* the project's own engine: the health alert arrives at the JSON sink (``Rig.engine``);
* Prometheus: the shipped rule's alert is firing in ``/api/v1/alerts`` (``Rig.prometheus``);

and again once the failure ends (resolved at the sink, gone from Prometheus). Times are measured
from the injection. The health windows are short (``HEALTH``: 1 s heartbeats, 4 s to call a
component gone, 3 s minimum silence, 15 s of learning); the shipped Prometheus rules keep their
own levels and holds (60 s minimum silence, 15 s publish stall, 30 s for a target gone).

Prometheus has no push API: its alerts are polled (``POLL_S``), as Alertmanager does.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp
from prometheus_client import CollectorRegistry

import producers.registry  # noqa: F401  (registers the venues)
from consumers.service import ConsumerService
from monitor.alerting.dispatcher import AlertDispatcher
from monitor.alerting.receiver import Received, WebhookReceiver
from monitor.app.broker import noida_binary, port_open
from monitor.app.health import reporter_for
from monitor.app.runtime import serve_metrics
from monitor.core.config import Config, load
from monitor.core.lifecycle import AsyncService
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from producers.service import ProducerService
from tests.conftest import free_port
from tests.test_alertmanager import RULES_FILE, Service, binary, launch, wait_ready

VENUE: Final = "binance"
SPEED: Final = 10.0  # scenario seconds per wall second: about 9 liquidations/s, 160 trades/s
SCENARIO_S: Final = 20_000.0  # long enough for any run at SPEED
SEED: Final = 3
KEY_ENV: Final = "CASCADE_RIG_WEBHOOK_KEY"
POLL_S: Final = 0.25  # Prometheus /api/v1/alerts
SCRAPE_S: Final = 1  # Prometheus scrape and rule evaluation interval
HEALTH: Final = {
    "heartbeat_s": 1.0, "sample_s": 0.25, "eval_s": 0.5, "window_s": 10.0,
    "target_gone_s": 4.0, "kafka_timeout_s": 5.0, "min_silence_s": 3.0, "learn_min_s": 15.0,
    "memory_s": 3600.0,
}  # fmt: skip
EXCHANGE: Final = {"stale_after_s": 5.0, "backoff_initial_s": 0.2, "backoff_max_s": 1.0}


def rig_config(bootstrap: str, unique: str, sim: ExchangeSimulator, receiver_url: str) -> Config:
    symbols = sorted({e.venue_symbol for e in sim.scenario.events})
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"h{unique}", "partitions": 1},
        consumer={"group_prefix": f"g{unique}", "warmup_s": 0.0, "commit_interval_s": 1.0},
        metrics={"port": 0},
        exchanges={VENUE: {"enabled": True, "ws_url": sim.url(VENUE),
                           "rest_url": sim.rest_url(VENUE), "symbols": symbols, **EXCHANGE}},
        health=HEALTH,
        alerts={"sinks": [{"name": "rig", "kind": "json", "url": receiver_url,
                           "secret_env": KEY_ENV, "heartbeat_s": 1.0,
                           "backoff_initial_s": 0.1, "backoff_max_s": 0.5}]},
    )  # fmt: skip


def _toml(data: Mapping[str, Any], prefix: str = "") -> str:
    """A TOML text of nested tables of strings, numbers, booleans and lists of strings."""
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, Mapping):
            tables.append((k, v))
        else:
            lines.append(f"{k} = {json.dumps(v)}")
    out = (f"[{prefix}]\n" if prefix and lines else "") + "".join(f"{ln}\n" for ln in lines)
    for k, v in tables:
        out += _toml(v, f"{prefix}.{k}" if prefix else k)
    return out


@dataclass
class Rig:
    cfg: Config
    sim: ExchangeSimulator
    receiver: WebhookReceiver
    prometheus: Service
    http: aiohttp.ClientSession
    producer: ProducerService
    dispatcher: AlertDispatcher
    consumer: ConsumerService | None  # None: a separate OS process (``consumer_process``)
    consumer_process: asyncio.subprocess.Process | None = None
    injected_at: float = 0.0
    started_loop_t: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    log: list[str] = field(default_factory=list)
    _reporters: dict[int, AsyncService] = field(default_factory=dict)  # service id -> reporter

    # ---- the engine path -------------------------------------------------------------------

    def health_alerts(self) -> list[dict[str, Any]]:
        return [r.alert for r in self.receiver.received if r.alert.get("category") == "health"]

    async def engine(
        self, rule: str, status: str, exchange: str, symbol: str, timeout_s: float
    ) -> float:
        """Seconds from the injection until the sink received ``rule``'s ``status`` transition
        for the target (arrived after the injection)."""

        def match(r: Received) -> bool:
            a = r.alert
            return (a.get("category") == "health" and a["rule"] == rule
                    and a["status"] == status and a["exchange"] == exchange
                    and a["symbol"] == symbol and r.arrived_ts >= self.injected_at)  # fmt: skip

        got = await self.receiver.wait_alert(match, timeout_s)
        self.log.append(f"engine {status} {got.alert['summary']}")
        return got.arrived_ts - self.injected_at

    # ---- the Prometheus path ---------------------------------------------------------------

    async def alerts(self) -> list[dict[str, Any]]:
        """Prometheus's active alerts (pending and firing)."""
        url = f"{self.prometheus.url}/api/v1/alerts"
        async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
            body = await resp.json()
        assert body["status"] == "success", body
        return list(body["data"]["alerts"])

    async def prometheus_alert(
        self, name: str, labels: Mapping[str, str], firing: bool, timeout_s: float
    ) -> float:
        """Seconds from the injection until the shipped rule ``name`` is firing for a series
        with ``labels`` (``firing``), or until no such alert is active (not ``firing``)."""
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.prometheus.poll() is None, self.prometheus.tail()
            hits = [a for a in await self.alerts() if a["labels"].get("alertname") == name
                    and all(a["labels"].get(k) == v for k, v in labels.items())]  # fmt: skip
            now = time.time()
            if firing and any(a["state"] == "firing" for a in hits):
                self.log.append(f"prometheus firing {name} {labels} {hits[0]['annotations']}")
                return now - self.injected_at
            if not firing and not hits:
                self.log.append(f"prometheus resolved {name} {labels}")
                return now - self.injected_at
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} {labels} firing={firing}: {hits}\n" + "\n".join(
                    self.log))  # fmt: skip
            await asyncio.sleep(POLL_S)

    async def firing_health(self) -> list[str]:
        """Names of the health alerts Prometheus fires now, Watchdog aside."""
        return sorted(a["labels"]["alertname"] for a in await self.alerts()
                      if a["labels"].get("category") == "health" and a["state"] == "firing"
                      and a["labels"]["alertname"] != "Watchdog")  # fmt: skip

    # ---- lifecycle of a test ---------------------------------------------------------------

    async def learned(self, timeout_s: float = 60.0) -> None:
        """Until every producer stream of the venue has learned its gaps and Prometheus scrapes
        the return periods (then a silence can be judged on both paths)."""
        deadline = time.monotonic() + timeout_s
        reporter = self.reporters_of(self.producer)
        while True:
            models = getattr(reporter, "models", {})
            if len(models) == 3 and all(m.snapshot().fit is not None for m in models.values()):
                q = "count(cascade_event_silence_return_period_seconds{stage='producer'})"
                async with self.http.get(f"{self.prometheus.url}/api/v1/query",
                                         params={"query": q}) as resp:  # fmt: skip
                    res = (await resp.json())["data"]["result"]
                if res and float(res[0]["value"][1]) == 3:
                    return
            assert time.monotonic() < deadline, f"streams not learned: {models}"
            await asyncio.sleep(self.cfg.health.sample_s)

    def reporters_of(self, service: AsyncService) -> AsyncService:
        return self._reporters[id(service)]

    def inject(self, what: str) -> None:
        self.injected_at = time.time()
        self.log.append(f"inject {what} at {self.injected_at:.3f}")


async def start_prometheus(tmp: Path, targets: Mapping[str, int]) -> Service:
    """A real Prometheus scraping ``targets`` (job -> port) every second with the shipped rules."""
    prom = binary("prometheus")
    config = {  # JSON is YAML
        "global": {"scrape_interval": f"{SCRAPE_S}s", "scrape_timeout": f"{SCRAPE_S}s",
                   "evaluation_interval": f"{SCRAPE_S}s"},
        "rule_files": [str(RULES_FILE)],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{p}"]}]}
                           for job, p in targets.items()],
    }  # fmt: skip
    (tmp / "prometheus.yml").write_text(json.dumps(config, indent=2))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = launch(
        "prometheus",
        [prom, f"--config.file={tmp / 'prometheus.yml'}", f"--storage.tsdb.path={tmp / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url={url}"],
        tmp / "prometheus.log", url,
    )  # fmt: skip
    try:
        await asyncio.to_thread(wait_ready, service)
    except BaseException:
        service.stop()
        raise
    return service


def consumer_argv(config_file: Path, metrics_port: int) -> list[str]:
    script = Path(sys.executable).with_name("cascade-monitor")
    cli = [str(script)] if script.exists() else [sys.executable, "-m", "monitor.app.cli"]
    return [*cli, "consume", "--exchange", VENUE, "--config", str(config_file),
            "--metrics-port", str(metrics_port)]  # fmt: skip


@asynccontextmanager
async def rig(
    bootstrap: str, unique: str, tmp: Path, *, consumer_process: bool = False
) -> AsyncIterator[Rig]:
    """Everything of the module docstring, running; the producer connected and the consumer
    (process) heartbeating. Stops everything it started."""
    scenario = crash_scenario(duration_s=SCENARIO_S, seed=SEED, venues=(VENUE,),
                              calm_fraction=1.0)  # fmt: skip
    key = secrets.token_hex(16)
    async with AsyncExitStack() as stack:
        receiver = await stack.enter_async_context(WebhookReceiver(key.encode()))
        sim = await stack.enter_async_context(ExchangeSimulator(scenario, speed=SPEED))
        cfg = rig_config(bootstrap, unique, sim, receiver.url)
        registry = CollectorRegistry()
        endpoint = serve_metrics(cfg, registry)
        stack.callback(endpoint.close)
        targets = {"cascade-rig": endpoint.port}
        proc: asyncio.subprocess.Process | None = None
        if consumer_process:
            port = free_port()
            targets["cascade-rig-consumer"] = port
            cfg_file = tmp / "consumer.toml"
            cfg_file.write_text(_toml({
                "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": cfg.kafka.topic_prefix,
                          "partitions": 1},
                "consumer": {"group_prefix": cfg.consumer.group_prefix, "warmup_s": 0.0,
                             "commit_interval_s": 1.0},
                "health": HEALTH,
                "exchanges": {VENUE: {"enabled": True}},
            }))  # fmt: skip
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("CASCADE_MONITOR") and k != "PYTHONASYNCIODEBUG"}  # fmt: skip
            with (tmp / "consumer.log").open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    *consumer_argv(cfg_file, port), stdout=out, stderr=subprocess.STDOUT,
                    env=env, start_new_session=True,
                )  # fmt: skip

            async def _stop_consumer(p: asyncio.subprocess.Process = proc) -> None:
                """SIGTERM (after SIGCONT, should it be frozen), SIGKILL after 15 s."""
                if p.returncode is None:
                    os.killpg(p.pid, signal.SIGCONT)
                    p.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(p.wait(), 15)
                    except TimeoutError:
                        os.killpg(p.pid, signal.SIGKILL)
                        await p.wait()

            stack.push_async_callback(_stop_consumer)
        prometheus = await start_prometheus(tmp, targets)
        stack.callback(prometheus.stop)
        http = await stack.enter_async_context(aiohttp.ClientSession())
        dispatcher = AlertDispatcher(cfg, registry, environ={KEY_ENV: key})
        consumer = None if consumer_process else ConsumerService(cfg, VENUE, registry)
        producer = ProducerService(cfg, VENUE, registry)
        r = Rig(cfg, sim, receiver, prometheus, http, producer, dispatcher, consumer, proc)
        for service in (dispatcher, consumer, producer):
            if service is None:
                continue
            await stack.enter_async_context(service)
            reporter = reporter_for(cfg, service, registry)
            r._reporters[id(service)] = reporter
            await stack.enter_async_context(reporter)
        await producer.wait_connected(timeout_s=30)
        sim.play()
        if proc is not None:  # the consumer process heartbeats once it runs
            watch = dispatcher.watch
            assert watch is not None

            def consumer_heard() -> bool:
                return watch.evaluator.components(time.time()).get("consumer", 0) == 1

            deadline = time.monotonic() + 60
            while not consumer_heard():
                assert proc.returncode is None, (tmp / "consumer.log").read_text()[-3000:]
                assert time.monotonic() < deadline, (tmp / "consumer.log").read_text()[-3000:]
                await asyncio.sleep(cfg.health.heartbeat_s)
        try:
            yield r
        finally:
            print("\n".join(r.log))  # the timeline, shown by pytest on failure (or with -s)


async def stop_broker(data_dir: Path) -> None:
    await asyncio.to_thread(subprocess.run, [str(noida_binary()), "down", "--data-dir",
                                             str(data_dir)], capture_output=True, check=True)  # fmt: skip


async def start_broker(data_dir: Path, port: int) -> str:
    await asyncio.to_thread(
        subprocess.run,
        [str(noida_binary()), "up", "--only", "kafka", "--kafka-port", str(port), "--data-dir",
         str(data_dir)], capture_output=True, check=True,
    )  # fmt: skip
    assert port_open("127.0.0.1", port)
    return f"127.0.0.1:{port}"
