"""Instrument metadata from a venue's REST API, for adapters that are an InstrumentSource.

At start-up the service waits for one complete load (every URL answered and parsed) before it
opens any socket, so no event is skipped for want of a contract multiplier; giving up after
``instruments_timeout_s`` is a clear start-up error. Afterwards the metadata is refreshed every
``instruments_refresh_s`` (new listings, changed multipliers); a failed refresh keeps the previous
instruments, is counted and logged.

A paged listing (an adapter with ``next_instrument_url(url)``, Bybit) is followed page by page
until the adapter reports no next page; the load counts as complete only then.

The GET runs in a worker thread through urllib (start-up and hourly: no need for an async HTTP
client dependency).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import urllib.request
from collections.abc import Callable
from typing import Final

from monitor.core.errors import MonitorError, ParseError
from monitor.core.metrics import ProducerMetrics
from producers.base import InstrumentSource

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 64 * 2**20
RETRY_MAX_S: Final = 10.0
MAX_PAGES: Final = 50  # a paged listing longer than this is a venue (or cursor) bug


class MetadataError(MonitorError):
    retriable = True


def http_get(url: str, timeout_s: float) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": "application/json",
                                               "User-Agent": "cascade-monitor"})  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            body: bytes = resp.read(MAX_BODY_BYTES + 1)
    except OSError as exc:  # URLError, HTTPError, timeouts
        raise MetadataError(f"GET {url}: {exc}") from None
    if len(body) > MAX_BODY_BYTES:
        raise MetadataError(f"GET {url}: body larger than {MAX_BODY_BYTES} bytes")
    return body


async def load_all(
    source: InstrumentSource,
    rest_base: str,
    timeout_s: float,
    on_body: Callable[[str, bytes], object] | None = None,
) -> int:
    """GET every instrument URL of ``source`` (following pages) and install each answer; the
    number of instruments installed. ``on_body(url, body)`` sees each answer (the recorder)."""
    total = 0
    next_page = getattr(source, "next_instrument_url", None)  # paged listings (Bybit)
    for first in source.instrument_urls(rest_base):
        url: str | None = first
        pages = 0
        while url is not None:
            body = await asyncio.to_thread(http_get, url, timeout_s)
            try:
                total += source.load_instruments(url, body)
            except ParseError as exc:
                raise MetadataError(f"GET {url}: not an instrument list ({exc})") from None
            if on_body is not None:
                on_body(url, body)
            pages += 1
            url = next_page(url) if next_page is not None else None
            if url is not None and pages >= MAX_PAGES:
                raise MetadataError(f"GET {first}: more than {MAX_PAGES} pages; giving up")
    return total


class InstrumentLoader:
    def __init__(
        self,
        exchange: str,
        source: InstrumentSource,
        rest_base: str,
        metrics: ProducerMetrics,
        *,
        refresh_s: float,
        timeout_s: float,
    ) -> None:
        self.exchange = exchange
        self.source = source
        self.rest_base = rest_base
        self.refresh_s = refresh_s
        self.timeout_s = timeout_s
        self._m_ok = metrics.instrument_loads.labels(exchange, "ok")
        self._m_error = metrics.instrument_loads.labels(exchange, "error")
        self._m_count = metrics.instruments.labels(exchange)
        self._task: asyncio.Task[None] | None = None
        self.loads = 0

    async def load_once(self) -> int:
        """Fetch and install every URL (every page); the number of instruments installed."""
        total = await load_all(self.source, self.rest_base, min(self.timeout_s, 30.0))
        self.loads += 1
        self._m_ok.inc()
        self._m_count.set(total)
        log.info("%s: %d instruments loaded from %s", self.exchange, total, self.rest_base)
        return total

    async def start(self) -> None:
        """First complete load (retrying until ``timeout_s``), then the refresh task."""
        delay = 0.5
        try:
            async with asyncio.timeout(self.timeout_s):
                while True:
                    try:
                        await self.load_once()
                        break
                    except MetadataError as exc:
                        self._m_error.inc()
                        log.warning("%s: instrument metadata: %s; retrying", self.exchange, exc)
                        await asyncio.sleep(random.uniform(0.0, delay))
                        delay = min(delay * 2, RETRY_MAX_S)
        except TimeoutError:
            raise MetadataError(
                f"{self.exchange}: no instrument metadata from {self.rest_base} within "
                f"{self.timeout_s:.0f}s (exchanges.{self.exchange}.rest_url)"
            ) from None
        self._task = asyncio.create_task(self._refresh())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_s)
            try:
                await self.load_once()
            except MetadataError as exc:
                self._m_error.inc()
                log.warning("%s: instrument refresh failed, keeping the previous list: %s",
                            self.exchange, exc)  # fmt: skip
