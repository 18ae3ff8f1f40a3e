"""Every wired venue end to end over real sockets: the simulator speaking the venue's protocol
(and serving its instrument metadata over REST) -> the producer -> Kafka -> the consumer. The
liquidation notional per pair and side equals what the simulator sent, to the cent."""

from __future__ import annotations

from collections import defaultdict

import pytest
from prometheus_client import CollectorRegistry

from monitor.app.pipeline import Pipeline
from monitor.core.config import load
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from producers.registry import EXCHANGES, VENUES

# venues whose market context (mark price; open interest in USD) the producers collect: every one.
# Open interest by REST polling on Binance and HTX; in base units (USD derived from the mark by the
# consumer) on Binance, Gate, Bitget and linear BitMEX.
WITH_MARK = set(EXCHANGES)
WITH_OPEN_INTEREST = WITH_MARK


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_venue_end_to_end(venue: str, kafka_bootstrap: str, unique: str) -> None:
    scenario = crash_scenario(duration_s=30.0, seed=3, venues=(venue,))
    registry = CollectorRegistry()
    async with ExchangeSimulator(scenario, speed=10.0) as sim:
        cfg = load(environ={}).with_overrides(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"v{unique}",
                   "partitions": 2},
            consumer={"group_prefix": f"v{unique}"},
            exchanges={venue: {"enabled": True, "ws_url": sim.url(venue),
                               "rest_url": sim.rest_url(venue), "poll_interval_s": 0.3,
                               "symbols": list(VENUES[venue].defaults.symbols)}},
        )  # fmt: skip
        async with Pipeline(cfg, [venue], registry) as pipeline:
            await sim.wait_liquidations_subscribed()
            sim.play()
            await sim.wait_finished()
            published = await pipeline.drain()
            rows = pipeline.consumers[0].snapshot()

    counts = sim.ledger.counts()[venue]
    assert counts["trades"] > 0
    assert (counts["liquidations"] > 0) == (venue != "hyperliquid")  # no public liquidations
    assert published[venue] >= counts["liquidations"] + counts["trades"]
    errors = [s for s in registry.collect() if s.name == "cascade_parse_errors"]
    assert not [x for f in errors for x in f.samples if x.value], errors
    seen: dict[tuple[str, str], float] = defaultdict(float)
    for r in rows:
        for side, usd in zip(("long", "short", "unknown"), r.liq_notional_usd, strict=False):
            seen[(r.symbol, side)] += usd
    sent = {(s, side): v for (_, s, side), v in sim.ledger.liquidation_notional_by_pair().items()}
    assert {k for k, v in sent.items() if v} == {k for k, v in seen.items() if v}
    for key, usd in sent.items():
        assert seen[key] == pytest.approx(usd, abs=0.005), key
    for r in rows:
        if r.trades == 0:  # liquidations only (Bybit's inverse perpetuals): no market context
            continue
        assert (r.mark_price > 0) == (venue in WITH_MARK), (r.symbol, r.mark_price)
        assert (r.open_interest_usd > 0) == (venue in WITH_OPEN_INTEREST), r.symbol
