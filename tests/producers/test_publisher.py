from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError, RequestTimedOutError
from prometheus_client import CollectorRegistry

from monitor.core.codec import decode_batch
from monitor.core.config import Config
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event, OrderSide, QtyUnit, Trade
from monitor.core.topics import ensure_topics
from producers.events import new_trade
from producers.publisher import Publisher
from tests.producers.kafkautil import read_records

SYMBOLS = ("BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP")


def trade(symbol: str, i: int) -> Trade:
    return new_trade("binance", symbol, symbol.replace("-", "")[:-4], OrderSide.BUY, 100.0 + i,
                     1.0, QtyUnit.BASE, 1.0, 1.0, 100.0 + i, None, 1760000000000 + i, i, str(i))  # fmt: skip


def config(bootstrap: str, unique: str, **kafka: Any) -> Config:
    settings = {"bootstrap_servers": bootstrap, "topic_prefix": f"p{unique}", "partitions": 3,
                "linger_ms": 2, **kafka}  # fmt: skip
    return Config().with_overrides(kafka=settings)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    v = registry.get_sample_value(name, {"exchange": "binance", **labels})
    return 0.0 if v is None else v


async def test_every_accepted_event_arrives_once_in_order_keyed_by_symbol(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = config(kafka_bootstrap, unique, max_batch_events=50)
    await ensure_topics(kafka_bootstrap, [cfg.topic("binance")], 3, 1, 3600)
    registry = CollectorRegistry()
    pub = Publisher(cfg, "binance", ProducerMetrics(registry))
    sent: dict[str, list[str]] = defaultdict(list)
    rng = random.Random(3)
    await pub.start()
    try:
        i = 0
        while i < 1500:  # frames of 1..40 events of one symbol, sender running in between
            sym = rng.choice(SYMBOLS)
            chunk = [trade(sym, i + k) for k in range(rng.randint(1, 40))]
            i += len(chunk)
            assert pub.add(chunk) == len(chunk)
            sent[sym].extend(e.trade_id for e in chunk)
            await asyncio.sleep(0)
        total = sum(len(v) for v in sent.values())
        await pub.flush(timeout_s=30)
        assert pub.published_events == total
    finally:
        await pub.stop()
    records = await read_records(kafka_bootstrap, cfg.topic("binance"), total)
    got: dict[str, list[str]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for partition, key, batch in records:
        assert key == batch.symbol.encode()
        assert batch.exchange == "binance" and batch.n_liquidations == 0
        assert 1 <= batch.n_trades <= 50
        got[batch.symbol].extend(batch.trd["id"])
        partitions[batch.symbol].add(partition)
    assert got == sent  # every event once, per-symbol order kept
    assert all(len(p) == 1 for p in partitions.values())
    assert metric(registry, "cascade_events_published_total") == total
    assert metric(registry, "cascade_records_published_total") == len(records)
    assert metric(registry, "cascade_producer_buffered_events") == 0
    assert metric(registry, "cascade_kafka_send_errors_total") == 0


async def test_buffer_full_refuses_counts_and_delivers_the_accepted(
    kafka_bootstrap: str, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(kafka_bootstrap, unique, max_buffered_events=10)
    await ensure_topics(kafka_bootstrap, [cfg.topic("binance")], 3, 1, 3600)
    registry = CollectorRegistry()
    pub = Publisher(cfg, "binance", ProducerMetrics(registry))
    await pub.start()
    try:
        events = [trade("BTC-USDT-PERP", i) for i in range(15)]
        assert pub.add(events) == 10  # synchronous: nothing was sent yet
        assert pub.buffered == 10
        assert metric(registry, "cascade_producer_buffered_events") == 10
        assert metric(registry, "cascade_events_dropped_total", reason="buffer_full") == 5
        assert any("refused" in r.getMessage() for r in caplog.records)
        await pub.flush(timeout_s=30)
        assert pub.add([trade("BTC-USDT-PERP", 99)]) == 1  # room again
        await pub.flush(timeout_s=30)
    finally:
        await pub.stop()
    records = await read_records(kafka_bootstrap, cfg.topic("binance"), 11)
    ids = [i for _, _, b in records for i in b.trd["id"]]
    assert ids == [str(i) for i in range(10)] + ["99"]
    assert pub.published_events == 11


class FakeProducer:
    """AIOKafkaProducer stand-in: acknowledges after a tick, fails on demand, records in-flight."""

    def __init__(self, fail: int = 0, max_events: int | None = None, hang: bool = False) -> None:
        self.fail = fail
        self.max_events = max_events
        self.hang = hang
        self.attempts: list[tuple[bytes, list[str]]] = []
        self.acked: list[tuple[bytes, list[str]]] = []
        self.inflight: dict[bytes, int] = defaultdict(int)
        self.max_inflight = 0
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        ids = decode_batch(value).trd["id"]
        self.attempts.append((key, ids))
        if self.max_events is not None and len(ids) > self.max_events:
            raise MessageSizeTooLargeError("too large")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self.inflight[key] += 1
        self.max_inflight = max(self.max_inflight, self.inflight[key])
        if self.hang:
            return fut

        def settle() -> None:
            self.inflight[key] -= 1
            if self.fail:
                self.fail -= 1
                fut.set_exception(RequestTimedOutError())
            else:
                self.acked.append((key, ids))
                fut.set_result(None)

        loop.call_later(0.002, settle)
        return fut


class NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return 0.0


async def test_failed_delivery_is_counted_and_resent_without_reordering(unique: str) -> None:
    cfg = config("unused:1", unique, max_batch_events=5)
    registry = CollectorRegistry()
    fake = FakeProducer(fail=3)
    pub = Publisher(cfg, "binance", ProducerMetrics(registry), producer=fake, rng=NoJitter())
    sent: dict[bytes, list[str]] = defaultdict(list)
    await pub.start()
    try:
        for i in range(60):
            sym = SYMBOLS[i % 2]
            pub.add([trade(sym, i)])
            sent[sym.encode()].append(str(i))
            if i % 7 == 0:
                await asyncio.sleep(0.001)  # let batches go out while more arrive
        await pub.flush(timeout_s=10)
    finally:
        await pub.stop()
    acked: dict[bytes, list[str]] = defaultdict(list)
    for key, ids in fake.acked:
        acked[key].extend(ids)
    assert acked == sent
    assert fake.max_inflight == 1  # one batch in flight per symbol
    assert len(fake.attempts) == len(fake.acked) + 3
    assert metric(registry, "cascade_kafka_send_errors_total") == 3
    assert pub.published_events == 60 and fake.stopped


async def test_too_large_records_are_split(unique: str) -> None:
    cfg = config("unused:1", unique, max_batch_events=40)
    registry = CollectorRegistry()
    fake = FakeProducer(max_events=8)
    pub = Publisher(cfg, "binance", ProducerMetrics(registry), producer=fake, rng=NoJitter())
    await pub.start()
    try:
        pub.add([trade("BTC-USDT-PERP", i) for i in range(40)])
        await pub.flush(timeout_s=10)
    finally:
        await pub.stop()
    assert [i for _, ids in fake.acked for i in ids] == [str(i) for i in range(40)]
    assert max(len(ids) for _, ids in fake.acked) <= 8
    assert [len(ids) for _, ids in fake.attempts[:3]] == [40, 20, 10]  # halved until it fits


async def test_stop_gives_up_after_the_flush_timeout_and_counts_abandoned(unique: str) -> None:
    cfg = config("unused:1", unique)
    registry = CollectorRegistry()
    fake = FakeProducer(hang=True)
    pub = Publisher(cfg, "binance", ProducerMetrics(registry), producer=fake)
    await pub.start()
    events: list[Event] = [trade("BTC-USDT-PERP", i) for i in range(7)]
    pub.add(events)
    await pub.stop(flush_timeout_s=0.1)
    await pub.stop()  # idempotent
    assert metric(registry, "cascade_events_abandoned_total") == 7
    assert fake.stopped and pub.published_events == 0
    assert pub.add(events) == 0  # stopped: refused, counted
    assert metric(registry, "cascade_events_dropped_total", reason="stopped") == 7
