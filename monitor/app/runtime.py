"""Process plumbing of the commands: logging, the /metrics endpoint, the broker check (and the
embedded broker when none is configured), waiting for a stop signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from threading import Thread
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from monitor.app.broker import EmbeddedBroker, kafka_ready
from monitor.core.config import Config
from monitor.core.errors import BrokerError


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
