"""Process plumbing shared by the CLI commands and the services: logging, the /metrics endpoint,
the broker check, waiting for a stop signal, ``async with`` for start/stop services
(``AsyncService``) and the consumer-group rebalance hook (``RebalanceListener``)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from threading import Thread
from types import TracebackType
from typing import Any, ClassVar, Self

from aiokafka import ConsumerRebalanceListener, TopicPartition
from prometheus_client import CollectorRegistry, start_http_server

from monitor.broker import EmbeddedBroker, kafka_ready
from monitor.config import Config
from monitor.errors import BrokerError


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("websockets").setLevel(logging.WARNING)


@dataclass
class MetricsEndpoint:
    server: Any
    thread: Thread
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(cfg: Config, registry: CollectorRegistry) -> MetricsEndpoint:
    server, thread = start_http_server(cfg.metrics.port, addr=cfg.metrics.host, registry=registry)
    return MetricsEndpoint(server, thread, cfg.metrics.host, int(server.server_port))


async def require_broker(cfg: Config, timeout_s: float = 10.0) -> None:
    """Fail clearly when no broker answers (commands other than demo never start one)."""
    if not await kafka_ready(cfg.bootstrap_servers, timeout_s):
        hint = (
            "start the embedded one with `cascade-monitor broker up`"
            if cfg.uses_embedded_broker
            else "check kafka.bootstrap_servers"
        )
        raise BrokerError(f"no Kafka broker answers at {cfg.bootstrap_servers}: {hint}")


@contextlib.asynccontextmanager
async def broker_for(cfg: Config) -> AsyncIterator[bool]:
    """Yield with a reachable broker; start the embedded one if needed and stop what we started."""
    if not cfg.uses_embedded_broker:
        await require_broker(cfg)
        yield False
        return
    broker = EmbeddedBroker(cfg)
    started = await broker.up()
    if not started and not await kafka_ready(cfg.bootstrap_servers, cfg.broker.start_timeout_s):
        raise BrokerError(f"something listens on {broker.bootstrap} but does not speak Kafka")
    try:
        yield started
    finally:
        if started:
            broker.down()


async def wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


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
