"""Lifecycle shapes every service shares: ``async with`` for start/stop services
(``AsyncService``) and the consumer-group rebalance hook (``RebalanceListener``)."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import ClassVar, Self

from aiokafka import ConsumerRebalanceListener, TopicPartition


class AsyncService(abc.ABC):
    """``async with service``: ``start()`` on entry, ``stop()`` on exit.

    ``stop_if_start_fails`` says what a failing ``start()`` leaves behind: True for services whose
    ``start()`` may leave parts running for ``stop()`` to close (entry then calls ``stop()`` before
    re-raising); False for those whose ``start()`` closes what it opened before raising."""

    stop_if_start_fails: ClassVar[bool] = False

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            if self.stop_if_start_fails:
                await self.stop()
            raise
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


_OnPartitions = Callable[[set[TopicPartition]], Awaitable[None]]


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """aiokafka's rebalance hook, forwarding revoked and assigned partitions to two coroutines
    (awaited inside the rebalance, before the next fetch)."""

    def __init__(self, on_revoked: _OnPartitions, on_assigned: _OnPartitions) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._on_assigned(assigned)
