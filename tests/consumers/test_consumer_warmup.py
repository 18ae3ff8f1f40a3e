"""Warm-up replay on a real broker: a consumer taking over partitions rebuilds their pairs' decayed
state from the warm-up window before going live, without counting the replayed events again."""

from __future__ import annotations

import asyncio
import contextlib
import time

import numpy as np
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from consumers.service import ConsumerService
from monitor.core.codec import decode_batch
from monitor.core.config import Config
from monitor.core.errors import CodecError
from monitor.core.topics import ensure_exchange_topics
from tests.consumers.consumer_refs import scrape, value
from tests.consumers.test_consumer_service import (
    PARTITION,
    SYMBOLS,
    Observed,
    X,
    _cfg,
    assert_totals,
    led_events,
    make_stream,
    produce,
    wait_total,
)

RTOL = 1e-9  # same events in the same order per pair: only float summation order may differ


async def kill(svc: ConsumerService) -> None:
    """Stop like a crash: no final commit (the group still sees the member leave)."""
    svc._stopped = True
    task, svc._task = svc._task, None
    if task is not None:
        task.cancel()
        await asyncio.wait([task])
    await svc._consumer.stop()
    if svc._producer is not None:  # its sockets die with the process too
        await svc._producer.stop()


def decayed(svc: ConsumerService, now_s: float) -> dict[str, tuple[np.ndarray, ...]]:
    r = svc.state.read(now_s)
    return {
        r.keys[i][1]: (r.liq_rate[i], r.trd_rate[i], r.variance[i : i + 1], r.last_price[i : i + 1])
        for i in range(len(r.keys))
    }


async def test_takeover_rebuilds_state_from_the_warm_up_window(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique).with_overrides(consumer={"warmup_s": 900.0})
    ref_cfg = cfg.with_overrides(consumer={"group_prefix": f"ref{unique}"})
    await ensure_exchange_topics(cfg, [X])
    led = make_stream(60, seed=11)
    k1, k2 = len(led.records) // 3, 2 * len(led.records) // 3
    reg_a, reg_b, reg_ref = CollectorRegistry(), CollectorRegistry(), CollectorRegistry()
    a, b = Observed(cfg, reg_a), Observed(cfg, reg_b)
    ref = ConsumerService(ref_cfg, X, reg_ref)  # another group: an uninterrupted run
    try:
        await ref.start()
        await a.start()
        assert await asyncio.wait_for(a.assignments.get(), 30) == {0, 1, 2}
        await produce(kafka_bootstrap, cfg.topic(X), led.records[:k1])
        await a.wait_processed(led_events(led.records[:k1]), timeout_s=30)
        await a.commit()  # noida-db refuses commits while a member joins: commit first
        await b.start()
        got_b = await asyncio.wait_for(b.assignments.get(), 30)
        got_a = await asyncio.wait_for(a.assignments.get(), 30)
        assert got_a and got_b and got_a | got_b == {0, 1, 2}
        await produce(kafka_bootstrap, cfg.topic(X), led.records[k1:k2])
        await wait_total([a, b], led_events(led.records[:k2]), 30)
        await a.commit()
        await b.commit()
        a_counted = a.processed_events
        await kill(a)  # mid-stream: the rest is produced after A is gone
        assert await asyncio.wait_for(b.assignments.get(), 30) == {0, 1, 2}
        assert b.warming() or b.replayed_events > 0
        await produce(kafka_bootstrap, cfg.topic(X), led.records[k2:])
        await b.wait_processed(led.events - a_counted, timeout_s=30)
        await ref.wait_processed(led.events, timeout_s=30)
        assert not b.warming()

        # nothing lost, nothing counted twice: A's and B's counters add up to what was sent
        assert a_counted + b.processed_events == led.events
        assert_totals([scrape(reg_a), scrape(reg_b)], led)
        # B replayed exactly what A had processed on each partition before B took it over: the
        # phase-1 history of B's first share, then everything on A's share
        a_syms = {s for s in SYMBOLS if PARTITION[s] in got_a}
        assert b.replayed_events == led_events(
            [r for r in led.records[:k1] if r[0] not in a_syms]
        ) + led_events([r for r in led.records[:k2] if r[0] in a_syms])
        s = scrape(reg_b)
        assert value(s, "cascade_events_replayed_total", exchange=X) == b.replayed_events
        assert value(s, "cascade_consumer_warming_partitions", exchange=X) == 0.0

        # every pair's decayed state equals the uninterrupted run's, taken-over pairs included
        now = ref.state.now_s()
        mine, theirs = decayed(b, now), decayed(ref, now)
        assert set(mine) == set(SYMBOLS) == set(theirs)
        for sym in SYMBOLS:
            for x, y in zip(mine[sym], theirs[sym], strict=True):
                np.testing.assert_allclose(x, y, rtol=RTOL, atol=1e-12, err_msg=sym)
    finally:
        await b.stop()
        await ref.stop()
        with contextlib.suppress(Exception):
            await a.stop()


async def produce_at(cfg: Config, records: list[tuple[str, bytes | None]], ts_ms: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=cfg.bootstrap_servers)
    await producer.start()
    try:
        for sym, val in records:
            await producer.send_and_wait(
                cfg.topic(X), val, key=sym.encode(), partition=PARTITION[sym], timestamp_ms=ts_ms
            )
    finally:
        await producer.stop()


async def test_only_the_window_is_replayed_and_zero_turns_it_off(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique).with_overrides(consumer={"warmup_s": 600.0})
    await ensure_exchange_topics(cfg, [X])
    led = make_stream(20, seed=12)
    half = len(led.records) // 2
    now_ms = int(time.time() * 1000)
    await produce_at(cfg, led.records[:half], now_ms - 3_600_000)  # an hour old: outside
    await produce_at(cfg, led.records[half:], now_ms)
    async with ConsumerService(cfg, X, CollectorRegistry()) as first:
        await first.wait_processed(led.events, timeout_s=30)
        assert first.replayed_events == 0  # nothing committed yet: nothing to rebuild
    async with ConsumerService(cfg, X, CollectorRegistry()) as second:
        await second.wait_live(timeout_s=30)
        assert second.replayed_events == led_events(led.records[half:])
        assert second.processed_events == 0 and not second.warming()
    off = cfg.with_overrides(consumer={"warmup_s": 0.0})
    async with ConsumerService(off, X, CollectorRegistry()) as third:
        await third.wait_live(timeout_s=30)
        assert third.replayed_events == 0 and third.processed_events == 0


async def test_a_restarted_consumer_drops_what_a_restarted_producer_resends(
    kafka_bootstrap: str, unique: str
) -> None:
    """Consumer A applies a stream and stops; a restarted producer then re-sends the last records
    (a venue's replay on subscribe); consumer B, started after, rebuilds the applied-id window in
    its warm-up and drops every repeat: the totals of A and B equal what was sent once."""
    cfg = _cfg(kafka_bootstrap, unique).with_overrides(consumer={"warmup_s": 900.0})
    await ensure_exchange_topics(cfg, [X])
    led = make_stream(30, seed=21)
    resent = [r for r in led.records[-8:] if _valid(r[1])]  # the valid ones among the last
    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    a = ConsumerService(cfg, X, reg_a)
    await a.start()
    try:
        await produce(kafka_bootstrap, cfg.topic(X), led.records)
        await a.wait_processed(led.events, timeout_s=30)
    finally:
        await a.stop()
    assert a.duplicates == 0
    await produce(kafka_bootstrap, cfg.topic(X), resent)
    b = ConsumerService(cfg, X, reg_b)
    await b.start()
    try:
        await b.wait_processed(led_events(resent), timeout_s=30)
        assert b.replayed_events == led.events
    finally:
        await b.stop()
    assert b.duplicates == led_events(resent) > 0
    assert_totals([scrape(reg_a), scrape(reg_b)], led)
    s = scrape(reg_b)
    assert value(s, "cascade_duplicate_events_total", exchange=X, reason="consumer_window") == (
        b.duplicates
    )


def _valid(value: bytes | None) -> bool:
    try:
        decode_batch(value or b"")
    except CodecError:
        return False
    return True
