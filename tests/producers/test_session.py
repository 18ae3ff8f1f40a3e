from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

import orjson
import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request

from monitor.core.config import ExchangeConfig
from monitor.core.metrics import ProducerMetrics
from monitor.core.schema import Event, Liquidation, OrderSide, QtyUnit, Trade
from producers.base import ConnectionPlan, Parsed, VenueAdapter
from producers.binance import BinanceAdapter
from producers.bybit import BybitAdapter
from producers.events import new_trade
from producers.gate import GateAdapter
from producers.session import Deduplicator, Session
from tests.producers.wsvenue import Venue, closed_port_url, forever

SUB = (
    '{"op":"subscribe","args":["allLiquidation.BTCUSDT","publicTrade.BTCUSDT","tickers.BTCUSDT"],'
    '"req_id":"sub-1"}'
)
ACK = b'{"success":true,"ret_msg":"","conn_id":"c","req_id":"sub-1","op":"subscribe"}'


def bybit_trade(n: int) -> bytes:
    item = {"T": 1760000000000 + n, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "65000",
            "L": "PlusTick", "i": f"id-{n}", "BT": False}  # fmt: skip
    return orjson.dumps(
        {"topic": "publicTrade.BTCUSDT", "ts": 1, "type": "snapshot", "data": [item]}
    )


def bybit_liq(n: int) -> bytes:
    item = {"T": 1760000000000 + n, "s": "BTCUSDT", "S": "Buy", "v": "2", "p": "64000"}
    return orjson.dumps(
        {"topic": "allLiquidation.BTCUSDT", "ts": 1, "type": "snapshot", "data": [item]}
    )


def agg_trade(a: int) -> bytes:
    d = {"e": "aggTrade", "E": 1760000000000 + a, "s": "BTCUSDT", "a": a, "p": "65000.5",
         "q": "0.1", "f": a, "l": a, "T": 1760000000000 + a, "m": False}  # fmt: skip
    return orjson.dumps({"stream": "btcusdt@aggTrade", "data": d})


class UpperBound(random.Random):
    """Full-jitter backoff made observable: records each cap and sleeps the whole cap."""

    def __init__(self) -> None:
        super().__init__(0)
        self.caps: list[float] = []
        self.grew = asyncio.Event()

    def uniform(self, a: float, b: float) -> float:
        assert a == 0.0
        self.caps.append(b)
        self.grew.set()
        return b


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def __call__(self, events: list[Event]) -> None:
        self.events.extend(events)
        self._changed.set()

    async def wait_for(self, n: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()


class Harness:
    def __init__(self, registry: CollectorRegistry, exchange: str) -> None:
        self.registry = registry
        self.exchange = exchange
        self.metrics = ProducerMetrics(registry)
        self.sink = Sink()

    def value(self, name: str, **labels: str) -> float:
        v = self.registry.get_sample_value(name, {"exchange": self.exchange, **labels})
        return 0.0 if v is None else v

    def session(
        self, url: str, adapter: VenueAdapter, plan: ConnectionPlan, **cfg: float
    ) -> Session:
        settings: dict[str, float] = {"stale_after_s": 5.0, "ping_interval_s": 5.0,
                                      "backoff_initial_s": 0.01, "backoff_max_s": 1.0, **cfg}  # fmt: skip
        ex_cfg = ExchangeConfig(ws_url=url, symbols=("BTCUSDT",), **settings)  # type: ignore[arg-type]
        return Session(self.exchange, plan, adapter, ex_cfg, self.sink, self.metrics,
                       Deduplicator(), rng=UpperBound(), send_interval_s=0.01)  # fmt: skip


@pytest.fixture
def bybit() -> Harness:
    return Harness(CollectorRegistry(), "bybit")


@pytest.fixture
def binance() -> Harness:
    return Harness(CollectorRegistry(), "binance")


def bybit_session(h: Harness, url: str, **cfg: float) -> Session:
    ex = ExchangeConfig(symbols=("BTCUSDT",))
    adapter = BybitAdapter(ex)
    (plan,) = adapter.connections(ex, url)
    return h.session(url, adapter, plan, **cfg)


def binance_trades_session(h: Harness, url: str, **cfg: float) -> Session:
    ex = ExchangeConfig(symbols=("BTCUSDT",))
    adapter = BinanceAdapter(ex)
    plan = adapter.connections(ex, url)[1]
    return h.session(url, adapter, plan, **cfg)


def received(venue: Venue, idx: int, n: int) -> Callable[[], bool]:
    return lambda: len(venue.received) > idx and len(venue.received[idx]) >= n


async def test_subscribes_then_parses_frames_into_the_sink(bybit: Harness) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(received(v, i, 1))
        await ws.send(ACK)
        await ws.send(bybit_liq(1))
        await ws.send(bybit_trade(2))
        await forever()

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url)
        await s.start()
        try:
            await s.wait_connected(5)
            assert s.connected
            assert bybit.value("cascade_ws_connected", connection="public") == 1
            await bybit.sink.wait_for(2)
        finally:
            await s.stop()
        assert venue.received[0] == [SUB]
        assert [type(e) for e in bybit.sink.events] == [Liquidation, Trade]
        assert bybit.value("cascade_frames_received_total") == 3
        assert bybit.value("cascade_events_received_total", kind="liquidation") == 1
        assert bybit.value("cascade_events_received_total", kind="trade") == 1
        assert not s.connected
        assert bybit.value("cascade_ws_connected", connection="public") == 0
        await venue.wait_until(lambda: venue.open_now == 0)  # stop closed the socket


async def test_reconnects_with_growing_backoff_and_resubscribes(bybit: Harness) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(received(v, i, 1))
        await ws.send(bybit_trade(i))
        if i == 2:
            await forever()
        # returning closes the connection from the server side

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url)
        await s.start()
        try:
            await bybit.sink.wait_for(3)
            await s.wait_connected(5)
        finally:
            await s.stop()
    assert venue.received == [[SUB], [SUB], [SUB]]  # re-subscribed on every connect
    assert [e.trade_id for e in bybit.sink.events if isinstance(e, Trade)] == [
        "id-0",
        "id-1",
        "id-2",
    ]
    assert bybit.value("cascade_reconnects_total", reason="closed") == 2
    assert s._rng.caps == [0.01, 0.02]  # type: ignore[attr-defined]
    assert s.connects == 3


async def test_backoff_caps_at_max_and_counts_connect_errors(bybit: Harness) -> None:

    s = bybit_session(bybit, closed_port_url(), backoff_initial_s=0.01, backoff_max_s=0.05)
    rng: UpperBound = s._rng  # type: ignore[assignment]
    await s.start()
    try:
        async with asyncio.timeout(5):
            while len(rng.caps) < 6:
                rng.grew.clear()
                await rng.grew.wait()
    finally:
        await s.stop()
    assert rng.caps[:6] == [0.01, 0.02, 0.04, 0.05, 0.05, 0.05]
    assert bybit.value("cascade_reconnects_total", reason="error") >= 6
    assert not s.connected and s.connects == 0


async def test_backoff_resets_after_a_healthy_connection(bybit: Harness) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(received(v, i, 1))
        if i == 2:
            await asyncio.sleep(0.25)  # outlives backoff_max_s: healthy
        elif i >= 4:
            await forever()

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url, backoff_initial_s=0.01, backoff_max_s=0.2)
        await s.start()
        try:
            await venue.wait_until(lambda: len(venue.received) == 5)
            await s.wait_connected(5)
        finally:
            await s.stop()
    # conn 0, 1 short-lived: 0.01, 0.02; conn 2 healthy -> reset: 0.01; conn 3 short: 0.02
    # (without the reset: 0.01, 0.02, 0.04, 0.08)
    assert s._rng.caps == [0.01, 0.02, 0.01, 0.02]  # type: ignore[attr-defined]
    assert bybit.value("cascade_reconnects_total", reason="closed") == 4


async def test_watchdog_reconnects_a_silent_feed(bybit: Harness) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(received(v, i, 1))
        if i >= 1:
            await ws.send(bybit_trade(7))
        await forever()  # connection 0 says nothing at all

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url, stale_after_s=0.2)
        await s.start()
        try:
            await bybit.sink.wait_for(1)
        finally:
            await s.stop()
    assert bybit.value("cascade_reconnects_total", reason="stale") == 1
    assert venue.closed_at[0] is not None
    assert venue.closed_at[0] - venue.opened_at[0] >= 0.2


async def test_json_heartbeat_is_sent_every_ping_interval(bybit: Harness) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await forever()

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url, ping_interval_s=0.05)
        await s.start()
        try:
            await venue.wait_until(received(venue, 0, 3))
        finally:
            await s.stop()
    assert venue.received[0][:3] == [SUB, '{"op":"ping"}', '{"op":"ping"}']


async def test_subscribe_failure_is_counted_and_logged(
    bybit: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fail = b'{"success":false,"ret_msg":"error:handler not found,topic:publicTrade.BTCUSDT","op":"subscribe"}'

    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(received(v, i, 1))
        await ws.send(fail)
        await ws.send(bybit_liq(3))
        await forever()

    caplog.set_level(logging.WARNING, logger="producers.session")
    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url)
        await s.start()
        try:
            await bybit.sink.wait_for(1)
        finally:
            await s.stop()
    assert bybit.value("cascade_parse_errors_total", reason="subscribe_failed") == 1
    assert any("subscription refused" in r.getMessage() for r in caplog.records)


async def test_malformed_frames_are_counted_and_skipped(bybit: Harness) -> None:
    bad_item = {"topic": "publicTrade.BTCUSDT", "data": [{"s": "BTCUSDT"}]}

    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(received(v, i, 1))
        for f in (b"{nope", b"[1,2]", orjson.dumps(bad_item), b"\x00\xff", bybit_trade(1)):
            await ws.send(f)
        await forever()

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url)
        await s.start()
        try:
            await bybit.sink.wait_for(1)
        finally:
            await s.stop()
    assert bybit.value("cascade_parse_errors_total", reason="bad_json") == 2
    assert bybit.value("cascade_parse_errors_total", reason="bad_shape") == 1
    assert bybit.value("cascade_parse_errors_total", reason="missing_field") == 1
    assert bybit.value("cascade_frames_received_total") == 5
    assert bybit.value("cascade_reconnects_total", reason="closed") == 0


async def test_rotation_opens_the_next_socket_first_and_drops_duplicates(binance: Harness) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await ws.send(agg_trade(1))  # every connection replays the same trade first
        await ws.send(agg_trade(100 + i))
        await forever()

    async with Venue(behave) as venue:
        s = binance_trades_session(binance, venue.url, max_connection_age_s=0.3)
        await s.start()
        try:
            await binance.sink.wait_for(3)
        finally:
            await s.stop()
    ids = [e.trade_id for e in binance.sink.events if isinstance(e, Trade)]
    assert ids[:3] == ["1", "100", "101"]
    assert ids.count("1") == 1
    assert binance.value("cascade_duplicate_events_total", reason="producer_memory") >= 1
    assert binance.value("cascade_reconnects_total", reason="rotate") >= 1
    assert venue.max_open == 2  # make-before-break
    assert venue.paths[0] == "/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s"


async def test_stop_cancels_every_task_and_is_idempotent(bybit: Harness) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await forever()

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url, ping_interval_s=0.02, stale_after_s=0.5)
        await s.start()
        await s.wait_connected(5)
        await s.stop()
        await s.stop()
        await venue.wait_until(lambda: venue.open_now == 0)
    mine = [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert [t.get_name() for t in mine if t.get_name().startswith("ws-")] == []
    assert not s.connected


def test_deduplicator_is_bounded_lru() -> None:

    def t(i: int, sym: str = "BTCUSDT") -> Trade:
        return new_trade("x", "BTC-USDT-PERP", sym, OrderSide.BUY, 1.0, 1.0, QtyUnit.BASE, 1.0,
                         1.0, 1.0, None, 1, 1, str(i))  # fmt: skip

    d = Deduplicator(capacity=3)
    fresh, dl, dt = d.fresh([t(1), t(2), t(1), t(1, "ETHUSDT")])
    assert [(e.venue_symbol, e.trade_id) for e in fresh] == [
        ("BTCUSDT", "1"),
        ("BTCUSDT", "2"),
        ("ETHUSDT", "1"),
    ]  # type: ignore[union-attr]
    assert (dl, dt) == (0, 1)
    assert len(d) == 3
    fresh, _, dt = d.fresh([t(3)])  # evicts the oldest: BTCUSDT#2 (BTCUSDT#1 was just seen)
    assert len(fresh) == 1 and len(d) == 3
    assert d.fresh([t(1)])[2] == 1
    assert d.fresh([t(2)])[2] == 0


async def test_stop_drains_frames_the_venue_already_sent(bybit: Harness) -> None:
    n = 300
    stopping: list[asyncio.Task[None]] = []
    s: Session | None = None

    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(received(v, i, 1))
        for k in range(n):
            await ws.send(bybit_trade(k))
        assert s is not None
        stopping.append(asyncio.create_task(s.stop()))  # right behind the last frame
        await forever()

    async with Venue(behave) as venue:
        s = bybit_session(bybit, venue.url)
        await s.start()
        await s.wait_connected(5)
        await venue.wait_until(lambda: bool(stopping))
        behind = n - len(bybit.sink.events)
        await stopping[0]
    assert behind > 0  # the stop really had frames to drain
    assert len(bybit.sink.events) == n
    assert bybit.value("cascade_reconnects_total", reason="closed") == 0


async def test_sequence_gaps_reported_by_the_adapter_are_counted() -> None:
    """An adapter's Parsed.gaps lands in cascade_sequence_gaps_total."""

    class GapAdapter:
        exchange = "bybit"

        def connections(self, cfg: object, base_url: str) -> list[ConnectionPlan]:
            return []

        def parse(self, frame: bytes | str, received_ns: int) -> Parsed:
            return Parsed(control=True, gaps=int(frame))

        def heartbeat(self) -> str | None:
            return None

    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry)
    plan = ConnectionPlan("trades", "ws://127.0.0.1:1/none")
    session = Session("bybit", plan, GapAdapter(), ExchangeConfig(), lambda _: None, metrics)

    class NoSocket:
        async def send(self, frame: str) -> None:
            raise AssertionError("nothing to send")

    await session._handle(NoSocket(), "3")  # type: ignore[arg-type]
    await session._handle(NoSocket(), "0")  # type: ignore[arg-type]
    assert registry.get_sample_value("cascade_sequence_gaps_total", {"exchange": "bybit"}) == 3.0


async def test_plan_headers_are_sent_on_the_handshake() -> None:
    """Gate needs ``X-Gate-Size-Decimal: 1`` on the handshake to get decimal sizes."""

    seen: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def capture(conn: ServerConnection, request: Request) -> None:
        if not seen.done():
            seen.set_result(request.headers.get("X-Gate-Size-Decimal"))

    async def handler(conn: ServerConnection) -> None:
        await conn.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=capture) as server:
        port = server.sockets[0].getsockname()[1]
        plan = ConnectionPlan(
            "liquidations", f"ws://127.0.0.1:{port}/v4/ws/usdt", (), (("X-Gate-Size-Decimal", "1"),)
        )
        session = Session(
            "bybit", plan, BybitAdapter(ExchangeConfig()), ExchangeConfig(), lambda _: None,
            ProducerMetrics(CollectorRegistry()),
        )  # fmt: skip
        await session.start()
        try:
            assert await asyncio.wait_for(seen, 10) == "1"
        finally:
            await session.stop()


async def test_gate_requests_and_pings_carry_the_time_they_are_sent(bybit: Harness) -> None:
    """Gate requests carry ``time``: the plan is built once, the frames are stamped at sending,
    and every heartbeat is built when it is sent."""
    now = [1_700_000_000.0]
    ex = ExchangeConfig(symbols=("BTC_USDT",))
    adapter = GateAdapter(ex, clock=lambda: now[0])

    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await forever()

    async with Venue(behave) as venue:
        plan = adapter.connections(ex, venue.url)[0]
        assert {orjson.loads(f)["time"] for f in plan.subscribe} == {1_700_000_000}
        now[0] += 3600.0  # the plan is an hour old when the socket opens
        s = bybit.session(venue.url, adapter, plan, ping_interval_s=0.05)
        await s.start()
        try:
            n = len(plan.subscribe)
            await venue.wait_until(received(venue, 0, n + 1))
            now[0] += 60.0
            await venue.wait_until(lambda: any(
                orjson.loads(f)["time"] == 1_700_003_660 for f in venue.received[0][n:]))  # fmt: skip
        finally:
            await s.stop()
    sent = [orjson.loads(f) for f in venue.received[0]]
    assert [d["time"] for d in sent[: len(plan.subscribe)]] == [1_700_003_600] * len(plan.subscribe)
    assert [d["channel"] for d in sent[: len(plan.subscribe)]] == [
        orjson.loads(f)["channel"] for f in plan.subscribe
    ]
    assert {d["channel"] for d in sent[len(plan.subscribe) :]} == {"futures.ping"}
