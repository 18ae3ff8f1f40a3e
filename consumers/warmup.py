"""Warm-up replay (rebalances and restarts): a consumer that is assigned a partition it has not
processed before rebuilds that partition's pairs before going live.

In the assignment hook (inside the rebalance, before the first fetch) ``on_assigned`` looks up the
group's committed offset ``c`` and ``offsets_for_times(now - consumer.warmup_s)``, the first record
produced within the warm-up window, at offset ``w``; if ``w < c`` it seeks to ``w`` and marks ``c``
as the partition's "replay until". Records below the mark rebuild the decayed state (rates,
volatility, market context) with the cumulative counters left untouched (the previous owner counted
them) and are counted in ``events_replayed_total``, not in ``processed_events``; from ``c`` on the
partition is live (``passed``, after each batch). ``warming(tp)`` says whether a partition is still
replaying (alerts and risk snapshots are held back meanwhile), and ``consumer_warming_partitions``
exports how many are. Record timestamps are the producer's send time (CreateTime), so the window is
wall time, as the decay is. A lookup that fails leaves the partitions live (no replay); a partition
revoked while warming is dropped here (whoever owns it now replays it). A partition given back to
a member that held it before counts as new once the group's commit has moved past the member's own
position (another member applied records in between): the service then warms it up like a fresh
one, skipping what the member applied itself, so only the missing records are replayed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Set
from typing import Protocol

from aiokafka.errors import KafkaError

from monitor.core.kafka import Rewinder, TopicPartition

log = logging.getLogger(__name__)


class _Gauge(Protocol):
    def set(self, value: float) -> None: ...


class WarmUp:
    """The partitions replaying their warm-up window, each up to the offset where it goes live."""

    def __init__(self, exchange: str, warmup_s: float, warming_gauge: _Gauge) -> None:
        self.exchange = exchange
        self.warmup_s = warmup_s
        self.until: dict[TopicPartition, int] = {}  # replay below this offset
        self.live = asyncio.Event()  # assigned, and no partition replaying
        self._gauge = warming_gauge

    def warming(self, tp: TopicPartition | None = None) -> bool:
        """Whether ``tp`` (default: any assigned partition) is still replaying its warm-up."""
        return bool(self.until) if tp is None else tp in self.until

    def replay_until(self, tp: TopicPartition) -> int:
        """Records of ``tp`` below this offset are replayed (-1: the partition is live)."""
        return self.until.get(tp, -1)

    def passed(self, tp: TopicPartition, position: int | None) -> None:
        """After a batch of ``tp``: it goes live once its next offset reaches its mark."""
        until = self.until.get(tp)
        if until is None or position is None or position < until:
            return
        del self.until[tp]
        self._gauge.set(len(self.until))
        if not self.until:
            self.live.set()
        log.info("%s: partition %d warmed up, live from offset %d",
                 self.exchange, tp.partition, until)  # fmt: skip

    async def on_assigned(
        self,
        consumer: Rewinder,
        assigned: Set[TopicPartition],
        processed: Callable[[TopicPartition], bool],
    ) -> None:
        """A new assignment: drop the marks of partitions no longer assigned, and seek the fresh
        ones (neither ``processed`` by this process nor warming) back to their warm-up window."""
        for tp in list(self.until):
            if tp not in assigned:  # revoked while warming: whoever owns it now replays it
                del self.until[tp]
        fresh = [tp for tp in assigned if not processed(tp) and tp not in self.until]
        if self.warmup_s > 0 and fresh:
            await self._seek(consumer, fresh)
        self._gauge.set(len(self.until))
        if self.until:
            self.live.clear()
        else:
            self.live.set()

    async def _seek(self, consumer: Rewinder, tps: list[TopicPartition]) -> None:
        """Seek each partition with a committed offset back to the first record of the warm-up
        window (see the module docstring); a lookup that fails leaves the partition live."""
        since_ms = int((time.time() - self.warmup_s) * 1000)
        try:
            committed = {tp: await consumer.committed(tp) for tp in tps}
            starts = await consumer.offsets_for_times(
                {tp: since_ms for tp, c in committed.items() if c}
            )
        except KafkaError as exc:
            log.warning("%s: warm-up lookup failed (%s); starting live", self.exchange, exc)
            return
        for tp, found in starts.items():
            c = committed[tp]
            if found is None or c is None or found.offset >= c:
                continue  # nothing within the window before the committed offset
            consumer.seek(tp, found.offset)
            self.until[tp] = c
            log.info("%s: partition %d replays offsets %d..%d (warm-up %.0f s)",
                     self.exchange, tp.partition, found.offset, c - 1, self.warmup_s)  # fmt: skip
