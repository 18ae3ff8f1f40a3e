"""The publisher replaces a producer whose sequence the broker refuses (OutOfOrderSequenceNumber,
UnknownProducerId: aio-libs/aiokafka#1017) and sends the unacknowledged heads again with the new
one: per symbol in order, nothing lost, nothing counted twice, one reset per incident."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, UnknownProducerId
from prometheus_client import CollectorRegistry

import producers.publisher as publisher_module
from monitor.core.codec import decode_batch
from monitor.core.metrics import ProducerMetrics
from producers.publisher import Publisher
from tests.producers.test_publisher import NoJitter, config, metric, trade

SYMBOLS = ("BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP", "XRP-USDT-PERP", "ADA-USDT-PERP")


class ScriptedProducer:
    """AIOKafkaProducer stand-in whose n-th delivery has the outcome ``script[n]`` ("ok", an
    exception class, or "hang": never resolved by the producer); past the script, "ok". The
    outcome is settled on the next loop iteration, as a broker's answer would. ``stop`` refuses
    the first ``refuse_on_stop`` hung deliveries (answers that arrive while it flushes)."""

    def __init__(self, ident: int, script: list[Any], refuse_on_stop: int = 0) -> None:
        self.ident = ident
        self.refuse_on_stop = refuse_on_stop
        self.script = script
        self.attempts: list[tuple[bytes, list[str]]] = []
        self.acked: list[tuple[bytes, list[str]]] = []
        self.hung: list[asyncio.Future[None]] = []
        self.inflight: dict[bytes, int] = defaultdict(int)
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        for fut in self.hung[: self.refuse_on_stop]:
            fut.set_exception(OutOfOrderSequenceNumber())
        self.stopped = True

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future[None]:
        assert self.started and not self.stopped, "sent with a producer that is not running"
        ids = decode_batch(value).trd["id"]
        n = len(self.attempts)
        self.attempts.append((key, ids))
        outcome: Any = self.script[n] if n < len(self.script) else "ok"
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.inflight[key] += 1
        assert self.inflight[key] == 1, "two records of one symbol in flight"
        if outcome == "hang":
            self.hung.append(fut)
            return fut

        def settle() -> None:
            self.inflight[key] -= 1
            if outcome == "ok":
                self.acked.append((key, ids))
                fut.set_result(None)
            else:
                fut.set_exception(outcome())

        asyncio.get_running_loop().call_soon(settle)
        return fut


class Factory:
    """Builds the publisher's producers: the n-th follows ``scripts[n]``."""

    def __init__(self, *scripts: list[Any], refuse_on_stop: int = 0) -> None:
        self.scripts = scripts
        self.refuse_on_stop = refuse_on_stop
        self.built: list[ScriptedProducer] = []

    def __call__(self) -> ScriptedProducer:
        p = ScriptedProducer(len(self.built), self.scripts[len(self.built)], self.refuse_on_stop)
        self.built.append(p)
        return p


def by_symbol(pairs: list[tuple[bytes, list[str]]]) -> dict[bytes, list[str]]:
    out: dict[bytes, list[str]] = defaultdict(list)
    for key, ids in pairs:
        out[key].extend(ids)
    return dict(out)


async def publish(pub: Publisher, n: int) -> dict[bytes, list[str]]:
    """Add ``n`` events round-robin over SYMBOLS, yielding to the sender every few; flush."""
    sent: dict[bytes, list[str]] = defaultdict(list)
    for i in range(n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        assert pub.add([trade(sym, i)]) == 1
        sent[sym.encode()].append(str(i))
        if i % 6 == 5:
            await asyncio.sleep(0)  # one loop iteration: records go out while more arrive
    await pub.flush(timeout_s=10)
    return dict(sent)


async def publish_with(
    cfg: Any, registry: CollectorRegistry, factory: Callable[[], Any], n: int
) -> dict[bytes, list[str]]:
    """Start a publisher on ``factory``'s producers, publish ``n`` events, stop it."""
    pub = Publisher(cfg, "binance", ProducerMetrics(registry), producer_factory=factory,
                    rng=NoJitter())  # fmt: skip
    await pub.start()
    try:
        return await publish(pub, n)
    finally:
        await pub.stop()


async def test_a_refused_sequence_replaces_the_producer_and_resends_in_order(
    unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config("unused:1", unique, max_batch_events=5)
    registry = CollectorRegistry()
    # the first producer: one record acknowledged, then two refused together (one incident), two
    # unanswered: one refused while it stops (same incident), one never (taken back at the reset,
    # its late answer ignored); whatever it would still be handed is refused too
    oos = OutOfOrderSequenceNumber
    factory = Factory(["ok", oos, UnknownProducerId, "hang", "hang"] + [oos] * 50, [],
                      refuse_on_stop=1)  # fmt: skip
    pub = Publisher(cfg, "binance", ProducerMetrics(registry), producer_factory=factory,
                    rng=NoJitter())  # fmt: skip
    await pub.start()
    try:
        sent = await publish(pub, 120)
        old, new = factory.built
        assert old.stopped and not new.stopped
        assert pub.kafka_producer.ident == 1  # the dead-letter sink's handle follows the reset
        # the old producer answers the head it was cut off from: too late, ignored
        published = pub.published_events
        for fut in old.hung[1:]:  # the one it did not refuse while stopping
            fut.set_result(None)
        await asyncio.sleep(0)  # one loop iteration: the futures' callbacks run
        assert pub.published_events == published
    finally:
        await pub.stop()
    assert len(factory.built) == 2 and new.stopped
    assert len(old.hung) == 2
    acked = by_symbol(old.acked + new.acked)  # what Kafka holds, per symbol in its order
    assert acked == sent  # every event once, each symbol's in order
    # nothing was sent with the broken producer after its incident; the refused and the
    # unanswered heads are the first records of their symbols the new producer sent
    assert len(old.attempts) == 5
    for key, ids in old.attempts[1:]:
        assert next(a for a in new.attempts if a[0] == key) == (key, ids)
    assert pub.published_events == 120
    assert metric(registry, "cascade_kafka_producer_resets_total") == 1
    assert metric(registry, "cascade_kafka_send_errors_total") == 3
    assert metric(registry, "cascade_events_abandoned_total") == 0
    assert sum("new producer" in r.getMessage() for r in caplog.records) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_producer_refused_again_is_replaced_again(unique: str) -> None:
    cfg = config("unused:1", unique, max_batch_events=5)
    registry = CollectorRegistry()
    oos = OutOfOrderSequenceNumber
    factory = Factory([oos] * 10, [oos] * 10, [])
    sent = await publish_with(cfg, registry, factory, 40)
    assert len(factory.built) == 3
    assert all(not p.acked for p in factory.built[:2])
    assert by_symbol(factory.built[2].acked) == sent
    assert metric(registry, "cascade_kafka_producer_resets_total") == 2


class StartFails(ScriptedProducer):
    """A producer that cannot reach the broker when started."""

    async def start(self) -> None:
        raise KafkaError("Unable to bootstrap")


async def test_a_new_producer_that_cannot_start_is_tried_again(unique: str) -> None:
    cfg = config("unused:1", unique, max_batch_events=5)
    registry = CollectorRegistry()
    built: list[ScriptedProducer] = []

    def factory() -> ScriptedProducer:
        cls = StartFails if len(built) in (1, 2) else ScriptedProducer
        built.append(cls(len(built), [OutOfOrderSequenceNumber] if not built else []))
        return built[-1]

    sent = await publish_with(cfg, registry, factory, 20)
    assert [type(p) for p in built] == [ScriptedProducer, StartFails, StartFails, ScriptedProducer]
    assert built[1].stopped and built[2].stopped  # released after their failed start
    assert by_symbol(built[0].acked + built[3].acked) == sent
    assert metric(registry, "cascade_kafka_producer_resets_total") == 1


class Sender:
    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.sender_task = task


class StuckSender(ScriptedProducer):
    """Like aiokafka's: ``stop`` waits until its batches are resolved or its sender task ends,
    and the broker never answers, so only cancelling the sender lets it finish."""

    async def start(self) -> None:
        await super().start()
        self._sender = Sender(asyncio.create_task(asyncio.Event().wait()))

    async def stop(self) -> None:
        with pytest.raises(asyncio.CancelledError):
            await self._sender.sender_task
        self.stopped = True


async def test_a_broken_producer_that_does_not_flush_is_stopped_within_a_bound(
    unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publisher_module, "PRODUCER_STOP_S", 0.05)
    cfg = config("unused:1", unique, max_batch_events=5)
    registry = CollectorRegistry()
    built: list[ScriptedProducer] = []

    def factory() -> ScriptedProducer:
        cls = StuckSender if not built else ScriptedProducer
        built.append(cls(len(built), [OutOfOrderSequenceNumber, "hang"] if not built else []))
        return built[-1]

    sent = await publish_with(cfg, registry, factory, 20)
    assert len(built) == 2 and built[0].stopped
    assert by_symbol(built[0].acked + built[1].acked) == sent
    assert metric(registry, "cascade_kafka_producer_resets_total") == 1


async def test_an_injected_producer_without_a_factory_is_kept_and_retried(unique: str) -> None:
    cfg = config("unused:1", unique, max_batch_events=5)
    registry = CollectorRegistry()
    fake = ScriptedProducer(0, [OutOfOrderSequenceNumber, OutOfOrderSequenceNumber])
    pub = Publisher(cfg, "binance", ProducerMetrics(registry), producer=fake, rng=NoJitter())
    await pub.start()
    try:
        sent = await publish(pub, 20)
        assert pub.kafka_producer.ident == 0
    finally:
        await pub.stop()
    assert by_symbol(fake.acked) == sent and fake.stopped
    assert metric(registry, "cascade_kafka_producer_resets_total") == 0
    assert metric(registry, "cascade_kafka_send_errors_total") == 2
