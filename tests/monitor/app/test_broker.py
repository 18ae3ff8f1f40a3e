from __future__ import annotations

import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from monitor.app.broker import EmbeddedBroker, enforce_retention, port_open
from monitor.core.config import load
from monitor.core.topics import ensure_topics
from tests.conftest import free_port


async def test_retention_deletes_only_records_older_than_the_window(
    kafka_bootstrap: str, unique: str
) -> None:
    prefix = f"r{unique}."
    topic = f"{prefix}events.binance"
    await ensure_topics(kafka_bootstrap, [topic], 2, 1, 3600)
    now_ms = int(time.time() * 1000)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for p in (0, 1):
            for i in range(10):  # 10 old records (2 h ago) then 5 recent ones per partition
                await producer.send_and_wait(
                    topic, b"old", partition=p, timestamp_ms=now_ms - 7_200_000 + i
                )
            for i in range(5):
                await producer.send_and_wait(topic, b"new", partition=p, timestamp_ms=now_ms + i)
        await producer.send_and_wait(f"other{unique}", b"x", timestamp_ms=now_ms - 7_200_000)
    finally:
        await producer.stop()

    moved = await enforce_retention(kafka_bootstrap, prefix, retention_s=3600, now_ms=now_ms)
    assert moved == {TopicPartition(topic, 0): 10, TopicPartition(topic, 1): 10}
    # a second pass has nothing left to delete
    assert await enforce_retention(kafka_bootstrap, prefix, 3600, now_ms=now_ms) == {}

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
        assert await consumer.beginning_offsets(tps) == dict.fromkeys(tps, 10)
        assert await consumer.end_offsets(tps) == dict.fromkeys(tps, 15)
        other = TopicPartition(f"other{unique}", 0)
        assert await consumer.beginning_offsets([other]) == {other: 0}  # not ours: untouched
    finally:
        await consumer.stop()

    # past the window of the new records too: everything goes
    moved = await enforce_retention(kafka_bootstrap, prefix, 3600, now_ms=now_ms + 7_200_000)
    assert moved == {TopicPartition(topic, 0): 15, TopicPartition(topic, 1): 15}


async def test_embedded_broker_up_status_down(tmp_path: Path) -> None:
    port = free_port()
    cfg = load(
        environ={
            "CASCADE_MONITOR__BROKER__PORT": str(port),
            "CASCADE_MONITOR__BROKER__DATA_DIR": str(tmp_path / "b"),
        }
    )
    broker = EmbeddedBroker(cfg)
    assert not broker.status().running
    try:
        assert await broker.up() is True
        st = broker.status()
        assert st.running and st.bootstrap == f"127.0.0.1:{port}"
        assert st.janitor_pid is not None
        assert await broker.up() is False  # already running: nothing started
    finally:
        broker.down()
    assert not port_open("127.0.0.1", port)
    assert broker.status().janitor_pid is None
