"""Apache Kafka restarted under load: producers (acks=all, idempotent) keep what they accepted and
send it once the broker is back, consumers resume from their commits; per pair and side the
consumers count exactly what the simulator sent, with nothing dropped or abandoned, and no component
had to be restarted (they recover by themselves).

That the outage was felt is checked on what it must cause, not on client errors (aiokafka retries
a produce request within ``kafka.request_timeout_ms``, so a short outage fails no send): the
simulator streams trades to both venues throughout (about 20 a second each), so the producers
receive events while the broker process is gone, and none of those can reach a consumer before the
broker serves again. Events received in the first half of the down time therefore wait at least
half of it, and the consumers' ``cascade_event_to_metric_latency_seconds``, summed over the venues,
must hold some above that bound."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.core.metrics import LATENCY_BUCKETS
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from producers.registry import VENUES
from tests.brokers import KafkaBroker
from tests.monitor.app.test_run import (
    get,
    liquidation_usd,
    readiness,
    scrape,
    start_run,
    stop,
    until,
)

pytestmark = [pytest.mark.scaling, pytest.mark.slow]
VENUE_SET = ("binance", "bybit")


def total(url: str, name: str) -> float:
    return sum(scrape(url + "/metrics").get(name, {}).values())


def delayed(url: str, bound: float) -> float:
    """Events a consumer applied more than ``bound`` seconds (a bucket bound of
    ``cascade_event_to_metric_latency_seconds``) after their receipt by the producer."""
    buckets = scrape(url + "/metrics").get("cascade_event_to_metric_latency_seconds_bucket", {})
    by_le = {dict(labels)["le"]: v for labels, v in buckets.items()}
    return by_le.get("+Inf", 0.0) - by_le.get(str(bound), 0.0)


async def test_a_broker_restart_under_load_loses_no_acknowledged_event(
    apache_kafka: KafkaBroker, unique: str, tmp_path: Path
) -> None:
    scenario = crash_scenario(duration_s=90.0, seed=6, venues=VENUE_SET)
    async with ExchangeSimulator(scenario, speed=1.5) as sim:
        lines = [
            "[kafka]", f'bootstrap_servers = "{apache_kafka.bootstrap}"',
            f'topic_prefix = "r{unique}"', "partitions = 4", "request_timeout_ms = 60000",
            "[consumer]", f'group_prefix = "r{unique}"', "warmup_s = 0",
            "[alerts]", "rules = []",
        ]  # fmt: skip
        for x in VENUE_SET:
            symbols = ", ".join(f'"{s}"' for s in VENUES[x].defaults.symbols)
            lines += [f"[exchanges.{x}]", "enabled = true", f'ws_url = "{sim.url(x)}"',
                      f'rest_url = "{sim.rest_url(x)}"', f"symbols = [{symbols}]"]  # fmt: skip
        config = tmp_path / "restart.toml"
        config.write_text("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("CASCADE_MONITOR")}
        proc, supervisor, urls = await start_run(config, env, 2 * len(VENUE_SET) + 1)
        try:
            # as test_run: 21 processes starting at once on two cores (a clean clone's first
            # run compiles the numba kernels in each) take minutes on a loaded machine
            await until(
                "ready", lambda: get(supervisor + "/readyz")[0] == 200, 180, lambda: readiness(urls)
            )
            await sim.wait_liquidations_subscribed(timeout_s=60)
            sim.play()
            # once liquidations flow end to end, the broker goes down and comes back
            await until(
                "flowing", lambda: bool(liquidation_usd(urls["consume bybit"] + "/metrics")), 60
            )
            down_at = time.monotonic()
            await asyncio.to_thread(apache_kafka.stop)
            gone_at = time.monotonic()  # the broker process has exited
            await asyncio.to_thread(apache_kafka.start)
            back_at = time.monotonic()  # it answers again (probed every 0.1 s)
            back_s, gone_s = back_at - down_at, back_at - gone_at

            def delivered() -> bool:
                """No producer holds an event Kafka has not acknowledged (what they received
                while the broker was gone was sent once it answered)."""
                return not any(
                    total(urls[f"produce {x}"], "cascade_producer_buffered_events")
                    for x in VENUE_SET
                )

            await until("the producers' backlog delivered", delivered, 120)
            delivered_s = time.monotonic() - back_at
            await sim.wait_finished()
            sent: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
            for (x, symbol, side), usd in sim.ledger.liquidation_notional_by_pair().items():
                if usd:
                    sent[x][(symbol, side)] = usd

            def counted(x: str) -> Callable[[], bool]:
                def check() -> bool:
                    got = liquidation_usd(urls[f"consume {x}"] + "/metrics")
                    return set(got) == set(sent[x]) and all(
                        abs(got[k] - v) <= 0.005 for k, v in sent[x].items()
                    )

                return check

            for x in VENUE_SET:
                await until(f"{x} counted after the restart", counted(x), 180)
            recovered_s = time.monotonic() - down_at
            for x in VENUE_SET:
                producer = urls[f"produce {x}"]
                assert total(producer, "cascade_events_dropped_total") == 0
                assert total(producer, "cascade_events_abandoned_total") == 0
            # events received while the broker was gone waited for it (module docstring)
            bound = max(b for b in LATENCY_BUCKETS if b <= gone_s / 2)
            held = sum(delayed(urls[f"consume {x}"], bound) for x in VENUE_SET)
            assert held > 0, f"no event waited > {bound} s of a {gone_s:.1f} s outage"
            restarts = scrape(supervisor + "/metrics").get("cascade_component_restarts_total", {})
            assert sum(restarts.values()) == 0, restarts
            print(f"\nbroker restart: down and back in {back_s:.1f} s (process gone for "
                  f"{gone_s:.1f} s); the producers' backlog delivered {delivered_s:.1f} s after "
                  f"it answered; {held:.0f} events held > {bound} s; every liquidation of "
                  f"the scenario counted {recovered_s:.1f} s after it went down")  # fmt: skip
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                assert await proc.wait() == 0
        finally:
            await stop(proc)
