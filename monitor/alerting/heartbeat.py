"""A component's side of pipeline health: sample its figures, learn its event streams' habits,
export them on ``/metrics`` and publish a heartbeat with them to ``<prefix>.health``.

``HealthReporter(cfg, registry, probe)`` runs beside one service (a producer, a consumer, the
aggregator or the dispatcher; ``probe`` knows where that service keeps its figures:
``producers.health``, ``consumers.health``, ``monitor.alerting.healthwatch``):

* every ``health.sample_s`` it reads the probe's cumulative event counts per (kind, stage) and
  feeds the difference to one ``monitor.core.freshness.GapModel`` per stream (so freshness costs
  nothing on the hot path: it is read from the counters the service keeps anyway, to within
  one sampling period), and lets the probe update its stall clocks;
* at scrape time it exports, per stream, ``cascade_event_age_seconds``,
  ``cascade_event_rate_per_second`` and ``cascade_event_silence_return_period_seconds``, plus the
  probe's own gauges (publish and commit stalls): ``monitor.core.metrics.HEALTH_GAUGES``;
* every ``health.heartbeat_s`` it publishes a ``monitor.core.healthrecord.Heartbeat`` (the
  probe's counters and gauges, each stream's figures), keyed by the component, and counts the
  outcome in ``cascade_health_heartbeats_total{component,outcome}``. A heartbeat Kafka does not
  take within one interval is given up (the next one says more); on ``stop()`` a last heartbeat
  marked ``stopping`` tells the health watch the component left on purpose.

The health topic has one partition (a few records a second from the whole pipeline; one
partition keeps every heartbeat in publishing order for the watch).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from monitor.core.config import Config
from monitor.core.freshness import GapModel, GapParams
from monitor.core.healthrecord import Heartbeat, StreamFigures
from monitor.core.lifecycle import AsyncService
from monitor.core.metrics import NAMESPACE, HealthMetrics, HealthRow, for_registry
from monitor.core.topics import ensure_topics

log = logging.getLogger(__name__)

HEALTH_PARTITIONS: Final = 1
STOP_BEAT_TIMEOUT_S: Final = 2.0
AGE, RATE, RETURN = (f"{NAMESPACE}_event_age_seconds", f"{NAMESPACE}_event_rate_per_second",
                     f"{NAMESPACE}_event_silence_return_period_seconds")  # fmt: skip


class HealthProbe(Protocol):
    """Where one service keeps its health figures."""

    component: str  # "producer binance"
    role: str  # monitor.core.healthrecord.ROLES
    exchange: str  # "" for components of every venue

    def counts(self) -> Mapping[tuple[str, str], float]:
        """Cumulative events per (kind, stage) (empty for components without event streams)."""
        ...

    def sample(self, t: float) -> None:
        """Update what is measured over time (stall clocks) at wall time ``t``."""
        ...

    def figures(self, t: float) -> tuple[dict[str, float], dict[str, float]]:
        """(cumulative counters, gauges) for the heartbeat."""
        ...

    def rows(self, t: float) -> Iterable[HealthRow]:
        """The probe's own scrape-time gauges (``HEALTH_GAUGES``)."""
        ...


def gap_params(cfg: Config) -> GapParams:
    h = cfg.health
    return GapParams(resolution_s=h.sample_s, memory_s=h.memory_s, learn_min_s=h.learn_min_s,
                     outage_s=h.silence_warning_s)  # fmt: skip


def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{int(time.time())}"


class HealthReporter(AsyncService):
    """See the module docstring. ``start()``/``stop()`` or ``async with``; no I/O in __init__."""

    stop_if_start_fails = True

    def __init__(
        self, cfg: Config, registry: CollectorRegistry, probe: HealthProbe, *,
        producer: Any = None,  # an AIOKafkaProducer-like object (tests); default: built in start()
    ) -> None:  # fmt: skip
        self.cfg = cfg
        self.probe = probe
        self.instance = instance_id()
        self.models: dict[tuple[str, str], GapModel] = {}
        self._params = gap_params(cfg)
        self._prev: dict[tuple[str, str], float] = {}
        self._metrics = for_registry(HealthMetrics, registry)
        self._m_sent = self._metrics.heartbeats.labels(probe.component, "sent")
        self._m_failed = self._metrics.heartbeats.labels(probe.component, "failed")
        self._producer: Any = producer
        self._own_producer = producer is None
        self._tasks: list[asyncio.Task[None]] = []
        self._seq = 0
        self.sent = 0  # heartbeats Kafka took
        self._sent_changed = asyncio.Event()
        self._started = False

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("HealthReporter.start() may be called once")
        self._started = True
        k = self.cfg.kafka
        await ensure_topics(self.cfg.bootstrap_servers, [self.cfg.health_topic],
                            HEALTH_PARTITIONS, k.replication_factor, k.retention_s)  # fmt: skip
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self.cfg.bootstrap_servers, acks=1, linger_ms=0,
                client_id=f"{k.client_id}-health", request_timeout_ms=k.request_timeout_ms,
            )  # fmt: skip
        await self._producer.start()
        self.sample(time.time())
        self._metrics.gauges.attach(self.rows)
        self._tasks = [asyncio.create_task(self._every(self.cfg.health.sample_s, self._sample),
                                           name=f"health-sample-{self.probe.component}"),
                       asyncio.create_task(self._every(self.cfg.health.heartbeat_s, self.beat),
                                           name=f"health-beat-{self.probe.component}")]  # fmt: skip

    async def stop(self) -> None:
        """Stop sampling, publish the last heartbeat (``stopping``), close the Kafka producer.
        Idempotent."""
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._metrics.gauges.detach(self.rows)
        producer, self._producer = self._producer, None
        if producer is None:
            return
        try:
            if tasks:
                await self.beat(stopping=True, timeout_s=STOP_BEAT_TIMEOUT_S)
        finally:
            if self._own_producer:
                await producer.stop()

    # ---- sampling ----------------------------------------------------------------------------

    def sample(self, t: float) -> None:
        """Feed the event counts since the last sample to the streams' models, update the
        probe's stall clocks."""
        for stream, count in self.probe.counts().items():
            prev = self._prev.get(stream)
            self._prev[stream] = count
            model = self.models.get(stream)
            if model is None:
                self.models[stream] = GapModel(self._params, t)
                continue  # what was counted before this process watched is not a gap
            n = count - prev if prev is not None and count >= prev else count  # reset: restarted
            model.observe(t, int(n))
        self.probe.sample(t)

    async def _sample(self) -> None:
        self.sample(time.time())

    def streams(self, t: float) -> tuple[StreamFigures, ...]:
        out = []
        for (kind, stage), model in sorted(self.models.items()):
            f = model.snapshot().read(t)
            out.append(StreamFigures(kind, stage, f.silence_s, f.rate, f.return_period_s))
        return tuple(out)

    def rows(self, t: float) -> Iterable[HealthRow]:
        """Scrape-time gauges (called from the metrics thread: reads snapshots only)."""
        x = self.probe.exchange
        for (kind, stage), model in list(self.models.items()):
            f = model.snapshot().read(t)
            yield AGE, (x, kind, stage), f.silence_s
            yield RATE, (x, kind, stage), f.rate
            yield RETURN, (x, kind, stage), f.return_period_s
        yield from self.probe.rows(t)

    # ---- heartbeats --------------------------------------------------------------------------

    def heartbeat(self, t: float, stopping: bool = False) -> Heartbeat:
        counters, gauges = self.probe.figures(t)
        self._seq += 1
        p = self.probe
        return Heartbeat(p.component, p.role, p.exchange, self.instance, self._seq, t,
                         self.cfg.health.heartbeat_s, stopping, counters, gauges,
                         self.streams(t))  # fmt: skip

    async def beat(self, stopping: bool = False, timeout_s: float | None = None) -> bool:
        """Publish one heartbeat now; whether Kafka took it within ``timeout_s`` (default one
        heartbeat interval)."""
        producer = self._producer
        if producer is None:
            return False
        hb = self.heartbeat(time.time(), stopping)
        wait = self.cfg.health.heartbeat_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(wait):
                await producer.send_and_wait(self.cfg.health_topic, hb.encode(),
                                             key=hb.component.encode())  # fmt: skip
        except Exception as exc:  # KafkaError, timeout: the next heartbeat tries again
            self._m_failed.inc()
            log.debug("%s: heartbeat not published (%r)", self.probe.component, exc)
            return False
        self._m_sent.inc()
        self.sent += 1
        self._sent_changed.set()
        self._sent_changed = asyncio.Event()
        return True

    async def wait_sent(self, n: int, timeout_s: float) -> None:
        """Until ``n`` heartbeats were taken by Kafka."""
        async with asyncio.timeout(timeout_s):
            while self.sent < n:
                await self._sent_changed.wait()

    async def _every(self, interval_s: float, step: Any) -> None:
        """Call ``step`` every ``interval_s`` on a fixed schedule (a slow step skips ticks)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            due += interval_s
            now = loop.time()
            if due < now:
                due = now + interval_s - (now - due) % interval_s
            await asyncio.sleep(due - now)
            try:
                await step()
            except Exception:  # a bug in a probe must not end the component's health
                log.exception("%s: health step failed", self.probe.component)
