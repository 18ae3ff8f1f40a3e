"""The producer reset (producers/publisher.py) against a real broker.

A broken sequence, made on purpose: the idempotent producer's sequence numbers are advanced past
what the broker expects (aiokafka's state after aio-libs/aiokafka#1017), so the broker refuses the
next deliveries with OutOfOrderSequenceNumber; the publisher must replace the producer once and
deliver everything, exactly once and per symbol in order (the refused records were not written).

A broker outage of several seconds under a steady publish, on a private embedded broker (the
session's is shared, so it is not the one stopped): once the broker is back, the publisher
delivers everything it accepted, per symbol in order. On this machine such an outage (noida-db
``stop``/``down``, Apache Kafka 4 stop/start, 8 to 60 s) has not broken the sequence, so this test
guards delivery across an outage whichever way the publisher recovers (it prints the resets)."""

from __future__ import annotations

import asyncio
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from monitor.app.broker import noida_binary
from monitor.core.codec import decode_batch
from monitor.core.metrics import ProducerMetrics
from monitor.core.topics import ensure_topics
from producers.publisher import Publisher
from tests.conftest import free_port
from tests.producers.kafkautil import read_records
from tests.producers.test_publisher import config, metric, trade

pytestmark = pytest.mark.integration
SYMBOLS = ("BTC-USDT-PERP", "ETH-USDT-PERP", "SOL-USDT-PERP")
OUTAGE_S = 8.0  # "more than a few seconds": long enough to break the producer's sequence
PACE_S = 0.005  # one event per symbol in turn, every 5 ms: a steady publish


class PrivateBroker:
    """A noida-db Kafka broker of this test alone; ``stop``/``start`` the Kafka service on the
    same port and data."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"

    def _run(self, *args: str) -> None:
        cmd = [str(noida_binary()), *args, "--data-dir", str(self.data_dir)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError(f"noida-db {args[0]} failed: {res.stderr[-2000:]}")

    def up(self) -> None:
        self._run("up", "--only", "kafka", "--kafka-port", str(self.port))

    def stop(self) -> None:
        self._run("stop", "kafka")

    def start(self) -> None:
        self._run("start", "kafka")

    def down(self) -> None:
        self._run("down")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    b = PrivateBroker(tmp_path / "noida")
    b.up()
    try:
        yield b
    finally:
        b.down()


async def read_ids(bootstrap: str, topic: str, want: set[str]) -> dict[bytes, list[str]]:
    """Every record's trade ids per key, from the start, until every id in ``want`` was seen."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    out: dict[bytes, list[str]] = defaultdict(list)
    seen: set[str] = set()
    try:
        async with asyncio.timeout(60):
            while not want <= seen:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    for r in records:
                        ids = list(decode_batch(r.value).trd["id"])
                        out[r.key].extend(ids)
                        seen.update(ids)
    finally:
        await consumer.stop()
    return dict(out)


async def publish(pub: Publisher, sent: dict[bytes, list[str]], first: int, n: int) -> None:
    for i in range(first, first + n):
        sym = SYMBOLS[i % len(SYMBOLS)]
        assert pub.add([trade(sym, i)]) == 1
        sent[sym.encode()].append(str(i))
        if i % 5 == 4:
            await asyncio.sleep(0)  # one loop iteration: records go out while more arrive
    await pub.flush(timeout_s=30)


async def test_a_sequence_the_broker_refuses_resets_the_producer_and_loses_nothing(
    kafka_bootstrap: str, unique: str
) -> None:
    cfg = config(kafka_bootstrap, unique, max_batch_events=4)
    topic = cfg.topic("binance")
    await ensure_topics(kafka_bootstrap, [topic], 3, 1, 3600)
    registry = CollectorRegistry()
    pub = Publisher(cfg, "binance", ProducerMetrics(registry))
    sent: dict[bytes, list[str]] = defaultdict(list)
    await pub.start()
    try:
        await publish(pub, sent, 0, 60)
        # aiokafka's own state (no public API breaks it): the next batch of every partition
        # skips 5 sequence numbers, as after the lost requests of an outage
        txn = pub.kafka_producer._txn_manager
        for p in range(3):
            txn.increment_sequence_number(TopicPartition(topic, p), 5)
        await publish(pub, sent, 60, 60)
        assert pub.kafka_producer._txn_manager is not txn  # the shared handle follows
    finally:
        await pub.stop()
    assert pub.published_events == 120
    assert metric(registry, "cascade_kafka_producer_resets_total") == 1
    assert metric(registry, "cascade_kafka_send_errors_total") >= 1
    got: dict[bytes, list[str]] = defaultdict(list)
    for _, key, batch in await read_records(kafka_bootstrap, topic, 120):
        got[key].extend(batch.trd["id"])
    assert got == sent  # every event once, each symbol's in order


async def test_after_a_broker_outage_everything_accepted_is_delivered(
    broker: PrivateBroker, unique: str
) -> None:
    cfg = config(broker.bootstrap, unique, max_batch_events=20, request_timeout_ms=5000)
    topic = cfg.topic("binance")
    await ensure_topics(broker.bootstrap, [topic], 3, 1, 3600)
    registry = CollectorRegistry()
    pub = Publisher(cfg, "binance", ProducerMetrics(registry))
    sent: dict[bytes, list[str]] = defaultdict(list)
    running = True

    async def produce() -> None:
        i = 0
        while running:
            sym = SYMBOLS[i % len(SYMBOLS)]
            assert pub.add([trade(sym, i)]) == 1
            sent[sym.encode()].append(str(i))
            i += 1
            await asyncio.sleep(PACE_S)

    await pub.start()
    try:
        feeder = asyncio.create_task(produce())
        await pub.wait_published(100, timeout_s=30)
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(OUTAGE_S)  # the outage itself: publishing goes on meanwhile
        await asyncio.to_thread(broker.start)
        await pub.wait_published(pub.published_events + 100, timeout_s=60)  # new events too
        running = False
        await feeder
        total = sum(len(v) for v in sent.values())
        await pub.flush(timeout_s=60)
        assert pub.published_events == total
    finally:
        running = False
        await pub.stop(flush_timeout_s=5)
    got = await read_ids(broker.bootstrap, topic, {i for v in sent.values() for i in v})
    for key, ids in sent.items():
        # per symbol in order; a record the broken producer wrote without acknowledging it is
        # written again (at least once), which shows as a repeat of the ids just before
        first_seen = list(dict.fromkeys(got[key]))
        assert first_seen == ids
    assert metric(registry, "cascade_events_abandoned_total") == 0
    assert metric(registry, "cascade_events_dropped_total", reason="buffer_full") == 0
    resets = metric(registry, "cascade_kafka_producer_resets_total")
    print(f"\n{total} events, outage {OUTAGE_S} s, producer resets: {resets:.0f}, "
          f"send errors: {metric(registry, 'cascade_kafka_send_errors_total'):.0f}")  # fmt: skip
