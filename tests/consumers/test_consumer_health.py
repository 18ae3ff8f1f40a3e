"""Health (``/healthz``, ``/readyz``) of the consumer service and the asset aggregator on the real
broker: a consumer is ready only with partitions assigned and none warming up, live while its
fetch loop runs; the aggregator is ready once it reads the risk topic."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence

import pytest
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from consumers.aggregator import AssetAggregator
from consumers.service import ConsumerService
from monitor.core.kafka import Record, TopicPartition
from monitor.core.lifecycle import Health
from monitor.core.topics import ensure_exchange_topics
from tests.consumers.test_consumer_service import Observed, X, _cfg, make_stream, produce


class _FatalError(KafkaError):
    retriable = False


async def test_a_consumer_is_ready_once_assigned_and_warmed_up(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(kafka_bootstrap, unique).with_overrides(consumer={"warmup_s": 900.0})
    await ensure_exchange_topics(cfg, [X])
    led = make_stream(20, seed=31)
    await produce(kafka_bootstrap, cfg.topic(X), led.records)
    first = ConsumerService(cfg, X, CollectorRegistry())
    assert first.health() == Health(live=True, ready=False, detail="starting")
    async with first:
        await first.wait_processed(led.events, timeout_s=30)
        assert first.health() == Health(live=True, ready=True)
    assert first.health() == Health(live=False, ready=False, detail="stopped")

    # a successor replays the committed history first: live, not ready until it is done
    second = ConsumerService(cfg, X, CollectorRegistry())
    seen: list[Health] = []  # health each time a replayed batch was accounted for
    passed = second.warmup.passed

    def observe(tp: TopicPartition, position: int | None) -> None:
        seen.append(second.health())
        passed(tp, position)

    monkeypatch.setattr(second.warmup, "passed", observe)
    async with second:
        await second.wait_live(timeout_s=30)
        assert second.replayed_events == led.events
        assert second.health() == Health(live=True, ready=True)
    # the first replayed batch: all three partitions still replaying
    assert seen[0] == Health(live=True, ready=False, detail="3 partition(s) warming up")


async def test_a_member_without_partitions_is_live_and_not_ready(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique).with_overrides(
        kafka={"partitions": 1}, consumer={"warmup_s": 0.0}
    )
    await ensure_exchange_topics(cfg, [X])
    a, b = Observed(cfg, CollectorRegistry()), Observed(cfg, CollectorRegistry())
    async with a:
        assert await asyncio.wait_for(a.assignments.get(), 30) == {0}
        async with b:
            # one partition, two members: after the rebalance exactly one of them holds it
            got = [await asyncio.wait_for(m.assignments.get(), 60) for m in (a, b)]
            assert sorted(map(len, got)) == [0, 1]
            idle, busy = (a, b) if not got[0] else (b, a)
            assert idle.health() == Health(live=True, ready=False, detail="no partitions assigned")
            assert busy.health() == Health(live=True, ready=True)


async def test_a_consumer_whose_fetch_loop_died_is_not_live(
    kafka_bootstrap: str, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(kafka_bootstrap, unique)
    await ensure_exchange_topics(cfg, [X])
    svc = ConsumerService(cfg, X, CollectorRegistry())
    async with svc:
        await svc.wait_live(timeout_s=30)
        assert svc.health().ready

        async def fail(
            *_: TopicPartition, **__: object
        ) -> Mapping[TopicPartition, Sequence[Record]]:
            raise _FatalError("broken on purpose")

        monkeypatch.setattr(svc._consumer, "getmany", fail)
        task = svc._task
        assert task is not None
        await asyncio.wait([task], timeout=30)
        assert task.done()
        assert svc.health() == Health(live=False, ready=False, detail="fetch loop ended")


async def test_the_aggregator_is_ready_while_it_reads_the_risk_topic(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique)
    agg = AssetAggregator(cfg, CollectorRegistry())
    assert agg.health() == Health(live=True, ready=False, detail="starting")
    async with agg:
        assert agg.health() == Health(live=True, ready=True)
        task = agg._task
        assert task is not None
        task.cancel()  # the loop ends (as if it had failed): no longer live
        await asyncio.wait([task])
        assert agg.health() == Health(live=False, ready=False, detail="fetch loop ended")
    assert agg.health() == Health(live=False, ready=False, detail="stopped")
