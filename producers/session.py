"""The websocket session: drives one ``ConnectionPlan`` with a sans-I/O venue adapter.

Per connection: open the socket, send the plan's subscribe frames (spaced ``SEND_INTERVAL_S`` apart,
under Binance's 10 incoming messages/s), then read frames -> ``adapter.parse`` -> drop duplicates ->
``sink``; send the adapter's replies and, every ``ping_interval_s``, its client heartbeat.

The sink is the publisher (a ``RowSink``): the adapter appends each frame's rows straight into its
``ColumnStore``, whose duplicate filter drops repeats, and no event object is built. Any other
callable gets lists of event objects instead (``cascade-monitor record``, tests): the frame is
parsed on its own and its events filtered by the session's ``Deduplicator``.

Around it:

* reconnect with exponential backoff and full jitter: the n-th consecutive failure waits
  ``uniform(0, min(backoff_max_s, backoff_initial_s * 2**(n-1)))``; a connection that stayed open at
  least ``backoff_max_s`` counts as healthy and resets n. Subscriptions are re-sent on every connect.
* stale-feed watchdog: no frame for ``stale_after_s`` -> close and reconnect (``reason="stale"``).
  A socket that completes the handshake but never pushes (Binance's legacy paths) is caught here.
* rotation at ``max_connection_age_s`` (Binance closes at 24 h), make-before-break: the next socket
  is opened and subscribed while the old one still delivers, then the old one is closed; events seen
  on both are dropped by the shared ``Deduplicator``.
* metrics: frames, events{kind}, parse_errors{reason}, reconnects{reason}, duplicates{reason} and the
  ws_connected{connection} gauge (1 while open and subscribed).

The watchdog counts every frame, control frames included: a Bybit socket answering its pings is
alive even when its symbols are quiet; a Binance socket that says nothing is not.

``start()`` creates the one owned task. ``stop()`` closes gracefully (the close handshake, reading
on until the venue's close frame, so frames already sent are not lost), then cancels the task and
everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from typing import Final, Protocol, runtime_checkable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event, Liquidation, MarketContext
from producers.base import ConnectionPlan, Parsed, VenueAdapter
from producers.columns import DEDUP_CAPACITY, ColumnStore, Deduplicator
from producers.ratelog import RateLimitedLog

__all__ = ["DEDUP_CAPACITY", "Deduplicator", "RateLimitedLog", "RowSink", "Session", "Sink", "Tap"]

log = logging.getLogger(__name__)

SEND_INTERVAL_S: Final = 0.12  # between subscribe frames: ~8 messages/s, under Binance's 10/s
OPEN_TIMEOUT_S: Final = 10.0
CLOSE_TIMEOUT_S: Final = 2.0
MAX_FRAME_BYTES: Final = 8 * 2**20
# The ParseError reason adapters raise for a refused subscription: logged every time, not sampled.
SUBSCRIBE_FAILED: Final = "subscribe_failed"
# The ParseError reason of a venue's "this server goes down soon" notice (OKX 64008): the session
# switches to a new socket before the old one is cut.
UPGRADE_NOTICE: Final = "upgrade_notice"
PLANNED: Final = frozenset({"rotate", "upgrade"})  # reconnects that need no backoff
_NO_REPLIES: Final[list[str]] = []  # never appended to

Sink = Callable[[list[Event]], object]
Tap = Callable[[str, str | bytes, int], object]  # (connection name, raw frame, received_ns)
Reject = Callable[[str, str, str | bytes, int], object]  # (connection, reason, frame, received_ns)


@runtime_checkable
class RowSink(Protocol):
    """Where a session's adapter appends rows (the publisher): its store, and the count of rows
    the store refused in a frame (buffer full, or stopped)."""

    columns: ColumnStore

    def refused(self, n: int) -> None: ...


class Session:
    """One websocket connection plan, kept connected and subscribed until ``stop()``."""

    def __init__(
        self,
        exchange: str,
        plan: ConnectionPlan,
        adapter: VenueAdapter,
        cfg: ExchangeConfig,
        sink: Sink | RowSink,
        metrics: ProducerMetrics,
        dedup: Deduplicator | None = None,
        *,
        rng: random.Random | None = None,
        send_interval_s: float = SEND_INTERVAL_S,
        tap: Tap | None = None,
        on_reject: Reject | None = None,
    ) -> None:
        self.exchange = exchange
        self._tap = tap  # sees every raw frame before parsing (``cascade-monitor record``)
        self._on_reject = on_reject  # frames refused whole or in part (the dead-letter topic)
        self.plan = plan
        self._adapter = adapter
        self._cfg = cfg
        self._sink = sink
        self._rows: RowSink | None = sink if isinstance(sink, RowSink) else None
        self._store = None if self._rows is None else self._rows.columns
        self._dedup = dedup if dedup is not None else Deduplicator()
        self._rng = rng if rng is not None else random.Random()
        self._send_interval_s = send_interval_s
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._last_frame = 0.0
        self._close_reason: str | None = None
        self._serving: ClientConnection | None = None  # the socket being read
        self._stopping = False
        self._ahead: ClientConnection | None = None  # opened for rotation, not yet serving
        self._rlog = RateLimitedLog(log)
        self.connects = 0  # successful opens (subscribed), for tests and diagnostics
        self.served = 0  # connections that started serving frames
        self._upgrade: asyncio.Task[None] | None = None
        self._served_changed = asyncio.Event()
        m = metrics
        x = exchange
        self._m_frames = m.frames.labels(x)
        self._m_liq = m.events.labels(x, "liquidation")
        self._m_trd = m.events.labels(x, "trade")
        self._m_ctx = m.events.labels(x, "context")
        self._m_dup = m.duplicates.labels(x, "producer_memory")
        self._m_duplicates = m.duplicates
        self._m_gaps = m.sequence_gaps.labels(x)
        self._m_connected = m.connected.labels(x, plan.name)
        self._m_parse_errors = m.parse_errors
        self._m_reconnects = m.reconnects

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def running(self) -> bool:
        """The session's task is alive (it reconnects by itself; it ends only on stop or a bug)."""
        return self._task is not None and not self._task.done()

    async def wait_served(self, n: int, timeout_s: float | None) -> None:
        """Return once ``n`` connections in all have been open and subscribed (reconnects
        included); TimeoutError after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            while self.served < n:
                await self._served_changed.wait()

    async def wait_connected(self, timeout_s: float | None) -> None:
        """Return once open and subscribed; TimeoutError after ``timeout_s`` (None: no limit)."""
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(
                self._run(), name=f"ws-{self.exchange}-{self.plan.name}"
            )

    async def stop(self, drain_timeout_s: float = CLOSE_TIMEOUT_S + 1.0) -> None:
        """Close gracefully: send the close frame and keep reading until the venue's close, so
        frames the venue sent before it still reach the sink (bounded by ``drain_timeout_s``);
        then cancel whatever is left. Idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        ws = self._serving
        closer = None
        if ws is not None and not task.done():
            self._close_reason = "stop"
            closer = asyncio.create_task(ws.close())
            await asyncio.wait({task}, timeout=drain_timeout_s)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._upgrade is not None:
            self._upgrade.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upgrade
        if closer is not None:
            closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closer

    # ---- connection loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0  # consecutive connections that failed or did not stay healthy
        reason: str | None = None  # why the previous connection ended; None before the first
        try:
            while True:
                ws, self._ahead = self._ahead, None
                if reason is not None:
                    self._m_reconnects.labels(self.exchange, reason).inc()
                if ws is None:
                    if reason is not None and reason not in PLANNED:
                        await asyncio.sleep(self._backoff(failures))
                    try:
                        ws = await self._open()
                    except Exception as exc:  # refused, handshake, timeout, HTTP 4xx/5xx ...
                        failures += 1
                        reason = "error"
                        self._rlog(logging.WARNING, "open", "%s %s: connect to %s failed: %r",
                                   self.exchange, self.plan.name, self.plan.url, exc)  # fmt: skip
                        continue
                opened = time.monotonic()
                try:
                    reason = await self._serve(ws)
                except Exception:  # a bug must not end the session: log, reconnect
                    log.exception("%s %s: session error", self.exchange, self.plan.name)
                    reason = "error"
                finally:
                    self._set_connected(False)
                    await ws.close()
                if self._stopping:
                    return
                if time.monotonic() - opened >= self._cfg.backoff_max_s:
                    failures = 0
                if reason not in PLANNED:
                    failures += 1
                log.info("%s %s: connection ended (%s)", self.exchange, self.plan.name, reason)
        finally:
            self._set_connected(False)
            ahead, self._ahead = self._ahead, None
            if ahead is not None:
                await ahead.close()

    def _backoff(self, failures: int) -> float:
        cfg = self._cfg
        cap = min(cfg.backoff_max_s, cfg.backoff_initial_s * 2 ** max(failures - 1, 0))
        return self._rng.uniform(0.0, cap)

    async def _open(self) -> ClientConnection:
        """Connect and send the subscribe frames."""
        ws = await connect(
            self.plan.url,
            open_timeout=OPEN_TIMEOUT_S,
            close_timeout=CLOSE_TIMEOUT_S,
            ping_interval=self._cfg.ping_interval_s,
            ping_timeout=self._cfg.ping_interval_s,
            max_size=MAX_FRAME_BYTES,
            additional_headers=self.plan.headers or None,
        )
        restamp = getattr(self._adapter, "restamp", None)  # requests carrying the send time (Gate)
        try:
            for i, frame in enumerate(self.plan.subscribe):
                if i:
                    await asyncio.sleep(self._send_interval_s)
                await ws.send(restamp(frame) if restamp is not None else frame)
        except BaseException:
            await ws.close()
            raise
        self.connects += 1
        return ws

    def _set_connected(self, up: bool) -> None:
        if up:
            self.served += 1
            self._served_changed.set()
            self._served_changed = asyncio.Event()
            self._connected.set()
        else:
            self._connected.clear()
        self._m_connected.set(1 if up else 0)

    async def _serve(self, ws: ClientConnection) -> str:
        """Read until the socket ends; return why (closed, stale, rotate)."""
        self._close_reason = None
        self._last_frame = time.monotonic()
        self._set_connected(True)
        self._serving = ws
        helpers = [
            asyncio.create_task(self._watchdog(ws)),
            asyncio.create_task(self._rotate(ws)),
        ]
        if self._adapter.heartbeat() is not None:
            helpers.append(asyncio.create_task(self._heartbeat(ws)))
        try:
            with contextlib.suppress(ConnectionClosed):
                handle = self._frame
                async for frame in ws:
                    self._last_frame = time.monotonic()
                    replies = handle(ws, frame)  # synchronous: no coroutine per frame
                    if replies:
                        for reply in replies:
                            await ws.send(reply)
        finally:
            self._serving = None
            for t in helpers:
                t.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        return self._close_reason or "closed"

    async def _watchdog(self, ws: ClientConnection) -> None:
        stale_s = self._cfg.stale_after_s
        while True:
            idle = time.monotonic() - self._last_frame
            if idle >= stale_s:
                break
            await asyncio.sleep(stale_s - idle)
        self._close_reason = "stale"
        log.warning("%s %s: no frame for %.1f s, reconnecting",
                    self.exchange, self.plan.name, stale_s)  # fmt: skip
        await ws.close()

    async def _rotate(self, ws: ClientConnection) -> None:
        await asyncio.sleep(self._cfg.max_connection_age_s)
        log.info("%s %s: rotating after %.0f s", self.exchange, self.plan.name,
                 self._cfg.max_connection_age_s)  # fmt: skip
        await self._switch(ws, "rotate")

    async def _switch(self, ws: ClientConnection, reason: str) -> None:
        """Make before break: open and subscribe the next socket, then close this one."""
        try:
            self._ahead = await self._open()
        except Exception as exc:
            log.warning("%s %s: %s connect failed (%r); reconnecting after close",
                        self.exchange, self.plan.name, reason, exc)  # fmt: skip
        self._close_reason = reason
        await ws.close()

    async def _heartbeat(self, ws: ClientConnection) -> None:
        """The adapter's ping every interval, built at each beat (Gate's carries the time)."""
        interval = self._cfg.ping_interval_s
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval)
                frame = self._adapter.heartbeat()
                if frame is not None:
                    await ws.send(frame)

    async def _handle(self, ws: ClientConnection, frame: str | bytes) -> None:
        """One frame, its replies sent."""
        for reply in self._frame(ws, frame):
            await ws.send(reply)

    def _frame(self, ws: ClientConnection, frame: str | bytes) -> list[str]:
        """Parse and count one frame; the frames to send back."""
        self._m_frames.inc()
        received_ns = time.time_ns()
        if self._tap is not None:
            self._tap(self.plan.name, frame, received_ns)
        try:
            store = self._store
            if store is None:  # events as objects (a callable sink)
                parsed = self._adapter.parse(frame, received_ns)
            else:
                parsed = self._adapter.parse(frame, received_ns, store)
        except ParseError as exc:
            self._m_parse_errors.labels(self.exchange, exc.reason).inc()
            if self._on_reject is not None:
                self._on_reject(self.plan.name, exc.reason, frame, received_ns)
            if exc.reason == SUBSCRIBE_FAILED:  # rare and important: every one is logged
                log.warning("%s %s: subscription refused: %s", self.exchange, self.plan.name, exc)
            elif exc.reason == UPGRADE_NOTICE:
                if self._upgrade is None or self._upgrade.done():
                    log.warning("%s %s: venue announced a disconnect; switching sockets",
                                self.exchange, self.plan.name)  # fmt: skip
                    self._upgrade = asyncio.create_task(self._switch(ws, "upgrade"))
            else:
                self._rlog(logging.INFO, exc.reason, "%s %s: frame skipped: %s",
                           self.exchange, self.plan.name, exc)  # fmt: skip
            return _NO_REPLIES
        except Exception:  # an adapter bug: count it, keep the session alive
            self._m_parse_errors.labels(self.exchange, "internal").inc()
            log.exception("%s %s: adapter failed on a frame", self.exchange, self.plan.name)
            return _NO_REPLIES
        if parsed.rows is self._store and self._rows is not None:
            self._rows_added(parsed, self._rows)
        else:  # events as objects: a standalone parse, or an adapter that builds them
            self._events_added(parsed.events)
        if parsed.errors:
            for reason in parsed.errors:
                self._m_parse_errors.labels(self.exchange, reason).inc()
            if self._on_reject is not None:
                self._on_reject(self.plan.name, parsed.errors[0], frame, received_ns)
            self._rlog(logging.INFO, "items", "%s %s: skipped items: %s",
                       self.exchange, self.plan.name, parsed.errors)  # fmt: skip
        for reason in parsed.replayed:
            self._m_duplicates.labels(self.exchange, reason).inc()
        if parsed.gaps:
            self._m_gaps.inc(parsed.gaps)
            self._rlog(logging.WARNING, "gap", "%s %s: %d message(s) missing in the sequence",
                       self.exchange, self.plan.name, parsed.gaps)  # fmt: skip
        return parsed.replies

    def _rows_added(self, parsed: Parsed, sink: RowSink) -> None:
        """Count what the frame appended to the publisher's store (read before the next frame)."""
        n_liq, n_trd, n_ctx, n_dup, n_refused = parsed.counts()
        if n_trd:
            self._m_trd.inc(n_trd)
        if n_liq:
            self._m_liq.inc(n_liq)
        if n_ctx:
            self._m_ctx.inc(n_ctx)
        if n_dup:
            self._m_dup.inc(n_dup)
        if n_refused:
            sink.refused(n_refused)

    def _events_added(self, events: list[Event]) -> None:
        """Count event objects, drop the repeats, hand the rest to the sink."""
        if not events:
            return
        n_liq = n_ctx = 0
        for e in events:
            if type(e) is Liquidation:
                n_liq += 1
            elif type(e) is MarketContext:
                n_ctx += 1
        if n_liq:
            self._m_liq.inc(n_liq)
        if n_ctx:
            self._m_ctx.inc(n_ctx)
        if len(events) > n_liq + n_ctx:
            self._m_trd.inc(len(events) - n_liq - n_ctx)
        fresh, dup_liq, dup_trd = self._dedup.fresh(events)
        if dup_liq or dup_trd:
            self._m_dup.inc(dup_liq + dup_trd)
        if not fresh:
            return
        if self._rows is not None:
            refused = self._rows.columns.add_events(fresh)[1]
            if refused:
                self._rows.refused(refused)
        else:
            self._sink(fresh)  # type: ignore[operator]
