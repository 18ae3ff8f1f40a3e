"""Dead-letter topic: refused frames land raw, with their reason, on a real broker."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry

from monitor.core.config import load
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from producers.service import ProducerService


async def test_garbage_frames_go_to_the_dead_letter_topic(
    kafka_bootstrap: str, unique: str
) -> None:
    """A frame of garbage and a frame with a bad item reach the producer through a real socket;
    both are counted and written raw to <prefix>.deadletter.bybit with the reason."""
    scenario = crash_scenario(duration_s=2.0, venues=("bybit",))
    garbage = b"\x00not json"
    bad_item = (
        b'{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"BTCUSDT",'
        b'"S":"Sideways","v":"0.1","p":"1.0","L":"PlusTick","i":"x","BT":false}]}'
    )
    async with ExchangeSimulator(scenario) as sim:
        cfg = load(environ={}).with_overrides(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"dl{unique}",
                   "dead_letter": True},
            exchanges={"bybit": {"ws_url": sim.url("bybit"), "symbols": ["BTCUSDT"],
                                 "all_liquidations": False}},  # one socket
        )  # fmt: skip
        registry = CollectorRegistry()
        async with ProducerService(cfg, "bybit", registry):
            await sim.wait_subscribed("bybit", ["publicTrade.BTCUSDT"])
            assert await sim.inject("bybit", [garbage, bad_item]) == 1
            consumer = AIOKafkaConsumer(
                cfg.dead_letter_topic("bybit"), bootstrap_servers=kafka_bootstrap,
                auto_offset_reset="earliest", enable_auto_commit=False,
            )  # fmt: skip
            await consumer.start()
            try:
                records = []
                async with asyncio.timeout(20):
                    while len(records) < 2:
                        batch = await consumer.getmany(timeout_ms=500)
                        records += [r for rs in batch.values() for r in rs]
            finally:
                await consumer.stop()
    by_value = {r.value: dict(r.headers) for r in records}
    assert by_value[garbage]["reason"] == b"bad_json"
    assert by_value[bad_item]["reason"] == b"bad_side"
    assert all(r.key == b"public" for r in records)
    sample = registry.get_sample_value
    assert sample("cascade_dead_letters_total", {"exchange": "bybit", "reason": "bad_json"}) == 1
    assert sample("cascade_parse_errors_total", {"exchange": "bybit", "reason": "bad_side"}) == 1
