"""The exchange simulator: local websocket servers that play a scenario like the real venues.

One server per venue of the scenario, on 127.0.0.1 and an ephemeral port. The protocol (paths,
requests, framing, sampling, batching) lives in each venue's pure module (``venues.SPECS``: all
ten); this module owns the sockets, the clock and the ledger.

Clock: ``play()`` pins scenario second 0 to now; scenario second ``k`` happens at
``start + k / speed``. Payload timestamps are the wall clock of that scheduled moment, like a live
venue's engine time, and the venues' sampling and batching windows are wall-clock windows (1000 ms
Binance forceOrder and OKX liquidation-orders, 500 ms Bybit allLiquidation, 100 ms Bybit
publicTrade, ...), so a faster playback compresses more liquidations into each window, exactly as a
faster market would. A venue's playback steps from one scheduled moment (an event or a window's
deadline) to the next, and stamps each with its schedule, not with the time its task got to run:
on a loaded machine frames leave late, as from a congested venue, but what they say does not
depend on the load.

Per connection: a writer task drains an outgoing queue (a slow client never blocks playback) and
records each frame it wrote in the ledger (market items, once per venue-unique key) and in the
optional recording. The venue's transport rules come from its spec: protocol pings
(``VenueSpec.pings``: Binance every 180 s, the connection aborted when a ping is unanswered for
600 s) and the idle close (``VenueSpec.idle_timeout_s``: Bybit after 600 s without a client
message); ``ping_interval_s`` and ``idle_timeout_s`` override them for every venue that has them
(short values for tests).

Fault injection: ``drop_connections`` aborts the TCP connections (no close frame: the client sees
1006). The ledger keeps exactly what left the process before the abort: the connections' writers
stop taking frames, a send under way completes, and the bytes still in the process's write buffer
are flushed before the abort (an item written to an aborted transport is discarded by asyncio
without an error, so the ledger would count it sent); frames queued after that are lost, as in
flight on a real drop, and are not in the ledger. ``stall`` turns a venue into a silent dead socket: connections are accepted and kept, but
nothing is read or sent (no data, no replies, no pings, no pongs) until the stall ends. Market data
of the stalled period is lost, as it would be, and is not in the ledger. ``fault`` mutes channels
(liquidations stop, trades go on) or garbles every market frame (``monitor.simulator.faults``)
until it is set back to ``faults.NONE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from monitor.simulator import faults
from monitor.simulator.events import Scenario, SimEvent
from monitor.simulator.ledger import Ledger, SentLiquidation
from monitor.simulator.recorder import FrameRecorder
from monitor.simulator.venues import SPECS
from monitor.simulator.wire import Outgoing, Pings, Session, TickingSession, VenueSpec

CLOSE_TIMEOUT_S: Final = 2.0
# drop_connections: the longest it waits for a send under way and the write buffer to leave the
# process (a client that stopped reading never drains it; it is dropped anyway)
DROP_FLUSH_TIMEOUT_S: Final = 10.0


class _Frame:
    __slots__ = ("data", "out")

    def __init__(self, data: bytes, out: Outgoing | None) -> None:
        self.data = data
        self.out = out  # None: a control reply, not market data


class _Client:
    def __init__(self, conn: ServerConnection, session: Session, now: float) -> None:
        self.conn = conn
        self.session = session
        self.queue: asyncio.Queue[_Frame] = asyncio.Queue()
        self.closed = asyncio.Event()
        self.last_rx = now
        self.idle = asyncio.Event()  # the writer is not inside a send
        self.idle.set()
        self.dropping = False  # drop_connections: the writer sends nothing more


class _Venue:
    def __init__(
        self, spec: VenueSpec, scenario: Scenario, pings: Pings | None, idle_timeout_s: float | None
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self.pings = pings
        self.idle_timeout_s = idle_timeout_s
        self.feed = spec.new_feed_for(scenario) if spec.new_feed_for else spec.new_feed()
        self.server: Server | None = None
        self.port = 0
        self.clients: set[_Client] = set()
        self.stalled = False
        self.fault = faults.NONE
        self.unstalled = asyncio.Event()
        self.unstalled.set()
        self.changed = asyncio.Event()  # replaced on every subscription change

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def subscribed(self) -> set[str]:
        return {s for c in self.clients for s in c.session.subscriptions}


class ExchangeSimulator:
    def __init__(
        self,
        scenario: Scenario,
        *,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        record_path: Path | None = None,
        ping_interval_s: float | None = None,
        idle_timeout_s: float | None = None,
    ) -> None:
        for name, value in (("speed", speed), ("ping_interval_s", ping_interval_s),
                            ("idle_timeout_s", idle_timeout_s)):  # fmt: skip
            if value is not None and not value > 0:
                raise ValueError(f"{name} = {value!r}: must be > 0")
        unknown = set(scenario.venues) - set(SPECS)
        if unknown:
            raise ValueError(f"no protocol for venue(s) {sorted(unknown)}")
        self.scenario = scenario
        self.speed = speed
        self.host = host
        self.ping_interval_s = ping_interval_s
        self.idle_timeout_s = idle_timeout_s
        self.ledger = Ledger()
        self._recorder = FrameRecorder(record_path) if record_path is not None else None
        self._venues: dict[str, _Venue] = {}
        self._playback: list[asyncio.Task[None]] = []
        self._clock: tuple[float, int] | None = None  # (loop time, wall ns) at play()
        self._started = False
        self._stopped = False

    # ---- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            raise RuntimeError("simulator already started")
        self._started = True
        try:
            if self._recorder is not None:
                self._recorder.open()
            for name in self.scenario.venues:
                spec = SPECS[name]
                venue = _Venue(spec, self.scenario, self._pings(spec), self._idle_timeout_s(spec))
                self._venues[name] = venue
                venue.server = await serve(
                    functools.partial(self._handle, venue),
                    self.host,
                    0,
                    process_request=functools.partial(self._process_request, venue),
                    ping_interval=None,  # VenueSpec.pings are sent by _keepalive, stall-aware
                    ping_timeout=None,
                    close_timeout=CLOSE_TIMEOUT_S,
                )
                venue.port = int(venue.server.sockets[0].getsockname()[1])
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop playback, close every connection and server, close the recording. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._playback:
            task.cancel()
        await asyncio.gather(*self._playback, return_exceptions=True)
        for venue in self._venues.values():
            self._set_stall(venue, on=False)
            if venue.server is not None:
                venue.server.close()
        for venue in self._venues.values():
            if venue.server is not None:
                await venue.server.wait_closed()
        if self._recorder is not None:
            self._recorder.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.stop()

    # ---- public API -----------------------------------------------------------------------

    def url(self, venue: str) -> str:
        """Base URL for ``ExchangeConfig.ws_url``."""
        v = self._venue(venue)
        return f"ws://{self.host}:{v.port}{v.spec.base_path}"

    def rest_url(self, venue: str) -> str:
        """Base URL of the venue's REST endpoints (instrument metadata), same port."""
        return f"http://{self.host}:{self._venue(venue).port}"

    async def wait_subscribed(
        self, venue: str, streams: Iterable[str], timeout_s: float = 10
    ) -> None:
        """Return once every stream is subscribed on some live, non-silent connection."""
        v = self._venue(venue)
        want = set(streams)
        missing = want
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    changed = v.changed
                    missing = want - v.subscribed()
                    if not missing:
                        return
                    await changed.wait()
        except TimeoutError:
            raise TimeoutError(
                f"{venue}: not subscribed after {timeout_s} s: {sorted(missing)}"
            ) from None

    def liquidation_streams(self, venue: str) -> list[tuple[str, ...]]:
        """The stream choices that carry the scenario's liquidations on ``venue``: one tuple per
        distinct way a payload goes out (any one of its streams receives it: a per-symbol topic or
        the venue's all-symbols one). Found by running a fresh copy of the venue's feed over the
        scenario offline (pure, no sockets)."""
        spec = self._venue(venue).spec
        feed = spec.new_feed_for(self.scenario) if spec.new_feed_for else spec.new_feed()
        choices: dict[tuple[str, ...], None] = {}
        outs: list[Outgoing] = []
        for event in self.scenario.events:
            if event.venue == venue:
                now_ms = round(event.t * 1000)
                outs += feed.flush(now_ms)
                outs += feed.on_event(event, now_ms)
        outs += feed.flush(2**62)
        for out in outs:
            if any(isinstance(item, SentLiquidation) for item in out.items):
                choices[out.streams] = None
        return list(choices)

    async def wait_liquidations_subscribed(self, timeout_s: float = 10) -> None:
        """Return once, on every venue, each way the scenario's liquidations go out has a
        subscriber (``liquidation_streams``): playback started then loses none of them."""
        needed = {v: self.liquidation_streams(v) for v in self._venues}
        try:
            async with asyncio.timeout(timeout_s):
                for name, choices in needed.items():
                    v = self._venues[name]
                    while True:
                        changed = v.changed
                        subscribed = v.subscribed()
                        if all(subscribed.intersection(c) for c in choices):
                            break
                        await changed.wait()
        except TimeoutError:
            late = {n: [c for c in cs if not self._venues[n].subscribed().intersection(c)]
                    for n, cs in needed.items()}  # fmt: skip
            raise TimeoutError(
                f"liquidation streams not subscribed after {timeout_s} s: "
                f"{ {n: c for n, c in late.items() if c} }"
            ) from None

    async def wait_connections(self, venue: str, n: int, timeout_s: float = 10) -> None:
        """Return once ``n`` open connections of the venue have subscribed to something."""
        v = self._venue(venue)
        async with asyncio.timeout(timeout_s):
            while sum(1 for c in v.clients if c.session.subscriptions) < n:
                await v.changed.wait()

    def play(self) -> None:
        """Start playback now. Call from the event loop, once, after ``start()``."""
        if not self._started or self._stopped:
            raise RuntimeError("play() needs a started, not stopped simulator")
        if self._clock is not None:
            raise RuntimeError("play() was already called")
        loop = asyncio.get_running_loop()
        self._clock = (loop.time(), time.time_ns())
        for venue in self._venues.values():
            events = [e for e in self.scenario.events if e.venue == venue.name]
            task = loop.create_task(self._play(venue, events), name=f"sim-play-{venue.name}")
            self._playback.append(task)

    async def wait_finished(self) -> None:
        """Playback done and every frame written to its connection."""
        if not self._playback:
            raise RuntimeError("play() was not called")
        await asyncio.gather(*self._playback)
        for venue in self._venues.values():
            for client in list(venue.clients):
                await client.queue.join()

    async def drop_connections(self, venue: str) -> int:
        """Abort every client connection of ``venue`` (no close frame); return how many."""
        v = self._venue(venue)
        clients = list(v.clients)
        for client in clients:
            client.dropping = True
        # what the ledger holds has left the process (module docstring)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DROP_FLUSH_TIMEOUT_S):
                for client in clients:
                    await client.idle.wait()
                    await self._flushed(client.conn)
        for client in clients:
            client.conn.transport.abort()
        for client in clients:
            await client.closed.wait()
        return len(clients)

    @staticmethod
    async def _flushed(conn: ServerConnection) -> None:
        """Until the transport's write buffer is empty: with both limits at 0 it pauses the
        connection's writing while a byte is buffered and resumes it once none is."""
        transport = conn.transport
        if transport.is_closing():
            return
        transport.set_write_buffer_limits(high=0, low=0)
        await conn.drain()

    async def inject(self, venue: str, frames: Iterable[bytes]) -> int:
        """Send raw frames (garbage, truncated JSON, unexpected messages) to every subscribed
        connection of the venue, outside any stream and outside the ledger; returns once they
        are written, with the number of connections that got them."""
        v = self._venue(venue)
        data = list(frames)
        clients = [c for c in v.clients if c.session.subscriptions]
        for client in clients:
            for frame in data:
                client.queue.put_nowait(_Frame(frame, None))
        await asyncio.gather(*(c.queue.join() for c in clients))
        return len(clients)

    def fault(self, venue: str, fault: faults.Fault) -> None:
        """From now on the venue sends what ``fault`` lets through (``faults.NONE``: all)."""
        self._venue(venue).fault = fault

    def stall(self, venue: str, on: bool) -> None:
        """While on, the venue reads and sends nothing: a silent dead socket."""
        self._set_stall(self._venue(venue), on=on)

    # ---- internals ------------------------------------------------------------------------

    def _pings(self, spec: VenueSpec) -> Pings | None:
        """The venue's protocol pings, at ``ping_interval_s`` when that overrides them."""
        if spec.pings is None or self.ping_interval_s is None:
            return spec.pings
        return dataclasses.replace(spec.pings, interval_s=self.ping_interval_s)

    def _idle_timeout_s(self, spec: VenueSpec) -> float | None:
        """The venue's idle close, after ``idle_timeout_s`` when that overrides it."""
        if spec.idle_timeout_s is None or self.idle_timeout_s is None:
            return spec.idle_timeout_s
        return self.idle_timeout_s

    def _venue(self, name: str) -> _Venue:
        try:
            return self._venues[name]
        except KeyError:
            raise ValueError(f"venue {name!r} is not served (start() first?)") from None

    def _set_stall(self, venue: _Venue, *, on: bool) -> None:
        venue.stalled = on
        if on:
            venue.unstalled.clear()
        else:
            venue.unstalled.set()
        for client in venue.clients:
            if on:
                client.conn.transport.pause_reading()
            elif not client.conn.recv_messages.paused:  # not paused by websockets' own flow control
                client.conn.transport.resume_reading()

    def _process_request(
        self, venue: _Venue, conn: ServerConnection, request: Request
    ) -> Response | None:
        spec = venue.spec
        if "upgrade" not in request.headers.get("Connection", "").lower() and spec.rest:
            answer = spec.rest(request.path)  # a plain HTTP GET: instrument metadata
            if answer is not None:
                response = conn.respond(answer[0], answer[1].decode())
                del response.headers["Content-Type"]  # a multi-dict: replace, not add
                response.headers["Content-Type"] = "application/json"
                return response
        refused = spec.route(request.path)
        return None if refused is None else conn.respond(*refused)

    def _session(self, venue: _Venue, conn: ServerConnection) -> Session:
        assert conn.request is not None  # the handshake is done
        return venue.spec.new_session(conn.request.path, str(conn.id))

    async def _handle(self, venue: _Venue, conn: ServerConnection) -> None:
        loop = asyncio.get_running_loop()
        session = self._session(venue, conn)
        client = _Client(conn, session, loop.time())
        if venue.stalled:
            conn.transport.pause_reading()
        venue.clients.add(client)
        tasks = [loop.create_task(self._writer(venue, client))]
        if venue.pings is not None and venue.pings.applies_to(session):
            tasks.append(loop.create_task(self._keepalive(venue.pings, venue, client)))
        if venue.idle_timeout_s is not None:
            tasks.append(loop.create_task(self._idle_watchdog(venue.idle_timeout_s, venue, client)))
        if venue.spec.tick_s is not None:
            tasks.append(loop.create_task(self._ticker(venue, client)))
        if session.subscriptions:
            venue.notify()
        try:
            async for message in conn:
                await venue.unstalled.wait()
                now = loop.time()
                client.last_rx = now
                reply = session.handle(message, now)
                for frame in reply.frames:
                    client.queue.put_nowait(_Frame(frame, None))
                if reply.subscriptions_changed:
                    venue.notify()
                if reply.close is not None:
                    await conn.close(*reply.close)
        except ConnectionClosed:
            pass
        finally:
            venue.clients.discard(client)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            while not client.queue.empty():  # unsent frames: release wait_finished()
                client.queue.get_nowait()
                client.queue.task_done()
            client.closed.set()
            venue.notify()

    async def _writer(self, venue: _Venue, client: _Client) -> None:
        while True:
            frame = await client.queue.get()
            try:
                if venue.stalled or client.dropping:
                    continue  # a dead or dropped socket: the frame is lost, not in the ledger
                client.idle.clear()
                garbled = venue.fault.garbled and frame.out is not None
                data = faults.garble(frame.data) if garbled else frame.data
                await client.conn.send(data, text=not venue.spec.binary)
                if self._recorder is not None:
                    self._recorder.write(venue.name, client.session.conn_id, time.time_ns(),
                                         frame.data)  # fmt: skip
                if frame.out is not None and not garbled:
                    self.ledger.record(venue.name, frame.out.keys, frame.out.items)
            except ConnectionClosed:
                pass
            finally:
                client.idle.set()
                client.queue.task_done()

    async def _keepalive(self, pings: Pings, venue: _Venue, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        unanswered: tuple[asyncio.Future[float], float] | None = None  # oldest unanswered ping
        while True:
            await asyncio.sleep(pings.interval_s)
            if venue.stalled:
                continue
            now = loop.time()
            if unanswered is not None and unanswered[0].done():
                unanswered = None
            if unanswered is not None and now - unanswered[1] >= pings.timeout_s:
                client.conn.transport.abort()
                return
            try:
                pong = asyncio.ensure_future(await client.conn.ping())
            except ConnectionClosed:
                return
            if unanswered is None:
                unanswered = (pong, now)

    async def _ticker(self, venue: _Venue, client: _Client) -> None:
        """Server-initiated frames and idle rules of venues with a TickingSession."""
        assert venue.spec.tick_s is not None
        session: TickingSession = client.session  # type: ignore[assignment]
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(venue.spec.tick_s)
            if venue.stalled:
                continue
            reply = session.tick(loop.time())
            for frame in reply.frames:
                client.queue.put_nowait(_Frame(frame, None))
            if reply.close is not None:
                await client.conn.close(*reply.close)
                return

    async def _idle_watchdog(self, timeout_s: float, venue: _Venue, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        while True:
            remaining = client.last_rx + timeout_s - loop.time()
            if remaining > 0:
                await asyncio.sleep(remaining)
            elif venue.stalled:  # a dead server closes nothing; count from the stall's end
                await venue.unstalled.wait()
                client.last_rx = loop.time()
            else:
                await client.conn.close(1001, "idle timeout: no ping or message")
                return

    async def _play(self, venue: _Venue, events: list[SimEvent]) -> None:
        assert self._clock is not None
        loop = asyncio.get_running_loop()
        t0, wall0_ns = self._clock
        speed = self.speed

        def wall_ms(now: float) -> int:
            return (wall0_ns + round((now - t0) * 1e9)) // 1_000_000

        def at(ms: int) -> float:  # loop time of wall time ``ms``, 1 us late so it has begun
            return t0 + (ms * 1_000_000 - wall0_ns + 1_000) / 1e9

        feed = venue.feed
        i = 0
        while True:
            targets = [at(d)] if (d := feed.next_deadline_ms()) is not None else []
            if i < len(events):
                targets.append(t0 + events[i].t / speed)
            if not targets:
                return
            # the venue's clock is the schedule, not the moment this task got to run: a
            # simulator that falls behind (a loaded machine) sends the same frames, late, instead
            # of stamping several scheduled moments with one late time (module docstring)
            now = min(targets)
            await asyncio.sleep(max(0.0, now - loop.time()))
            now_ms = wall_ms(now)
            outs: list[Outgoing] = []
            while i < len(events) and t0 + events[i].t / speed <= now:
                outs += feed.on_event(events[i], now_ms)
                i += 1
            outs += feed.flush(now_ms)
            self._dispatch(venue, outs)

    def _dispatch(self, venue: _Venue, outs: list[Outgoing]) -> None:
        if venue.stalled:
            return
        for out in faults.passing(venue.fault, outs):
            for client in venue.clients:
                for frame in client.session.frames_for(out):
                    client.queue.put_nowait(_Frame(frame, out))
