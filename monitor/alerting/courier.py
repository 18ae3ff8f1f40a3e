"""Delivery of alerts to one webhook sink over HTTP, with retries (used by the alert dispatcher,
``monitor.alerting.dispatcher``, one ``SinkCourier`` per configured sink).

``SinkCourier.deliver`` posts one alert, its body built by ``monitor.alerting.payloads`` and signed
by ``monitor.alerting.signing`` (``monitor.alerting.http_policy.build_request``), and retries it
until the receiver answers 2xx or a final verdict (``http_policy.judge``): a 4xx other than
408/429, or the sink's ``retry_budget_s`` / ``max_attempts`` spent. Between attempts it waits an
exponential backoff with jitter (``http_policy.backoff_s``), or the receiver's ``Retry-After``
(seconds or HTTP-date) or Discord's JSON ``retry_after`` on a 429. At most ``concurrency``
requests per sink are in flight. It never raises for HTTP: the returned ``Delivery`` says how it
ended (the dispatcher dead-letters failures). Error texts are scrubbed of the sink's secrets.
Counts ok / retry / dead_letter deliveries, latencies and requests in flight on
``DispatcherMetrics``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

import aiohttp

from monitor.alerting.http_policy import Verdict, backoff_s, build_request, judge
from monitor.alerting.secrets import Secret, scrub
from monitor.alerting.sinks import Sink, resolve_sink
from monitor.core.alertrecord import AlertEvent
from monitor.core.config import Config
from monitor.core.errors import ConfigError
from monitor.core.metrics import DispatcherMetrics

log = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 64 * 1024  # of a receiver's answer (Retry-After JSON, error text)


@dataclass(frozen=True)
class Delivery:
    """How one alert's delivery to one sink ended."""

    ok: bool
    attempts: int
    status: int | None  # the last HTTP status, None when the last attempt got no answer
    error: str  # the last failure, scrubbed of secrets ("" when ok at the first attempt)
    first_attempt_ts: float


class SinkCourier:
    """Delivers alerts to one sink: at most ``concurrency`` requests in flight, each alert retried
    until a 2xx or a final verdict (``deliver`` returns either way; it never raises for HTTP)."""

    def __init__(
        self,
        sink: Sink,
        session: aiohttp.ClientSession,
        metrics: DispatcherMetrics,
        *,
        uniform: Callable[[], float] = random.random,
    ) -> None:
        self.sink = sink
        self._session = session
        self._metrics = metrics
        self._uniform = uniform
        self._sem = asyncio.Semaphore(sink.config.concurrency)
        self._secrets: tuple[Secret, ...] = sink.secrets()
        n = sink.name
        self._m_ok = metrics.deliveries.labels(n, "ok")
        self._m_retry = metrics.deliveries.labels(n, "retry")
        self._m_dead = metrics.deliveries.labels(n, "dead_letter")
        self._m_in_flight = metrics.in_flight.labels(n)
        self._m_latency = metrics.latency.labels(n)
        self._m_dispatch = metrics.dispatch_latency.labels(n)
        self._timeout = aiohttp.ClientTimeout(total=sink.config.timeout_s)

    def scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    async def deliver(self, alert: AlertEvent, consumed_ts: float | None = None) -> Delivery:
        c = self.sink.config
        consumed = time.time() if consumed_ts is None else consumed_ts
        req = build_request(self.sink, alert)
        first = time.time()
        deadline = time.monotonic() + c.retry_budget_s
        attempt, status, error = 0, None, ""
        while True:
            attempt += 1
            status = None
            try:
                async with self._sem:
                    self._m_in_flight.inc()
                    try:
                        async with self._session.post(
                            self.sink.url.reveal(), data=req.body, headers=req.headers(time.time()),
                            timeout=self._timeout, allow_redirects=False,
                        ) as resp:  # fmt: skip
                            status = resp.status
                            body = await resp.content.read(MAX_BODY_BYTES)
                            verdict = judge(status, resp.headers, body, time.time())
                    finally:
                        self._m_in_flight.dec()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = self.scrub(f"{type(exc).__name__}: {exc}")
                verdict = Verdict(False, True, None, error)  # no answer: retried
            else:
                error = verdict.reason
            if verdict.ok:
                now = time.time()
                self._m_ok.inc()
                self._m_dispatch.observe(max(0.0, now - consumed))
                if math.isfinite(alert.received_ts):  # NaN: the producer did not say
                    self._m_latency.observe(max(0.0, now - alert.received_ts))
                if attempt > 1:
                    log.info("alert %s %s taken by sink %s after %d attempts",
                             alert.fingerprint, alert.status, c.name, attempt)  # fmt: skip
                return Delivery(True, attempt, status, "", first)
            delay = verdict.retry_after_s
            if delay is None:
                delay = backoff_s(attempt, c.backoff_initial_s, c.backoff_max_s, c.jitter,
                                  self._uniform())  # fmt: skip
            final = (
                not verdict.retriable
                or (c.max_attempts and attempt >= c.max_attempts)
                or time.monotonic() + delay > deadline
            )
            if final:
                self._m_dead.inc()
                why = "refused" if not verdict.retriable else "retry budget spent"
                log.warning("alert %s %s: sink %s gave up after %d attempt(s), %s: %s",
                            alert.fingerprint, alert.status, c.name, attempt, why, error)  # fmt: skip
                return Delivery(False, attempt, status, error, first)
            self._m_retry.inc()
            (log.warning if attempt == 1 else log.debug)(
                "alert %s %s: sink %s attempt %d failed (%s); retrying in %.2fs",
                alert.fingerprint, alert.status, c.name, attempt, error, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)


def open_session() -> aiohttp.ClientSession:
    """One HTTP client session for the sinks (each limits itself; the pool does not)."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    return aiohttp.ClientSession(connector=connector, raise_for_status=False)


def resolve_sinks(cfg: Config, environ: Mapping[str, str] | None = None) -> list[Sink]:
    """The configured sinks with their secrets read (ConfigError when one is missing)."""
    if not cfg.alerts.sinks:
        raise ConfigError("alerts.sinks: no sink configured; add an [[alerts.sinks]] table")
    env = os.environ if environ is None else environ
    return [resolve_sink(s, env) for s in cfg.alerts.sinks]
