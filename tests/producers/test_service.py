from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError
from prometheus_client import CollectorRegistry
from websockets.asyncio.server import ServerConnection

from monitor.core.config import Config
from monitor.core.errors import ConfigError
from monitor.core.schema import Liquidation, Side, Trade
from producers.service import ProducerService
from tests.producers.kafkautil import read_records
from tests.producers.wsvenue import Venue, forever


def config(bootstrap: str, unique: str, exchange: str, url: str, **ex: Any) -> Config:
    return Config().with_overrides(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"s{unique}", "partitions": 2},
        exchanges={
            exchange: {
                "ws_url": url,
                "symbols": ["BTCUSDT", "ETHUSDT"],
                "all_liquidations": False,
                **ex,
            }
        },  # no REST listing here
    )


def force_order(sym: str, side: str, t: int) -> bytes:
    o = {"s": sym, "S": side, "o": "LIMIT", "f": "IOC", "q": "2", "p": "100", "ap": "101.5",
         "X": "FILLED", "l": "2", "z": "2", "T": t}  # fmt: skip
    return orjson.dumps({"e": "forceOrder", "E": t, "o": o})


def agg_trade(sym: str, a: int) -> bytes:
    d = {"e": "aggTrade", "E": 1760000000000 + a, "s": sym, "a": a, "p": "100.0", "q": "0.5",
         "f": a, "l": a, "T": 1760000000000 + a, "m": a % 2 == 0}  # fmt: skip
    return orjson.dumps({"stream": f"{sym.lower()}@aggTrade", "data": d})


async def test_binance_frames_reach_kafka_once_per_symbol_in_order(
    kafka_bootstrap: str, unique: str
) -> None:
    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        assert ws.request is not None
        if ws.request.path == "/market/ws/!forceOrder@arr":
            await ws.send(force_order("BTCUSDT", "SELL", 1760000000001))
            await ws.send(force_order("ETHUSDT", "BUY", 1760000000002))
        elif (
            ws.request.path
            == "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s/ethusdt@aggTrade/ethusdt@markPrice@1s"
        ):
            for a in range(100):
                await ws.send(agg_trade("BTCUSDT" if a % 3 else "ETHUSDT", a))
        await forever()

    async with Venue(behave) as venue:
        cfg = config(kafka_bootstrap, unique, "binance", f"{venue.url}/market")
        registry = CollectorRegistry()
        async with ProducerService(cfg, "binance", registry) as svc:
            await svc.wait_connected(timeout_s=10)
            assert svc.connected
            await svc.wait_published(104, timeout_s=20)
        assert not svc.connected
        await svc.stop()  # idempotent
        assert sorted(venue.paths) == [
            "/market/stream?streams=btcusdt@aggTrade/btcusdt@markPrice@1s/ethusdt@aggTrade/ethusdt@markPrice@1s",
            "/market/ws/!forceOrder@arr",
        ]
    # 100 trades, 2 liquidations, and each liquidation once more under the venue-wide symbol "*"
    assert svc.published_events == 104
    records = await read_records(kafka_bootstrap, cfg.topic("binance"), 104)
    events = [e for _, _, b in records for e in b.events()]
    assert len(events) == 104
    liqs = sorted((e for e in events if isinstance(e, Liquidation) and e.symbol != "*"),
                  key=lambda e: e.ts_ms)  # fmt: skip
    assert [(e.symbol, e.liquidated_side, e.notional_usd) for e in liqs] == [
        ("BTC-USDT-PERP", Side.LONG, 2 * 101.5),
        ("ETH-USDT-PERP", Side.SHORT, 2 * 101.5),
    ]
    venue_rows = sorted((e for e in events if isinstance(e, Liquidation) and e.symbol == "*"),
                        key=lambda e: e.ts_ms)  # fmt: skip
    assert [(e.event_id, e.notional_usd) for e in venue_rows] == [
        (e.event_id, e.notional_usd) for e in liqs
    ]
    for sym in ("BTC-USDT-PERP", "ETH-USDT-PERP"):
        ids = [int(e.trade_id) for e in events if isinstance(e, Trade) and e.symbol == sym]
        assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert {k for _, k, _ in records} == {b"BTC-USDT-PERP", b"ETH-USDT-PERP", b"*"}
    v = registry.get_sample_value("cascade_events_published_total", {"exchange": "binance"})
    assert v == 104


async def test_bybit_subscribes_and_publishes_position_side(
    kafka_bootstrap: str, unique: str
) -> None:
    ack = b'{"success":true,"ret_msg":"","conn_id":"c","req_id":"sub-1","op":"subscribe"}'
    liq = {"T": 1760000000000, "s": "ETHUSDT", "S": "Buy", "v": "3", "p": "3000"}

    async def behave(v: Venue, ws: ServerConnection, i: int) -> None:
        await v.wait_until(lambda: len(v.received[i]) >= 1)
        await ws.send(ack)
        await ws.send(orjson.dumps({"topic": "allLiquidation.ETHUSDT", "ts": 1, "data": [liq]}))
        await forever()

    async with Venue(behave) as venue:
        cfg = config(kafka_bootstrap, unique, "bybit", venue.url)
        async with ProducerService(cfg, "bybit", CollectorRegistry()) as svc:
            await svc.wait_connected(timeout_s=10)
            await svc.wait_published(1, timeout_s=20)
        assert [orjson.loads(m) for m in venue.received[0][:1]] == [
            {
                "op": "subscribe",
                "args": [
                    "allLiquidation.BTCUSDT",
                    "allLiquidation.ETHUSDT",
                    "publicTrade.BTCUSDT",
                    "publicTrade.ETHUSDT",
                    "tickers.BTCUSDT",
                    "tickers.ETHUSDT",
                ],
                "req_id": "sub-1",
            }
        ]
    # the pair's record, and the same liquidation once more under the venue-wide key "*"
    records = await read_records(kafka_bootstrap, cfg.topic("bybit"), 2)
    assert sorted(r[1] for r in records) == [b"*", b"ETH-USDT-PERP"]
    for record in records:
        (ev,) = record[2].events()
        assert isinstance(ev, Liquidation)
        assert (ev.liquidated_side, ev.notional_usd) == (Side.LONG, 9000.0)


def test_construction_does_no_io_and_services_share_a_registry() -> None:
    cfg = Config().with_overrides(kafka={"bootstrap_servers": "127.0.0.1:1"})
    registry = CollectorRegistry()
    a = ProducerService(cfg, "binance", registry)
    b = ProducerService(cfg, "bybit", registry)
    assert a.metrics is b.metrics
    assert not a.connected and a.published_events == 0
    assert [p.name for p in a.plans] == ["liquidations", "trades"]
    assert [p.name for p in b.plans] == ["public"]
    with pytest.raises(ConfigError, match=r"no producer for exchange 'ftx'"):
        ProducerService(cfg, "ftx", registry)


async def test_start_failure_cleans_up(unique: str) -> None:
    cfg = Config().with_overrides(
        kafka={"bootstrap_servers": "127.0.0.1:1", "request_timeout_ms": 1000}
    )
    svc = ProducerService(cfg, "bybit", CollectorRegistry())
    with pytest.raises(KafkaConnectionError):
        await svc.start()
    await svc.stop()
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith(("ws-", "publish-"))] == []
