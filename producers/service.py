"""One exchange's producer: websocket sessions -> de-duplication -> Kafka publisher.

The sessions' adapters append rows straight into the publisher's column store, whose duplicate
filter (one for the exchange) drops what another connection already delivered.

``ProducerService(cfg, "binance", registry)`` builds everything without I/O; ``start()`` makes sure
the exchange's topic exists (partitions and retention from the config), starts the Kafka producer
and opens one session per ``ConnectionPlan`` of the venue's adapter; ``stop()`` closes the sessions
first (no new events), then waits until Kafka acknowledged every accepted event and stops the
producer. Use it as ``async with ProducerService(...) as svc:``.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import CollectorRegistry

from monitor.core.config import Config
from monitor.core.errors import ConfigError
from monitor.core.lifecycle import AsyncService, Health
from monitor.core.metrics import ProducerMetrics, for_registry
from monitor.core.topics import ensure_exchange_topics, ensure_topics
from producers.base import ConnectionPlan, InstrumentSource
from producers.deadletter import DeadLetters
from producers.metadata import InstrumentLoader
from producers.poller import Poller, PollSource
from producers.publisher import Publisher
from producers.registry import ADAPTERS
from producers.session import Deduplicator, Session, Tap

log = logging.getLogger(__name__)


class ProducerService(AsyncService):
    stop_if_start_fails = False  # start() calls stop() itself when it fails

    def __init__(
        self,
        cfg: Config,
        exchange: str,
        registry: CollectorRegistry,
        *,
        metrics: ProducerMetrics | None = None,
        tap: Tap | None = None,
    ) -> None:
        factory = ADAPTERS.get(exchange)
        if factory is None:
            raise ConfigError(f"no producer for exchange {exchange!r} (known: {sorted(ADAPTERS)})")
        if exchange not in cfg.exchanges:
            raise ConfigError(f"exchange {exchange!r} is not in the configuration")
        self.cfg = cfg
        self.exchange = exchange
        self._tap = tap  # sees every raw frame with its receive time (measurements)
        self.metrics = metrics if metrics is not None else for_registry(ProducerMetrics, registry)
        ex_cfg = cfg.exchanges[exchange]
        self.adapter = factory(ex_cfg)
        self.publisher = Publisher(cfg, exchange, self.metrics)
        self.dedup = Deduplicator()  # for adapters that hand over event objects
        self.dead_letters = (
            DeadLetters(cfg.dead_letter_topic(exchange), exchange, self.metrics)
            if cfg.kafka.dead_letter
            else None
        )
        self.plans: list[ConnectionPlan] = []
        self.sessions: list[Session] = []
        self._plan()
        self.instruments: InstrumentLoader | None = None
        if isinstance(self.adapter, InstrumentSource):
            self.instruments = InstrumentLoader(
                exchange, self.adapter, cfg.rest_url(exchange), self.metrics,
                refresh_s=ex_cfg.instruments_refresh_s, timeout_s=ex_cfg.instruments_timeout_s,
            )  # fmt: skip
        self.poller: Poller | None = None
        if isinstance(self.adapter, PollSource):
            self.poller = Poller(
                exchange, self.adapter, cfg.rest_url(exchange), self.publisher.add, self.metrics,
                interval_s=ex_cfg.poll_interval_s,
            )  # fmt: skip
        self._state = "new"  # new -> started -> stopped

    def _plan(self) -> None:
        """(Re)build the connection plans and their sessions (not started)."""
        ex_cfg = self.cfg.exchanges[self.exchange]
        self.plans = self.adapter.connections(ex_cfg, self.cfg.ws_url(self.exchange))
        self.sessions = [
            Session(self.exchange, p, self.adapter, ex_cfg, self.publisher, self.metrics,
                    self.dedup, tap=self._tap, on_reject=self.dead_letters)
            for p in self.plans
        ]  # fmt: skip

    def health(self) -> Health:
        """Live while started with every session and the publisher running; ready once every
        planned connection is open and subscribed."""
        if self._state != "started":
            return Health(live=self._state == "new", ready=False, detail=self._state)
        dead = [s.plan.name for s in self.sessions if not s.running]
        if dead or not self.publisher.running:
            return Health(live=False, ready=False, detail=f"stopped: {dead or ['publisher']}")
        waiting = [s.plan.name for s in self.sessions if not s.connected]
        return Health(
            live=True, ready=not waiting, detail=f"connecting: {waiting}" if waiting else ""
        )

    @property
    def connected(self) -> bool:
        """Every planned connection is open and subscribed."""
        return self._state == "started" and all(s.connected for s in self.sessions)

    @property
    def published_events(self) -> int:
        """Events acknowledged by Kafka."""
        return self.publisher.published_events

    async def wait_published(self, n: int, timeout_s: float) -> None:
        """Return once at least ``n`` events are acknowledged; TimeoutError after ``timeout_s``."""
        await self.publisher.wait_published(n, timeout_s)

    async def wait_connected(self, timeout_s: float) -> None:
        """Return once every session is connected; TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            for s in self.sessions:
                await s.wait_connected(None)

    async def start(self) -> None:
        if self._state != "new":
            raise RuntimeError(f"ProducerService({self.exchange}) already {self._state}")
        self._state = "started"
        try:
            await ensure_exchange_topics(self.cfg, [self.exchange])
            if self.dead_letters is not None:
                k = self.cfg.kafka
                await ensure_topics(self.cfg.bootstrap_servers, [self.dead_letters.topic], 1,
                                    k.replication_factor, k.retention_s)  # fmt: skip
            if self.instruments is not None:  # contract multipliers before the first frame
                await self.instruments.start()
                self._plan()  # the listing may add subscriptions (Bybit: every symbol)
            await self.publisher.start()
            if self.dead_letters is not None:
                self.dead_letters.attach(self.publisher.kafka_producer)
            for s in self.sessions:
                await s.start()
            if self.poller is not None:
                self.poller.start()
        except BaseException:
            await self.stop()
            raise
        log.info("%s producer started: %d connection(s) -> %s", self.exchange,
                 len(self.sessions), self.publisher.topic)  # fmt: skip

    async def stop(self, flush_timeout_s: float | None = None) -> None:
        """Close the sessions, flush the publisher, stop the Kafka producer. Idempotent.

        The flush waits for every accepted event, by default up to twice
        ``kafka.request_timeout_ms`` (then the rest is counted as abandoned and logged)."""
        if self._state == "stopped":
            return
        self._state = "stopped"
        if self.poller is not None:
            await self.poller.stop()
        await asyncio.gather(*(s.stop() for s in self.sessions))
        if self.instruments is not None:
            await self.instruments.stop()
        if flush_timeout_s is None:
            flush_timeout_s = 2 * self.cfg.kafka.request_timeout_ms / 1000
        if self.dead_letters is not None:
            await self.dead_letters.flush()
        await self.publisher.stop(flush_timeout_s)
        log.info("%s producer stopped: %d events published", self.exchange, self.published_events)
