"""End to end on a real broker: simulator -> producers -> Kafka -> consumers -> /metrics."""

from __future__ import annotations

import asyncio
import urllib.request
from collections import defaultdict
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from consumers.service import ConsumerService
from monitor.app.pipeline import Pipeline
from monitor.app.runtime import serve_metrics
from monitor.core.config import Config, load
from monitor.core.symbols import canonical, split_concatenated
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from producers.service import ProducerService

EXCHANGES = ("binance", "bybit")
Key = tuple[str, str, str]  # exchange, canonical symbol, side


def _config(bootstrap: str, unique: str, sim: ExchangeSimulator, symbols: Sequence[str]) -> Config:
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"it{unique}", "partitions": 3},
        consumer={"group_prefix": f"g{unique}", "commit_interval_s": 0.2},
        metrics={"port": 0},
        exchanges={
            x: {
                "ws_url": sim.url(x),
                "rest_url": sim.rest_url(x),
                "symbols": list(symbols),
                "stale_after_s": 10.0,
            }
            for x in EXCHANGES
        },
    )


def _canonical(venue_symbol: str) -> str:
    return canonical(*split_concatenated(venue_symbol))


def _sent(sim: ExchangeSimulator) -> dict[Key, float]:
    return {
        (venue, _canonical(vs), side): v
        for (venue, vs, side), v in sim.ledger.liquidation_notional().items()
    }


def _scrape(url: str) -> dict[Key, float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    out: dict[Key, float] = defaultdict(float)
    for fam in text_string_to_metric_families(text):
        if fam.name != "cascade_liquidation_notional_usd":
            continue
        for s in fam.samples:
            if s.name.endswith("_total"):
                out[(s.labels["exchange"], s.labels["symbol"], s.labels["side"])] += s.value
    return dict(out)


async def _scrape_async(url: str) -> dict[Key, float]:
    return await asyncio.to_thread(_scrape, url)


async def test_liquidation_notional_on_metrics_equals_what_the_simulator_sent(
    kafka_bootstrap: str, unique: str
) -> None:
    scenario = crash_scenario(duration_s=40.0, seed=11)
    symbols = sorted({e.venue_symbol for e in scenario.events})
    async with ExchangeSimulator(scenario, speed=10.0) as sim:
        cfg = _config(kafka_bootstrap, unique, sim, symbols)
        registry = CollectorRegistry()
        endpoint = serve_metrics(cfg, registry)
        try:
            async with Pipeline(cfg, EXCHANGES, registry) as pipeline:
                sim.play()
                await sim.wait_finished()
                published = await pipeline.drain()
                for c in pipeline.consumers:
                    assert published[c.exchange] > 0
                    assert c.processed_events == published[c.exchange]
                seen = await _scrape_async(endpoint.url)
        finally:
            endpoint.close()

    sent = _sent(sim)
    # every pair on both venues carried long liquidations in the crash
    for x in EXCHANGES:
        for s in symbols:
            assert sent.get((x, _canonical(s), "long"), 0.0) > 0, (x, s)
    assert set(seen) >= set(sent)
    for key, usd in sent.items():
        assert seen[key] == pytest.approx(usd, abs=0.005), key
    for key in set(seen) - set(sent):
        assert seen[key] == 0.0, key


async def test_consumer_restart_mid_stream_counts_nothing_twice_and_loses_nothing(
    kafka_bootstrap: str, unique: str
) -> None:
    scenario = crash_scenario(duration_s=40.0, seed=12)
    symbols = sorted({e.venue_symbol for e in scenario.events})
    async with ExchangeSimulator(scenario, speed=8.0) as sim:
        cfg = _config(kafka_bootstrap, unique, sim, symbols)
        producers = [ProducerService(cfg, x, CollectorRegistry()) for x in EXCHANGES]
        first = [ConsumerService(cfg, x, CollectorRegistry()) for x in EXCHANGES]
        second: list[ConsumerService] = []
        try:
            for c in first:
                await c.start()
            for p in producers:
                await p.start()
            for p in producers:
                await p.wait_connected(timeout_s=15)
            sim.play()
            finished = asyncio.ensure_future(sim.wait_finished())
            # stop the first consumers once they have applied some events, while the
            # simulator is still playing and the producers are still publishing
            for c in first:
                await c.wait_processed(200, timeout_s=60)
            for c in first:
                await c.stop()
            assert not finished.done(), "the scenario ended before the restart: not mid-stream"
            second = [ConsumerService(cfg, x, CollectorRegistry()) for x in EXCHANGES]
            for c in second:
                await c.start()
            await finished
            for p in producers:
                await p.stop()
            for a, b, p in zip(first, second, producers, strict=True):
                await b.wait_processed(p.published_events - a.processed_events, timeout_s=60)
                assert a.processed_events + b.processed_events == p.published_events
        finally:
            for p in producers:
                await p.stop()
            for c in first + second:
                await c.stop()

    totals: dict[Key, float] = defaultdict(float)
    for c in first + second:
        for row in c.snapshot():
            totals[(row.exchange, row.symbol, "long")] += row.liq_notional_long
            totals[(row.exchange, row.symbol, "short")] += row.liq_notional_short
    sent = _sent(sim)
    for key, usd in sent.items():
        assert totals[key] == pytest.approx(usd, abs=0.005), key
    assert all(c.processed_events > 0 for c in first + second)
