"""Reading a topic back for the publisher and service tests."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer

from monitor.core.codec import Batch, decode_batch


async def read_records(
    bootstrap: str, topic: str, n_events: int, timeout_s: float = 20.0
) -> list[tuple[int, bytes, Batch]]:
    """(partition, key, batch) of every record from the start, until ``n_events`` are read; then
    one more short poll, so a surplus (duplicates) would be seen too."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    out: list[tuple[int, bytes, Batch]] = []
    seen = 0
    try:
        async with asyncio.timeout(timeout_s):
            while seen < n_events:
                got = await consumer.getmany(timeout_ms=200)
                for tp, records in got.items():
                    for r in records:
                        batch = decode_batch(r.value)
                        out.append((tp.partition, r.key, batch))
                        seen += batch.n_liquidations + batch.n_trades
        for tp, records in (await consumer.getmany(timeout_ms=300)).items():
            out.extend((tp.partition, r.key, decode_batch(r.value)) for r in records)
    finally:
        await consumer.stop()
    return out
