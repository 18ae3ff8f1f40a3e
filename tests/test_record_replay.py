"""A session recorded with the producers' own session, replayed through the real producer path
into Kafka: exact counts and sums against what the simulator sent."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.config import load
from monitor.pipeline import Pipeline
from monitor.recording import read_recording
from monitor.simulator.replay import ReplayServer
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from monitor.symbols import canonical, split_concatenated
from producers.recording import record


async def test_record_then_replay_through_the_producer(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    scenario = crash_scenario(duration_s=20.0, seed=5, venues=("binance",))
    symbols = sorted({e.venue_symbol for e in scenario.events})
    path = tmp_path / "binance.jsonl.gz"
    async with ExchangeSimulator(scenario, speed=10.0) as sim:
        cfg = load(environ={}).with_overrides(
            exchanges={"binance": {"ws_url": sim.url("binance"), "symbols": symbols}}
        )
        stop = asyncio.Event()
        recorder = asyncio.ensure_future(record(cfg, "binance", path, stop))
        await sim.wait_subscribed(
            "binance", ["!forceOrder@arr", *(f"{s.lower()}@aggTrade" for s in symbols)]
        )
        sim.play()
        await sim.wait_finished()
        stop.set()  # the sessions close gracefully: frames already sent are read first
        frames = await recorder

    rec = read_recording(path)
    assert rec.exchange == "binance"
    assert [c["name"] for c in rec.connections()] == ["liquidations", "trades"]
    assert sum(len(f) for f in rec.frames.values()) == frames
    sent_counts = sim.ledger.counts()["binance"]
    assert len(rec.frames["liquidations"]) == sent_counts["liquidations"]  # one per frame
    assert len(rec.frames["trades"]) == sent_counts["trades"]  # one aggTrade per frame

    async with ReplayServer(path, speed=20.0) as replay:
        cfg = load(environ={}).with_overrides(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"rr{unique}",
                   "partitions": 2},
            consumer={"group_prefix": f"rr{unique}"},
            exchanges={"binance": {"ws_url": replay.url, "symbols": symbols}},
        )  # fmt: skip
        async with Pipeline(cfg, ["binance"], CollectorRegistry()) as pipeline:
            await replay.wait_played()
            published = await pipeline.drain()
            (consumer,) = pipeline.consumers
            rows = consumer.snapshot()

    assert published == {"binance": sent_counts["liquidations"] + sent_counts["trades"]}
    seen: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        seen[(row.symbol, "long")] += row.liq_notional_long
        seen[(row.symbol, "short")] += row.liq_notional_short
    for (_, venue_symbol, side), usd in sim.ledger.liquidation_notional().items():
        key = (canonical(*split_concatenated(venue_symbol)), side)
        assert seen[key] == pytest.approx(usd, abs=0.005), key
