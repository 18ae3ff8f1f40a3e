"""Producers and consumers of several exchanges run in one process (the demo and the tests).

Production runs one process per role and exchange (``cascade-monitor produce`` / ``consume`` /
``aggregate`` / ``alerts``); this wires the same services together on one event loop and one
metrics registry: the alert dispatcher too, when ``[[alerts.sinks]]`` are configured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry

from consumers.aggregator import AssetAggregator
from consumers.service import ConsumerService
from monitor.alerting.dispatcher import AlertDispatcher
from monitor.core.config import Config
from monitor.core.lifecycle import AsyncService
from producers.service import ProducerService


class Pipeline(AsyncService):
    stop_if_start_fails = True  # stop() stops the services a failed start() had started

    def __init__(
        self, cfg: Config, exchanges: Sequence[str], registry: CollectorRegistry, *,
        environ: Mapping[str, str] | None = None,  # where the sinks' secrets are (default: os)
    ) -> None:  # fmt: skip
        self.consumers = [ConsumerService(cfg, x, registry) for x in exchanges]
        self.producers = [ProducerService(cfg, x, registry) for x in exchanges]
        # the asset view across the venues, from the consumers' risk snapshots
        self.aggregator = (
            AssetAggregator(cfg, registry) if cfg.consumer.risk_publish_s > 0 else None
        )
        self.dispatcher = (
            AlertDispatcher(cfg, registry, environ=environ) if cfg.alerts.sinks else None
        )

    async def start(self, connect_timeout_s: float = 15.0) -> None:
        """Consumers first (so they are in their groups), then producers, until every feed is
        connected and subscribed."""
        if self.dispatcher is not None:
            await self.dispatcher.start()
        if self.aggregator is not None:
            await self.aggregator.start()
        for c in self.consumers:
            await c.start()
        for p in self.producers:
            await p.start()
        for p in self.producers:
            await p.wait_connected(timeout_s=connect_timeout_s)

    async def drain(self, timeout_s: float = 60.0) -> dict[str, int]:
        """Stop the producers (every accepted event acknowledged), then wait until each consumer
        has applied everything its producer published. Returns events published per exchange."""
        for p in self.producers:
            await p.stop()
        published = {p.exchange: p.published_events for p in self.producers}
        for c in self.consumers:
            await c.wait_processed(published[c.exchange], timeout_s=timeout_s)
        return published

    async def flush_alerts(self, timeout_s: float = 30.0) -> int:
        """After ``drain`` (every event applied, so every tick with events closed and evaluated):
        send what the consumers have not sent yet, then wait until the dispatcher has handled
        every transition sent. Returns the transitions sent."""
        for c in self.consumers:
            await c.send_alerts()
        sent = sum(c.alerts_sent for c in self.consumers)
        if self.dispatcher is not None:
            await self.dispatcher.wait_handled(sent, timeout_s)
        return sent

    async def stop(self) -> None:
        for p in self.producers:
            await p.stop()
        for c in self.consumers:
            await c.stop()
        if self.aggregator is not None:
            await self.aggregator.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
