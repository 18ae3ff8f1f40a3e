"""Lifecycle shapes every service shares: ``async with`` for start/stop services
(``AsyncService``), their health (``Health``: what /healthz and /readyz answer) and the
consumer-group rebalance hook (``RebalanceListener``)."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Self

from aiokafka import ConsumerRebalanceListener, TopicPartition


@dataclass(frozen=True, slots=True)
class Health:
    """A service's health. ``live``: its work goes on (a dead loop is not live: restart it);
    ``ready``: it does its job now (connected and subscribed, assigned partitions and warmed up,
    ...); ``detail``: why not, in a few words."""

    live: bool
    ready: bool
    detail: str = ""


def loop_health(stopped: bool, task: asyncio.Task[None] | None) -> Health | None:
    """The health a service with one work loop has whatever else it does: not live once stopped
    or when the loop ended, live and not ready before ``start()`` made the loop (starting is not a
    failure); None while the loop runs (the service then says whether it is ready)."""
    if stopped:
        return Health(live=False, ready=False, detail="stopped")
    if task is None:
        return Health(live=True, ready=False, detail="starting")
    if task.done():
        return Health(live=False, ready=False, detail="fetch loop ended")
    return None


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

    def health(self) -> Health:
        """Read from the metrics server's thread: must only read plain attributes. The default:
        live and ready (services with a loop or connections say more)."""
        return Health(live=True, ready=True)

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
