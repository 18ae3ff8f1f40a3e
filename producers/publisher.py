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

Producer reset: after a broker outage the idempotent producer's sequence state can be broken for
good (aiokafka keeps its producer id and sequence numbers, the broker answers every delivery with
``OutOfOrderSequenceNumber`` or ``UnknownProducerId``: aio-libs/aiokafka#1017), so resending on the
same producer would fail forever. The first such failure (once per incident: the failures that
arrive with it or while it is handled join it) makes the send loop replace the producer, as the
Java client does: the broken one is stopped (bounded: ``PRODUCER_STOP_S`` for its flush, then its
sender task is cancelled), deliveries it still resolves meanwhile count as usual, every head record
it has not acknowledged by then is taken back (its later outcome is ignored), and a new producer
(new producer id, sequences from 0) sends those heads again, each still first in its symbol's
queue, so per-symbol order holds. A head the old producer delivered without telling us before it
was cut off is sent twice (at least once, never lost). Counted in ``kafka_producer_resets`` and
logged. Replacing needs a factory: the default builds an ``AIOKafkaProducer`` from the
configuration; with an injected ``producer`` and no ``producer_factory`` (tests) those errors are
retried on the same producer like any other. Others sharing the producer (the dead-letter sink)
hold ``kafka_producer``, a handle that always calls the current one.
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
from aiokafka.errors import MessageSizeTooLargeError, OutOfOrderSequenceNumber, UnknownProducerId

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
# the broker lost or refuses the producer's id or sequence: only a new producer can send again
RESET_ERRORS: Final = (OutOfOrderSequenceNumber, UnknownProducerId)
PRODUCER_STOP_S: Final = 5.0  # a stopping producer's flush, then as long for its sender to end


class SharedProducer:
    """The publisher's current Kafka producer for whoever else sends with it (the dead-letter
    sink): every attribute is looked up on the producer in use at that moment, so a producer
    reset reaches them without their knowing."""

    def __init__(self, current: Callable[[], Any]) -> None:
        self._current = current

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current(), name)


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
        producer_factory: Callable[[], Any] | None = None,  # builds producers (start and resets)
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = cfg
        self.exchange = exchange
        self.topic = cfg.topic(exchange)
        self._max_batch = cfg.kafka.max_batch_events
        self._max_buffered = cfg.kafka.max_buffered_events
        self._producer: Any = producer
        self._factory = producer_factory
        if producer_factory is None and producer is None:
            self._factory = self._new_producer
        self._shared = SharedProducer(lambda: self._producer)
        self._gen = 0  # producers replaced so far (see _replace_producer)
        self._sent: dict[str, int] = {}  # symbol -> producer generation holding its head's future
        self._orphans: dict[str, None] = {}  # heads refused for a broken producer, to send again
        self._reset_cause: BaseException | None = None  # set: the send loop replaces the producer
        self._resets_in_row = 0  # resets with no acknowledgement since (backoff between them)
        self._rng = rng if rng is not None else random.Random()
        self.columns = ColumnStore(exchange, max_batch=self._max_batch,
                                   max_buffered=self._max_buffered, on_record=self._on_record,
                                   venue_view=cfg.kafka.venue_view)  # fmt: skip
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
        self._m_resets = metrics.kafka_producer_resets.labels(x)
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
        """The Kafka producer for the dead-letter sink: a ``SharedProducer`` (always the current
        one, across producer resets); None before there is a producer."""
        return None if self._producer is None else self._shared

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        if self._producer is None:
            assert self._factory is not None  # set whenever no producer was injected
            self._producer = self._factory()
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()  # releases the client's connections
            raise
        self._started = True
        self._task = asyncio.create_task(self._send_loop(), name=f"publish-{self.exchange}")

    def _new_producer(self) -> AIOKafkaProducer:
        """An idempotent ``acks="all"`` producer with the configured settings (not started)."""
        k = self._cfg.kafka
        return AIOKafkaProducer(
            bootstrap_servers=self._cfg.bootstrap_servers,
            client_id=f"{k.client_id}-{self.exchange}",
            acks="all",
            enable_idempotence=True,
            linger_ms=k.linger_ms,
            request_timeout_ms=k.request_timeout_ms,
            max_batch_size=MAX_KAFKA_BATCH_BYTES,
            max_request_size=MAX_REQUEST_BYTES,
        )

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
                await self._close_producer(self._producer)

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
            if self._reset_cause is not None:
                await self._replace_producer(self._reset_cause)
            self._m_buffered.set(self.buffered)
            while self._ready and self._reset_cause is None:
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
        gen = self._gen
        try:
            value = head.encode()
            fut = await self._producer.send(self.topic, value, key=key)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # KafkaError (timeout, too large, ...) or anything unexpected
            self._failed(sym, n, exc)
            return
        self._sent[sym] = gen
        fut.add_done_callback(partial(self._delivered, sym, n, gen))

    def _delivered(self, sym: str, n: int, gen: int, fut: asyncio.Future[Any]) -> None:
        if self._sent.get(sym) != gen:
            return  # sent by a replaced producer and taken back: the new one sends it again
        del self._sent[sym]
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
        self._resets_in_row = 0
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
        """Count, back off, then send the same head record again (smaller if it was too large);
        after an error only a new producer can overcome, send it with the new one instead."""
        self._m_send_errors.inc()
        if isinstance(exc, RESET_ERRORS) and self._factory is not None and self._task is not None:
            self._orphans[sym] = None
            if self._reset_cause is None:  # the first of an incident: the send loop resets
                self._reset_cause = exc
                self._wake.set()
            return
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

    # ---- producer reset ----------------------------------------------------------------------

    async def _replace_producer(self, cause: BaseException) -> None:
        """Stop the broken producer, start a new one, send every unacknowledged head with it
        (module docstring); the send loop sends nothing meanwhile."""
        assert self._factory is not None
        self._m_resets.inc()
        if self._resets_in_row:  # the last new producer was refused too: back off
            k = self._resets_in_row
            await asyncio.sleep(self._rng.uniform(0.0, min(RETRY_MAX_S, RETRY_INITIAL_S * 2**k)))
        self._resets_in_row += 1
        await self._close_producer(self._producer)
        self._gen += 1  # from here on the old producer's outcomes are ignored
        for sym in [s for s, g in self._sent.items() if g != self._gen]:
            del self._sent[sym]
            self._orphans[sym] = None
        log.warning("%s: Kafka refused the producer's sequence (%r); new producer, %d records "
                    "sent again", self.exchange, cause, len(self._orphans))  # fmt: skip
        attempt = 0
        while True:
            new = self._factory()
            try:
                await new.start()
                break
            except asyncio.CancelledError:
                await self._close_producer(new)
                raise
            except Exception as exc:  # the broker is away again: try again after a while
                await self._close_producer(new)
                attempt += 1
                delay = self._rng.uniform(0.0, min(RETRY_MAX_S, RETRY_INITIAL_S * 2**attempt))
                self._rlog(logging.WARNING, "reset", "%s: new producer did not start (%r); "
                           "retry in %.2f s", self.exchange, exc, delay)  # fmt: skip
                await asyncio.sleep(delay)
        self._producer = new
        self._reset_cause = None
        orphans, self._orphans = self._orphans, {}
        for sym in orphans:
            self._retry(sym)

    async def _close_producer(self, producer: Any) -> None:
        """Stop ``producer`` without hanging on a broker that never answers: aiokafka's ``stop``
        waits until every batch is resolved or its sender task has ended, so after
        ``PRODUCER_STOP_S`` the sender is cancelled, and ``stop`` is given up after as long."""
        stopping = asyncio.ensure_future(producer.stop())
        try:
            for _ in range(2):
                await asyncio.wait({stopping}, timeout=PRODUCER_STOP_S)
                if stopping.done():
                    break
                # aiokafka 0.12-0.14: AIOKafkaProducer._sender.sender_task; absent elsewhere
                task = getattr(getattr(producer, "_sender", None), "sender_task", None)
                if isinstance(task, asyncio.Task):
                    task.cancel()
        finally:
            stopped = stopping.done()
            if not stopped:
                stopping.cancel()
        if not stopped:
            log.error("%s: Kafka producer did not stop in %.1f s; left behind", self.exchange,
                      2 * PRODUCER_STOP_S)  # fmt: skip
        elif not stopping.cancelled() and stopping.exception() is not None:
            log.warning("%s: stopping the Kafka producer failed: %r", self.exchange,
                        stopping.exception())  # fmt: skip
