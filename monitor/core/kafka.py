"""The Kafka client handles the services use, as small Protocols (only the methods each one calls).

aiokafka ships no type information, so mypy sees ``AIOKafkaConsumer`` and ``AIOKafkaProducer`` as
``Any``; a service types its handle with the Protocol of what it uses instead, and
``tests/monitor/core/test_kafka.py`` checks that aiokafka's classes have every method with
compatible parameters (and are coroutines where these are). Tests can hand a service a fake with
just these methods.

Consumers, from the least to the most a service needs:

* ``Fetcher``: ``start``/``stop`` and ``getmany`` (the asset aggregator, which assigns its
  partitions itself);
* ``GroupConsumer``: a group member that commits what it processed (the alert dispatcher);
* ``LagConsumer``: also reads its positions and high-water marks (the consumer lag gauge);
* ``Rewinder``: looks up committed offsets and offsets by time, and seeks (the warm-up replay);
* ``RiskConsumer``: all of it (the consumer service).

Producers: ``Sender`` (``send_and_wait``: one record acknowledged before the next) and
``BatchSender`` (also ``send`` and ``flush``: records in flight together).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Protocol

from aiokafka import TopicPartition

__all__ = [
    "BatchSender",
    "Fetcher",
    "GroupConsumer",
    "LagConsumer",
    "OffsetTimestamp",
    "Record",
    "Rewinder",
    "RiskConsumer",
    "Sender",
    "TopicPartition",
]


class Record(Protocol):
    """A fetched record: what the services read of aiokafka's ``ConsumerRecord``."""

    @property
    def offset(self) -> int: ...

    @property
    def value(self) -> bytes | None: ...


class OffsetTimestamp(Protocol):
    """An ``offsets_for_times`` answer: the first offset at or after the time asked for."""

    @property
    def offset(self) -> int: ...


class _Client(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Fetcher(_Client, Protocol):
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> Mapping[TopicPartition, Sequence[Record]]: ...


class GroupConsumer(Fetcher, Protocol):
    def assignment(self) -> AbstractSet[TopicPartition]: ...

    async def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...


class LagConsumer(GroupConsumer, Protocol):
    def highwater(self, partition: TopicPartition) -> int | None: ...

    async def position(self, partition: TopicPartition) -> int: ...


class Rewinder(Protocol):
    async def committed(self, partition: TopicPartition) -> int | None: ...

    async def offsets_for_times(
        self, timestamps: Mapping[TopicPartition, int]
    ) -> Mapping[TopicPartition, OffsetTimestamp | None]: ...

    def seek(self, partition: TopicPartition, offset: int) -> None: ...


class RiskConsumer(LagConsumer, Rewinder, Protocol):
    """What the consumer service uses: a group member with lag and the warm-up lookups."""


class Sender(_Client, Protocol):
    async def send_and_wait(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> object: ...


class BatchSender(Sender, Protocol):
    async def send(
        self, topic: str, value: bytes | None = None, key: bytes | None = None
    ) -> Awaitable[object]: ...

    async def flush(self) -> None: ...
