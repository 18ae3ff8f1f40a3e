"""The session's column path: frames parsed straight into a publisher's store, counted the same."""

from __future__ import annotations

from typing import Any

import orjson
from prometheus_client import CollectorRegistry
from websockets.asyncio.server import ServerConnection

from monitor.core.codec import decode_batch
from monitor.core.config import ExchangeConfig
from monitor.core.metrics import ProducerMetrics
from producers.bybit import BybitAdapter
from producers.columns import ColumnStore
from producers.session import RowSink, Session
from tests.producers.wsvenue import Venue, forever

ACK = b'{"success":true,"ret_msg":"","conn_id":"c","req_id":"sub-1","op":"subscribe"}'


def frame(topic: str, *items: dict[str, Any]) -> bytes:
    return orjson.dumps({"topic": topic, "ts": 1, "type": "snapshot", "data": list(items)})


def trade(n: int) -> dict[str, Any]:
    return {"T": 1760000000000 + n, "s": "BTCUSDT", "S": "Sell", "v": "0.5", "p": "65000",
            "L": "PlusTick", "i": f"id-{n}", "BT": False}  # fmt: skip


LIQ = {"T": 1760000000005, "s": "BTCUSDT", "S": "Buy", "v": "2", "p": "64000"}


class Rows:
    """A publisher's two faces a session uses: its store and the count of refused rows."""

    def __init__(self, max_buffered: int) -> None:
        self.columns = ColumnStore("bybit", max_buffered=max_buffered)
        self.refused_rows = 0

    def refused(self, n: int) -> None:
        self.refused_rows += n


async def test_rows_go_to_the_store_and_every_count_is_kept() -> None:
    registry = CollectorRegistry()
    rows = Rows(max_buffered=4)

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, {"exchange": "bybit", **labels}) or 0.0

    assert isinstance(rows, RowSink)

    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await ws.send(ACK)
        await ws.send(frame("publicTrade.BTCUSDT", trade(1), trade(2)))
        await ws.send(frame("publicTrade.BTCUSDT", trade(2), trade(3), {**trade(4), "p": "-1"}))
        await ws.send(frame("allLiquidation.BTCUSDT", LIQ, LIQ))  # two identical: ranked
        await ws.send(frame("publicTrade.BTCUSDT", trade(5)))  # the store is full by now
        await ws.send(b'{"op":"pong","args":["1"]}')  # the last frame: control
        await forever()

    ex = ExchangeConfig(symbols=("BTCUSDT",), all_liquidations=False, ping_interval_s=5.0)
    adapter = BybitAdapter(ex)
    async with Venue(behave) as venue:
        (plan,) = adapter.connections(ex, venue.url)
        s = Session("bybit", plan, adapter, ex, rows, ProducerMetrics(registry))
        await s.start()
        try:
            await venue.wait_until(lambda: value("cascade_frames_received_total") == 6)
        finally:
            await s.stop()

    assert value("cascade_events_received_total", kind="trade") == 5  # the bad item is no event
    assert value("cascade_events_received_total", kind="liquidation") == 2
    assert value("cascade_duplicate_events_total", reason="producer_memory") == 1  # id-2 again
    assert value("cascade_parse_errors_total", reason="bad_number") == 1
    assert rows.refused_rows == 2  # the second liquidation and id-5: four rows held already
    (record,) = rows.columns.records["BTC-USDT-PERP"]
    kept = [getattr(e, "trade_id", "liq") for e in decode_batch(record.encode()).events()]
    assert kept == ["liq", "id-1", "id-2", "id-3"]  # a record lists liquidations, then trades
