"""Every venue: a session recorded with the producers' own session (and the instrument metadata
it fetched), replayed through the real producer path into Kafka: exact sums against what the
simulator sent."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.app.pipeline import Pipeline
from monitor.core.config import Config, load
from monitor.core.recording import read_recording
from monitor.simulator.replay import ReplayServer
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from producers.recording import record
from producers.registry import EXCHANGES, VENUES


def _venue_config(venue: str, ws_url: str, rest_url: str, **kafka: object) -> Config:
    return load(environ={}).with_overrides(
        kafka=kafka,
        exchanges={venue: {"enabled": True, "ws_url": ws_url, "rest_url": rest_url,
                           "symbols": list(VENUES[venue].defaults.symbols)}},
    )  # fmt: skip


@pytest.mark.parametrize("venue", EXCHANGES)
async def test_record_then_replay_through_the_producer(
    venue: str, kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    scenario = crash_scenario(duration_s=20.0, seed=5, venues=(venue,))
    path = tmp_path / f"{venue}.jsonl.gz"
    async with ExchangeSimulator(scenario, speed=10.0) as sim:
        cfg = _venue_config(venue, sim.url(venue), sim.rest_url(venue))
        stop = asyncio.Event()
        recorder = asyncio.ensure_future(record(cfg, venue, path, stop))
        await sim.wait_liquidations_subscribed()
        sim.play()
        await sim.wait_finished()
        stop.set()  # the sessions close gracefully: frames already sent are read first
        frames = await recorder

    rec = read_recording(path)
    assert rec.exchange == venue
    assert frames == sum(len(f) for f in rec.frames.values()) > 0
    counts = sim.ledger.counts()[venue]
    assert counts["trades"] > 0

    async with ReplayServer(path, speed=20.0) as replay:
        cfg = _venue_config(venue, replay.url, replay.rest_url, bootstrap_servers=kafka_bootstrap,
                            topic_prefix=f"rr{unique}", partitions=2)  # fmt: skip
        cfg = cfg.with_overrides(consumer={"group_prefix": f"rr{unique}"})
        async with Pipeline(cfg, [venue], CollectorRegistry()) as pipeline:
            await replay.wait_played()
            published = await pipeline.drain()
            rows = pipeline.consumers[0].snapshot()

    assert published[venue] >= counts["liquidations"] + counts["trades"]
    seen: dict[tuple[str, str], float] = defaultdict(float)
    for r in rows:
        for side, usd in zip(("long", "short", "unknown"), r.liq_notional_usd, strict=False):
            seen[(r.symbol, side)] += usd
    sent = sim.ledger.liquidation_notional_by_pair()
    assert {(s, side) for (_, s, side), v in sent.items() if v} == {k for k, v in seen.items() if v}
    for (_, symbol, side), usd in sent.items():
        assert seen[(symbol, side)] == pytest.approx(usd, abs=0.005), (symbol, side)
