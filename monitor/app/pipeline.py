"""Producers and consumers of several exchanges run in one process (the demo and the tests).

Production runs one process per role and exchange (``cascade-monitor produce`` / ``consume`` /
``aggregate`` / ``alerts``); this wires the same services together on one event loop and one
metrics registry: the alert dispatcher too, when ``[[alerts.sinks]]`` are configured, and beside
every service its health reporter (``monitor.app.health``), started once every service runs and
stopped before its service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry

from consumers.aggregator import AssetAggregator
from consumers.service import ConsumerService
from monitor.alerting.dispatcher import AlertDispatcher
from monitor.app.health import reporter_for
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
        services: list[AsyncService] = [*self.consumers, *self.producers]
        services += [s for s in (self.aggregator, self.dispatcher) if s is not None]
        self.reporters = {id(s): reporter_for(cfg, s, registry) for s in services}
        self._reporting: list[AsyncService] = []

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
        for r in self.reporters.values():
            self._reporting.append(r)
            await r.start()

    async def _stop_reporter(self, service: AsyncService) -> None:
        reporter = self.reporters[id(service)]
        if reporter in self._reporting:
            self._reporting.remove(reporter)
            await reporter.stop()

    async def drain(self, timeout_s: float = 60.0) -> dict[str, int]:
        """Stop the producers (every accepted event acknowledged), then wait until each consumer
        has applied everything its producer published. Returns events published per exchange."""
        for p in self.producers:
            await self._stop_reporter(p)
            await p.stop()
        published = {p.exchange: p.published_events for p in self.producers}
        for c in self.consumers:
            await c.wait_processed(published[c.exchange], timeout_s=timeout_s)
        return published

    async def flush_alerts(self, timeout_s: float = 30.0) -> int:
        """After ``drain`` (every event applied, so every tick with events closed and evaluated):
        stop the consumers, each sending what it has not sent yet, then wait until the dispatcher
        has handled every transition sent. Returns the transitions sent.

        The consumers stop because the input has ended: a live consumer's event clock moves on
        with the wall time, so a pair whose alert is pending (its condition holding, not yet for
        ``for_s``) is still evaluated after its last event and could fire after this count was
        taken. Stopped, they emit exactly the transitions of the data; their state stays
        readable (``snapshot``)."""
        for c in self.consumers:
            await self._stop_reporter(c)  # as drain does for the producers: a stop is no failure
            await c.stop()
        sent = sum(c.alerts_sent for c in self.consumers)
        if self.dispatcher is not None:
            await self.dispatcher.wait_handled(sent, timeout_s)
        return sent

    async def stop(self) -> None:
        while self._reporting:
            await self._reporting.pop().stop()
        for p in self.producers:
            await p.stop()
        for c in self.consumers:
            await c.stop()
        if self.aggregator is not None:
            await self.aggregator.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
