"""ConsumerService against the real broker: exact totals, bad records, restart, rebalance."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry

from consumers.service import ConsumerService
from monitor.core.codec import encode_batch
from monitor.core.config import Config, load
from monitor.core.schema import Event, Liquidation
from monitor.core.topics import ensure_exchange_topics
from tests.consumers.consumer_refs import Samples, liq, scrape, sum_by, trade, value

X = "binance"
SYMBOLS = ("BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP", "XRP-USDT-PERP", "DOGE-USDT-PERP")
PARTITION = {s: i % 3 for i, s in enumerate(SYMBOLS)}  # every partition carries a symbol
Key = tuple[str, str]


def _cfg(bootstrap: str, unique: str, commit_interval_s: float = 60.0) -> Config:
    """Periodic commits are rare by default, so the tests see what stop and revoke commit."""
    return load(environ={}).with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"t{unique}", "partitions": 3},
        consumer={"group_prefix": f"g{unique}", "commit_interval_s": commit_interval_s,
                  "lag_refresh_s": 0.2},
    )  # fmt: skip


@dataclass
class Ledger:
    """What was produced: records in order, and exact expected totals (integer notionals)."""

    records: list[tuple[str, bytes | None]] = field(default_factory=list)  # (symbol, value)
    liq_usd: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    liq_n: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    trade_usd: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    events: int = 0

    def add(self, events: Sequence[Event]) -> None:
        sym = events[0].symbol
        for e in events:
            if isinstance(e, Liquidation):
                self.liq_usd[(sym, e.liquidated_side.value)] += e.notional_usd
                self.liq_n[(sym, e.liquidated_side.value)] += 1
            else:
                self.trade_usd[sym] += e.notional_usd
        self.events += len(events)
        self.records.append((sym, encode_batch(events)))

    def bad(self, symbol: str, value: bytes | None) -> None:
        self.records.append((symbol, value))


def make_stream(n_rounds: int, seed: int, t0_ms: int = 1_700_000_000_000) -> Ledger:
    rng = random.Random(seed)
    led = Ledger()
    for r in range(n_rounds):
        for s in SYMBOLS:
            t = t0_ms + r * 700 + rng.randrange(50)
            evs: list[Event] = [
                liq(s, rng.choice(("long", "short")), float(rng.randrange(1, 50_000)), t + i)
                for i in range(rng.randrange(0, 4))
            ]
            evs += [
                trade(
                    s,
                    rng.choice(("buy", "sell")),
                    100.0 + rng.randrange(-50, 50) / 4,
                    float(rng.randrange(1, 10**6)),
                    t + i,
                )
                for i in range(rng.randrange(1, 5))
            ]
            led.add(evs)
    return led


async def produce(bootstrap: str, topic: str, records: Sequence[tuple[str, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for sym, val in records:
            await producer.send_and_wait(topic, val, key=sym.encode(), partition=PARTITION[sym])
    finally:
        await producer.stop()


def totals(samples: Samples) -> tuple[dict[Key, float], dict[Key, float], dict[str, float]]:
    usd = sum_by(samples, "cascade_liquidation_notional_usd_total", ("symbol", "side"))
    n = sum_by(samples, "cascade_liquidations_total", ("symbol", "side"))
    trd = sum_by(samples, "cascade_trade_notional_usd_total", ("symbol",))
    return (
        {(k[0], k[1]): v for k, v in usd.items() if v},
        {(k[0], k[1]): v for k, v in n.items() if v},
        {k[0]: v for k, v in trd.items()},
    )


def assert_totals(samples: list[Samples], led: Ledger) -> None:
    usd: dict[Key, float] = defaultdict(float)
    n: dict[Key, float] = defaultdict(float)
    trd: dict[str, float] = defaultdict(float)
    for s in samples:
        a, b, c = totals(s)
        for k1, v in a.items():
            usd[k1] += v
        for k1, v in b.items():
            n[k1] += v
        for k2, v in c.items():
            trd[k2] += v
    assert dict(usd) == dict(led.liq_usd)  # exact: integer notionals
    assert dict(n) == {k: float(v) for k, v in led.liq_n.items()}
    assert dict(trd) == dict(led.trade_usd)


async def committed_and_end(cfg: Config) -> tuple[dict[int, int | None], dict[int, int]]:
    c = AIOKafkaConsumer(bootstrap_servers=cfg.bootstrap_servers, group_id=cfg.group_id(X))
    await c.start()
    try:
        tps = [TopicPartition(cfg.topic(X), p) for p in range(3)]
        committed = {tp.partition: await c.committed(tp) for tp in tps}
        end = {tp.partition: off for tp, off in (await c.end_offsets(tps)).items()}
    finally:
        await c.stop()
    return committed, end


async def test_exact_totals_on_metrics_and_bad_records_skipped(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique)
    await ensure_exchange_topics(cfg, [X])
    led = Ledger()
    # undecodable records first on their partitions: the good ones after them must still count
    led.bad("BTC-USDT-PERP", b"not json")
    led.bad("ETH-USDT-PERP", orjson.dumps({"v": 99, "exchange": X}))
    led.bad("SOL-USDT-PERP", None)
    led.bad("XRP-USDT-PERP", encode_batch([liq("XRP-USDT-PERP", "long", 5.0, 1, exchange="bybit")]))
    doc = orjson.loads(encode_batch([liq("DOGE-USDT-PERP", "long", 5.0, 1)]))
    doc["liq"]["ts_ms"] = ["yesterday"]
    led.bad("DOGE-USDT-PERP", orjson.dumps(doc))
    stream = make_stream(20, seed=1)
    led.records += stream.records
    led.liq_usd, led.liq_n, led.trade_usd, led.events = (
        stream.liq_usd, stream.liq_n, stream.trade_usd, stream.events
    )  # fmt: skip
    await produce(kafka_bootstrap, cfg.topic(X), led.records)

    registry = CollectorRegistry()
    async with ConsumerService(cfg, X, registry) as svc:
        await svc.wait_processed(led.events, timeout_s=30)
        assert svc.processed_events == led.events
        assert svc.processed_records == len(led.records)
        await svc._refresh_lag()  # as the loop does every lag_refresh_s
        s = scrape(registry)
        for p in range(3):
            assert value(s, "cascade_consumer_lag_records", exchange=X, partition=str(p)) == 0.0
    assert_totals([s], led)
    for reason in ("invalid", "empty", "wrong_exchange", "bad_column"):
        n = 2.0 if reason == "invalid" else 1.0
        assert value(s, "cascade_decode_errors_total", exchange=X, reason=reason) == n, reason
    assert value(s, "cascade_records_consumed_total", exchange=X) == len(led.records)
    liq_n = sum(led.liq_n.values())
    assert value(s, "cascade_events_consumed_total", exchange=X, kind="liquidation") == liq_n
    assert value(s, "cascade_events_consumed_total", exchange=X, kind="trade") == (
        led.events - liq_n
    )
    assert value(s, "cascade_consumer_pairs", exchange=X) == len(SYMBOLS)
    assert value(s, "cascade_event_to_metric_latency_seconds_count", exchange=X) == led.events
    assert (value(s, "cascade_rebalances_total", exchange=X) or 0) >= 1
    # stop committed exactly the end of every partition
    committed, end = await committed_and_end(cfg)
    assert committed == end and sum(end.values()) == len(led.records)


async def test_graceful_restart_mid_stream_counts_everything_exactly_once(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique)
    await ensure_exchange_topics(cfg, [X])
    led = make_stream(60, seed=2)
    k1, k2 = len(led.records) // 4, len(led.records) // 2
    first_events = led_events(led.records[:k1])
    await produce(kafka_bootstrap, cfg.topic(X), led.records[:k1])

    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    a = ConsumerService(cfg, X, reg_a)
    b = ConsumerService(cfg, X, reg_b)
    half_sent, a_stopped = asyncio.Event(), asyncio.Event()

    async def rest() -> None:
        await produce(kafka_bootstrap, cfg.topic(X), led.records[k1:k2])
        half_sent.set()
        await a_stopped.wait()
        await produce(kafka_bootstrap, cfg.topic(X), led.records[k2:])

    producer = asyncio.create_task(rest())
    try:
        await a.start()
        await a.wait_processed(first_events, timeout_s=30)
        await half_sent.wait()  # more is being produced while A runs
        await a.stop()
        a_stopped.set()
        await b.start()
        await producer
        await b.wait_processed(led.events - a.processed_events, timeout_s=30)
        assert a.processed_events + b.processed_events == led.events
        assert a.processed_events >= first_events and b.processed_events > 0
        assert_totals([scrape(reg_a), scrape(reg_b)], led)
    finally:
        producer.cancel()
        await asyncio.gather(producer, return_exceptions=True)
        await a.stop()
        await b.stop()
    committed, end = await committed_and_end(cfg)
    assert committed == end


def led_events(records: Sequence[tuple[str, bytes | None]]) -> int:
    return sum(
        len(d.get("liq", {}).get("id", [])) + len(d.get("trd", {}).get("id", []))
        for d in (orjson.loads(v) for _, v in records if v)
    )


class Observed(ConsumerService):
    """Exposes assignments as an awaitable queue (through the documented assignment hook)."""

    def __init__(self, cfg: Config, registry: CollectorRegistry) -> None:
        super().__init__(cfg, X, registry)
        self.assignments: asyncio.Queue[set[int]] = asyncio.Queue()

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        await super()._on_assigned(assigned)
        self.assignments.put_nowait({tp.partition for tp in assigned})


async def wait_total(services: Sequence[ConsumerService], total: int, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while sum(s.processed_events for s in services) < total:
            waits = [
                asyncio.ensure_future(s.wait_processed(s.processed_events + 1, timeout_s))
                for s in services
            ]
            _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for p in pending:
                p.cancel()
            await asyncio.gather(*waits, return_exceptions=True)


async def test_rebalance_between_live_members_commits_revoked_offsets(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = _cfg(kafka_bootstrap, unique)
    await ensure_exchange_topics(cfg, [X])
    led = make_stream(40, seed=3)
    half = len(led.records) // 2
    reg_a, reg_b = CollectorRegistry(), CollectorRegistry()
    a, b = Observed(cfg, reg_a), Observed(cfg, reg_b)
    try:
        await a.start()
        assert await asyncio.wait_for(a.assignments.get(), 30) == {0, 1, 2}
        await produce(kafka_bootstrap, cfg.topic(X), led.records[:half])
        await a.wait_processed(led_events(led.records[:half]), timeout_s=30)
        # noida-db answers an OffsetCommit sent while the group is preparing a rebalance with
        # IllegalGeneration (Kafka accepts it), after which the group never settles: commit first
        # so that A's revoke has nothing left to commit. The revoke commit itself is covered by
        # test_revoke_commits_exactly_the_processed_offsets_of_revoked_partitions.
        await a.commit()
        await b.start()
        got_b = await asyncio.wait_for(b.assignments.get(), 30)
        got_a = await asyncio.wait_for(a.assignments.get(), 30)
        assert got_a.isdisjoint(got_b) and got_a | got_b == {0, 1, 2} and got_b
        await produce(kafka_bootstrap, cfg.topic(X), led.records[half:])
        await wait_total([a, b], led.events, 30)
        assert a.processed_events + b.processed_events == led.events
        assert b.processed_events > 0
        assert_totals([scrape(reg_a), scrape(reg_b)], led)
        assert value(scrape(reg_a), "cascade_rebalances_total", exchange=X) == 2.0
        # the first member to leave starts a rebalance; commit both before (see above)
        await a.commit()
        await b.commit()
    finally:
        await a.stop()
        await b.stop()
    committed, end = await committed_and_end(cfg)
    assert committed == end


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = assigned
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))

    def highwater(self, tp: TopicPartition) -> int:
        return 10

    async def position(self, tp: TopicPartition) -> int:
        return 3


async def test_revoke_commits_exactly_the_processed_offsets_of_revoked_partitions(
    unique: str,
) -> None:
    cfg = _cfg("127.0.0.1:1", unique)  # no broker needed: the Kafka consumer is a fake
    registry = CollectorRegistry()
    svc = ConsumerService(cfg, X, registry)
    tps = [TopicPartition(cfg.topic(X), p) for p in range(3)]
    fake = FakeConsumer(set(tps))
    svc._consumer = fake
    recs = {
        tps[0]: [Rec(0, encode_batch([liq("BTC-USDT-PERP", "long", 5.0, 1000)])),
                 Rec(1, encode_batch([liq("BTC-USDT-PERP", "long", 7.0, 1000)]))],
        tps[1]: [Rec(4, b"junk")],
    }  # fmt: skip
    svc._process(recs)
    assert svc.processed_events == 0  # held until their tick closes (consumers.engine) ...
    await svc._after(svc.engine.step(final=True))  # ... as at the end of the input
    await svc._refresh_lag()
    lag = "cascade_consumer_lag_records"
    s = scrape(registry)
    assert [value(s, lag, exchange=X, partition=str(p)) for p in range(3)] == [8.0, 5.0, 7.0]
    await svc._on_revoked({tps[0], tps[2]})
    s = scrape(registry)
    assert [value(s, lag, exchange=X, partition=str(p)) for p in range(3)] == [None, 5.0, None]
    assert fake.commits == [{tps[0]: 2}]  # tp2: nothing processed; tp1: not revoked
    await svc._on_revoked({tps[0]})
    assert len(fake.commits) == 1  # already committed: no request
    # records re-delivered below the processed offset are never applied twice
    svc._process(
        {tps[0]: recs[tps[0]] + [Rec(2, encode_batch([liq("BTC-USDT-PERP", "long", 1.0, 1000)]))]}
    )
    await svc._after(svc.engine.step(final=True))
    assert svc.processed_events == 3 and svc.processed_records == 4
    assert value(scrape(registry), "cascade_liquidation_notional_usd_total", exchange=X,
                 symbol="BTC-USDT-PERP", side="long") == 13.0  # fmt: skip
    await svc.commit()
    assert fake.commits[-1] == {tps[0]: 3, tps[1]: 5}


async def test_records_held_for_their_tick_are_not_committed_and_a_revoke_hands_them_over(
    unique: str,
) -> None:
    """A record is committed only once the engine applied it: one still held when its
    partition is revoked is dropped here and read again by whoever owns it next."""
    cfg = _cfg("127.0.0.1:1", unique).with_overrides(consumer={"alert_lateness_s": 100.0})
    registry = CollectorRegistry()
    svc = ConsumerService(cfg, X, registry)
    tp = TopicPartition(cfg.topic(X), 0)
    fake = FakeConsumer({tp})
    svc._consumer = fake
    recs = [Rec(0, encode_batch([liq("BTC-USDT-PERP", "long", 5.0, 1000)])),
            Rec(1, encode_batch([liq("ETH-USDT-PERP", "long", 7.0, 2000)]))]  # fmt: skip
    svc._process({tp: recs})
    await svc._after(svc.engine.step())  # the clock is not 100 s past any tick: all held
    assert svc.engine.held == 2 and svc.processed_events == 0
    await svc.commit()
    assert fake.commits == []  # nothing applied, nothing committed
    await svc._on_revoked({tp})
    assert svc.engine.held == 0 and fake.commits == []
    # the partition comes back with the same records: applied once, then committed
    svc._process({tp: recs})
    await svc._after(svc.engine.step(final=True))
    assert svc.processed_events == 2
    await svc.commit()
    assert fake.commits == [{tp: 2}]


@dataclass
class Rec:
    offset: int
    value: bytes | None


async def test_lifecycle_errors_and_idempotent_stop(kafka_bootstrap: str, unique: str) -> None:
    cfg = _cfg(kafka_bootstrap, unique)
    svc = ConsumerService(cfg, X, CollectorRegistry())
    with pytest.raises(RuntimeError, match="not running"):
        await svc.wait_processed(1, timeout_s=1)
    await svc.start()
    await svc.wait_processed(0, timeout_s=1)  # already true
    with pytest.raises(TimeoutError, match="0 of 1 events"):
        await svc.wait_processed(1, timeout_s=0.3)
    await svc.stop()
    await svc.stop()
    with pytest.raises(RuntimeError):
        await svc.start()


def test_an_idle_input_moves_the_event_clock_by_the_wall_time_since_its_last_event(
    unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg("127.0.0.1:1", unique)
    svc = ConsumerService(cfg, X, CollectorRegistry())
    tp = TopicPartition(cfg.topic(X), 0)
    svc._consumer = FakeConsumer({tp})
    wall = [100.0]
    monkeypatch.setattr("consumers.service.time.monotonic", lambda: wall[0])
    svc._process({tp: [Rec(0, encode_batch([liq("BTC-USDT-PERP", "long", 5.0, 1_000_000)]))]})
    assert svc.engine.clock == 1_000.0
    for _ in range(3):  # three idle polls, 0.5 s apart: 1.5 s in all, not 0.5 + 1 + 1.5
        wall[0] += 0.5
        svc._idle()
    assert svc.engine.clock == pytest.approx(1_001.5)
