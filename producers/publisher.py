"""Publishing normalized events to Kafka: per-symbol records, in order, never dropped silently.

The publisher owns the exchange's ``ColumnStore`` (``producers.columns``): the sessions' adapters
append each frame's rows straight into it, into the columns of the canonical symbol's next record
(at most ``max_batch_events`` rows), and ``add(events)`` appends event objects the same way (REST
polls, tools). Neither blocks the websocket reader. Rows beyond ``max_buffered_events`` are refused
(counted as ``events_dropped{reason="buffer_full"}`` and logged; refused rows were never accepted).
A sender task seals the oldest record of each symbol, encodes it (``Columns.encode``: the columns
as they are, liquidation ids hashed here) and sends it keyed by the canonical symbol (so a
symbol's records share a partition) with an idempotent ``acks="all"`` aiokafka producer.

Ordering: at most one record per symbol is in flight. It stays first in its symbol's queue until
Kafka acknowledges it; meanwhile the symbol's next rows fill the records behind it. A failed
delivery is counted (``kafka_send_errors``), backed off (exponential, full jitter) and the same
record sent again (split in two if it was too large), so a retry can never overtake or lose
anything. ``flush()`` returns once every accepted row is acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError

from monitor.core.codec import Columns
from monitor.core.config import Config
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event
from producers.columns import ColumnStore
from producers.ratelog import RateLimitedLog

log = logging.getLogger(__name__)

RETRY_INITIAL_S: Final = 0.1
RETRY_MAX_S: Final = 5.0
MAX_KAFKA_BATCH_BYTES: Final = 512 * 1024  # aiokafka per-partition batch; records are ~50-100 kB
MAX_REQUEST_BYTES: Final = 4 * 2**20


class Publisher:
    """Buffers rows per symbol (``columns``, also the exchange's duplicate filter for the rows
    the sessions append) and publishes them to ``cfg.topic(exchange)``; a
    ``producers.session.RowSink``."""

    def __init__(
        self,
        cfg: Config,
        exchange: str,
        metrics: ProducerMetrics,
        *,
        producer: Any = None,  # an AIOKafkaProducer-like object (tests); default: built in start()
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = cfg
        self.exchange = exchange
        self.topic = cfg.topic(exchange)
        self._max_batch = cfg.kafka.max_batch_events
        self._max_buffered = cfg.kafka.max_buffered_events
        self._producer: Any = producer
        self._rng = rng if rng is not None else random.Random()
        self.columns = ColumnStore(exchange, max_batch=self._max_batch,
                                   max_buffered=self._max_buffered, on_record=self._on_record)  # fmt: skip
        self._keys: dict[str, bytes] = {}
        self._ready: dict[str, None] = {}  # symbols with unsent rows and nothing in flight
        self._inflight: dict[str, int] = {}  # symbol -> rows of its head record (sending/backoff)
        self._limit: dict[str, int] = {}  # symbol -> smaller record size after a too-large record
        self._failures: dict[str, int] = {}  # symbol -> consecutive delivery failures
        self._retries: dict[str, asyncio.TimerHandle] = {}
        self.published_events = 0
        self.published_records = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._acked = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self._rlog = RateLimitedLog(log)
        x = exchange
        self._m_dropped = metrics.events_dropped.labels(x, "buffer_full")
        self._m_dropped_stopped = metrics.events_dropped.labels(x, "stopped")
        self._m_send_errors = metrics.kafka_send_errors.labels(x)
        self._m_events = metrics.events_published.labels(x)
        self._m_records = metrics.records_published.labels(x)
        self._m_buffered = metrics.buffered.labels(x)
        self._m_abandoned = metrics.events_abandoned.labels(x)
        # called with each acknowledged record and the time of its acknowledgement (ns since the
        # epoch, the clock of ``received_ns``): latency measurements (benchmarks/bench_crash_load)
        self.on_acked: Callable[[Columns, int], object] | None = None

    @property
    def running(self) -> bool:
        """The send loop is alive."""
        return self._task is not None and not self._task.done()

    @property
    def buffered(self) -> int:
        """Rows accepted and not yet acknowledged."""
        return self.columns.held

    @property
    def kafka_producer(self) -> Any:
        """The started aiokafka producer (shared by the dead-letter sink)."""
        return self._producer

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        k = self._cfg.kafka
        if self._producer is None:
            self._producer = AIOKafkaProducer(
                bootstrap_servers=self._cfg.bootstrap_servers,
                client_id=f"{k.client_id}-{self.exchange}",
                acks="all",
                enable_idempotence=True,
                linger_ms=k.linger_ms,
                request_timeout_ms=k.request_timeout_ms,
                max_batch_size=MAX_KAFKA_BATCH_BYTES,
                max_request_size=MAX_REQUEST_BYTES,
            )
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # releases the client's connections
            raise
        self._started = True
        self._task = asyncio.create_task(self._send_loop(), name=f"publish-{self.exchange}")

    async def wait_published(self, n: int, timeout_s: float | None = None) -> None:
        """Wait until at least ``n`` events are acknowledged (TimeoutError after ``timeout_s``)."""
        async with asyncio.timeout(timeout_s):
            while self.published_events < n:
                self._acked.clear()
                await self._acked.wait()

    async def flush(self, timeout_s: float | None = None) -> None:
        """Wait until every accepted event is acknowledged (TimeoutError after ``timeout_s``)."""
        async with asyncio.timeout(timeout_s):
            await self._drained.wait()

    async def stop(self, flush_timeout_s: float | None = None) -> None:
        """Refuse new events, flush (bounded by ``flush_timeout_s``), stop the producer.

        Events still unacknowledged when the timeout expires are counted as
        ``events_abandoned`` and logged. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.columns.close()  # refuse new rows from here on (counted as stopped)
        try:
            if self._started:
                try:
                    await self.flush(flush_timeout_s)
                except TimeoutError:
                    self._m_abandoned.inc(self.buffered)
                    log.error("%s: Kafka did not acknowledge %d events in %.1f s; abandoned",
                              self.exchange, self.buffered, flush_timeout_s)  # fmt: skip
        finally:
            for h in self._retries.values():
                h.cancel()
            self._retries.clear()
            task, self._task = self._task, None
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if self._started:
                await self._producer.stop()

    # ---- accepting ---------------------------------------------------------------------------

    def add(self, events: Iterable[Event]) -> int:
        """Accept event objects (in order) while there is room; return how many were accepted.
        (The sessions' rows arrive through ``columns`` instead.)"""
        accepted, refused = self.columns.add_events(events)
        if accepted:
            self._m_buffered.set(self.buffered)
        if refused:
            self.refused(refused)
        return accepted

    def refused(self, n: int) -> None:
        """Count ``n`` rows the store refused (buffer full, or the publisher stopped)."""
        if self.columns.closed:
            self._m_dropped_stopped.inc(n)
            self._rlog(logging.WARNING, "stopped", "%s: publisher stopped, %d events refused",
                       self.exchange, n)  # fmt: skip
            return
        self._m_dropped.inc(n)
        self._rlog(logging.WARNING, "buffer_full", "%s: buffer full (%d events), %d events refused",
                   self.exchange, self.buffered, n)  # fmt: skip

    def _on_record(self, symbol: str) -> None:
        """The store started a record for ``symbol``: send it when nothing of it is in flight."""
        if symbol not in self._inflight:
            self._ready[symbol] = None
        self._drained.clear()
        self._wake.set()

    # ---- sending -----------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._m_buffered.set(self.buffered)
            while self._ready:
                sym = next(iter(self._ready))
                del self._ready[sym]
                await self._send_head(sym)

    async def _send_head(self, sym: str) -> None:
        store = self.columns
        head = store.seal(sym)
        if head is None:
            return
        limit = self._limit.get(sym)
        if limit is not None and head.n > limit:
            store.resize_head(sym, limit)
            head = store.records[sym][0]
        n = head.n
        self._inflight[sym] = n
        key = self._keys.get(sym)
        if key is None:
            key = self._keys[sym] = sym.encode()
        try:
            value = head.encode()
            fut = await self._producer.send(self.topic, value, key=key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # KafkaError (timeout, too large, ...) or anything unexpected
            self._failed(sym, n, exc)
            return
        fut.add_done_callback(partial(self._delivered, sym, n))

    def _delivered(self, sym: str, n: int, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self._failed(sym, n, asyncio.CancelledError())
            return
        exc = fut.exception()
        if exc is not None:
            self._failed(sym, n, exc)
            return
        if self.on_acked is not None:
            self.on_acked(self.columns.records[sym][0], time.time_ns())
        following = self.columns.done(sym)
        del self._inflight[sym]
        self._failures.pop(sym, None)
        self.published_events += n
        self.published_records += 1
        self._m_events.inc(n)
        self._m_records.inc()
        self._m_buffered.set(self.buffered)
        self._acked.set()
        if following is not None:
            self._ready[sym] = None
            self._wake.set()
        elif not self.columns.records:
            self._m_buffered.set(0)
            self._drained.set()

    def _failed(self, sym: str, n: int, exc: BaseException) -> None:
        """Count, back off, then send the same head record again (smaller if it was too large)."""
        self._m_send_errors.inc()
        k = self._failures[sym] = self._failures.get(sym, 0) + 1
        if isinstance(exc, MessageSizeTooLargeError) and n > 1:
            self._limit[sym] = max(1, n // 2)
        delay = self._rng.uniform(0.0, min(RETRY_MAX_S, RETRY_INITIAL_S * 2 ** (k - 1)))
        self._rlog(logging.WARNING, "send", "%s: delivery of %d %s events failed (%r); retry %d in %.2f s",
                   self.exchange, n, sym, exc, k, delay)  # fmt: skip
        if self._closed and self._task is None:
            return  # stopping: nothing will send it again
        self._retries[sym] = asyncio.get_running_loop().call_later(delay, self._retry, sym)

    def _retry(self, sym: str) -> None:
        self._retries.pop(sym, None)
        self._inflight.pop(sym, None)
        self._ready[sym] = None
        self._wake.set()
