from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.core.config import ExchangeConfig
from monitor.core.errors import ParseError
from monitor.core.schema import (
    Coverage,
    Liquidation,
    MarketContext,
    OrderSide,
    PriceKind,
    QtyUnit,
    Side,
    Trade,
    liquidation_id,
)
from producers.base import InstrumentSource
from producers.okx import OkxAdapter

DATA = Path(__file__).resolve().parent / "data"
RECV = 1_692_266_434_100_000_000
URL = "https://www.okx.com/api/v5/public/instruments?instType=SWAP"


def frame(name: str) -> bytes:
    return (DATA / name).read_bytes()


@pytest.fixture
def adapter() -> OkxAdapter:
    a = OkxAdapter(ExchangeConfig(symbols=("BTC-USDT-SWAP",)))
    assert a.load_instruments(URL, frame("instruments.json")) == 4
    return a


def liq_frame(*items: Any) -> bytes:
    return orjson.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": "SWAP"}, "data": list(items)}
    )


def detail(
    side: str, pos: str, sz: str = "2", px: str = "60000.5", ts: str = "1700000000001"
) -> dict[str, str]:
    return {"bkLoss": "0", "bkPx": px, "ccy": "", "posSide": pos, "side": side, "sz": sz, "ts": ts}


def test_is_an_instrument_source() -> None:
    assert isinstance(OkxAdapter(ExchangeConfig()), InstrumentSource)


def test_documented_liquidation_in_contracts(adapter: OkxAdapter) -> None:
    parsed = adapter.parse(frame("liquidation-orders.json"), RECV)
    assert parsed.errors == [] and not parsed.control
    qty_base = 13.0 * 1000.0  # 13 contracts of ctVal 1000 IOST
    assert parsed.events == [
        Liquidation(
            exchange="okx",
            symbol="IOST-USDT-PERP",
            venue_symbol="IOST-USDT-SWAP",
            liquidated_side=Side.SHORT,  # posSide short
            order_side=OrderSide.BUY,
            price=0.007831,
            price_kind=PriceKind.BANKRUPTCY,
            qty_raw=13.0,
            qty_unit=QtyUnit.CONTRACTS,
            contract_multiplier=1000.0,
            qty_base=qty_base,
            notional_usd=qty_base * 0.007831,
            coverage=Coverage.SAMPLED_PER_CONTRACT_1S,
            ts_ms=1692266434010,
            received_ns=RECV,
            event_id=liquidation_id(
                "okx", "IOST-USDT-SWAP", 1692266434010, "short", 13.0, 0.007831
            ),
        )
    ]


def test_every_item_and_every_detail_is_kept(adapter: OkxAdapter) -> None:
    raw = liq_frame(
        {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "uly": "BTC-USDT",
         "details": [detail("sell", "long", "2"), detail("buy", "short", "5", ts="1700000000002"),
                     detail("sell", "net", "7", px="59990.1")]},
        {"instId": "ETH-USDT-SWAP", "details": [detail("buy", "net", "30", px="3000.25")]},
    )  # fmt: skip
    parsed = adapter.parse(raw, RECV)
    assert parsed.errors == []
    got = [(e.symbol, e.liquidated_side, e.order_side, e.qty_raw, e.qty_base, e.notional_usd)
           for e in parsed.events if isinstance(e, Liquidation)]  # fmt: skip
    assert got == [
        ("BTC-USDT-PERP", Side.LONG, OrderSide.SELL, 2.0, 2.0 * 0.01, 2.0 * 0.01 * 60000.5),
        ("BTC-USDT-PERP", Side.SHORT, OrderSide.BUY, 5.0, 5.0 * 0.01, 5.0 * 0.01 * 60000.5),
        # posSide net: the order side tells; a SELL closes a long, a BUY closes a short
        ("BTC-USDT-PERP", Side.LONG, OrderSide.SELL, 7.0, 7.0 * 0.01, 7.0 * 0.01 * 59990.1),
        ("ETH-USDT-PERP", Side.SHORT, OrderSide.BUY, 30.0, 30.0 * 0.1, 30.0 * 0.1 * 3000.25),
    ]
    assert len({e.event_id for e in parsed.events if isinstance(e, Liquidation)}) == 4


def test_inverse_swap_contracts_are_usd(adapter: OkxAdapter) -> None:
    raw = liq_frame({"instId": "BTC-USD-SWAP", "details": [detail("sell", "long", "3", "50000")]})
    (ev,) = adapter.parse(raw, RECV).events
    assert isinstance(ev, Liquidation)
    assert (ev.symbol, ev.contract_multiplier, ev.qty_unit) == ("BTC-USD-PERP", 100.0, "contracts")
    assert ev.notional_usd == 300.0  # 3 contracts x 100 USD, whatever the price
    assert ev.qty_base == 300.0 / 50000.0


def test_bad_details_are_skipped_one_by_one(adapter: OkxAdapter) -> None:
    raw = liq_frame(
        {"instId": "BTC-USDT-SWAP", "details": [
            detail("sell", "long"), detail("sell", "both"), detail("hold", "net"),
            detail("sell", "long", sz="0"), detail("sell", "long", ts="17e11"),
            {"side": "sell", "posSide": "long"}, "x"]},
        {"instId": "NOPE-USDT-SWAP", "details": [detail("sell", "long"), detail("buy", "short")]},
        {"instId": "BTC-USDT-SWAP", "details": {}},
        {"details": []},
        [],
    )  # fmt: skip
    parsed = adapter.parse(raw, RECV)
    assert len(parsed.events) == 1
    assert parsed.errors == [
        "bad_side", "bad_side", "bad_number", "bad_ts", "missing_field", "bad_shape",
        "unknown_instrument", "unknown_instrument", "bad_shape", "missing_field", "bad_shape",
    ]  # fmt: skip


def test_documented_trade(adapter: OkxAdapter) -> None:
    parsed = adapter.parse(frame("trades.json"), RECV)
    assert parsed.events == [
        Trade(
            exchange="okx",
            symbol="BTC-USDT-PERP",
            venue_symbol="BTC-USDT-SWAP",
            taker_side=OrderSide.BUY,
            price=42219.9,
            qty_raw=3.0,
            qty_unit=QtyUnit.CONTRACTS,
            contract_multiplier=0.01,
            qty_base=3.0 * 0.01,
            notional_usd=3.0 * 0.01 * 42219.9,
            is_liquidation=None,
            ts_ms=1630048897897,
            received_ns=RECV,
            trade_id="130639474",
        )
    ]


def test_bad_trades_are_skipped(adapter: OkxAdapter) -> None:
    good = {"instId": "ETH-USDT-SWAP", "tradeId": "9", "px": "3000", "sz": "1", "side": "sell",
            "ts": "1700000000000"}  # fmt: skip
    items = [good, {**good, "side": "Sell"}, {**good, "sz": "-1"}, {**good, "ts": 17},
             {**good, "tradeId": 9}, {**good, "instId": "X-USDT-SWAP"}, {**good, "instId": 5},
             {k: v for k, v in good.items() if k != "px"}, None]  # fmt: skip
    raw = orjson.dumps({"arg": {"channel": "trades", "instId": "ETH-USDT-SWAP"}, "data": items})
    parsed = adapter.parse(raw, RECV)
    (ev,) = parsed.events
    assert isinstance(ev, Trade)
    assert (ev.symbol, ev.qty_base, ev.notional_usd) == ("ETH-USDT-PERP", 0.1, 0.1 * 3000.0)
    assert parsed.errors == ["bad_side", "bad_number", "bad_ts", "bad_type",
                             "unknown_instrument", "bad_type", "missing_field", "bad_shape"]  # fmt: skip


def test_unknown_instrument_before_loading() -> None:
    a = OkxAdapter(ExchangeConfig())
    parsed = a.parse(frame("liquidation-orders.json"), RECV)
    assert (parsed.events, parsed.errors) == ([], ["unknown_instrument"])
    assert a.parse(frame("trades.json"), RECV).errors == ["unknown_instrument"]
    a.load_instruments(URL, frame("instruments.json"))
    assert len(a.parse(frame("trades.json"), RECV).events) == 1


@pytest.mark.parametrize(
    ("name", "reason"),
    [("subscribe_error.json", "subscribe_failed"), ("notice_upgrade.json", "upgrade_notice")],
)
def test_error_and_upgrade_notice(adapter: OkxAdapter, name: str, reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(frame(name), RECV)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"event": "error", "code": "60012", "msg": "Invalid request"}, "venue_error"),
        ({"event": "error", "code": "60013", "msg": "Invalid args"}, "subscribe_failed"),
        ({"event": "error", "id": "ping7", "code": "60012", "msg": "x"}, "venue_error"),
        ({"event": "notice", "code": "64009", "msg": "other"}, "notice"),
        ({"event": "channel-conn-count-error", "code": "60030"}, "venue_error"),
        ({"event": "login", "code": "0"}, "unknown_event"),
        ({"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": []}, "unknown_channel"),
        ({"arg": {"channel": ["trades"]}, "data": []}, "unknown_channel"),
        ({"arg": {"channel": "trades"}, "data": {}}, "bad_shape"),
        ({"arg": [], "data": []}, "bad_shape"),
        ({"data": []}, "missing_field"),
        ({"hello": 1}, "unknown_event"),
    ],
)
def test_frame_level_failures(adapter: OkxAdapter, doc: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(orjson.dumps(doc), RECV)
    assert err.value.reason == reason


@pytest.mark.parametrize("raw", [b"{nope", b"[1,2]", b"ping", "pong!", b""])
def test_not_json_objects(adapter: OkxAdapter, raw: bytes | str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(raw, RECV)
    assert err.value.reason in ("bad_json", "bad_shape")


@pytest.mark.parametrize("raw", [b"pong", "pong"])
def test_text_pong_is_control(adapter: OkxAdapter, raw: bytes | str) -> None:
    assert adapter.parse(raw, RECV).control
    assert adapter.heartbeat() == "ping"


@pytest.mark.parametrize("name", ["subscribe_ok.json", "channel_conn_count.json"])
def test_acks_are_control(adapter: OkxAdapter, name: str) -> None:
    parsed = adapter.parse(frame(name), RECV)
    assert parsed.control and parsed.events == [] and parsed.errors == []


# ---- market context ----------------------------------------------------------------------------


def ctx(venue_symbol: str, ts: int, **fields: float | int | None) -> MarketContext:
    symbol = venue_symbol.replace("-SWAP", "-PERP")
    base: dict[str, Any] = dict.fromkeys(
        ("mark_price", "index_price", "funding_rate", "next_funding_ms", "open_interest_base",
         "open_interest_usd")
    )  # fmt: skip
    return MarketContext("okx", symbol, venue_symbol, **(base | fields), ts_ms=ts, received_ns=RECV)


def push(channel: str, *items: Any) -> bytes:
    return orjson.dumps(
        {"arg": {"channel": channel, "instId": "BTC-USDT-SWAP"}, "data": list(items)}
    )


def test_documented_mark_price(adapter: OkxAdapter) -> None:
    parsed = adapter.parse(frame("mark-price.json"), RECV)
    assert (parsed.errors, parsed.control) == ([], False)
    assert parsed.events == [ctx("BTC-USDT-SWAP", 1630049139746, mark_price=42310.6)]


def test_documented_funding_rate(adapter: OkxAdapter) -> None:
    parsed = adapter.parse(frame("funding-rate.json"), RECV)
    assert parsed.errors == []
    # fundingRate is the current period's, paid at fundingTime (08:00 UTC, 29 min after ts);
    # nextFundingTime (16:00) is the settlement after that
    assert parsed.events == [
        ctx("BTC-USD-SWAP", 1700724675402, funding_rate=0.0001875391284828,
            next_funding_ms=1700726400000)
    ]  # fmt: skip


def test_documented_open_interest(adapter: OkxAdapter) -> None:
    parsed = adapter.parse(frame("open-interest.json"), RECV)
    assert parsed.errors == []
    assert parsed.events == [
        ctx("BTC-USDT-SWAP", 1743041250440, open_interest_base=22161.1301000000309,
            open_interest_usd=1939251795.54769270396321)
    ]  # fmt: skip


def test_open_interest_without_oi_ccy_or_oi_usd(adapter: OkxAdapter) -> None:
    item = {"instId": "BTC-USDT-SWAP", "instType": "SWAP", "oi": "1500", "ts": "1700000000000"}
    inverse = {**item, "instId": "BTC-USD-SWAP"}
    items = [
        item,
        {**item, "oiCcy": "", "oiUsd": ""},
        inverse,
        {**inverse, "oiCcy": "7.5", "oiUsd": "150001"},
        {**item, "oi": "0", "oiCcy": "0"},
    ]
    parsed = adapter.parse(push("open-interest", *items), RECV)
    assert parsed.errors == []
    ts = 1700000000000
    assert parsed.events == [
        # linear: 1500 contracts x 0.01 BTC; no price in the item, so no USD
        ctx("BTC-USDT-SWAP", ts, open_interest_base=1500 * 0.01),
        ctx("BTC-USDT-SWAP", ts, open_interest_base=1500 * 0.01),  # "" is absent
        # inverse: 1500 contracts x 100 USD; the coin amount needs a price
        ctx("BTC-USD-SWAP", ts, open_interest_usd=150000.0),
        ctx("BTC-USD-SWAP", ts, open_interest_base=7.5, open_interest_usd=150001.0),
        ctx("BTC-USDT-SWAP", ts, open_interest_base=0.0),  # an empty book is a value
    ]


def test_negative_and_zero_funding_rates(adapter: OkxAdapter) -> None:
    item = {"instId": "BTC-USDT-SWAP", "fundingRate": "-0.00375", "fundingTime": "1700726400000",
            "nextFundingTime": "1700755200000", "ts": "1700724675402"}  # fmt: skip
    parsed = adapter.parse(push("funding-rate", item, {**item, "fundingRate": "0"}), RECV)
    rates = [e.funding_rate for e in parsed.events if isinstance(e, MarketContext)]
    assert rates == [-0.00375, 0.0]


def without(item: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != key}


def test_bad_mark_prices_are_skipped(adapter: OkxAdapter) -> None:
    m = {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "60000.1", "ts": "1700000000000"}
    items = [
        m,
        {**m, "markPx": "0"},  # bad_number
        {**m, "markPx": "nan"},  # bad_number
        {**m, "markPx": None},  # bad_type
        {**m, "ts": 1700000000000},  # bad_ts: OKX sends strings
        {**m, "ts": ""},  # bad_ts
        {**m, "instId": "NOPE-USDT-SWAP"},  # unknown_instrument
        {**m, "instId": 7},  # bad_type
        without(m, "markPx"),  # missing_field
        without(m, "instId"),  # missing_field
        "x",  # bad_shape
        None,  # bad_shape
    ]
    parsed = adapter.parse(push("mark-price", *items), RECV)
    assert len(parsed.events) == 1
    assert parsed.errors == ["bad_number", "bad_number", "bad_type", "bad_ts", "bad_ts",
                             "unknown_instrument", "bad_type", "missing_field", "missing_field",
                             "bad_shape", "bad_shape"]  # fmt: skip


def test_bad_funding_rates_are_skipped(adapter: OkxAdapter) -> None:
    f = {"instId": "BTC-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": "1700726400000",
         "ts": "1700724675402"}  # fmt: skip
    items = [
        f,
        {**f, "fundingRate": ""},  # bad_number
        {**f, "fundingRate": "inf"},  # bad_number
        {**f, "fundingRate": True},  # bad_type
        {**f, "fundingTime": "0"},  # bad_ts
        without(f, "fundingTime"),  # missing_field
    ]
    parsed = adapter.parse(push("funding-rate", *items), RECV)
    assert len(parsed.events) == 1
    assert parsed.errors == ["bad_number", "bad_number", "bad_type", "bad_ts", "missing_field"]


def test_bad_open_interest_is_skipped(adapter: OkxAdapter) -> None:
    o = {"instId": "BTC-USDT-SWAP", "oi": "10", "oiCcy": "0.1", "oiUsd": "6000",
         "ts": "1700000000000"}  # fmt: skip
    items = [
        o,
        {**o, "oi": "-1"},  # bad_number
        {**o, "oiCcy": "x"},  # bad_number
        {**o, "oiUsd": "-5"},  # bad_number
        {**o, "oiUsd": True},  # bad_type
        without(o, "oi"),  # missing_field
        {**o, "instId": "BTC-USD-SWAP", "oi": "1e308", "oiUsd": ""},  # 1e308 x 100 USD: overflow
    ]
    parsed = adapter.parse(push("open-interest", *items), RECV)
    assert len(parsed.events) == 1
    assert parsed.errors == ["bad_number", "bad_number", "bad_number", "bad_type", "missing_field",
                             "bad_number"]  # fmt: skip


def test_context_needs_the_instruments() -> None:
    a = OkxAdapter(ExchangeConfig())
    for name in ("mark-price.json", "funding-rate.json", "open-interest.json"):
        assert a.parse(frame(name), RECV).errors == ["unknown_instrument"]


@pytest.mark.parametrize(
    "channel", ["mark-price-candle1m", "Mark-Price", "mark-price ", "funding", "open_interest",
                "index-tickers"]
)  # fmt: skip
def test_context_channels_match_exactly(adapter: OkxAdapter, channel: str) -> None:
    with pytest.raises(ParseError) as err:
        adapter.parse(orjson.dumps({"arg": {"channel": channel}, "data": []}), RECV)
    assert err.value.reason == "unknown_channel"
