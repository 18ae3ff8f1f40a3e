"""The Apache Kafka test broker itself (deploy/kafka/kafka.sh through tests/brokers.py): a record
acknowledged by all in-sync replicas is still there, at the same offset and the same address,
after the broker restarts."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.brokers import KafkaBroker

pytestmark = pytest.mark.scaling


async def _read_first(bootstrap: str, tp: TopicPartition) -> tuple[int, bytes | None, bytes | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        async with asyncio.timeout(60):
            record = await consumer.getone()
        return record.offset, record.key, record.value
    finally:
        await consumer.stop()


async def test_a_record_survives_a_broker_restart(apache_kafka: KafkaBroker, unique: str) -> None:
    topic = f"restart{unique}"
    producer = AIOKafkaProducer(
        bootstrap_servers=apache_kafka.bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"value", key=b"key")
    finally:
        await producer.stop()
    tp = TopicPartition(topic, sent.partition)
    assert await _read_first(apache_kafka.bootstrap, tp) == (sent.offset, b"key", b"value")

    bootstrap, pid = apache_kafka.bootstrap, apache_kafka.pid
    assert await asyncio.to_thread(apache_kafka.restart) == bootstrap
    assert apache_kafka.pid != pid  # a new broker process, on the same port and data

    assert await _read_first(apache_kafka.bootstrap, tp) == (sent.offset, b"key", b"value")
