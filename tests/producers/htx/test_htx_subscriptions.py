from __future__ import annotations

import gzip

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.symbols import Instrument
from producers.htx import HtxAdapter
from producers.htx.instruments import parse_contract_info
from producers.htx.subscriptions import plan_connections, trade_topics
from producers.poller import PollSource
from tests.producers.htx.conftest import CONTRACT_INFO_URL, data


def test_three_connections_built_from_the_host_base() -> None:
    cfg = ExchangeConfig(symbols=("BTC-USDT", "eth-usdt", "SOLUSDT", "BTC-USDT"))
    liq, trades, context = HtxAdapter(cfg).connections(cfg, "wss://api.hbdm.com/")
    assert (liq.name, liq.url) == ("liquidations", "wss://api.hbdm.com/linear-swap-notification")
    assert [orjson.loads(f) for f in liq.subscribe] == [
        {
            "op": "sub",
            "cid": "liq-1",
            "topic": "public.*.liquidation_orders",
            "business_type": "swap",
        },
        # funding rates of the configured contracts: small scopes, on the same socket
        {"op": "sub", "cid": "funding-1", "topic": "public.BTC-USDT.funding_rate"},
        {"op": "sub", "cid": "funding-2", "topic": "public.ETH-USDT.funding_rate"},
        {"op": "sub", "cid": "funding-3", "topic": "public.SOL-USDT.funding_rate"},
    ]
    assert (trades.name, trades.url) == ("trades", "wss://api.hbdm.com/linear-swap-ws")
    assert [orjson.loads(f) for f in trades.subscribe] == [
        {"sub": "market.BTC-USDT.trade.detail", "id": "trades-1"},
        {"sub": "market.ETH-USDT.trade.detail", "id": "trades-2"},
        {"sub": "market.SOL-USDT.trade.detail", "id": "trades-3"},
    ]
    assert (context.name, context.url) == ("context", "wss://api.hbdm.com/ws_index")
    assert [orjson.loads(f) for f in context.subscribe] == [
        {"sub": "market.BTC-USDT.mark_price.1min", "id": "mark-1"},
        {"sub": "market.BTC-USDT.index.1min", "id": "index-1"},
        {"sub": "market.ETH-USDT.mark_price.1min", "id": "mark-2"},
        {"sub": "market.ETH-USDT.index.1min", "id": "index-2"},
        {"sub": "market.SOL-USDT.mark_price.1min", "id": "mark-3"},
        {"sub": "market.SOL-USDT.index.1min", "id": "index-3"},
    ]
    assert liq.headers == trades.headers == context.headers == ()


def test_no_symbols_still_watches_every_liquidation() -> None:
    (plan,) = plan_connections(ExchangeConfig(), "ws://127.0.0.1:9")
    assert plan.url == "ws://127.0.0.1:9/linear-swap-notification"
    assert len(plan.subscribe) == 1  # the wildcard, no funding rate
    assert trade_topics(()) == []


def test_open_interest_is_polled_per_configured_contract() -> None:
    cfg = ExchangeConfig(symbols=("BTC-USDT", "ethusdt", "BTC-USDT"))
    adapter = HtxAdapter(cfg)
    assert isinstance(adapter, PollSource)
    assert adapter.poll_urls("https://api.hbdm.com/") == [
        "https://api.hbdm.com/linear-swap-api/v1/swap_open_interest?contract_code=BTC-USDT",
        "https://api.hbdm.com/linear-swap-api/v1/swap_open_interest?contract_code=ETH-USDT",
    ]
    assert HtxAdapter(ExchangeConfig()).poll_urls("https://api.hbdm.com") == []


def test_instrument_urls_and_parsing() -> None:
    adapter = HtxAdapter(ExchangeConfig())
    assert adapter.instrument_urls("https://api.hbdm.com/") == [CONTRACT_INFO_URL]
    assert parse_contract_info(data("swap_contract_info.json")) == [
        Instrument("BTC-USDT", "BTC-USDT-PERP", "BTC", "USDT", 0.001),
        Instrument("ETH-USDT", "ETH-USDT-PERP", "ETH", "USDT", 0.01),
        Instrument("O3-USDT", "O3-USDT-PERP", "O3", "USDT", 1.0),
    ]  # the dated future and the string contract_size are left out


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>", "bad_json"),
        (b'{"status": "error", "err_msg": "x"}', "bad_instruments"),
        (b'{"status": "ok", "data": {}}', "bad_instruments"),
        (b'{"status": "ok", "data": []}', "bad_instruments"),
        (b'[{"contract_code": "BTC-USDT"}]', "bad_instruments"),
    ],
)
def test_bad_instrument_lists_keep_the_previous_ones(body: bytes, reason: str) -> None:
    adapter = HtxAdapter(ExchangeConfig())
    adapter.load_instruments(CONTRACT_INFO_URL, data("swap_contract_info.json"))
    with pytest.raises(ParseError) as err:
        adapter.load_instruments(CONTRACT_INFO_URL, body)
    assert err.value.reason == reason
    ping = b'{"op":"notify","topic":"public.ETH-USDT.liquidation_orders","data":[]}'
    assert adapter.parse(gzip.compress(ping), 1).errors == []


def test_symbol_cap_refuses_a_too_long_list() -> None:
    adapter = HtxAdapter(ExchangeConfig(max_symbols=2))
    with pytest.raises(ParseError) as err:
        adapter.load_instruments(CONTRACT_INFO_URL, data("swap_contract_info.json"))
    assert err.value.reason == "symbol_cap"
