"""Bybit: liquidations of every listed symbol, from the instruments listing (REST)."""

from __future__ import annotations

import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.core.config import ExchangeConfig, load
from monitor.core.errors import ParseError
from monitor.core.schema import Liquidation, QtyUnit, Side
from monitor.simulator.scenario import crash_scenario
from monitor.simulator.server import ExchangeSimulator
from monitor.simulator.venues import bybit as sim_bybit
from producers.bybit import BybitAdapter
from producers.bybit.instruments import parse_instruments
from producers.bybit.subscriptions import MAX_TOPICS_PER_CONNECTION
from producers.service import ProducerService

FIRST = "/v5/market/instruments-info?category=linear&limit=1000"


def test_listing_keeps_trading_usd_linear_perpetuals_across_pages() -> None:
    adapter = BybitAdapter(ExchangeConfig())
    url: str | None = f"https://api.bybit.com{FIRST}"
    kept, urls = [], []
    while url is not None:
        urls.append(url)
        _, body = sim_bybit.rest(url.removeprefix("https://api.bybit.com")) or (0, b"")
        kept += [i.venue_symbol for i in parse_instruments(body).instruments]
        adapter.load_instruments(url, body)
        url = adapter.next_instrument_url(url)
        assert adapter.listed == (() if url is not None else tuple(kept))
    assert urls[1:] == [f"https://api.bybit.com{FIRST}&cursor=page{k}" for k in (1, 2)]
    assert kept == ["BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT"]
    assert adapter.listed == ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT")
    # a refresh starts over at the first page: a delisted symbol does not linger
    _, body = sim_bybit.rest(FIRST) or (0, b"")
    adapter.load_instruments(f"https://api.bybit.com{FIRST}", body)
    assert adapter.next_instrument_url(FIRST) is not None
    last = orjson.dumps({"retCode": 0, "result": {"list": [], "nextPageCursor": ""}})
    adapter.load_instruments(f"https://api.bybit.com{FIRST}&cursor=page1", last)
    assert adapter.listed == ("BTCUSDT", "ETHUSDT")
    assert parse_instruments(body).cursor == "page1"
    with pytest.raises(ParseError) as exc:
        parse_instruments(orjson.dumps({"retCode": 10001, "retMsg": "params error"}))
    assert exc.value.reason == "venue_error"


def test_plan_puts_other_listed_symbols_on_liquidation_sockets() -> None:
    cfg = ExchangeConfig(symbols=("BTCUSDT",))
    adapter = BybitAdapter(cfg)
    listed = [f"C{i}USDT" for i in range(MAX_TOPICS_PER_CONNECTION + 3)]
    rows = [{"symbol": s, "contractType": "LinearPerpetual", "status": "Trading",
             "baseCoin": s[:-4], "quoteCoin": "USDT"} for s in ["BTCUSDT", *listed]]  # fmt: skip
    body = orjson.dumps({"retCode": 0, "result": {"list": rows, "nextPageCursor": ""}})
    assert adapter.load_instruments("u", body) == len(listed) + 1
    plans = adapter.connections(cfg, "wss://x")
    assert [p.name for p in plans] == ["public", "liquidations", "liquidations-2"]
    topics = [a for p in plans[1:] for f in p.subscribe for a in orjson.loads(f)["args"]]
    assert topics == [f"allLiquidation.{s}" for s in listed]  # BTCUSDT only on "public"
    off = ExchangeConfig(symbols=("BTCUSDT",), all_liquidations=False)
    assert BybitAdapter(off).instrument_urls("https://api.bybit.com") == []


async def test_every_listed_symbol_is_subscribed(kafka_bootstrap: str, unique: str) -> None:
    async with ExchangeSimulator(crash_scenario(duration_s=2.0, venues=("bybit",))) as sim:
        cfg = load(environ={}).with_overrides(
            kafka={"bootstrap_servers": kafka_bootstrap, "topic_prefix": f"bl{unique}"},
            exchanges={"bybit": {"ws_url": sim.url("bybit"), "rest_url": sim.rest_url("bybit"),
                                 "symbols": ["BTCUSDT"]}},
        )  # fmt: skip
        async with ProducerService(cfg, "bybit", CollectorRegistry()) as producer:
            assert [p.name for p in producer.plans] == ["public", "liquidations", "inverse"]
            assert producer.plans[2].url == sim.url("bybit").replace("/linear", "/inverse")
            await sim.wait_subscribed(
                "bybit", ["allLiquidation.BTCUSDT", "allLiquidation.ETHUSDT",
                          "allLiquidation.SOLUSDT", "allLiquidation.DOGEUSDT",
                          "allLiquidation.BTCUSD", "allLiquidation.ETHUSD"],
            )  # fmt: skip


INVERSE_FIRST = "/v5/market/instruments-info?category=inverse&limit=1000"


def test_inverse_perpetuals_are_listed_and_subscribed_on_their_own_socket() -> None:
    cfg = ExchangeConfig(symbols=("BTCUSDT",))
    adapter = BybitAdapter(cfg)
    urls = adapter.instrument_urls("https://api.bybit.com")
    assert urls == [f"https://api.bybit.com{FIRST}", f"https://api.bybit.com{INVERSE_FIRST}"]
    for first in urls:
        url: str | None = first
        while url is not None:
            _, body = sim_bybit.rest(url.removeprefix("https://api.bybit.com")) or (0, b"")
            adapter.load_instruments(url, body)
            url = adapter.next_instrument_url(url)
    assert adapter.listed_inverse == ("BTCUSD", "ETHUSD")
    assert adapter.listed == ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT")
    plans = adapter.connections(cfg, "wss://stream.bybit.com/v5/public/linear")
    assert [(p.name, p.url) for p in plans] == [
        ("public", "wss://stream.bybit.com/v5/public/linear"),
        ("liquidations", "wss://stream.bybit.com/v5/public/linear"),
        ("inverse", "wss://stream.bybit.com/v5/public/inverse"),
    ]
    assert [a for f in plans[2].subscribe for a in orjson.loads(f)["args"]] == [
        "allLiquidation.BTCUSD", "allLiquidation.ETHUSD"
    ]  # fmt: skip


def test_an_inverse_liquidation_is_sized_in_usd_contracts() -> None:
    """``v`` of an inverse perpetual is contracts of 1 USD: 45,000 contracts at 90,000 are 45,000
    USD, half a BTC; a linear one's ``v`` is base coin."""
    adapter = BybitAdapter(ExchangeConfig())
    rows = [{"symbol": "BTCUSD", "contractType": "InversePerpetual", "status": "Trading",
             "baseCoin": "BTC", "quoteCoin": "USD"}]  # fmt: skip
    body = orjson.dumps({"retCode": 0, "result": {"list": rows, "nextPageCursor": ""}})
    assert adapter.load_instruments(f"https://api.bybit.com{INVERSE_FIRST}", body) == 1
    frame = {"topic": "allLiquidation.BTCUSD", "type": "snapshot", "ts": 1739502303204,
             "data": [{"T": 1739502302929, "s": "BTCUSD", "S": "Buy", "v": "45000", "p": "90000"},
                      {"T": 1739502302930, "s": "BTCUSDT", "S": "Sell", "v": "0.5", "p": "90000"}]}  # fmt: skip
    inverse, linear = adapter.parse(orjson.dumps(frame), 1).events
    assert isinstance(inverse, Liquidation) and isinstance(linear, Liquidation)
    assert (inverse.symbol, inverse.liquidated_side, inverse.qty_unit) == (
        "BTC-USD-PERP", Side.LONG, QtyUnit.CONTRACTS,
    )  # fmt: skip
    assert (inverse.notional_usd, inverse.qty_base, inverse.contract_multiplier) == (
        45000.0,
        0.5,
        1.0,
    )
    assert (linear.symbol, linear.qty_unit, linear.notional_usd) == (
        "BTC-USDT-PERP",
        QtyUnit.BASE,
        45000.0,
    )
