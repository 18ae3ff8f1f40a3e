"""Pipeline health beside each service: the ``HealthReporter`` (``monitor.alerting.heartbeat``)
with the probe that reads that service's figures. ``reporter_for`` is what ``produce``,
``consume``, ``aggregate`` and ``alerts`` (and so ``run``), the pipeline and the demo start next
to their services: started after the service, stopped before it (its last heartbeat says
``stopping``, so a component stopped on purpose is not reported gone)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry

from consumers.aggregator import AssetAggregator
from consumers.health import AggregatorProbe, ConsumerProbe
from consumers.service import ConsumerService
from monitor.alerting.dispatcher import AlertDispatcher
from monitor.alerting.heartbeat import HealthProbe, HealthReporter
from monitor.core.config import Config
from monitor.core.lifecycle import AsyncService
from producers.health import ProducerProbe
from producers.service import ProducerService


class NoHealth(AsyncService):
    """What runs beside a service when ``health.enabled`` is false: nothing."""

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""


def probe_for(service: AsyncService) -> HealthProbe:
    t = time.time()
    if isinstance(service, ProducerService):
        return ProducerProbe(service, t)
    if isinstance(service, ConsumerService):
        return ConsumerProbe(service, t)
    if isinstance(service, AssetAggregator):
        return AggregatorProbe(lambda: service.records)
    raise TypeError(f"no health probe for {type(service).__name__}")


def reporter_for(
    cfg: Config, service: AsyncService, registry: CollectorRegistry
) -> HealthReporter | NoHealth:
    """The health reporter of ``service`` (a no-op when ``health.enabled`` is false, and for the
    alert dispatcher, which reports its own beside its health watch)."""
    if not cfg.health.enabled or isinstance(service, AlertDispatcher):
        return NoHealth()
    return HealthReporter(cfg, registry, probe_for(service))
