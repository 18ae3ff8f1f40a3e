"""Periodic REST polling for data a venue only serves over REST (Binance open interest).

An adapter that is a ``PollSource`` lists the URLs to poll and parses each response into events
(sans-I/O, like its websocket parser). The poller spreads the URLs evenly over
``poll_interval_s`` (one request every interval / n seconds, never a burst: venues rate-limit by
weight per minute), hands the events to the same sink as the websocket sessions, and counts each
poll's outcome. A failed poll is logged (rate-limited) and retried on the next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from monitor.core.errors import ParseError
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event, MarketContext
from producers.metadata import MetadataError, http_get
from producers.ratelog import RateLimitedLog

log = logging.getLogger(__name__)


@runtime_checkable
class PollSource(Protocol):
    def poll_urls(self, rest_base: str) -> list[str]:
        """The URLs to GET every round (e.g. one per configured symbol)."""
        ...

    def parse_poll(self, url: str, body: bytes, received_ns: int) -> list[Event]:
        """Events from one response; ParseError if it is not the expected document."""
        ...


class Poller:
    def __init__(
        self,
        exchange: str,
        source: PollSource,
        rest_base: str,
        sink: Callable[[list[Event]], object],
        metrics: ProducerMetrics,
        *,
        interval_s: float,
        timeout_s: float = 10.0,
    ) -> None:
        self.exchange = exchange
        self.urls = source.poll_urls(rest_base)
        self.source = source
        self.sink = sink
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self._m_ok = metrics.rest_polls.labels(exchange, "ok")
        self._m_error = metrics.rest_polls.labels(exchange, "error")
        self._m_events = metrics.events
        self._rlog = RateLimitedLog(log)
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0
        self._round_done = asyncio.Event()

    def start(self) -> None:
        if self.urls and self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"poll-{self.exchange}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_rounds(self, n: int, timeout_s: float) -> None:
        """Return once ``n`` complete rounds have been polled (tests, diagnostics)."""
        async with asyncio.timeout(timeout_s):
            while self.rounds < n:
                await self._round_done.wait()

    async def poll(self, url: str) -> None:
        try:
            body = await asyncio.to_thread(http_get, url, self.timeout_s)
            events = self.source.parse_poll(url, body, time.time_ns())
        except (MetadataError, ParseError) as exc:
            self._m_error.inc()
            self._rlog(logging.WARNING, "poll", "%s: poll of %s failed: %s",
                       self.exchange, url, exc)  # fmt: skip
            return
        self._m_ok.inc()
        if events:
            for e in events:  # counted like the sessions' events (kind: context, trade, ...)
                kind = "context" if type(e) is MarketContext else type(e).__name__.lower()
                self._m_events.labels(self.exchange, kind).inc()
            self.sink(events)

    async def _run(self) -> None:
        gap = self.interval_s / len(self.urls)
        while True:
            for url in self.urls:
                started = time.monotonic()
                await self.poll(url)
                await asyncio.sleep(max(0.0, gap - (time.monotonic() - started)))
            self.rounds += 1
            self._round_done.set()
            self._round_done = asyncio.Event()
