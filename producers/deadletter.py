"""The optional dead-letter topic: frames a parser refused, raw, with why (``kafka.dead_letter``).

Every refused frame (or frame with refused items) is already counted in
``cascade_parse_errors_total{reason}``; with dead-lettering on, the raw frame also goes to
``<prefix>.deadletter.<exchange>`` (key: connection name; headers: ``reason``, ``received_ns``)
so it can be inspected or replayed after a fix. Best effort by design: sends share the publisher's
Kafka producer, at most ``MAX_PENDING`` are in flight (a flood of garbage cannot grow memory), and
a refused or failed send is counted, never retried ahead of market data.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from monitor.core.metrics import ProducerMetrics

log = logging.getLogger(__name__)

MAX_PENDING: Final = 1000


class DeadLetters:
    def __init__(self, topic: str, exchange: str, metrics: ProducerMetrics) -> None:
        self.topic = topic
        self.exchange = exchange
        self._producer: Any = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._m_sent = metrics.dead_letters
        self._m_dropped = metrics.dead_letter_errors.labels(exchange, "overflow")
        self._m_failed = metrics.dead_letter_errors.labels(exchange, "send_failed")

    def attach(self, producer: Any) -> None:
        """The started AIOKafkaProducer to send with (the publisher's)."""
        self._producer = producer

    def __call__(self, conn: str, reason: str, frame: str | bytes, received_ns: int) -> None:
        if self._producer is None or len(self._pending) >= MAX_PENDING:
            self._m_dropped.inc()
            return
        value = frame.encode() if isinstance(frame, str) else frame
        headers = [("reason", reason.encode()), ("received_ns", str(received_ns).encode())]
        fut = asyncio.ensure_future(
            self._producer.send_and_wait(self.topic, value, key=conn.encode(), headers=headers)
        )
        self._pending.add(fut)
        fut.add_done_callback(lambda f: self._done(f, reason))

    def _done(self, fut: asyncio.Future[Any], reason: str) -> None:
        self._pending.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            self._m_failed.inc()
            log.warning("%s: dead letter not written: %r", self.exchange,
                        None if fut.cancelled() else fut.exception())  # fmt: skip
        else:
            self._m_sent.labels(self.exchange, reason).inc()

    async def flush(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
