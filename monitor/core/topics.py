"""Explicit topic creation: one events topic per exchange, partitions and retention from config.

Brokers that auto-create topics (noida-db does, with one partition) would otherwise decide the
layout, so every process calls ``ensure_topics`` before producing or consuming.

Partition counts come from the admin client (``describe_topics``), never from a client's metadata
cache: right after it starts, an aiokafka client knows the topics only when the broker answers an
empty metadata request with all of them (noida-db does; Apache Kafka answers with none), and right
after ``CreateTopics`` Apache Kafka's brokers may still report 0 partitions for a few
milliseconds, so ``topic_partitions`` asks again until every topic has its partitions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Final

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor.core.config import Config

log = logging.getLogger(__name__)

METADATA_WAIT_S: Final = 10.0  # how long a new topic may take to show its partitions
METADATA_RETRY_S: Final = 0.05


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int,
    replication: int,
    retention_s: int,
) -> dict[str, int]:
    """Create missing topics; return each topic's partition count as the broker reports it."""
    names = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="cascade-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication,
                topic_configs={"retention.ms": str(retention_s * 1000)},
            )
            for name in names
            if name not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process won the race
                await admin.create_topics(new)
            log.info("created topics %s", [t.name for t in new])
        counts = {t: len(p) for t, p in (await _partitions(admin, names)).items()}
    finally:
        await admin.close()
    for name, n in counts.items():
        if n != partitions:
            log.warning("topic %s has %d partitions, config asks for %d", name, n, partitions)
    return counts


async def topic_partitions(bootstrap_servers: str, topics: Iterable[str]) -> dict[str, list[int]]:
    """Each existing topic's partition ids, as the brokers report them (waiting up to
    ``METADATA_WAIT_S`` for a new topic's partitions to appear); absent topics are left out."""
    names = list(topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="cascade-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        return await _partitions(admin, [t for t in names if t in existing])
    finally:
        await admin.close()


async def _partitions(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, list[int]]:
    deadline = time.monotonic() + METADATA_WAIT_S
    while True:
        described = await admin.describe_topics(names) if names else []
        out = {d["topic"]: sorted(p["partition"] for p in d["partitions"]) for d in described}
        if all(out.get(t) for t in names) or time.monotonic() > deadline:
            return out
        await asyncio.sleep(METADATA_RETRY_S)  # the brokers' metadata lags the controller


async def ensure_exchange_topics(cfg: Config, exchanges: Iterable[str]) -> dict[str, int]:
    return await ensure_topics(
        cfg.bootstrap_servers,
        [cfg.topic(x) for x in exchanges],
        cfg.kafka.partitions,
        cfg.kafka.replication_factor,
        cfg.kafka.retention_s,
    )


async def ensure_topic(cfg: Config, name: str) -> dict[str, int]:
    """One topic with the configured partitions, replication and retention."""
    k = cfg.kafka
    return await ensure_topics(
        cfg.bootstrap_servers, [name], k.partitions, k.replication_factor, k.retention_s
    )


async def ensure_risk_topic(cfg: Config) -> dict[str, int]:
    """``<prefix>.risk``: per-pair risk snapshots, keyed by asset (consumers -> aggregator)."""
    return await ensure_topic(cfg, cfg.risk_topic)


async def ensure_alerts_topic(cfg: Config) -> dict[str, int]:
    """``<prefix>.alerts``: alert transitions keyed by fingerprint, so one alert's firing and
    resolved events stay in order on one partition (consumers -> ``cascade-monitor alerts``)."""
    return await ensure_topic(cfg, cfg.alerts_topic)
