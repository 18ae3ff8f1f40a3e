"""A misbehaving venue: dropped connections, a silent (stalled) socket and garbage frames in the
middle of a crash. The producers reconnect and re-subscribe, and everything the simulator sent
while they were connected reaches /metrics, to the cent."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry

from monitor.app.pipeline import Pipeline
from monitor.core.config import load
from monitor.core.symbols import canonical, split_concatenated
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator

EXCHANGES = ("binance", "bybit")


async def test_drops_stall_and_garbage_lose_nothing_sent_while_connected(
    kafka_bootstrap: str, unique: str
) -> None:
    scenario = crash_scenario(duration_s=60.0, seed=21)
    symbols = sorted({e.venue_symbol for e in scenario.events})
    registry = CollectorRegistry()
    async with ExchangeSimulator(scenario, speed=6.0) as sim:
        cfg = load(environ={}).with_overrides(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"mb{unique}",
                   "partitions": 2},
            consumer={"group_prefix": f"mb{unique}"},
            # only bybit's socket is stalled on purpose: binance's liquidation stream may be
            # quiet for seconds in this crash, and a watchdog reconnect there would race the drop
            exchanges={x: {"ws_url": sim.url(x), "rest_url": sim.rest_url(x), "symbols": symbols,
                           "stale_after_s": 1.0 if x == "bybit" else 60.0,
                           "all_liquidations": False,
                           "backoff_initial_s": 0.05, "backoff_max_s": 0.2} for x in EXCHANGES},
        )  # fmt: skip
        async with Pipeline(cfg, EXCHANGES, registry) as pipeline:
            sim.play()
            finished = asyncio.ensure_future(sim.wait_finished())
            binance, bybit = pipeline.producers
            await binance.wait_published(300, timeout_s=30)
            await binance.wait_connected(10)
            assert await sim.drop_connections("binance") == 2  # liquidations + trades
            await sim.inject("bybit", [b"\x00garbage", b'{"topic":"publicTrade.BTCUSDT","da'])
            (session,) = bybit.sessions
            served = session.served
            sim.stall("bybit", True)  # the socket stays open and says nothing
            await session.wait_served(served + 1, timeout_s=20)  # the watchdog reconnected
            # at least once: while the venue stays stalled, every new socket is silent too and
            # the 1 s watchdog goes on reconnecting (two clean-clone runs under load counted 2)
            stale = registry.get_sample_value(
                "cascade_reconnects_total", {"exchange": "bybit", "reason": "stale"}
            )
            assert stale is not None and stale >= 1
            sim.stall("bybit", False)
            await bybit.wait_connected(10)
            await sim.drop_connections("bybit")
            assert not finished.done(), "the scenario ended before the faults: lengthen it"
            await finished
            published = await pipeline.drain()
            rows = [r for c in pipeline.consumers for r in c.snapshot()]

    sample = registry.get_sample_value
    assert sample("cascade_reconnects_total", {"exchange": "binance", "reason": "closed"}) >= 2
    assert sample("cascade_parse_errors_total", {"exchange": "bybit", "reason": "bad_json"}) == 2
    counts = sim.ledger.counts()
    for x in EXCHANGES:  # market context (mark, funding, OI) is published too, outside the ledger,
        # and each liquidation once more under the venue-wide key "*" (docs/risk-models.md §9.2)
        contexts = sample("cascade_events_received_total", {"exchange": x, "kind": "context"}) or 0
        liquidations = counts[x]["liquidations"]
        assert published[x] == 2 * liquidations + counts[x]["trades"] + contexts
    seen: dict[tuple[str, str, str], float] = defaultdict(float)
    for r in rows:
        seen[(r.exchange, r.symbol, "long")] += r.liq_notional_long
        seen[(r.exchange, r.symbol, "short")] += r.liq_notional_short
    for (venue, venue_symbol, side), usd in sim.ledger.liquidation_notional().items():
        key = (venue, canonical(*split_concatenated(venue_symbol)), side)
        assert seen[key] == pytest.approx(usd, abs=0.005), key


async def test_okx_upgrade_notice_switches_sockets_before_the_cut(
    kafka_bootstrap: str, unique: str
) -> None:
    """OKX announces a service upgrade (event notice, code 64008) 60 s before it disconnects: the
    session opens and subscribes a new socket, then closes the old one; nothing is lost."""
    scenario = crash_scenario(duration_s=40.0, seed=8, venues=("okx",))
    registry = CollectorRegistry()
    notice = b'{"event":"notice","code":"64008","msg":"The connection will soon be closed for a service upgrade. Please reconnect.","connId":"a4d3ae55"}'
    async with ExchangeSimulator(scenario, speed=8.0) as sim:
        cfg = load(environ={}).with_overrides(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"up{unique}"},
            consumer={"group_prefix": f"up{unique}"},
            exchanges={"okx": {"enabled": True, "ws_url": sim.url("okx"),
                               "rest_url": sim.rest_url("okx"),
                               "symbols": ["BTC-USDT-SWAP", "ETH-USDT-SWAP"]}},
        )  # fmt: skip
        async with Pipeline(cfg, ["okx"], registry) as pipeline:
            (session,) = pipeline.producers[0].sessions
            sim.play()
            finished = asyncio.ensure_future(sim.wait_finished())
            await pipeline.producers[0].wait_published(100, timeout_s=30)
            assert await sim.inject("okx", [notice]) == 1
            await session.wait_served(2, timeout_s=10)
            assert not finished.done(), "the scenario ended before the notice: lengthen it"
            await finished
            await pipeline.drain()
            rows = pipeline.consumers[0].snapshot()

    sample = registry.get_sample_value
    assert sample("cascade_reconnects_total", {"exchange": "okx", "reason": "upgrade"}) == 1
    seen = {(r.symbol, "long"): r.liq_notional_long for r in rows}
    seen |= {(r.symbol, "short"): r.liq_notional_short for r in rows}
    for (_, symbol, side), usd in sim.ledger.liquidation_notional_by_pair().items():
        if symbol in ("BTC-USDT-PERP", "ETH-USDT-PERP"):
            assert seen[(symbol, side)] == pytest.approx(usd, abs=0.005), (symbol, side)
