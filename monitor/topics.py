"""Explicit topic creation: one events topic per exchange, partitions and retention from config.

Brokers that auto-create topics (noida-db does, with one partition) would otherwise decide the
layout, so every process calls ``ensure_topics`` before producing or consuming.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor.config import Config

log = logging.getLogger(__name__)


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
        described = await admin.describe_topics(names)
        counts = {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()
    for name, n in counts.items():
        if n != partitions:
            log.warning("topic %s has %d partitions, config asks for %d", name, n, partitions)
    return counts


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
